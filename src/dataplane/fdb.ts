/**
 * Per-network forwarding database: inner MAC → where it lives (this host's bridge, or a peer host).
 *
 * Kinds of entries:
 *   - local  (FDB_LOCAL):  learned from frames read from our TAP (source MAC); also carries the IPv4/
 *                          IPv6 addresses snooped from those frames (see `localEndpoints`);
 *   - remote (FDB_REMOTE): learned from decapsulated frames (inner source MAC → the sending peer);
 *   - static (FDB_STATIC): set by the control plane (gossip, API) → a peer, on behalf of an owner
 *                          (the gossip member that announced it; null: the operator); never aged or
 *                          evicted, not overwritten by remote learning (as the kernel treats
 *                          `permanent`); changed or deleted only by its owner (`other_owner`), and
 *                          never set over a live local entry (`local_entry`).
 * Local learning overrides anything (a MAC seen on our own bridge is here, whatever gossip said),
 * up to `maxLocalPerNetwork` local entries (beyond: not learned, `local_limit`); remote learning
 * never overrides a local or a static entry. Refusals are counted in `NetworkCounters.fdbRefused`.
 *
 * Ageing: local and remote entries expire `ageingSeconds` after they were last seen. Expired entries
 * are dropped on lookup (so forwarding never uses a stale entry) and by a periodic sweep on the
 * injected clock (so memory is released). Bound: at most `maxEntries` entries; inserting beyond it
 * evicts the least recently seen dynamic entry (counted in `NetworkCounters.fdbEvictions`).
 *
 * Layout (hot path: lookup and refresh are O(1) and allocation-free): entries live in slots of
 * struct-of-arrays typed arrays; an open-addressing (linear probing, backward-shift deletion) index
 * maps the MAC, held as hi16/lo32 integers (never a boxed 48-bit double), to a slot; dynamic entries
 * are threaded on an intrusive doubly linked list in last-seen order, so a refresh is a few integer
 * writes, the sweep stops at the first live entry and eviction takes the head. Storage grows by
 * doubling up to `maxEntries` (control-plane-rate allocation only).
 *
 * Hash flooding: MACs come from anybody on a bridge or the underlay, so the index hash is keyed
 * (HalfSipHash-1-3 over the MAC with a 64-bit key drawn from crypto.randomBytes per table, or the
 * `seed` option in tests): nobody can choose MACs that collide without the key. Whatever the MACs,
 * an entry sits at most `FDB_MAX_PROBE` index slots from its home: an insert that finds no free
 * slot within the bound is refused (counted `fdbRefused[probe_limit]`), so no lookup examines more
 * than `FDB_MAX_PROBE` slots.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../clock';
import type { FdbConfig } from '../config/types';
import { fdbRefusalIndex, type NetworkCounters } from './counters';
import { formatIPv4, formatIPv6 } from './addr';
import { macToString } from './ethernet';

export const FDB_LOCAL = 0;
export const FDB_REMOTE = 1;
export const FDB_STATIC = 2;
const FDB_FREE = 255;
export type FdbKind = typeof FDB_LOCAL | typeof FDB_REMOTE | typeof FDB_STATIC;
export const FDB_KIND_NAMES = ['local', 'remote', 'static'] as const;

/** Addresses remembered per local MAC (a ring: the most recent ones win). */
export const LOCAL_IPV4_PER_MAC = 4;
export const LOCAL_IPV6_PER_MAC = 4;

const TWO32 = 0x100000000;
const NIL = -1;
/** Most index slots an entry may sit from its home slot (= most a lookup examines). */
export const FDB_MAX_PROBE = 32;
const REFUSED_PROBE = fdbRefusalIndex.probe_limit;
const REFUSED_LOCAL = fdbRefusalIndex.local_entry;
const REFUSED_OWNER = fdbRefusalIndex.other_owner;
const REFUSED_LOCAL_LIMIT = fdbRefusalIndex.local_limit;
/** Default bound on local entries (config `fdb.maxLocalPerNetwork`). */
export const FDB_DEFAULT_MAX_LOCAL = 512;

