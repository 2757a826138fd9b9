/**
 * The data path's fast path (vnet TAP → one decision per TSO super-frame → sendBatchGso) over
 * scripted twins of the two fast-path seams: `VnetTwin` hands over frames with their virtio gso
 * type and MSS as a vnet TAP does, `GsoUdpTwin` records the descriptors and gso arrays given to
 * `sendBatchGso`. Checked: VXLAN header in place, one FDB decision per super-frame, flood
 * replication (descriptors share the bytes and the gso info), wire-size rules (segments must fit;
 * plain frames over MTU + 14 dropped), counters (txPackets = segments on the wire, exactly), the
 * fallback when the transport cannot segment, and that an encrypted network takes a vnet TAP only
 * with a cipher that has sealSuperFrame (its sealing: dp-encrypted-tso.test.ts). The
 * segment and byte counting is also checked against the addon's own segmenter (when built).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/clock';
import type { Endpoint, NetworkConfig } from '../../src/config/types';
import { recordToEndpoint } from '../../src/dataplane/addr';
import { txDropIndex } from '../../src/dataplane/counters';
import { Datapath } from '../../src/dataplane/datapath';
import { isGsoUdp, isVnetTap } from '../../src/dataplane/seams';
import { tsoHeaderLen } from '../../src/dataplane/tso';
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, writeEthHeader } from '../../src/dataplane/ethernet';
import type { TxBatch } from '../../src/dataplane/seams';
import { ADDR_LEN } from '../../src/dataplane/seams';
import { loadAddon } from '../../src/native/addon';
import { addonSkipReason } from './native-helpers';
import { VnetTwin } from '../helpers/vnet';

const PORT = 4789;
const VNI = 42;
const ME = '198.18.0.1';
const PEERS = ['198.18.0.2', '198.18.0.3'];
const ep = (address: string): Endpoint => ({ address, port: PORT, family: 4 });
const GSO_TCPV4 = 1;
const GSO_TCPV6 = 4;
const GSO_ECN = 0x80;

interface Sent { bytes: Buffer; type: number; mss: number; to: string; off: number; src: number }

/** A scripted UDP transport recording what it is asked to send (with or without `sendBatchGso`). */
class UdpTwin {
  readonly family = 4 as const;
  readonly sourceCount: number;
  readonly sent: Sent[] = [];
  gsoCalls = 0;
  plainCalls = 0;
  /** Accept at most this many descriptors per call (then "EAGAIN"). */
  limit = Infinity;
  constructor(sourceCount = 4) { this.sourceCount = sourceCount; }
  recvBatch(): number { return 0; }
  sendBatch(b: TxBatch): number {
    this.plainCalls++;
    return this.record(b, null);
  }
  onReadable(): void {}
  close(): void {}
  protected record(b: TxBatch, gso: Uint16Array | null): number {
    const n = Math.min(b.count, this.limit);
    for (let j = 0; j < n; j++) {
      const e = recordToEndpoint(b.addrs, j * ADDR_LEN);
      this.sent.push({
        bytes: Buffer.from(b.slab.subarray(b.offs[j], b.offs[j] + b.lens[j])), off: b.offs[j], src: b.srcIdx[j],
        type: gso ? gso[2 * j] : 0, mss: gso ? gso[2 * j + 1] : 0, to: e.address,
      });
    }
    return n;
  }
}

class GsoUdpTwin extends UdpTwin {
  prefixLens: number[] = [];
  sendBatchGso(b: TxBatch, gso: Uint16Array, prefixLen = 8): number {
    this.gsoCalls++;
    this.prefixLens.push(prefixLen);
    return this.record(b, gso);
  }
}

const netCfg = (encrypted = false, mtu = 1450): NetworkConfig => ({ name: 'blue', vni: VNI, bridge: 'br0', tap: 'vx-blue', mtu, encrypted });

function setup(opts: { gso?: boolean; mtu?: number; underlayMtu?: number } = {}) {
  const tap = new VnetTwin();
  const udp = opts.gso === false ? new UdpTwin() : new GsoUdpTwin();
  const dp = new Datapath({
    networks: [{ config: netCfg(false, opts.mtu ?? 1450), tap }], udp, clock: new FakeClock(0),
    underlay: { family: 4, mtu: opts.underlayMtu ?? 1500, port: PORT, address: ME }, peers: PEERS.map(ep),
  });
  dp.start();
  return { tap, udp, dp, c: dp.network(VNI)!.counters };
}

const A = 0x020000000101; // local container
const B = 0x020000000202; // remote container

