/**
 * Logging: structured records (an object of fields plus a message) written by pino as JSON lines
 * to stderr (journald captures them under systemd), or as one readable line per record when stderr
 * is a terminal (our own small formatter: no pino-pretty dependency).
 *
 * Under systemd, when stderr is the journal's stream (JOURNAL_STREAM names stderr's device and
 * inode, see systemd.exec(5)), every line starts with a syslog priority prefix `<N>` (sd-daemon(3)):
 * fatal → <2> crit, error → <3> err, warn → <4> warning, info → <6> info, debug/trace → <7> debug.
 * journald strips it and files the record at that priority, so `journalctl -u vxmesh -p err`
 * shows errors and worse, `-p warning` warnings too.
 *
 * Hot paths never log per packet: they count, and the control plane logs summaries. A warning that
 * can repeat at packet rate goes through `LogLimiter` (at most `burst` records per key per interval,
 * the number suppressed reported on the next record).
 *
 * Levels: one level per logger family. `createLogger` returns a root; every `child()` shares its
 * level, so `logger.level = 'debug'` on any member (a SIGHUP reload) changes the whole family,
 * including children created earlier (plain pino children would keep their old level).
 */

import * as fs from 'node:fs';
import pino from 'pino';
import type { Clock } from './clock';
import { systemClock } from './clock';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface Logger {
  trace(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  fatal(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
  level: string;
}

export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** Anything with a synchronous `write(line)`: a test's collector, a file stream. */
export interface LogSink {
  write(chunk: string): unknown;
}

export interface LoggerOptions {
  /** Minimum level; 'silent' disables output. Default 'info'. */
  level?: LogLevel | 'silent';
  /** Fields added to every record of this logger (and its children). */
  bindings?: Record<string, unknown>;
  /**
   * Output format. Default: `VXMESH_LOG_FORMAT` (`json` | `pretty`) if set, else `pretty` when
   * the destination is stderr and stderr is a TTY, else `json`.
   */
  format?: 'json' | 'pretty';
  /** Where records go; default stderr (written synchronously so nothing is lost on exit). */
  destination?: LogSink;
  /** Pretty format only: ANSI colours; default true when writing to a TTY stderr. */
  color?: boolean;
  /**
   * Prefix each line with its syslog priority (`<3>` …) for journald. Default: when writing to
   * stderr and stderr is the journal stream (`underJournal()`).
   */
  journal?: boolean;
}

/** syslog priority of each level, as journald reads `<N>` prefixes. */
export const JOURNAL_PRIORITY: Record<LogLevel, number> = { fatal: 2, error: 3, warn: 4, info: 6, debug: 7, trace: 7 };

/**
 * Whether stderr is connected to the journal: JOURNAL_STREAM ("DEV:INODE") equals stderr's device
 * and inode (a child whose stderr was redirected elsewhere inherits the variable but not the match).
 */
export function underJournal(env: Record<string, string | undefined> = process.env, stat: () => { dev: number; ino: number } = () => fs.fstatSync(2)): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  const m = /^(\d+):(\d+)$/.exec(js);
  if (!m) return false;
  try {
    const st = stat();
    return st.dev === Number(m[1]) && st.ino === Number(m[2]);
  } catch {
    return false;
  }
}

const LEVEL_IN_LINE = /"level":"(trace|debug|info|warn|error|fatal)"/;

/** Puts `<N>` in front of one pino JSON line (the level read from the line). */
export function journalLine(line: string): string {
  const m = LEVEL_IN_LINE.exec(line);
  return `<${m ? JOURNAL_PRIORITY[m[1] as LogLevel] : 6}>${line}`;
}

/** State shared by a root logger and all its children. */
interface Family {
  level: string;
}

/** A Logger over one pino instance, with the level kept in step with its family. */
class PinoLogger implements Logger {
  constructor(
    private readonly p: pino.Logger,
    private readonly family: Family,
  ) {}

  get level(): string {
    return this.family.level;
  }

  set level(level: string) {
    if (level !== 'silent' && !LOG_LEVELS.includes(level as LogLevel)) {
      throw new TypeError(`unknown log level "${level}" (expected one of ${LOG_LEVELS.join(', ')}, silent)`);
    }
    this.family.level = level;
    this.p.level = level;
  }

  private sync(): pino.Logger {
    if (this.p.level !== this.family.level) this.p.level = this.family.level;
    return this.p;
  }

  trace(o: object | string, m?: string): void { this.emit('trace', o, m); }
  debug(o: object | string, m?: string): void { this.emit('debug', o, m); }
  info(o: object | string, m?: string): void { this.emit('info', o, m); }
  warn(o: object | string, m?: string): void { this.emit('warn', o, m); }
  error(o: object | string, m?: string): void { this.emit('error', o, m); }
  fatal(o: object | string, m?: string): void { this.emit('fatal', o, m); }

  private emit(level: LogLevel, o: object | string, m?: string): void {
    const p = this.sync();
    if (typeof o === 'string') p[level](o);
    else if (m === undefined) p[level](o);
    else p[level](o, m);
  }

  child(bindings: Record<string, unknown>): Logger {
    return new PinoLogger(this.sync().child(bindings), this.family);
  }
}

/** Creates a root logger. See `LoggerOptions` for defaults. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const toStderr = opts.destination === undefined;
  const tty = toStderr && process.stderr.isTTY === true;
  const envFormat = process.env.VXMESH_LOG_FORMAT;
  const format = opts.format ?? (envFormat === 'json' || envFormat === 'pretty' ? envFormat : tty ? 'pretty' : 'json');
  const journal = opts.journal ?? (toStderr && underJournal());
  let dest: LogSink;
  if (format === 'pretty') {
    const out = opts.destination ?? { write: (s: string) => process.stderr.write(s) };
    const color = opts.color ?? tty;
    dest = journal
      ? { write: (line: string) => out.write(`<${JOURNAL_PRIORITY[(LEVEL_IN_LINE.exec(line)?.[1] ?? 'info') as LogLevel]}>${formatPretty(line, false)}`) }
      : { write: (line: string) => out.write(formatPretty(line, color)) };
  } else if (journal) {
    const out: LogSink = opts.destination ?? pino.destination({ fd: 2, sync: true });
    dest = { write: (line: string) => out.write(journalLine(line)) };
  } else {
    dest = opts.destination ?? pino.destination({ fd: 2, sync: true });
  }
  const p = pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      messageKey: 'msg',
    },
    dest as pino.DestinationStream,
  );
  const root = new PinoLogger(p, { level });
  return opts.bindings ? root.child(opts.bindings) : root;
}

/** A logger that discards everything (tests, simulator). */
export const nullLogger: Logger = {
  level: 'silent',
  trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {},
  child() { return nullLogger; },
};

const COLORS: Record<string, string> = {
  trace: '\x1b[90m', debug: '\x1b[36m', info: '\x1b[32m', warn: '\x1b[33m', error: '\x1b[31m', fatal: '\x1b[35m',
};

/**
 * Turns one pino JSON line into `HH:MM:SS.mmm LEVEL [name] msg key=value ...`. Lines that are not
 * JSON objects are passed through unchanged.
 */
export function formatPretty(line: string, color = false): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line);
  } catch {
    return line.endsWith('\n') ? line : line + '\n';
  }
  if (rec === null || typeof rec !== 'object') return line;
  const { level, time, msg, pid: _pid, hostname: _h, component, err, ...rest } = rec as Record<string, unknown>;
  const t = typeof time === 'string' && time.length >= 23 ? time.slice(11, 23) : String(time ?? '');
  const lv = String(level ?? '').toUpperCase().padEnd(5);
  const lvText = color ? `${COLORS[String(level)] ?? ''}${lv}\x1b[0m` : lv;
  let out = `${t} ${lvText}`;
  if (component !== undefined) out += ` [${String(component)}]`;
  if (msg !== undefined) out += ` ${String(msg)}`;
  for (const [k, v] of Object.entries(rest)) out += ` ${k}=${prettyValue(v)}`;
  if (err && typeof err === 'object') {
    const e = err as { message?: unknown; code?: unknown; stack?: unknown };
    out += ` err=${prettyValue(e.message)}`;
    if (e.code !== undefined) out += ` code=${prettyValue(e.code)}`;
    if (typeof e.stack === 'string' && (level === 'error' || level === 'fatal')) {
      out += '\n    ' + e.stack.split('\n').slice(1).map((s) => s.trim()).join('\n    ');
    }
  }
  return out + '\n';
}

function prettyValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v === undefined) return 'undefined';
  return JSON.stringify(v);
}

export interface LogLimiterOptions {
  /** Window length in milliseconds; default 10 000. */
  intervalMs?: number;
  /** Records allowed per key per window; default 1. */
  burst?: number;
  /** Keys tracked at most (older ones forgotten first); default 1024. Keys should come from fixed sets. */
  maxKeys?: number;
  clock?: Clock;
}

interface LimiterSlot {
  windowStart: number;
  used: number;
  suppressed: number;
}

/**
 * Rate limit for warnings that can repeat at packet rate (a TAP write failing, a peer's packets
 * failing to decrypt). Per key: at most `burst` records per `intervalMs`; the rest are counted, and
 * the next record that goes through carries `suppressed: N` (how many were dropped since the last).
 *
 *     const limited = new LogLimiter(logger, { intervalMs: 10_000 });
 *     limited.warn('tap_write:blue', { network: 'blue', err }, 'TAP write failed');
 */
export class LogLimiter {
  private readonly intervalMs: number;
  private readonly burst: number;
  private readonly maxKeys: number;
  private readonly clock: Clock;
  private readonly slots = new Map<string, LimiterSlot>();

  constructor(private readonly logger: Logger, opts: LogLimiterOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.burst = Math.max(1, opts.burst ?? 1);
    this.maxKeys = Math.max(1, opts.maxKeys ?? 1024);
    this.clock = opts.clock ?? systemClock;
  }

  /** Logs at `level` unless `key` is over its budget; returns whether the record was written. */
  log(level: LogLevel, key: string, fields: object, msg: string): boolean {
    const now = this.clock.now();
    let slot = this.slots.get(key);
    if (slot === undefined) {
      if (this.slots.size >= this.maxKeys) {
        const oldest = this.slots.keys().next().value as string;
        this.slots.delete(oldest);
      }
      slot = { windowStart: now, used: 0, suppressed: 0 };
      this.slots.set(key, slot);
    } else if (now - slot.windowStart >= this.intervalMs) {
      slot.windowStart = now;
      slot.used = 0;
    }
    if (slot.used >= this.burst) {
      slot.suppressed++;
      return false;
    }
    slot.used++;
    if (slot.suppressed > 0) {
      this.logger[level]({ ...fields, suppressed: slot.suppressed }, msg);
      slot.suppressed = 0;
    } else {
      this.logger[level](fields, msg);
    }
    return true;
  }

  warn(key: string, fields: object, msg: string): boolean {
    return this.log('warn', key, fields, msg);
  }

  error(key: string, fields: object, msg: string): boolean {
    return this.log('error', key, fields, msg);
  }

  /** Records suppressed and not yet reported, per key (for tests and status). */
  pending(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [k, s] of this.slots) if (s.suppressed > 0) out.set(k, s.suppressed);
    return out;
  }
}
