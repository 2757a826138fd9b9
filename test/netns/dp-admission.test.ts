/**
 * Issue 18, netns: only known hosts get in, and what the agent learns stays bounded.
 *
 *   1. A stranger (a host that is neither a static peer nor a gossip member) sends plain VXLAN from
 *      a kernel VXLAN device and from a raw UDP socket: nothing reaches h1's bridge (capture on
 *      br0), every datagram is counted as `unknown_vtep`, no peer appears. `acceptFrom` (applied by
 *      SIGHUP) then lets the same kernel VXLAN peer in: ping both ways.
 *   2. Gossip: a member's plain VXLAN is delivered while it is alive; once it dies (SIGKILL) or
 *      leaves (SIGTERM), the same datagrams are refused and counted.
 *   3. A flood from 10,000 source addresses (198.18.128.0/17, made local on the flooder with
 *      `ip route add local … dev lo`): on a `known` network all are refused and the peer table,
 *      RSS and /metrics do not grow; on a network that accepts that range, learned peers stop at
 *      `underlay.maxLearnedPeers` (evictions counted) and /metrics stays bounded. Figures are
 *      reported as test diagnostics.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { generateClusterKey } from '../../src/gossip/keyring';
import type { Lab, LabHost } from '../../lab/netns';
import { agentConfig, httpGetJson, rxDropTotal, startAgent, type LabAgent } from '../../lab/vxmesh';
import { assertReaches, buildTopology, labFor, netnsSkip } from '../helpers/lab';
import { encodeDatagrams } from '../helpers/udp-replay';

const skip = netnsSkip('tcpdump');
const BLUE = { name: 'blue', vni: 42, bridge: 'br0' };
const GREEN = { name: 'green', vni: 43, bridge: 'br1' };
const REPLAY = path.join(__dirname, '..', 'helpers', 'udp-replay.js');
const SOURCES = path.join(__dirname, '..', 'helpers', 'udp-sources.js');

/** Plain VXLAN (I flag, `vni`) around a broadcast frame from MAC 02:bd:<tag>:00:<i>. */
function vxlanFrom(vni: number, tag: number, n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    const d = Buffer.alloc(8 + 60);
    d[0] = 0x08;
    d.writeUIntBE(vni, 4, 3);
    d.fill(0xff, 8, 14);
    Buffer.from([0x02, 0xbd, tag, 0, (i >> 8) & 255, i & 255]).copy(d, 14);
    d.writeUInt16BE(0x88b5, 20);
    return d;
  });
}

async function replay(lab: Lab, from: LabHost, to: LabHost, datagrams: Buffer[], name: string): Promise<void> {
  const file = lab.writeFile(`${name}.bin`, encodeDatagrams(datagrams));
  const r = await lab.exec(from.ns, process.execPath, [REPLAY, file, to.address, '4789', '32', '2'], { timeoutMs: 60_000 });
  assert.equal(JSON.parse(r.stdout).sent, datagrams.length);
}

const netCounters = (s: Awaited<ReturnType<LabAgent['status']>>, vni: number) => s.networks.find((n) => n.vni === vni)!.counters!;

