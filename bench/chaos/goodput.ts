/**
 * Lean TCP goodput probe for the chaos lab (run inside a namespace): no hashing, no random data, so
 * that its own CPU does not compete with what is measured (lab/xfer.ts checks integrity instead).
 *
 *   sink   <address> <port> <timeoutMs>   listen, print "listening", accept ONE connection, count
 *                                         bytes; at its end print {"bytes","seconds"} (first → last byte)
 *   source <address> <port> <seconds>     connect, write a fixed 256 KiB buffer for <seconds>, end
 *
 * Both exit non-zero on error or timeout, so a lost connection never hangs a run.
 */
import * as net from 'node:net';

function fail(msg: string): never {
  process.stderr.write(`goodput: ${msg}\n`);
  process.exit(1);
}

function sink(address: string, port: number, timeoutMs: number): void {
  const timer = setTimeout(() => fail(`sink timed out after ${timeoutMs} ms`), timeoutMs);
  const server = net.createServer((sock) => {
    server.close();
    let bytes = 0;
    let first = 0n;
    let last = 0n;
    sock.on('data', (d: Buffer) => {
      if (bytes === 0) first = process.hrtime.bigint();
      bytes += d.length;
      last = process.hrtime.bigint();
    });
    sock.on('end', () => {
      clearTimeout(timer);
      process.stdout.write(`${JSON.stringify({ bytes, seconds: Number(last - first) / 1e9 })}\n`);
      sock.end();
    });
    sock.on('error', (e) => fail(`sink: ${e.message}`));
  });
  server.on('error', (e) => fail(`listen: ${e.message}`));
  server.listen({ host: address, port }, () => process.stdout.write('listening\n'));
}

function source(address: string, port: number, seconds: number): void {
  const timer = setTimeout(() => fail('source timed out'), seconds * 1000 + 30_000);
  const buf = Buffer.alloc(256 * 1024, 0x5a);
  const endAt = Date.now() + seconds * 1000;
  const sock = net.connect({ host: address, port }, () => {
    const pump = () => {
      while (Date.now() < endAt) {
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
    clearTimeout(timer);
    if (hadError) process.exit(1);
  });
  sock.resume();
}

const [mode, address, port, arg] = process.argv.slice(2);
if (mode === 'sink') sink(address, Number(port), Number(arg));
else if (mode === 'source') source(address, Number(port), Number(arg));
else fail('usage: goodput sink ADDRESS PORT TIMEOUT_MS | source ADDRESS PORT SECONDS');
