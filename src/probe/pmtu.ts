/**
 * Path MTU search for one peer, in the spirit of RFC 8899 (DPLPMTUD): probes of chosen sizes sent
 * with DF, the sizes acknowledged by the peer confirm a path MTU, sizes lost `maxProbes` times in a
 * row are taken as too big. Pure state machine: the engine (engine.ts) asks `due(now)` which sizes
 * to send, and reports each probe's fate with `ack` / `loss`; time comes in as arguments (tests
 * drive it with plain numbers, the agent with its Clock). Sizes are outer IP packet bytes.
 *
 * Phases (RFC 8899 §5.2 names):
 * Every try a size has left (`maxProbes` of them) goes out at once, so a round costs one probe
 * timeout, not `maxProbes` of them; one answer confirms the size.
 *
 *   base      probe BASE_PLPMTU (`base`); acked → search; lost `maxProbes` times → error;
 *   search    up to `parallel` sizes spread over (low, high], `high` always among them (the
 *             interface MTU usually is the path MTU: one round then); an ack raises `low`, a size
 *             lost `maxProbes` times lowers `high` below it; low = high → complete (only then is the
             result used: no ICMP carries a value the search has not finished). A round ends
 *             when every probe of it was acked or timed out, the next starts at once;
 *   complete  the path MTU is `low`; it is confirmed every `confirmIntervalMs` by a probe of that
 *             size (a lost confirmation is retried at once with the remaining tries: black holes
 *             are found in about confirmIntervalMs + 2 probe timeouts). Confirmation lost `maxProbes` times
 *             → black hole: the path MTU is unknown again (no ICMP is sent on a guess) and the
 *             search restarts from base, never above the size that failed. Every
 *             `raiseIntervalMs` sizes above `low` are tried again (a path that grew);
 *   error     not even `base` passes (peer down, or not a vxmesh agent: a kernel VXLAN peer drops
 *             probes): base again every `errorRetryMs`; the path MTU is unknown (0).
 * A local EMSGSIZE (the kernel already knows a smaller path MTU from an ICMP message) counts as
 * `maxProbes` losses at once (`loss(size, now, true)`).
 */

export type PmtuPhase = 'base' | 'search' | 'complete' | 'error';

export interface PmtuOptions {
  /** BASE_PLPMTU, outer bytes (IPv6: 1280; IPv4 default also 1280, the size any sane underlay carries). */
  base: number;
  /** MAX_PLPMTU: the underlay MTU (`underlay.mtu`). */
  max: number;
  /** Losses in a row before a size counts as too big (RFC 8899 MAX_PROBES, default 3). */
  maxProbes?: number;
  /** Sizes probed at once in a search round (default 8): a 220-byte range resolves in 3 rounds. */
  parallel?: number;
  /** Confirmation of the path MTU found (default 2000 ms): the black-hole detection period. */
  confirmIntervalMs?: number;
  /** Retry of larger sizes once complete (default 60 000 ms; RFC 8899 suggests 600 s). */
  raiseIntervalMs?: number;
  /** Base probe while in error (default 10 000 ms). */
  errorRetryMs?: number;
}

export class PmtuSearch {
  phase: PmtuPhase = 'base';
  /** Largest size confirmed (0: none yet). */
  low = 0;
  /** Largest size not known to be too big. */
  high: number;
  readonly base: number;
  readonly max: number;
  readonly maxProbes: number;
  readonly parallel: number;
  readonly confirmIntervalMs: number;
  readonly raiseIntervalMs: number;
  readonly errorRetryMs: number;
  /** Times the path MTU (`pmtu`) changed; black holes found. */
  changes = 0;
  blackHoles = 0;
  /** Losses in a row per size (cleared when the size is acked or decided). */
  private readonly fails = new Map<number, number>();
  /** When each size was last acknowledged (bounded). */
  private readonly ackedAt = new Map<number, number>();
  /** Probes in flight per size. */
  private readonly inflight = new Map<number, number>();
  private nextAt = 0;
  private confirmAt = 0;
  private raiseAt = 0;
  private started = false;

  constructor(o: PmtuOptions) {
    this.max = Math.max(68, Math.floor(o.max));
    this.base = Math.min(this.max, Math.max(68, Math.floor(o.base)));
    this.high = this.max;
    this.maxProbes = Math.max(1, o.maxProbes ?? 3);
    this.parallel = Math.max(1, o.parallel ?? 8);
    this.confirmIntervalMs = o.confirmIntervalMs ?? 2000;
    this.raiseIntervalMs = o.raiseIntervalMs ?? 60_000;
    this.errorRetryMs = o.errorRetryMs ?? 10_000;
  }

  /** The path MTU in use now (outer bytes), 0 while unknown. */
  get pmtu(): number {
    return this.settled && this.phase !== 'error' ? this.low : 0;
  }

  /** True once a search completed and no black hole was found since (a raise search keeps it). */
  private settled = false;

