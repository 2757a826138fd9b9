/**
 * Micro-benchmark: the per-packet codecs of the data path, and both pipelines end to end over
 * allocation-free null devices (no memory twins: those copy).
 *
 *   node dist/bench/micro/codec.js [--ms 300] [--size 1400] [--batch 64] [--json]
 *
 * Cases: VXLAN header write; VXLAN validate (+ VNI read); inner-flow hash (IPv4/UDP, IPv6/TCP);
 * MAC halves; Datapath outbound (TAP batch → one sendBatch) and inbound (recvBatch → TAP
 * writeBatch) in frames/s, with JS-heap bytes allocated per frame (measured from GC statistics;
 * ≈ 0 when the hot path allocates nothing). `--fake-clock`: integer time instead of performance.now(). Every loop is bounded in time (--ms per case).
 */
import { GCProfiler } from 'node:v8';
import { FakeClock } from '../../src/clock';
import { Datapath } from '../../src/dataplane/datapath';
import { macHi, macLo, writeEthHeader } from '../../src/dataplane/ethernet';
import { flowHash } from '../../src/dataplane/flowhash';
import type { RxBatch, TapDevice, TxBatch, UdpTransport } from '../../src/dataplane/seams';
import { endpointToRecord } from '../../src/dataplane/addr';
import { vxlanCheck, vxlanVni, writeVxlanHeader } from '../../src/dataplane/vxlan';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const MS = arg('--ms', 300);
const SIZE = arg('--size', 1400);
const BATCH = arg('--batch', 64);
const JSON_OUT = process.argv.includes('--json');

interface Row { name: string; opsPerSec: number; nsPerOp: number; heapBytesPerOp?: number }
const rows: Row[] = [];

/** Runs `fn` (doing `opsPerCall` operations) repeatedly for MS ms after a warm-up. */
/**
 * Bytes allocated on the JS heap while `run` executes: the heap growth between consecutive GCs
 * (from v8.GCProfiler's before/after statistics), plus the growth after the last one.
 */
function allocatedDuring(run: () => void): number {
  const prof = new GCProfiler();
  let prev = process.memoryUsage().heapUsed;
  prof.start();
  run();
  const end = process.memoryUsage().heapUsed;
  const stats = prof.stop() as unknown as { statistics: { beforeGC: { heapStatistics: { usedHeapSize: number } }; afterGC: { heapStatistics: { usedHeapSize: number } } }[] };
  let total = 0;
  for (const g of stats.statistics) {
    total += Math.max(0, g.beforeGC.heapStatistics.usedHeapSize - prev);
    prev = g.afterGC.heapStatistics.usedHeapSize;
  }
  return total + Math.max(0, end - prev);
}

function bench(name: string, opsPerCall: number, fn: () => void, trackHeap = false): void {
  const warmEnd = performance.now() + Math.min(100, MS / 3);
  while (performance.now() < warmEnd) fn();
  let calls = 0;
  const t0 = performance.now();
  const end = t0 + MS;
  let now = t0;
  const loop = () => {
    while (now < end) {
      for (let k = 0; k < 64; k++) fn();
      calls += 64;
      now = performance.now();
    }
  };
  const allocated = trackHeap ? allocatedDuring(loop) : (loop(), 0);
  const ops = calls * opsPerCall;
  const secs = (now - t0) / 1000;
  const row: Row = { name, opsPerSec: ops / secs, nsPerOp: (secs * 1e9) / ops };
  if (trackHeap) row.heapBytesPerOp = allocated / ops;
  rows.push(row);
}

let sink = 0;

// ---- codecs ---------------------------------------------------------------------------------
const buf = Buffer.alloc(2048);
writeEthHeader(buf, 8, 0x020000000002, 0x020000000001, 0x0800);
buf[22] = 0x45;
buf[31] = 17;
buf.writeUInt32BE(0xc6130001, 34);
buf.writeUInt32BE(0xc6130002, 38);
buf.writeUInt16BE(1234, 42);
buf.writeUInt16BE(80, 44);
bench('vxlan header write', 1, () => writeVxlanHeader(buf, 0, 42));
bench('vxlan validate + vni', 1, () => {
  if (vxlanCheck(buf, 0, SIZE) === 0) sink += vxlanVni(buf, 0);
});
bench('flow hash ipv4/udp', 1, () => { sink ^= flowHash(buf, 8, SIZE); });
const b6 = Buffer.alloc(2048);
writeEthHeader(b6, 0, 0x020000000002, 0x020000000001, 0x86dd);
b6[14] = 0x60;
b6[20] = 6;
bench('flow hash ipv6/tcp', 1, () => { sink ^= flowHash(b6, 0, SIZE); });
bench('mac halves (hi16, lo32)', 1, () => { sink += macHi(buf, 8) + macLo(buf, 8); });

