/**
 * Underlay address records ⇄ `Endpoint`, and peer keys.
 *
 * A record is 18 bytes (see `io.ts`): the 16-byte IPv6 address (IPv4 as the v4-mapped
 * `::ffff:a.b.c.d`) followed by the port, big-endian. The native UDP seam fills one per received
 * datagram and reads one per sent datagram, so records cross the JS/C boundary as bytes, never as
 * strings.
 *
 * Peer keys identify a peer HOST by its underlay ADDRESS only, not by port: a datagram's source port
 * is the sender's per-flow ECMP source port (RFC 7348 §5), so the same host shows up under many
 * ports, while we always send to its VXLAN port (as the kernel's VXLAN learns remote IPs only).
 * IPv4 keys are plain numbers (the 32-bit address; no allocation), IPv6 keys are 32-char hex
 * strings (allocated: IPv6 peers are looked up once per batch run, not per packet — see datapath).
 */
import type { AddressFamily, Endpoint } from '../config/types';
import { ADDR_LEN } from './seams';

export { ADDR_LEN };

/** A peer key: IPv4 address as an unsigned 32-bit number, or IPv6 address as lowercase hex. */
export type PeerKey = number | string;

/** True when the record at `off` holds a v4-mapped (`::ffff:a.b.c.d`) address. */
export function isV4Mapped(buf: Uint8Array, off: number): boolean {
  return (
    buf[off] === 0 && buf[off + 1] === 0 && buf[off + 2] === 0 && buf[off + 3] === 0 &&
    buf[off + 4] === 0 && buf[off + 5] === 0 && buf[off + 6] === 0 && buf[off + 7] === 0 &&
    buf[off + 8] === 0 && buf[off + 9] === 0 && buf[off + 10] === 0xff && buf[off + 11] === 0xff
  );
}

/** Port of the record at `off`. */
export function recordPort(buf: Uint8Array, off: number): number {
  return (buf[off + 16] << 8) | buf[off + 17];
}

/**
 * Peer key of the record at `off` (address only, port ignored). Allocation-free for IPv4
 * (returns the address as a number in [0, 2^32)).
 */
export function peerKeyOf(buf: Uint8Array, off: number): PeerKey {
  if (isV4Mapped(buf, off)) {
    return ((buf[off + 12] << 24) | (buf[off + 13] << 16) | (buf[off + 14] << 8) | buf[off + 15]) >>> 0;
  }
  let s = '';
  for (let i = 0; i < 16; i++) s += HEX[buf[off + i]];
  return s;
}

/** Peer key of an endpoint (same value `peerKeyOf` gives for its record). */
export function peerKeyOfEndpoint(ep: Endpoint): PeerKey {
  const rec = Buffer.alloc(ADDR_LEN);
  writeRecord(rec, 0, ep);
  return peerKeyOf(rec, 0);
}

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

/** Parses an IPv4 dotted quad into a uint32, or returns -1. */
export function parseIPv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4) return -1;
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return -1;
    const n = Number(p);
    if (n > 255) return -1;
    v = v * 256 + n;
  }
  return v;
}

/** Formats a uint32 as an IPv4 dotted quad. */
export function formatIPv4(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/**
 * Parses an IPv6 address (RFC 4291 text forms: `::` compression, trailing dotted IPv4; no zone
 * index) into 16 bytes written at `out[off]`. Returns false (and leaves `out` unspecified) when the
 * text is not a valid IPv6 address.
 */
export function parseIPv6Into(text: string, out: Uint8Array, off: number): boolean {
  if (text.length < 2 || text.length > 45) return false;
  let head = text;
  let tail = '';
  const dbl = text.indexOf('::');
  if (dbl >= 0) {
    if (text.indexOf('::', dbl + 1) >= 0) return false;
    head = text.slice(0, dbl);
    tail = text.slice(dbl + 2);
  }
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = dbl >= 0 ? (tail === '' ? [] : tail.split(':')) : [];
  const words: number[] = [];
  const all = [...headGroups, ...tailGroups];
  // A trailing dotted IPv4 counts as two groups.
  const last = all.length ? all[all.length - 1] : '';
  let v4 = -1;
  if (last.includes('.')) {
    v4 = parseIPv4(last);
    if (v4 < 0) return false;
    if (tailGroups.length) tailGroups.pop();
    else headGroups.pop();
  }
  const parseGroup = (g: string): number => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : -1);
  const headW = headGroups.map(parseGroup);
  const tailW = tailGroups.map(parseGroup);
  if (v4 >= 0) tailW.push(v4 >>> 16, v4 & 0xffff);
  if (headW.some((w) => w < 0) || tailW.some((w) => w < 0)) return false;
  if (dbl >= 0) {
    // A dotted IPv4 must be the last part: `1.2.3.4::` is invalid.
    if (v4 >= 0 && tail === '') return false;
    const fill = 8 - headW.length - tailW.length;
    if (fill < 1) return false;
    words.push(...headW);
    for (let i = 0; i < fill; i++) words.push(0);
    words.push(...tailW);
  } else {
    if (v4 >= 0) headW.push(v4 >>> 16, v4 & 0xffff);
    if (headW.length !== 8) return false;
    words.push(...headW);
  }
  for (let i = 0; i < 8; i++) {
    out[off + 2 * i] = words[i] >>> 8;
    out[off + 2 * i + 1] = words[i] & 0xff;
  }
  return true;
}