/** A TCP frame (Ethernet + IPv4/IPv6 + TCP with `optLen` option bytes + payload) as the kernel hands a TSO super-frame over. */
function tcpFrame(o: { dst?: number; src?: number; v6?: boolean; payload: number; optLen?: number; ipOpt?: number; seed?: number;
  tags?: number[] }): Buffer {
  if (o.tags && o.tags.length > 0) {
    // VLAN tags (TPID 0x8100 / 0x88a8, VID 100 + i) between the MAC addresses and the EtherType
    const plain = tcpFrame({ ...o, tags: undefined });
    const tags = Buffer.alloc(4 * o.tags.length);
    o.tags.forEach((tpid, i) => {
      tags.writeUInt16BE(tpid, 4 * i);
      tags.writeUInt16BE(100 + i, 4 * i + 2);
    });
    return Buffer.concat([plain.subarray(0, 12), tags, plain.subarray(12)]);
  }
  const v6 = !!o.v6;
  const ipLen = v6 ? 40 : 20 + (o.ipOpt ?? 0);
  const tcpLen = 20 + (o.optLen ?? 0);
  const f = Buffer.alloc(14 + ipLen + tcpLen + o.payload);
  writeEthHeader(f, 0, o.dst ?? B, o.src ?? A, v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
  if (v6) {
    f[14] = 0x60;
    f.writeUInt16BE(tcpLen + o.payload, 18);
    f[20] = 6;
    f[21] = 64;
    f.writeUInt32BE(0x20010002, 22);
    f.writeUInt32BE(0x20010002, 38);
    f[37] = 1;
    f[53] = 2;
  } else {
    f[14] = 0x40 | (ipLen / 4);
    f.writeUInt16BE(ipLen + tcpLen + o.payload, 16);
    f[20] = 0x40; // DF
    f[22] = 64;
    f[23] = 6;
    f.writeUInt32BE(0xc6130101, 26);
    f.writeUInt32BE(0xc6130202, 30);
  }
  const t = 14 + ipLen;
  f.writeUInt16BE(40000, t);
  f.writeUInt16BE(5001, t + 2);
  f.writeUInt32BE(1000, t + 4);
  f[t + 12] = (tcpLen / 4) << 4;
  f[t + 13] = 0x18;
  let x = o.seed ?? 1;
  for (let i = t + tcpLen; i < f.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    f[i] = x >>> 24;
  }
  return f;
}

const vxlanOk = (d: Buffer) => d[0] === 0x08 && d[1] === 0 && d[2] === 0 && d[3] === 0 && d.readUIntBE(4, 3) === VNI && d[7] === 0;

describe('datapath fast path: seams are picked by what the devices report', () => {
  it('recognises vnet TAPs and GSO transports; plain TAPs keep the phase-1 path', () => {
    assert.equal(isVnetTap(new VnetTwin()), true);
    assert.equal(isVnetTap({ ...new VnetTwin(), vnetHdr: false } as unknown as VnetTwin), false);
    assert.equal(isGsoUdp(new GsoUdpTwin()), true);
    assert.equal(isGsoUdp(new UdpTwin()), false);
  });

  it('an encrypted network takes a vnet TAP only with a cipher that has sealSuperFrame', () => {
    const dp = new Datapath({
      networks: [{ config: netCfg(true), tap: new VnetTwin() }], udp: new GsoUdpTwin(), clock: new FakeClock(0),
      underlay: { family: 4, mtu: 1500, port: PORT, address: ME },
    });
    const perDatagram = { headroom: 16, tailroom: 16, isEnvelope: () => false, sealBatch: () => {}, openBatch: () => {} };
    assert.throws(() => dp.setCipher(perDatagram), RangeError);
    dp.setCipher({ ...perDatagram, sealSuperFrame: () => 0 });
    dp.setCipher(null);
    // and with such a cipher already set, an encrypted vnet network is refused
    const dp2 = new Datapath({ networks: [], udp: new GsoUdpTwin(), clock: new FakeClock(0), underlay: { family: 4, mtu: 1500, port: PORT, address: ME } });
    dp2.setCipher(perDatagram);
    assert.throws(() => dp2.addNetwork({ config: netCfg(true), tap: new VnetTwin() }), RangeError);
  });
});

describe('datapath fast path: outbound super-frames', () => {
  it('a TSO super-frame to a known remote MAC: one descriptor, VXLAN header in place, gso info passed, counted per segment', () => {
    const { tap, udp, dp, c } = setup();
    dp.fdbSetRemote(VNI, B, ep(PEERS[1]));
    const f = tcpFrame({ payload: 60000, optLen: 12 });
    tap.inject(f, GSO_TCPV4, 1398);
    tap.fire();
    assert.equal(udp.sent.length, 1);
    const s = udp.sent[0];
    assert.equal(s.to, PEERS[1]);
    assert.equal(s.type, GSO_TCPV4);
    assert.equal(s.mss, 1398);
    assert.ok(vxlanOk(s.bytes));
    assert.deepEqual(s.bytes.subarray(8), f, 'the super-frame follows the VXLAN header untouched');
    assert.deepEqual((udp as GsoUdpTwin).prefixLens, [8]);
    assert.equal(tap.plainReads, 0);
    const hlen = 14 + 20 + 32;
    const segs = Math.ceil(60000 / 1398);
    assert.equal(c.txFrames, 1);
    assert.equal(c.txFrameBytes, f.length);
    assert.equal(c.txPackets, segs);
    assert.equal(c.txBytes, segs * (8 + hlen) + 60000);
    const pc = dp.peerCounters().get(`${PEERS[1]}:${PORT}`)!;
    assert.equal(pc.txPackets, segs);
    assert.equal(pc.txBytes, c.txBytes);
    assert.equal(c.txDrops.reduce((a, b) => a + b, 0), 0);
  });

  it('IPv6 super-frames (and the ECN flag) pass too; plain frames in the same batch go as plain descriptors', () => {
    const { tap, udp, dp, c } = setup();
    dp.fdbSetRemote(VNI, B, ep(PEERS[0]));
    const big = tcpFrame({ v6: true, payload: 30000, optLen: 12 });
    const small = tcpFrame({ payload: 100 });
    tap.inject(big, GSO_TCPV6 | GSO_ECN, 1378);
    tap.inject(small);
    tap.fire();
    assert.equal(udp.sent.length, 2);
    assert.equal(udp.sent[0].type, GSO_TCPV6 | GSO_ECN);
    assert.equal(udp.sent[1].type, 0);
    assert.equal(udp.sent[1].mss, 0);
    assert.equal(udp.gsoCalls, 1, 'one send call for the batch');
    const segs = Math.ceil(30000 / 1378);
    assert.equal(c.txPackets, segs + 1);
    assert.equal(c.txBytes, segs * (8 + 14 + 40 + 32) + 30000 + small.length + 8);
  });

  it('floods an unknown destination: one descriptor per peer, same bytes, same gso info; one FDB decision', () => {
    const { tap, udp, dp, c } = setup();
    const f = tcpFrame({ payload: 20000 });
    tap.inject(f, GSO_TCPV4, 1410);
    tap.fire();
    assert.equal(udp.sent.length, 2);
    assert.deepEqual(udp.sent.map((s) => s.to).sort(), [...PEERS].sort());
    assert.equal(udp.sent[0].off, udp.sent[1].off, 'replicated descriptors share the slab bytes');
    for (const s of udp.sent) {
      assert.equal(s.type, GSO_TCPV4);
      assert.equal(s.mss, 1410);
      assert.deepEqual(s.bytes.subarray(8), f);
    }
    assert.equal(c.txFlooded, 1);
    assert.equal(c.txPackets, 2 * Math.ceil(20000 / 1410));
    // the source was learned as local: a frame to it is not sent
    assert.equal(dp.network(VNI)!.fdb.isLocal(Math.floor(A / 2 ** 32), A >>> 0), true);
  });

  it('a local destination is not sent, once per super-frame', () => {
    const { tap, udp, c } = setup();
    tap.inject(tcpFrame({ src: B, dst: 0xffffffffffff, payload: 10 })); // B learned as local
    tap.inject(tcpFrame({ dst: B, payload: 20000 }), GSO_TCPV4, 1400);
    tap.fire();
    assert.equal(c.txDrops[txDropIndex.local_dst], 1);
    assert.equal(udp.sent.length, 2, 'only the broadcast was flooded');
  });

  it('wire-size rules: segments must fit the network and underlay MTU; plain frames over MTU + 14 are dropped', () => {
    const { tap, udp, dp, c } = setup({ mtu: 1450 });
    dp.fdbSetRemote(VNI, B, ep(PEERS[0]));
    // hlen 54 + mss 1410 = 1464 = MTU + 14: fits exactly
    tap.inject(tcpFrame({ payload: 5000 }), GSO_TCPV4, 1410);
    // 1411: one byte over
    tap.inject(tcpFrame({ payload: 5000 }), GSO_TCPV4, 1411);
    // a plain (non-GSO) frame of MTU + 15
    tap.inject(tcpFrame({ payload: 1451 - 40 }));
    // a plain frame of exactly MTU + 14
    tap.inject(tcpFrame({ payload: 1450 - 40 }));
    tap.fire();
    assert.equal(c.txDrops[txDropIndex.oversize_frame], 2);
    assert.equal(udp.sent.length, 2);
    assert.equal(udp.sent[0].mss, 1410);
    assert.equal(udp.sent[1].bytes.length, 8 + 1464);
  });

  it('super-frames the transport could not cut are dropped as oversize (bad type, MSS 0, fragments, short headers, too many segments)', () => {
    const { tap, udp, dp, c } = setup();
    dp.fdbSetRemote(VNI, B, ep(PEERS[0]));
    tap.inject(tcpFrame({ payload: 4000 }), GSO_TCPV6, 1400); // type/family mismatch
    tap.inject(tcpFrame({ payload: 4000 }), 3 /* UDP (UFO) */, 1400);
    tap.inject(tcpFrame({ payload: 4000 }), GSO_TCPV4, 0);
    const frag = tcpFrame({ payload: 4000 });
    frag[20] = 0x20; // MF
    tap.inject(frag, GSO_TCPV4, 1400);
    const shortIp = tcpFrame({ payload: 4000 });
    shortIp.writeUInt16BE(30, 16); // IP total length shorter than IP + TCP headers
    tap.inject(shortIp, GSO_TCPV4, 1400);
    tap.inject(tcpFrame({ payload: 60000 }), GSO_TCPV4, 200); // 300 segments > 256
    tap.inject(tcpFrame({ payload: 4000 }).subarray(0, 40), GSO_TCPV4, 1400); // truncated headers
    tap.fire();
    assert.equal(c.txDrops[txDropIndex.oversize_frame], 7);
    assert.equal(c.txDrops[txDropIndex.runt_frame], 0);
    assert.equal(udp.sent.length, 0);
  });

  it('without a segmenting transport, super-frames are dropped (oversize) and plain frames still go with sendBatch', () => {
    const { tap, udp, dp, c } = setup({ gso: false });
    dp.fdbSetRemote(VNI, B, ep(PEERS[0]));
    tap.inject(tcpFrame({ payload: 20000 }), GSO_TCPV4, 1400);
    tap.inject(tcpFrame({ payload: 500 }));
    tap.fire();
    assert.equal(c.txDrops[txDropIndex.oversize_frame], 1);
    assert.equal(udp.sent.length, 1);
    assert.equal(udp.plainCalls, 1);
    assert.equal(c.txPackets, 1);
  });

  it('descriptors the transport did not take are counted as send_failed per segment', () => {
    const { tap, udp, dp, c } = setup();
    dp.fdbSetRemote(VNI, B, ep(PEERS[0]));
    udp.limit = 1;
    tap.inject(tcpFrame({ payload: 14000 }), GSO_TCPV4, 1400); // 10 segments, sent
    tap.inject(tcpFrame({ payload: 7000 }), GSO_TCPV4, 1400); // 5 segments, not taken
    tap.fire();
    assert.equal(c.txPackets, 10);
    assert.equal(c.txDrops[txDropIndex.send_failed], 5);
  });

  it('a full batch of 64 super-frames plus more is read in several batches, nothing lost', () => {
    const { tap, udp, dp, c } = setup();
    dp.fdbSetRemote(VNI, B, ep(PEERS[0]));
    for (let i = 0; i < 150; i++) tap.inject(tcpFrame({ payload: 65000 - 14 - 20 - 20 - i, seed: i }), GSO_TCPV4, 1400);
    tap.fire();
    assert.equal(udp.sent.length, 150);
    for (let i = 0; i < 150; i++) assert.equal(udp.sent[i].bytes.length, 8 + 65000 - i);
    assert.equal(c.txFrames, 150);
  });
});

/** Largest tagged frame of `setup()`: min(MTU 1450 + 14 + 4, underlay 1500 − 20 − 8 − 8). */
const TAGGED_MAX = 1464;

describe('datapath fast path: VLAN-tagged super-frames', () => {
  for (const [name, tags, v6] of [
    ['802.1Q', [0x8100], false], ['802.1ad + 802.1Q (QinQ)', [0x88a8, 0x8100], false], ['802.1Q over IPv6', [0x8100], true],
  ] as const) {
    it(`a ${name}-tagged TSO super-frame goes out as one GSO descriptor, counted per segment (not oversize_frame)`, () => {
      const { tap, udp, c } = setup();
      const f = tcpFrame({ payload: 20000, v6, tags: [...tags] });
      const hlen = 14 + 4 * tags.length + (v6 ? 40 : 20) + 20;
      const m = TAGGED_MAX - hlen; // the largest MSS whose segments fit
      tap.inject(f, v6 ? GSO_TCPV6 : GSO_TCPV4, m);
      tap.fire();
      assert.equal(c.txDrops[txDropIndex.oversize_frame], 0);
      assert.equal(udp.sent.length, 2, 'flooded to both peers, once each');
      const segs = Math.ceil(20000 / m);
      assert.equal(c.txPackets, 2 * segs);
      assert.equal(c.txBytes, 2 * (segs * (8 + hlen) + 20000));
      for (const s of udp.sent) assert.equal(s.type, v6 ? GSO_TCPV6 : GSO_TCPV4);
    });
  }

  it('more than two tags, or a segment over the tagged frame limit, is oversize_frame', () => {
    const { tap, udp, c } = setup();
    tap.inject(tcpFrame({ payload: 5000, tags: [0x88a8, 0x8100, 0x8100] }), GSO_TCPV4, 1000);
    tap.inject(tcpFrame({ payload: 5000, tags: [0x8100] }), GSO_TCPV4, TAGGED_MAX - (14 + 4 + 40) + 1);
    tap.fire();
    assert.equal(udp.sent.length, 0);
    assert.equal(c.txDrops[txDropIndex.oversize_frame], 2);
  });

  it('tsoHeaderLen agrees with the addon segmenter on tagged frames (one or two tags, IPv4 and IPv6)', { skip: addonSkipReason() }, () => {
    const addon = loadAddon();
    const out = Buffer.alloc(512 * 1024);
    const segLens = new Uint32Array(257);
    const prefix = Buffer.from([8, 0, 0, 0, 0, 0, 42, 0]);
    let k = 0;
    for (const tags of [[0x8100], [0x88a8], [0x88a8, 0x8100], [0x8100, 0x8100]]) {
      for (const v6 of [false, true]) {
        for (const payload of [0, 1, 1000, 30001]) {
          const f = tcpFrame({ v6, payload, optLen: 12, tags, seed: ++k });
          const type = v6 ? GSO_TCPV6 : GSO_TCPV4;
          const mss = 1200;
          const n = addon.gsoSegment(f, type, mss, prefix, out, segLens);
          const info = { payload: -1 };
          const hlen = tsoHeaderLen(f, 0, f.length, type, info);
          assert.ok(n > 0, `addon cuts ${tags.map((t) => t.toString(16))} v6=${v6} payload=${payload}`);
          assert.equal(hlen, 14 + 4 * tags.length + (v6 ? 40 : 20) + 32);
          assert.equal(info.payload, payload);
          assert.equal(n, payload === 0 ? 1 : Math.ceil(payload / mss));
          let bytes = 0;
          for (let i = 0; i < n; i++) bytes += segLens[i];
          assert.equal(bytes, n * (8 + hlen) + payload);
        }
      }
    }
  });
});

describe('datapath fast path: segment counting matches the addon segmenter', () => {
  it('tsoHeaderLen + ceil(payload / MSS) gives the addon gsoSegment count and bytes (random frames and MSS)', { skip: addonSkipReason() }, () => {
    const addon = loadAddon();
    const out = Buffer.alloc(512 * 1024);
    const segLens = new Uint32Array(257);
    const prefix = Buffer.from([8, 0, 0, 0, 0, 0, 42, 0]);
    let x = 12345;
    const rnd = (n: number) => {
      x = (x * 1103515245 + 12345) >>> 0;
      return x % n;
    };
    for (let k = 0; k < 300; k++) {
      const v6 = rnd(2) === 1;
      const f = tcpFrame({ v6, payload: rnd(64000), optLen: 4 * rnd(11), ipOpt: v6 ? 0 : 4 * rnd(3), seed: k });
      const mss = 256 + rnd(9000);
      const type = v6 ? GSO_TCPV6 : GSO_TCPV4;
      const n = addon.gsoSegment(f, type, mss, prefix, out, segLens);
      const hlen = tsoHeaderLen(f, 0, f.length, type);
      assert.ok(n > 0 && hlen > 0, `frame ${k}`);
      const payload = f.length - hlen;
      const segs = payload === 0 ? 1 : Math.ceil(payload / mss);
      assert.equal(n, segs, `segments of frame ${k}`);
      let bytes = 0;
      for (let i = 0; i < n; i++) bytes += segLens[i];
      assert.equal(bytes, segs * (8 + hlen) + payload, `bytes of frame ${k}`);
      // and what one refuses, the other refuses
      const bad = Buffer.from(f);
      bad[v6 ? 20 : 23] = 17;
      assert.equal(tsoHeaderLen(bad, 0, bad.length, type), -1);
      assert.equal(addon.gsoSegment(bad, type, mss, prefix, out, segLens), -1);
    }
  });
});
