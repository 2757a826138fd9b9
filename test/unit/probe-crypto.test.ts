/**
 * Probes on an encrypted network: two real Datapaths over the in-memory underlay (memory-io twins,
 * fake clock) with real crypto sessions (SessionManager as the PacketCipher), one encrypted
 * network only. A probe travels sealed (no plaintext probe on the wire), is answered, and yields
 * up / RTT and a path MTU (measured over a path that drops large datagrams); an unsealed probe
 * arriving for the encrypted network is a counted `unauthenticated` drop, never answered.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { FakeClock } from '../../src/clock';
import type { Endpoint, NetworkConfig } from '../../src/config/types';
import { Datapath } from '../../src/dataplane/datapath';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { cryptoReady, generateHostKey } from '../../src/crypto/keys';
import { SessionManager, pskFromClusterKey } from '../../src/crypto/session';
import { ProbeEngine } from '../../src/probe/engine';
import { PROBE_HLEN, PROBE_REQUEST, isProbe, probeDropIndex, writeProbe } from '../../src/probe/wire';

const PORT = 4789;
const V4 = ['198.18.0.1', '198.18.0.2'];
const V6 = ['2001:2::1', '2001:2::2'];
const SECRET = 44;
const ep = (address: string): Endpoint => ({ address, port: PORT, family: address.includes(':') ? 6 : 4 });
const cfg: NetworkConfig = { name: 'secret', vni: SECRET, bridge: 'br-secret', tap: 'vx-secret', mtu: 1398, encrypted: true };

function lab(family: 4 | 6 = 4) {
  const ADDRS = family === 6 ? V6 : V4;
  const clock = new FakeClock(0);
  const reactor = new MemoryReactor();
  const net = new MemoryUdpNetwork({ reactor, clock });
  net.capture = [];
  const hosts = ADDRS.map((addr, h) => {
    const udp = net.attach(addr, PORT, 4);
    const tap = new MemoryTap({ name: cfg.tap, mac: Buffer.from([0x02, 0xee, 0, 0, h, SECRET]), reactor });
    const dp = new Datapath({
      networks: [{ config: cfg, tap }], udp, clock, underlay: { family, mtu: 1500, port: PORT, address: addr },
      peers: ADDRS.map(ep), fdb: { ageingSeconds: 300, maxEntries: 1024 },
    });
    dp.start();
    const key = generateHostKey();
    const sm = new SessionManager({ hostKey: key, psks: [pskFromClusterKey(new Uint8Array(32).fill(1))], wallClock: () => 1.8e12 + clock.now(), jitter: () => 0 });
    dp.setCipher(sm);
    const probe = new ProbeEngine({});
    dp.setProbe(probe);
    probe.start();
    return { addr, udp, dp, tap, key, sm, probe };
  });
  for (const a of hosts) for (const b of hosts) if (a !== b) a.sm.setPeer(b.key.publicKey, ep(b.addr));
  const step = (ms: number): void => {
    for (let t = 0; t < ms; t += 5) {
      clock.advance(5);
      reactor.run();
    }
  };
  return { clock, reactor, net, hosts, step };
}

test('crypto ready', async () => { await cryptoReady(); });

for (const family of [4, 6] as const) test(`probes on an encrypted network (IPv${family} underlay) travel sealed, are answered: up, RTT, path MTU; never in clear on the wire`, () => {
  const { hosts, step, net } = lab(family);
  const ip = family === 6 ? 40 : 20;
  // the underlay carries IP packets ≤ 1400 bytes (UDP payload ≤ 1400 − IP − 8), 20 ms one way
  net.filter = (d) => (d.data.length > 1400 - ip - 8 ? 'drop' : 20);
  step(20_000);
  for (const h of hosts) {
    const v = h.probe.peerViews();
    assert.equal(v.length, 1, JSON.stringify(v)); // not itself (its own address is in the static list)
    const other = hosts.find((x) => x !== h)!;
    const peer = v.find((p) => p.endpoint.includes(other.addr))!;
    assert.ok(peer, JSON.stringify(v));
    assert.equal(peer.sealed, true);
    assert.equal(peer.network, 'secret');
    assert.equal(peer.state, 'up', JSON.stringify(peer));
    assert.ok(peer.rttMs !== null && peer.rttMs >= 40 && peer.rttMs <= 50 && peer.answered >= 10, JSON.stringify(peer));
    assert.equal(peer.pathMtu, 1400, JSON.stringify(peer));
    assert.equal(peer.phase, 'complete');
    // inner MTU: 1400 − IP − 8 (UDP) − 8 (VXLAN) − cipher overhead − 14 (Ethernet)
    const c = h.sm;
    assert.equal(peer.innerMtu, 1400 - ip - 8 - 8 - (c.headroom + c.tailroom) - 14);
    assert.equal(h.probe.counters.drops.reduce((a, b) => a + b, 0), 0, `${h.addr}: no probe drops`);
    assert.ok(h.probe.counters.replies > 0 && h.probe.counters.requests > 0);
    assert.equal(h.tap.written.length, 0, 'no probe reached a TAP');
    assert.ok(h.sm.counters.sessionsEstablished >= 1);
  }
  const cap = net.capture!;
  assert.ok(cap.length > 0);
  for (const d of cap) assert.equal(isProbe(d.data, 0, d.data.length), false, 'a probe crossed the wire unsealed');
});

test('an unsealed probe for an encrypted network is a counted drop (unauthenticated), not answered', () => {
  const { hosts, step, net, reactor } = lab();
  step(3000);
  const [A, B] = hosts;
  const before = B.probe.counters.drops[probeDropIndex.unauthenticated];
  const requests = B.probe.counters.requests;
  const b = Buffer.alloc(PROBE_HLEN);
  writeProbe(b, 0, PROBE_HLEN, SECRET, PROBE_REQUEST, 7, 7, 0);
  net.capture = [];
  B.udp.injectFrom(ep(A.addr), b);
  B.udp.injectFrom(ep('198.18.0.77'), b);
  const replies = B.probe.counters.replies;
  reactor.run(); // I/O only, no timer: nothing else arrives at B
  assert.equal(B.probe.counters.drops[probeDropIndex.unauthenticated] - before, 2);
  assert.equal(B.probe.counters.requests, requests, 'not taken as a request');
  B.probe.flush();
  assert.equal(B.probe.counters.replies, replies, 'not answered');
  assert.equal(net.capture!.filter((d) => isProbe(d.data, 0, d.data.length)).length, 0, 'no plaintext probe sent');
  assert.equal(B.tap.written.length, 0);
});
