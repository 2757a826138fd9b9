/**
 * Tiny TCP transfer tool for the lab (run inside a namespace with `node dist/lab/xfer.js`):
 *
 *   sink   <address> <port> [timeoutMs]          listen, print "listening", accept ONE connection,
 *                                                hash everything received, print {"bytes","sha256"}
 *   source <address> <port> <bytes> [timeoutMs]  connect, send <bytes> random bytes (hashed while
 *                                                sent), print {"bytes","sha256"}
 *
 * Both exit non-zero on error or after timeoutMs (default 30 000), so a lost connection never hangs
 * a test. The data is random (crypto.randomBytes), so a corrupted or truncated copy cannot match.
 */

import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';

function fail(msg: string): never {
  process.stderr.write(`xfer: ${msg}\n`);
  process.exit(1);
}

function sink(address: string, port: number, timeoutMs: number): void {
  const timer = setTimeout(() => fail(`sink timed out after ${timeoutMs} ms`), timeoutMs);
  const server = net.createServer((sock) => {
    server.close();
    const h = createHash('sha256');
    let bytes = 0;
    sock.on('data', (d: Buffer) => {
      h.update(d);
      bytes += d.length;
    });
    sock.on('end', () => {
      clearTimeout(timer);
      process.stdout.write(JSON.stringify({ bytes, sha256: h.digest('hex') }) + '\n');
      sock.end();
    });
    sock.on('error', (e) => fail(`sink: ${e.message}`));
  });
  server.on('error', (e) => fail(`listen: ${e.message}`));
  server.listen({ host: address, port }, () => process.stdout.write('listening\n'));
}

function source(address: string, port: number, total: number, timeoutMs: number): void {
  const timer = setTimeout(() => fail(`source timed out after ${timeoutMs} ms`), timeoutMs);
  const h = createHash('sha256');
  const chunk = 64 * 1024;
  let sent = 0;
  const sock = net.connect({ host: address, port }, () => {
    const pump = () => {
      while (sent < total) {
        const n = Math.min(chunk, total - sent);
        const buf = randomBytes(n);
        h.update(buf);
        sent += n;
        if (!sock.write(buf)) {
          sock.once('drain', pump);
          return;
        }
      }
      sock.end();
    };
    pump();
  });
  sock.on('error', (e) => fail(`source: ${e.message}`));
  sock.on('close', (hadError) => {
    if (hadError) return;
    clearTimeout(timer);
    process.stdout.write(JSON.stringify({ bytes: sent, sha256: h.digest('hex') }) + '\n');
  });
  sock.resume();
}

if (require.main === module) {
  const [mode, address, port, a, b] = process.argv.slice(2);
  if (mode === 'sink' && address && port) sink(address, Number(port), Number(a ?? 30_000));
  else if (mode === 'source' && address && port && a) source(address, Number(port), Number(a), Number(b ?? 30_000));
  else fail('usage: xfer sink <addr> <port> [timeoutMs] | xfer source <addr> <port> <bytes> [timeoutMs]');
}
