/**
 * Micro-benchmark: the admission check the inbound path runs once per plaintext datagram
 * (src/dataplane/admission.ts `AcceptTable.check` on an 18-byte record in a receive batch).
 *
 *   node dist/bench/micro/admission.js [--ms 300] [--json]
 *
 * Cases: a known host (table of 2 and of 1,000 hosts), a refused stranger, a stranger matched
 * against a list of 16 CIDRs (last one matches), with JS-heap bytes allocated per check (from GC
 * statistics; ≈ 0 when nothing is allocated). Every loop is bounded in time (--ms per case).
 */
import { GCProfiler } from 'node:v8';
import { ADDR_LEN, endpointToRecord } from '../../src/dataplane/addr';
import { AcceptTable } from '../../src/dataplane/admission';

const i = process.argv.indexOf('--ms');
const MS = i >= 0 ? Number(process.argv[i + 1]) : 300;
const JSON_OUT = process.argv.includes('--json');
const BATCH = 64;

interface Row { name: string; nsPerOp: number; heapBytesPerOp: number }
const rows: Row[] = [];
let sink = 0;

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

/** A batch of BATCH records, all from `address`. */
function batch(address: string): Buffer {
  const b = Buffer.alloc(BATCH * ADDR_LEN);
  const r = endpointToRecord({ address, port: 40000, family: address.includes(':') ? 6 : 4 });
  for (let k = 0; k < BATCH; k++) r.copy(b, k * ADDR_LEN);
  return b;
}

function bench(name: string, t: AcceptTable, addrs: Buffer): void {
  const pass = () => { for (let k = 0; k < BATCH; k++) sink += t.check(addrs, k * ADDR_LEN); };
  const warm = performance.now() + 100;
  while (performance.now() < warm) pass();
  let calls = 0;
  const t0 = performance.now();
  let now = t0;
  const alloc = allocatedDuring(() => {
    while (now < t0 + MS) {
      for (let k = 0; k < 64; k++) pass();
      calls += 64;
      now = performance.now();
    }
  });
  const ops = calls * BATCH;
  rows.push({ name, nsPerOp: ((now - t0) * 1e6) / ops, heapBytesPerOp: alloc / ops });
}

const small = new AcceptTable();
small.setKnownEndpoints([{ address: '198.18.0.2', port: 4789, family: 4 }, { address: '198.18.0.3', port: 4789, family: 4 }]);
const large = new AcceptTable();
large.setKnownEndpoints(Array.from({ length: 1000 }, (_, k) => ({ address: `198.18.${k >> 8}.${k & 255}`, port: 4789, family: 4 as const })));
const cidrs = new AcceptTable(Array.from({ length: 16 }, (_, k) => `203.0.${k}.0/24`));
const v6 = new AcceptTable();
v6.setKnownEndpoints([{ address: '2001:2::2', port: 4789, family: 6 }]);

bench('known host, 2 known (IPv4)', small, batch('198.18.0.2'));
bench('known host, 1,000 known (IPv4)', large, batch('198.18.3.200'));
bench('known host (IPv6)', v6, batch('2001:2::2'));
bench('stranger refused, 1,000 known', large, batch('198.19.0.9'));
bench('stranger, 16 CIDRs (last matches)', cidrs, batch('203.0.15.7'));

if (JSON_OUT) {
  console.log(JSON.stringify({ rows, sink }, null, 2));
} else {
  console.log(`admission micro-benchmark (${MS} ms per case, node ${process.version})`);
  console.log('| case | ns/check | heap B/check |');
  console.log('|---|---:|---:|');
  for (const r of rows) console.log(`| ${r.name} | ${r.nsPerOp.toFixed(1)} | ${r.heapBytesPerOp.toFixed(3)} |`);
}
