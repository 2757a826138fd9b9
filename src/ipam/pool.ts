/**
 * One network's address pool on one host: the subnets, the blocks this host holds (gossip mode)
 * or its static range (no gossip), and the addresses allocated, with reserved addresses kept out
 * (the subnet's network address, IPv4 broadcast, the gateway).
 */
import type { NetworkIpam } from '../config/types';
import { Cidr, Family, bitsOf, blockCount, contains, formatCidr, formatIp, nthBlock, parseCidr, parseIp, size } from './cidr';
import type { BlockLease } from './leases';

export interface Subnet {
  cidr: Cidr;
  text: string;
  gateway: bigint | null;
  gatewayText: string | null;
  hostBlock: number;
  range: Cidr | null;
}

export interface Assigned {
  /** Canonical address. */
  address: string;
  family: Family;
  /** Prefix length of the subnet (what the interface gets). */
  prefix: number;
  gateway: string | null;
}

export function subnetsOf(ipam: NetworkIpam): Subnet[] {
  return ipam.subnets.map((s, i) => {
    const cidr = parseCidr(s)!;
    const g = ipam.gateways[i] ? parseIp(ipam.gateways[i]!)! : null;
    const r = ipam.ranges[i] ? parseCidr(ipam.ranges[i]!, false)! : null;
    return {
      cidr,
      text: formatCidr(cidr),
      gateway: g ? g.value : null,
      gatewayText: g ? formatIp(cidr.family, g.value) : null,
      hostBlock: ipam.hostBlocks[i],
      range: r ? { family: r.family, base: r.base, prefix: r.prefix } : null,
    };
  });
}

/** Is `v` an address endpoints may never get (network address, IPv4 broadcast, gateway)? */
export function reserved(s: Subnet, v: bigint): boolean {
  if (v === s.cidr.base) return true;
  if (s.cidr.family === 4 && s.cidr.prefix < 31 && v === s.cidr.base + size(s.cidr) - 1n) return true;
  return s.gateway !== null && v === s.gateway;
}

/** Lowest free address of `block` (not reserved, not in `taken`), or null. */
export function firstFree(s: Subnet, block: Cidr, taken: ReadonlySet<string>): string | null {
  const n = size(block);
  const limit = n > 1_048_576n ? 1_048_576n : n; // bounded scan: a block this large is never full in practice
  for (let i = 0n; i < limit; i++) {
    const v = block.base + i;
    if (reserved(s, v)) continue;
    const t = formatIp(block.family, v);
    if (!taken.has(t)) return t;
  }
  return null;
}

/** Candidate blocks for a new lease, starting at a per-node offset (so hosts rarely collide). */
export function* candidateBlocks(s: Subnet, node: string): Generator<Cidr> {
  const count = blockCount(s.cidr, s.hostBlock);
  const cap = count > 65_536n ? 65_536n : count;
  const start = blockStart(node, cap);
  for (let k = 0n; k < cap; k++) yield nthBlock(s.cidr, s.hostBlock, (start + k) % cap);
}

/** The first candidate block index of `node` among `cap` (FNV-1a of the name). */
export function blockStart(node: string, cap: bigint): bigint {
  let h = 2166136261;
  for (let i = 0; i < node.length; i++) h = Math.imul(h ^ node.charCodeAt(i), 16777619) >>> 0;
  return BigInt(h) % cap;
}

export function blockOf(l: BlockLease): Cidr | null {
  return parseCidr(l.block);
}

export function inSubnet(s: Subnet, addr: string): bigint | null {
  const p = parseIp(addr);
  return p && contains(s.cidr, p.family, p.value) ? p.value : null;
}

export { bitsOf };
