/**
 * Policy on one network's data path: the stage both pipelines call ("[policy egress]" in
 * dataplane/inside.ts, "[policy ingress]" in dataplane/outside.ts) once per frame. Allocation-free.
 *
 *   1. parse (packet.ts): ARP/ND/MLD pass; non-IP frames are dropped (`non_ip`) while any endpoint
 *      of the network is isolated, else pass;
 *   2. remote frames only: the inner source address must be an endpoint of the host that sent the
 *      frame (its gossip endpoint records), else `spoofed`;
 *   3. ICMP errors pass when the flow they quote is tracked (path MTU, unreachables), else go on
 *      as an ICMP flow;
 *   4. conntrack hit under the current policy version → pass; under an older version → the
 *      original flow is checked again: still allowed → pass (entry re-stamped), else the entry is
 *      removed and the frame dropped (`revoked`): a policy change stops connections it no longer allows;
 *   5. a new flow: CompiledPolicy.check (source's egress AND destination's ingress) → allowed: a
 *      conntrack entry, pass; denied: counted by the side that denied, recorded in the denial
 *      ring, dropped — or, with `policyMode: audit`, counted as would-deny and passed.
 */
import type { Clock } from '../clock';
import type { TxBatch } from '../dataplane/seams';
import { formatIp16 } from '../ipam/cidr';
import { CompiledPolicy, DENY_EGRESS, DENY_INGRESS, EGRESS, INGRESS } from './compile';
import { Conntrack, DEFAULT_CONNTRACK_ENTRIES } from './conntrack';
import { FlowKey, KIND_CONTROL, KIND_ERROR, KIND_IP, KIND_OTHER, parseFrame } from './packet';

/** Counter slots of `PolicyEnforcer.counters`. */
export const PC_ALLOWED_NEW = 0; // new flows allowed
export const PC_ALLOWED_TRACKED = 1; // frames passed by conntrack
export const PC_DENIED_EGRESS = 2;
export const PC_DENIED_INGRESS = 3;
export const PC_AUDIT_EGRESS = 4; // audit mode: would have been denied by egress
export const PC_AUDIT_INGRESS = 5;
export const PC_SPOOFED = 6;
export const PC_NON_IP = 7;
export const PC_REVOKED = 8;
export const PC_RELATED = 9; // ICMP errors passed for a tracked flow
export const PC_DENIED_CACHED = 10; // denied frames answered by the denied-flow cache (no rule walk)
export const PC_HAIRPIN = 11; // same-host frames passed and written back to the TAP (a super-frame once)
export const PC_HAIRPIN_FAILED = 12; // same-host frames lost after the verdict (unsegmentable, TAP write failed)
export const PC_SLOTS = 13;

/** Denial reasons recorded in the ring. */
export const DENY_REASONS = ['egress', 'ingress', 'egress+ingress', 'spoofed', 'non_ip', 'revoked'] as const;
export type DenyReason = (typeof DENY_REASONS)[number];

export interface Denial {
  time: number;
  reason: DenyReason;
  audit: boolean;
  src: string;
  dst: string;
  srcEndpoint: string | null;
  dstEndpoint: string | null;
  protocol: number;
  port: number;
  /** Underlay address of the host the frame came from (remote frames). */
  fromHost: string | null;
}

export interface EnforcerOptions {
  clock: Clock;
  /** Conntrack entries (bounded; evictions counted). */
  conntrackEntries?: number;
  /** Denials kept for `vxmesh policy denials`. */
  denialRing?: number;
  /** Denied flows remembered (bounded; evictions counted in `deniedCache.stats.evictions`). */
  deniedCacheEntries?: number;
  audit?: boolean;
  seed?: number;
  /**
   * Cuts a TSO super-frame into complete segments (the addon's `gsoSegment`): same-host
   * super-frames are written back to the TAP as segments, which the TAP write coalesces again.
   * Without it a same-host super-frame is lost (`PC_HAIRPIN_FAILED`).
   */
  segment?: (frame: Uint8Array, gsoType: number, mss: number, prefix: Uint8Array, out: Uint8Array, segLens: Uint32Array) => number;
}

