/**
 * Handshake flood guard, the kernel's part: forged handshake initiations are dropped before the
 * host's IP stack routes them and looks up a socket. One nftables table per underlay port, made
 * whole in one transaction at start (never half made) and deleted at stop:
 *
 *   table inet vxmesh-guard-<port> {
 *     set src4 { type ipv4_addr; size 65536; flags dynamic,timeout; timeout 10s; }
 *     set src6 { type ipv6_addr; size 65536; flags dynamic,timeout; timeout 10s; }
 *     chain pre {                                   # raw priority: before conntrack and routing
 *       type filter hook prerouting priority -300; policy accept;
 *       udp dport <port> @th,64,8 1 jump initiation # first payload byte 1 = initiation
 *     }
 *     chain initiation {
 *       update @src4 { ip saddr limit rate over <perSource>/second burst <2×> packets } counter drop  # per_source
 *       update @src6 { ip6 saddr limit rate over <perSource>/second burst <2×> packets } counter drop # per_source
 *       limit rate over <total>/second burst <burst> packets counter drop                            # total
 *     }
 *   }
 *
 * Why: the handshake socket (native/udp_split.c) already keeps initiations from starving data
 * reads and reads at most its budget; what it cannot save is the kernel's work for every packet
 * beyond it (IPv4 input, route lookup, UDP lookup, reuseport program, a full receive queue). In the
 * chaos flood (100,000 forged initiations/s at one agent) that work was ~9 % of a core more than
 * an ingress drop of the same packets (bench/chaos, control arm). Only initiations are limited:
 * responses, cookies and data (type 2, 3, 4) and plaintext VXLAN (flags byte 0x08) never match, so
 * established sessions and their rekeys (responses) are untouched. A source beyond its own rate
 * is dropped first, so a flood from a few addresses does not use up the budget legitimate
 * strangers need; an attacker that forges many source addresses meets the total limit, as the
 * socket budget would have made it. Caveat: forging a known peer's address starves that peer's
 * initiations (its established session keeps working; the other side's initiations still pass).
 * Rates: the socket budget's (16,384/s, burst 2,048) in total, 64/s (burst 128) per source address —
 * a handshake is due every 2 minutes per peer, retried every 5 s.
 *
 * `NftFloodGuard` drives `nft`; `MemoryFloodGuard` is the twin (records the ruleset). Without nft
 * (or not root) the agent runs without the guard and says so once.
 */
import { runNft } from '../agent/nft';

export const GUARD_TABLE_PREFIX = 'vxmesh-guard-';
export const GUARD_TOTAL_RATE = 16384;
export const GUARD_TOTAL_BURST = 2048;
export const GUARD_PER_SOURCE_RATE = 64;

export interface FloodGuardCounts {
  /** Initiations dropped because their source address was over its own rate. */
  perSource: number;
  /** Initiations dropped because all sources together were over the total rate. */
  total: number;
}

export interface FloodGuardDriver {
  /** Makes the table for `port` (replacing a stale one). Throws on failure; nothing is left half made. */
  install(port: number): Promise<void>;
  /** Counters of the installed table (zeros when there is none). */
  counts(port: number): Promise<FloodGuardCounts>;
  /** Deletes the table for `port` (no error when there is none). */
  remove(port: number): Promise<void>;
}

export function guardTable(port: number): string {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`flood guard: bad port ${port}`);
  return `${GUARD_TABLE_PREFIX}${port}`;
}

/** The nft script that replaces the guard table for `port`. */
export function guardRuleset(port: number, o: { total?: number; burst?: number; perSource?: number } = {}): string {
  const t = `inet ${guardTable(port)}`;
  const total = o.total ?? GUARD_TOTAL_RATE;
  const burst = o.burst ?? GUARD_TOTAL_BURST;
  const per = o.perSource ?? GUARD_PER_SOURCE_RATE;
  return [
    `table ${t}`,
    `delete table ${t}`,
    `table ${t} {`,
    '  set src4 { type ipv4_addr; size 65536; flags dynamic,timeout; timeout 10s; }',
    '  set src6 { type ipv6_addr; size 65536; flags dynamic,timeout; timeout 10s; }',
    '  chain pre {',
    '    type filter hook prerouting priority -300; policy accept;',
    `    udp dport ${port} @th,64,8 1 jump initiation`,
    '  }',
    '  chain initiation {',
    `    meta nfproto ipv4 update @src4 { ip saddr limit rate over ${per}/second burst ${per * 2} packets } counter drop comment "per_source"`,
    `    meta nfproto ipv6 update @src6 { ip6 saddr limit rate over ${per}/second burst ${per * 2} packets } counter drop comment "per_source"`,
    `    limit rate over ${total}/second burst ${burst} packets counter drop comment "total"`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Sums the drop counters of `nft -j list table` output by rule comment. */
export function parseGuardCounts(json: string): FloodGuardCounts {
  const out: FloodGuardCounts = { perSource: 0, total: 0 };
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return out;
  }
  const items = (doc as { nftables?: unknown[] })?.nftables;
  if (!Array.isArray(items)) return out;
  for (const it of items) {
    const rule = (it as { rule?: { comment?: string; expr?: unknown[] } }).rule;
    if (!rule || !Array.isArray(rule.expr)) continue;
    const key = rule.comment === 'per_source' ? 'perSource' : rule.comment === 'total' ? 'total' : null;
    if (!key) continue;
    for (const e of rule.expr) {
      const p = (e as { counter?: { packets?: number } }).counter?.packets;
      if (typeof p === 'number' && Number.isFinite(p)) out[key] += p;
    }
  }
  return out;
}

/** `nft`, its stdout, or an Error naming the command and what nft said. */
async function nft(args: string[], input?: string): Promise<string> {
  const r = await runNft(args, input);
  if (r.code !== 0) throw new Error(`nft ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

export class NftFloodGuard implements FloodGuardDriver {
  async install(port: number): Promise<void> {
    await nft(['-f', '-'], guardRuleset(port));
  }

  async counts(port: number): Promise<FloodGuardCounts> {
    try {
      return parseGuardCounts(await nft(['-j', 'list', 'table', 'inet', guardTable(port)]));
    } catch {
      return { perSource: 0, total: 0 };
    }
  }

  async remove(port: number): Promise<void> {
    const t = `inet ${guardTable(port)}`;
    await nft(['-f', '-'], `table ${t}\ndelete table ${t}\n`);
  }
}

/** In-memory twin: records what would be installed; counts are set by the test. */
export class MemoryFloodGuard implements FloodGuardDriver {
  readonly tables = new Map<number, string>();
  readonly counters = new Map<number, FloodGuardCounts>();
  failInstall: Error | null = null;

  async install(port: number): Promise<void> {
    if (this.failInstall) throw this.failInstall;
    this.tables.set(port, guardRuleset(port));
    this.counters.set(port, { perSource: 0, total: 0 });
  }

  async counts(port: number): Promise<FloodGuardCounts> {
    return { ...(this.counters.get(port) ?? { perSource: 0, total: 0 }) };
  }

  async remove(port: number): Promise<void> {
    this.tables.delete(port);
    this.counters.delete(port);
  }
}
