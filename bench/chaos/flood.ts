/**
 * Chaos-lab flooder (run inside a lab namespace): forged handshake initiations — 148 bytes, type 1,
 * reserved bytes zero, everything else random, so mac1 never verifies — sent to ADDRESS:PORT at
 * RATE per second for at most SECONDS and at most MAX datagrams (bounded in count and time).
 * Prints one JSON line: { sent, seconds, rate }.
 * Usage: node dist/bench/chaos/flood.js ADDRESS PORT RATE SECONDS MAX
 */
import * as crypto from 'node:crypto';
import * as dgram from 'node:dgram';

const [address, port, rate, seconds, max] = process.argv.slice(2);
const RATE = Number(rate);
const MAXN = Number(max);
const sock = dgram.createSocket('udp4');
const pool = crypto.randomBytes(148 * 256);
for (let i = 0; i < 256; i++) {
  pool[i * 148] = 1;
  pool[i * 148 + 1] = 0;
  pool[i * 148 + 2] = 0;
  pool[i * 148 + 3] = 0;
}
const started = Date.now();
const endAt = started + Number(seconds) * 1000;
let sent = 0;
let inFlight = 0;
const TICK = 5;
function tick(): void {
  const now = Date.now();
  if (now >= endAt || sent >= MAXN) return finish();
  // Catch up to where the rate says we should be, without more than 4096 sends in flight.
  const due = Math.min(MAXN, Math.floor(((now - started) / 1000) * RATE));
  while (sent < due && inFlight < 4096) {
    const i = sent & 255;
    inFlight++;
    sock.send(pool, i * 148, 148, Number(port), address, () => { inFlight--; });
    sent++;
  }
  setTimeout(tick, TICK);
}
function finish(): void {
  const secs = (Date.now() - started) / 1000;
  const wait = () => (inFlight > 0 && Date.now() - started < Number(seconds) * 1000 + 5000 ? setTimeout(wait, 10) : done());
  const done = () => {
    process.stdout.write(`${JSON.stringify({ sent, seconds: secs, rate: Math.round(sent / secs) })}\n`);
    sock.close();
  };
  wait();
}
tick();
