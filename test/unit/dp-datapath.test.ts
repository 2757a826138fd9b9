/**
 * The data path end to end over the in-memory twins: three hosts (198.18.0.1–3) on one memory
 * underlay, each with networks blue (VNI 42) and red (VNI 43), deterministic readiness.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/clock';
import type { Endpoint, NetworkConfig } from '../../src/config/types';
import { RX_DROP_REASONS, type NetworkCounters } from '../../src/dataplane/counters';
import {
  CIPHER_CONSUMED, CIPHER_FAILED, CIPHER_OK, type CipherBatch, type CipherHost, type PacketCipher,
} from '../../src/dataplane/cipher-seam';
import { Datapath } from '../../src/dataplane/datapath';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, macToString, parseMac, writeEthHeader } from '../../src/dataplane/ethernet';
import { MemoryReactor, MemoryTap, MemoryUdp, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { icmpv6ChecksumOk } from '../../src/dataplane/neigh';
import { VXLAN_RESERVED_BIT_POSITIONS, writeVxlanHeader } from '../../src/dataplane/vxlan';
import { recordToEndpoint } from '../../src/dataplane/addr';

const PORT = 4789;
const ADDRS = ['198.18.0.1', '198.18.0.2', '198.18.0.3', '198.18.0.4', '198.18.0.5', '198.18.0.6'];
const ep = (address: string, port = PORT): Endpoint => ({ address, port, family: 4 });
const BLUE = 42;
const RED = 43;
const GREEN = 44; // encrypted

function netCfg(name: string, vni: number, encrypted = false, mtu = 1450): NetworkConfig {
  return { name, vni, bridge: `br-${name}`, tap: `vx-${name}`, mtu, encrypted };
}

interface Host {
  addr: string;
  udp: MemoryUdp;
  dp: Datapath;
  taps: Map<number, MemoryTap>;
}

function lab(opts: { hosts?: number; green?: boolean; sourceCount?: number; batchSize?: number; maxEntries?: number } = {}) {
  const clock = new FakeClock(0);
  const reactor = new MemoryReactor();
  const net = new MemoryUdpNetwork({ reactor, clock });
  net.capture = [];
  const hosts: Host[] = [];
  const n = opts.hosts ?? 3;
  for (let h = 0; h < n; h++) {
    const addr = ADDRS[h];
    const udp = net.attach(addr, PORT, opts.sourceCount ?? 4);
    const taps = new Map<number, MemoryTap>();
    const cfgs = [netCfg('blue', BLUE), netCfg('red', RED)];
    if (opts.green) cfgs.push(netCfg('green', GREEN, true));
    const networks = cfgs.map((config) => {
      const tap = new MemoryTap({ name: config.tap, mac: Buffer.from([0x02, 0xee, 0, 0, h, config.vni]), reactor });
      taps.set(config.vni, tap);
      return { config, tap };
    });
    const dp = new Datapath({
      networks, udp, clock,
      underlay: { family: 4, mtu: 1500, port: PORT, address: addr },
      peers: ADDRS.slice(0, n).map((a) => ep(a)), // includes self: must be skipped
      fdb: { ageingSeconds: 300, maxEntries: opts.maxEntries ?? 16384 },
      batchSize: opts.batchSize,
    });
    dp.start();
    hosts.push({ addr, udp, dp, taps });
  }
  return { clock, reactor, net, hosts, run: () => reactor.run() };
}

/** Container MACs: host h, index i. */
const cmac = (h: number, i: number) => 0x020000000000 + h * 256 + i;

function ipv4Frame(dst: number, src: number, opts: { srcIp?: number; dstIp?: number; sport?: number; dport?: number; payload?: number; vlan?: number } = {}): Buffer {
  const payload = opts.payload ?? 16;
  const tag = opts.vlan !== undefined ? 4 : 0;
  const f = Buffer.alloc(14 + tag + 28 + payload);
  writeEthHeader(f, 0, dst, src, opts.vlan !== undefined ? 0x8100 : ETHERTYPE_IPV4);
  let o = 14;
  if (opts.vlan !== undefined) {
    f.writeUInt16BE(opts.vlan, 14);
    f.writeUInt16BE(ETHERTYPE_IPV4, 16);
    o = 18;
  }
  f[o] = 0x45;
  f.writeUInt16BE(28 + payload, o + 2);
  f[o + 8] = 64;
  f[o + 9] = 17;
  f.writeUInt32BE(opts.srcIp ?? 0xc6130001, o + 12);
  f.writeUInt32BE(opts.dstIp ?? 0xc6130002, o + 16);
  f.writeUInt16BE(opts.sport ?? 1000, o + 20);
  f.writeUInt16BE(opts.dport ?? 2000, o + 22);
  f.writeUInt16BE(8 + payload, o + 24);
  for (let i = 0; i < payload; i++) f[o + 28 + i] = i & 0xff;
  return f;
}

function arpRequest(src: number, spa: number, tpa: number): Buffer {
  const f = Buffer.alloc(42);
  writeEthHeader(f, 0, 0xffffffffffff, src, ETHERTYPE_ARP);
  f.writeUInt16BE(1, 14);
  f.writeUInt16BE(0x0800, 16);
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(1, 20);
  f.writeUIntBE(src, 22, 6);
  f.writeUInt32BE(spa, 28);
  f.writeUInt32BE(tpa, 38);
  return f;
}

