// Test helper: make sure a Debian-packaged tool (systemd-analyze, promtool, prometheus) is there,
// installing its package once when missing and we are root (CI machines start without them).
import { spawnSync } from 'node:child_process';

const PACKAGES: Record<string, string> = {
  'systemd-analyze': 'systemd',
  promtool: 'prometheus',
  prometheus: 'prometheus',
  python3: 'python3',
  strace: 'strace',
};

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Returns the command name once it is on PATH; throws with the reason when it cannot be had. */
export function ensureTool(cmd: string): string {
  if (have(cmd)) return cmd;
  const pkg = PACKAGES[cmd];
  if (!pkg) throw new Error(`${cmd} not found`);
  if (process.getuid?.() !== 0) throw new Error(`${cmd} not found and not root: apt-get install ${pkg}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { env, timeout: 300_000, encoding: 'utf8' });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env, timeout: 300_000 });
    r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { env, timeout: 300_000, encoding: 'utf8' });
  }
  if (!have(cmd)) throw new Error(`${cmd} still missing after apt-get install ${pkg}: ${r.stderr}`);
  return cmd;
}

/** Runs a command to completion (bounded), returning status and output. */
export function run(cmd: string, args: string[], opts: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const r = spawnSync(cmd, args, {
    input: opts.input, cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000,
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

/** Skip reason for a test needing `tools` (each installed first when missing and root), or undefined. */
export function toolsSkip(...tools: string[]): string | undefined {
  for (const t of tools) {
    try {
      ensureTool(t);
    } catch (e) {
      return (e as Error).message;
    }
  }
  return undefined;
}
