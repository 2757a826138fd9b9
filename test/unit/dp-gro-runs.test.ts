/**
 * GRO runs (seams.ts `RxRuns`): a UDP GRO buffer's run of one inner TCP flow handed to the data
 * path as ONE descriptor. Two parts:
 *
 *   - the descriptor contract, on the in-memory twin (`MemoryUdp.gro`, which splits through the
 *     addon's own `groRunsSplit`, the function `udpRecv` uses): N contiguous segments → one
 *     descriptor with the right counts and exactly the frame the TAP write's coalescer makes of
 *     them; a run broken by a flag, a sequence gap, another flow, another VNI, another source or a
 *     bad checksum splits there; hostile buffers (not VXLAN, mixed VNIs, short or inconsistent
 *     lengths, random bytes) become single datagrams, never a throw;
 *   - the data path over it (vnet TAP twin with `writeBatchGso`): one TAP write of a GSO frame per
 *     run, counters per segment exactly as without runs (rxPackets, rxBytes, rxDelivered, peer
 *     counters), drops counted per segment (unknown_vtep, plaintext_on_encrypted, policy_denied),
 *     the size check never sees a run it would cut (maxFrame), and no runs over a TAP that cannot
 *     write GSO frames.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/clock';
import type { Endpoint, NetworkConfig } from '../../src/config/types';
import { endpointToRecord } from '../../src/dataplane/addr';
import { Datapath } from '../../src/dataplane/datapath';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork, type MemoryUdp } from '../../src/dataplane/memory-io';
import type { PolicyFilter } from '../../src/dataplane/policy-seam';
import { GRO_RUN_AREA } from '../../src/dataplane/seams';
import { allocateInbound } from '../../src/dataplane/slabs';
import { loadAddon } from '../../src/native/addon';
import { addonSkipReason } from './native-helpers';
import { VnetTwin, tcpSuperFrame } from '../helpers/vnet';

const skip = addonSkipReason();
const PORT = 4789;
const ME = '198.18.0.1';
const PEER = '198.18.0.2';
const OTHER = '198.18.0.3';
const VNI = 42;
const MSS = 1400;
const GSO_TCPV4 = 1;
const S = 64 + 2048;
const ep = (address: string): Endpoint => ({ address, port: PORT, family: 4 });

function vxlan(vni: number): Buffer {
  const h = Buffer.alloc(8);
  h[0] = 0x08;
  h.writeUIntBE(vni, 4, 3);
  return h;
}

/** The segments of a TCP super-frame (`payload` bytes from seq `seq`, flags, source port) as VXLAN datagrams, cut by the addon's segmenter. */
function segments(payload: number, o: { seq?: number; flags?: number; sport?: number; vni?: number; mss?: number } = {}): Buffer[] {
  const f = tcpSuperFrame(payload);
  f.writeUInt32BE(o.seq ?? 1000, 38);
  f[47] = o.flags ?? 0x18;
  if (o.sport !== undefined) f.writeUInt16BE(o.sport, 34);
  const prefix = vxlan(o.vni ?? VNI);
  const mss = o.mss ?? MSS;
  const out = Buffer.alloc(300 * 1024);
  const segLens = new Uint32Array(257);
  const n = loadAddon().gsoSegment(f, GSO_TCPV4, mss, prefix, out, segLens);
  assert.ok(n > 0, 'segmentable');
  const stride = segLens[256];
  const r: Buffer[] = [];
  for (let i = 0; i < n; i++) r.push(Buffer.from(out.subarray(i * stride, i * stride + segLens[i])));
  return r;
}

interface Desc { bytes: Buffer; segs: number; wire: number; type: number; size: number; from: string }