async function reloadWith(lab: Lab, ag: LabAgent, config: Record<string, unknown>, nth: number): Promise<void> {
  fs.writeFileSync(ag.configPath, stringify(config));
  process.kill(ag.proc.pid, 'SIGHUP');
  await lab.waitFor(`${ag.host.name}: reload ${nth} applied`, () => {
    if (!ag.running()) throw new Error(`agent ${ag.host.name} exited:\n${ag.proc.output()}`);
    const out = ag.proc.output();
    if (/"msg":"reload: (?!config applied)/.test(out)) throw new Error(`agent ${ag.host.name} failed a reload:\n${out}`);
    return (out.match(/reload: config applied/g) ?? []).length >= nth;
  }, { timeoutMs: 30_000, intervalMs: 50 });
}

test('a stranger\'s plain VXLAN (kernel device, raw socket) never reaches the bridge and is counted; acceptFrom lets the kernel VXLAN peer in', { skip, timeout: 180_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 3 });
  const topo = await buildTopology(lab, { perHost: 1 });
  const [h1, h2, h3] = lab.hosts;
  const [c1, c2, c3] = topo.all;
  // h1 and h2 run vxmesh and know each other only; h3 is a stranger with a kernel VXLAN device.
  const cfg1 = agentConfig(lab, h1, { networks: [BLUE], peers: [h2.address] });
  const a1 = await startAgent(lab, h1, cfg1);
  await startAgent(lab, h2, agentConfig(lab, h2, { networks: [BLUE], peers: [h1.address] }));
  await lab.addKernelVxlan(h3, { vni: BLUE.vni, bridge: 'br0', peers: [h1.address] });
  await assertReaches(t, lab, c1, c2);

  const cap = await lab.capture(h1.ns, 'br0', '', { name: 'h1-br0' });
  // Raw socket from the stranger: each datagram counted once as unknown_vtep.
  const before = await a1.status();
  await replay(lab, h3, h1, vxlanFrom(BLUE.vni, 0x33, 300), 'stranger');
  const want = rxDropTotal(before, 'unknown_vtep') + 300;
  await lab.waitFor('300 stranger datagrams counted', async () => rxDropTotal(await a1.status(), 'unknown_vtep') >= want, { timeoutMs: 10_000, intervalMs: 100 });
  let s = await a1.status();
  assert.equal(rxDropTotal(s, 'unknown_vtep'), want);
  // Kernel VXLAN from the stranger's container: no answer, no peer.
  const p = await lab.ping(c3, c1.address, { count: 3, intervalS: 0.2, waitS: 1 });
  assert.equal(p.received, 0, 'the stranger gets no answer');
  s = await a1.status();
  assert.ok(rxDropTotal(s, 'unknown_vtep') > want, 'the kernel VXLAN device\'s frames are counted too');
  assert.deepEqual(s.peers.map((x) => x.peer), [`${h2.address}:4789`], 'no peer for the stranger');
  await assertReaches(t, lab, c1, c2); // known peers unaffected
  const lines = await lab.readPcap(await cap.stop(), '', { ether: true });
  assert.ok(lines.some((l) => l.includes(c2.mac)), 'the capture sees the known peer\'s frames (control)');
  const leaked = lines.filter((l) => l.includes(c3.mac) || /02:bd:33:/.test(l));
  assert.deepEqual(leaked, [], 'no frame of the stranger on h1\'s bridge');
  t.diagnostic(`stranger: ${rxDropTotal(s, 'unknown_vtep')} datagrams counted unknown_vtep, ${lines.length} frames on br0, none from the stranger`);

  // Opt in: acceptFrom names the kernel VXLAN host; a reload applies it in place.
  await reloadWith(lab, a1, { ...cfg1, networks: [{ ...BLUE, acceptFrom: [`${h3.address}/32`] }] }, 1);
  s = await a1.status();
  assert.deepEqual(s.networks[0].acceptFrom, [`${h3.address}/32`]);
  await lab.waitFor('the kernel VXLAN peer reaches h1c1', async () => (await lab.ping(c3, c1.address, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 20_000, intervalMs: 200 });
  await assertReaches(t, lab, c1, c3);
  await assertReaches(t, lab, c3, c1);
  s = await a1.status();
  assert.ok(s.peers.some((x) => x.peer === `${h3.address}:4789`), 'learned as a peer once accepted');
  await assertReaches(t, lab, c1, c2);
});

