/**
 * UDP datagram integrity tool for netns tests (run with node inside a namespace):
 *
 *   node udp-burst.js sink <addr> <port> <count> <timeoutMs>
 *     prints "listening", then one JSON line {received, bad, duplicates, seen} when `count`
 *     datagrams arrived, 2 s passed without one, or timeoutMs passed.
 *   node udp-burst.js source <addr> <port> <count> <size> <burst>
 *     sends `count` datagrams of `size` bytes from one connected socket, `burst` at a time with a
 *     2 ms pause between bursts (bounded: count is the whole load), prints {sent}.
 *
 * Datagram i carries i (4 bytes) then bytes that are a function of (i, offset), so the sink can
 * check every byte of every datagram without the sender telling it anything else.
 */
import * as dgram from 'node:dgram';

function fill(i: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32BE(i, 0);
  for (let k = 4; k < size; k++) b[k] = (i * 131 + k * 7) & 0xff;
  return b;
}

function sink(addr: string, port: number, count: number, timeoutMs: number): void {
  const s = dgram.createSocket('udp4');
  const seen = new Set<number>();
  let bad = 0;
  let duplicates = 0;
  let idle: NodeJS.Timeout | undefined;
  const done = () => {
    clearTimeout(idle);
    clearTimeout(limit);
    process.stdout.write(`${JSON.stringify({ received: seen.size, bad, duplicates })}\n`);
    s.close();
  };
  const limit = setTimeout(done, timeoutMs);
  s.on('message', (m) => {
    if (m.length < 4 || !m.equals(fill(m.readUInt32BE(0), m.length))) bad++;
    else if (seen.has(m.readUInt32BE(0))) duplicates++;
    else seen.add(m.readUInt32BE(0));
    clearTimeout(idle);
    if (seen.size >= count) done();
    else idle = setTimeout(done, 2000);
  });
  s.bind(port, addr, () => process.stdout.write('listening\n'));
}

async function source(addr: string, port: number, count: number, size: number, burst: number): Promise<void> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((res) => s.connect(port, addr, () => res()));
  let sent = 0;
  while (sent < count) {
    const n = Math.min(burst, count - sent);
    await Promise.all(Array.from({ length: n }, (_, k) => new Promise<void>((res, rej) => s.send(fill(sent + k, size), (e) => (e ? rej(e) : res())))));
    sent += n;
    await new Promise((r) => setTimeout(r, 2));
  }
  process.stdout.write(`${JSON.stringify({ sent })}\n`);
  s.close();
}

const [mode, addr, port, a, b, c] = process.argv.slice(2);
if (mode === 'sink') sink(addr, Number(port), Number(a), Number(b));
else if (mode === 'source') void source(addr, Number(port), Number(a), Number(b), Number(c));
else {
  process.stderr.write('usage: udp-burst sink|source …\n');
  process.exitCode = 2;
}
