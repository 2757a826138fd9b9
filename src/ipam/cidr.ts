/**
 * The one module for IP address and CIDR arithmetic (IPAM, endpoints, the Docker driver, config,
 * and the policy compiler all use it). Address text is parsed in one place, `parseIpInto`
 * (src/dataplane/addr.ts: the data path's allocation-free parser, no zones, no leading zeros),
 * and seen here in two forms:
 *
 * - **BigInt** (`Cidr`, `parseIp`, `parseCidr`, ...): what IPAM needs — canonical text
 *   (RFC 5952), contains, n-th address, n-th sub-block. Addresses are canonical text elsewhere.
 * - **16 bytes** (`Cidr16`, `parseCidr16`, `prefixMatch`, ...): IPv4 as ::ffff:a.b.c.d, the same
 *   form as the data path's address records, so one allocation-free prefix comparison serves both
 *   families on the policy path. An IPv4 /n is stored as the 128-bit prefix 96 + n.
 *
 * No npm dependency: ipaddr.js would add a second parser beside the data path's (it allocates per
 * parse and accepts IPv4 forms such as `10.1` that config must refuse) and has no block arithmetic.
 */
import { formatIPv4, formatIPv6, parseIpInto } from '../dataplane/addr';

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** Network address (host bits zero). */
  base: bigint;
  prefix: number;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

export function bitsOf(f: Family): number {
  return BITS[f];
}

/** Parses an IPv4 or IPv6 address; null when it is not one (zones and v4-in-v6 text included). */
export function parseIp(text: string): { family: Family; value: bigint } | null {
  if (typeof text !== 'string') return null;
  const family = parseIpInto(text, scratch, 0);
  if (family === 0) return null;
  let value = 0n;
  for (let i = family === 4 ? 12 : 0; i < 16; i++) value = (value << 8n) | BigInt(scratch[i]);
  return { family, value };
}

const scratch = new Uint8Array(16);

/** Canonical text (RFC 5952 for IPv6: lower case, longest zero run of ≥ 2 groups as ::). */
export function formatIp(family: Family, value: bigint): string {
  if (family === 4) {
    const v = Number(value);
    return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

/** Canonical text of an address, or null when it is not one. */
export function canonicalIp(text: string): string | null {
  const p = parseIp(text);
  return p ? formatIp(p.family, p.value) : null;
}

function mask(f: Family, prefix: number): bigint {
  const bits = BigInt(BITS[f]);
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

/**
 * Parses "addr/len". `strict`: host bits must be zero (subnets); otherwise they are kept in
 * `address` (interface addresses like 198.19.0.5/16) and `base` is the network.
 */
export function parseCidr(text: string, strict = true): (Cidr & { address: bigint }) | null {
  const i = text.lastIndexOf('/');
  if (i < 0) return null;
  const ip = parseIp(text.slice(0, i));
  const lenText = text.slice(i + 1);
  if (!ip || !/^\d{1,3}$/.test(lenText)) return null;
  const prefix = Number(lenText);
  if (prefix > BITS[ip.family]) return null;
  const base = ip.value & mask(ip.family, prefix);
  if (strict && base !== ip.value) return null;
  return { family: ip.family, base, prefix, address: ip.value };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.family, c.base)}/${c.prefix}`;
}

/** Number of addresses in `c`. */
export function size(c: Cidr): bigint {
  return 1n << BigInt(BITS[c.family] - c.prefix);
}

export function contains(c: Cidr, family: Family, value: bigint): boolean {
  return family === c.family && (value & mask(c.family, c.prefix)) === c.base;
}

/** Does `outer` contain all of `inner`? */
export function covers(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.prefix >= outer.prefix && contains(outer, inner.family, inner.base);
}

/** Do two prefixes share any address? */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return covers(a, b) || covers(b, a);
}

/** Number of /`prefix` blocks in `c` (BigInt; capped by the caller). */
export function blockCount(c: Cidr, prefix: number): bigint {
  return 1n << BigInt(prefix - c.prefix);
}

/** The `i`-th /`prefix` block of `c`. */
export function nthBlock(c: Cidr, prefix: number, i: bigint): Cidr {
  return { family: c.family, base: c.base + (i << BigInt(BITS[c.family] - prefix)), prefix };
}

/** The index of the block holding `value` in `c`. */
export function blockIndexOf(c: Cidr, prefix: number, value: bigint): bigint {
  return (value - c.base) >> BigInt(BITS[c.family] - prefix);
}

// ---- the 16-byte form (policy) ----

/** A CIDR block in the 16-byte form. */
export interface Cidr16 {
  /** 16 bytes, host bits zero. */
  readonly addr: Uint8Array;
  /** Prefix length in the 128-bit space (IPv4: 96 + n). */
  readonly bits: number;
  readonly family: 4 | 6;
  /** Canonical text (`198.18.0.0/24`, `2001:2::/48`). */
  readonly text: string;
}

/** Parses `a.b.c.d/n` or `v6/n` (a bare address is a host route). Returns an error message on failure. */
export function parseCidr16(text: string, requireAligned = true): Cidr16 | string {
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
    return `${JSON.stringify(text)} has host bits set (did you mean ${formatCidr16(masked, bits, family)}?)`;
  }
  return { addr: masked, bits, family, text: formatCidr16(masked, bits, family) };
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

function formatCidr16(a: Uint8Array, bits: number, family: 4 | 6): string {
  if (family === 4) {
    const v = ((a[12] << 24) >>> 0) + (a[13] << 16) + (a[14] << 8) + a[15];
    return `${formatIPv4(v)}/${bits - 96}`;
  }
  return `${formatIPv6(a, 0)}/${bits}`;
}

/** True when the 16 bytes at `ip[off]` lie inside `c`. Allocation-free. */
export function cidrContains(c: Cidr16, ip: Uint8Array, off: number): boolean {
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
export function cidrInside(inner: Cidr16, outer: Cidr16): boolean {
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
