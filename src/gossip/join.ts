/**
 * Joining and re-joining through the seeds, on a fast schedule (memberlist leaves this to the
 * caller; consul retries every 30 s — too slow for an agent whose seed restarts):
 *
 *   - alone (no other live member): push-pull with every seed (except ourselves) now, then after
 *     1 s, 2 s, 4 s … capped at `maxMs` (10 s), each delay ±`jitter` so restarted hosts do not
 *     retry in step; the first answer ends it (state `joined`);
 *   - joined, but a seed is not a live member (it was down and comes back with an empty view):
 *     push-pull with that seed every `maxMs` (±jitter), so it re-learns the cluster within
 *     seconds of its return instead of after a push-pull or reconnect period (30 s);
 *   - becoming alone again (everyone else dead) starts the fast schedule over.
 *
 * The state (`JoinState`) is what readiness and status show: `joined`, `joining` (with attempts,
 * the last failure per seed and when the next try is), `seed` (we are a seed: the first node of a
 * cluster has nobody to wait for), or `none` (no seeds configured). Each failed attempt is logged
 * rate-limited at warn with its reason per seed: refused/unreachable, timed out, closed without an
 * answer (the seed could not open our request: a cluster key it does not have), or answered with a
 * key we do not have.
 */
import type { TimerHandle } from '../clock';
import { LogLimiter } from '../log';
import { ST_ALIVE, ST_SUSPECT } from './record';
import type { GossipNode } from './swim';
import { type StreamFailure, streamFailure } from './transport';

export type JoinStateName = 'joined' | 'joining' | 'seed' | 'none';

export interface JoinState {
  state: JoinStateName;
  /** The seeds we try (ours excluded). */
  seeds: string[];
  /** Attempts since we were last joined (0 once joined). */
  attempts: number;
  /** ms until the next attempt, or null when none is scheduled. */
  nextAttemptInMs: number | null;
  /** Per seed, why its last attempt failed (absent when it answered). */
  failures: Record<string, StreamFailure>;
  /** One-line explanation of the last failure, or null. */
  lastError: string | null;
}

export interface JoinerOptions {
  /** First retry delay, ms (default 1000); doubles per failed attempt. */
  initialMs?: number;
  /** Longest delay between attempts, ms (default 10 000); also the seed re-check period when joined. */
  maxMs?: number;
  /** Relative jitter of each delay, 0..1 (default 0.2: ±20 %). */
  jitter?: number;
}

const EXPLAIN: Record<StreamFailure, string> = {
  refused: 'refused or unreachable (is the seed up, and its gossip port open?)',
  timeout: 'no answer in time (down, or packets to its gossip port dropped?)',
  closed: 'closed our join request without an answer: it probably uses a cluster key we do not have (check gossip.keyFile on both hosts)',
  bad_key: 'answered with a cluster key we do not know (check gossip.keyFile on both hosts)',
  other: 'failed',
};

export class Joiner {
  private timer: TimerHandle | null = null;
  private nextAt: number | null = null;
  private attempts = 0;
  private inFlight = 0;
  private readonly failures = new Map<string, StreamFailure>();
  private lastError: string | null = null;
  private readonly limited: LogLimiter;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly jitter: number;
  /** Started (`start`) and not stopped. */
  active = false;
  private wasJoined = false;

  constructor(private readonly node: GossipNode, o: JoinerOptions = {}) {
    this.initialMs = o.initialMs ?? 1000;
    this.maxMs = o.maxMs ?? 10_000;
    this.jitter = o.jitter ?? 0.2;
    this.limited = new LogLimiter(node.log, { clock: node.clock, intervalMs: 30_000 });
  }

  /** Seeds other than ourselves. */
  private targets(): string[] {
    const self = this.node.transport.address;
    return this.node.seeds.filter((s) => s !== self);
  }

  private get isSeed(): boolean {
    return this.node.seeds.includes(this.node.transport.address);
  }

  private get alone(): boolean {
    return this.node.liveMembers <= 1;
  }

  /** Starts joining now (and keeps the cluster joined through the seeds until `stop`). */
  start(): void {
    if (this.active) return;
    this.active = true;
    this.attempt();
  }