/** Who set a static entry: an underlay address key (`peerKeyOfEndpoint` of the gossip member). */
export type FdbOwner = number | string;

export interface FdbOptions extends FdbConfig {
  clock: Clock;
  /** Where evictions are counted (`fdbEvictions`). */
  counters?: NetworkCounters;
  /** Initial slot capacity (grows by doubling up to maxEntries); default min(maxEntries, 256). */
  initialCapacity?: number;
  /** 8-byte hash key (tests); default crypto.randomBytes(8). */
  seed?: Uint8Array;
}

/** A read-only view of one entry, for the control plane (status, `vxmesh fdb`, gossip). */
export interface FdbEntryView<P> {
  mac: string;
  kind: 'local' | 'remote' | 'static';
  peer: P | null;
  /** Milliseconds since last seen (0 for static entries). */
  idleMs: number;
  ipv4: string[];
  ipv6: string[];
}

/**
 * HalfSipHash-1-3 (32-bit SipHash, as the Linux kernel's hsiphash) of the MAC `hi:lo` under key
 * `k0:k1`: message words lo32, then the final word (6 << 24) | hi16. Allocation-free.
 */
export function macHash(k0: number, k1: number, hi: number, lo: number): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = 0x6c796765 ^ k0;
  let v3 = 0x74656462 ^ k1;
  // word 1: lo32 (one SipRound)
  v3 ^= lo;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 ^= lo;
  // final word: length 6 in the top byte, the last two bytes (hi16)
  const m = 0x06000000 | (hi & 0xffff);
  v3 ^= m;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 ^= m;
  // finalisation: three SipRounds
  v2 ^= 0xff;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  return v1 ^ v3;
}

export class Fdb<P> {
  readonly maxEntries: number;
  readonly ageMs: number;
  private readonly clock: Clock;
  private readonly counters: NetworkCounters | undefined;
  private sweepTimer: TimerHandle | null = null;
  /** The hash key. */
  private readonly k0: number;
  private readonly k1: number;

  // slots
  private cap = 0;
  private hiA = new Uint16Array(0);
  private loA = new Uint32Array(0);
  private kindA = new Uint8Array(0);
  private seenA = new Float64Array(0);
  private prevA = new Int32Array(0);
  private nextA = new Int32Array(0);
  private peerA: (P | null)[] = [];
  /** Static entries: who set them (`setStatic`). */
  private ownerA: (FdbOwner | null)[] = [];
  private ip4A = new Uint32Array(0);
  private ip4N = new Uint8Array(0); // count (≤ LOCAL_IPV4_PER_MAC)
  private ip4W = new Uint8Array(0); // next ring position
  private ip6A = new Uint8Array(0);
  private ip6N = new Uint8Array(0);
  private ip6W = new Uint8Array(0);
  private freeHead = NIL;

  // index: open addressing, values are slot numbers, NIL = empty
  private index = new Int32Array(0);
  private mask = 0;

  // LRU of dynamic (local + remote) entries: head = least recently seen
  private head = NIL;
  private tail = NIL;

  /**
   * "Now" (ms, the clock's time) for the hot-path methods, set once per batch by `setNow`: the
   * methods read it instead of taking a time argument, so no double is passed — and boxed — per call.
   */
  private nowMs = 0;

  /** Number of entries. */
  size = 0;
  /** Evictions since creation (also added to `counters.fdbEvictions`). */
  evictions = 0;
  /** Inserts refused because no index slot was free within FDB_MAX_PROBE of the MAC's home. */
  probeRefusals = 0;
  /** Most local entries (`fdb.maxLocalPerNetwork`); a new one beyond it is refused (`local_limit`). */
  readonly maxLocal: number;
  /** Local entries now (live or not yet swept). */
  private localCount = 0;
  /**
   * Bumped whenever the set of local entries or their addresses changes, so the control plane
   * (gossip) can poll `localEndpoints` cheaply.
   */
  localVersion = 0;