function neighSolicit(src: number, srcIp: Buffer, target: Buffer): Buffer {
  const f = Buffer.alloc(14 + 40 + 32);
  const mcast = 0x3333ff000000 + target.readUIntBE(13, 3);
  writeEthHeader(f, 0, mcast, src, ETHERTYPE_IPV6);
  f[14] = 0x60;
  f.writeUInt16BE(32, 18);
  f[20] = 58;
  f[21] = 255;
  srcIp.copy(f, 22);
  Buffer.from('ff0200000000000000000001ff000000', 'hex').copy(f, 38);
  target.copy(f, 38 + 13, 13, 16);
  f[54] = 135;
  target.copy(f, 62);
  f[78] = 1; // source link-layer address option
  f[79] = 1;
  f.writeUIntBE(src, 80, 6);
  return f;
}

/** A VXLAN datagram carrying `inner` for `vni`. */
function vx(vni: number, inner: Buffer): Buffer {
  const d = Buffer.alloc(8 + inner.length);
  writeVxlanHeader(d, 0, vni);
  inner.copy(d, 8);
  return d;
}

function identity(c: NetworkCounters): void {
  assert.equal(c.rxDelivered + c.totalRxDrops(), c.rxPackets, 'rxDelivered + Σ rxDrops = rxPackets');
}

const dstMac = (f: Buffer) => f.readUIntBE(0, 6);
const srcMac = (f: Buffer) => f.readUIntBE(6, 6);

