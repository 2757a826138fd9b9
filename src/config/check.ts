/**
 * Small, strict value checkers for the config loader. Each checker takes the raw value and its
 * field path, reports problems to a `Problems` collector (so several errors come out at once) and
 * returns the checked value or `undefined`. No defaults live here: `load.ts` applies them, next to
 * the field they belong to.
 */

import * as net from 'node:net';
import type { AddressFamily, Endpoint } from './types';

export type Path = ReadonlyArray<string | number>;

/** `['networks', 1, 'vni']` → `networks[1].vni`. */
export function formatPath(path: Path): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s ? `.${p}` : p;
  }
  return s;
}

/** A short description of a raw value for error messages: `"abc"`, `1.5`, `a list`, `null`. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v);
  return String(v);
}

export interface Problem {
  path: Path;
  message: string;
}

/** Collects problems; the loader throws them together at the end. */
export class Problems {
  readonly list: Problem[] = [];
  add(path: Path, message: string): undefined {
    this.list.push({ path: [...path], message });
    return undefined;
  }
  get count(): number {
    return this.list.length;
  }
}

/** Edit distance with adjacent transpositions (optimal string alignment), for did-you-mean hints. */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  const d: number[][] = Array.from({ length: m + 1 }, (_, i) => Array.from({ length: n + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[m][n];
}

/** The closest known key, if it is close enough to be a likely typo. */
export function didYouMean(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  const lk = key.toLowerCase();
  for (const k of known) {
    const d = k.toLowerCase() === lk ? 0 : editDistance(lk, k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  const limit = key.length <= 4 ? 1 : key.length <= 8 ? 2 : 3;
  if (best !== null && bestD <= limit) return best;
  // A truncated key (`ageing` for `ageingSeconds`).
  if (key.length >= 3) return known.find((k) => k.toLowerCase().startsWith(lk)) ?? null;
  return null;
}

/**
 * A mapping with only the given keys. Unknown keys are reported (with a did-you-mean hint).
 * Returns the mapping (possibly with unknown keys still in it) or undefined if `v` is not a mapping.
 */
export function mapping(
  p: Problems,
  v: unknown,
  path: Path,
  known: readonly string[],
  what = 'a mapping',
): Record<string, unknown> | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    return p.add(path, `expected ${what}, got ${describe(v)}`);
  }
  const o = v as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (known.includes(key)) continue;
    const hint = didYouMean(key, known);
    p.add([...path, key], `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}; allowed here: ${known.join(', ')}`);
  }
  return o;
}

export function list(p: Problems, v: unknown, path: Path, what: string): unknown[] | undefined {
  if (!Array.isArray(v)) return p.add(path, `expected a list of ${what}, got ${describe(v)}`);
  return v;
}

export function integer(p: Problems, v: unknown, path: Path, min: number, max: number, unit = ''): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    return p.add(path, `expected an integer ${min}..${max}${unit ? ` (${unit})` : ''}, got ${describe(v)}`);
  }
  return v;
}

export function boolean(p: Problems, v: unknown, path: Path): boolean | undefined {
  if (typeof v !== 'boolean') return p.add(path, `expected true or false, got ${describe(v)}`);
  return v;
}

export function string(p: Problems, v: unknown, path: Path, what = 'a non-empty string'): string | undefined {
  if (typeof v !== 'string' || v.length === 0) return p.add(path, `expected ${what}, got ${describe(v)}`);
  return v;
}