  constructor(opts: FdbOptions) {
    if (!(opts.maxEntries >= 1)) throw new RangeError('fdb.maxEntries must be ≥ 1');
    if (!(opts.ageingSeconds > 0)) throw new RangeError('fdb.ageingSeconds must be > 0');
    this.maxEntries = Math.floor(opts.maxEntries);
    this.ageMs = opts.ageingSeconds * 1000;
    this.clock = opts.clock;
    this.counters = opts.counters;
    this.maxLocal = Math.max(1, Math.floor(opts.maxLocalPerNetwork ?? FDB_DEFAULT_MAX_LOCAL));
    const seed = opts.seed ?? randomBytes(8);
    if (seed.length < 8) throw new RangeError('fdb seed must be 8 bytes');
    this.k0 = (seed[0] | (seed[1] << 8) | (seed[2] << 16) | (seed[3] << 24)) >>> 0;
    this.k1 = (seed[4] | (seed[5] << 8) | (seed[6] << 16) | (seed[7] << 24)) >>> 0;
    this.grow(Math.max(1, Math.min(this.maxEntries, opts.initialCapacity ?? 256)));
  }

  /** Starts the periodic sweep (every ageingSeconds/4, clamped to [1 s, 30 s]). Idempotent. */
  start(): void {
    if (this.sweepTimer) return;
    const every = Math.min(30_000, Math.max(1_000, this.ageMs / 4));
    this.sweepTimer = this.clock.setInterval(every, () => this.sweep(this.clock.now()));
  }

  stop(): void {
    this.sweepTimer?.cancel();
    this.sweepTimer = null;
  }

  // ---- hot path -----------------------------------------------------------------------------

  /** Sets the time the hot-path methods (lookup, isLocal, learn*) work at; once per batch. */
  setNow(now: number): void {
    this.nowMs = now;
  }

  /**
   * Slot of the live entry for MAC `hi:lo`, or -1. An expired dynamic entry is removed and -1
   * returned. O(1), allocation-free.
   */
  lookup(hi: number, lo: number): number {
    const s = this.find(hi, lo);
    if (s < 0) return NIL;
    if (this.kindA[s] !== FDB_STATIC && this.nowMs - this.seenA[s] >= this.ageMs) {
      this.remove(s);
      return NIL;
    }
    return s;
  }

  kindAt(slot: number): FdbKind {
    return this.kindA[slot] as FdbKind;
  }

  peerAt(slot: number): P | null {
    return this.peerA[slot];
  }

  /** True when MAC `hi:lo` is a live local entry. */
  isLocal(hi: number, lo: number): boolean {
    const s = this.find(hi, lo);
    return s >= 0 && this.kindA[s] === FDB_LOCAL && this.nowMs - this.seenA[s] < this.ageMs;
  }

  /**
   * Learns (or refreshes) MAC `hi:lo` as local. Returns its slot, or -1 when the table is full of
   * static entries. Allocation-free unless the storage has to grow.
   */
  learnLocal(hi: number, lo: number): number {
    const now = this.nowMs;
    let s = this.find(hi, lo);
    if (s >= 0) {
      const k = this.kindA[s];
      if (k === FDB_LOCAL) {
        this.seenA[s] = now;
        this.toTail(s);
        return s;
      }
    }
    // a new local entry (or a remote / static one whose MAC is now here): within the bound only
    if (this.localCount >= this.maxLocal) {
      this.sweep(now);
      if (this.localCount >= this.maxLocal) {
        this.refuse(REFUSED_LOCAL_LIMIT);
        return NIL;
      }
      s = this.find(hi, lo);
    }
    if (s >= 0) {
      const k = this.kindA[s];
      if (k === FDB_STATIC) this.append(s);
      this.kindA[s] = FDB_LOCAL;
      this.localCount++;
      this.peerA[s] = null;
      this.ownerA[s] = null;
      this.ip4N[s] = 0;
      this.ip6N[s] = 0;
      this.localVersion++;
      this.seenA[s] = now;
      this.toTail(s);
      return s;
    }
    s = this.insert(hi, lo, FDB_LOCAL, null, now);
    if (s >= 0) {
      this.localCount++;
      this.localVersion++;
    }
    return s;
  }