/** Same-host endpoints at most per network (the FDB's local bound is 512). */
export const MAX_LOCAL_ENDPOINTS = 1024;
/** The same-host write-back batch: descriptors and bytes (one 64 KiB super-frame's segments fit). */
export const HAIRPIN_SLOTS = 1024;
export const HAIRPIN_BYTES = 512 * 1024;
const EMPTY_PREFIX = new Uint8Array(0);

export const DEFAULT_DENIAL_RING = 256;
export const DEFAULT_DENIED_CACHE_ENTRIES = 4096;

export class PolicyEnforcer {
  readonly counters = new Float64Array(PC_SLOTS);
  readonly conntrack: Conntrack;
  /**
   * Denied new flows (enforce mode), keyed like conntrack, each stamped with the policy version
   * (the generation) it was denied under: a flood of denied packets costs one lookup, not a rule
   * walk; an entry of an older version is a miss (the flow is checked again), so a policy change
   * invalidates every entry at once. Bounded; evictions counted.
   */
  readonly deniedCache: Conntrack;
  audit: boolean;
  private compiled: CompiledPolicy | null = null;
  private readonly clock: Clock;
  /** The data path's time for the batch being filtered (`setNow`), or −1: read the clock per frame. */
  private stamp = -1;
  private readonly key = new FlowKey();
  private readonly tmpSrc = new Uint8Array(16);
  private readonly tmpDst = new Uint8Array(16);
  // The denial ring, in typed arrays (written on the deny path without allocation).
  private readonly ringSize: number;
  private ringNext = 0;
  private ringCount = 0;
  private readonly rTime: Float64Array;
  private readonly rSrc: Uint8Array;
  private readonly rDst: Uint8Array;
  private readonly rProto: Uint8Array;
  private readonly rPort: Uint16Array;
  private readonly rReason: Uint8Array;
  private readonly rAudit: Uint8Array;
  private readonly rSrcIdx: Int32Array;
  private readonly rDstIdx: Int32Array;
  private readonly rHost: (string | null)[];
  private readonly rCompiled: (CompiledPolicy | null)[];
  // Same-host enforcement: this host's endpoints by MAC (open addressing; −1 = empty), the
  // compiled endpoint index of each; null = off.
  private localCount = 0;
  private localOn = false;
  private readonly lHi = new Int32Array(2 * MAX_LOCAL_ENDPOINTS).fill(-1);
  private readonly lLo = new Uint32Array(2 * MAX_LOCAL_ENDPOINTS);
  private readonly lIdx = new Int32Array(2 * MAX_LOCAL_ENDPOINTS);
  private readonly segment: EnforcerOptions['segment'];
  private hairpinUsed = 0;
  private segLens: Uint32Array | null = null;
  /** Same-host frames that passed, to be written back to the TAP (`hairpinQueue`, the data path flushes). */
  hairpinTx: TxBatch | null = null;

  constructor(opts: EnforcerOptions) {
    this.clock = opts.clock;
    this.audit = opts.audit ?? false;
    this.conntrack = new Conntrack(opts.conntrackEntries ?? DEFAULT_CONNTRACK_ENTRIES, opts.seed);
    this.deniedCache = new Conntrack(opts.deniedCacheEntries ?? DEFAULT_DENIED_CACHE_ENTRIES, opts.seed === undefined ? undefined : opts.seed ^ 0x5bd1e995);
    const n = (this.ringSize = Math.max(1, opts.denialRing ?? DEFAULT_DENIAL_RING));
    this.rTime = new Float64Array(n);
    this.rSrc = new Uint8Array(n * 16);
    this.rDst = new Uint8Array(n * 16);
    this.rProto = new Uint8Array(n);
    this.rPort = new Uint16Array(n);
    this.rReason = new Uint8Array(n);
    this.rAudit = new Uint8Array(n);
    this.rSrcIdx = new Int32Array(n);
    this.rDstIdx = new Int32Array(n);
    this.rHost = new Array<string | null>(n).fill(null);
    this.rCompiled = new Array<CompiledPolicy | null>(n).fill(null);
    this.segment = opts.segment;
  }

