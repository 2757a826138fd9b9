/**
 * Validation of a network's endpoint fields (`subnet`, `gateway`, `hostBlock`, `range`, `mode`,
 * `parent`, `hostEndpoint`) for the config loader, and of `stateDir` / `api.socket`. Kept beside
 * IPAM so the loader only calls in (src/config/load.ts: a few lines). Defaults: src/ipam/README.md.
 */
import * as pathMod from 'node:path';
import type { NetworkIpam, NetworkMode } from '../config/types';
import { Problems, type Path, describe, boolean, ifname, oneOf } from '../config/check';
import { contains, covers, formatCidr, formatIp, parseCidr, parseIp, bitsOf } from './cidr';

export const ENDPOINT_NETWORK_KEYS = ['subnet', 'gateway', 'hostBlock', 'range', 'mode', 'parent', 'hostEndpoint'];
export const DEFAULT_SOCKET = '/run/vxmesh/vxmesh.sock';
export const MODES: readonly NetworkMode[] = ['overlay', 'bridge', 'macvlan'];
const DEFAULT_HOST_BLOCK = { 4: 26, 6: 112 } as const;

const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);

export interface EndpointNetworkFields {
  ipam?: NetworkIpam;
  mode?: NetworkMode;
  parent?: string;
  hostEndpoint?: boolean;
}

/** Checks the endpoint fields of network mapping `o` at `at`; `gossip`: whether the config has gossip. */
export function validateEndpointFields(p: Problems, o: Record<string, unknown>, at: Path, gossip: boolean): EndpointNetworkFields {
  const out: EndpointNetworkFields = {};
  const mode = o.mode === undefined ? 'overlay' : oneOf(p, o.mode, [...at, 'mode'], MODES);
  if (o.mode !== undefined && mode) out.mode = mode;
  if (mode === 'macvlan') {
    if (o.parent === undefined) p.add([...at, 'parent'], 'missing; mode macvlan needs the parent interface (e.g. eth0)');
    else out.parent = ifname(p, o.parent, [...at, 'parent']);
  } else if (o.parent !== undefined) {
    p.add([...at, 'parent'], 'only for mode macvlan');
  }
  if (o.hostEndpoint !== undefined) {
    const h = boolean(p, o.hostEndpoint, [...at, 'hostEndpoint']);
    if (h !== undefined) out.hostEndpoint = h;
  }
  if (o.subnet === undefined) {
    for (const k of ['gateway', 'hostBlock', 'range']) if (o[k] !== undefined) p.add([...at, k], 'needs a subnet');
    if (out.hostEndpoint) p.add([...at, 'hostEndpoint'], 'needs a subnet');
    return out;
  }
  const subnets: ReturnType<typeof parseCidr>[] = [];
  asList(o.subnet).forEach((s, i) => {
    const path = Array.isArray(o.subnet) ? [...at, 'subnet', i] : [...at, 'subnet'];
    const c = typeof s === 'string' ? parseCidr(s) : null;
    if (!c) {
      const loose = typeof s === 'string' ? parseCidr(s, false) : null;
      p.add(path, loose ? `host bits set: did you mean ${formatCidr(loose)}?` : `expected an IPv4 or IPv6 subnet like 198.19.0.0/16, got ${describe(s)}`);
    } else if (c.prefix > bitsOf(c.family) - 2) {
      p.add(path, `subnet ${formatCidr(c)} is too small for endpoints`);
    } else if (subnets.some((x) => x && x.family === c.family)) {
      p.add(path, `a second IPv${c.family} subnet; give at most one per family`);
    } else subnets.push(c);
  });
  if (subnets.length === 0) return out;
  subnets.sort((a, b) => a!.family - b!.family);
  const perSubnet = (key: string, parse: (v: unknown, s: NonNullable<(typeof subnets)[number]>, path: Path) => unknown): unknown[] => {
    const raw = o[key];
    const vals = raw === undefined ? [] : asList(raw);
    const res: unknown[] = subnets.map(() => undefined);
    vals.forEach((v, i) => {
      const path = Array.isArray(raw) ? [...at, key, i] : [...at, key];
      const fam = typeof v === 'string' && v.includes(':') ? 6 : typeof v === 'string' && v.includes('.') ? 4 : null;
      const idx = key === 'hostBlock' ? (Array.isArray(raw) ? i : 0) : subnets.findIndex((s) => s!.family === fam);
      if (idx < 0 || idx >= subnets.length) {
        p.add(path, `${describe(v)} matches no subnet (${subnets.map((s) => formatCidr(s!)).join(', ')})`);
        return;
      }
      res[idx] = parse(v, subnets[idx]!, path);
    });
    return res;
  };
  const gateways = perSubnet('gateway', (v, s, path) => {
    const ip = typeof v === 'string' ? parseIp(v) : null;
    if (!ip || !contains(s, ip.family, ip.value)) return p.add(path, `expected an address inside ${formatCidr(s)}, got ${describe(v)}`);
    return formatIp(ip.family, ip.value);
  }) as (string | undefined)[];
  const blocks = perSubnet('hostBlock', (v, s, path) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\/?\d{1,3}$/.test(v) ? Number(v.replace('/', '')) : NaN;
    if (!Number.isInteger(n) || n < s.prefix || n > bitsOf(s.family) - 2) {
      return p.add(path, `expected a prefix length /${s.prefix}../${bitsOf(s.family) - 2} for ${formatCidr(s)}, got ${describe(v)}`);
    }
    return n;
  }) as (number | undefined)[];
  const ranges = perSubnet('range', (v, s, path) => {
    const c = typeof v === 'string' ? parseCidr(v, false) : null;
    if (!c || !covers(s, c)) return p.add(path, `expected a CIDR range inside ${formatCidr(s)}, got ${describe(v)}`);
    return formatCidr(c);
  }) as (string | undefined)[];
  if (!gossip && mode === 'overlay') {
    subnets.forEach((s, i) => {
      if (ranges[i] === undefined && o.range === undefined) {
        p.add([...at, 'range'], `missing; without gossip each host needs its own range inside ${formatCidr(s!)} so addresses stay unique across hosts`);
      }
    });
  }
  out.ipam = {
    subnets: subnets.map((s) => formatCidr(s!)),
    gateways: gateways.map((g) => g ?? null),
    hostBlocks: subnets.map((s, i) => blocks[i] ?? Math.max(s!.prefix, DEFAULT_HOST_BLOCK[s!.family])),
    ranges: ranges.map((r) => r ?? null),
  };
  return out;
}

/** `stateDir`: an absolute path (relative ones are resolved against the config file's directory). */
export function validateStateDir(p: Problems, v: unknown, base: string | null): string | undefined {
  if (typeof v !== 'string' || v.length === 0 || v.includes('\0')) return p.add(['stateDir'], `expected a directory path, got ${describe(v)}`);
  return base ? pathMod.resolve(base, v) : pathMod.resolve(v);
}

export function validateSocket(p: Problems, v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length === 0 || Buffer.byteLength(v) > 107 || !pathMod.isAbsolute(v)) {
    return p.add(['api', 'socket'], `expected an absolute unix socket path (at most 107 bytes), got ${describe(v)}`);
  }
  return v;
}