  /**
   * Learns (or refreshes) MAC `hi:lo` as living behind `peer`. A local or static entry is left as it
   * is (its slot returned). Returns -1 only when the table is full of static entries.
   */
  learnRemote(hi: number, lo: number, peer: P): number {
    return this.learnRemoteAt(this.find(hi, lo), hi, lo, peer);
  }

  /**
   * `learnRemote` when the caller already has the MAC's slot (`s` from `lookup`/`find` of `hi:lo`
   * with no change to the table since, or -1): saves the second hash and probe per datagram.
   */
  learnRemoteAt(s: number, hi: number, lo: number, peer: P): number {
    const now = this.nowMs;
    if (s >= 0) {
      const k = this.kindA[s];
      if (k === FDB_REMOTE) {
        this.peerA[s] = peer; // moved hosts: the last sender wins
        this.seenA[s] = now;
        this.toTail(s);
      } else if (k === FDB_LOCAL && now - this.seenA[s] >= this.ageMs) {
        // an expired local entry: the MAC has moved to a remote host
        this.kindA[s] = FDB_REMOTE;
        this.localCount--;
        this.peerA[s] = peer;
        this.localVersion++;
        this.seenA[s] = now;
        this.toTail(s);
      }
      return s;
    }
    return this.insert(hi, lo, FDB_REMOTE, peer, now);
  }

  /** Records an IPv4 address (uint32) seen from the local entry in `slot`. */
  noteIPv4(slot: number, ip: number): void {
    if (this.kindA[slot] !== FDB_LOCAL || ip === 0) return;
    const base = slot * LOCAL_IPV4_PER_MAC;
    const n = this.ip4N[slot];
    for (let i = 0; i < n; i++) if (this.ip4A[base + i] === ip) return;
    const w = this.ip4W[slot];
    this.ip4A[base + w] = ip;
    this.ip4W[slot] = (w + 1) % LOCAL_IPV4_PER_MAC;
    if (n < LOCAL_IPV4_PER_MAC) this.ip4N[slot] = n + 1;
    this.localVersion++;
  }

  /** Records the IPv6 address at `buf[off]` (16 bytes) seen from the local entry in `slot`. */
  noteIPv6(slot: number, buf: Uint8Array, off: number): void {
    if (this.kindA[slot] !== FDB_LOCAL) return;
    let zero = 0;
    for (let i = 0; i < 16; i++) zero |= buf[off + i];
    if (zero === 0) return; // :: (duplicate address detection)
    const a = this.ip6A;
    const base = slot * LOCAL_IPV6_PER_MAC * 16;
    const n = this.ip6N[slot];
    for (let i = 0; i < n; i++) {
      const o = base + i * 16;
      let j = 0;
      while (j < 16 && a[o + j] === buf[off + j]) j++;
      if (j === 16) return;
    }
    const w = this.ip6W[slot];
    const o = base + w * 16;
    for (let j = 0; j < 16; j++) a[o + j] = buf[off + j];
    this.ip6W[slot] = (w + 1) % LOCAL_IPV6_PER_MAC;
    if (n < LOCAL_IPV6_PER_MAC) this.ip6N[slot] = n + 1;
    this.localVersion++;
  }

  // ---- control plane ------------------------------------------------------------------------

  /**
   * Sets a static entry MAC → peer on behalf of `owner` (the gossip member that announced it;
   * null: the operator / API). Refused (false, counted in `counters.fdbRefused`) when the MAC is a
   * live local entry (`local_entry`: a MAC on this host's bridge is here, whatever gossip says) or
   * a static entry of another owner (`other_owner`); false too when the table has no room.
   */
  setStatic(mac: number, peer: P, owner: FdbOwner | null = null): boolean {
    const refused = this.staticRefusal(mac, owner);
    if (refused >= 0) return this.refuse(refused);
    const hi = Math.floor(mac / TWO32);
    const lo = mac >>> 0;
    const s = this.find(hi, lo);
    if (s >= 0) {
      const k = this.kindA[s];
      if (k === FDB_LOCAL) {
        this.localVersion++;
        this.localCount--;
      }
      if (k !== FDB_STATIC) this.unlink(s);
      this.kindA[s] = FDB_STATIC;
      this.peerA[s] = peer;
      this.ownerA[s] = owner;
      return true;
    }
    const t = this.insert(hi, lo, FDB_STATIC, peer, this.clock.now());
    if (t < 0) return false;
    this.ownerA[t] = owner;
    return true;
  }

