/**
 * Runs a started Agent as a systemd service: the hook points `vxmesh agent` calls.
 *
 *   const service = new AgentService({ logger });
 *   const agent = await Agent.start(...);
 *   service.started(agent);                          // READY=1 once agent.ready() passes; watchdog on
 *   on SIGHUP:  await service.reload(() => agent.applyConfig(load()));   // RELOADING=1 … READY=1
 *   on SIGTERM: service.stopping(); await agent.stop();                  // STOPPING=1
 *
 * READY=1 is sent only when the service is ready (readiness.ts: `agent.ready()` — TAPs open, UDP
 * bound, config loaded, extensions ready; gossip join is shown but never waited for), checked at once
 * and then every `readyPollMs`. The
 * watchdog pings only while the data path is healthy (the ops extension's verdict: data path
 * running, UDP socket open, event loop not stalled). Reload results are counted in the ops
 * extension's metrics (`vxmesh_config_reloads_total`).
 */

import type { Agent } from '../agent/agent';
import type { Clock, TimerHandle } from '../clock';
import { systemClock } from '../clock';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { OpsExtension } from './extension';
import { SystemdNotifier } from './systemd';
import { serviceReady } from './readiness';

export interface AgentServiceOptions {
  notifier?: SystemdNotifier;
  logger?: Logger;
  clock?: Clock;
  /** How often readiness is re-checked until READY=1 is sent, ms (default 250). */
  readyPollMs?: number;
}

export class AgentService {
  readonly notifier: SystemdNotifier;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly readyPollMs: number;
  private agent: Agent | null = null;
  private poll: TimerHandle | null = null;
  private announced = false;
  private stopped = false;
  private waitingLogged = false;

  constructor(opts: AgentServiceOptions = {}) {
    this.logger = opts.logger ?? nullLogger;
    this.clock = opts.clock ?? systemClock;
    this.notifier = opts.notifier ?? new SystemdNotifier({ logger: this.logger, clock: this.clock });
    this.readyPollMs = opts.readyPollMs ?? 250;
  }

  /** Whether READY=1 has been sent (the agent was ready at least once). */
  get isAnnounced(): boolean {
    return this.announced;
  }

  /** Call once, right after Agent.start. Never blocks: readiness is awaited on a timer. */
  started(agent: Agent): void {
    this.agent = agent;
    this.notifier.startWatchdog(() => this.healthy());
    if (!this.checkReady()) this.poll = this.clock.setInterval(this.readyPollMs, () => this.checkReady());
  }

  /** Wraps a reload. `apply` resolves when the new config is in place, throws when it is refused. */
  async reload(apply: () => Promise<unknown> | unknown): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      await apply();
      return true;
    };
    let ok: boolean;
    if (this.announced && !this.stopped) {
      ok = await this.notifier.reload(run);
    } else {
      // Not announced yet (still starting): nothing to tell systemd; READY=1 comes from the poll.
      ok = await run().catch(() => false);
    }
    this.ops()?.metrics.recordReload(ok);
    return ok;
  }

  /** Shutdown has begun: STOPPING=1, watchdog and readiness poll off. */
  stopping(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.poll?.cancel();
    this.poll = null;
    this.notifier.stopping();
  }

  private ops(): OpsExtension | null {
    return (this.agent?.extensions.find((e) => e instanceof OpsExtension) as OpsExtension | undefined) ?? null;
  }

  private healthy(): { ok: boolean; reason?: string } {
    const ops = this.ops();
    if (ops) return ops.datapathHealthy();
    const a = this.agent;
    if (!a?.datapath?.isRunning) return { ok: false, reason: 'data path not running' };
    if (!a.udp) return { ok: false, reason: 'underlay UDP socket closed' };
    return { ok: true };
  }

  private checkReady(): boolean {
    if (this.stopped || this.announced || !this.agent) return true;
    const r = serviceReady(this.agent);
    if (!r.ok) {
      if (!this.waitingLogged) {
        this.waitingLogged = true;
        const failing = Object.entries(r.checks).filter(([, v]) => !v).map(([k]) => k);
        this.logger.info({ waitingFor: failing }, 'agent started, not ready yet: READY=1 deferred');
      }
      return false;
    }
    this.announced = true;
    this.poll?.cancel();
    this.poll = null;
    const nets = this.agent.config.networks.length;
    this.notifier.ready(`running: ${nets} network${nets === 1 ? '' : 's'}`);
    this.logger.info({ notify: this.notifier.enabled }, 'agent ready');
    return true;
  }
}