/** Injects `dgrams` into a fresh GRO twin (from `PEER` unless `from` says otherwise) and reads them with runs. */
function receive(dgrams: Buffer[], from: (i: number) => string = () => PEER, maxFrame = 0): Desc[] {
  const hub = new MemoryUdpNetwork({ reactor: new MemoryReactor() });
  const udp = hub.attach(ME, PORT);
  udp.gro = true;
  dgrams.forEach((d, i) => udp.injectFrom(ep(from(i)), d));
  const m = allocateInbound(64, S, true);
  m.runs!.maxFrame = maxFrame;
  const out: Desc[] = [];
  for (let round = 0; round < 100 && (udp.pending > 0 || udp.groPending); round++) {
    const n = udp.recvBatchRuns(m.udpRx, m.runs!);
    for (let i = 0; i < n; i++) {
      const r = m.runs!;
      const off = r.offs[i];
      if (r.segs[i] === 1) assert.equal(off, i * S, 'a single datagram sits at its slot');
      else assert.ok(off >= r.superOff && off + m.udpRx.lens[i] <= r.superOff + GRO_RUN_AREA, 'a run sits in the run area');
      const rec = m.udpRx.addrs.subarray(i * 18, i * 18 + 18);
      out.push({
        bytes: Buffer.from(m.udpSlab.subarray(off, off + m.udpRx.lens[i])), segs: r.segs[i], wire: r.wire[i], type: r.gso[2 * i],
        size: r.gso[2 * i + 1], from: `${rec[12]}.${rec[13]}.${rec[14]}.${rec[15]}`,
      });
    }
  }
  assert.ok(udp.pending === 0 && !udp.groPending, 'everything was read');
  return out;
}

/** What the TAP write's coalescer (groCoalesce) makes of these inner frames: [vnet header, frame] per output. */
function coalesced(inner: Buffer[]): { vnet: Buffer; frame: Buffer; count: number }[] {
  const slab = Buffer.concat(inner);
  const offs = new Uint32Array(inner.length);
  const lens = new Uint32Array(inner.length);
  let at = 0;
  inner.forEach((f, i) => {
    offs[i] = at;
    lens[i] = f.length;
    at += f.length;
  });
  const out = Buffer.alloc(slab.length + inner.length * 16 + 1024);
  const info = new Uint32Array(3 * inner.length);
  const n = loadAddon().groCoalesce(slab, offs, lens, inner.length, 64, out, info);
  const r = [];
  for (let i = 0; i < n; i++) {
    r.push({ vnet: out.subarray(info[3 * i], info[3 * i] + 10), frame: out.subarray(info[3 * i] + 10, info[3 * i] + info[3 * i + 1]), count: info[3 * i + 2] });
  }
  return r;
}

const total = (ds: Buffer[]) => ds.reduce((s, d) => s + d.length, 0);
const shape = (ds: Desc[]) => ds.map((d) => d.segs);