describe('datapath: flooding and learning', () => {
  it('floods a broadcast to every peer of the VNI, then unicasts after learning', () => {
    const { hosts, run, net } = lab();
    const [A, B, C] = hosts;
    const X = cmac(0, 1);
    const Y = cmac(1, 1);
    // X broadcasts (ARP who-has, no suppression entry) → B and C, blue only
    A.taps.get(BLUE)!.inject(arpRequest(X, 0xc6130001, 0xc6130002));
    run();
    for (const h of [B, C]) {
      const got = h.taps.get(BLUE)!.takeWritten();
      assert.equal(got.length, 1);
      assert.equal(srcMac(got[0]), X);
      assert.equal(h.taps.get(RED)!.written.length, 0);
    }
    assert.equal(A.taps.get(BLUE)!.written.length, 0, 'no echo to the sender');
    const ca = A.dp.network(BLUE)!.counters;
    assert.equal(ca.txFrames, 1);
    assert.equal(ca.txFlooded, 1);
    assert.equal(ca.txPackets, 2, 'one copy per peer, self excluded');
    assert.equal(net.capture!.length, 2);
    // every datagram on the wire is plain Linux VXLAN for VNI 42
    for (const d of net.capture!) assert.equal(d.data.subarray(0, 8).toString('hex'), '080000000000' + '2a00');

    // Y answers X by unicast: B learned X → A, so only A receives it
    net.capture!.length = 0;
    B.taps.get(BLUE)!.inject(ipv4Frame(X, Y));
    run();
    assert.equal(net.capture!.length, 1);
    assert.equal(net.capture![0].to.readUInt32BE(12), 0xc6120001);
    const atA = A.taps.get(BLUE)!.takeWritten();
    assert.equal(atA.length, 1);
    assert.deepEqual(atA[0], ipv4Frame(X, Y));
    assert.equal(C.taps.get(BLUE)!.written.length, 0);
    // and X → Y now unicast to B (A learned Y from the reply)
    net.capture!.length = 0;
    A.taps.get(BLUE)!.inject(ipv4Frame(Y, X));
    run();
    assert.equal(net.capture!.length, 1);
    assert.equal(B.taps.get(BLUE)!.takeWritten().length, 1);
    assert.equal(C.taps.get(BLUE)!.written.length, 0);
    assert.equal(A.dp.network(BLUE)!.counters.txFlooded, 1);
    for (const h of hosts) for (const vni of [BLUE, RED]) identity(h.dp.network(vni)!.counters);
  });

  it('unknown unicast floods; a known local destination is not sent', () => {
    const { hosts, run, net } = lab();
    const [A] = hosts;
    const X = cmac(0, 1);
    const X2 = cmac(0, 2);
    A.taps.get(BLUE)!.inject(ipv4Frame(cmac(9, 9), X));
    run();
    assert.equal(net.capture!.length, 2);
    assert.equal(A.dp.network(BLUE)!.counters.txFlooded, 1);
    // X2 speaks (learned local), then X → X2 stays on the bridge
    A.taps.get(BLUE)!.inject(ipv4Frame(cmac(9, 9), X2));
    A.taps.get(BLUE)!.inject(ipv4Frame(X2, X));
    run();
    assert.equal(A.dp.network(BLUE)!.counters.txDropCount('local_dst'), 1);
    assert.equal(net.capture!.length, 4);
  });

  it('never crosses VNIs: the same MACs on two networks stay apart', () => {
    const { hosts, run } = lab();
    const [A, B, C] = hosts;
    const X = cmac(0, 1);
    const Y = cmac(1, 1);
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, X, { payload: 10 }));
    A.taps.get(RED)!.inject(ipv4Frame(0xffffffffffff, X, { payload: 20 }));
    run();
    for (const h of [B, C]) {
      assert.deepEqual(h.taps.get(BLUE)!.takeWritten().map((f) => f.length), [14 + 28 + 10]);
      assert.deepEqual(h.taps.get(RED)!.takeWritten().map((f) => f.length), [14 + 28 + 20]);
    }
    // B's Y on red answers X: goes to A's red TAP only
    B.taps.get(RED)!.inject(ipv4Frame(X, Y, { payload: 30 }));
    run();
    assert.deepEqual(A.taps.get(RED)!.takeWritten().map((f) => f.length), [14 + 28 + 30]);
    assert.equal(A.taps.get(BLUE)!.written.length, 0);
    // Y is unknown on blue at A: a blue frame to Y floods rather than using red's entry
    A.taps.get(BLUE)!.inject(ipv4Frame(Y, X));
    run();
    assert.equal(A.dp.network(BLUE)!.counters.txFlooded, 2);
    assert.equal(A.dp.network(RED)!.fdb.size, 2);
  });

  it('uses gossip peer sets per VNI and static FDB entries', () => {
    const { hosts, run, net } = lab();
    const [A, B, C] = hosts;
    assert.ok(A.dp.setNetworkPeers(BLUE, [ep(ADDRS[2]), ep(ADDRS[0])]));
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    A.taps.get(RED)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(B.taps.get(BLUE)!.written.length, 0);
    assert.equal(C.taps.get(BLUE)!.written.length, 1);
    assert.equal(B.taps.get(RED)!.written.length, 1, 'red still uses the static peers');
    A.dp.setNetworkPeers(BLUE, []);
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(A.dp.network(BLUE)!.counters.txDropCount('no_peers'), 1);
    A.dp.setNetworkPeers(BLUE, null);
    // static entry → unicast to B even though never learned
    net.capture!.length = 0;
    assert.ok(A.dp.fdbSetRemote(BLUE, macToString(cmac(1, 7)), ep(ADDRS[1])));
    A.taps.get(BLUE)!.inject(ipv4Frame(cmac(1, 7), cmac(0, 1)));
    run();
    assert.equal(net.capture!.length, 1);
    assert.equal(B.taps.get(BLUE)!.takeWritten().length, 1);
    assert.equal(A.dp.fdbRemoveByPeer(ep(ADDRS[1], 9999)), 1, 'by address, any port');
    A.taps.get(BLUE)!.inject(ipv4Frame(cmac(1, 7), cmac(0, 1)));
    run();
    // flooded: the first broadcast and this one (the no_peers frame was not flooded)
    assert.equal(A.dp.network(BLUE)!.counters.txFlooded, 2);
    assert.equal(net.capture!.length, 3);
  });

  it('ages learned entries on the injected clock', () => {
    const { hosts, run, clock } = lab();
    const [A, B] = hosts;
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(B.dp.network(BLUE)!.fdb.size, 1);
    clock.advance(299_000);
    assert.equal(B.dp.network(BLUE)!.fdb.size, 1);
    clock.advance(31_000);
    assert.equal(B.dp.network(BLUE)!.fdb.size, 0);
    // and forgotten peers are dropped from the peer table only when unreferenced (static peers stay)
    assert.deepEqual([...B.dp.peerCounters().keys()].sort(), ['198.18.0.1:4789', '198.18.0.3:4789']);
  });

  it('spreads flows over source sockets, one socket per flow', () => {
    const { hosts, run, net } = lab({ sourceCount: 4 });
    const [A] = hosts;
    for (let f = 0; f < 64; f++) A.taps.get(BLUE)!.inject(ipv4Frame(cmac(1, 1), cmac(0, 1), { sport: 1000 + f }));
    for (let k = 0; k < 5; k++) A.taps.get(BLUE)!.inject(ipv4Frame(cmac(1, 1), cmac(0, 1), { sport: 7 }));
    run();
    assert.equal(A.udp.sentBySource.filter((n) => n > 0).length, 4);
    const ports = new Set(net.capture!.slice(-10).filter((_, i) => i % 2 === 0).map((d) => d.from.readUInt16BE(16)));
    assert.equal(ports.size, 1, 'the repeated flow kept one source port');
  });

  it('sends one sendBatch per TAP batch and one TAP writeBatch per network per receive batch', () => {
    const { hosts, run } = lab();
    const [A, B] = hosts;
    for (let i = 0; i < 10; i++) A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1), { sport: i }));
    run();
    assert.equal(A.udp.sendBatches, 1);
    assert.equal(B.taps.get(BLUE)!.writeBatches, 1);
    assert.equal(B.taps.get(BLUE)!.written.length, 10);
  });

  it('a flood overflowing the descriptor table sends in more than one call, nothing lost', () => {
    const { hosts, run } = lab({ hosts: 6 });
    const [A, ...others] = hosts;
    const frames: Buffer[] = [];
    for (let k = 0; k < 64; k++) frames.push(ipv4Frame(0xffffffffffff, cmac(0, 1), { sport: k }));
    for (const f of frames) A.taps.get(BLUE)!.inject(f);
    run();
    assert.equal(A.udp.sendBatches, 2, '64 frames × 5 peers = 320 descriptors > 256');
    for (const h of others) assert.deepEqual(h.taps.get(BLUE)!.takeWritten(), frames);
    assert.equal(A.dp.network(BLUE)!.counters.txPackets, 320);
  });

  it('processes a bounded number of batches per readiness callback (fairness)', () => {
    const { hosts, reactor } = lab({ batchSize: 4 });
    const [A] = hosts;
    for (let i = 0; i < 100; i++) A.taps.get(BLUE)!.inject(ipv4Frame(cmac(1, 1), cmac(0, 1)));
    const calls0 = reactor.calls;
    reactor.run();
    // 100 frames / 4 per batch / 8 batches per callback → at least 4 callbacks for the TAP
    assert.ok(reactor.calls - calls0 >= 4, `calls: ${reactor.calls - calls0}`);
    assert.equal(A.dp.network(BLUE)!.counters.txFrames, 100);
  });
});

