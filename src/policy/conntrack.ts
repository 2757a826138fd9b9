/**
 * Connection tracking for policy: the flows a verdict allowed, so that their later packets and
 * their replies cost one lookup instead of a rule walk. Flat and index-addressed (typed arrays
 * only), bounded, allocation-free per packet.
 *
 * A flow is keyed by (protocol, address A, port A, address B, port B) with the two sides in a
 * canonical order, so a packet and its reply find the same entry; `initiator` says which side sent
 * the first packet. Timeouts are nebula's: TCP 12 min, UDP 3 min, other 10 min, each refreshed by
 * every packet of the flow. Open addressing with linear probing, at most `PROBE_LIMIT` slots per
 * lookup; an insert into a full window evicts the entry closest to expiry (counted in `evictions`).
 * Entries carry the policy version they were allowed under: when the compiled policy changes,
 * the data path re-checks an entry of an older version on its next packet (`originalFlow`), and a
 * connection that is no longer allowed is removed and its packets dropped.
 */
import { randomBytes } from 'node:crypto';

export const TCP_TIMEOUT_MS = 12 * 60_000;
export const UDP_TIMEOUT_MS = 3 * 60_000;
export const OTHER_TIMEOUT_MS = 10 * 60_000;
/** Slots a lookup or insert may visit (bounds the work a chosen-key flood can cause). */
export const PROBE_LIMIT = 32;
export const DEFAULT_CONNTRACK_ENTRIES = 65536;

const W = 10; // words per key: 4 (addr A) + 4 (addr B) + 1 (port A << 16 | port B) + 1 (proto)
const EMPTY = 0;
const USED = 1;
const DELETED = 2;

export function timeoutFor(proto: number): number {
  return proto === 6 ? TCP_TIMEOUT_MS : proto === 17 ? UDP_TIMEOUT_MS : OTHER_TIMEOUT_MS;
}

export interface ConntrackStats {
  entries: number;
  inserts: number;
  evictions: number;
  expired: number;
}

export class Conntrack {
  readonly capacity: number;
  readonly stats: ConntrackStats = { entries: 0, inserts: 0, evictions: 0, expired: 0 };
  /** Set by `lookup`: true when the packet went from the initiator's side (false: a reply). */
  lastForward = false;

  private readonly mask: number;
  private readonly seed: number;
  private readonly keys: Uint32Array;
  private readonly state: Uint8Array;
  private readonly initiator: Uint8Array;
  private readonly expiry: Float64Array;
  private readonly versions: Uint32Array;
  private readonly tags: Uint8Array;
  private readonly scratch = new Uint32Array(W);
  private scratchSwapped = false;

  constructor(capacity = DEFAULT_CONNTRACK_ENTRIES, seed?: number) {
    let c = 64;
    while (c < capacity) c <<= 1;
    this.capacity = c;
    this.mask = c - 1;
    this.seed = (seed ?? randomBytes(4).readUInt32LE(0)) >>> 0;
    this.keys = new Uint32Array(c * W);
    this.state = new Uint8Array(c);
    this.initiator = new Uint8Array(c);
    this.expiry = new Float64Array(c);
    this.versions = new Uint32Array(c);
    this.tags = new Uint8Array(c);
  }

  /** Loads the canonical key of a packet into scratch; remembers whether the sides were swapped. */
  private load(src: Uint8Array, so: number, sport: number, dst: Uint8Array, dof: number, dport: number, proto: number): void {
    const k = this.scratch;
    // Both addresses as 4 big-endian words each, then the order decided on words (IPv4-mapped
    // addresses differ in the last word only: one comparison instead of 13 byte ones).
    for (let i = 0; i < 4; i++) {
      const a = so + 4 * i;
      const b = dof + 4 * i;
      k[i] = ((src[a] << 24) | (src[a + 1] << 16) | (src[a + 2] << 8) | src[a + 3]) >>> 0;
      k[4 + i] = ((dst[b] << 24) | (dst[b + 1] << 16) | (dst[b + 2] << 8) | dst[b + 3]) >>> 0;
    }
    let i = 0;
    while (i < 4 && k[i] === k[4 + i]) i++;
    const swap = i < 4 ? k[i] > k[4 + i] : sport > dport;
    if (swap) {
      for (let j = 0; j < 4; j++) {
        const t = k[j];
        k[j] = k[4 + j];
        k[4 + j] = t;
      }
      k[8] = ((dport << 16) | sport) >>> 0;
    } else k[8] = ((sport << 16) | dport) >>> 0;
    k[9] = proto;
    this.scratchSwapped = swap;
  }

