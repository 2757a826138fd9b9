/**
 * Convergence telemetry: how long an endpoint takes from its appearance on one host to its
 * knowledge by another (`vxmesh_endpoint_convergence_seconds{network}`, a histogram every host
 * fills for the endpoints it learns).
 *
 * Mechanism:
 *   origin   When a (vni, MAC) first appears on this host — learned on its bridge (the data path's
 *            local FDB) or in its own gossip record (announced endpoints), both checked every
 *            `tickMs` — it is stamped with this host's wall-clock time. The stamps
 *            of the last `windowMs` (at most `maxStamps`, newest kept) are published in the record
 *            section `born` (JSON `{"v":1,"e":[[vni,"mac",unixMs],…]}`): endpoints older than the
 *            window are not "new" any more and cost no record space.
 *   receiver When a member's record first carries an endpoint (not in its previous record), the
 *            time is noted; once that member's `born` section carries the endpoint's stamp (the
 *            same record or a later one: the section is published just after the endpoint), the
 *            observation is `learned − born` in seconds. Endpoints members announce when this
 *            agent starts are known, not observed; those whose stamp never comes within
 *            `windowMs` are counted `unstamped`.
 *
 * Clock skew: `learned` and `born` are read on different hosts' wall clocks, so each observation is
 * off by the receiver's clock offset to the origin (NTP keeps it to milliseconds on a LAN; an
 * unsynchronised host shows as a shifted distribution). The origin stamps up to `tickMs` (100 ms)
 * after the appearance (it polls), so observations can be low by that much: a MAC learned on a
 * bridge is announced by gossip's own poll (1 s) after the stamp, but an endpoint announced at
 * attach can reach a fast receiver before its stamp; such a result in (−tickMs, 0) is observed as
 * 0. A result below −tickMs (the receiver's clock behind) is observed as 0 and counted (`negative`).
 *
 * Not measured: the moment the *last* host learns an endpoint (that needs every host to acknowledge
 * every new endpoint, one more record update per host per endpoint batch). Summed over hosts,
 * these histograms are the distribution over (endpoint, receiving host) pairs, so their upper
 * quantiles bound "every host knows it" from above for all but that fraction of pairs
 * (docs/metrics.md has the query).
 *
 * Cost: one record update per batch of new endpoints (the section); every tick (100 ms) one read of
 * the member list through the gossip API (O(members) small objects) to find our own record, and
 * O(new endpoints) work; O(endpoints of a member) on each of its record changes.
 */

import type { Clock, TimerHandle } from '../clock';
import type { MemberEvent, MemberInfo } from '../gossip/api';
import type { Logger } from '../log';

/** Upper bounds (seconds) of the histogram's buckets. */
export const CONVERGENCE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120] as const;
export const BORN_SECTION = 'born';
export const DEFAULT_BORN_WINDOW_MS = 300_000;
export const DEFAULT_MAX_STAMPS = 256;
export const DEFAULT_TICK_MS = 100;
/** Most endpoints waiting for their stamp at once (the rest counted `unstamped`). */
export const MAX_PENDING = 4096;

/** What the observer needs from gossip (the gossip API satisfies it). */
export interface ConvergenceGossip {
  readonly nodeName: string;
  memberInfos(): MemberInfo[];
  onMemberEvent(fn: (ev: MemberEvent) => void, opts?: { replay?: boolean }): () => void;
  setSection(name: string, data: string | null): void;
  sections(name: string): { node: string; self: boolean; data: string }[];
}

/** What the observer reads from the data path: MACs on this host's bridges. */
export interface ConvergenceLocal {
  /** Changes whenever `endpoints()` may have changed. */
  version(): string;
  endpoints(): { vni: number; mac: string }[];
}

export interface ConvergenceOptions {
  gossip: ConvergenceGossip;
  local?: () => ConvergenceLocal | null;
  clock: Clock;
  /** Wall-clock milliseconds (Unix); default Date.now. */
  wallNow?: () => number;
  /** VNI → network name (the histogram's label); unknown VNIs are not observed. */
  networkOf: (vni: number) => string | null;
  windowMs?: number;
  maxStamps?: number;
  tickMs?: number;
  logger?: Logger;
}

/** One network's histogram: counts per bucket (non-cumulative, last = above the largest bound). */
export interface ConvergenceHistogram {
  network: string;
  counts: number[];
  sum: number;
  count: number;
}

