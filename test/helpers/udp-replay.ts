/**
 * Sends a file of datagrams over UDP, paced, then prints {"sent": n}. Run inside a lab namespace:
 *
 *   node dist/test/helpers/udp-replay.js <file> <dst-address> <dst-port> [burst=32] [pauseMs=2]
 *
 * File format: repeated [u32 big-endian length][bytes] records (see `encodeDatagrams`). The pacing
 * (a pause after every `burst` datagrams) keeps the receiver's socket buffer from overflowing, so
 * a test can expect every datagram to be counted. Bounded: the file is finite; exits 1 on error.
 */

import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';

/** Packs datagrams into the file format read by this tool. */
export function encodeDatagrams(datagrams: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const d of datagrams) {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(d.length, 0);
    parts.push(h, d);
  }
  return Buffer.concat(parts);
}

function decode(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt32BE(off);
    off += 4;
    if (off + len > buf.length) throw new Error('truncated datagram file');
    out.push(buf.subarray(off, off + len));
    off += len;
  }
  return out;
}

async function main(): Promise<void> {
  const [file, address, port, burstArg, pauseArg] = process.argv.slice(2);
  if (!file || !address || !port) throw new Error('usage: udp-replay <file> <address> <port> [burst] [pauseMs]');
  const burst = Number(burstArg ?? 32);
  const pauseMs = Number(pauseArg ?? 2);
  const datagrams = decode(fs.readFileSync(file));
  const sock = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
  const send = (d: Buffer) =>
    new Promise<void>((resolve, reject) => sock.send(d, Number(port), address, (err) => (err ? reject(err) : resolve())));
  let sent = 0;
  for (const d of datagrams) {
    await send(d);
    sent++;
    if (sent % burst === 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
  sock.close();
  process.stdout.write(JSON.stringify({ sent }) + '\n');
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`udp-replay: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
