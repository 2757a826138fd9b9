/**
 * Chaos-lab flooder (run inside a lab namespace): forged handshake initiations — 148 bytes, type 1,
 * reserved bytes zero, everything else random, so mac1 never verifies — sent to ADDRESS:PORT at
 * RATE per second for at most SECONDS and at most MAX datagrams (bounded in count and time).
 *
 * Efficient on purpose, so that the measurement is of the agent, not of the flooder: datagrams go
 * out through the addon's UDP transport (native/udp.c: sendmmsg, up to 256 per call, one call per
 * tick), paced from the elapsed time. Its own CPU time is measured and printed.
 * Prints one JSON line: { sent, seconds, rate, eagain, cpuS, cpuPct } (cpuPct: of one core).
 * Usage: node dist/bench/chaos/flood.js ADDRESS PORT RATE SECONDS MAX
 */
import * as crypto from 'node:crypto';

import { ADDR_LEN, writeRecord } from '../../src/dataplane/addr';
import { NativeUdp } from '../../src/dataplane/native-io';
import type { TxBatch } from '../../src/dataplane/seams';

const [address, port, rate, seconds, max] = process.argv.slice(2);
const RATE = Number(rate);
const MAXN = Number(max);
const SECS = Number(seconds);
const BATCH = 256;
const LEN = 148;
const POOL = 1024;

const udp = NativeUdp.open({ address: '0.0.0.0', port: 0, bufferBytes: 4 << 20 });
const pool = crypto.randomBytes(LEN * POOL);
for (let i = 0; i < POOL; i++) {
  pool[i * LEN] = 1;
  pool[i * LEN + 1] = 0;
  pool[i * LEN + 2] = 0;
  pool[i * LEN + 3] = 0;
}
const b: TxBatch = {
  slab: pool, offs: new Uint32Array(BATCH), lens: new Uint32Array(BATCH).fill(LEN), addrs: Buffer.alloc(BATCH * ADDR_LEN),
  srcIdx: new Uint8Array(BATCH), status: new Int32Array(BATCH), count: 0,
};
for (let j = 0; j < BATCH; j++) writeRecord(b.addrs, j * ADDR_LEN, { address, port: Number(port), family: 4 });

const cpu0 = process.cpuUsage();
const started = Date.now();
const endAt = started + SECS * 1000;
let sent = 0;
let eagain = 0;

function tick(): void {
  const now = Date.now();
  if (now >= endAt || sent >= MAXN) return finish();
  const due = Math.min(MAXN, Math.floor(((now - started) / 1000) * RATE));
  // at most 8 batches per tick: a backlog (the process was descheduled) is caught up over a few ticks
  for (let k = 0; k < 8 && sent < due; k++) {
    const n = Math.min(BATCH, due - sent);
    for (let j = 0; j < n; j++) b.offs[j] = ((sent + j) % POOL) * LEN;
    b.count = n;
    const c = udp.sendBatch(b);
    sent += c;
    if (c < n) {
      eagain++;
      break;
    }
  }
  if (sent >= due) setTimeout(tick, 1);
  else setImmediate(tick);
}

function finish(): void {
  const secs = (Date.now() - started) / 1000;
  const u = process.cpuUsage(cpu0);
  const cpuS = (u.user + u.system) / 1e6;
  udp.close();
  process.stdout.write(`${JSON.stringify({ sent, seconds: secs, rate: Math.round(sent / secs), eagain, cpuS: Math.round(cpuS * 100) / 100, cpuPct: Math.round((cpuS / secs) * 1000) / 10 })}\n`);
}
tick();