const keyOf = (vni: number, mac: string): string => `${vni}|${mac.toLowerCase()}`;

/** Parses a `born` section; null when it is not one (a newer format, or garbage: ignored). */
export function parseBorn(data: string): Map<string, number> | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || (v as { v?: unknown }).v !== 1 || !Array.isArray((v as { e?: unknown }).e)) return null;
  const out = new Map<string, number>();
  for (const x of (v as { e: unknown[] }).e) {
    if (!Array.isArray(x) || x.length !== 3) continue;
    const [vni, mac, ms] = x as [unknown, unknown, unknown];
    if (typeof vni !== 'number' || typeof mac !== 'string' || typeof ms !== 'number' || !Number.isFinite(ms)) continue;
    out.set(keyOf(vni, mac), ms);
  }
  return out;
}

export class ConvergenceObserver {
  readonly histograms = new Map<string, ConvergenceHistogram>();
  /** Observations that came out negative (receiver clock behind the origin's): observed as 0. */
  negative = 0;
  /** Endpoints learned whose stamp never came (within the window, or beyond MAX_PENDING). */
  unstamped = 0;
  /** Our own stamps: key → wall ms (insertion order = age). */
  private readonly stamps = new Map<string, number>();
  /** Keys in our own record / bridges we have seen (stamped or not). */
  private readonly ownSeen = new Set<string>();
  private firstOwn = true;
  /** Per member: the endpoint keys of its last record. */
  private readonly known = new Map<string, Set<string>>();
  /** member|key → { learned wall ms, clock ms } waiting for the member's stamp. */
  private readonly pending = new Map<string, { member: string; key: string; wall: number; at: number }>();
  private readonly wallNow: () => number;
  private readonly windowMs: number;
  private readonly maxStamps: number;
  private readonly tickMs: number;
  private replaying = false;
  private timer: TimerHandle | null = null;
  private unsubscribe: (() => void) | null = null;
  private lastLocal = '';
  private ticks = 0;
  private published = '';

  constructor(private readonly opts: ConvergenceOptions) {
    this.wallNow = opts.wallNow ?? Date.now;
    this.windowMs = opts.windowMs ?? DEFAULT_BORN_WINDOW_MS;
    this.maxStamps = opts.maxStamps ?? DEFAULT_MAX_STAMPS;
    this.tickMs = opts.tickMs ?? DEFAULT_TICK_MS;
  }

