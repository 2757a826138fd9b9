/**
 * IP addresses and CIDR blocks as 16-byte values (IPv4 as ::ffff:a.b.c.d, the same form as the data
 * path's address records, src/dataplane/addr.ts), so one prefix comparison serves both families.
 * An IPv4 /n is stored as the 128-bit prefix 96 + n.
 */
import { formatIPv4, formatIPv6, parseIpInto } from '../dataplane/addr';

export interface Cidr {
  /** 16 bytes, host bits zero. */
  readonly addr: Uint8Array;
  /** Prefix length in the 128-bit space (IPv4: 96 + n). */
  readonly bits: number;
  readonly family: 4 | 6;
  /** Canonical text (`198.18.0.0/24`, `2001:2::/48`). */
  readonly text: string;
}

/** Parses `a.b.c.d/n` or `v6/n` (a bare address is a host route). Returns an error message on failure. */
export function parseCidr(text: string, requireAligned = true): Cidr | string {
  if (typeof text !== 'string') return 'expected a CIDR block such as 198.18.0.0/24';
  const slash = text.indexOf('/');
  const ipText = slash < 0 ? text : text.slice(0, slash);
  const addr = new Uint8Array(16);
  const family = parseIpInto(ipText, addr, 0);
  if (family === 0) return `expected a CIDR block such as 198.18.0.0/24, got ${JSON.stringify(text)}`;
  const max = family === 4 ? 32 : 128;
  let n = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) return `prefix length of ${JSON.stringify(text)} must be 0..${max}`;
    n = Number(p);
  }
  const bits = family === 4 ? 96 + n : n;
  const masked = new Uint8Array(addr);
  maskInPlace(masked, bits);
  if (requireAligned && !bytesEqual(masked, addr)) {
    return `${JSON.stringify(text)} has host bits set (did you mean ${formatCidr(masked, bits, family)}?)`;
  }
  return { addr: masked, bits, family, text: formatCidr(masked, bits, family) };
}

function maskInPlace(a: Uint8Array, bits: number): void {
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    a[i] &= keep === 8 ? 0xff : (0xff << (8 - keep)) & 0xff;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function formatCidr(a: Uint8Array, bits: number, family: 4 | 6): string {
  if (family === 4) {
    const v = ((a[12] << 24) >>> 0) + (a[13] << 16) + (a[14] << 8) + a[15];
    return `${formatIPv4(v)}/${bits - 96}`;
  }
  return `${formatIPv6(a, 0)}/${bits}`;
}

/** True when the 16 bytes at `ip[off]` lie inside `c`. Allocation-free. */
export function cidrContains(c: Cidr, ip: Uint8Array, off: number): boolean {
  return prefixMatch(c.addr, 0, ip, off, c.bits);
}

/** True when the first `bits` bits of a[ao..] and b[bo..] agree. */
export function prefixMatch(a: Uint8Array, ao: number, b: Uint8Array, bo: number, bits: number): boolean {
  let i = 0;
  for (; bits >= 8; i++, bits -= 8) if (a[ao + i] !== b[bo + i]) return false;
  if (bits === 0) return true;
  const m = (0xff << (8 - bits)) & 0xff;
  return (a[ao + i] & m) === (b[bo + i] & m);
}

/** True when `inner` lies entirely inside `outer` (same family, longer or equal prefix). */
export function cidrInside(inner: Cidr, outer: Cidr): boolean {
  return inner.family === outer.family && inner.bits >= outer.bits && prefixMatch(outer.addr, 0, inner.addr, 0, outer.bits);
}

/** An address literal → 16 bytes, or null. */
export function ipBytes(text: string): Uint8Array | null {
  const b = new Uint8Array(16);
  return parseIpInto(text, b, 0) ? b : null;
}

/** Text of a 16-byte address at b[off] (IPv4-mapped addresses as dotted quads). */
export function formatIp16(b: Uint8Array, off = 0): string {
  let v4 = b[off + 10] === 0xff && b[off + 11] === 0xff;
  for (let i = 0; i < 10 && v4; i++) v4 = b[off + i] === 0;
  return v4 ? formatIPv4(((b[off + 12] << 24) >>> 0) + (b[off + 13] << 16) + (b[off + 14] << 8) + b[off + 15]) : formatIPv6(b, off);
}
