/**
 * IPv4/IPv6 addresses and CIDR prefixes as BigInt (no npm dependency: the handful of operations
 * IPAM needs — parse, format canonically, contains, n-th address, n-th sub-block — fit here and
 * are tested against Node's own parser). Addresses are canonical text everywhere else.
 */
import { isIP } from 'node:net';

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
  const f = isIP(text);
  if (f === 4) {
    const p = text.split('.').map(Number);
    return { family: 4, value: BigInt(((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3]) };
  }
  if (f !== 6 || text.includes('%')) return null;
  let t = text;
  // trailing dotted quad
  const m = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (m) {
    const v4 = parseIp(m[1]);
    if (!v4) return null;
    const v = Number(v4.value);
    t = t.slice(0, m.index) + `${((v >>> 16) & 0xffff).toString(16)}:${(v & 0xffff).toString(16)}`;
  }
  const [head, tail] = t.includes('::') ? t.split('::') : [t, null];
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const fill = tail === null ? 0 : 8 - h.length - tl.length;
  const groups = [...h, ...Array(fill).fill('0'), ...tl];
  if (groups.length !== 8) return null;
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  return { family: 6, value };
}

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
