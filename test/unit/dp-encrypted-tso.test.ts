/**
 * Encrypted fast path: a vnet TAP on an encrypted network hands each TSO super-frame (with its
 * VXLAN header) to `cipher.sealSuperFrame` (SessionManager, native AEAD). Two Datapaths over the
 * in-memory underlay (memory-io twins, fake clock), a scripted vnet TAP on the sender. Checked: the
 * super-frame leaves as N sealed datagrams (never plaintext VXLAN, never the payload in clear),
 * in order after what was queued before it; the receiver opens them to exactly the segments the
 * plaintext path cuts (addon gsoSegment, the reference); txPackets/txBytes = datagrams on the wire;
 * no session → `no_session` and nothing on the wire; a cipher without sealSuperFrame is refused.
 * Skipped (with the reason) when the addon lacks aeadSealTso or gsoSegment.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { FakeClock } from '../../src/clock';
import type { Endpoint, NetworkConfig } from '../../src/config/types';
import type { CipherBatch, PacketCipher } from '../../src/dataplane/cipher-seam';
import { Datapath } from '../../src/dataplane/datapath';
import { ETHERTYPE_IPV4, writeEthHeader } from '../../src/dataplane/ethernet';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { loadNativeAead } from '../../src/crypto/aead';
import { cryptoReady, generateHostKey } from '../../src/crypto/keys';
import { SessionManager, pskFromClusterKey } from '../../src/crypto/session';
import { VnetTwin, tcpSuperFrame } from '../helpers/vnet';

const fns = loadNativeAead() as unknown as { aeadSealTso?: unknown } | null;
type Seg = (f: Uint8Array, t: number, mss: number, p: Uint8Array, out: Uint8Array, l: Uint32Array) => number;
let gsoSegment: Seg | undefined;
try {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  gsoSegment = (require('../../src/native/addon') as { loadAddon(): { gsoSegment?: Seg } }).loadAddon().gsoSegment;
} catch { /* not built */ }
const skip = !fns || typeof fns.aeadSealTso !== 'function' ? 'addon without aeadSealTso' : !gsoSegment ? 'addon without gsoSegment' : false;

const PORT = 4789;
const VNI = 44;
const A_ADDR = '198.18.0.1';
const B_ADDR = '198.18.0.2';
const ep = (address: string): Endpoint => ({ address, port: PORT, family: 4 });
const cfg: NetworkConfig = { name: 'secret', vni: VNI, bridge: 'br-s', tap: 'vx-s', mtu: 1398, encrypted: true };
const MAC_A = 0x020000000001;
const MAC_B = 0x020000000002;
const GSO_TCPV4 = 1;
const MSS = 1340;

function udpFrame(marker: Buffer): Buffer {
  const f = Buffer.alloc(14 + 20 + marker.length);
  writeEthHeader(f, 0, MAC_B, MAC_A, ETHERTYPE_IPV4);
  f[14] = 0x45;
  f.writeUInt16BE(20 + marker.length, 16);
  f[22] = 64;
  f[23] = 17;
  f.writeUInt32BE(0xc6130001, 26);
  f.writeUInt32BE(0xc6130002, 30);
  marker.copy(f, 34);
  return f;
}

/** A TCP/IPv4 super-frame A → B whose payload is a repeated marker (must never appear on the wire). */
function markedSuperFrame(payload: number, marker: Buffer): Buffer {
  return tcpSuperFrame(payload, (i) => marker[i % marker.length]);
}

function lab(withCipher = true) {
  const clock = new FakeClock(0);
  const reactor = new MemoryReactor();
  const net = new MemoryUdpNetwork({ reactor, clock });
  net.capture = [];
  const vtap = new VnetTwin('vx-s');
  const btap = new MemoryTap({ name: 'vx-s', mac: Buffer.from([2, 0xee, 0, 0, 0, 2]), reactor });
  const mk = (addr: string, tap: VnetTwin | MemoryTap) => {
    const dp = new Datapath({
      networks: [{ config: cfg, tap }], udp: net.attach(addr, PORT, 4), clock,
      underlay: { family: 4, mtu: 1500, port: PORT, address: addr }, peers: [ep(addr === A_ADDR ? B_ADDR : A_ADDR)],
      fdb: { ageingSeconds: 300, maxEntries: 1024 },
    });
    dp.start();
    return dp;
  };
  const a = mk(A_ADDR, vtap);
  const b = mk(B_ADDR, btap);
  const ka = generateHostKey();
  const kb = generateHostKey();
  const psk = pskFromClusterKey(new Uint8Array(32).fill(1));
  const opts = { psks: [psk], wallClock: () => 1.8e12 + clock.now(), jitter: () => 0, backend: 'native' as const };
  const sa = new SessionManager({ hostKey: ka, ...opts });
  const sb = new SessionManager({ hostKey: kb, ...opts });
  if (withCipher) {
    a.setCipher(sa);
    b.setCipher(sb);
  }
  sa.setPeer(kb.publicKey, ep(B_ADDR));
  sb.setPeer(ka.publicKey, ep(A_ADDR));
  a.fdbSetRemote(VNI, MAC_B, ep(B_ADDR));
  const run = (): void => {
    for (let i = 0; i < 10; i++) {
      vtap.fire();
      reactor.run();
      clock.advance(10);
    }
  };
  const stop = (): void => {
    a.stop();
    b.stop();
    sa.stop();
    sb.stop();
  };
  return { net, vtap, btap, a, b, run, stop };
}