describe('datapath: size limits', () => {
  it('drops oversize frames outbound (never fragments) and inbound', () => {
    const { hosts, run, net } = lab();
    const [A, B] = hosts;
    const tapA = A.taps.get(BLUE)!;
    // MTU 1450: frame up to 1464 B untagged passes; 1465 is dropped; tagged frames +4 but within the underlay
    tapA.inject(ipv4Frame(cmac(1, 1), cmac(0, 1), { payload: 1450 - 28 }));
    tapA.inject(ipv4Frame(cmac(1, 1), cmac(0, 1), { payload: 1450 - 28 + 1 }));
    tapA.inject(ipv4Frame(cmac(1, 1), cmac(0, 1), { payload: 1450 - 28, vlan: 5 }));
    run();
    const c = A.dp.network(BLUE)!.counters;
    assert.equal(c.txDropCount('oversize_frame'), 2, 'tagged full-size frame would exceed the 1500 B underlay');
    assert.equal(c.txPackets, 2);
    for (const d of net.capture!) assert.ok(d.data.length + 8 + 20 <= 1500);
    // inbound: a 1465-byte inner frame is dropped
    B.udp.injectFrom(ep(ADDRS[2]), vx(BLUE, ipv4Frame(cmac(1, 1), cmac(2, 1), { payload: 1450 - 28 + 1 })));
    B.udp.injectFrom(ep(ADDRS[2]), vx(BLUE, ipv4Frame(cmac(1, 1), cmac(2, 1), { payload: 1450 - 28 - 4, vlan: 5 })));
    run();
    const cb = B.dp.network(BLUE)!.counters;
    assert.equal(cb.rxDropCount('oversize_frame'), 1);
    assert.equal(cb.rxDelivered, 2);
    identity(cb);
  });

  it('drops runt frames both ways', () => {
    const { hosts, run } = lab();
    const [A, B] = hosts;
    A.taps.get(BLUE)!.inject(Buffer.alloc(13, 1));
    B.udp.injectFrom(ep(ADDRS[0]), vx(BLUE, Buffer.alloc(13, 2)));
    run();
    assert.equal(A.dp.network(BLUE)!.counters.txDropCount('runt_frame'), 1);
    assert.equal(B.dp.network(BLUE)!.counters.rxDropCount('runt_frame'), 1);
  });
});

