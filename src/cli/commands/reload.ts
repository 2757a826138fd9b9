/**
 * `vxmesh reload [--api HOST:PORT] [--timeout S]`: reload the running agent's config and wait for
 * the verdict. Reads the agent's PID and reload generation from GET /v1/status, sends it SIGHUP,
 * then polls until the generation moves on: exit 0 when the new config was applied, 1 when it was
 * refused (invalid file, a change that needs a restart, or partly applied), with the agent's
 * reason. The unit's ExecReload runs this, so `systemctl reload vxmesh` fails on a refusal.
 */

import type { Command } from '../command';
import { err, out, parseCommandArgs } from '../command';
import { UsageError, VxmeshError } from '../../errors';
import * as fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { apiGet, checkApiAddress, DEFAULT_API } from './status';

interface ReloadView {
  pid: number;
  reload?: { generation: number; result: string; message: string | null };
}

/**
 * api.listen from a config file, read leniently (the file may be the new, possibly invalid
 * config being reloaded): the default when absent or unreadable as YAML.
 */
export function apiOfConfig(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new VxmeshError('ERR_VXMESH_CONFIG_READ', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const doc = parseYaml(text) as { api?: { listen?: unknown } } | null;
    const l = doc?.api?.listen;
    if (typeof l === 'string' && l.length > 0) {
      // a wildcard listener is reached on loopback
      return (/^\d+$/.test(l) ? `127.0.0.1:${l}` : l).replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
    }
  } catch {
    // an unparsable file: the agent will refuse it; talk to it at the default address
  }
  return DEFAULT_API;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const reload: Command = {
  name: 'reload',
  summary: 'Reload the running agent\'s config and report whether it was applied',
  usage: [
    'Usage: vxmesh reload [--config FILE | --api HOST:PORT] [--timeout SECONDS]',
    '',
    'Sends SIGHUP to the agent (its PID from GET /v1/status) and waits until it has handled the',
    'reload: prints "applied" and exits 0, or prints why it was refused and exits 1 (the running',
    'config stays in place). The result is also in `vxmesh status` and vxmesh_config_reloads_total.',
    'Needs the right to signal the agent (root, or the agent\'s user: the unit\'s ExecReload).',
    '',
    'Options:',
    '  -c, --config FILE       take the API address from FILE\'s api.listen (what the unit does)',
    '  -a, --api HOST:PORT     the agent\'s api.listen (default 127.0.0.1:9469)',
    '  -t, --timeout SECONDS   how long to wait for the verdict (default 30)',
    '',
    'Exit codes: 0 applied, 1 refused, agent unreachable or no verdict in time, 2 bad arguments.',
  ].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, { api: { type: 'string', short: 'a' }, config: { type: 'string', short: 'c' }, timeout: { type: 'string', short: 't' } });
    if (values.api !== undefined && values.config !== undefined) throw new UsageError('give --config or --api, not both');
    const api = checkApiAddress(values.config !== undefined ? apiOfConfig(values.config) : values.api);
    const timeoutS = values.timeout === undefined ? 30 : Number(values.timeout);
    if (!Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > 3600) throw new UsageError(`--timeout expects seconds in (0, 3600], got "${values.timeout}"`);
    const before = (await apiGet(api, '/v1/status')) as ReloadView;
    if (!Number.isInteger(before.pid) || before.pid <= 0 || !before.reload) {
      throw new VxmeshError('ERR_VXMESH_API', `the status at ${api} has no pid/reload fields: is it a vxmesh agent of this version?`);
    }
    const gen = before.reload.generation;
    try {
      process.kill(before.pid, 'SIGHUP');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new VxmeshError('ERR_VXMESH_RELOAD', `cannot signal the agent (pid ${before.pid}): ${code === 'EPERM' ? 'permission denied (run as root or as the agent\'s user)' : code}`);
    }
    const deadline = Date.now() + timeoutS * 1000;
    for (;;) {
      await sleep(100);
      let now: ReloadView;
      try {
        now = (await apiGet(api, '/v1/status')) as ReloadView;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        continue; // the API may be busy for a moment while networks are set up
      }
      const r = now.reload;
      if (r && r.generation > gen) {
        if (r.result === 'ok') {
          out(`reload #${r.generation} applied`);
          return 0;
        }
        err(`vxmesh reload: reload #${r.generation} ${r.result}: ${r.message ?? '(no reason given)'}; the running config stays`);
        return 1;
      }
      if (Date.now() > deadline) {
        throw new VxmeshError('ERR_VXMESH_RELOAD', `no reload verdict from the agent (pid ${before.pid}) within ${timeoutS}s`);
      }
    }
  },
};