  stop(): void {
    this.active = false;
    this.timer?.cancel();
    this.timer = null;
    this.nextAt = null;
  }

  /** Seeds changed (reload): try the new set at once. */
  seedsChanged(): void {
    if (!this.active) return;
    this.timer?.cancel();
    this.timer = null;
    this.attempts = 0;
    this.attempt();
  }

  state(): JoinState {
    const seeds = this.targets();
    const now = this.node.clock.now();
    let state: JoinStateName;
    if (!this.alone) state = 'joined';
    else if (this.isSeed) state = 'seed';
    else if (seeds.length === 0) state = 'none';
    else state = 'joining';
    return {
      state,
      seeds,
      attempts: state === 'joined' ? 0 : this.attempts,
      nextAttemptInMs: this.nextAt === null ? null : Math.max(0, Math.round(this.nextAt - now)),
      failures: Object.fromEntries(this.failures),
      lastError: this.lastError,
    };
  }

  private schedule(ms: number): void {
    this.timer?.cancel();
    const d = ms * (1 - this.jitter + 2 * this.jitter * this.node.rng());
    this.nextAt = this.node.clock.now() + d;
    this.timer = this.node.clock.setTimer(d, () => {
      this.timer = null;
      this.nextAt = null;
      this.attempt();
    });
  }

  private attempt(): void {
    const n = this.node;
    if (!this.active || !n.running) return;
    if (n.leaving || this.inFlight > 0) return this.schedule(this.maxMs);
    const all = this.targets();
    const alone = this.alone;
    if (!alone && !this.wasJoined) {
      this.wasJoined = true;
      this.attempts = 0;
    }
    if (alone && this.wasJoined) {
      // Everyone else is gone: back to the fast schedule.
      this.wasJoined = false;
      this.attempts = 0;
    }
    // Alone: every seed. Joined: only the seeds that are not live members (restarted/returned).
    const targets = alone ? all : all.filter((s) => !this.isLive(s));
    if (targets.length === 0) return this.schedule(this.maxMs);
    if (alone) this.attempts++;
    this.inFlight = targets.length;
    let answered = 0;
    for (const s of targets) {
      n.pushPull.exchange(s, alone, (err) => {
        if (err) this.onFailure(s, err, alone);
        else {
          answered++;
          this.failures.delete(s);
        }
        if (--this.inFlight > 0) return;
        if (!this.active || !n.running) return;
        if (!this.alone) {
          if (alone) {
            this.wasJoined = true;
            this.attempts = 0;
            this.lastError = null;
            n.log.info({ answered, members: n.liveMembers }, 'joined the cluster');
          }
          this.schedule(this.maxMs);
          return;
        }
        const delay = Math.min(this.maxMs, this.initialMs * 2 ** Math.max(0, this.attempts - 1));
        this.schedule(delay);
        if (answered === 0) {
          this.limited.log('warn', 'join-retry', { seeds: targets, attempts: this.attempts, retryInMs: Math.round(delay) }, 'no seed answered yet; retrying');
        }
      });
    }
  }

  private onFailure(seed: string, err: Error, joining: boolean): void {
    const why = streamFailure(err);
    this.failures.set(seed, why);
    this.lastError = `seed ${seed}: ${EXPLAIN[why]}`;
    const level = why === 'closed' || why === 'bad_key' ? 'warn' : joining ? 'warn' : 'debug';
    this.limited.log(level, `join:${seed}:${why}`, { seed, reason: why, err: err.message },
      why === 'closed' || why === 'bad_key' ? `join attempts to seed ${seed} are rejected: ${EXPLAIN[why]}` : `join attempt to seed ${seed} ${EXPLAIN[why]}`);
  }

  /** Is the member whose gossip address is `addr` alive or suspect in our view? */
  private isLive(addr: string): boolean {
    const t = this.node.table;
    for (let s = 0; s < t.count; s++) {
      if (t.record(s).gossip === addr) return t.state[s] === ST_ALIVE || t.state[s] === ST_SUSPECT;
    }
    return false;
  }
}
