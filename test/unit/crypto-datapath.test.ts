/**
 * SessionManager as the real Datapath's PacketCipher, three hosts over the in-memory underlay
 * (memory-io twins, fake clock): frames on an encrypted network cross sealed (first datagram
 * queued during the handshake, then delivered); the wire never carries the inner payload or a
 * plaintext VXLAN header for that VNI; plaintext VXLAN injected for it is dropped
 * (`plaintext_on_encrypted`); a plain network next to it stays kernel-compatible VXLAN; with no
 * route to a peer, queued frames end as `no_session`.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { FakeClock } from '../../src/clock';
import type { Endpoint, NetworkConfig } from '../../src/config/types';
import { Datapath } from '../../src/dataplane/datapath';
import { writeEthHeader, ETHERTYPE_IPV4 } from '../../src/dataplane/ethernet';
import { type MemoryDatagram, MemoryReactor, MemoryTap, MemoryUdp, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { endpointToRecord } from '../../src/dataplane/addr';
import { writeVxlanHeader } from '../../src/dataplane/vxlan';
import { cryptoReady, generateHostKey, type HostKey } from '../../src/crypto/keys';
import { SessionManager, pskFromClusterKey } from '../../src/crypto/session';

const PORT = 4789;
const V4 = ['198.18.0.1', '198.18.0.2', '198.18.0.3'];
const V6 = ['2001:2::1', '2001:2::2', '2001:2::3'];
const ep = (address: string): Endpoint => ({ address, port: PORT, family: address.includes(':') ? 6 : 4 });
const PLAIN = 42;
const SECRET = 44;
const MARKER = Buffer.from('vxmesh-secret-marker-0123456789');

const cfg = (name: string, vni: number, encrypted: boolean): NetworkConfig => ({
  name, vni, bridge: `br-${name}`, tap: `vx-${name}`, mtu: encrypted ? 1398 : 1430, encrypted,
});

interface H { addr: string; udp: MemoryUdp; dp: Datapath; taps: Map<number, MemoryTap>; key: HostKey; sm: SessionManager }

function lab(opts: { psk?: (h: number) => Uint8Array; family?: 4 | 6 } = {}) {
  const family = opts.family ?? 4;
  const ADDRS = family === 6 ? V6 : V4;
  const clock = new FakeClock(0);
  const reactor = new MemoryReactor();
  const net = new MemoryUdpNetwork({ reactor, clock });
  net.capture = [];
  const hosts: H[] = ADDRS.map((addr, h) => {
    const udp = net.attach(addr, PORT, 4);
    const taps = new Map<number, MemoryTap>();
    const networks = [cfg('plain', PLAIN, false), cfg('secret', SECRET, true)].map((config) => {
      const tap = new MemoryTap({ name: config.tap, mac: Buffer.from([0x02, 0xee, 0, 0, h, config.vni]), reactor });
      taps.set(config.vni, tap);
      return { config, tap };
    });
    const dp = new Datapath({
      networks, udp, clock, underlay: { family, mtu: 1500, port: PORT, address: addr },
      peers: ADDRS.map(ep), fdb: { ageingSeconds: 300, maxEntries: 1024 },
    });
    dp.start();
    const key = generateHostKey();
    const psk = opts.psk ? opts.psk(h) : pskFromClusterKey(new Uint8Array(32).fill(1));
    const sm = new SessionManager({ hostKey: key, psks: [psk], wallClock: () => 1.8e12 + clock.now(), jitter: () => 0 });
    dp.setCipher(sm);
    return { addr, udp, dp, taps, key, sm };
  });
  for (const a of hosts) for (const b of hosts) if (a !== b) a.sm.setPeer(b.key.publicKey, ep(b.addr));
  const run = (): void => {
    for (let i = 0; i < 10; i++) {
      reactor.run();
      clock.advance(10);
    }
  };
  return { clock, reactor, net, hosts, run };
}

const cmac = (h: number, i: number): number => 0x020000000000 + h * 256 + i;

function frame(dst: number, src: number, payload: Buffer = MARKER): Buffer {
  const f = Buffer.alloc(14 + 20 + payload.length);
  writeEthHeader(f, 0, dst, src, ETHERTYPE_IPV4);
  f[14] = 0x45;
  f.writeUInt16BE(20 + payload.length, 16);
  f[22] = 64;
  f[23] = 17;
  f.writeUInt32BE(0xc6130001, 26);
  f.writeUInt32BE(0xc6130002, 30);
  payload.copy(f, 34);
  return f;
}

test('crypto ready', async () => { await cryptoReady(); });

for (const family of [4, 6] as const) test(`encrypted network (IPv${family} underlay): frames cross sealed, never in clear; plain network next to it stays plain VXLAN`, () => {
  const { hosts, run, net } = lab({ family });
  const [A, B, C] = hosts;
  A.taps.get(SECRET)!.inject(frame(0xffffffffffff, cmac(0, 1))); // flood → B and C
  run();
  for (const h of [B, C]) {
    const got = h.taps.get(SECRET)!.takeWritten();
    assert.equal(got.length, 1, `${h.addr} got the flooded frame (queued during the handshake, then sent)`);
    assert.ok(got[0].includes(MARKER));
  }
  // unicast both ways once sessions exist: B's MAC was learned from ... B replies to A
  B.taps.get(SECRET)!.inject(frame(cmac(0, 1), cmac(1, 1)));
  run();
  assert.equal(A.taps.get(SECRET)!.takeWritten().length, 1);
  A.taps.get(SECRET)!.inject(frame(cmac(1, 1), cmac(0, 1)));
  run();
  assert.equal(B.taps.get(SECRET)!.takeWritten().length, 1);
  assert.equal(C.taps.get(SECRET)!.takeWritten().length, 0, 'unicast to B only');
  // the plain network still speaks plain VXLAN
  A.taps.get(PLAIN)!.inject(frame(0xffffffffffff, cmac(0, 2)));
  run();
  const cap = net.capture!;
  assert.ok(cap.length > 0);
  for (const d of cap) {
    assert.equal(d.data.includes(MARKER) && d.data[0] !== 0x08, false, 'marker in clear in a non-VXLAN datagram');
    if (d.data[0] === 0x08) {
      assert.equal(d.data.readUIntBE(4, 3), PLAIN, 'plaintext VXLAN only for the plain network');
    } else {
      assert.ok(d.data[0] >= 1 && d.data[0] <= 4 && d.data[1] === 0 && d.data[2] === 0 && d.data[3] === 0);
      assert.equal(d.data.includes(MARKER), false);
    }
  }
  assert.ok(cap.some((d) => d.data[0] === 0x08 && d.data.includes(MARKER)), 'the plain network carried the marker in clear (control)');
  for (const h of hosts) {
    const c = h.dp.network(SECRET)!.counters;
    assert.equal(c.rxDelivered + c.totalRxDrops(), c.rxPackets, 'counter identity');
  }
});

test('plaintext VXLAN for the encrypted VNI is dropped and counted', () => {
  const { hosts, run } = lab();
  const [A, B] = hosts;
  const inner = frame(cmac(1, 1), cmac(0, 1));
  const d = Buffer.alloc(8 + inner.length);
  writeVxlanHeader(d, 0, SECRET);
  inner.copy(d, 8);
  B.udp.injectFrom(ep(A.addr), d);
  run();
  assert.equal(B.dp.network(SECRET)!.counters.rxDropCount('plaintext_on_encrypted'), 1);
  assert.equal(B.taps.get(SECRET)!.takeWritten().length, 0);
});

test('forged and replayed datagrams are dropped as decrypt_failed; the session survives', () => {
  const { hosts, run, net } = lab();
  const [A, B] = hosts;
  A.taps.get(SECRET)!.inject(frame(0xffffffffffff, cmac(0, 1)));
  run();
  B.taps.get(SECRET)!.takeWritten();
  const data = net.capture!.filter((x) => x.data[0] === 4 && x.to.readUInt8(15) === 2 && x.data.length > 32);
  assert.ok(data.length >= 1);
  const before = B.dp.counters.rxDropCount('decrypt_failed');
  B.udp.injectFrom(ep(A.addr), Buffer.from(data[0].data)); // replay
  const forged = Buffer.from(data[0].data);
  forged[forged.length - 1] ^= 1;
  B.udp.injectFrom(ep(A.addr), forged);
  run();
  assert.equal(B.dp.counters.rxDropCount('decrypt_failed'), before + 2);
  assert.equal(B.taps.get(SECRET)!.takeWritten().length, 0);
  A.taps.get(SECRET)!.inject(frame(cmac(1, 1), cmac(0, 1)));
  run();
  assert.equal(B.taps.get(SECRET)!.takeWritten().length, 1);
});

test('a host with another cluster key gets nothing in; its queued frames end as no_session', () => {
  const { hosts, run, clock } = lab({ psk: (h) => pskFromClusterKey(new Uint8Array(32).fill(h === 2 ? 9 : 1)) });
  const [A, , C] = hosts;
  C.taps.get(SECRET)!.inject(frame(cmac(0, 1), cmac(2, 1)));
  for (let i = 0; i < 50; i++) { run(); clock.advance(200); }
  assert.equal(A.taps.get(SECRET)!.takeWritten().length, 0);
  assert.ok(C.dp.network(SECRET)!.counters.txDropCount('no_session') >= 1);
  assert.equal(C.sm.counters.sessionsEstablished, 0);
});

test('one 64-datagram receive batch mixing plain VXLAN, sealed data and a handshake response: every frame delivered with its own bytes', () => {
  const { hosts, run, net, reactor } = lab();
  const [A, B, C] = hosts;
  const keyOf = (h: H): string => Buffer.from(h.key.publicKey).toString('base64');
  // sessions A↔B and A↔C (A initiates), then A forgets B so that its next frame to B waits for a new handshake
  A.taps.get(SECRET)!.inject(frame(0xffffffffffff, cmac(0, 1)));
  run();
  for (const h of hosts) for (const t of h.taps.values()) t.takeWritten();
  A.sm.removePeer(keyOf(B));
  A.sm.setPeer(B.key.publicKey, ep(B.addr));
  // stash what B answers A (its handshake response) and what C seals for A
  const stash: MemoryDatagram[] = [];
  const from = (d: MemoryDatagram, h: H): boolean => d.from.readUInt8(15) === h.addr.split('.').map(Number)[3];
  const toA = (d: MemoryDatagram): boolean => d.to.readUInt8(15) === 1;
  net.filter = (d) => (toA(d) && (from(d, B) || from(d, C)) ? (stash.push(d), 'drop') : 'deliver');
  const queued = frame(cmac(1, 9), cmac(0, 1), Buffer.from('queued-while-handshaking-0123456789'));
  A.taps.get(SECRET)!.inject(queued); // unknown MAC: flooded, sealed for C at once, queued for B
  run();
  const response = stash.filter((d) => from(d, B) && d.data[0] === 2);
  assert.equal(response.length, 1, 'B answered A\'s initiation');
  assert.equal(C.taps.get(SECRET)!.takeWritten().length, 1);
  stash.length = 0;
  const sealedFrames: Buffer[] = [];
  for (let k = 0; k < 40; k++) {
    const f = frame(cmac(0, 1), cmac(2, 1), Buffer.from(`sealed-from-C-${k}-`.padEnd(40 + k, 'x')));
    sealedFrames.push(f);
    C.taps.get(SECRET)!.inject(f);
  }
  run();
  const sealed = stash.filter((d) => from(d, C) && d.data[0] === 4);
  assert.equal(sealed.length, 40);
  net.filter = null;
  // the batch: plain VXLAN in slot 0, 20 sealed, the response, 20 sealed, plain VXLAN to 64
  const plainFrames: Buffer[] = [];
  const plain = (k: number): MemoryDatagram => {
    const inner = frame(0xffffffffffff, cmac(1, 2), Buffer.from(`plain-${k}-`.padEnd(30 + k, 'p')));
    plainFrames.push(inner);
    const d = Buffer.alloc(8 + inner.length);
    writeVxlanHeader(d, 0, PLAIN);
    inner.copy(d, 8);
    return { data: d, from: endpointToRecord(ep(B.addr)), to: A.udp.record };
  };
  const batch: MemoryDatagram[] = [plain(0), ...sealed.slice(0, 20), response[0], ...sealed.slice(20)];
  while (batch.length < 64) batch.push(plain(plainFrames.length));
  for (const d of batch) A.udp.enqueue(d);
  const reads: number[] = [];
  const recv = A.udp.recvBatch.bind(A.udp);
  A.udp.recvBatch = (rb) => { const n = recv(rb); reads.push(n); return n; };
  reactor.run();
  assert.equal(reads[0], 64, 'one receive batch of 64 datagrams');
  const gotPlain = A.taps.get(PLAIN)!.takeWritten();
  const gotSealed = A.taps.get(SECRET)!.takeWritten();
  assert.deepEqual(gotPlain.map((f) => f.toString('hex')), plainFrames.map((f) => f.toString('hex')), 'plain frames intact');
  assert.deepEqual(gotSealed.map((f) => f.toString('hex')), sealedFrames.map((f) => f.toString('hex')), 'sealed frames intact');
  assert.equal(A.dp.counters.rxDropCount('decrypt_failed'), 0);
  // the frame A queued for B went out after the batch, on the new session
  run();
  assert.deepEqual(B.taps.get(SECRET)!.takeWritten().map((f) => f.toString('hex')), [queued.toString('hex')]);
});