export function oneOf<T extends string>(p: Problems, v: unknown, path: Path, choices: readonly T[]): T | undefined {
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    return p.add(path, `expected one of ${choices.join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}

/** Canonical text form of an IP address literal (IPv6 compressed, lower case) and its family. */
export function canonicalIp(s: string): { address: string; family: AddressFamily } | null {
  const fam = net.isIP(s);
  if (fam === 0) return null;
  if (fam === 4) return { address: s, family: 4 };
  return { address: new net.SocketAddress({ address: s, family: 'ipv6' }).address, family: 6 };
}

function isUnspecifiedOrMulticast(address: string, family: AddressFamily): boolean {
  if (family === 4) {
    const first = Number(address.split('.')[0]);
    return address === '0.0.0.0' || address === '255.255.255.255' || (first >= 224 && first <= 239);
  }
  return address === '::' || address.startsWith('ff');
}

/**
 * A unicast IP address literal (not unspecified, not multicast, not IPv4-mapped IPv6), optionally
 * of a required family.
 */
export function unicastIp(
  p: Problems,
  v: unknown,
  path: Path,
  family?: AddressFamily,
): { address: string; family: AddressFamily } | undefined {
  const what = family ? `an IPv${family} address` : 'an IPv4 or IPv6 address';
  if (typeof v !== 'string') return p.add(path, `expected ${what}, got ${describe(v)}`);
  const ip = canonicalIp(v);
  if (!ip) return p.add(path, `expected ${what}, got ${describe(v)}`);
  if (ip.family === 6 && /^::ffff:/i.test(ip.address)) {
    return p.add(path, `expected ${what}, got an IPv4-mapped IPv6 address ${describe(v)} (write the IPv4 address)`);
  }
  if (isUnspecifiedOrMulticast(ip.address, ip.family)) {
    return p.add(path, `expected a unicast address, got ${describe(v)}`);
  }
  if (family && ip.family !== family) {
    return p.add(path, `expected ${what} (the same family as the underlay), got ${describe(v)}`);
  }
  return ip;
}

/**
 * Splits `addr`, `addr:port`, `[v6]` or `[v6]:port` (a bare IPv6 address has no port).
 * Returns null when the text has none of these shapes.
 */
export function splitHostPort(s: string): { host: string; port: string | null } | null {
  if (s.startsWith('[')) {
    const m = /^\[([^\]]+)\](?::([^:]*))?$/.exec(s);
    return m ? { host: m[1], port: m[2] ?? null } : null;
  }
  if (net.isIPv6(s)) return { host: s, port: null };
  const i = s.lastIndexOf(':');
  if (i < 0) return { host: s, port: null };
  if (s.indexOf(':') !== i) return null; // several colons, not a valid IPv6 address and no brackets
  return { host: s.slice(0, i), port: s.slice(i + 1) };
}

function parsePort(s: string): number | null {
  if (!/^[0-9]{1,5}$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

/**
 * A peer/seed endpoint: `addr`, `addr:port`, `[v6]:port` (or a bare IPv6 address), port defaulting
 * to `defaultPort`, address of family `family`.
 */
export function endpoint(
  p: Problems,
  v: unknown,
  path: Path,
  family: AddressFamily | undefined,
  defaultPort: number,
): Endpoint | undefined {
  const shape = 'an address, address:port or [IPv6]:port';
  if (typeof v !== 'string') return p.add(path, `expected ${shape}, got ${describe(v)}`);
  const hp = splitHostPort(v.trim());
  if (!hp) return p.add(path, `expected ${shape}, got ${describe(v)}`);
  let port = defaultPort;
  if (hp.port !== null) {
    const n = parsePort(hp.port);
    if (n === null) return p.add(path, `expected a port 1..65535 after the address, got ${describe(v)}`);
    port = n;
  }
  const ip = unicastIp(p, hp.host, path, family);
  if (!ip) return undefined;
  return { address: ip.address, port, family: ip.family };
}

/** `host:port` listen address (IP literal host, `[v6]:port` for IPv6; port required). */
export function listenAddress(p: Problems, v: unknown, path: Path): { host: string; port: number } | undefined {
  const shape = 'host:port with an IP address (e.g. 127.0.0.1:9469 or [::1]:9469)';
  if (typeof v !== 'string') return p.add(path, `expected ${shape}, got ${describe(v)}`);
  const hp = splitHostPort(v.trim());
  if (!hp || hp.port === null) return p.add(path, `expected ${shape}, got ${describe(v)}`);
  const port = parsePort(hp.port);
  if (port === null) return p.add(path, `expected a port 1..65535 in ${shape}, got ${describe(v)}`);
  const ip = canonicalIp(hp.host);
  if (!ip || (ip.family === 6 && /^ff/.test(ip.address)) || (ip.family === 4 && Number(ip.address.split('.')[0]) >= 224)) {
    return p.add(path, `expected ${shape}, got ${describe(v)}`);
  }
  return { host: ip.address, port };
}

/** Linux interface name: 1..15 bytes, no '/', ':' or whitespace, not '.' or '..'. */
export function ifname(p: Problems, v: unknown, path: Path): string | undefined {
  const what = 'an interface name (1..15 characters, no "/", ":" or whitespace)';
  if (typeof v !== 'string' || v.length === 0 || Buffer.byteLength(v) > 15 || /[/:\s]/.test(v) || v === '.' || v === '..') {
    return p.add(path, `expected ${what}, got ${describe(v)}`);
  }
  return v;
}