  start(): void {
    if (this.timer) return;
    this.checkOwn(true);
    // What members announce when we start is not new: known, never observed.
    this.replaying = true;
    try {
      this.unsubscribe = this.opts.gossip.onMemberEvent((ev) => this.onEvent(ev), { replay: true });
    } finally {
      this.replaying = false;
    }
    this.timer = this.opts.clock.setInterval(this.tickMs, () => this.tick());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** One tick: new local endpoints stamped, old stamps and pending learns expired, section published. */
  tick(): void {
    try {
      this.ticks++;
      this.checkOwn(true);
      this.expire();
      this.publish();
    } catch (e) {
      this.opts.logger?.warn({ err: (e as Error).message }, 'convergence telemetry tick failed');
    }
  }

  private checkOwn(record: boolean): void {
    const now = this.wallNow();
    const fresh: string[] = [];
    const local = this.opts.local?.();
    if (local) {
      const v = local.version();
      if (v !== this.lastLocal) {
        this.lastLocal = v;
        for (const e of local.endpoints()) fresh.push(keyOf(e.vni, e.mac));
      }
    }
    if (record) {
        const self = this.opts.gossip.memberInfos().find((m) => m.name === this.opts.gossip.nodeName);
      if (self) for (const e of self.record.endpoints) fresh.push(keyOf(e.vni, e.mac));
    }
    for (const k of fresh) {
      if (this.ownSeen.has(k)) continue;
      this.ownSeen.add(k);
      // What we hold at start is not new (restored or restarted): only later appearances are stamped.
      if (!this.firstOwn) this.stamps.set(k, now);
    }
    if (record || local) this.firstOwn = false;
  }

  /** Own keys neither on the bridges nor in our record any more are forgotten: a reappearance is an appearance. */
  private forgetOwn(): void {
    const present = new Set<string>();
    const local = this.opts.local?.();
    if (local) for (const e of local.endpoints()) present.add(keyOf(e.vni, e.mac));
    const self = this.opts.gossip.memberInfos().find((m) => m.name === this.opts.gossip.nodeName);
    if (self) for (const e of self.record.endpoints) present.add(keyOf(e.vni, e.mac));
    for (const k of this.ownSeen) if (!present.has(k)) this.ownSeen.delete(k);
  }

  private expire(): void {
    const now = this.wallNow();
    for (const [k, ms] of this.stamps) {
      if (now - ms < this.windowMs && this.stamps.size <= this.maxStamps) break;
      this.stamps.delete(k);
    }
    const at = this.opts.clock.now();
    for (const [pk, p] of this.pending) {
      if (at - p.at < this.windowMs) break;
      this.pending.delete(pk);
      this.unstamped++;
    }
    if (this.ticks % Math.max(1, Math.round(this.windowMs / this.tickMs / 10)) === 0) this.forgetOwn();
  }

  private publish(): void {
    const data = this.stamps.size === 0 ? '' : JSON.stringify({ v: 1, e: [...this.stamps].map(([k, ms]) => { const i = k.indexOf('|'); return [Number(k.slice(0, i)), k.slice(i + 1), ms]; }) });
    if (data === this.published) return;
    this.published = data;
    this.opts.gossip.setSection(BORN_SECTION, data === '' ? null : data);
  }

  private onEvent(ev: MemberEvent): void {
    if (ev.name === this.opts.gossip.nodeName) return;
    if (ev.type === 'dead' || ev.type === 'left' || ev.type === 'reap') {
      this.known.delete(ev.name);
      for (const [pk, p] of this.pending) if (p.member === ev.name) this.pending.delete(pk);
      return;
    }
    const prev = this.known.get(ev.name) ?? new Set<string>();
    const cur = new Set<string>();
    const wall = this.wallNow();
    const at = this.opts.clock.now();
    for (const e of ev.record.endpoints) {
      const k = keyOf(e.vni, e.mac);
      cur.add(k);
      if (this.replaying || prev.has(k) || this.opts.networkOf(e.vni) === null) continue;
      const pk = `${ev.name}|${k}`;
      if (this.pending.has(pk)) continue;
      if (this.pending.size >= MAX_PENDING) {
        this.unstamped++;
        continue;
      }
      this.pending.set(pk, { member: ev.name, key: k, wall, at });
    }
    this.known.set(ev.name, cur);
    // Keys it no longer announces are not waiting any more (a reappearance is a new appearance).
    for (const [pk, p] of this.pending) if (p.member === ev.name && !cur.has(p.key)) this.pending.delete(pk);
    this.match(ev.name, ev.record.sections?.find((s) => s.name === BORN_SECTION)?.data ?? null);
  }

  /** Observes the pending learns of `member` whose stamps its `born` section now carries. */
  private match(member: string, data: string | null): void {
    if (data === null) return;
    const born = parseBorn(data);
    if (!born) return;
    for (const [pk, p] of this.pending) {
      if (p.member !== member) continue;
      const ms = born.get(p.key);
      if (ms === undefined) continue;
      this.pending.delete(pk);
      const vni = Number(p.key.slice(0, p.key.indexOf('|')));
      const network = this.opts.networkOf(vni);
      if (network === null) continue;
      let s = (p.wall - ms) / 1000;
      if (s < 0) {
        // Within one tick: the origin stamped late (it polls); beyond: the clocks disagree.
        if (ms - p.wall > this.tickMs) this.negative++;
        s = 0;
      }
      this.observe(network, s);
    }
  }

  /** Adds one observation (seconds) to `network`'s histogram. */
  observe(network: string, seconds: number): void {
    let h = this.histograms.get(network);
    if (!h) {
      h = { network, counts: new Array(CONVERGENCE_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
      this.histograms.set(network, h);
    }
    let i = 0;
    while (i < CONVERGENCE_BUCKETS.length && seconds > CONVERGENCE_BUCKETS[i]) i++;
    h.counts[i]++;
    h.sum += seconds;
    h.count++;
  }

  /** JSON-able summary (status `extensions.observe.convergence`). */
  status(): unknown {
    return {
      stamped: this.stamps.size,
      pending: this.pending.size,
      negative: this.negative,
      unstamped: this.unstamped,
      networks: [...this.histograms.values()].map((h) => ({ network: h.network, count: h.count, meanSeconds: h.count ? Math.round((h.sum / h.count) * 1000) / 1000 : null })),
    };
  }
}
