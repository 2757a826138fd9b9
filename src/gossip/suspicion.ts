/**
 * Lifeguard suspicion timer (memberlist suspicion.go). A suspect member is declared dead when the
 * timer fires. It starts at `max` and shrinks toward `min` as independent confirmations (suspect
 * messages from other members) arrive:
 *
 *   timeout(c) = max(min, max − (max − min) · log(c + 1) / log(k + 1))
 *
 * where c is the number of confirmations so far and k the number expected. With no help the
 * member gets the long timeout (time to hear about the suspicion and refute it); with k
 * confirmations it is declared dead after `min`. Confirmations from the same member count once.
 */
import { Clock, TimerHandle } from '../clock';

export function suspicionTimeout(c: number, k: number, minMs: number, maxMs: number): number {
  if (k < 1) return minMs;
  const frac = Math.log(c + 1) / Math.log(k + 1);
  return Math.max(minMs, Math.floor(maxMs - frac * (maxMs - minMs)));
}

export class Suspicion {
  private n = 0;
  private readonly confirmations = new Set<string>();
  private readonly start: number;
  private timer: TimerHandle;
  private fired = false;

  /**
   * @param from  the member whose suspicion started this (never counted as a confirmation)
   * @param k     confirmations expected (0 → the timeout is `minMs` at once)
   * @param onTimeout called once, with the number of confirmations, when the timer expires
   */
  constructor(
    from: string,
    private readonly k: number,
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly clock: Clock,
    private readonly onTimeout: (confirmations: number) => void,
  ) {
    this.confirmations.add(from);
    this.start = clock.now();
    const timeout = k < 1 ? minMs : maxMs;
    this.timer = clock.setTimer(timeout, () => this.fire());
  }

  private fire(): void {
    if (this.fired) return;
    this.fired = true;
    this.onTimeout(this.n);
  }

  /** Records a confirmation from `from`; true when it was new (then the caller re-gossips it). */
  confirm(from: string): boolean {
    if (this.fired || this.n >= this.k) return false;
    if (this.confirmations.has(from)) return false;
    this.confirmations.add(from);
    this.n++;
    const timeout = suspicionTimeout(this.n, this.k, this.minMs, this.maxMs);
    const remaining = this.start + timeout - this.clock.now();
    this.timer.cancel();
    this.timer = this.clock.setTimer(Math.max(0, remaining), () => this.fire());
    return true;
  }

  get confirmationCount(): number {
    return this.n;
  }

  cancel(): void {
    this.fired = true;
    this.timer.cancel();
  }
}