  // ---- same host ---------------------------------------------------------------------------------

  /**
   * This host's endpoints of the network (MAC → index into the compiled policy's endpoints), or null
   * to turn same-host enforcement off. While on, `localPair` says which frames read from the TAP go
   * between two of them (the port rules, local-ports.ts, send those to the TAP instead of the bridge).
   */
  setLocal(locals: readonly { mac: string; index: number }[] | null): void {
    this.lHi.fill(-1);
    this.localCount = 0;
    this.localOn = locals !== null;
    if (locals === null) return;
    if (this.hairpinTx === null) {
      this.hairpinTx = {
        slab: Buffer.alloc(HAIRPIN_BYTES), offs: new Uint32Array(HAIRPIN_SLOTS), lens: new Uint32Array(HAIRPIN_SLOTS),
        addrs: Buffer.alloc(0), srcIdx: new Uint8Array(HAIRPIN_SLOTS), status: new Int32Array(HAIRPIN_SLOTS), count: 0,
      };
      this.segLens = new Uint32Array(GSO_SEGS_MAX + 1);
    }
    for (const l of locals.slice(0, MAX_LOCAL_ENDPOINTS)) {
      const m = l.mac.split(':').map((x) => parseInt(x, 16));
      if (m.length !== 6 || m.some((x) => !(x >= 0 && x <= 255))) continue;
      const hi = (m[0] << 8) | m[1];
      const lo = ((m[2] << 24) | (m[3] << 16) | (m[4] << 8) | m[5]) >>> 0;
      let s = this.macSlot(hi, lo);
      while (this.lHi[s] !== -1 && !(this.lHi[s] === hi && this.lLo[s] === lo)) s = (s + 1) & (2 * MAX_LOCAL_ENDPOINTS - 1);
      if (this.lHi[s] === -1) this.localCount++;
      this.lHi[s] = hi;
      this.lLo[s] = lo;
      this.lIdx[s] = l.index;
    }
  }

  /** Whether same-host enforcement is on (and how many local endpoints it knows). */
  get local(): { on: boolean; endpoints: number } {
    return { on: this.localOn, endpoints: this.localCount };
  }

  private macSlot(hi: number, lo: number): number {
    return Math.imul(hi ^ Math.imul(lo, 0x9e3779b1), 0x85ebca6b) >>> 21 & (2 * MAX_LOCAL_ENDPOINTS - 1);
  }

  /** The compiled index of the local endpoint with the MAC at b[o..o+6), or −1. */
  private localAt(b: Uint8Array, o: number): number {
    if (this.localCount === 0) return -1;
    const hi = (b[o] << 8) | b[o + 1];
    const lo = ((b[o + 2] << 24) | (b[o + 3] << 16) | (b[o + 4] << 8) | b[o + 5]) >>> 0;
    for (let s = this.macSlot(hi, lo), n = 0; n < 2 * MAX_LOCAL_ENDPOINTS; n++, s = (s + 1) & (2 * MAX_LOCAL_ENDPOINTS - 1)) {
      const h = this.lHi[s];
      if (h === -1) return -1;
      if (h === hi && this.lLo[s] === lo) return this.lIdx[s];
    }
    return -1;
  }

  /**
   * True when the frame read from the TAP at b[off..] is an untagged IPv4/IPv6 frame from one local
   * endpoint to another (what the port rules redirect to the TAP): the data path checks it with
   * `filterLocal` and writes it back (`hairpinQueue`) instead of sending it to a peer.
   */
  localPair(b: Uint8Array, off: number): boolean {
    if (!this.localOn || this.localCount === 0) return false;
    const et = (b[off + 12] << 8) | b[off + 13];
    if (et !== 0x0800 && et !== 0x86dd) return false;
    return this.localAt(b, off) >= 0 && this.localAt(b, off + 6) >= 0;
  }

