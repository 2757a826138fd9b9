/**
 * Logging seam. The agent logs structured records (an object of fields plus a message); the
 * implementation behind `createLogger` is owned by the ops work (pino: JSON lines, pretty on a TTY).
 * Hot paths never log per packet: they count, and the control plane logs summaries, rate-limited.
 */

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

const ORDER: LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** Minimal JSON-lines logger to stderr (placeholder until the pino-backed one lands). */
export function createLogger(opts: { level?: LogLevel; bindings?: Record<string, unknown> } = {}): Logger {
  const bindings = opts.bindings ?? {};
  const self: Logger = {
    level: opts.level ?? 'info',
    trace: (o, m) => emit('trace', o, m),
    debug: (o, m) => emit('debug', o, m),
    info: (o, m) => emit('info', o, m),
    warn: (o, m) => emit('warn', o, m),
    error: (o, m) => emit('error', o, m),
    fatal: (o, m) => emit('fatal', o, m),
    child: (b) => createLogger({ level: self.level as LogLevel, bindings: { ...bindings, ...b } }),
  };
  function emit(level: LogLevel, o: object | string, m?: string): void {
    if (ORDER.indexOf(level) < ORDER.indexOf(self.level as LogLevel)) return;
    const rec = typeof o === 'string' ? { msg: o } : { ...o, msg: m };
    process.stderr.write(JSON.stringify({ level, time: Date.now(), ...bindings, ...rec }) + '\n');
  }
  return self;
}

/** A logger that discards everything (tests, simulator). */
export const nullLogger: Logger = {
  level: 'silent',
  trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {},
  child() { return nullLogger; },
};