test('a gossip member is accepted while alive; once it dies (SIGKILL) or leaves (SIGTERM) its VXLAN is refused and counted', { skip, timeout: 240_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 4 });
  const topo = await buildTopology(lab, { perHost: 1 });
  const [h1, , h3, h4] = lab.hosts;
  const keyFile = lab.writeFile('cluster.key', `${await generateClusterKey()}\n`);
  const agents: LabAgent[] = [];
  for (const h of lab.hosts) {
    const c = agentConfig(lab, h, { networks: [BLUE], extra: { gossip: { seeds: [h1.address], keyFile, profile: 'test' } } });
    delete c.peers; // gossip members only
    agents.push(await startAgent(lab, h, c));
  }
  const a1 = agents[0];
  const stateOf = async (name: string) => ((await httpGetJson(lab, h1.ns, `${a1.apiUrl}/v1/members`)) as { members: { name: string; state: string }[] })
    .members.find((m) => m.name === name)?.state;
  await lab.waitFor('four alive members', async () => {
    const ms = (await httpGetJson(lab, h1.ns, `${a1.apiUrl}/v1/members`)) as { members: { state: string }[] };
    return ms.members.filter((m) => m.state === 'alive').length === 4;
  }, { timeoutMs: 30_000, intervalMs: 250 });
  const [c1, , c3, c4] = topo.all;
  await lab.waitFor('h3c1 reaches h1c1', async () => (await lab.ping(c3, c1.address, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 20_000, intervalMs: 200 });
  await assertReaches(t, lab, c4, c1);

  // Control: while alive, a member's plain VXLAN is delivered.
  let before = await a1.status();
  await replay(lab, h3, h1, vxlanFrom(BLUE.vni, 0x03, 100), 'alive');
  await lab.waitFor('100 datagrams of a live member delivered', async () =>
    netCounters(await a1.status(), BLUE.vni).rxDelivered >= netCounters(before, BLUE.vni).rxDelivered + 100, { timeoutMs: 10_000, intervalMs: 100 });
  assert.equal(rxDropTotal(await a1.status(), 'unknown_vtep'), rxDropTotal(before, 'unknown_vtep'));

  const refusedAfter = async (h: LabHost, tag: number, what: string) => {
    const cap = await lab.capture(h1.ns, 'br0', 'ether proto 0x88b5', { name: `br0-${tag}` });
    before = await a1.status();
    await replay(lab, h, h1, vxlanFrom(BLUE.vni, tag, 100), what);
    const want = rxDropTotal(before, 'unknown_vtep') + 100;
    await lab.waitFor(`${what}: 100 datagrams counted unknown_vtep`, async () => rxDropTotal(await a1.status(), 'unknown_vtep') >= want, { timeoutMs: 10_000, intervalMs: 100 });
    assert.equal(rxDropTotal(await a1.status(), 'unknown_vtep'), want);
    const lines = await lab.readPcap(await cap.stop(), '', { ether: true });
    assert.deepEqual(lines, [], `${what}: nothing reached h1's bridge`);
  };

  // Dies: SIGKILL, then h1 declares it dead.
  await lab.stop(agents[2].proc, { signal: 'SIGKILL' });
  await lab.waitFor('h1 sees h3 dead', async () => (await stateOf(h3.name)) === 'dead', { timeoutMs: 60_000, intervalMs: 250 });
  await refusedAfter(h3, 0x13, 'dead member');
  // Leaves: SIGTERM (graceful leave).
  await agents[3].stop();
  await lab.waitFor('h1 sees h4 left', async () => (await stateOf(h4.name)) === 'left', { timeoutMs: 30_000, intervalMs: 250 });
  await refusedAfter(h4, 0x14, 'member that left');
  // h2, still a member, still gets in.
  await assertReaches(t, lab, topo.all[1], c1);
});