describe('datapath: inbound validation', () => {
  it('counts every drop reason exactly once and keeps the identity', () => {
    const { hosts, run } = lab();
    const [, B] = hosts;
    const from = ep(ADDRS[0], 50123);
    const good = () => ipv4Frame(cmac(1, 1), cmac(0, 1));
    const tapMacB = B.taps.get(BLUE)!.mac.readUIntBE(0, 6);
    // a local MAC on B
    B.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(1, 5)));
    run();
    const cases: [string, Buffer][] = [
      ['truncated', Buffer.from([0x08, 0, 0])],
      ['no_i_flag', (() => { const d = vx(BLUE, good()); d[0] = 0; return d; })()],
      ['reserved_bits', (() => { const d = vx(BLUE, good()); d[7] = 1; return d; })()],
      ['unknown_vni', vx(999, good())],
      ['runt_frame', vx(BLUE, Buffer.alloc(10))],
      ['oversize_frame', vx(BLUE, ipv4Frame(cmac(1, 1), cmac(0, 1), { payload: 1500 }))],
      ['bad_src_mac', vx(BLUE, ipv4Frame(cmac(1, 1), 0x01005e000001))],
      ['bad_src_mac', vx(BLUE, ipv4Frame(cmac(1, 1), 0xffffffffffff))],
      ['bad_src_mac', vx(BLUE, ipv4Frame(cmac(1, 1), 0))],
      ['own_src_mac', vx(BLUE, ipv4Frame(cmac(1, 1), tapMacB))],
      ['own_src_mac', vx(BLUE, ipv4Frame(cmac(1, 1), cmac(1, 5)))],
    ];
    for (const [, d] of cases) B.udp.injectFrom(from, d);
    B.udp.injectFrom(from, vx(BLUE, good()));
    run();
    const g = B.dp.counters;
    const c = B.dp.network(BLUE)!.counters;
    const expectGlobal = { truncated: 1, no_i_flag: 1, reserved_bits: 1, unknown_vni: 1 };
    for (const r of RX_DROP_REASONS) {
      assert.equal(g.rxDropCount(r), (expectGlobal as Record<string, number>)[r] ?? 0, `global ${r}`);
    }
    const expectNet = { runt_frame: 1, oversize_frame: 1, bad_src_mac: 3, own_src_mac: 2 };
    for (const r of RX_DROP_REASONS) assert.equal(c.rxDropCount(r), (expectNet as Record<string, number>)[r] ?? 0, `net ${r}`);
    assert.equal(c.rxPackets, 8);
    assert.equal(c.rxDelivered, 1);
    assert.equal(g.rxDatagrams, cases.length + 1);
    identity(c);
    assert.equal(B.taps.get(BLUE)!.written.length, 1);
    // the sender was learned at its VXLAN port, not its source port
    assert.ok(B.dp.peerCounters().has('198.18.0.1:4789'));
  });

  it('each of the 39 reserved bits set alone is dropped and counted exactly once', () => {
    const { hosts, run } = lab();
    const [, B] = hosts;
    const g = B.dp.counters;
    for (const [byte, mask] of VXLAN_RESERVED_BIT_POSITIONS) {
      const before = g.rxDropCount('reserved_bits');
      const d = vx(BLUE, ipv4Frame(cmac(1, 1), cmac(0, 1)));
      d[byte] |= mask;
      B.udp.injectFrom(ep(ADDRS[0]), d);
      run();
      assert.equal(g.rxDropCount('reserved_bits'), before + 1, `byte ${byte} mask 0x${mask.toString(16)}`);
    }
    assert.equal(g.rxDropCount('reserved_bits'), 39);
    assert.equal(g.rxDatagrams, 39);
    assert.equal(B.taps.get(BLUE)!.written.length, 0);
    assert.equal(B.dp.network(BLUE)!.counters.rxPackets, 0);
    assert.equal(B.dp.network(BLUE)!.fdb.size, 0, 'nothing learned from invalid datagrams');
  });

  it('survives random garbage: nothing reaches the TAP except valid frames, identity holds', () => {
    const { hosts, run } = lab();
    const [, B] = hosts;
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 3000; i++) {
      const len = Math.floor(rnd() * 120);
      const d = Buffer.alloc(len);
      for (let k = 0; k < len; k++) d[k] = Math.floor(rnd() * 256);
      if (len >= 8 && rnd() < 0.5) {
        // plausible header for a known VNI, random inner
        writeVxlanHeader(d, 0, rnd() < 0.5 ? BLUE : RED);
      }
      B.udp.injectFrom(ep(ADDRS[0], 40000 + (i % 100)), d);
    }
    run();
    let delivered = 0;
    for (const vni of [BLUE, RED]) {
      const c = B.dp.network(vni)!.counters;
      identity(c);
      delivered += c.rxDelivered;
      for (const f of B.taps.get(vni)!.written) {
        assert.ok(f.length >= 14);
        assert.equal(f[6] & 1, 0, 'unicast source');
      }
      assert.equal(B.taps.get(vni)!.written.length, c.rxDelivered);
    }
    const g = B.dp.counters;
    let global = 0;
    for (const v of g.rxDrops) global += v;
    const perNet = [BLUE, RED].reduce((s, v) => s + B.dp.network(v)!.counters.rxPackets, 0);
    assert.equal(global + perNet, 3000);
    assert.ok(delivered > 0);
  });

  it('counts TAP write failures and send failures', () => {
    const { hosts, run } = lab();
    const [A, B] = hosts;
    B.taps.get(BLUE)!.failNextWrites = 1;
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    const cb = B.dp.network(BLUE)!.counters;
    assert.equal(cb.rxDropCount('tap_write_failed'), 2);
    identity(cb);
    A.udp.failNextSends = 1;
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(A.dp.network(BLUE)!.counters.txDropCount('send_failed'), 2);
  });
});

