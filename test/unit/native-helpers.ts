/**
 * Helpers of the native addon tests (test/unit/native-*.test.ts). The tests need CAP_NET_ADMIN and
 * touch real devices, so every scenario runs in a CHILD process inside a fresh, uniquely named
 * network namespace (`ip netns exec <ns> node <test file>` with VXMESH_NATIVE_SCENARIO set) that is
 * deleted afterwards, pass or fail; devices created inside vanish with it. The child asserts with
 * node:assert and prints one JSON line of facts that the parent asserts again.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { loadAddon } from '../../src/native/addon';

export const SCENARIO_ENV = 'VXMESH_NATIVE_SCENARIO';

/** Why the netns tests cannot run here, or undefined. */
export function nativeSkipReason(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'needs root (CAP_NET_ADMIN) for TAP/netns';
  if (!fs.existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  if (spawnSync('ip', ['-V']).status !== 0) return 'iproute2 (ip) is not installed';
  return addonSkipReason();
}

/** Why the addon cannot be loaded, or undefined. */
export function addonSkipReason(): string | undefined {
  try {
    loadAddon();
    return undefined;
  } catch (e) {
    return `native addon not built: ${(e as Error).message}`;
  }
}

/** A namespace name unique to this run: vxt<pid%10000>n<random>, ≤ 15 chars. */
export function uniqueNetnsName(): string {
  return `vxt${process.pid % 10000}n${crypto.randomBytes(2).toString('hex')}`;
}

function run(cmd: string, args: string[], timeoutMs = 10_000): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (status ${r.status}${r.signal ? `, ${r.signal}` : ''}): ${r.stderr || r.stdout}`);
  }
  return r.stdout;
}

/** Runs a shell command inside namespace `ns`; throws on failure. */
export function nsSh(ns: string, script: string): string {
  return run('ip', ['netns', 'exec', ns, 'sh', '-ec', script]);
}

/** Creates a namespace (loopback up), runs `fn`, always deletes it. */
export function withNetns<T>(fn: (ns: string) => T): T {
  const ns = uniqueNetnsName();
  run('ip', ['netns', 'add', ns]);
  try {
    nsSh(ns, 'ip link set lo up');
    return fn(ns);
  } finally {
    spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
  }
}

/**
 * Runs `scenario` of test file `file` in a child process inside `ns` (bounded by `timeoutMs`) and
 * returns the JSON object it printed. Throws with the child's stderr when it fails.
 */
export function runScenario(ns: string, file: string, scenario: string, arg: unknown = null, timeoutMs = 20_000): any {
  // Not a test-runner child: drop node:test's context so the child prints plain output.
  const env: NodeJS.ProcessEnv = { ...process.env, [SCENARIO_ENV]: scenario, VXMESH_SCENARIO_ARG: JSON.stringify(arg) };
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, file], { encoding: 'utf8', timeout: timeoutMs, env });
  if (r.status !== 0) {
    throw new Error(`scenario ${scenario} failed (status ${r.status}${r.signal ? `, killed by ${r.signal}` : ''}):\n${r.stderr}\n${r.stdout}`);
  }
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

/**
 * In a child (VXMESH_NATIVE_SCENARIO set): runs that scenario, prints its JSON result, exits
 * (0 on success, 1 with the error on stderr). Returns false in the parent (the test runner).
 */
export function childMain(scenarios: Record<string, (arg: any) => Promise<unknown> | unknown>): boolean {
  const name = process.env[SCENARIO_ENV];
  if (!name) return false;
  const fn = scenarios[name];
  const arg = JSON.parse(process.env.VXMESH_SCENARIO_ARG || 'null');
  (async () => {
    if (!fn) throw new Error(`unknown scenario ${name}`);
    const result = await fn(arg);
    process.stdout.write(JSON.stringify(result ?? {}) + '\n');
    process.exit(0);
  })().catch((err) => {
    process.stderr.write(`${err && err.stack ? err.stack : String(err)}\n`);
    if (err && typeof err === 'object') process.stderr.write(`details: ${JSON.stringify({ ...err, message: err.message })}\n`);
    process.exit(1);
  });
  return true;
}

/** Shell command inside the CURRENT namespace (used by children); throws on failure. */
export function sh(script: string): string {
  return run('sh', ['-ec', script]);
}

/**
 * Waits (bounded) until `poll()` returns a non-undefined value, calling it from the device's
 * readability callback; then pauses the device so that a later wait does not find its data read
 * by this (finished) callback. Rejects after `timeoutMs` with `what` in the message.
 */
export function untilReadable<T>(
  dev: { onReadable(cb: () => void): void; pause?(): void },
  poll: () => T | undefined,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void) => {
      done = true;
      clearTimeout(timer);
      dev.pause?.();
      fn();
    };
    const timer = setTimeout(() => finish(() => reject(new Error(`timed out waiting for ${what}`))), timeoutMs);
    dev.onReadable(() => {
      if (done) return;
      try {
        const v = poll();
        if (v !== undefined) finish(() => resolve(v));
      } catch (e) {
        finish(() => reject(e));
      }
    });
  });
}

/** Internet checksum (RFC 1071) of `buf[start, end)`. */
export function inetChecksum(buf: Uint8Array, start = 0, end = buf.length, initial = 0): number {
  let sum = initial;
  for (let i = start; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if ((end - start) % 2 === 1) sum += buf[end - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
