/**
 * Injected time. Everything that waits or ages (FDB ageing, gossip timers, rekeys) takes a
 * `Clock`, so tests and the simulator advance a `FakeClock` instead of sleeping.
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic (not wall time). */
  now(): number;
  /** Run `fn` once after `ms` milliseconds. */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** Run `fn` every `ms` milliseconds until cancelled. */
  setInterval(ms: number, fn: () => void): TimerHandle;
}

/** The real clock: performance.now() and Node timers (unref'd: they never keep the process alive). */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
};

interface FakeTimer {
  at: number;
  seq: number;
  every: number; // 0 = one-shot
  fn: () => void;
  cancelled: boolean;
}

/**
 * Deterministic clock for tests and the simulator. Timers fire in (time, creation order) order
 * when `advance`/`runUntil` moves time forward. A binary heap keeps it fast with many timers.
 */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private heap: FakeTimer[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    return this.add(ms, 0, fn);
  }

  setInterval(ms: number, fn: () => void): TimerHandle {
    return this.add(ms, Math.max(ms, 1e-6), fn);
  }

  /** Number of pending (not cancelled) timers. */
  get pending(): number {
    return this.heap.filter((x) => !x.cancelled).length;
  }

  /** Move time forward by `ms`, firing every timer due on the way. */
  advance(ms: number): void {
    this.runUntil(this.t + ms);
  }

  /** Move time to `target`, firing every timer due on the way, in order. */
  runUntil(target: number): void {
    for (;;) {
      const top = this.heap[0];
      if (!top || top.at > target) break;
      this.pop();
      if (top.cancelled) continue;
      this.t = Math.max(this.t, top.at);
      if (top.every > 0) {
        top.at += top.every;
        top.seq = this.seq++;
        this.push(top);
      }
      top.fn();
    }
    this.t = Math.max(this.t, target);
  }

  private add(ms: number, every: number, fn: () => void): TimerHandle {
    const timer: FakeTimer = { at: this.t + Math.max(0, ms), seq: this.seq++, every, fn, cancelled: false };
    this.push(timer);
    return { cancel: () => { timer.cancelled = true; } };
  }

  private less(a: FakeTimer, b: FakeTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(x: FakeTimer): void {
    const h = this.heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l], h[m])) m = l;
      if (r < h.length && this.less(h[r], h[m])) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}