describe('datapath: ARP / ND suppression and local endpoints', () => {
  it('answers an ARP request for a known remote endpoint on the TAP, without sending', () => {
    const { hosts, run, net } = lab();
    const [A, B] = hosts;
    const X = cmac(0, 1);
    const Y = cmac(1, 1);
    assert.ok(A.dp.neighSet(BLUE, '198.19.0.2', macToString(Y)));
    A.taps.get(BLUE)!.inject(arpRequest(X, 0xc6130001, 0xc6130002));
    run();
    assert.equal(net.capture!.length, 0, 'nothing on the wire');
    const [r] = A.taps.get(BLUE)!.takeWritten();
    assert.equal(dstMac(r), X);
    assert.equal(srcMac(r), Y);
    assert.equal(r.readUInt16BE(12), ETHERTYPE_ARP);
    assert.equal(r.readUInt16BE(20), 2, 'reply');
    assert.equal(r.readUIntBE(22, 6), Y);
    assert.equal(r.readUInt32BE(28), 0xc6130002);
    assert.equal(r.readUIntBE(32, 6), X);
    assert.equal(r.readUInt32BE(38), 0xc6130001);
    assert.deepEqual(A.dp.neighAnswered().find((x) => x.vni === BLUE)!.count, 1);
    // unknown target: flooded; other network: not answered from blue's table
    A.taps.get(BLUE)!.inject(arpRequest(X, 0xc6130001, 0xc6130009));
    A.taps.get(RED)!.inject(arpRequest(X, 0xc6130001, 0xc6130002));
    run();
    assert.equal(net.capture!.length, 4);
    assert.equal(B.taps.get(BLUE)!.written.length, 1);
    assert.equal(B.taps.get(RED)!.written.length, 1);
    // deleted entry: flooded again
    assert.ok(A.dp.neighDelete(BLUE, '198.19.0.2'));
    A.taps.get(BLUE)!.inject(arpRequest(X, 0xc6130001, 0xc6130002));
    run();
    assert.equal(net.capture!.length, 6);
  });

  it('answers an IPv6 neighbour solicitation with a valid advertisement', () => {
    const { hosts, run, net } = lab();
    const [A] = hosts;
    const X = cmac(0, 1);
    const Y = cmac(1, 1);
    A.dp.neighSet(BLUE, 'fd00::2', Y);
    const src = Buffer.from('fd000000000000000000000000000001', 'hex');
    const tgt = Buffer.from('fd000000000000000000000000000002', 'hex');
    A.taps.get(BLUE)!.inject(neighSolicit(X, src, tgt));
    run();
    assert.equal(net.capture!.length, 0);
    const [na] = A.taps.get(BLUE)!.takeWritten();
    assert.equal(dstMac(na), X);
    assert.equal(srcMac(na), Y);
    assert.equal(na[54], 136, 'NA');
    assert.equal(na[58], 0x60, 'solicited + override');
    assert.deepEqual(na.subarray(22, 38), tgt);
    assert.deepEqual(na.subarray(38, 54), src);
    assert.deepEqual(na.subarray(62, 78), tgt);
    assert.equal(na.readUIntBE(80, 6), Y);
    assert.ok(icmpv6ChecksumOk(na, 0));
    // DAD (source ::) is flooded, not answered
    A.taps.get(BLUE)!.inject(neighSolicit(X, Buffer.alloc(16), tgt));
    run();
    assert.equal(net.capture!.length, 2);
  });

  it('reports local endpoints with snooped IPv4/IPv6 addresses, not remote ones', () => {
    const { hosts, run } = lab();
    const [A, B] = hosts;
    const X = cmac(0, 1);
    A.taps.get(BLUE)!.inject(arpRequest(X, 0xc6130001, 0xc6130002));
    A.taps.get(BLUE)!.inject(ipv4Frame(cmac(1, 1), X, { srcIp: 0xc6130011 }));
    A.taps.get(BLUE)!.inject(neighSolicit(X, Buffer.from('fd000000000000000000000000000001', 'hex'), Buffer.from('fd000000000000000000000000000002', 'hex')));
    const v0 = A.dp.localVersion(BLUE);
    run();
    assert.ok(A.dp.localVersion(BLUE) > v0);
    const eps = A.dp.localEndpoints(BLUE);
    assert.equal(eps.length, 1);
    assert.equal(eps[0].mac, macToString(X));
    assert.deepEqual(eps[0].ipv4.sort(), ['198.19.0.1', '198.19.0.17']);
    assert.deepEqual(eps[0].ipv6, ['fd00::1']);
    assert.deepEqual(A.dp.localEndpoints(RED), []);
    assert.deepEqual(B.dp.localEndpoints(BLUE), [], 'remote MACs are not local endpoints');
    assert.equal(B.dp.network(BLUE)!.fdb.size, 1);
  });
});

/**
 * A test cipher exercising the hook (NOT cryptography): envelope = 0x01 ‖ 3 zero bytes ‖ VXLAN
 * packet ‖ 16-byte trailer of 0xaa; "fails" when the trailer is wrong; 0x02 = control message.
 */
class TestCipher implements PacketCipher {
  readonly headroom = 4;
  readonly tailroom = 16;
  sealed = 0;
  host: CipherHost | null = null;
  refuse = new Set<string>();
  isEnvelope(slab: Buffer, off: number, len: number): boolean {
    return len > 0 && (slab[off] === 1 || slab[off] === 2);
  }
  sealBatch(b: CipherBatch): void {
    for (let i = 0; i < b.count; i++) {
      const dst = b.addrs.readUInt32BE(i * 18 + 12);
      if (this.refuse.has(String(dst))) continue; // status stays NO_SESSION
      const o = b.offs[i] - 4;
      b.slab.writeUInt32BE(0x01000000, o);
      b.slab.fill(0xaa, b.offs[i] + b.lens[i], b.offs[i] + b.lens[i] + 16);
      b.outOffs[i] = o;
      b.outLens[i] = b.lens[i] + 20;
      b.status[i] = CIPHER_OK;
      this.sealed++;
    }
  }
  openBatch(b: CipherBatch): void {
    for (let i = 0; i < b.count; i++) {
      const o = b.offs[i];
      const l = b.lens[i];
      if (b.slab[o] === 2) { b.status[i] = CIPHER_CONSUMED; continue; }
      if (l < 20 || b.slab[o + l - 1] !== 0xaa) { b.status[i] = CIPHER_FAILED; continue; }
      b.outOffs[i] = o + 4;
      b.outLens[i] = l - 20;
      b.status[i] = CIPHER_OK;
    }
  }
  attach(host: CipherHost): void {
    this.host = host;
  }
}

