/**
 * Reachability of one peer over the data path: a small probe every `intervalMs`; the peer is `up`
 * while one of its probes (small or PMTU) was answered within the last `downAfterMs`, `down` once
 * `downAfterLosses` small probes in a row were lost (or none was ever answered for
 * `downAfterMs`), `unknown` before the first verdict. RTT: TCP-style EWMA over the answered small
 * probes (srtt += (sample − srtt) / 8), as gossip's vxmesh_peer_rtt_seconds. Pure: time comes in
 * as arguments. The answers also move the peer's rx counters in the data path, so the agent
 * watch's received-traffic liveness (vxmesh_peer_up) sees an idle vxmesh peer as up.
 */

export type ReachState = 'unknown' | 'up' | 'down';

export interface ReachOptions {
  /** Small probe period (default 1000 ms). */
  intervalMs?: number;
  /** Small probes lost in a row before the peer is down (default 3). */
  downAfterLosses?: number;
  /** No answer for this long → down (default 5000 ms). */
  downAfterMs?: number;
}

export class PeerReach {
  state: ReachState = 'unknown';
  /** Clock ms of the last answer, or null. */
  lastReplyAt: number | null = null;
  /** Smoothed RTT in ms, or null before the first sample. */
  srttMs: number | null = null;
  sent = 0;
  answered = 0;
  lost = 0;
  /** State changes so far. */
  transitions = 0;
  private lostInRow = 0;
  private nextAt = 0;
  private readonly since: number;
  readonly intervalMs: number;
  readonly downAfterLosses: number;
  readonly downAfterMs: number;

  constructor(now: number, o: ReachOptions = {}) {
    this.intervalMs = o.intervalMs ?? 1000;
    this.downAfterLosses = Math.max(1, o.downAfterLosses ?? 3);
    this.downAfterMs = o.downAfterMs ?? 5000;
    this.since = now;
    this.nextAt = now;
  }

  /** True when a small probe is due now (and accounts it as sent). */
  due(now: number): boolean {
    if (now < this.nextAt) return false;
    this.nextAt = now + this.intervalMs;
    this.sent++;
    return true;
  }

  /** An answer to a small probe after `rttMs`. */
  answer(rttMs: number, now: number): void {
    this.answered++;
    this.lostInRow = 0;
    const r = Math.max(0, rttMs);
    this.srttMs = this.srttMs === null ? r : this.srttMs + (r - this.srttMs) / 8;
    this.alive(now);
  }

  /** Any other sign of the data path working (a PMTU probe answered). */
  alive(now: number): void {
    this.lastReplyAt = now;
    this.set('up');
  }

  /** A small probe went unanswered. */
  loss(now: number): void {
    this.lost++;
    this.lostInRow++;
    if (this.lostInRow >= this.downAfterLosses) this.set('down');
    this.age(now);
  }

  /** Time passing (called every tick): silence for `downAfterMs` → down. */
  age(now: number): void {
    const last = this.lastReplyAt ?? this.since;
    if (now - last >= this.downAfterMs) this.set('down');
  }

  private set(s: ReachState): void {
    if (s === this.state) return;
    this.state = s;
    this.transitions++;
  }
}
