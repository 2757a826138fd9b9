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
 *
 * A timer that fires late by more than STALL_MS means this process was not running (SIGSTOP, a
 * long GC, CPU starvation): the refutation may be sitting unread in the socket, because the event
 * loop runs due timers before it reads I/O — or not sent yet, when the suspect was stopped with
 * us (a host-wide stall) and refutes only now. Time we were not running does not count: such a
 * verdict waits as long as we were late (at least GRACE_MS, at most the minimum timeout), once.
 * The chaos lab's slow-member scenario (2 agents stopped 2 s in every 10 s, 16 hosts) showed a
 * resumed agent declaring a healthy member dead, and a stopped one its stopped companion, otherwise.
 */
import { Clock, TimerHandle } from '../clock';

export function suspicionTimeout(c: number, k: number, minMs: number, maxMs: number): number {
  if (k < 1) return minMs;
  const frac = Math.log(c + 1) / Math.log(k + 1);
  return Math.max(minMs, Math.floor(maxMs - frac * (maxMs - minMs)));
}

/** A timer this late (ms) says the process was stalled. */
export const STALL_MS = 200;
/** Extra time a stalled verdict waits for the I/O that arrived meanwhile to be processed. */
export const GRACE_MS = 200;

export class Suspicion {
  private n = 0;
  private readonly confirmations = new Set<string>();
  private readonly start: number;
  private timer: TimerHandle;
  private fired = false;
  private dueAt: number;
  private graced = false;

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
    this.dueAt = this.start + timeout;
    this.timer = clock.setTimer(timeout, () => this.fire());
  }

  private fire(): void {
    if (this.fired) return;
    if (!this.graced && this.clock.now() - this.dueAt > STALL_MS) {
      this.graced = true; // stalled: read what arrived meanwhile (a refutation cancels us) first
      const wait = Math.max(GRACE_MS, Math.min(this.clock.now() - this.dueAt, this.minMs));
      this.dueAt = this.clock.now() + wait;
      this.timer = this.clock.setTimer(wait, () => this.fire());
      return;
    }
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
    this.dueAt = this.clock.now() + Math.max(0, remaining);
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
