/**
 * `vxmesh agent --config FILE`: load the config, start the agent in the current network namespace,
 * and run until SIGINT/SIGTERM (clean stop, exit 0). SIGHUP re-reads FILE: an invalid config is
 * logged and the running one stays; a valid one is applied live (Agent.applyConfig).
 * systemd (when NOTIFY_SOCKET is set, through the ops AgentService): READY=1 once ready,
 * WATCHDOG=1 while the data path is healthy, RELOADING=1 … READY=1 around a reload, STOPPING=1.
 */

import * as fs from 'node:fs';
import type { Command } from '../command';
import { parseCommandArgs } from '../command';
import { loadConfigFile } from '../../config/load';
import { systemMtuLookup } from '../../config/mtu';
import { LOG_LEVELS as CONFIG_LOG_LEVELS } from '../../config/load';
import type { Config } from '../../config/types';
import { createLogger, type LogLevel } from '../../log';
import type { Agent, AgentExtension } from '../../agent/agent';
import { ConfigError, SystemError, UsageError, VxmeshError } from '../../errors';

/** CAP_NET_ADMIN is capability bit 12. */
const CAP_NET_ADMIN = 12n;

/** Whether this process holds CAP_NET_ADMIN in its effective set (from /proc/self/status). */
export function hasNetAdmin(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? ((BigInt(`0x${m[1]}`) >> CAP_NET_ADMIN) & 1n) === 1n : true;
  } catch {
    return true; // cannot tell: let the TAP open report it
  }
}

