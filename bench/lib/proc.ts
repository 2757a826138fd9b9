/**
 * Process helpers for the benchmark harness: run a command with a hard time limit, start
 * background daemons (agents, servers) whose PIDs are tracked so that cleanup can kill exactly
 * them (by PID, never by name), and register teardown steps that run even on failure or Ctrl-C.
 */

import { spawn, ChildProcess } from 'node:child_process';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  /** Hard limit; the process gets SIGTERM, then SIGKILL 2 s later. Default 30 s. */
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs `cmd args…` to completion (or the time limit); never throws for a non-zero exit. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
    } catch (e) {
      resolve({ code: 127, signal: null, stdout: '', stderr: String(e), timedOut: false });
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 2000);
    }, timeoutMs);
    track(child);
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => err.push(Buffer.from(String(e))));
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(opts.input ?? '');
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      untrack(child);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        timedOut,
      });
    });
  });
}

/** Like `run` but throws (with stderr in the message) unless the command exits 0. */
export async function must(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const why = r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`;
    throw new Error(`${cmd} ${args.join(' ')}: ${why}: ${(r.stderr || r.stdout).trim().slice(0, 800)}`);
  }
  return r.stdout;
}

/** Runs a command inside network namespace `ns`. */
export function nsRun(ns: string, cmd: string, args: string[], opts?: RunOptions): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

export function nsMust(ns: string, cmd: string, args: string[], opts?: RunOptions): Promise<string> {
  return must('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/** A long-running process started by the harness (agent, iperf3 server, …). */
export class Daemon {
  readonly child: ChildProcess;
  readonly name: string;
  private out = '';
  private exited = false;
  exitCode: number | null = null;

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    const keep = (b: Buffer): void => {
      // Keep the last 64 KB of output for error messages.
      this.out = (this.out + b.toString()).slice(-65536);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', (code) => {
      this.exited = true;
      this.exitCode = code;
      untrack(child);
    });
    child.on('error', (e) => keep(Buffer.from(`spawn error: ${String(e)}\n`)));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return !this.exited && this.child.pid !== undefined;
  }

  output(): string {
    return this.out;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.alive) return;
    const done = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((r) => (bound = setTimeout(r, graceMs + 5000)))]);
    clearTimeout(t);
    if (bound) clearTimeout(bound);
  }
}

/** Starts a daemon inside `ns`; `ip netns exec` execs the program, so the PID is the program's. */
export function nsSpawn(ns: string, name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Daemon {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: env ?? process.env,
  });
  track(child);
  return new Daemon(name, child);
}

/** Starts a daemon in the harness's own namespace (e.g. perf attached to an agent by PID). */
export function spawnDaemon(name: string, cmd: string, args: string[]): Daemon {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  return new Daemon(name, child);
}

// ---- tracking and teardown ----------------------------------------------------------------

const live = new Set<ChildProcess>();
function track(c: ChildProcess): void {
  live.add(c);
}
function untrack(c: ChildProcess): void {
  live.delete(c);
}

/** Kills (SIGKILL, by PID) every process the harness started that is still running. */
export function killAllTracked(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` every `everyMs` until it returns true or `timeoutMs` passes. */
export async function waitFor(probe: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() >= end) return false;
    await sleep(everyMs);
  }
}
