/**
 * Periodic reconciliation of the data path's FDB and neighbour (ARP/ND suppression) tables with
 * the gossip state: what the tables should hold is computed again from scratch from the member
 * records (not from the incremental bookkeeping of gossip/extension.ts `sync`, whose drift is what
 * this catches), compared with what they hold, and every difference is counted and repaired.
 *
 * Expected state, per network this host serves, from every live (alive or suspect) member other
 * than this host whose underlay is not ours and not claimed by another live member:
 *   FDB:        (vni, mac) → that member's underlay, a static entry owned by the member;
 *   neighbours: (vni, ip)  → mac, owned by the member.
 * Left out, exactly as gossip's sync leaves them out: MACs live on this host's bridge (and the
 * TAP's own MAC), addresses seen on this host's bridge, and MACs or addresses announced by more
 * than one member (contested: gossip keeps its first owner; the reconciler does not judge).
 *
 * Mismatch kinds (`vxmesh_reconcile_mismatches_total{table, kind}`):
 *   missing     expected, absent (FDB: no static entry — none, or only one learned from traffic);
 *   wrong_host  FDB: a static entry for the MAC points at another host than its announcer;
 *   wrong_mac   neighbours: the address maps to another MAC than announced;
 *   stale       present, but no live member announces it (a static FDB entry — only gossip sets
 *               those — or a neighbour entry).
 * Repairs: set the expected entry (owned by the announcer, after deleting a conflicting one);
 * delete a stale one. A repair the tables refuse (full FDB, a network gone) is counted in
 * `repairFailures` and found again at the next run. Entries learned from traffic (kind remote) are
 * never deleted: they age out by themselves.
 *
 * Cost: one run is O(members × endpoints + table entries) allocations in the control plane, every
 * `intervalMs` (default 30 s); never on the data path's hot path.
 */

import type { Clock, TimerHandle } from '../clock';
import type { Endpoint } from '../config/types';
import type { DatapathNetwork } from '../dataplane/network';
import { peerKeyOfEndpoint, type PeerKey } from '../dataplane/addr';
import { macToString, toMacNumber } from '../dataplane/ethernet';
import type { MemberInfo } from '../gossip/api';
import { underlayEndpoint } from '../gossip/extension';
import type { Logger } from '../log';

export const RECONCILE_TABLES = ['fdb', 'neigh'] as const;
export const RECONCILE_KINDS = ['missing', 'stale', 'wrong_host', 'wrong_mac'] as const;
export type ReconcileTable = (typeof RECONCILE_TABLES)[number];
export type ReconcileKind = (typeof RECONCILE_KINDS)[number];

/** Default period of the reconciliation, ms. */
export const DEFAULT_RECONCILE_INTERVAL_MS = 30_000;

/** What the reconciler reads and repairs (the Datapath satisfies it). */
export interface ReconcileTarget {
  networks(): readonly DatapathNetwork[];
  fdbSetRemote(vni: number, mac: string | number, endpoint: Endpoint, owner?: Endpoint): boolean;
  neighSet(vni: number, ip: string, mac: string | number, owner?: Endpoint): boolean;
  localEndpoints(vni: number): { mac: string; ipv4: string[]; ipv6: string[] }[];
}

/** Where the expected state comes from (the gossip API). */
export interface ReconcileSource {
  readonly nodeName: string;
  memberInfos(): MemberInfo[];
}

export interface ReconcilerOptions {
  target: () => ReconcileTarget | null | undefined;
  source: ReconcileSource;
  /** This host's underlay (a member announcing it is not programmed, as in gossip's sync). */
  underlay: Endpoint;
  clock: Clock;
  intervalMs?: number;
  logger?: Logger;
}

/** Counts of one run (or of all runs), by table and kind. */
export type MismatchCounts = Record<ReconcileTable, Record<ReconcileKind, number>>;

export function emptyCounts(): MismatchCounts {
  const z = (): Record<ReconcileKind, number> => ({ missing: 0, stale: 0, wrong_host: 0, wrong_mac: 0 });
  return { fdb: z(), neigh: z() };
}

interface Want {
  ep: Endpoint;
  key: PeerKey;
  member: string;
}

const epText = (e: Endpoint): string => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);

