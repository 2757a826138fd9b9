/**
 * `vxmesh cleanup [--state-dir DIR]`: delete the bridges vxmesh created (recorded in
 * DIR/bridges.json; they outlive the agent so containers stay attached across restarts), then the
 * state file. Refuses while the agent that wrote the state file is running.
 */

import * as fs from 'node:fs';
import type { Command } from '../command';
import { out, parseCommandArgs } from '../command';
import { VxmeshError } from '../../errors';
import { createLogger } from '../../log';
import { hasNetAdmin } from './agent';

/** The state directory: --state-dir, else $STATE_DIRECTORY (systemd's StateDirectory=), else /var/lib/vxmesh. */
export function stateDirOf(flag: string | undefined): string {
  if (flag !== undefined && flag !== '') return flag;
  const env = process.env.STATE_DIRECTORY;
  if (env) return env.split(':')[0];
  return '/var/lib/vxmesh';
}

/** Whether `pid` is a live vxmesh process (not a recycled PID of something else). */
export function isVxmeshRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('vxmesh');
  } catch {
    return false;
  }
}

export const cleanup: Command = {
  name: 'cleanup',
  summary: 'Delete the bridges vxmesh created (stop the agent first; needs CAP_NET_ADMIN)',
  usage: [
    'Usage: vxmesh cleanup [--state-dir DIR]',
    '',
    'Bridges the agent creates outlive it: a restart (clean or after a crash) reuses them, so',
    'containers stay attached. This deletes every bridge recorded in DIR/bridges.json as created by',
    'vxmesh (their container ports are released), then the state file. Bridges that existed before',
    'vxmesh are never touched. Run it in the agent\'s network namespace, with the agent stopped.',
    '',
    'Options:',
    '  -s, --state-dir DIR   the agent\'s state directory (default $STATE_DIRECTORY, else /var/lib/vxmesh)',
    '',
    'Exit codes: 0 done (or nothing to do), 1 the agent is running, a bridge could not be deleted,',
    'or the state file is unreadable; 2 bad arguments.',
  ].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, { 'state-dir': { type: 'string', short: 's' } });
    const dir = stateDirOf(values['state-dir']);
    const { StateStore } = await import('../../agent/state');
    const store = new StateStore(dir);
    const st = store.load();
    if (isVxmeshRunning(st.pid)) {
      throw new VxmeshError('ERR_VXMESH_RUNNING', `the agent (pid ${st.pid}) is running: stop it first (systemctl stop vxmesh)`);
    }
    if (st.bridges.length === 0) {
      store.remove();
      out(`nothing to clean up (no bridges recorded in ${store.file})`);
      return 0;
    }
    if (!hasNetAdmin()) throw new VxmeshError('ERR_VXMESH_PRIVILEGE', 'vxmesh cleanup needs CAP_NET_ADMIN (run it as root)');
    const { nativeSystem } = await import('../../agent/system');
    const { cleanupOwnedBridges } = await import('../../agent/netsetup');
    const logger = createLogger({ level: 'warn' });
    const r = cleanupOwnedBridges(nativeSystem(), st.bridges, logger);
    for (const b of r.deleted) out(`deleted bridge ${b}`);
    for (const b of r.missing) out(`bridge ${b} already gone`);
    if (r.failed.length) {
      store.save({ version: 1, pid: 0, bridges: st.bridges.filter((b) => r.failed.includes(b.name)) });
      throw new VxmeshError('ERR_VXMESH_CLEANUP', `could not delete ${r.failed.join(', ')} (kept in ${store.file})`);
    }
    store.remove();
    return 0;
  },
};
