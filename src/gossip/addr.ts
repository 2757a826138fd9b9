/**
 * Gossip addresses: "host:port" strings (IPv6 as "[addr]:port") and their compact binary form
 * (1 family byte + 4/16 address bytes + 2 port bytes) used by the codec. Parsing is strict: a
 * malformed address is an error, never a guess.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
  family: 4 | 6;
}

/** Formats host and port as a transport address ("198.18.0.1:7946", "[2001:2::1]:7946"). */
export function formatAddr(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parses "a.b.c.d:port" or "[v6]:port"; returns null when malformed. */
export function parseAddr(s: string, defaultPort?: number): HostPort | null {
  let host: string;
  let portStr: string | undefined;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) return null;
    host = s.slice(1, end);
    const rest = s.slice(end + 1);
    if (rest === '') portStr = undefined;
    else if (rest.startsWith(':')) portStr = rest.slice(1);
    else return null;
  } else if (isIPv6(s)) {
    host = s;
  } else {
    const i = s.lastIndexOf(':');
    if (i < 0) host = s;
    else {
      host = s.slice(0, i);
      portStr = s.slice(i + 1);
    }
  }
  let port: number;
  if (portStr === undefined) {
    if (defaultPort === undefined) return null;
    port = defaultPort;
  } else {
    if (!/^[0-9]{1,5}$/.test(portStr)) return null;
    port = Number(portStr);
  }
  if (port < 1 || port > 65535) return null;
  if (isIPv4(host)) return { host, port, family: 4 };
  if (isIPv6(host)) return { host: canonicalV6(host), port, family: 6 };
  return null;
}

/** Writes the binary form of `ip` into `out` at `off`; returns bytes written (4 or 16). */
export function ipToBytes(ip: string, out: Uint8Array, off: number): number {
  if (isIPv4(ip)) {
    const p = ip.split('.');
    for (let i = 0; i < 4; i++) out[off + i] = Number(p[i]);
    return 4;
  }
  if (!isIPv6(ip)) throw new RangeError(`not an IP address: ${ip}`);
  const words = v6Words(ip);
  for (let i = 0; i < 8; i++) {
    out[off + 2 * i] = words[i] >> 8;
    out[off + 2 * i + 1] = words[i] & 0xff;
  }
  return 16;
}

export function bytesToIp(b: Uint8Array, off: number, family: 4 | 6): string {
  if (family === 4) return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[off + 2 * i] << 8) | b[off + 2 * i + 1]);
  return formatV6(w);
}

function v6Words(ip: string): number[] {
  let s = ip;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  let tail: number[] = [];
  // Embedded IPv4 (::ffff:1.2.3.4).
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {
    const v4 = s.slice(lastColon + 1).split('.').map(Number);
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    s = s.slice(0, lastColon + 1) + '0';
    s = s.slice(0, -1);
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1);
  }
  const parts = s.split('::');
  const head = parts[0] ? parts[0].split(':').map((x) => parseInt(x, 16)) : [];
  const rest = parts.length > 1 && parts[1] ? parts[1].split(':').map((x) => parseInt(x, 16)) : [];
  const fill = 8 - tail.length - head.length - rest.length;
  const words = [...head, ...new Array(parts.length > 1 ? fill : 0).fill(0), ...rest, ...tail];
  return words.slice(0, 8);
}

function formatV6(w: number[]): string {
  // RFC 5952: longest run (≥ 2) of zero words becomes "::".
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical (RFC 5952) text of an IPv6 address. */
export function canonicalV6(ip: string): string {
  return formatV6(v6Words(ip));
}