/** Formats 16 bytes at `buf[off]` as canonical IPv6 text (RFC 5952; v4-mapped as `::ffff:a.b.c.d`). */
export function formatIPv6(buf: Uint8Array, off: number): string {
  if (isV4Mapped(buf, off)) {
    return '::ffff:' + formatIPv4(((buf[off + 12] << 24) | (buf[off + 13] << 16) | (buf[off + 14] << 8) | buf[off + 15]) >>> 0);
  }
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((buf[off + 2 * i] << 8) | buf[off + 2 * i + 1]);
  // Longest run of ≥ 2 zero words (first one on a tie) becomes `::`.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  if (bestStart < 0) return w.map((x) => x.toString(16)).join(':');
  const left = w.slice(0, bestStart).map((x) => x.toString(16)).join(':');
  const right = w.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':');
  return `${left}::${right}`;
}

/** Parses an IP address of either family into 16 bytes (IPv4 v4-mapped); returns its family or 0. */
export function parseIpInto(text: string, out: Uint8Array, off: number): AddressFamily | 0 {
  const v4 = parseIPv4(text);
  if (v4 >= 0) {
    out.fill(0, off, off + 10);
    out[off + 10] = 0xff;
    out[off + 11] = 0xff;
    out[off + 12] = v4 >>> 24;
    out[off + 13] = (v4 >>> 16) & 255;
    out[off + 14] = (v4 >>> 8) & 255;
    out[off + 15] = v4 & 255;
    return 4;
  }
  return parseIPv6Into(text, out, off) ? 6 : 0;
}

/** Writes the record of `ep` at `buf[off]`. Throws TypeError on an unparsable address. */
export function writeRecord(buf: Uint8Array, off: number, ep: Endpoint): void {
  const fam = parseIpInto(ep.address, buf, off);
  if (fam === 0) throw new TypeError(`not an IP address: ${JSON.stringify(ep.address)}`);
  if (!Number.isInteger(ep.port) || ep.port < 0 || ep.port > 65535) throw new TypeError(`bad port: ${ep.port}`);
  buf[off + 16] = ep.port >>> 8;
  buf[off + 17] = ep.port & 0xff;
}

/** A new 18-byte record for `ep`. */
export function endpointToRecord(ep: Endpoint): Buffer {
  const b = Buffer.alloc(ADDR_LEN);
  writeRecord(b, 0, ep);
  return b;
}

/** The endpoint held by the record at `buf[off]` (v4-mapped → family 4, dotted quad). */
export function recordToEndpoint(buf: Uint8Array, off: number): Endpoint {
  const port = recordPort(buf, off);
  if (isV4Mapped(buf, off)) {
    const v = ((buf[off + 12] << 24) | (buf[off + 13] << 16) | (buf[off + 14] << 8) | buf[off + 15]) >>> 0;
    return { address: formatIPv4(v), port, family: 4 };
  }
  return { address: formatIPv6(buf, off), port, family: 6 };
}

/** `a.b.c.d:port` or `[v6]:port`. */
export function endpointToString(ep: Endpoint): string {
  return ep.family === 6 || ep.address.includes(':') ? `[${ep.address}]:${ep.port}` : `${ep.address}:${ep.port}`;
}

/** Canonical form of an endpoint (address text normalised through its record). */
export function canonicalEndpoint(ep: Endpoint): Endpoint {
  return recordToEndpoint(endpointToRecord(ep), 0);
}