export class Reconciler {
  /** Mismatches found since start (each run adds what it found). */
  readonly mismatches: MismatchCounts = emptyCounts();
  readonly repairFailures: Record<ReconcileTable, number> = { fdb: 0, neigh: 0 };
  runs = 0;
  /** Clock time (ms) of the last run, or null. */
  lastRunAt: number | null = null;
  /** What the last run found. */
  last: MismatchCounts = emptyCounts();
  private timer: TimerHandle | null = null;
  private readonly intervalMs: number;

  constructor(private readonly opts: ReconcilerOptions) {
    this.intervalMs = opts.intervalMs ?? DEFAULT_RECONCILE_INTERVAL_MS;
  }

  start(): void {
    this.timer ??= this.opts.clock.setInterval(this.intervalMs, () => this.runSafely());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  private runSafely(): void {
    try {
      this.run();
    } catch (e) {
      this.opts.logger?.warn({ err: (e as Error).message }, 'reconciliation failed');
    }
  }

  /** One reconciliation: compares, repairs, counts; returns what it found. */
  run(): MismatchCounts {
    const t = this.opts.target();
    const found = emptyCounts();
    if (!t) return found;
    const members = this.opts.source.memberInfos().filter((m) => m.name !== this.opts.source.nodeName && (m.state === 'alive' || m.state === 'suspect'));
    // Underlays claimed by two live members, or ours: gossip programs none of them (or only its first): left alone.
    const u = this.opts.underlay;
    const byUnderlay = new Map<string, { ep: Endpoint; names: string[] }>();
    for (const m of members) {
      const ep = underlayEndpoint(m.record.underlay);
      if (!ep) continue;
      const k = epText(ep);
      const e = byUnderlay.get(k);
      if (e) e.names.push(m.name);
      else byUnderlay.set(k, { ep, names: [m.name] });
    }
    const owners: Endpoint[] = [...byUnderlay.values()].map((x) => x.ep);
    const usable = new Map<string, Endpoint>();
    for (const { ep, names } of byUnderlay.values()) {
      if (names.length === 1 && !(ep.address === u.address && ep.port === u.port)) usable.set(names[0], ep);
    }
    for (const net of t.networks()) {
      const vni = net.config.vni;
      const localMacs = new Set<string>();
      const localIps = new Set<string>();
      if (net.tap.mac && net.tap.mac.length === 6) localMacs.add([...net.tap.mac].map((b) => b.toString(16).padStart(2, '0')).join(':'));
      for (const e of t.localEndpoints(vni)) {
        localMacs.add(e.mac);
        for (const ip of [...e.ipv4, ...e.ipv6]) localIps.add(ip);
      }
      // Expected entries; a key announced twice is contested (null): not judged.
      const macs = new Map<string, Want | null>();
      const ips = new Map<string, { mac: string; want: Want } | null>();
      for (const m of members) {
        const ep = usable.get(m.name);
        for (const e of m.record.endpoints) {
          if (e.vni !== vni) continue;
          const mac = e.mac.toLowerCase();
          if (localMacs.has(mac)) continue;
          if (!ep) {
            macs.set(mac, null); // its announcer is not programmable: contested as far as we judge
            continue;
          }
          const want: Want = { ep, key: peerKeyOfEndpoint(ep), member: m.name };
          const prev = macs.get(mac);
          macs.set(mac, prev === undefined ? want : prev !== null && prev.member === m.name ? prev : null);
          for (const ip of e.ips) {
            if (localIps.has(ip)) continue;
            const p = ips.get(ip);
            ips.set(ip, p === undefined ? { mac, want } : p !== null && p.want.member === m.name && p.mac === mac ? p : null);
          }
        }
      }
      this.reconcileFdb(t, net, macs, found);
      this.reconcileNeigh(t, net, ips, owners, found);
    }
    for (const tb of RECONCILE_TABLES) for (const k of RECONCILE_KINDS) this.mismatches[tb][k] += found[tb][k];
    this.last = found;
    this.runs++;
    this.lastRunAt = this.opts.clock.now();
    const total = RECONCILE_TABLES.reduce((n, tb) => n + RECONCILE_KINDS.reduce((m, k) => m + found[tb][k], 0), 0);
    if (total > 0) this.opts.logger?.warn({ fdb: found.fdb, neigh: found.neigh }, `reconciliation repaired ${total} table entries that disagreed with gossip`);
    return found;
  }

  private reconcileFdb(t: ReconcileTarget, net: DatapathNetwork, macs: Map<string, Want | null>, found: MismatchCounts): void {
    const vni = net.config.vni;
    const seen = new Set<string>();
    for (const e of net.fdb.entries()) {
      if (e.kind === 'local') continue;
      const want = macs.get(e.mac);
      if (e.kind === 'remote') continue; // learned from traffic: ages out; a wanted MAC is handled below
      seen.add(e.mac);
      if (want === null) continue; // contested
      if (want === undefined) {
        found.fdb.stale++;
        net.fdb.delete(toMacNumber(e.mac));
        this.opts.logger?.info({ vni, mac: e.mac, peer: (e.peer as { label?: string } | null)?.label ?? null }, 'reconcile: stale FDB entry deleted (no live member announces it)');
        continue;
      }
      if ((e.peer as { key?: PeerKey } | null)?.key !== want.key) {
        found.fdb.wrong_host++;
        net.fdb.delete(toMacNumber(e.mac));
        this.opts.logger?.info({ vni, mac: e.mac, peer: (e.peer as { label?: string } | null)?.label ?? null, member: want.member }, 'reconcile: FDB entry pointed at the wrong host');
        if (!t.fdbSetRemote(vni, e.mac, want.ep, want.ep)) this.repairFailures.fdb++;
      }
    }
    for (const [mac, want] of macs) {
      if (want === null || seen.has(mac)) continue;
      found.fdb.missing++;
      this.opts.logger?.info({ vni, mac, member: want.member }, 'reconcile: FDB entry missing');
      if (!t.fdbSetRemote(vni, mac, want.ep, want.ep)) this.repairFailures.fdb++;
    }
  }

  private reconcileNeigh(t: ReconcileTarget, net: DatapathNetwork, ips: Map<string, { mac: string; want: Want } | null>, owners: Endpoint[], found: MismatchCounts): void {
    const vni = net.config.vni;
    const seen = new Set<string>();
    // Whoever owns it (an entry's owner is not exposed): the announcers' keys, then none (the API).
    const drop = (ip: string): void => {
      for (const o of owners) if (net.neigh.delete(ip, peerKeyOfEndpoint(o)) !== 'other_owner') return;
      net.neigh.delete(ip, null);
    };
    for (const e of net.neigh.entries()) {
      seen.add(e.ip);
      const want = ips.get(e.ip);
      if (want === null) continue;
      if (want === undefined) {
        found.neigh.stale++;
        drop(e.ip);
        this.opts.logger?.info({ vni, ip: e.ip, mac: e.mac }, 'reconcile: stale neighbour entry deleted');
        continue;
      }
      if (macToString(toMacNumber(e.mac)) !== want.mac) {
        found.neigh.wrong_mac++;
        drop(e.ip);
        this.opts.logger?.info({ vni, ip: e.ip, mac: e.mac, want: want.mac, member: want.want.member }, 'reconcile: neighbour entry had the wrong MAC');
        if (!this.neighSet(t, vni, e.ip, want.mac, want.want.ep)) this.repairFailures.neigh++;
      }
    }
    for (const [ip, want] of ips) {
      if (want === null || seen.has(ip)) continue;
      found.neigh.missing++;
      this.opts.logger?.info({ vni, ip, mac: want.mac, member: want.want.member }, 'reconcile: neighbour entry missing');
      if (!this.neighSet(t, vni, ip, want.mac, want.want.ep)) this.repairFailures.neigh++;
    }
  }

  private neighSet(t: ReconcileTarget, vni: number, ip: string, mac: string, owner: Endpoint): boolean {
    try {
      return t.neighSet(vni, ip, mac, owner);
    } catch {
      return false; // not an address (a record the codec let through): nothing to repair with
    }
  }

  /** JSON-able summary (status `extensions.observe.reconcile`). */
  status(): unknown {
    return {
      intervalMs: this.intervalMs,
      runs: this.runs,
      lastRunAgoMs: this.lastRunAt === null ? null : Math.round(this.opts.clock.now() - this.lastRunAt),
      last: this.last,
      mismatches: this.mismatches,
      repairFailures: this.repairFailures,
    };
  }
}