describe('GRO runs: the descriptor contract (in-memory twin over the addon split)', { skip }, () => {
  it('N contiguous segments of one flow become ONE descriptor: counts, gso info and the coalescer\'s own frame', () => {
    const dg = segments(10 * MSS);
    assert.equal(dg.length, 10);
    const ds = receive(dg);
    assert.deepEqual(shape(ds), [10]);
    const d = ds[0];
    assert.equal(d.wire, total(dg), 'wire = the bytes of the datagrams it replaces');
    assert.equal(d.type, GSO_TCPV4);
    assert.equal(d.size, MSS);
    assert.equal(d.from, PEER);
    assert.deepEqual(d.bytes.subarray(0, 8), vxlan(VNI), 'the VXLAN header first');
    // the merged frame is exactly what the TAP write's coalescer builds from the inner frames
    const ref = coalesced(dg.map((x) => x.subarray(8)));
    assert.equal(ref.length, 1);
    assert.equal(ref[0].count, 10);
    assert.deepEqual(d.bytes.subarray(8), ref[0].frame);
    assert.equal(ref[0].vnet[1], d.type);
    assert.equal(ref[0].vnet.readUInt16LE(4), d.size);
    assert.equal(d.bytes.length, 8 + 54 + 10 * MSS);
  });

  it('one receive call over more GRO buffers than the receive area holds: every run keeps its own bytes', () => {
    // 20 super-frames of 10 segments (PSH on each last one): 20 GRO buffers, read 8 at a time within one call;
    // runs of a later refill must not be written over those of an earlier one (the caller holds them all)
    const frames = Array.from({ length: 20 }, (_, k) => segments(10 * MSS, { seq: 1000 + k * 10 * MSS }));
    const hub = new MemoryUdpNetwork({ reactor: new MemoryReactor() });
    const udp = hub.attach(ME, PORT);
    udp.gro = true;
    for (const f of frames) for (const d of f) udp.injectFrom(ep(PEER), d);
    const m = allocateInbound(64, S, true);
    const n = udp.recvBatchRuns(m.udpRx, m.runs!);
    assert.equal(n, 20, 'all 20 runs in one call');
    for (let i = 0; i < n; i++) {
      assert.equal(m.runs!.segs[i], 10);
      const got = m.udpSlab.subarray(m.runs!.offs[i] + 8, m.runs!.offs[i] + m.udpRx.lens[i]);
      assert.deepEqual(got, coalesced(frames[i].map((x) => x.subarray(8)))[0].frame, `run ${i} intact`);
    }
    // 10 runs of 44 segments (61,660 bytes each): the run area (512 KiB) takes 8 of them in one call, the rest waits for the next
    const big = Array.from({ length: 10 }, (_, k) => segments(44 * MSS, { seq: 1000 + k * 44 * MSS }));
    for (const f of big) for (const d of f) udp.injectFrom(ep(PEER), d);
    const counts: number[] = [];
    let seen = 0;
    for (let round = 0; round < 10 && (udp.pending > 0 || udp.groPending); round++) {
      const k = udp.recvBatchRuns(m.udpRx, m.runs!);
      for (let i = 0; i < k; i++) {
        assert.equal(m.runs!.segs[i], 44);
        const got = m.udpSlab.subarray(m.runs!.offs[i] + 8, m.runs!.offs[i] + m.udpRx.lens[i]);
        assert.deepEqual(got, coalesced(big[seen + i].map((x) => x.subarray(8)))[0].frame);
      }
      seen += k;
      counts.push(k);
    }
    assert.deepEqual(counts, [8, 2]);
  });

  it('a shorter last segment ends the run inside it; a run is at most 64 datagrams', () => {
    assert.deepEqual(shape(receive(segments(5 * MSS + 300))), [6]);
    // 70 full segments from one source: a GRO buffer holds 44 of these 1,462-byte datagrams (64 KiB), the next one the
    // rest; the run goes on into the second buffer up to the IP length limit (46 × 1,400 payload bytes)
    const ds = receive([...segments(35 * MSS, { flags: 0x10 }), ...segments(35 * MSS, { seq: 1000 + 35 * MSS })]);
    assert.deepEqual(shape(ds), [46, 24]);
    // two GRO buffers of one flow (two UDP GSO sends of the peer, the first one's last segment shorter
    // is what ends a TSO super-frame that is not a multiple of the MSS): a short segment ends the run
    assert.deepEqual(shape(receive([...segments(5 * MSS + 100, { flags: 0x10 }), ...segments(4 * MSS, { seq: 1000 + 5 * MSS + 100 })])), [6, 4]);
    // full-sized in both: one run over both buffers; a smaller segment size in the next buffer: its first
    // segment is shorter than the run's, so it is the run's last
    assert.deepEqual(shape(receive([...segments(20 * 1000, { flags: 0x10, mss: 1000 }), ...segments(10 * 1000, { seq: 1000 + 20 * 1000, mss: 1000 })])), [30]);
    assert.deepEqual(shape(receive([...segments(20 * 1000, { flags: 0x10, mss: 1000 }), ...segments(10 * 900, { seq: 1000 + 20 * 1000, mss: 900 })])), [21, 9]);
    // 80 datagrams of 200 bytes: a run stops at 64 (the TAP write's coalescing bound)
    const small = [...segments(40 * 138, { flags: 0x10, mss: 138 }), ...segments(40 * 138, { seq: 1000 + 40 * 138, mss: 138 })];
    assert.deepEqual(shape(receive(small)), [64, 16]);
  });

  it('a run broken by a flag, a sequence gap, another flow, another VNI or another source splits there', () => {
    const a = segments(5 * MSS, { seq: 1000 });
    // PSH on the last segment of the first super-frame ends the run; the next one starts a new run
    assert.deepEqual(shape(receive([...a, ...segments(4 * MSS, { seq: 1000 + 5 * MSS })])), [5, 4]);
    // without PSH, two super-frames in sequence are one run
    assert.deepEqual(shape(receive([...segments(5 * MSS, { flags: 0x10 }), ...segments(4 * MSS, { seq: 1000 + 5 * MSS })])), [9]);
    // a sequence gap
    assert.deepEqual(shape(receive([...segments(5 * MSS, { flags: 0x10 }), ...segments(4 * MSS, { seq: 1000 + 6 * MSS })])), [5, 4]);
    // another flow (source port)
    assert.deepEqual(shape(receive([...segments(5 * MSS, { flags: 0x10 }), ...segments(4 * MSS, { seq: 1000 + 5 * MSS, sport: 40001 })])), [5, 4]);
    // another VNI
    assert.deepEqual(shape(receive([...segments(5 * MSS, { flags: 0x10 }), ...segments(4 * MSS, { seq: 1000 + 5 * MSS, vni: VNI + 1 })])), [5, 4]);
    // another source: another GRO buffer
    const ds = receive(segments(8 * MSS), (i) => (i < 3 ? PEER : OTHER));
    assert.deepEqual(shape(ds), [3, 5]);
    assert.deepEqual(ds.map((d) => d.from), [PEER, OTHER]);
    // SYN / FIN / RST segments never join a run
    const syn = segments(3 * MSS, { flags: 0x12 });
    assert.deepEqual(shape(receive(syn)), [1, 1, 1]);
    assert.deepEqual(shape(receive(segments(3 * MSS, { flags: 0x11 }))), [2, 1], 'FIN only on the last segment: the first two merge');
  });

  it('a segment with a bad checksum ends the run before it and goes on its own, unchanged', () => {
    const dg = segments(10 * MSS);
    dg[3][8 + 54 + 100] ^= 0xff; // payload byte: the TCP checksum no longer matches
    const ds = receive(dg);
    assert.deepEqual(shape(ds), [3, 1, 6]);
    assert.deepEqual(ds[1].bytes, dg[3], 'delivered as it came (the receiving TCP drops it)');
    assert.equal(ds.reduce((s, d) => s + d.wire, 0), total(dg));
    // the IPv4 header checksum too
    const dh = segments(4 * MSS);
    dh[0][8 + 14 + 10] ^= 1;
    assert.deepEqual(shape(receive(dh)), [1, 3]);
  });

  it('maxFrame: segments larger than the smallest network frame limit never form a run', () => {
    assert.deepEqual(shape(receive(segments(4 * MSS), undefined, 54 + MSS)), [4]);
    assert.deepEqual(shape(receive(segments(4 * MSS), undefined, 54 + MSS - 1)), [1, 1, 1, 1]);
  });

  it('hostile buffers: not VXLAN, reserved bits, mixed VNIs, short or inconsistent lengths, random bytes → single datagrams, counted, no throw', () => {
    const base = segments(6 * MSS);
    const flip = (k: number, at: number, v: number) => base.map((d, i) => {
      const c = Buffer.from(d);
      if (i === k || k < 0) c[at] = v;
      return c;
    });
    // I flag clear everywhere (a probe-like or foreign datagram), and reserved bits set
    assert.deepEqual(shape(receive(flip(-1, 0, 0x00))), [1, 1, 1, 1, 1, 1]);
    assert.deepEqual(shape(receive(flip(-1, 7, 0x01))), [1, 1, 1, 1, 1, 1]);
    assert.deepEqual(shape(receive(flip(-1, 1, 0x80))), [1, 1, 1, 1, 1, 1]);
    // one datagram with another header breaks the run around it
    assert.deepEqual(shape(receive(flip(2, 0, 0x0c))), [2, 1, 3]);
    // alternating VNIs
    const mixed = base.map((d, i) => {
      const c = Buffer.from(d);
      c.writeUIntBE(VNI + (i % 2), 4, 3);
      return c;
    });
    assert.deepEqual(shape(receive(mixed)), [1, 1, 1, 1, 1, 1]);
    // an inner IP length longer than the datagram
    const long = flip(1, 8 + 14 + 2, 0xff);
    assert.deepEqual(shape(receive(long)), [1, 1, 4]);
    // datagrams shorter than a VXLAN header, and empty ones, from one source
    const tiny = [Buffer.from([8, 0, 0]), Buffer.from([8, 0, 0]), Buffer.alloc(0), Buffer.from([8])];
    assert.deepEqual(shape(receive(tiny)), [1, 1, 1, 1]);
    // random bytes of equal length (one GRO buffer)
    let x = 12345;
    const rnd = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const junk = Array.from({ length: 20 }, () => Buffer.from(Array.from({ length: 700 }, rnd)));
    junk.forEach((j) => {
      j[0] = 0x08;
      j[1] = j[2] = j[3] = j[7] = 0;
      j.writeUIntBE(VNI, 4, 3);
    });
    const ds = receive(junk);
    assert.deepEqual(shape(ds), junk.map(() => 1));
    assert.deepEqual(ds.map((d) => d.bytes), junk);
  });

  it('the pure split refuses arguments that do not fit (RangeError), never reads or writes out of bounds', () => {
    const a = loadAddon();
    const m = allocateInbound(4, S, true);
    const r = m.runs!;
    const bufs = Buffer.alloc(GRO_RUN_AREA);
    const six = Buffer.concat(segments(6 * MSS));
    six.copy(bufs);
    const blens = Uint32Array.of(six.length);
    const bsegs = Uint16Array.of(8 + 54 + MSS);
    const baddrs = endpointToRecord(ep(PEER));
    const stats = new BigUint64Array(a.constants.STAT_COUNT);
    const state = new Uint32Array(3);
    const split = (o: { slab?: Buffer; superOff?: number; nbufs?: number; bufs?: Buffer } = {}) => a.groRunsSplit(o.bufs ?? bufs, blens, bsegs,
      baddrs, o.nbufs ?? 1, o.slab ?? m.udpSlab, S, 0, 4, 0, m.udpRx.lens, m.udpRx.addrs, r.offs, r.gso, r.segs, r.wire, o.superOff ?? r.superOff, 0, stats,
      state);
    // bytes that are not TCP: one datagram per slot, resumed where it stopped (as udpRecv across calls)
    bufs.fill(0x55, 0, six.length);
    assert.equal(split(), 4);
    assert.deepEqual([...state], [0, 4 * (8 + 54 + MSS), 0]);
    assert.equal(split(), 2);
    assert.deepEqual([...state], [1, 0, 0]);
    assert.equal(split(), 0, 'nothing left');
    state[0] = 2;
    assert.throws(() => split(), RangeError, 'state beyond the buffers');
    state[0] = 0;
    state[1] = six.length + 1;
    assert.throws(() => split(), RangeError, 'offset beyond the buffer');
    state[1] = 0;
    six.copy(bufs);
    blens[0] = 2 * (8 + 54 + MSS);
    assert.throws(() => split({ slab: m.udpSlab.subarray(0, 4 * S + 100) }), RangeError, 'no run area');
    assert.throws(() => split({ superOff: 0 }), RangeError, 'run area over the slots');
    assert.throws(() => split({ nbufs: 2 }), RangeError, 'one buffer given, two announced');
    assert.throws(() => split({ nbufs: 0 }), RangeError);
    assert.throws(() => split({ bufs: Buffer.alloc(100) }), RangeError, 'buffers shorter than 64 KiB each');
    assert.equal(split(), 1);
    assert.equal(r.segs[0], 2);
    assert.equal(Number(stats[a.constants.STAT_GRO_RUNS]), 1);
  });
});