// ---- pipelines over null devices -------------------------------------------------------------
/** A TAP that always has a full batch of the same frame, and swallows writes. */
class NullTap implements TapDevice {
  readonly name = 'null';
  readonly mac = Buffer.from([2, 0xee, 0, 0, 0, 1]);
  frame: Buffer;
  written = 0;
  constructor(frame: Buffer) { this.frame = frame; }
  readBatch(b: RxBatch): number {
    for (let i = 0; i < b.slots; i++) {
      this.frame.copy(b.slab, i * b.slotSize + b.headroom);
      b.lens[i] = this.frame.length;
    }
    return b.slots;
  }
  writeBatch(b: TxBatch): number { this.written += b.count; return b.count; }
  /** The data path's readiness callback (the bench calls it: one call = one batch with burst 1). */
  readable: () => void = () => {};
  onReadable(cb: () => void): void { this.readable = cb; }
  close(): void {}
}

/** A UDP transport that receives a full batch of the same datagram from one peer, and swallows sends. */
class NullUdp implements UdpTransport {
  readonly family = 4 as const;
  readonly sourceCount = 8;
  sent = 0;
  constructor(private readonly datagram: Buffer, private readonly from: Buffer) {}
  recvBatch(b: RxBatch): number {
    for (let i = 0; i < b.slots; i++) {
      this.datagram.copy(b.slab, i * b.slotSize + b.headroom);
      b.lens[i] = this.datagram.length;
      this.from.copy(b.addrs, i * 18);
    }
    return b.slots;
  }
  sendBatch(b: TxBatch): number { this.sent += b.count; return b.count; }
  readable: () => void = () => {};
  onReadable(cb: () => void): void { this.readable = cb; }
  close(): void {}
}

const frame = Buffer.alloc(SIZE);
writeEthHeader(frame, 0, 0x020000000102, 0x020000000001, 0x0800);
frame[14] = 0x45;
frame[23] = 17;
const datagram = Buffer.alloc(SIZE + 8);
writeVxlanHeader(datagram, 0, 42);
writeEthHeader(datagram, 8, 0x020000000001, 0x020000000102, 0x0800);
const tap = new NullTap(frame);
const udp = new NullUdp(datagram, endpointToRecord({ address: '198.18.0.2', port: 50000, family: 4 }));
const clock = process.argv.includes("--fake-clock") ? new FakeClock(0) : { ...new FakeClock(0), now: () => performance.now(), setTimer: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
const dp = new Datapath({
  networks: [{ config: { name: 'blue', vni: 42, bridge: 'br0', tap: 'vx-blue', mtu: 1450, encrypted: false }, tap }],
  udp, clock,
  underlay: { family: 4, mtu: 1500, port: 4789 },
  peers: [{ address: '198.18.0.2', port: 4789, family: 4 }, { address: '198.18.0.3', port: 4789, family: 4 }],
  fdb: { ageingSeconds: 300, maxEntries: 16384 },
  batchSize: BATCH,
  burst: 1,
});
dp.start();
// learn the destination once (inbound), so outbound is unicast; the devices' readiness callbacks
// (registered by start) drive the pipelines, one batch per call (burst 1)
udp.readable();
bench('datapath outbound, unicast (frames)', BATCH, () => tap.readable(), true);
bench('datapath inbound (datagrams)', BATCH, () => udp.readable(), true);
tap.frame = Buffer.from(frame);
tap.frame.writeUIntBE(0xffffffffffff, 0, 6);
bench('datapath outbound, flood to 2 peers (frames)', BATCH, () => tap.readable(), true);
const c = dp.network(42)!.counters;
if (c.rxDelivered + c.totalRxDrops() !== c.rxPackets || c.totalRxDrops() !== 0) throw new Error('pipeline dropped frames: bench invalid');

if (JSON_OUT) {
  console.log(JSON.stringify({ size: SIZE, batch: BATCH, rows, sink }, null, 2));
} else {
  console.log(`codec micro-benchmarks (frame ${SIZE} B, batch ${BATCH}, ${MS} ms per case, node ${process.version})`);
  console.log('| case | ops/s | ns/op | heap B/op |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) {
    const heap = r.heapBytesPerOp === undefined ? '' : r.heapBytesPerOp.toFixed(2);
    console.log(`| ${r.name} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} | ${r.nsPerOp.toFixed(1)} | ${heap} |`);
  }
  if (sink === 0.5) console.log('');
}