test('crypto ready', async () => { await cryptoReady(); });

test('encrypted super-frame: sealed as N datagrams after what was queued, opened to exactly the plaintext segments, counters = wire', { skip }, () => {
  const { net, vtap, btap, a, b, run, stop } = lab();
  try {
    const marker = Buffer.from('enc-tso-marker-0123456789abcdef');
    // a plain frame first: queued by the cipher during the handshake, then sent sealed
    vtap.inject(udpFrame(marker));
    run();
    const first = btap.takeWritten();
    assert.equal(first.length, 1, 'the plain frame crossed once the session existed');
    assert.ok(first[0].includes(marker));
    const ac = a.network(VNI)!.counters;
    const bc = b.network(VNI)!.counters;
    const tx0 = ac.txPackets;
    const txb0 = ac.txBytes;
    const rx0 = bc.rxPackets;
    net.capture!.length = 0;

    // a small frame queued before the super-frame in the same TAP batch, then the super-frame
    const before = udpFrame(Buffer.from('before-the-super-frame'));
    const sf = markedSuperFrame(20_000, marker);
    vtap.inject(before);
    vtap.inject(sf, GSO_TCPV4, MSS);
    run();

    const vx = Uint8Array.from([0x08, 0, 0, 0, (VNI >>> 16) & 0xff, (VNI >>> 8) & 0xff, VNI & 0xff, 0]);
    const ref = new Uint8Array(96 * 1024);
    const refLens = new Uint32Array(257);
    const n = gsoSegment!(sf, GSO_TCPV4, MSS, vx, ref, refLens);
    assert.equal(n, Math.ceil(20_000 / MSS));
    const stride = refLens[refLens.length - 1];

    const toB = net.endpoint(B_ADDR, PORT)!.record;
    const wire = net.capture!.filter((d) => d.to.equals(toB));
    assert.equal(wire.length, 1 + n, 'one datagram for the small frame, N for the super-frame');
    for (const d of wire) {
      assert.equal(d.data[0], 4, 'a sealed data message, never plaintext VXLAN');
      assert.equal(d.data.includes(marker.subarray(0, 12)), false, 'payload never in clear');
    }
    const got = btap.takeWritten();
    assert.equal(got.length, 1 + n);
    assert.deepEqual(got[0], before, 'what was queued before the super-frame arrives first');
    for (let i = 0; i < n; i++) {
      const seg = Buffer.from(ref.subarray(i * stride + 8, i * stride + refLens[i]));
      assert.deepEqual(got[1 + i], seg, `segment ${i} = the plaintext path's segment`);
    }
    const sealedBytes = wire.reduce((s, d) => s + d.data.length, 0);
    assert.equal(ac.txPackets - tx0, 1 + n, 'txPackets = datagrams on the wire');
    assert.equal(ac.txBytes - txb0, sealedBytes, 'txBytes = sealed bytes on the wire');
    assert.equal(bc.rxPackets - rx0, 1 + n);
    assert.equal(ac.txDropCount('no_session'), 0);
    assert.equal(ac.txDropCount('oversize_frame'), 0);
  } finally {
    stop();
  }
});

test('encrypted super-frame without a session or without a cipher: counted no_session, nothing on the wire', { skip }, () => {
  for (const withCipher of [true, false]) {
    const { net, vtap, a, run, stop } = lab(withCipher);
    try {
      // partition the underlay so no handshake completes
      net.partition([A_ADDR], [B_ADDR]);
      vtap.inject(markedSuperFrame(8_000, Buffer.from('no-session-marker')), GSO_TCPV4, MSS);
      run();
      const c = a.network(VNI)!.counters;
      assert.equal(c.txDropCount('no_session'), 1, `super-frame dropped as no_session (cipher: ${withCipher})`);
      assert.equal(c.txPackets, 0);
      assert.equal(net.capture!.some((d) => d.data[0] === 0x08), false, 'no plaintext VXLAN on the wire');
    } finally {
      stop();
    }
  }
});

test('a cipher without sealSuperFrame is refused while an encrypted network has a vnet TAP', () => {
  const { a, stop } = lab(false);
  try {
    const perDatagram: PacketCipher = {
      headroom: 16, tailroom: 16, isEnvelope: () => false,
      sealBatch: (_b: CipherBatch) => {}, openBatch: (_b: CipherBatch) => {},
    };
    assert.throws(() => a.setCipher(perDatagram), RangeError);
  } finally {
    stop();
  }
});