  /** Sizes to send now; the caller reports each one's fate with `ack` or `loss`. */
  due(now: number): number[] {
    if (!this.started) {
      this.started = true;
      this.raiseAt = now + this.raiseIntervalMs;
    }
    if (this.inflight.size > 0 || now < this.nextAt) return [];
    let sizes: number[];
    switch (this.phase) {
      case 'base':
      case 'error':
        sizes = this.copies([this.base]);
        break;
      case 'search':
        sizes = this.copies(this.candidates());
        break;
      case 'complete':
        if (this.low < this.max && now >= this.raiseAt) {
          // a larger path MTU may have appeared: search above low again
          this.phase = 'search';
          this.high = this.max;
          this.fails.clear();
          sizes = this.copies(this.candidates());
        } else if (this.fails.has(this.low)) {
          sizes = this.copies([this.low]); // a lost confirmation: the remaining tries at once
        } else if (now >= this.confirmAt) {
          sizes = [this.low];
        } else {
          sizes = [];
        }
        break;
    }
    for (const s of sizes) this.inflight.set(s, (this.inflight.get(s) ?? 0) + 1);
    return sizes;
  }

  /** The peer acknowledged a probe of `size` bytes. */
  ack(size: number, now: number): void {
    this.settle(size);
    this.ackedAt.set(size, now);
    if (this.ackedAt.size > 64) this.ackedAt.delete(this.ackedAt.keys().next().value as number);
    this.fails.delete(size);
    const before = this.pmtu;
    switch (this.phase) {
      case 'base':
      case 'error':
        if (size < this.base) break;
        this.low = Math.max(this.low, size);
        this.phase = 'search';
        if (this.high < this.low) this.high = this.low;
        break;
      case 'search':
        if (size > this.low) this.low = size;
        if (this.high < this.low) this.high = this.low;
        break;
      case 'complete':
        if (size > this.low) {
          this.low = size;
          if (this.high < size) this.high = size;
        }
        if (size === this.low) this.confirmAt = now + this.confirmIntervalMs;
        break;
    }
    this.finishIfDone(now);
    if (this.pmtu !== before) this.changes++;
  }

  /**
   * A probe of `size` bytes was not acknowledged in time (`hard`: refused locally with EMSGSIZE).
   * `sentAt`: when it was sent; a copy sent before the last answer for that size is ignored.
   */
  loss(size: number, now: number, hard = false, sentAt?: number): void {
    this.settle(size);
    if (!hard && sentAt !== undefined && sentAt <= (this.ackedAt.get(size) ?? -Infinity)) return;
    const n = hard ? this.maxProbes : (this.fails.get(size) ?? 0) + 1;
    if (n < this.maxProbes) {
      this.fails.set(size, n);
      return;
    }
    this.fails.delete(size);
    const before = this.pmtu;
    switch (this.phase) {
      case 'base':
      case 'error':
        if (size !== this.base) break;
        this.phase = 'error';
        this.settled = false;
        this.low = 0;
        this.fails.clear();
        this.nextAt = now + this.errorRetryMs;
        break;
      case 'search':
        // (a lost copy of a size already confirmed says nothing: another copy got through)
        if (size > this.low && size <= this.high) this.high = size - 1;
        break;
      case 'complete':
        if (size === this.low) this.blackHole(size, now);
        else if (size > this.low) {
          this.high = this.low;
          this.raiseAt = now + this.raiseIntervalMs;
        }
        break;
    }
    this.finishIfDone(now);
    if (this.pmtu !== before) this.changes++;
  }

  /** A confirmed size no longer passes: unknown again, search from base below it. */
  private blackHole(size: number, now: number): void {
    this.blackHoles++;
    this.settled = false;
    this.low = 0;
    this.high = Math.max(this.base, size - 1);
    this.phase = 'base';
    this.fails.clear();
    this.nextAt = now;
  }

  private finishIfDone(now: number): void {
    if (this.phase !== 'search' || this.low < this.high) return;
    this.phase = 'complete';
    this.settled = true;
    this.fails.clear();
    this.confirmAt = now + this.confirmIntervalMs;
    this.raiseAt = now + this.raiseIntervalMs;
  }

  private settle(size: number): void {
    const n = this.inflight.get(size) ?? 0;
    if (n <= 1) this.inflight.delete(size);
    else this.inflight.set(size, n - 1);
  }

  /** Each size as many times as it has tries left (`maxProbes` − losses so far), all sent at once. */
  private copies(sizes: number[]): number[] {
    const out: number[] = [];
    for (const s of sizes) for (let k = this.fails.get(s) ?? 0; k < this.maxProbes; k++) out.push(s);
    return out;
  }

  /** Up to `parallel` sizes spread over (low, high], high included. */
  private candidates(): number[] {
    const lo = Math.max(this.low, this.base - 1);
    const span = this.high - lo;
    if (span <= 0) return [];
    const k = Math.min(this.parallel, span);
    const out: number[] = [];
    for (let j = 1; j <= k; j++) {
      const s = lo + Math.ceil((span * j) / k);
      if (out[out.length - 1] !== s) out.push(s);
    }
    return out;
  }

  /** For status: what the search knows. */
  view(): { phase: PmtuPhase; pmtu: number | null; low: number; high: number; blackHoles: number } {
    return { phase: this.phase, pmtu: this.pmtu === 0 ? null : this.pmtu, low: this.low, high: this.high, blackHoles: this.blackHoles };
  }
}