describe('datapath: encrypted networks', () => {
  it('without a cipher sends nothing and drops plaintext received for the network', () => {
    const { hosts, run, net } = lab({ green: true });
    const [A, B] = hosts;
    A.taps.get(GREEN)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    A.taps.get(GREEN)!.inject(ipv4Frame(cmac(1, 1), cmac(0, 1)));
    run();
    assert.equal(net.capture!.length, 0, 'no plaintext on the wire');
    assert.equal(A.dp.network(GREEN)!.counters.txDropCount('no_session'), 2);
    B.udp.injectFrom(ep(ADDRS[0]), vx(GREEN, ipv4Frame(cmac(1, 1), cmac(0, 1))));
    run();
    const cb = B.dp.network(GREEN)!.counters;
    assert.equal(cb.rxDropCount('plaintext_on_encrypted'), 1);
    assert.equal(B.taps.get(GREEN)!.written.length, 0);
    identity(cb);
  });

  it('with a cipher seals every copy separately and opens in place', () => {
    const { hosts, run, net } = lab({ green: true });
    const ciphers = hosts.map((h) => {
      const c = new TestCipher();
      h.dp.setCipher(c);
      return c;
    });
    const [A, B, C] = hosts;
    assert.ok(ciphers[0].host);
    A.taps.get(GREEN)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(ciphers[0].sealed, 2, 'two peers, two separately sealed copies; blue not sealed');
    const green = net.capture!.filter((d) => d.data[0] === 1);
    assert.equal(green.length, 2, 'sealed envelopes on the wire');
    assert.equal(net.capture!.filter((d) => d.data[0] === 8 && d.data.readUIntBE(4, 3) === GREEN).length, 0, 'no plaintext green');
    for (const h of [B, C]) {
      const got = h.taps.get(GREEN)!.takeWritten();
      assert.equal(got.length, 1);
      assert.deepEqual(got[0], ipv4Frame(0xffffffffffff, cmac(0, 1)));
      assert.equal(h.taps.get(BLUE)!.takeWritten().length, 1);
      identity(h.dp.network(GREEN)!.counters);
    }
    // a failed open is a global decrypt_failed; a control message is consumed silently
    const bad = Buffer.alloc(40, 0);
    bad[0] = 1;
    B.udp.injectFrom(ep(ADDRS[0]), bad);
    B.udp.injectFrom(ep(ADDRS[0]), Buffer.from([2, 0, 0, 0]));
    run();
    assert.equal(B.dp.counters.rxDropCount('decrypt_failed'), 1);
    assert.equal(B.dp.network(GREEN)!.counters.rxPackets, 1);
    // no session with one peer → that copy dropped as no_session, the other sent
    ciphers[0].refuse.add(String(0xc6120003));
    A.taps.get(GREEN)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(A.dp.network(GREEN)!.counters.txDropCount('no_session'), 1);
    assert.equal(B.taps.get(GREEN)!.written.length, 1);
    assert.equal(C.taps.get(GREEN)!.written.length, 0);
  });

  it('encrypted floods larger than the scratch area flush mid-frame and stay intact, in order', () => {
    const { hosts, run } = lab({ hosts: 5, green: true, batchSize: 2 });
    for (const h of hosts) h.dp.setCipher(new TestCipher());
    const [A, ...others] = hosts;
    const frames = [0, 1, 2, 3].map((k) => ipv4Frame(0xffffffffffff, cmac(0, 1), { payload: 20 + k }));
    for (const f of frames) A.taps.get(GREEN)!.inject(f);
    run();
    for (const h of others) assert.deepEqual(h.taps.get(GREEN)!.takeWritten(), frames);
    const c = A.dp.network(GREEN)!.counters;
    assert.equal(c.txPackets, 16);
    assert.equal(c.txDropCount('no_session'), 0);
  });

  it('rejects a cipher needing more headroom than the slots have', () => {
    const { hosts } = lab({ hosts: 1 });
    const c = new TestCipher();
    (c as { headroom: number }).headroom = 100;
    assert.throws(() => hosts[0].dp.setCipher(c), RangeError);
  });
});