  private hash(): number {
    const k = this.scratch;
    let h = (0x9e3779b9 ^ this.seed) >>> 0;
    for (let i = 0; i < W; i++) {
      h = Math.imul(h ^ k[i], 0x85ebca6b);
      h ^= h >>> 13;
    }
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  private matches(slot: number): boolean {
    const b = slot * W;
    const k = this.scratch;
    for (let i = 0; i < W; i++) if (this.keys[b + i] !== k[i]) return false;
    return true;
  }

  /**
   * The entry of this packet's flow (either direction), or −1. Refreshes its timeout; an expired
   * entry is removed and counts as a miss. Sets `lastForward`.
   */
  lookup(src: Uint8Array, so: number, sport: number, dst: Uint8Array, dof: number, dport: number, proto: number, now: number): number {
    this.load(src, so, sport, dst, dof, dport, proto);
    let s = this.hash() & this.mask;
    for (let n = 0; n < PROBE_LIMIT; n++, s = (s + 1) & this.mask) {
      const st = this.state[s];
      if (st === EMPTY) return -1;
      if (st !== USED || !this.matches(s)) continue;
      if (this.expiry[s] <= now) {
        this.free(s);
        this.stats.expired++;
        return -1;
      }
      this.expiry[s] = now + timeoutFor(proto);
      // initiator 0 = side A (canonical first) sent first; the packet is forward when it comes from that side.
      this.lastForward = (this.initiator[s] === 1) === this.scratchSwapped;
      return s;
    }
    return -1;
  }

  /** Records a new flow allowed under policy `version`, initiated by `src`. Returns its slot. */
  insert(src: Uint8Array, so: number, sport: number, dst: Uint8Array, dof: number, dport: number, proto: number, version: number, now: number): number {
    this.load(src, so, sport, dst, dof, dport, proto);
    const h = this.hash() & this.mask;
    let s = h;
    let free = -1;
    let victim = -1;
    for (let n = 0; n < PROBE_LIMIT; n++, s = (s + 1) & this.mask) {
      const st = this.state[s];
      if (st === USED && this.matches(s)) {
        free = s; // already tracked (e.g. a re-check): overwrite in place
        this.stats.entries--;
        break;
      }
      if (st === USED && this.expiry[s] <= now) {
        this.free(s);
        this.stats.expired++;
      }
      if (this.state[s] !== USED) {
        if (free < 0) free = s;
        if (this.state[s] === EMPTY) break;
      } else if (victim < 0 || this.expiry[s] < this.expiry[victim]) victim = s;
    }
    if (free < 0) {
      free = victim;
      this.free(victim);
      this.stats.evictions++;
    }
    this.keys.set(this.scratch, free * W);
    this.state[free] = USED;
    this.initiator[free] = this.scratchSwapped ? 1 : 0;
    this.expiry[free] = now + timeoutFor(proto);
    this.versions[free] = version;
    this.tags[free] = 0;
    this.stats.entries++;
    this.stats.inserts++;
    return free;
  }

  version(slot: number): number {
    return this.versions[slot];
  }

  setVersion(slot: number, version: number): void {
    this.versions[slot] = version;
  }

  /** A small value the owner keeps with the entry (the denied-flow cache: which side denied). */
  tag(slot: number): number {
    return this.tags[slot];
  }

  setTag(slot: number, v: number): void {
    this.tags[slot] = v;
  }

  remove(slot: number): void {
    if (this.state[slot] === USED) this.free(slot);
  }

  private free(slot: number): void {
    this.state[slot] = DELETED;
    this.stats.entries--;
    // A DELETED slot followed by EMPTY can become EMPTY again (keeps probe chains short).
    if (this.state[(slot + 1) & this.mask] === EMPTY) {
      let s = slot;
      while (this.state[s] === DELETED) {
        this.state[s] = EMPTY;
        s = (s - 1) & this.mask;
      }
    }
  }

  /**
   * The original direction of the flow in `slot`: initiator address → `src[so..+16]`, responder →
   * `dst[dof..+16]`; returns [sport, dport, proto].
   */
  originalFlow(slot: number, src: Uint8Array, so: number, dst: Uint8Array, dof: number): [number, number, number] {
    const b = slot * W;
    const swap = this.initiator[slot] === 1;
    const put = (out: Uint8Array, o: number, w: number): void => {
      for (let i = 0; i < 4; i++) {
        const x = this.keys[b + w + i];
        out[o + 4 * i] = x >>> 24;
        out[o + 4 * i + 1] = (x >>> 16) & 255;
        out[o + 4 * i + 2] = (x >>> 8) & 255;
        out[o + 4 * i + 3] = x & 255;
      }
    };
    put(src, so, swap ? 4 : 0);
    put(dst, dof, swap ? 0 : 4);
    const pa = this.keys[b + 8] >>> 16;
    const pb = this.keys[b + 8] & 0xffff;
    return swap ? [pb, pa, this.keys[b + 9]] : [pa, pb, this.keys[b + 9]];
  }

  /** Calls `fn(slot)` for every live entry (control plane: listings, policy re-checks). */
  forEach(fn: (slot: number) => void, now: number): void {
    for (let s = 0; s < this.capacity; s++) {
      if (this.state[s] !== USED) continue;
      if (this.expiry[s] <= now) {
        this.free(s);
        this.stats.expired++;
        continue;
      }
      fn(s);
    }
  }
}
