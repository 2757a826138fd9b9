/**
 * The probe stage on in-memory data paths (dp-lab: hosts on one memory underlay, FakeClock):
 * reachability and RTT, path MTU over a path that drops large datagrams, ICMP frag needed / PTB
 * back to the TAP, counted drops for bad probes, and what a host without the stage does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { txDropIndex } from '../../src/dataplane/counters';
import { ProbeEngine } from '../../src/probe/engine';
import { defineProbeMetrics } from '../../src/probe/metrics';
import { writeTooBig } from '../../src/probe/icmp';
import { PROBE_HLEN, PROBE_REPLY, PROBE_REQUEST, probeDropIndex, writeProbe } from '../../src/probe/wire';
import { BLUE, cmac, ep, frame, lab } from './dp-lab';

function probed(hosts = 3, opts: Parameters<typeof lab>[0] = {}) {
  const l = lab({ hosts, ...opts });
  const engines = l.hosts.map((h) => {
    const e = new ProbeEngine({});
    h.dp.setProbe(e);
    e.start();
    return e;
  });
  const step = (ms: number) => {
    for (let t = 0; t < ms; t += 50) {
      l.clock.advance(50);
      l.run();
    }
  };
  return { ...l, engines, step };
}

function ipv4DfFrame(dst: number, src: number, ipLen: number): Buffer {
  const f = frame(dst, src, ipLen - 28);
  f[20] = 0x40; // DF
  return f;
}

test('probes: every peer is up with an RTT and a path MTU (the underlay MTU); probes never reach a TAP', () => {
  const l = probed();
  l.step(3000);
  for (const [h, e] of l.engines.entries()) {
    const v = e.peerViews();
    assert.equal(v.length, 2, `host ${h} probes its 2 peers`);
    for (const p of v) {
      assert.equal(p.state, 'up', JSON.stringify(p));
      assert.equal(p.pathMtu, 1500);
      assert.equal(p.innerMtu, 1500 - 20 - 8 - 8 - 14);
      assert.ok(p.rttMs !== null && p.answered >= 2);
    }
    assert.equal(l.hosts[h].tap(BLUE).written.length, 0, 'no probe delivered to a TAP');
    assert.equal(e.counters.drops.reduce((a, b) => a + b, 0), 0);
    // the answers count as traffic from the peer (the watch's liveness sees idle vxmesh peers as up)
    for (const [label, c] of l.hosts[h].dp.peerCounters()) assert.ok(c.rxPackets > 0 && c.txPackets === 0, label);
  }
});

test('probes: a path that drops datagrams above 1400 bytes is measured; a larger DF frame gets ICMP frag needed (mtu 1350) and counts path_mtu', () => {
  const l = probed(2);
  // the underlay between the two hosts carries IP packets ≤ 1400 bytes (UDP payload ≤ 1372)
  l.net.filter = (d) => (d.data.length > 1372 ? 'drop' : 'deliver');
  l.step(20_000);
  const v = l.engines[0].peerViews()[0];
  assert.equal(v.pathMtu, 1400, JSON.stringify(v));
  assert.equal(v.innerMtu, 1350);
  assert.equal(v.phase, 'complete');
  const h0 = l.hosts[0];
  const dst = cmac(1, 1);
  const src = cmac(0, 1);
  h0.dp.fdbSetRemote(BLUE, dst, ep('198.18.0.2'));
  const before = h0.counters(BLUE).txDrops[txDropIndex.path_mtu];
  const sentBefore = h0.counters(BLUE).txPackets;
  // 1350-byte IP packet passes, 1351 does not
  h0.tap(BLUE).inject(ipv4DfFrame(dst, src, 1350));
  h0.tap(BLUE).inject(ipv4DfFrame(dst, src, 1351));
  l.run();
  assert.equal(h0.counters(BLUE).txPackets - sentBefore, 1);
  assert.equal(h0.counters(BLUE).txDrops[txDropIndex.path_mtu] - before, 1);
  const icmp = h0.tap(BLUE).written.at(-1)!;
  assert.ok(icmp, 'an ICMP answer was written to the TAP');
  assert.equal(icmp.readUIntBE(0, 6), src, 'to the sender');
  assert.equal(icmp.readUIntBE(6, 6), dst, 'from the destination it addressed');
  assert.equal(icmp[14 + 9], 1);
  assert.equal(icmp[34], 3);
  assert.equal(icmp[35], 4);
  assert.equal(icmp.readUInt16BE(34 + 6), 1350);
  assert.equal(l.engines[0].counters.icmpSent, 1);
  // without DF: no ICMP (the sender allowed fragmentation), still counted
  const written = h0.tap(BLUE).written.length;
  h0.tap(BLUE).inject(frame(dst, src, 1400));
  l.run();
  assert.equal(h0.tap(BLUE).written.length, written);
  assert.equal(h0.counters(BLUE).txDrops[txDropIndex.path_mtu] - before, 2);
  assert.equal(l.engines[0].counters.icmpNotAnswerable, 1);
});

test('probes: ICMP answers are rate-limited', () => {
  const l = lab({ hosts: 2 });
  const e = new ProbeEngine({ icmpRatePerSecond: 5 });
  l.hosts[0].dp.setProbe(e);
  e.start();
  const l2 = new ProbeEngine({});
  l.hosts[1].dp.setProbe(l2);
  l2.start();
  l.net.filter = (d) => (d.data.length > 1372 ? 'drop' : 'deliver');
  for (let t = 0; t < 20_000; t += 50) {
    l.clock.advance(50);
    l.run();
  }
  const h0 = l.hosts[0];
  h0.dp.fdbSetRemote(BLUE, cmac(1, 1), ep('198.18.0.2'));
  for (let i = 0; i < 20; i++) h0.tap(BLUE).inject(ipv4DfFrame(cmac(1, 1), cmac(0, 1), 1400));
  l.run();
  assert.equal(e.counters.icmpSent, 5);
  assert.equal(e.counters.icmpRateLimited, 15);
  assert.equal(h0.counters(BLUE).txDrops[txDropIndex.path_mtu], 20);
});

test('probes: a peer that does not exist (or drops probes, as a kernel VXLAN peer does) is down with an unknown path MTU, and not probe-capable; one that answered and then stopped is', () => {
  const l = probed(2, { peers: (h) => (h === 0 ? [ep('198.18.0.2'), ep('198.18.0.99')] : [ep('198.18.0.1')]) });
  l.step(8000);
  const v = l.engines[0].peerViews();
  const ghost = v.find((p) => p.endpoint.startsWith('198.18.0.99'))!;
  assert.equal(ghost.state, 'down');
  assert.equal(ghost.pathMtu, null);
  assert.equal(ghost.phase, 'error');
  assert.equal(ghost.capable, false, 'never answered: not probe-capable (VxmeshPeerDataPathDown stays quiet)');
  const real = v.find((p) => p.endpoint.startsWith('198.18.0.2'))!;
  assert.equal(real.state, 'up');
  assert.equal(real.capable, true);
  // the series: probe_up 0 for both the ghost … and capable 0 only for it
  const series = new Map<string, number>();
  defineProbeMetrics((_type, name, _help, _labels, fill) => fill((labels, value) => series.set(`${name}{${labels.endpoint ?? ''}}`, value)), () => ({
    peers: () => v.map((p) => ({ peer: p.endpoint, endpoint: p.endpoint, state: p.state, capable: p.capable, rttSeconds: null, pathMtu: p.pathMtu })),
    partitions: () => 1, drops: () => [],
    counters: () => ({ sent: 0, answered: 0, lost: 0, sendFailed: 0, requests: 0, replies: 0, icmpSent: 0, icmpRateLimited: 0, icmpNotAnswerable: 0, rowsRefused: 0 }),
  }));
  assert.equal(series.get(`vxmesh_peer_probe_up{${ghost.endpoint}}`), 0);
  assert.equal(series.get(`vxmesh_peer_probe_capable{${ghost.endpoint}}`), 0);
  assert.equal(series.get(`vxmesh_peer_probe_capable{${real.endpoint}}`), 1);
  // a peer that answered, then stops: down, still capable (the alert fires for it)
  l.net.filter = () => 'drop';
  l.step(8000);
  const gone = l.engines[0].peerViews().find((p) => p.endpoint.startsWith('198.18.0.2'))!;
  assert.equal(gone.state, 'down');
  assert.equal(gone.capable, true);
});

test('probes: bad probes are counted drops, never delivered; a reply is exactly 24 bytes (no amplification)', () => {
  const l = probed(2);
  const h1 = l.hosts[1];
  const e1 = l.engines[1];
  const send = (from: string, b: Buffer) => {
    h1.udp.injectFrom(ep(from), b);
    l.run();
  };
  const p = (len: number, vni = BLUE, type = PROBE_REQUEST) => {
    const b = Buffer.alloc(len);
    writeProbe(b, 0, len, vni, type, 1, 1, 0);
    return b;
  };
  const d = () => [...e1.counters.drops];
  const base = d();
  send('198.18.0.1', p(PROBE_HLEN).subarray(0, 20));
  assert.equal(d()[probeDropIndex.truncated] - base[probeDropIndex.truncated], 1);
  const lying = p(100);
  lying.writeUInt16BE(200, 10);
  send('198.18.0.1', lying);
  assert.equal(d()[probeDropIndex.truncated] - base[probeDropIndex.truncated], 2);
  const v2 = p(PROBE_HLEN);
  v2[7] = 2;
  send('198.18.0.1', v2);
  assert.equal(d()[probeDropIndex.bad_version] - base[probeDropIndex.bad_version], 1);
  const t9 = p(PROBE_HLEN, BLUE, 9);
  send('198.18.0.1', t9);
  assert.equal(d()[probeDropIndex.bad_type] - base[probeDropIndex.bad_type], 1);
  send('198.18.0.1', p(PROBE_HLEN, 4242));
  assert.equal(d()[probeDropIndex.unknown_vni] - base[probeDropIndex.unknown_vni], 1);
  send('198.18.0.77', p(PROBE_HLEN));
  assert.equal(d()[probeDropIndex.not_admitted] - base[probeDropIndex.not_admitted], 1);
  send('198.18.0.1', p(PROBE_HLEN, BLUE, PROBE_REPLY));
  assert.equal(d()[probeDropIndex.unexpected_reply] - base[probeDropIndex.unexpected_reply], 1);
  assert.equal(h1.tap(BLUE).written.length, 0);
  // a valid 1000-byte request from the peer gets one 24-byte reply
  l.net.capture = [];
  send('198.18.0.1', p(1000));
  const replies = l.net.capture.filter((x) => x.data[0] === 0x01 && x.data[8] === PROBE_REPLY);
  assert.equal(replies.length, 1);
  assert.equal(replies[0].data.length, PROBE_HLEN);
  assert.equal(replies[0].data.readUInt32BE(20), 1000, 'echoes the length received');
});

test('probes: replies are rate-limited', () => {
  const l = lab({ hosts: 2 });
  const e = new ProbeEngine({ replyRatePerSecond: 10 });
  l.hosts[1].dp.setProbe(e);
  for (let i = 0; i < 30; i++) {
    const b = Buffer.alloc(PROBE_HLEN);
    writeProbe(b, 0, PROBE_HLEN, BLUE, PROBE_REQUEST, 1, i + 1, 0);
    l.hosts[1].udp.injectFrom(ep('198.18.0.1'), b);
  }
  l.run();
  assert.equal(e.counters.requests, 30);
  assert.equal(e.counters.replies, 10);
  assert.equal(e.counters.drops[probeDropIndex.rate_limited], 20);
  // the data path counts the datagrams its probe stage took, apart from tenant traffic
  assert.equal(l.hosts[1].dp.counters.rxProbes, 30);
  assert.equal(l.hosts[1].dp.counters.rxDatagrams, 30);
});

test('probes: a host without the probe stage (an older vxmesh) drops probes as no_i_flag, delivering nothing', () => {
  const l = lab({ hosts: 2 });
  const b = Buffer.alloc(PROBE_HLEN);
  writeProbe(b, 0, PROBE_HLEN, BLUE, PROBE_REQUEST, 1, 1, 0);
  l.hosts[1].udp.injectFrom(ep('198.18.0.1'), b);
  l.run();
  assert.equal(l.hosts[1].dp.counters.rxDrops[1], 1); // no_i_flag
  assert.equal(l.hosts[1].tap(BLUE).written.length, 0);
});

test('icmp: IPv6 Packet Too Big is well-formed (checksum over the pseudo-header), ICMP errors get no answer', () => {
  const f = Buffer.alloc(14 + 40 + 20 + 1000);
  f.writeUIntBE(0x02000000aaaa, 0, 6);
  f.writeUIntBE(0x02000000bbbb, 6, 6);
  f.writeUInt16BE(0x86dd, 12);
  f[14] = 0x60;
  f.writeUInt16BE(1020, 18);
  f[20] = 6;
  f[21] = 64;
  Buffer.from('20010002000000000000000000000001', 'hex').copy(f, 22);
  Buffer.from('20010002000000000000000000000002', 'hex').copy(f, 38);
  const out = Buffer.alloc(256);
  const n = writeTooBig(f, 0, f.length, 1330, out);
  assert.ok(n > 14 + 40 + 8 + 40);
  assert.equal(out[14 + 6], 58);
  assert.equal(out[54], 2);
  assert.equal(out.readUInt32BE(54 + 4), 1330);
  assert.equal(out.subarray(22, 38).toString('hex'), '20010002000000000000000000000002', 'from the destination');
  // verify the checksum: sum over pseudo-header + ICMPv6 message = 0xffff
  const plen = out.readUInt16BE(18);
  let s = 0;
  for (let i = 22; i < 54; i += 2) s += out.readUInt16BE(i);
  s += plen + 58;
  for (let i = 0; i < plen; i += 2) s += (out[54 + i] << 8) | (i + 1 < plen ? out[54 + i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  assert.equal(s, 0xffff);
  // an ICMPv6 error (type 1) is never answered
  f[20] = 58;
  f[54] = 1;
  assert.equal(writeTooBig(f, 0, f.length, 1330, out), 0);
});