test('a flood from 10,000 source addresses leaves the peer table, RSS and /metrics bounded', { skip, timeout: 300_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 3 });
  await buildTopology(lab, { perHost: 1 });
  await buildTopology(lab, { perHost: 1, bridge: 'br1', subnet: '198.19.1', namePrefix: 'g' });
  const [h1, h2, h3] = lab.hosts;
  const MAX_LEARNED = 256;
  const FLOOD = 10_000;
  const FIRST = '198.18.128.0'; // 198.18.128.0 .. 198.18.167.15, inside 198.18.0.0/15
  const green = { ...GREEN, acceptFrom: ['198.18.128.0/17'] };
  const cfg1 = agentConfig(lab, h1, { networks: [BLUE, green], peers: [h2.address] });
  (cfg1.underlay as Record<string, unknown>).maxLearnedPeers = MAX_LEARNED;
  const a1 = await startAgent(lab, h1, cfg1);
  await startAgent(lab, h2, agentConfig(lab, h2, { networks: [BLUE, GREEN], peers: [h1.address] }));
  // The flooder owns the whole range (AnyIP), reaches h1 without ARP; h1 routes the range back (rp_filter).
  await lab.ip(h3.ns, 'route', 'add', 'local', '198.18.128.0/17', 'dev', 'lo');
  const ul1 = await lab.linkStats(h1.ns, 'ul0');
  await lab.ip(h3.ns, 'neigh', 'replace', h1.address, 'lladdr', ul1.mac, 'dev', 'ul0', 'nud', 'permanent');
  await lab.ip(h1.ns, 'route', 'add', '198.18.128.0/17', 'dev', 'ul0');

  const metricsText = async (): Promise<string> => {
    const script = 'fetch(process.argv[1]).then(r=>r.text()).then(t=>process.stdout.write(t))';
    return (await lab.exec(h1.ns, process.execPath, ['-e', script, `${a1.apiUrl}/metrics`], { timeoutMs: 15_000 })).stdout;
  };
  const rssKb = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  // Traffic series per peer (rx/tx packets/bytes) and the eviction counter. The liveness series
  // (vxmesh_peer_up, vxmesh_peer_last_received_seconds) appear once the 1 s control-plane watch has
  // seen a peer, so they are left out of the counts and bounded through /metrics' size instead.
  const peerSeries = (m: string) => m.split('\n').filter((l) => /^vxmesh_peer_(rx_|tx_|evictions_total)/.test(l)).length;
  const figures = async (label: string) => {
    const s = await a1.status();
    const m = await metricsText();
    const f = { label, peers: s.peers.length, rssKb: rssKb(s.pid), metricsBytes: Buffer.byteLength(m), metricsLines: m.split('\n').length, peerSeries: peerSeries(m), evictions: Number(s.counters!.peerEvictions ?? 0), unknownVtep: rxDropTotal(s, 'unknown_vtep') };
    t.diagnostic(JSON.stringify(f));
    return { ...f, status: s };
  };
  const flood = async (vni: number) => {
    const r = await lab.exec(h3.ns, process.execPath, [SOURCES, h1.address, '4789', String(vni), FIRST, String(FLOOD), '32', '2'], { timeoutMs: 180_000 });
    assert.equal(JSON.parse(r.stdout).sent, FLOOD);
  };

  const f0 = await figures('before');
  assert.equal(f0.peers, 1);

  // 1. a `known` network: 10,000 strangers, every datagram refused, nothing grows.
  await flood(BLUE.vni);
  await lab.waitFor('10,000 refused', async () => rxDropTotal(await a1.status(), 'unknown_vtep') >= f0.unknownVtep + FLOOD, { timeoutMs: 30_000, intervalMs: 200 });
  const f1 = await figures('after 10,000 sources on a known-only network');
  assert.equal(f1.unknownVtep, f0.unknownVtep + FLOOD);
  assert.equal(f1.peers, 1, 'no peer learned');
  assert.equal(f1.peerSeries, f0.peerSeries, 'no per-peer series');
  assert.ok(f1.metricsBytes <= f0.metricsBytes + 2048, `/metrics ${f0.metricsBytes} → ${f1.metricsBytes} bytes (at most the known peer's liveness series)`);
  assert.equal(netCounters(f1.status, BLUE.vni).rxDelivered, netCounters(f0.status, BLUE.vni).rxDelivered);

  // 2. a network that accepts the range: learned peers stop at maxLearnedPeers, evictions counted.
  const delivered0 = netCounters(f1.status, GREEN.vni).rxDelivered;
  await flood(GREEN.vni);
  await lab.waitFor('10,000 delivered on green', async () => netCounters(await a1.status(), GREEN.vni).rxDelivered >= delivered0 + FLOOD, { timeoutMs: 30_000, intervalMs: 200 });
  const f2 = await figures(`after 10,000 sources on a network accepting them (maxLearnedPeers ${MAX_LEARNED})`);
  assert.ok(f2.peers <= 1 + MAX_LEARNED, `${f2.peers} peers`);
  assert.equal(f2.peers, 1 + MAX_LEARNED);
  assert.equal(f2.evictions, FLOOD - MAX_LEARNED);
  // Per peer: 4 traffic series, plus vxmesh_peer_evictions_total; with the 2 liveness series per
  // peer, /metrics stays bounded by the peer cap.
  const SERIES_MAX = 4 * (1 + MAX_LEARNED) + 1;
  assert.equal(f2.peerSeries, SERIES_MAX, `${f2.peerSeries} per-peer series`);
  // ≈ 100 bytes per per-peer series, plus the FDB/eviction gauges
  const BYTES_MAX = f0.metricsBytes + 6 * MAX_LEARNED * 100 + 4096;
  assert.ok(f2.metricsBytes <= BYTES_MAX, `/metrics ${f0.metricsBytes} → ${f2.metricsBytes} bytes`);
  assert.ok(f2.rssKb - f0.rssKb < 128 * 1024, `RSS ${f0.rssKb} → ${f2.rssKb} kB`);
  // the known peer is untouched
  assert.ok(f2.status.peers.some((x) => x.peer === `${h2.address}:4789`));
  // and once more: a second round of the same flood does not grow anything further
  await flood(GREEN.vni);
  await lab.waitFor('20,000 delivered on green', async () => netCounters(await a1.status(), GREEN.vni).rxDelivered >= delivered0 + 2 * FLOOD, { timeoutMs: 30_000, intervalMs: 200 });
  const f3 = await figures('after a second round');
  assert.equal(f3.peers, 1 + MAX_LEARNED);
  assert.equal(f3.peerSeries, SERIES_MAX, `${f3.peerSeries} per-peer series after a second round`);
  assert.ok(f3.metricsBytes <= BYTES_MAX, `/metrics ${f2.metricsBytes} → ${f3.metricsBytes} bytes after a second round`);
});