// ---- the data path over runs ------------------------------------------------------------------

const netCfg = (o: { encrypted?: boolean; mtu?: number } = {}): NetworkConfig => ({
  name: 'blue', vni: VNI, bridge: 'br0', tap: 'vx-blue', mtu: o.mtu ?? 1450, encrypted: o.encrypted ?? false,
});

function setup(o: { gro?: boolean; gsoTap?: boolean; encrypted?: boolean; mtu?: number; peers?: string[] } = {}) {
  const clock = new FakeClock(0);
  const reactor = new MemoryReactor();
  const hub = new MemoryUdpNetwork({ reactor, clock });
  const udp: MemoryUdp = hub.attach(ME, PORT);
  udp.gro = o.gro ?? true;
  const tap = new VnetTwin('vx-blue', { gsoWrites: o.gsoTap ?? true });
  const dp = new Datapath({
    networks: [{ config: netCfg(o), tap }], udp, clock,
    underlay: { family: 4, mtu: 1500, port: PORT, address: ME },
    peers: (o.peers ?? [PEER]).map(ep),
  });
  dp.start();
  const send = (dgrams: Buffer[], from = PEER) => {
    for (const d of dgrams) udp.injectFrom(ep(from), d);
    reactor.run();
  };
  return { dp, udp, tap, send, net: () => dp.network(VNI)! };
}

