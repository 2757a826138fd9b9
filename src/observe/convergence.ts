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
 * By every host (`vxmesh_endpoint_convergence_all_seconds{network}`, filled on the origin):
 *   receiver Each observation above is also an acknowledgement: (origin, vni, MAC, born, learned)
 *            kept for `windowMs` (at most `maxAcks`, newest kept) and published in this host's
 *            record section `ack` (JSON `{"v":1,"a":[["origin",vni,"mac",bornMs,learnedMs],…]}`).
 *            An ack names no acknowledging host: it is the sender's, read from the sender's record
 *            only (a record speaks only for its sender).
 *   origin   For each of its own stamps, once every live member (alive or suspect) that serves the
 *            VNI has an ack for it in its own record (same born stamp: a reappearance is another
 *            endpoint), it observes `max(learned) − born`, once. A stamp that leaves the window (or
 *            the `maxStamps` bound) before that, while some member had to acknowledge it, counts
 *            `incomplete` (a member that joined after the endpoint learns it at its start, which is
 *            not observed, so never acknowledges it; an older agent never acknowledges). No other
 *            member serving the VNI: nothing to observe.
 *
 * Clock skew: `learned` and `born` are read on different hosts' wall clocks, so each observation is
 * off by the receiver's clock offset to the origin (NTP keeps it to milliseconds on a LAN; an
 * unsynchronised host shows as a shifted distribution). The origin stamps up to `tickMs` (100 ms)
 * after the appearance (it polls), so observations can be low by that much: a MAC learned on a
 * bridge is announced by gossip's own poll (1 s) after the stamp, but an endpoint announced at
 * attach can reach a fast receiver before its stamp; such a result in (−tickMs, 0) is observed as
 * 0. A result below −tickMs (the receiver's clock behind) is observed as 0 and counted (`negative`).
 *
 * Summed over hosts, the per-receiver histograms are the distribution over (endpoint, receiving
 * host) pairs; the all-hosts one is per endpoint, on its origin.
 *
 * Cost: one record update per batch of new endpoints (the section) on the origin, and one per
 * batch of learned ones on each receiver (its acks); every tick (100 ms) one read of
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
export const ACK_SECTION = 'ack';
export const DEFAULT_MAX_ACKS = 256;
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
  /** Most acknowledgements published at once (default 256, newest kept). */
  maxAcks?: number;
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

/** One acknowledgement read from a member's `ack` section. */
export interface Ack {
  origin: string;
  key: string;
  born: number;
  learned: number;
}

/** Parses an `ack` section (key `${origin}|${vni}|${mac}`); null when it is not one (ignored). */
export function parseAcks(data: string): Map<string, Ack> | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || (v as { v?: unknown }).v !== 1 || !Array.isArray((v as { a?: unknown }).a)) return null;
  const out = new Map<string, Ack>();
  for (const x of (v as { a: unknown[] }).a) {
    if (!Array.isArray(x) || x.length !== 5) continue;
    const [origin, vni, mac, born, learned] = x as unknown[];
    if (typeof origin !== 'string' || typeof vni !== 'number' || typeof mac !== 'string' || typeof born !== 'number' || !Number.isFinite(born)
      || typeof learned !== 'number' || !Number.isFinite(learned)) continue;
    const key = keyOf(vni, mac);
    out.set(`${origin}|${key}`, { origin, key, born, learned });
  }
  return out;
}

const newHistogram = (network: string): ConvergenceHistogram => ({ network, counts: new Array(CONVERGENCE_BUCKETS.length + 1).fill(0), sum: 0, count: 0 });

function addTo(h: ConvergenceHistogram, seconds: number): void {
  let i = 0;
  while (i < CONVERGENCE_BUCKETS.length && seconds > CONVERGENCE_BUCKETS[i]) i++;
  h.counts[i]++;
  h.sum += seconds;
  h.count++;
}

