/**
 * Issue 16 items 2-3, issue 19 item 4 on real namespaces: real drops on h1 — an unknown VNI and a
 * plaintext frame from h3, a stranger (not a peer of h1: `unknown_vni`, `unknown_vtep`), an
 * oversize frame and a group source MAC from h2, a peer (`oversize_frame`, `bad_src_mac`) — then
 * `vxmesh capture --drops -w FILE` over the control socket and `tshark -r FILE -T fields -e
 * frame.comment` shows each reason with its peer; the per-peer drop series name h2 and count the
 * stranger as other; the drop warning names the offending peers. Live: `vxmesh capture --network
 * blue -w FILE` during a ping, ended by SIGINT, is a valid pcapng file with the ICMP echo requests
 * (outbound) and replies (inbound); `--count 4` stops by itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertReaches, buildTopology, labFor, netnsSkip } from '../helpers/lab';
import { encodeDatagrams } from '../helpers/udp-replay';
import { agentConfig, startAgent } from '../../lab/vxmesh';

const skip = netnsSkip('tshark');
const VNI = 42;
const REPO = path.join(__dirname, '..', '..', '..');
const BIN = path.join(REPO, 'bin', 'vxmesh');
const REPLAY = path.join(__dirname, '..', 'helpers', 'udp-replay.js');

function vxlan(vni: number, inner: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = 0x08;
  h.writeUIntBE(vni, 4, 3);
  return Buffer.concat([h, inner]);
}

function frame(src: string, len: number): Buffer {
  const f = Buffer.alloc(len);
  Buffer.from('ffffffffffff', 'hex').copy(f, 0);
  Buffer.from(src.replace(/:/g, ''), 'hex').copy(f, 6);
  f.writeUInt16BE(0x88b5, 12);
  return f;
}

test('capture: real drops read back by tshark with reason and peer; live capture ended by SIGINT or --count', { skip, timeout: 300_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 3 });
  const topo = await buildTopology(lab, { perHost: 1 });
  const [h1, h2, h3] = lab.hosts;
  const [c1, c2] = topo.all;
  const sock = path.join(lab.dir, 'h1.sock');
  const nets = [{ name: 'blue', vni: VNI, bridge: 'br0' }];
  // h1 and h2 are peers of each other; h3 is a stranger to both (its agent is not even started)
  await startAgent(lab, h1, agentConfig(lab, h1, { networks: nets, peers: [h2.address], extra: { api: { listen: '127.0.0.1:9469', socket: sock } } }));
  await startAgent(lab, h2, agentConfig(lab, h2, { networks: nets, peers: [h1.address] }));
  await assertReaches(t, lab, c1, c2);
  const vxm = (args: string[], timeoutMs = 30_000) => lab.exec(h1.ns, process.execPath, [BIN, ...args, '--socket', sock], { timeoutMs });
  const send = async (from: typeof h1, name: string, datagrams: Buffer[]) => {
    const file = lab.writeFile(`${name}.bin`, encodeDatagrams(datagrams));
    const r = await lab.exec(from.ns, process.execPath, [REPLAY, file, h1.address, '4789', '8', '2'], { timeoutMs: 30_000 });
    assert.equal(JSON.parse(r.stdout).sent, datagrams.length);
  };
  await send(h3, 'unknown-vni', Array.from({ length: 3 }, () => vxlan(999, frame('02:33:00:00:00:01', 60))));
  await send(h3, 'stranger', Array.from({ length: 2 }, () => vxlan(VNI, frame('02:33:00:00:00:01', 60))));
  await send(h2, 'oversize', Array.from({ length: 4 }, () => vxlan(VNI, frame('02:22:00:00:00:01', 1600))));
  await send(h2, 'group-src', [vxlan(VNI, frame('01:00:5e:00:00:01', 60))]);

  const file = path.join(lab.dir, 'drops.pcapng');
  await lab.waitFor('the drops to be counted', async () => {
    const r = await vxm(['capture', '--drops', '-w', file]);
    return /^10 frames written/.test(r.stderr) ? true : null;
  }, { timeoutMs: 15_000, intervalMs: 300 });
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const printout = (await lab.exec(null, 'tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', '-e', 'frame.number', '-e', 'frame.interface_name', '-e', 'frame.len', '-e', 'frame.comment'])).stdout;
  t.diagnostic(`tshark -r drops.pcapng -T fields -e frame.number -e frame.interface_name -e frame.len -e frame.comment:\n${printout}`);
  const comments = printout.trim().split('\n').map((l) => l.split('|')[3]);
  const count = (re: RegExp) => comments.filter((c) => re.test(c)).length;
  assert.equal(count(new RegExp(`^vxmesh drop: reason=unknown_vni dir=rx network=- peer=${h3.address.replace(/\./g, '\\.')}:\\d+$`)), 3);
  assert.equal(count(new RegExp(`^vxmesh drop: reason=unknown_vtep dir=rx network=blue peer=${h3.address.replace(/\./g, '\\.')}:\\d+`)), 2);
  assert.equal(count(new RegExp(`^vxmesh drop: reason=oversize_frame dir=rx network=blue peer=${h2.address.replace(/\./g, '\\.')}:4789 len=1600$`)), 4);
  assert.equal(count(/^vxmesh drop: reason=bad_src_mac dir=rx network=blue peer=/), 1);
  // Wireshark decodes the dropped datagram's VXLAN header (written inside synthetic outer headers)
  const vnis = (await lab.exec(null, 'tshark', ['-r', file, '-Y', 'vxlan.vni == 999', '-T', 'fields', '-e', 'ip.src'])).stdout.trim().split('\n');
  assert.deepEqual(vnis.map((l) => l.split(',')[0]), [h3.address, h3.address, h3.address]);
  // one network, newest K
  const one = path.join(lab.dir, 'blue.pcapng');
  const r1 = await vxm(['capture', '--drops', '--network', 'blue', '--count', '2', '-w', one]);
  assert.match(r1.stderr, /^2 frames written/);
  assert.deepEqual((await lab.exec(null, 'tshark', ['-r', one, '-T', 'fields', '-e', 'frame.comment'])).stdout.trim().split('\n').map((c) => c.split(' ')[2]),
    ['reason=oversize_frame', 'reason=bad_src_mac']);
  const bad = await lab.exec(h1.ns, process.execPath, [BIN, 'capture', '--drops', '--network', 'nope', '-w', one, '--socket', sock], { check: false });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /no network "nope"/);

  // per-peer series: h2 (no gossip: peer = its endpoint) named, the stranger in `other`
  const metrics = (await lab.exec(h1.ns, process.execPath, ['-e', "fetch('http://127.0.0.1:9469/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))"])).stdout;
  const line = (l: string) => metrics.split('\n').find((x) => x.startsWith(`vxmesh_peer_dropped_packets_total{${l}}`));
  assert.match(line(`peer="${h2.address}:4789",network="blue",vni="42",direction="rx",reason="oversize_frame"`) ?? '', / 4$/);
  assert.match(line('peer="other",network="blue",vni="42",direction="rx",reason="unknown_vtep"') ?? '', / 2$/);
  assert.match(line('peer="other",network="-",vni="-",direction="rx",reason="unknown_vni"') ?? '', / 3$/);

  // the drop warning (10 s window) names the offending peer
  const log = path.join(lab.dir, `agent-${h1.name}.log`);
  const warn = await lab.waitFor('a drop warning naming h2', () => fs.readFileSync(log, 'utf8').split('\n').find((l) => /"reason":"oversize_frame"/.test(l) && /"level":"warn"/.test(l)) ?? null, { timeoutMs: 15_000, intervalMs: 500 });
  const rec = JSON.parse(warn) as { msg: string; peers: { peer: string; dropped: number }[] };
  assert.match(rec.msg, new RegExp(`on network blue from ${h2.address.replace(/\./g, '\\.')}:4789 ×4 in the last`));
  assert.deepEqual(rec.peers.map((p) => [p.peer, p.dropped]), [[`${h2.address}:4789`, 4]]);

  // live: SIGINT ends it, the file is whole
  const live = path.join(lab.dir, 'live.pcapng');
  const cap = lab.spawn(h1.ns, process.execPath, [BIN, 'capture', '--network', 'blue', '-w', live, '--socket', sock], { name: 'capture-live' });
  await lab.waitFor('the live capture to start', () => (fs.existsSync(live) && fs.statSync(live).size > 0 ? true : null), { timeoutMs: 10_000, intervalMs: 100 });
  const ping = await lab.ping(c1, c2.address, { count: 5, intervalS: 0.2 });
  assert.equal(ping.received, 5);
  // the agent drains its queue every 20 ms: wait until the file holds the 10 ICMP frames (it is readable while written: whole blocks only)
  await lab.waitFor('the ICMP frames in the file', async () => {
    const r = await lab.exec(null, 'tshark', ['-r', live, '-Y', 'icmp', '-T', 'fields', '-e', 'frame.number'], { check: false });
    return r.stdout.trim().split('\n').filter((x) => x !== '').length >= 10 ? true : null;
  }, { timeoutMs: 10_000, intervalMs: 200 });
  const end = await lab.stop(cap, { signal: 'SIGINT', timeoutMs: 5000 });
  assert.equal(end.code, 0, cap.output());
  assert.match(cap.output(), /frames? written to .*live\.pcapng; 0 missed \(the capture could not keep up\) \(interrupted\)/);
  const rows = (await lab.exec(null, 'tshark', ['-r', live, '-Y', 'icmp', '-T', 'fields', '-E', 'separator=|', '-e', 'icmp.type', '-e', 'frame.packet_flags_direction', '-e', 'frame.comment'])).stdout.trim().split('\n');
  t.diagnostic(`live capture (icmp only):\n${rows.join('\n')}`);
  assert.equal(rows.filter((r) => r.startsWith('8|0x00000002|vxmesh: sent to peer=')).length, 5, 'echo requests: outbound, to h2');
  assert.equal(rows.filter((r) => r.startsWith('0|0x00000001|vxmesh: delivered to the TAP')).length, 5, 'echo replies: inbound');

  // --count: stops by itself, with the interface statistics
  const counted = path.join(lab.dir, 'count.pcapng');
  const capN = lab.spawn(h1.ns, process.execPath, [BIN, 'capture', '--network', 'blue', '--count', '4', '-w', counted, '--socket', sock], { name: 'capture-count' });
  await lab.waitFor('the counted capture to start', () => (fs.existsSync(counted) && fs.statSync(counted).size > 0 ? true : null), { timeoutMs: 10_000, intervalMs: 100 });
  await lab.ping(c1, c2.address, { count: 4, intervalS: 0.2 });
  await lab.waitFor('the counted capture to end', () => (capN.running() ? null : true), { timeoutMs: 10_000, intervalMs: 100 });
  assert.match(capN.output(), /^4 frames written/m);
  const n = (await lab.exec(null, 'tshark', ['-r', counted, '-T', 'fields', '-e', 'frame.number'])).stdout.trim().split('\n').length;
  assert.equal(n, 4);
});