function identity(c: { rxDelivered: number; rxPackets: number; totalRxDrops(): number }): void {
  assert.equal(c.rxDelivered + c.totalRxDrops(), c.rxPackets, 'rxDelivered + Σ rxDrops = rxPackets');
}

describe('GRO runs: the data path (one pass of the stages per run, counted per segment)', { skip }, () => {
  it('a run is ONE GSO write to the TAP; counters equal those of the per-datagram path', () => {
    const dg = segments(10 * MSS);
    const on = setup();
    assert.equal(on.dp.groRuns, true);
    on.send(dg);
    assert.equal(on.tap.written.length, 1);
    assert.deepEqual(on.tap.writtenGso, [{ type: GSO_TCPV4, mss: MSS }]);
    assert.equal(on.tap.written[0].length, 54 + 10 * MSS);
    const off = setup({ gro: false });
    assert.equal(off.dp.groRuns, false);
    off.send(dg);
    assert.equal(off.tap.written.length, 10, 'without runs: one descriptor per datagram');
    const a = on.net().counters;
    const b = off.net().counters;
    for (const k of ['rxPackets', 'rxBytes', 'rxDelivered', 'rxDeliveredBytes'] as const) assert.equal(a[k], b[k], k);
    assert.equal(a.rxPackets, 10);
    assert.equal(a.rxBytes, total(dg));
    assert.equal(a.rxDeliveredBytes, total(dg) - 80);
    assert.equal(on.dp.counters.rxDatagrams, 10);
    identity(a);
    const pa = on.dp.peerCounters().get(`${PEER}:${PORT}`)!;
    assert.equal(pa.rxPackets, 10);
    assert.equal(pa.rxBytes, total(dg));
    // learning: the inner source MAC is behind the peer
    assert.ok(on.net().fdb.entries(0).some((e) => e.mac === '02:00:00:00:00:01' && e.kind === 'remote'));
  });

  it('drops are counted per segment: unknown sender, plaintext on an encrypted network, policy', () => {
    const dg = segments(10 * MSS);
    const stranger = setup();
    stranger.send(dg, OTHER);
    assert.equal(stranger.net().counters.rxDropCount('unknown_vtep'), 10);
    assert.equal(stranger.tap.written.length, 0);
    identity(stranger.net().counters);

    const enc = setup({ encrypted: true });
    enc.send(dg);
    assert.equal(enc.net().counters.rxDropCount('plaintext_on_encrypted'), 10);
    identity(enc.net().counters);

    const pol = setup();
    let calls = 0;
    const deny: PolicyFilter = {
      setNow() {}, filter: () => { calls++; return false; }, localPair: () => false, filterLocal: () => false,
      hairpinQueue: () => -1, hairpinTx: null, hairpinDone() {},
    };
    pol.dp.setPolicyFilter(VNI, deny);
    pol.send(dg);
    assert.equal(calls, 1, 'the policy stage ran once for the run');
    assert.equal(pol.net().counters.rxDropCount('policy_denied'), 10);
    assert.equal(pol.tap.written.length, 0);
    identity(pol.net().counters);
  });

  it('segments over the network\'s frame limit form no run: each is dropped as oversize, as without runs', () => {
    const dg = segments(4 * MSS);
    const s = setup({ mtu: 1400 });
    s.send(dg);
    assert.equal(s.net().counters.rxDropCount('oversize_frame'), 4);
    identity(s.net().counters);
  });

  it('no runs over a TAP that cannot write GSO frames, nor over a plain TAP', () => {
    const s = setup({ gsoTap: false });
    assert.equal(s.dp.groRuns, false);
    s.send(segments(5 * MSS));
    assert.equal(s.tap.written.length, 5);
    // adding a plain TAP network turns runs off on a path that had them
    const t = setup();
    assert.equal(t.dp.groRuns, true);
    t.dp.addNetwork({ config: { ...netCfg(), name: 'red', vni: VNI + 1, tap: 'vx-red' }, tap: new MemoryTap({ name: 'vx-red' }) });
    assert.equal(t.dp.groRuns, false);
    t.dp.removeNetwork(VNI + 1);
    assert.equal(t.dp.groRuns, true);
  });

  it('a failed GSO write counts every segment of the run as tap_write_failed', () => {
    const s = setup();
    s.tap.writeBatchGso = () => 0; // EAGAIN for all
    s.send(segments(6 * MSS));
    assert.equal(s.net().counters.rxDropCount('tap_write_failed'), 6);
    identity(s.net().counters);
  });
});