  /**
   * Deletes the static entry for `mac` if `owner` set it (see `setStatic`). Another owner's entry,
   * or a learned one, is left (false; another owner's counted `other_owner`).
   */
  deleteOwned(mac: number, owner: FdbOwner | null): boolean {
    const s = this.find(Math.floor(mac / TWO32), mac >>> 0);
    if (s < 0) return false;
    if (this.kindA[s] !== FDB_STATIC || this.ownerA[s] !== owner) return this.refuse(REFUSED_OWNER);
    this.remove(s);
    return true;
  }

  /** Why `setStatic(mac, …, owner)` would be refused (a `fdbRefusalIndex` value), or -1 if it would not. */
  staticRefusal(mac: number, owner: FdbOwner | null): number {
    const s = this.find(Math.floor(mac / TWO32), mac >>> 0);
    if (s < 0) return NIL;
    const k = this.kindA[s];
    if (k === FDB_LOCAL && this.clock.now() - this.seenA[s] < this.ageMs) return REFUSED_LOCAL;
    if (k === FDB_STATIC && this.ownerA[s] !== owner) return REFUSED_OWNER;
    return NIL;
  }

  /** Counts a refusal; returns false (for `return this.refuse(…)`). */
  refuse(reason: number): false {
    if (this.counters) this.counters.fdbRefused[reason]++;
    return false;
  }

  /** Deletes the entry for `mac`, whatever its kind. Returns whether one existed. */
  delete(mac: number): boolean {
    const s = this.find(Math.floor(mac / TWO32), mac >>> 0);
    if (s < 0) return false;
    this.remove(s);
    return true;
  }

  /** Slot for `mac` (no expiry check), or -1. */
  slotOf(mac: number): number {
    return this.find(Math.floor(mac / TWO32), mac >>> 0);
  }

  /** Removes every remote and static entry pointing at `peer` (or for which `match` is true). */
  removeByPeer(match: (peer: P) => boolean): number {
    let n = 0;
    for (let s = 0; s < this.cap; s++) {
      const k = this.kindA[s];
      if (k === FDB_FREE || k === FDB_LOCAL) continue;
      const p = this.peerA[s];
      if (p !== null && match(p)) {
        this.remove(s);
        n++;
      }
    }
    return n;
  }

  /** Removes every expired dynamic entry; returns how many. Called by the sweep timer. */
  sweep(now: number): number {
    let n = 0;
    while (this.head !== NIL && now - this.seenA[this.head] >= this.ageMs) {
      this.remove(this.head);
      n++;
    }
    return n;
  }

  /** Removes every entry. */
  clear(): void {
    for (let s = 0; s < this.cap; s++) if (this.kindA[s] !== FDB_FREE) this.remove(s);
  }

  /** Snapshot of live entries (expired ones skipped), for status/CLI/gossip. Allocates. */
  entries(now = this.clock.now()): FdbEntryView<P>[] {
    const out: FdbEntryView<P>[] = [];
    for (let s = 0; s < this.cap; s++) {
      const k = this.kindA[s];
      if (k === FDB_FREE) continue;
      const idle = k === FDB_STATIC ? 0 : now - this.seenA[s];
      if (k !== FDB_STATIC && idle >= this.ageMs) continue;
      out.push({
        mac: macToString(this.hiA[s] * TWO32 + this.loA[s]),
        kind: FDB_KIND_NAMES[k],
        peer: this.peerA[s],
        idleMs: idle,
        ipv4: this.ipv4Of(s),
        ipv6: this.ipv6Of(s),
      });
    }
    return out;
  }

  /** Live local entries with their snooped addresses. */
  localEntries(now = this.clock.now()): { mac: string; ipv4: string[]; ipv6: string[] }[] {
    return this.entries(now)
      .filter((e) => e.kind === 'local')
      .map((e) => ({ mac: e.mac, ipv4: e.ipv4, ipv6: e.ipv6 }));
  }

