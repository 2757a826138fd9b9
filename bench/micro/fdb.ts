/**
 * Micro-benchmark: FDB operations on the hot path (typed-array open-addressing index + LRU list)
 * against a plain `Map<number, object>` keyed by the 48-bit MAC for reference.
 *
 *   node dist/bench/micro/fdb.js [--ms 300] [--entries 10000] [--json]
 *
 * Cases: lookup hit, lookup miss, learn refresh (existing entry: seen time + LRU move), learn of new
 * MACs with eviction at the bound (churn). Every loop is bounded in time (--ms per case).
 */
import { FakeClock } from '../../src/clock';
import { Fdb } from '../../src/dataplane/fdb';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const MS = arg('--ms', 300);
const N = arg('--entries', 10_000);
const JSON_OUT = process.argv.includes('--json');

interface Row { name: string; opsPerSec: number; nsPerOp: number; heapBytesPerOp: number }
const rows: Row[] = [];

function bench(name: string, opsPerCall: number, fn: () => void): void {
  const warmEnd = performance.now() + Math.min(100, MS / 3);
  while (performance.now() < warmEnd) fn();
  const h0 = process.memoryUsage().heapUsed;
  let calls = 0;
  const t0 = performance.now();
  const end = t0 + MS;
  let now = t0;
  while (now < end) {
    fn();
    calls++;
    now = performance.now();
  }
  const ops = calls * opsPerCall;
  const secs = (now - t0) / 1000;
  rows.push({ name, opsPerSec: ops / secs, nsPerOp: (secs * 1e9) / ops, heapBytesPerOp: Math.max(0, process.memoryUsage().heapUsed - h0) / ops });
}

const clock = new FakeClock(0);
const fdb = new Fdb<string>({ ageingSeconds: 300, maxEntries: N, clock });
const his = new Uint16Array(N);
const los = new Uint32Array(N);
for (let i = 0; i < N; i++) {
  his[i] = 0x0242;
  los[i] = (Math.imul(i, 2654435761) >>> 0);
  fdb.learnRemote(his[i], los[i], 'peer');
}
let sink = 0;
const STEP = 1000;
let cursor = 0;
fdb.setNow(1); // the data path sets the time once per batch
bench('fdb lookup hit', STEP, () => {
  for (let k = 0; k < STEP; k++) {
    const i = (cursor + k * 7) % N;
    sink += fdb.lookup(his[i], los[i]);
  }
  cursor = (cursor + 1) % N;
});
bench('fdb lookup miss', STEP, () => {
  for (let k = 0; k < STEP; k++) sink += fdb.lookup(0x0243, k);
});
fdb.setNow(2);
bench('fdb learn refresh (existing)', STEP, () => {
  for (let k = 0; k < STEP; k++) {
    const i = (cursor + k * 13) % N;
    fdb.learnRemote(his[i], los[i], 'peer');
  }
  cursor = (cursor + 1) % N;
});
let fresh = 0;
fdb.setNow(3);
bench('fdb learn new + evict oldest', STEP, () => {
  for (let k = 0; k < STEP; k++) fdb.learnRemote(0x0a00, fresh++ >>> 0, 'peer');
});

// reference: a Map keyed by the 48-bit number, refreshed by re-insertion (what the FDB avoids)
const map = new Map<number, { peer: string; seen: number }>();
const keys = new Float64Array(N);
for (let i = 0; i < N; i++) {
  keys[i] = his[i] * 0x100000000 + los[i];
  map.set(keys[i], { peer: 'peer', seen: 0 });
}
bench('reference Map<number48> get hit', STEP, () => {
  for (let k = 0; k < STEP; k++) {
    const e = map.get(keys[(cursor + k * 7) % N]);
    if (e) sink += e.seen;
  }
  cursor = (cursor + 1) % N;
});
bench('reference Map delete+set refresh', STEP, () => {
  for (let k = 0; k < STEP; k++) {
    const key = keys[(cursor + k * 13) % N];
    const e = map.get(key)!;
    map.delete(key);
    e.seen = 2;
    map.set(key, e);
  }
  cursor = (cursor + 1) % N;
});

if (JSON_OUT) {
  console.log(JSON.stringify({ entries: N, rows, evictions: fdb.evictions, sink }, null, 2));
} else {
  console.log(`FDB micro-benchmarks (${N} entries, ${MS} ms per case, node ${process.version})`);
  console.log('| case | ops/s | ns/op | heap B/op |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.name} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} | ${r.nsPerOp.toFixed(1)} | ${r.heapBytesPerOp.toFixed(2)} |`);
  console.log(`(evictions during churn: ${fdb.evictions}; size ${fdb.size})`);
}