export const agent: Command = {
  name: 'agent',
  summary: 'Run the vxmesh agent on this host (needs CAP_NET_ADMIN)',
  usage: [
    'Usage: vxmesh agent --config FILE [--log-level LEVEL]',
    '',
    'Runs the agent in the current network namespace. For each configured network it creates the',
    'bridge if missing, creates (or attaches to) the TAP, enslaves it and sets MTUs, then carries',
    'the bridge\'s traffic over VXLAN to the peers. Needs CAP_NET_ADMIN (root, or the systemd unit).',
    '',
    'Options:',
    '  -c, --config FILE      config file (YAML or JSON); see README "Config reference"',
    '  -l, --log-level LEVEL  override log.level: trace, debug, info, warn, error',
    '  -s, --state-dir DIR    where the agent remembers the bridges it created (default',
    '                         $STATE_DIRECTORY, else /var/lib/vxmesh)',
    '',
    'Signals:',
    '  SIGINT, SIGTERM   close the TAPs and exit 0; bridges the agent created stay, with their',
    '                    container ports (a restart reuses them; `vxmesh cleanup` deletes them)',
    '  SIGHUP            re-read FILE; a valid config is applied live (networks, peers, log level,',
    '                    gossip seeds), an invalid one is logged and the running config stays',
    '',
    'Logs are JSON lines on stderr (readable lines on a terminal; VXMESH_LOG_FORMAT=json|pretty).',
    '',
    'Exit codes: 0 clean stop, 1 runtime failure (e.g. missing CAP_NET_ADMIN), 2 bad config or arguments.',
  ].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, {
      config: { type: 'string', short: 'c' },
      'log-level': { type: 'string', short: 'l' },
      'state-dir': { type: 'string', short: 's' },
    });
    const { stateDirOf } = await import('./cleanup');
    const stateDir = stateDirOf(values['state-dir']);
    const file = values.config;
    if (!file) throw new UsageError('--config FILE is required');
    const levelOverride = values['log-level'];
    if (levelOverride !== undefined && !(CONFIG_LOG_LEVELS as readonly string[]).includes(levelOverride)) {
      throw new UsageError(`--log-level: expected one of ${CONFIG_LOG_LEVELS.join(', ')}, got "${levelOverride}"`);
    }
    const lookup = systemMtuLookup();
    const load = (): Config => {
      const c = loadConfigFile(file, { mtuLookup: lookup });
      return levelOverride ? { ...c, log: { level: levelOverride as Config['log']['level'] } } : c;
    };
    const fileConfig = load(); // ConfigError → exit 2 (main)
    const logger = createLogger({ level: fileConfig.log.level as LogLevel, bindings: { node: fileConfig.node.name } });
    if (!hasNetAdmin()) {
      logger.error({}, 'vxmesh agent needs CAP_NET_ADMIN: run it as root or with the capability (see deploy/vxmesh.service)');
      return 1;
    }
    // Loaded here, not at CLI start: help/version/check-config never load the data path or metrics.
    const { buildExtensions, gossipApiOf } = await import('../extensions');
    const { AgentService } = await import('../../metrics/service');
    const { Agent } = await import('../../agent/agent');
    const service = new AgentService({ logger: logger.child({ component: 'systemd' }) });

    // networks created at run time (Docker `--opt vni=`), re-created before any extension starts
    const { RuntimeNetworks } = await import('../../agent/runtime-networks');
    let runtimeNetworks: InstanceType<typeof RuntimeNetworks>;
    let runtimeMerge: ReturnType<InstanceType<typeof RuntimeNetworks>['withRuntimeNetworks']>;
    let config: Config;
    let extensions: AgentExtension[];
    try {
      runtimeNetworks = new RuntimeNetworks(stateDir, logger.child({ component: 'runtime-networks' }));
      runtimeMerge = runtimeNetworks.withRuntimeNetworks(fileConfig); // a clash: ConfigError, exit 2
      config = runtimeMerge.config;
      const { NftFloodGuard } = await import('../../crypto/flood-guard');
      extensions = buildExtensions(config, logger, { runtimeNetworks, floodGuard: new NftFloodGuard() });
    } catch (e) {
      logger.error(errFields(e), `agent failed to start: ${(e as Error).message}`);
      return e instanceof ConfigError ? 2 : 1;
    }

    // Signals are handled from before the first system change: a SIGTERM during start-up still
    // ends in a clean stop (after start finishes or fails), never in leftovers.
    let a: Agent | null = null;
    let stopping: string | null = null;
    let reloadPending = false;
    let finish: (code: number) => void = () => {};
    const done = new Promise<number>((resolve) => { finish = resolve; });

    const stop = (why: string, code = 0) => {
      if (stopping) return;
      stopping = why;
      if (!a) return; // start-up in progress: stopped as soon as it completes
      logger.info({ reason: why }, 'stopping');
      service.stopping(); // STOPPING=1
      const guard = setTimeout(() => {
        logger.error({ timeoutMs: STOP_TIMEOUT_MS }, 'stop did not complete in time; exiting');
        finish(1);
      }, STOP_TIMEOUT_MS);
      guard.unref();
      a.stop().then(
        () => { clearTimeout(guard); finish(code); },
        (e) => {
          clearTimeout(guard);
          logger.error(errFields(e), 'stop failed');
          finish(1);
        },
      );
    };
    const reload = () => {
      if (stopping) return;
      if (!a) {
        reloadPending = true;
        return;
      }
      const agentNow = a;
      // RELOADING=1 … READY=1 around it; a failure (invalid or refused) keeps the running config.
      void service.reload(async () => {
        let next: Config;
        try {
          next = load();
        } catch (e) {
          logger.error({ ...errFields(e), file }, `reload: new config is invalid, keeping the running config: ${(e as Error).message}`);
          agentNow.noteReload('invalid', (e as Error).message);
          throw e;
        }
        try {
          const r = await runtimeNetworks.reload(agentNow, next); // a reload keeps runtime networks
          logger.info({ ...r }, 'reload: config applied');
        } catch (e) {
          logger.error(errFields(e), `reload: ${(e as Error).message}`);
          throw e;
        }
      });
    };
    // A bug must not leave bridges and TAPs behind: log it, clean up, exit 1.
    const crash = (e: unknown) => {
      logger.fatal(errFields(e), `unexpected error: ${e instanceof Error ? e.message : String(e)}`);
      if (a) stop('crash', 1);
      else finish(1);
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    process.on('SIGHUP', reload);
    process.on('uncaughtException', crash);
    process.on('unhandledRejection', crash);
    try {
      try {
        a = await Agent.start(config, { logger, extensions, stateDir, gossip: gossipApiOf(extensions) });
        runtimeNetworks.bind(a);
        try {
          runtimeMerge.commit(); // entries the config took over leave the state file once it runs
        } catch (e) {
          logger.error(errFields(e), `runtime networks: state file not updated: ${(e as Error).message}`);
        }
      } catch (e) {
        logger.error(errFields(e), `agent failed to start: ${(e as Error).message}`);
        return e instanceof ConfigError ? 2 : 1;
      }
      service.started(a); // READY=1 once agent.ready() passes (NOTIFY_SOCKET), watchdog
      if (stopping) {
        const why = stopping;
        stopping = null;
        stop(why);
      } else if (reloadPending) reload();
      return await done;
    } finally {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      process.off('SIGHUP', reload);
      process.off('uncaughtException', crash);
      process.off('unhandledRejection', crash);
    }
  },
};

/** Longest a clean stop may take before the process gives up and exits 1. */
const STOP_TIMEOUT_MS = 15_000;

function errFields(e: unknown): Record<string, unknown> {
  if (e instanceof SystemError) return { code: e.code, syscall: e.syscall, errno: e.errno };
  if (e instanceof VxmeshError) return { code: e.code };
  return { err: e instanceof Error ? e.stack : String(e) };
}
