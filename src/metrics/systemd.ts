/**
 * The agent's side of the systemd service protocol (sd_notify(3), Type=notify), sent through the
 * addon (`src/native/sdnotify.ts`: node:dgram cannot send to a unix datagram socket).
 *
 * Lifecycle, as the agent command drives it:
 *   start  → (TAPs open, UDP bound, config loaded, data path running; not gossip join) → READY=1
 *   while running: WATCHDOG=1 every WATCHDOG_USEC/2, from a timer on the event loop that also runs
 *                  the data path, and only while the data path reports itself healthy — so a
 *                  wedged loop or a dead data path makes systemd restart the service;
 *   SIGHUP → RELOADING=1 + MONOTONIC_USEC → apply (accepted or refused) → READY=1 (+ STATUS=);
 *   SIGTERM/SIGINT → STOPPING=1 → teardown.
 * Without NOTIFY_SOCKET (not under systemd) every call is a no-op.
 */

import type { Clock, TimerHandle } from '../clock';
import { systemClock } from '../clock';
import type { Logger } from '../log';
import { nullLogger } from '../log';

/** Sends one notification datagram; returns false when there is no socket. Throws on I/O errors. */
export type NotifySend = (message: string, socketPath: string) => boolean;

export interface SystemdNotifierOptions {
  /** Default: the addon's `sdNotify`. */
  send?: NotifySend;
  /** Environment to read NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID from (default process.env). */
  env?: Record<string, string | undefined>;
  /** Our pid, compared with WATCHDOG_PID (default process.pid). */
  pid?: number;
  clock?: Clock;
  logger?: Logger;
}

/** Health verdict consulted before each WATCHDOG=1. */
export type WatchdogCheck = () => boolean | { ok: boolean; reason?: string };

function addonSend(message: string, socketPath: string): boolean {
  // Loaded lazily so that the module (and its tests with an injected `send`) works without the addon.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const mod = require('../native/sdnotify') as { sdNotify(message: string, socketPath?: string): boolean };
  return mod.sdNotify(message, socketPath);
}

/** CLOCK_MONOTONIC in microseconds (libuv's hrtime is CLOCK_MONOTONIC on Linux), as systemd expects. */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

export class SystemdNotifier {
  /** NOTIFY_SOCKET, or null when not running under a notify-type service. */
  readonly socketPath: string | null;
  /** Watchdog timeout from WATCHDOG_USEC (ms), or null when the watchdog is off or meant for another pid. */
  readonly watchdogMs: number | null;
  private readonly send: NotifySend;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private timer: TimerHandle | null = null;
  private check: WatchdogCheck | null = null;
  private failing = false;
  private lastUnhealthy: string | null = null;
  private sendErrorLogged = false;
  private readonly counts = { ready: 0, watchdog: 0, watchdogSkipped: 0, reloading: 0, stopping: 0, errors: 0 };

  constructor(opts: SystemdNotifierOptions = {}) {
    const env = opts.env ?? process.env;
    const pid = opts.pid ?? process.pid;
    this.send = opts.send ?? addonSend;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? nullLogger;
    const sock = env.NOTIFY_SOCKET;
    this.socketPath = sock && sock.length > 0 ? sock : null;
    const usec = Number(env.WATCHDOG_USEC ?? '');
    const wpid = env.WATCHDOG_PID;
    const forUs = wpid === undefined || wpid === '' || Number(wpid) === pid;
    this.watchdogMs = this.socketPath && Number.isFinite(usec) && usec > 0 && forUs ? usec / 1000 : null;
  }

  /** Whether notifications go anywhere. */
  get enabled(): boolean {
    return this.socketPath !== null;
  }

  /** Interval between WATCHDOG=1 messages (half the timeout, as sd_watchdog_enabled(3) advises), ms. */
  get watchdogIntervalMs(): number | null {
    return this.watchdogMs === null ? null : this.watchdogMs / 2;
  }

  /** Messages sent so far by kind (for status and tests). */
  stats(): Readonly<typeof this.counts> {
    return { ...this.counts };
  }