describe('datapath: control plane', () => {
  it('adds and removes networks without disturbing the others', () => {
    const { hosts, run, reactor } = lab();
    const [A, B] = hosts;
    assert.ok(B.dp.removeNetwork(RED));
    assert.equal(B.dp.network(RED), undefined);
    A.taps.get(RED)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(B.dp.counters.rxDropCount('unknown_vni'), 1);
    assert.equal(B.taps.get(BLUE)!.written.length, 1);
    // frames still readable on the removed network's TAP are drained, not forwarded
    B.taps.get(RED)!.inject(ipv4Frame(0xffffffffffff, cmac(1, 1)));
    run();
    assert.equal(B.taps.get(RED)!.pending, 0);
    // a new network with a bigger MTU, added while running
    const tap = new MemoryTap({ name: 'vx-pink', reactor });
    B.dp.addNetwork({ config: netCfg('pink', 45, false, 1450), tap });
    A.dp.addNetwork({ config: netCfg('pink', 45, false, 1450), tap: new MemoryTap({ name: 'vx-pink', reactor }) });
    (A.dp.network(45)!.tap as MemoryTap).inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(tap.written.length, 1);
    assert.equal(B.dp.network(BLUE)!.counters.rxDelivered, 1);
    assert.throws(() => B.dp.addNetwork({ config: netCfg('dup', BLUE), tap: new MemoryTap({ reactor }) }), RangeError);
  });

  it('replacing static peers drops entries behind removed peers', () => {
    const { hosts, run, net } = lab();
    const [A] = hosts;
    A.udp.injectFrom(ep(ADDRS[2], 41000), vx(BLUE, ipv4Frame(cmac(0, 1), cmac(2, 1))));
    run();
    assert.equal(A.dp.network(BLUE)!.fdb.size, 1);
    A.dp.setStaticPeers([ep(ADDRS[1])]);
    assert.equal(A.dp.network(BLUE)!.fdb.size, 0);
    net.capture!.length = 0;
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(net.capture!.length, 1);
    assert.deepEqual(A.dp.peerList().filter((p) => p.static).map((p) => p.label), ['198.18.0.2:4789']);
  });

  it('stop(): readiness drains and discards; start() resumes', () => {
    const { hosts, run } = lab();
    const [A, B] = hosts;
    B.dp.stop();
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(B.taps.get(BLUE)!.written.length, 0);
    assert.equal(B.udp.pending, 0);
    B.dp.start();
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(B.taps.get(BLUE)!.written.length, 1);
  });

  it('exposes the metrics views', () => {
    const { hosts, run } = lab();
    const [A] = hosts;
    A.taps.get(BLUE)!.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    run();
    const fe = A.dp.fdbEntries().find((e) => e.vni === BLUE && e.kind === 'local')!;
    assert.equal(fe.count, 1);
    const tapRead = A.dp.batchSizes().find((h) => h.io === 'tap_read')!;
    assert.equal(tapRead.sum, 1);
    assert.equal(tapRead.counts[0], 1);
    const peers = [...A.dp.peers()];
    assert.equal(peers.length, 2);
    assert.equal(peers.reduce((s, [, c]) => s + c.txPackets, 0), 2);
    assert.equal(parseMac(macToString(cmac(0, 1))), cmac(0, 1));
  });
});

describe('datapath: IPv6 underlay', () => {
  it('floods, learns and unicasts between hosts on 2001:2::/48', () => {
    const clock = new FakeClock(0);
    const reactor = new MemoryReactor();
    const net = new MemoryUdpNetwork({ reactor, clock });
    net.capture = [];
    const addrs = ['2001:2::1', '2001:2::2', '2001:2::3'];
    const hosts = addrs.map((addr, h) => {
      const udp = net.attach(addr, PORT, 2);
      const tap = new MemoryTap({ name: 'vx-blue', mac: Buffer.from([2, 0xee, 6, 0, h, 1]), reactor });
      const dp = new Datapath({
        networks: [{ config: netCfg('blue', BLUE, false, 1430), tap }], udp, clock,
        underlay: { family: 6, mtu: 1500, port: PORT, address: addr },
        peers: addrs.map((a) => ({ address: a, port: PORT, family: 6 as const })),
        fdb: { ageingSeconds: 300, maxEntries: 1024 },
      });
      dp.start();
      return { dp, tap };
    });
    const [A, B, C] = hosts;
    A.tap.inject(ipv4Frame(0xffffffffffff, cmac(0, 1)));
    reactor.run();
    assert.equal(net.capture!.length, 2);
    assert.equal(B.tap.takeWritten().length, 1);
    assert.equal(C.tap.takeWritten().length, 1);
    B.tap.inject(ipv4Frame(cmac(0, 1), cmac(1, 1)));
    reactor.run();
    assert.equal(net.capture!.length, 3);
    assert.equal(recordToEndpoint(net.capture![2].to, 0).address, '2001:2::1');
    assert.equal(A.tap.takeWritten().length, 1);
    // MTU 1430 on a 1500 IPv6 underlay: 1444-byte frames pass, the outer packet is exactly 1500
    A.tap.inject(ipv4Frame(cmac(1, 1), cmac(0, 1), { payload: 1430 - 28 }));
    A.tap.inject(ipv4Frame(cmac(1, 1), cmac(0, 1), { payload: 1430 - 28 + 1 }));
    reactor.run();
    assert.equal(A.dp.network(BLUE)!.counters.txDropCount('oversize_frame'), 1);
    assert.equal(Math.max(...net.capture!.map((d) => d.data.length)) + 8 + 40, 1500);
    assert.deepEqual([...B.dp.peerCounters().keys()].sort(), ['[2001:2::1]:4789', '[2001:2::3]:4789']);
    for (const h of hosts) identity(h.dp.network(BLUE)!.counters);
  });
});
