/**
 * Event-loop delay, measured by libuv-level sampling (`perf_hooks.monitorEventLoopDelay`) in
 * fixed windows: every `windowMs` the current histogram is read into `last` and reset, so a scrape
 * (or several Prometheus servers scraping at their own pace) always sees the last complete window
 * and nobody's scrape resets anybody else's view.
 *
 * "Stalled" (for /healthz) means the worst delay in the last complete window, or the time since
 * the window timer last ran, exceeds `stallMs`: a loop blocked for seconds cannot forward packets.
 */

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Clock, TimerHandle } from '../clock';
import { systemClock } from '../clock';

export interface LoopDelayStats {
  /** Seconds. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** Samples in the window. */
  count: number;
}

export interface LoopMonitorOptions {
  /** Window length, ms (default 10 000). */
  windowMs?: number;
  /** Sampling resolution of the libuv timer, ms (default 20). */
  resolutionMs?: number;
  /** Delay above which the loop counts as stalled, ms (default 5 000). */
  stallMs?: number;
  clock?: Clock;
}

const EMPTY: LoopDelayStats = { p50: 0, p90: 0, p99: 0, max: 0, mean: 0, count: 0 };

export class LoopMonitor {
  readonly windowMs: number;
  readonly stallMs: number;
  private readonly clock: Clock;
  private readonly h: IntervalHistogram;
  private timer: TimerHandle | null = null;
  private last: LoopDelayStats = EMPTY;
  private lastRotate: number;

  constructor(opts: LoopMonitorOptions = {}) {
    this.windowMs = opts.windowMs ?? 10_000;
    this.stallMs = opts.stallMs ?? 5_000;
    this.clock = opts.clock ?? systemClock;
    this.h = monitorEventLoopDelay({ resolution: Math.max(1, opts.resolutionMs ?? 20) });
    this.lastRotate = this.clock.now();
  }

  start(): void {
    if (this.timer) return;
    this.h.enable();
    this.lastRotate = this.clock.now();
    this.timer = this.clock.setInterval(this.windowMs, () => this.rotate());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
    this.h.disable();
  }

  /** Closes the current window (called by the timer; public for tests). */
  rotate(): void {
    this.last = this.read();
    this.h.reset();
    this.lastRotate = this.clock.now();
  }

  /** The last complete window, or the current partial one if no window has completed yet. */
  stats(): LoopDelayStats {
    return this.last.count > 0 ? this.last : this.read();
  }

  /** Whether the loop looks stalled (see the file comment), with the figures behind the verdict. */
  stalled(): { stalled: boolean; maxDelayMs: number; sinceTickMs: number } {
    const maxDelayMs = Math.max(this.last.max, this.read().max) * 1000;
    const sinceTickMs = this.timer ? this.clock.now() - this.lastRotate - this.windowMs : 0;
    return { stalled: maxDelayMs > this.stallMs || sinceTickMs > this.stallMs, maxDelayMs, sinceTickMs: Math.max(0, sinceTickMs) };
  }

  private read(): LoopDelayStats {
    const h = this.h;
    if (h.count === 0) return EMPTY;
    // The histogram is in nanoseconds and includes the sampling resolution itself; subtracting it
    // would need the resolution to be exact, so report raw figures (documented in docs/metrics.md).
    return {
      p50: h.percentile(50) / 1e9,
      p90: h.percentile(90) / 1e9,
      p99: h.percentile(99) / 1e9,
      max: h.max / 1e9,
      mean: h.mean / 1e9,
      count: h.count,
    };
  }
}