  /** Sends raw `KEY=value` lines; returns whether a datagram was sent. Errors are logged once, never thrown. */
  notify(lines: string[]): boolean {
    if (!this.socketPath) return false;
    try {
      return this.send(lines.join('\n'), this.socketPath);
    } catch (err) {
      this.counts.errors++;
      if (!this.sendErrorLogged) {
        this.sendErrorLogged = true;
        this.logger.warn({ err, socket: this.socketPath }, 'sd_notify failed (further failures not logged)');
      }
      return false;
    }
  }

  /** READY=1: the service is up (start-up finished, or a reload finished). */
  ready(status?: string): boolean {
    const ok = this.notify(status ? ['READY=1', `STATUS=${oneLine(status)}`] : ['READY=1']);
    if (ok) this.counts.ready++;
    return ok;
  }

  /** RELOADING=1 with MONOTONIC_USEC (systemd ≥ 253 requires it for Type=notify-reload; harmless before). */
  reloading(status?: string): boolean {
    const lines = ['RELOADING=1', `MONOTONIC_USEC=${monotonicUsec()}`];
    if (status) lines.push(`STATUS=${oneLine(status)}`);
    const ok = this.notify(lines);
    if (ok) this.counts.reloading++;
    return ok;
  }

  /** STOPPING=1: shutdown has begun. Also stops the watchdog. */
  stopping(status?: string): boolean {
    this.stopWatchdog();
    const ok = this.notify(status ? ['STOPPING=1', `STATUS=${oneLine(status)}`] : ['STOPPING=1']);
    if (ok) this.counts.stopping++;
    return ok;
  }

  /** STATUS=…: free-form one-line status shown by `systemctl status`. */
  status(text: string): boolean {
    return this.notify([`STATUS=${oneLine(text)}`]);
  }

  /**
   * Starts the watchdog: every `watchdogIntervalMs`, WATCHDOG=1 if `check()` passes. A failing check
   * sends nothing (so systemd restarts us after WATCHDOG_USEC), logged once per change of reason.
   * No-op when the watchdog is not enabled for this process.
   */
  startWatchdog(check: WatchdogCheck): boolean {
    this.check = check;
    const every = this.watchdogIntervalMs;
    if (every === null || this.timer) return this.timer !== null;
    this.timer = this.clock.setInterval(every, () => this.tick());
    return true;
  }

  stopWatchdog(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** One watchdog round (the timer's callback; public so the data path can also kick it from its own loop). */
  tick(): boolean {
    if (this.watchdogMs === null) return false;
    const verdict = this.check ? this.check() : true;
    const ok = typeof verdict === 'boolean' ? verdict : verdict.ok;
    if (!ok) {
      const reason = typeof verdict === 'boolean' ? 'unhealthy' : verdict.reason ?? 'unhealthy';
      this.counts.watchdogSkipped++;
      if (!this.failing || reason !== this.lastUnhealthy) {
        this.logger.error({ reason, watchdogSec: this.watchdogMs / 1000 }, 'data path unhealthy: withholding WATCHDOG=1 (systemd will restart the service)');
      }
      this.failing = true;
      this.lastUnhealthy = reason;
      return false;
    }
    if (this.failing) this.logger.warn({}, 'data path healthy again: resuming WATCHDOG=1');
    this.failing = false;
    this.lastUnhealthy = null;
    const sent = this.notify(['WATCHDOG=1']);
    if (sent) this.counts.watchdog++;
    return sent;
  }

  /**
   * Runs a reload between RELOADING=1 and READY=1. `apply` resolves true when the new config was
   * applied and false (or throws) when it was refused; either way the service is running again
   * afterwards (a refused config leaves the old one in place), so READY=1 follows in both cases,
   * with a STATUS= line saying which.
   */
  async reload(apply: () => Promise<boolean> | boolean): Promise<boolean> {
    this.reloading('reloading configuration');
    let ok = false;
    let why = '';
    try {
      ok = await apply();
    } catch (err) {
      ok = false;
      why = err instanceof Error ? err.message : String(err);
    }
    this.ready(ok ? 'running; configuration reloaded' : `running; reload refused${why ? ': ' + why : ''}, previous configuration kept`);
    return ok;
  }
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 400);
}