  /**
   * The verdict for a same-host frame (`localPair`): the inner source must be the sending endpoint
   * (an address of the endpoint that owns the source MAC; IPv6 link-local and :: as the anti-spoofing
   * rules allow) — else `spoofed` — then as `filter`.
   */
  filterLocal(b: Uint8Array, off: number, len: number): boolean {
    const cp = this.compiled;
    if (cp === null) return true;
    const k = this.key;
    const kind = parseFrame(b, off, len, k);
    if (kind === KIND_CONTROL) return true;
    if (kind === KIND_IP || kind === KIND_ERROR) {
      const sIdx = cp.endpointOf(k.src, 0);
      const own = this.localAt(b, off + 6);
      if (sIdx !== own && !(sIdx < 0 && linkLocalOrUnspecified(k.src))) {
        this.counters[PC_SPOOFED]++;
        return this.deny(3, sIdx, cp.endpointOf(k.dst, 0), null, cp);
      }
    }
    return this.filter(b, off, len, null);
  }

  /**
   * Queues a passed same-host frame for the write back to the TAP (a super-frame as its segments).
   * Returns 1 queued, 0 no room (the data path writes `hairpinTx` and calls again), −1 lost (counted).
   */
  hairpinQueue(b: Uint8Array, off: number, len: number, gsoType: number, mss: number): number {
    const tx = this.hairpinTx;
    if (tx === null) return -1;
    if (gsoType === 0) {
      if (tx.count === HAIRPIN_SLOTS || this.hairpinUsed + len > HAIRPIN_BYTES) return tx.count === 0 ? this.lost() : 0;
      Buffer.prototype.copy.call(b, tx.slab, this.hairpinUsed, off, off + len);
      tx.offs[tx.count] = this.hairpinUsed;
      tx.lens[tx.count++] = len;
      this.hairpinUsed += len;
      this.counters[PC_HAIRPIN]++;
      return 1;
    }
    const seg = this.segment;
    if (seg === undefined) return this.lost();
    const room = HAIRPIN_BYTES - this.hairpinUsed;
    // Worst case of the cut: every segment repeats the headers (≤ 256 B) and carries mss bytes.
    const need = (Math.ceil(len / mss) + 1) * (mss + 256);
    if (tx.count + GSO_SEGS_MAX > HAIRPIN_SLOTS || need > room) return tx.count === 0 ? this.lost() : 0;
    const lens = this.segLens!;
    const n = seg(b.subarray(off, off + len), gsoType, mss, EMPTY_PREFIX, tx.slab.subarray(this.hairpinUsed), lens);
    if (n <= 0 || tx.count + n > HAIRPIN_SLOTS) return this.lost();
    const stride = lens[lens.length - 1];
    for (let i = 0; i < n; i++) {
      tx.offs[tx.count] = this.hairpinUsed + i * stride;
      tx.lens[tx.count++] = lens[i];
    }
    this.hairpinUsed += n * stride;
    this.counters[PC_HAIRPIN]++;
    return 1;
  }

  /** After the data path wrote `hairpinTx`: `failed` descriptors were not written. */
  hairpinDone(failed: number): void {
    if (this.hairpinTx !== null) this.hairpinTx.count = 0;
    this.hairpinUsed = 0;
    this.counters[PC_HAIRPIN_FAILED] += failed;
  }

  private lost(): number {
    this.counters[PC_HAIRPIN_FAILED]++;
    return -1;
  }

  /**
   * The time of the batch the data path is about to filter (it reads the clock once per batch):
   * conntrack refreshes and the denial ring use it instead of a clock read per frame. Without it
   * (control plane, tests) each frame reads the clock.
   */
  setNow(now: number): void {
    this.stamp = now;
  }

  private now(): number {
    return this.stamp >= 0 ? this.stamp : this.clock.now();
  }

  /** The network's compiled policy (null: no policy and no default deny: every frame passes). */
  setCompiled(cp: CompiledPolicy | null): void {
    this.compiled = cp;
  }

  get policy(): CompiledPolicy | null {
    return this.compiled;
  }