  private ipv4Of(s: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.ip4N[s]; i++) out.push(formatIPv4(this.ip4A[s * LOCAL_IPV4_PER_MAC + i]));
    return out;
  }

  private ipv6Of(s: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.ip6N[s]; i++) out.push(formatIPv6(this.ip6A, (s * LOCAL_IPV6_PER_MAC + i) * 16));
    return out;
  }

  /**
   * Index slots a lookup of `mac` examines (found or not): the cost an attacker who chooses MACs
   * would like to drive up. Diagnostics and tests; control-plane rate.
   */
  probeCount(mac: number): number {
    const hi = Math.floor(mac / TWO32);
    const lo = mac >>> 0;
    const idx = this.index;
    const mask = this.mask;
    let i = macHash(this.k0, this.k1, hi, lo) & mask;
    for (let n = 1; n < FDB_MAX_PROBE; n++) {
      const s = idx[i];
      if (s === NIL || (this.loA[s] === lo && this.hiA[s] === hi)) return n;
      i = (i + 1) & mask;
    }
    return FDB_MAX_PROBE;
  }

  /** Current slot capacity (grows up to maxEntries). */
  get capacity(): number {
    return this.cap;
  }

  // ---- internals ----------------------------------------------------------------------------

  private find(hi: number, lo: number): number {
    const idx = this.index;
    const mask = this.mask;
    let i = macHash(this.k0, this.k1, hi, lo) & mask;
    for (let n = 0; n < FDB_MAX_PROBE; n++) {
      const s = idx[i];
      if (s === NIL) return NIL;
      if (this.loA[s] === lo && this.hiA[s] === hi) return s;
      i = (i + 1) & mask;
    }
    return NIL;
  }

  /** A free index slot within FDB_MAX_PROBE of the home of `hi:lo`, or -1. */
  private freeIndexSlot(hi: number, lo: number): number {
    const idx = this.index;
    const mask = this.mask;
    let i = macHash(this.k0, this.k1, hi, lo) & mask;
    for (let n = 0; n < FDB_MAX_PROBE; n++) {
      if (idx[i] === NIL) return i;
      i = (i + 1) & mask;
    }
    return NIL;
  }

  private countProbeRefusal(): void {
    this.probeRefusals++;
    if (this.counters) this.counters.fdbRefused[REFUSED_PROBE]++;
  }

  private insert(hi: number, lo: number, kind: FdbKind, peer: P | null, now: number): number {
    if (this.size >= this.maxEntries) {
      // make room: an expired head is aged out; a live one is evicted (counted)
      if (this.head === NIL) return NIL;
      const victim = this.head;
      const expired = now - this.seenA[victim] >= this.ageMs;
      this.remove(victim);
      if (!expired) {
        this.evictions++;
        if (this.counters) this.counters.fdbEvictions++;
      }
    } else if (this.freeHead === NIL) {
      this.grow(Math.min(this.maxEntries, this.cap * 2));
    }
    const at = this.freeIndexSlot(hi, lo);
    if (at === NIL) {
      this.countProbeRefusal();
      return NIL;
    }
    const s = this.freeHead;
    this.freeHead = this.nextA[s];
    this.hiA[s] = hi;
    this.loA[s] = lo;
    this.kindA[s] = kind;
    this.peerA[s] = peer;
    this.ownerA[s] = null;
    this.seenA[s] = now;
    this.ip4N[s] = 0;
    this.ip4W[s] = 0;
    this.ip6N[s] = 0;
    this.ip6W[s] = 0;
    this.prevA[s] = NIL;
    this.nextA[s] = NIL;
    if (kind !== FDB_STATIC) this.append(s);
    this.index[at] = s;
    this.size++;
    return s;
  }

  private remove(s: number): void {
    const k = this.kindA[s];
    if (k === FDB_FREE) return;
    if (k === FDB_LOCAL) {
      this.localVersion++;
      this.localCount--;
    }
    if (k !== FDB_STATIC) this.unlink(s);
    // backward-shift deletion from the index
    const idx = this.index;
    const mask = this.mask;
    let i = macHash(this.k0, this.k1, this.hiA[s], this.loA[s]) & mask;
    while (idx[i] !== s) i = (i + 1) & mask;
    idx[i] = NIL;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const t = idx[j];
      if (t === NIL) break;
      const home = macHash(this.k0, this.k1, this.hiA[t], this.loA[t]) & mask;
      // t may move back to the hole at i unless its home lies cyclically in (i, j]
      const inRange = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!inRange) {
        idx[i] = t;
        idx[j] = NIL;
        i = j;
      }
    }
    this.kindA[s] = FDB_FREE;
    this.peerA[s] = null;
    this.nextA[s] = this.freeHead;
    this.freeHead = s;
    this.size--;
  }

  /** Moves `s` to the most-recently-seen end (the caller has set its seen time). */
  private toTail(s: number): void {
    if (s !== this.tail) {
      this.unlink(s);
      this.append(s);
    }
  }

  private append(s: number): void {
    this.prevA[s] = this.tail;
    this.nextA[s] = NIL;
    if (this.tail !== NIL) this.nextA[this.tail] = s;
    else this.head = s;
    this.tail = s;
  }

  private unlink(s: number): void {
    const p = this.prevA[s];
    const n = this.nextA[s];
    if (p !== NIL) this.nextA[p] = n;
    else if (this.head === s) this.head = n;
    if (n !== NIL) this.prevA[n] = p;
    else if (this.tail === s) this.tail = p;
    this.prevA[s] = NIL;
    this.nextA[s] = NIL;
  }

  private grow(newCap: number): void {
    const old = this.cap;
    if (newCap <= old) return;
    const copy = <T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(a: T, n: number): T => {
      const b = new (a.constructor as { new (n: number): T })(n);
      b.set(a);
      return b;
    };
    this.hiA = copy(this.hiA, newCap);
    this.loA = copy(this.loA, newCap);
    this.kindA = copy(this.kindA, newCap);
    this.kindA.fill(FDB_FREE, old);
    this.seenA = copy(this.seenA, newCap);
    this.prevA = copy(this.prevA, newCap);
    this.nextA = copy(this.nextA, newCap);
    this.ip4A = copy(this.ip4A, newCap * LOCAL_IPV4_PER_MAC);
    this.ip4N = copy(this.ip4N, newCap);
    this.ip4W = copy(this.ip4W, newCap);
    this.ip6A = copy(this.ip6A, newCap * LOCAL_IPV6_PER_MAC * 16);
    this.ip6N = copy(this.ip6N, newCap);
    this.ip6W = copy(this.ip6W, newCap);
    for (let s = old; s < newCap; s++) {
      this.peerA.push(null);
      this.ownerA.push(null);
    }
    // new slots onto the free list (lowest first)
    for (let s = newCap - 1; s >= old; s--) {
      this.nextA[s] = this.freeHead;
      this.freeHead = s;
    }
    this.cap = newCap;
    // index: power of two ≥ 4 × capacity (load factor ≤ 0.25: a run of FDB_MAX_PROBE occupied
    // slots is then ~1e-9 likely for random hashes, so the bound refuses only chosen collisions), rebuilt
    let size = 8;
    while (size < newCap * 4) size *= 2;
    this.index = new Int32Array(size).fill(NIL);
    this.mask = size - 1;
    for (let s = 0; s < old; s++) {
      if (this.kindA[s] === FDB_FREE) continue;
      const at = this.freeIndexSlot(this.hiA[s], this.loA[s]);
      if (at !== NIL) {
        this.index[at] = s;
        continue;
      }
      // no room within the bound in the new index: the entry is dropped (as a refused insert)
      if (this.kindA[s] === FDB_LOCAL) {
        this.localVersion++;
        this.localCount--;
      }
      if (this.kindA[s] !== FDB_STATIC) this.unlink(s);
      this.kindA[s] = FDB_FREE;
      this.peerA[s] = null;
      this.nextA[s] = this.freeHead;
      this.freeHead = s;
      this.size--;
      this.countProbeRefusal();
    }
  }
}
