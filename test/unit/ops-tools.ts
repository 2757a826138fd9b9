// Test helper: is a Debian-packaged tool (systemd-analyze, promtool, prometheus, strace, python3)
// on PATH? Tests never install anything: `npm test` runs scripts/test-setup.js first, which installs
// the packages of scripts/test-deps.js as root (and lists what is missing otherwise). A test whose
// tool is missing skips with the reason; run as root, scripts/run-tests.js counts a skip as a failure.
import { spawnSync } from 'node:child_process';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Runs a command to completion (bounded), returning status and output. */
export function run(cmd: string, args: string[], opts: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const r = spawnSync(cmd, args, {
    input: opts.input, cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000,
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

/** Skip reason for a test needing `tools` (never installs them), or undefined when all are on PATH. */
export function toolsSkip(...tools: string[]): string | undefined {
  for (const t of tools) if (!have(t)) return `${t} is not installed (as root, npm test installs it first: scripts/test-setup.js)`;
  return undefined;
}