  /** True when the network has anything to enforce (the data path may skip the stage otherwise). */
  get active(): boolean {
    return this.compiled !== null && this.compiled.anyIsolated;
  }

  /**
   * The verdict for the frame at b[off..off+len): true = pass. `fromHost` is the underlay address
   * (canonical text, `Peer.endpoint.address`) of the host that sent a remote frame — the
   * authenticated one on encrypted networks — or null for frames from this host's bridge.
   */
  filter(b: Uint8Array, off: number, len: number, fromHost: string | null): boolean {
    const cp = this.compiled;
    if (cp === null) return true;
    const k = this.key;
    const kind = parseFrame(b, off, len, k);
    if (kind === KIND_CONTROL) return true;
    if (kind === KIND_OTHER) {
      if (!cp.anyIsolated) return true;
      this.counters[PC_NON_IP]++;
      return this.deny(4, -1, -1, fromHost, cp);
    }
    // Remote frames: the source must be an endpoint of the sending host, every frame (a tracked
    // flow's 5-tuple is no proof of who sent it). Frames from the TAP: looked up only when needed.
    let sIdx = -2;
    if (fromHost !== null) {
      sIdx = cp.endpointOf(k.src, 0);
      if (sIdx < 0 || cp.endpoints[sIdx].hostAddr !== fromHost) {
        this.counters[PC_SPOOFED]++;
        return this.deny(3, sIdx, cp.endpointOf(k.dst, 0), fromHost, cp);
      }
    }
    if (!cp.anyIsolated) return true;
    const now = this.now();
    const ct = this.conntrack;
    if (kind === KIND_ERROR) {
      const r = k.related!;
      // The quoted packet went from us towards the error's sender: its flow is (r.src → r.dst).
      if (ct.lookup(r.src, 0, r.sport, r.dst, 0, r.dport, r.proto, now) >= 0) {
        this.counters[PC_RELATED]++;
        return true;
      }
    }
    const slot = ct.lookup(k.src, 0, k.sport, k.dst, 0, k.dport, k.proto, now);
    if (slot >= 0) {
      if (ct.version(slot) === cp.version) {
        this.counters[PC_ALLOWED_TRACKED]++;
        return true;
      }
      const [, dp, proto] = ct.originalFlow(slot, this.tmpSrc, 0, this.tmpDst, 0);
      const v = cp.check(cp.endpointOf(this.tmpSrc, 0), this.tmpSrc, 0, cp.endpointOf(this.tmpDst, 0), this.tmpDst, 0, proto, portOf(proto, dp));
      if (v === 0) {
        ct.setVersion(slot, cp.version);
        this.counters[PC_ALLOWED_TRACKED]++;
        return true;
      }
      if (!this.audit) ct.remove(slot);
      else ct.setVersion(slot, cp.version);
      this.counters[PC_REVOKED]++;
      return this.deny(5, sIdx === -2 ? cp.endpointOf(k.src, 0) : sIdx, cp.endpointOf(k.dst, 0), fromHost, cp);
    }
    if (sIdx === -2) sIdx = cp.endpointOf(k.src, 0);
    const dIdx = cp.endpointOf(k.dst, 0);
    if (!this.audit) {
      // A flow denied before under this version: the verdict without the walk.
      const dc = this.deniedCache;
      const d = dc.lookup(k.src, 0, k.sport, k.dst, 0, k.dport, k.proto, now);
      if (d >= 0 && dc.lastForward && dc.version(d) === cp.version) {
        const dv = dc.tag(d);
        this.counters[PC_DENIED_CACHED]++;
        if (dv & DENY_EGRESS) this.counters[PC_DENIED_EGRESS]++;
        if (dv & DENY_INGRESS) this.counters[PC_DENIED_INGRESS]++;
        return this.deny(dv === (DENY_EGRESS | DENY_INGRESS) ? 2 : dv === DENY_EGRESS ? 0 : 1, sIdx, dIdx, fromHost, cp);
      }
    }
    const v = cp.check(sIdx, k.src, 0, dIdx, k.dst, 0, k.proto, portOf(k.proto, k.dport));
    if (v === 0) {
      ct.insert(k.src, 0, k.sport, k.dst, 0, k.dport, k.proto, cp.version, now);
      this.counters[PC_ALLOWED_NEW]++;
      return true;
    }
    if (this.audit) {
      // Track the flow so that it is counted once, not per packet.
      ct.insert(k.src, 0, k.sport, k.dst, 0, k.dport, k.proto, cp.version, now);
      if (v & DENY_EGRESS) this.counters[PC_AUDIT_EGRESS]++;
      if (v & DENY_INGRESS) this.counters[PC_AUDIT_INGRESS]++;
    } else {
      if (v & DENY_EGRESS) this.counters[PC_DENIED_EGRESS]++;
      if (v & DENY_INGRESS) this.counters[PC_DENIED_INGRESS]++;
      const d = this.deniedCache.insert(k.src, 0, k.sport, k.dst, 0, k.dport, k.proto, cp.version, now);
      this.deniedCache.setTag(d, v);
    }
    return this.deny(v === (DENY_EGRESS | DENY_INGRESS) ? 2 : v === DENY_EGRESS ? 0 : 1, sIdx, dIdx, fromHost, cp);
  }

