/**
 * A UDP echo for the lab, so the demo does not need `ping` (iputils) — run inside a namespace
 * with `node dist/lab/echo.js`:
 *
 *   server <address> <port> [timeoutMs]                 print "listening", echo every datagram
 *                                                       back to its sender until timeoutMs
 *   client <address> <port> <count> [intervalMs] [waitMs]
 *                                                       send <count> numbered datagrams, print
 *                                                       {"transmitted","received","rttMs":[...]}
 *
 * Each request carries its sequence number and a random tag, so a stray or duplicated reply is
 * not counted twice. Both exit non-zero on error; the client waits at most waitMs (default 2000)
 * for the last reply.
 */

import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { isIP } from 'node:net';

function fail(msg: string): never {
  process.stderr.write(`echo: ${msg}\n`);
  process.exit(1);
}

function socketFor(address: string): dgram.Socket {
  return dgram.createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
}

function server(address: string, port: number, timeoutMs: number): void {
  const s = socketFor(address);
  const timer = setTimeout(() => s.close(), timeoutMs);
  timer.unref();
  s.on('error', (e) => fail(`server: ${e.message}`));
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(port, address, () => process.stdout.write('listening\n'));
}

export interface EchoResult {
  transmitted: number;
  received: number;
  rttMs: number[];
}

function client(address: string, port: number, count: number, intervalMs: number, waitMs: number): Promise<EchoResult> {
  return new Promise((resolve) => {
    const s = socketFor(address);
    const tag = randomBytes(8);
    const sentAt = new Map<number, bigint>();
    const rtt: number[] = [];
    let transmitted = 0;
    let finish: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(finish);
      s.close();
      resolve({ transmitted, received: rtt.length, rttMs: rtt });
    };
    s.on('error', (e) => fail(`client: ${e.message}`));
    s.on('message', (m) => {
      if (m.length !== 12 || !m.subarray(4).equals(tag)) return;
      const seq = m.readUInt32BE(0);
      const t0 = sentAt.get(seq);
      if (t0 === undefined) return;
      sentAt.delete(seq);
      rtt.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (rtt.length === count) done();
    });
    const send = (seq: number) => {
      const b = Buffer.alloc(12);
      b.writeUInt32BE(seq, 0);
      tag.copy(b, 4);
      sentAt.set(seq, process.hrtime.bigint());
      transmitted++;
      s.send(b, port, address);
      if (seq + 1 < count) setTimeout(() => send(seq + 1), intervalMs);
      else finish = setTimeout(done, waitMs);
    };
    s.bind(0, () => send(0));
  });
}

if (require.main === module) {
  const [mode, address, portS, a, b, c] = process.argv.slice(2);
  const port = Number(portS);
  if (!address || !Number.isInteger(port) || port < 1 || port > 65535) fail('usage: echo.js server|client <address> <port> ...');
  if (mode === 'server') server(address, port, Number(a ?? 30_000));
  else if (mode === 'client') {
    const count = Number(a ?? 3);
    if (!Number.isInteger(count) || count < 1 || count > 100_000) fail('count must be in [1, 100000]');
    client(address, port, count, Number(b ?? 200), Number(c ?? 2000)).then((r) => process.stdout.write(JSON.stringify(r) + '\n'));
  } else fail(`unknown mode ${mode}`);
}
