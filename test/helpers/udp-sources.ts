/**
 * Sends one plain VXLAN datagram from each of `count` consecutive IPv4 source addresses, for the
 * admission netns test's flood (issue 18). Run inside a lab namespace where the addresses are
 * local (e.g. `ip route add local 198.18.128.0/17 dev lo`):
 *
 *   node udp-sources.js <dst-address> <dst-port> <vni> <first-source> <count> [burst=32] [pauseMs=2]
 *
 * Datagram i: VXLAN header (I flag, `vni`) + an Ethernet broadcast frame from MAC 02:5e:00:<i>
 * (24 bits) with 46 bytes of payload. Sockets are opened one at a time (bind to the source, send,
 * close); a pause after every `burst` datagrams keeps the receiver's socket buffer from overflowing.
 * Bounded: `count` ≤ 65536. Prints {"sent": n}; exits 1 on error.
 */
import * as dgram from 'node:dgram';

function ipv4(text: string): number {
  const p = text.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`bad IPv4 address ${text}`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}
const text = (v: number) => `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;

/** The datagram sent from source number `i`. */
export function sourceDatagram(vni: number, i: number): Buffer {
  const d = Buffer.alloc(8 + 14 + 46);
  d[0] = 0x08;
  d.writeUIntBE(vni, 4, 3);
  d.fill(0xff, 8, 14);
  d[14] = 0x02;
  d[15] = 0x5e;
  d[16] = 0;
  d.writeUIntBE(i & 0xffffff, 17, 3);
  d.writeUInt16BE(0x0800, 20);
  return d;
}

async function main(): Promise<void> {
  const [dst, portArg, vniArg, firstArg, countArg, burstArg, pauseArg] = process.argv.slice(2);
  if (!dst || !portArg || !vniArg || !firstArg || !countArg) throw new Error('usage: udp-sources <dst> <port> <vni> <first-source> <count> [burst] [pauseMs]');
  const port = Number(portArg);
  const vni = Number(vniArg);
  const first = ipv4(firstArg);
  const count = Number(countArg);
  if (!Number.isInteger(count) || count < 1 || count > 65536) throw new Error('count must be 1..65536');
  const burst = Number(burstArg ?? 32);
  const pauseMs = Number(pauseArg ?? 2);
  let sent = 0;
  for (let i = 0; i < count; i++) {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: text(first + i), port: 0, exclusive: true }, () => resolve());
    });
    await new Promise<void>((resolve, reject) => sock.send(sourceDatagram(vni, i), port, dst, (err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve) => sock.close(() => resolve()));
    sent++;
    if (sent % burst === 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
  process.stdout.write(JSON.stringify({ sent }) + '\n');
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`udp-sources: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