  /** Records a denial; returns the verdict (false, or true in audit mode for policy denials). */
  private deny(reason: number, sIdx: number, dIdx: number, fromHost: string | null, cp: CompiledPolicy): boolean {
    const i = this.ringNext;
    this.ringNext = (i + 1) % this.ringSize;
    if (this.ringCount < this.ringSize) this.ringCount++;
    const k = this.key;
    this.rTime[i] = this.now();
    this.rSrc.set(k.src, i * 16);
    this.rDst.set(k.dst, i * 16);
    this.rProto[i] = k.proto;
    this.rPort[i] = k.dport;
    this.rReason[i] = reason;
    // audit mode denies nothing that policy would deny: new flows and revoked connections pass
    const audit = this.audit && (reason <= 2 || reason === 5);
    this.rAudit[i] = audit ? 1 : 0;
    this.rSrcIdx[i] = sIdx;
    this.rDstIdx[i] = dIdx;
    this.rHost[i] = fromHost;
    this.rCompiled[i] = cp;
    return audit;
  }

  /** The recorded denials, oldest first (control plane). */
  denials(): Denial[] {
    const out: Denial[] = [];
    for (let n = 0; n < this.ringCount; n++) {
      const i = (this.ringNext - this.ringCount + n + this.ringSize) % this.ringSize;
      const cp = this.rCompiled[i];
      const name = (idx: number): string | null => (idx >= 0 && cp ? cp.endpoints[idx]?.name ?? null : null);
      out.push({
        time: this.rTime[i],
        reason: DENY_REASONS[this.rReason[i]],
        audit: this.rAudit[i] === 1,
        src: formatIp16(this.rSrc, i * 16),
        dst: formatIp16(this.rDst, i * 16),
        srcEndpoint: name(this.rSrcIdx[i]),
        dstEndpoint: name(this.rDstIdx[i]),
        protocol: this.rProto[i],
        port: this.rPort[i],
        fromHost: this.rHost[i],
      });
    }
    return out;
  }
}

/** fe80::/10 or :: (what the anti-spoofing rules let an endpoint send from besides its addresses). */
function linkLocalOrUnspecified(a: Uint8Array): boolean {
  if (a[0] === 0xfe && (a[1] & 0xc0) === 0x80) return true;
  for (let i = 0; i < 16; i++) if (a[i] !== 0) return false;
  return true;
}

/** Segments one super-frame may cut into (tso.ts GSO_MAX_SEGS). */
const GSO_SEGS_MAX = 256;

/** The port a rule sees: ICMP and other port-less protocols have none. */
function portOf(proto: number, dport: number): number {
  return proto === 6 || proto === 17 || proto === 132 ? dport : 0;
}

export { EGRESS, INGRESS };