export class ConvergenceObserver {
  readonly histograms = new Map<string, ConvergenceHistogram>();
  /** Origin side: time until every live member serving the network acknowledged our endpoint. */
  readonly allHistograms = new Map<string, ConvergenceHistogram>();
  /** Own endpoints that left the window before every member that had to acknowledged them. */
  incomplete = 0;
  /** Observations that came out negative (receiver clock behind the origin's): observed as 0. */
  negative = 0;
  /** Endpoints learned whose stamp never came (within the window, or beyond MAX_PENDING). */
  unstamped = 0;
  /** Our own stamps: key → wall ms (insertion order = age). */
  private readonly stamps = new Map<string, number>();
  /** Own stamps not yet acknowledged by every member: key → born; `needed`: some member had to. */
  private readonly awaiting = new Map<string, { born: number; needed: boolean }>();
  /** Our acknowledgements: `${origin}|${key}` → ack (insertion order = age). */
  private readonly acks = new Map<string, Ack>();
  private acksPublished = '';
  /** Something an `awaiting` verdict depends on changed (a member event, a new stamp). */
  private allDirty = false;
  private readonly maxAcks: number;
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
    this.maxAcks = opts.maxAcks ?? DEFAULT_MAX_ACKS;
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
      if (this.allDirty) this.checkAll();
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
      if (!this.firstOwn) {
        this.stamps.delete(k); // re-inserted: insertion order stays age order
        this.stamps.set(k, now);
        this.awaiting.set(k, { born: now, needed: false });
        this.allDirty = true;
      }
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
      const w = this.awaiting.get(k);
      if (w !== undefined && w.born === ms) {
        this.awaiting.delete(k);
        if (w.needed) this.incomplete++;
      }
    }
    for (const [k, a] of this.acks) {
      if (now - a.learned < this.windowMs && this.acks.size <= this.maxAcks) break;
      this.acks.delete(k);
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
    if (data !== this.published) {
      this.published = data;
      this.opts.gossip.setSection(BORN_SECTION, data === '' ? null : data);
    }
    const acks = this.acks.size === 0 ? '' : JSON.stringify({ v: 1, a: [...this.acks.values()].map((a) => { const i = a.key.indexOf('|'); return [a.origin, Number(a.key.slice(0, i)), a.key.slice(i + 1), a.born, a.learned]; }) });
    if (acks !== this.acksPublished) {
      this.acksPublished = acks;
      this.opts.gossip.setSection(ACK_SECTION, acks === '' ? null : acks);
    }
  }

  /**
   * Origin side: each own endpoint still awaited that every live member serving its VNI has
   * acknowledged (in its own record) is observed once as max(learned) − born.
   */
  private checkAll(): void {
    this.allDirty = false;
    if (this.awaiting.size === 0) return;
    const self = this.opts.gossip.nodeName;
    const live = this.opts.gossip.memberInfos().filter((m) => m.name !== self && (m.state === 'alive' || m.state === 'suspect'));
    const acksOf = new Map<string, Map<string, Ack>>();
    for (const s of this.opts.gossip.sections(ACK_SECTION)) {
      if (s.self) continue;
      const a = parseAcks(s.data);
      if (a) acksOf.set(s.node, a);
    }
    for (const [k, w] of this.awaiting) {
      const vni = Number(k.slice(0, k.indexOf('|')));
      const network = this.opts.networkOf(vni);
      if (network === null) {
        this.awaiting.delete(k);
        continue;
      }
      let n = 0;
      let last = -Infinity;
      let all = true;
      for (const m of live) {
        if (!m.record.vnis.includes(vni)) continue;
        n++;
        const a = acksOf.get(m.name)?.get(`${self}|${k}`);
        if (a === undefined || a.born !== w.born) {
          all = false;
          break;
        }
        if (a.learned > last) last = a.learned;
      }
      if (n === 0) continue;
      w.needed = true;
      if (!all) continue;
      this.awaiting.delete(k);
      let s = (last - w.born) / 1000;
      if (s < 0) {
        if (w.born - last > this.tickMs) this.negative++;
        s = 0;
      }
      let h = this.allHistograms.get(network);
      if (!h) {
        h = newHistogram(network);
        this.allHistograms.set(network, h);
      }
      addTo(h, s);
    }
  }

  private onEvent(ev: MemberEvent): void {
    if (ev.name === this.opts.gossip.nodeName) return;
    this.allDirty = true;
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
      // our acknowledgement, published in our record (the origin's all-hosts measure)
      const ak = `${member}|${p.key}`;
      this.acks.delete(ak);
      this.acks.set(ak, { origin: member, key: p.key, born: ms, learned: p.wall });
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
      h = newHistogram(network);
      this.histograms.set(network, h);
    }
    addTo(h, seconds);
  }

  /** JSON-able summary (status `extensions.observe.convergence`). */
  status(): unknown {
    return {
      stamped: this.stamps.size,
      pending: this.pending.size,
      negative: this.negative,
      unstamped: this.unstamped,
      acks: this.acks.size,
      awaiting: this.awaiting.size,
      incomplete: this.incomplete,
      networks: [...this.histograms.values()].map((h) => ({ network: h.network, count: h.count, meanSeconds: h.count ? Math.round((h.sum / h.count) * 1000) / 1000 : null })),
      allHosts: [...this.allHistograms.values()].map((h) => ({ network: h.network, count: h.count, meanSeconds: h.count ? Math.round((h.sum / h.count) * 1000) / 1000 : null })),
    };
  }
}
