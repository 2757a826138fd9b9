/**
 * Micro-benchmark: the fast path's packet work in the addon (native/gso.c) — TSO segmentation of a
 * super-frame into MSS-sized frames behind a VXLAN header (what `NativeUdp.sendBatchGso` does before
 * its UDP GSO send) and coalescing of consecutive TCP segments into one GSO frame (what a vnet
 * `NativeTap.writeBatch` does before its writev; here copied into a buffer instead), and of a run
 * of 64 small UDP datagrams of one flow into one UDP_L4 GSO frame (--udp-size payload bytes).
 *
 *   node dist/bench/micro/gso.js [--payload 63000] [--mss 1448] [--iters 3000] [--udp-size 64] [--json]
 *
 * Reported as CPU time per super-frame and payload Gbit/s per CPU second (process.cpuUsage), which
 * stays meaningful on a machine shared with other work. Loops are bounded by --iters.
 */
import { loadAddon } from '../../src/native/addon';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const PAYLOAD = arg('--payload', 63000);
const MSS = arg('--mss', 1448);
const ITERS = arg('--iters', 3000);
const UDP_SIZE = arg('--udp-size', 64);

function cpuUs(fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return c.user + c.system;
}

/** An IPv4 TCP super-frame (TCP timestamps option) with `plen` payload bytes. */
function superFrame(plen: number): Buffer {
  const f = Buffer.alloc(14 + 20 + 32 + plen);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(20 + 32 + plen, 16);
  f[22] = 64;
  f[23] = 6;
  f[34 + 12] = 8 << 4;
  f[34 + 13] = 0x10;
  f.set([1, 1, 8, 10], 54);
  for (let i = 66; i < f.length; i++) f[i] = i & 0xff;
  return f;
}

const addon = loadAddon();
const k = addon.constants;
const frame = superFrame(PAYLOAD);
const prefix = Buffer.from([0x08, 0, 0, 0, 0, 0, 42, 0]);
const out = Buffer.alloc(Math.ceil(PAYLOAD / MSS) * (MSS + 200) + 4096);
const segLens = new Uint32Array(257);
let segs = 0;
const segUs = cpuUs(() => {
  for (let i = 0; i < ITERS; i++) segs = addon.gsoSegment(frame, k.GSO_TCPV4, MSS, prefix, out, segLens);
});
if (segs <= 0) throw new Error(`segmentation failed (${segs})`);

// The segments (without the VXLAN prefix) as the receive side sees them.
const stride = segLens[segLens.length - 1];
const offs = new Uint32Array(segs);
const lens = new Uint32Array(segs);
for (let i = 0; i < segs; i++) {
  offs[i] = i * stride + prefix.length;
  lens[i] = segLens[i] - prefix.length;
}
const merged = Buffer.alloc(frame.length + 4096);
const info = new Uint32Array(3 * segs);
let outputs = 0;
const coalUs = cpuUs(() => {
  for (let i = 0; i < ITERS; i++) outputs = addon.groCoalesce(out, offs, lens, segs, 64, merged, info);
});

/** Internet checksum (RFC 1071) of b. */
function csum(b: Buffer): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += b.readUInt16BE(i);
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** 64 IPv4 UDP datagrams of one flow (IDs counting up, valid checksums), back to back. */
function udpRun(size: number, n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    const f = Buffer.alloc(14 + 20 + 8 + size);
    f.writeUInt16BE(0x0800, 12);
    f[14] = 0x45;
    f.writeUInt16BE(28 + size, 16);
    f.writeUInt16BE(1000 + i, 18);
    f.writeUInt16BE(0x4000, 20);
    f[22] = 64;
    f[23] = 17;
    f.set([198, 19, 0, 1, 198, 19, 0, 2], 26);
    f.writeUInt16BE(csum(f.subarray(14, 34)), 24);
    f.writeUInt16BE(40000, 34);
    f.writeUInt16BE(5201, 36);
    f.writeUInt16BE(8 + size, 38);
    for (let j = 42; j < f.length; j++) f[j] = (i + j) & 0xff;
    const pseudo = Buffer.alloc(12);
    f.copy(pseudo, 0, 26, 34);
    pseudo[9] = 17;
    pseudo.writeUInt16BE(8 + size, 10);
    f.writeUInt16BE(csum(Buffer.concat([pseudo, f.subarray(34)])) || 0xffff, 40);
    return f;
  });
}
const dgrams = udpRun(UDP_SIZE, 64);
const uslab = Buffer.concat(dgrams);
const uoffs = new Uint32Array(dgrams.map((_, i) => i * dgrams[0].length));
const ulens = new Uint32Array(dgrams.map((d) => d.length));
const umerged = Buffer.alloc(uslab.length + 4096);
const uinfo = new Uint32Array(3 * dgrams.length);
let uoutputs = 0;
const udpUs = cpuUs(() => {
  for (let i = 0; i < ITERS; i++) uoutputs = addon.groCoalesce(uslab, uoffs, ulens, dgrams.length, 64, umerged, uinfo);
});
if (uoutputs !== 1) throw new Error(`UDP run not coalesced (${uoutputs} outputs)`);

const gbit = (us: number) => (PAYLOAD * 8 * ITERS) / (us / 1e6) / 1e9;
const result = {
  payload: PAYLOAD,
  mss: MSS,
  segments: segs,
  segment: { usPerSuperFrame: segUs / ITERS, nsPerSegment: (segUs * 1000) / ITERS / segs, gbitPerCpuSecond: gbit(segUs) },
  coalesce: { outputs, usPerRun: coalUs / ITERS, nsPerSegment: (coalUs * 1000) / ITERS / segs, gbitPerCpuSecond: gbit(coalUs) },
  udpCoalesce: { size: UDP_SIZE, datagrams: dgrams.length, outputs: uoutputs, usPerRun: udpUs / ITERS, nsPerDatagram: (udpUs * 1000) / ITERS / dgrams.length },
};
if (process.argv.includes('--json')) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  console.log(`segmentation  ${PAYLOAD} B / mss ${MSS} → ${segs} frames: ${result.segment.usPerSuperFrame.toFixed(2)} µs CPU per super-frame, `
    + `${result.segment.nsPerSegment.toFixed(0)} ns per segment, ${result.segment.gbitPerCpuSecond.toFixed(1)} Gbit/s per CPU second`);
  console.log(`coalescing    ${segs} frames → ${outputs} GSO frame(s) (checksums verified, copied): ${result.coalesce.usPerRun.toFixed(2)} µs CPU per run, `
    + `${result.coalesce.nsPerSegment.toFixed(0)} ns per segment, ${result.coalesce.gbitPerCpuSecond.toFixed(1)} Gbit/s per CPU second`);
  console.log(`UDP coalescing ${dgrams.length} × ${UDP_SIZE} B datagrams → 1 UDP GSO frame (checksums verified, copied): `
    + `${result.udpCoalesce.usPerRun.toFixed(2)} µs CPU per run, ${result.udpCoalesce.nsPerDatagram.toFixed(0)} ns per datagram`);
}
