/**
 * The ops extension of the agent: GET /metrics, /healthz and /readyz on the agent's ApiServer
 * (and GET /metrics alone on `api.metricsListen` when configured: a listener that can be exposed
 * to a Prometheus server without exposing status, members and the FDB),
 * backed by a `VxmeshMetrics` registry that reads the data path (and, when present, the gossip and
 * crypto extensions) at scrape time, plus the event-loop monitor behind /healthz and the watchdog.
 *
 * Gossip is the agent's typed `gossip` API (Agent.gossip); crypto, policy and probes are handed
 * over by cli/extensions.ts (`connect`, never found by name). Each is read through its
 * `metricsView()` when it offers one, else through the adapters over its public counters
 * (adapters.ts); their metric families stay empty when they are absent.
 */

import type { Agent, AgentExtension } from '../agent/agent';
import type { Config } from '../config/types';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { healthzHandler, readyzHandler, type CheckReport } from '../api/health';
import { ApiServer } from '../api/server';
import { SystemError } from '../errors';
import { metricsHandler } from '../api/metrics';
import { VxmeshMetrics } from './registry';
import { cryptoViewOf } from './adapters';
import { gossipJoined, serviceReady } from './readiness';
import type { LoopMonitorOptions } from './loop';
import type { CryptoMetricsView, DatapathMetricsView, GossipMetricsView, PolicyMetricsView } from './sources';
import type { ProbeMetricsView } from '../probe/metrics';
import type { CryptoExtension } from '../crypto/extension';

export interface OpsExtensionOptions {
  logger?: Logger;
  /** Version for vxmesh_info (default: package.json's). */
  version?: string;
  /** Event-loop monitor settings (window, stall threshold). */
  loop?: LoopMonitorOptions;
  /** prom-client default process metrics (default true). */
  defaultMetrics?: boolean;
}

const ROUTES = ['/metrics', '/healthz', '/readyz'] as const;

function packageVersion(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return (require('../../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** An extension that offers its metrics view (policy, probes). */
interface HasView<T> {
  metricsView(): T | null;
}

/** The extensions ops reads at scrape time, connected once by cli/extensions.ts. */
export interface OpsLinks {
  /** The crypto extension's session manager, read through adapters.ts `cryptoViewOf`. */
  crypto?: Pick<CryptoExtension, 'sessions'> | null;
  policy?: HasView<PolicyMetricsView> | null;
  probe?: HasView<ProbeMetricsView> | null;
}

export class OpsExtension implements AgentExtension {
  readonly name = 'ops';
  readonly metrics: VxmeshMetrics;
  private agent: Agent | null = null;
  private readonly logger: Logger;
  private readonly version: string;
  /** The /metrics-only listener (`api.metricsListen`), when configured. */
  metricsServer: ApiServer | null = null;
  private links: OpsLinks = {};

  constructor(opts: OpsExtensionOptions = {}) {
    this.logger = opts.logger ?? nullLogger;
    this.version = opts.version ?? packageVersion();
    this.metrics = new VxmeshMetrics({ loop: opts.loop, defaultMetrics: opts.defaultMetrics });
  }

  /** Typed connections made once by buildExtensions (cli/extensions.ts). */
  connect(links: OpsLinks): void {
    this.links = links;
  }

  start(agent: Agent): void | Promise<void> {
    this.agent = agent;
    // The Datapath satisfies the metrics view structurally (checked here by the compiler); read
    // through the agent so that a data path replaced later is still the one scraped.
    this.metrics.attachDatapath((): DatapathMetricsView | null => agent.datapath ?? null);
    const { crypto, policy, probe } = this.links;
    this.metrics.attachGossip((): GossipMetricsView | null => (agent.gossip ? agent.gossip.metricsView(() => gossipJoined(agent)) : null));
    this.metrics.attachCrypto((): CryptoMetricsView | null => (crypto ? cryptoViewOf(crypto) : null));
    this.metrics.attachPolicy((): PolicyMetricsView | null => policy?.metricsView() ?? null);
    this.metrics.attachProbe((): ProbeMetricsView | null => probe?.metricsView() ?? null);
    this.metrics.setReady(() => serviceReady(agent).ok);
    this.metrics.attachWatch(() => {
      const w = agent.watch;
      return w ? { peerViews: () => w.peerViews(), oversizedPorts: (vni: number) => w.oversizedPorts(vni), networkFailed: (vni: number) => agent.networkFailure(vni) !== null } : null;
    });
    this.metrics.setPeerNames((ep) => agent.nodeName(ep));
    this.metrics.setInfo({ version: this.version, node: agent.config.node.name });
    this.metrics.start();
    const api = agent.api;
    if (api) {
      api.route('GET', '/metrics', metricsHandler(this.metrics));
      api.route('GET', '/healthz', healthzHandler(() => this.liveness()));
      api.route('GET', '/readyz', readyzHandler(() => serviceReady(agent)));
    } else {
      this.logger.warn({}, 'no control API: /metrics, /healthz and /readyz are not served');
    }
    const ml = agent.config.api.metricsListen;
    if (ml) return this.listenMetrics(ml);
  }

  /** Opens the /metrics-only listener; a failure to bind fails the start (as api.listen does). */
  private async listenMetrics(at: { host: string; port: number }): Promise<void> {
    const srv = new ApiServer({ host: at.host, port: at.port, logger: this.logger, maxBodyBytes: 0, maxConnections: 16 });
    srv.route('GET', '/metrics', metricsHandler(this.metrics));
    const shown = at.host.includes(':') ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`;
    try {
      const a = await srv.listen();
      this.metricsServer = srv;
      this.logger.info({ listen: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}` }, 'metrics listener (GET /metrics only)');
    } catch (e) {
      // not started as far as the agent knows: undo our part (routes, monitor) here
      await this.stop();
      const err = e as NodeJS.ErrnoException;
      throw new SystemError('ERR_VXMESH_API_LISTEN', `cannot listen on api.metricsListen ${shown}: ${err.code ?? err.message}`, 'listen', err.code ?? 'EIO');
    }
  }

  async stop(): Promise<void> {
    const api = this.agent?.api;
    if (api) for (const p of ROUTES) api.unroute('GET', p);
    const srv = this.metricsServer;
    this.metricsServer = null;
    this.metrics.stop();
    this.agent = null;
    if (srv) await srv.close();
  }

  reload(config: Config): void {
    this.metrics.setInfo({ version: this.version, node: config.node.name });
  }

  /** /healthz: the process answers (we are running this) and the event loop is not stalled. */
  liveness(): CheckReport {
    const loop = this.metrics.loop.stalled();
    return {
      ok: !loop.stalled,
      checks: {
        process: true,
        eventLoop: !loop.stalled,
        eventLoopMaxDelayMs: Math.round(loop.maxDelayMs),
        stallThresholdMs: this.metrics.loop.stallMs,
      },
    };
  }

  /** Whether the data path is fit to be vouched for to the systemd watchdog. */
  datapathHealthy(): { ok: boolean; reason?: string } {
    const a = this.agent;
    if (!a) return { ok: false, reason: 'ops extension stopped' };
    if (!a.datapath?.isRunning) return { ok: false, reason: 'data path not running' };
    if (!a.udp) return { ok: false, reason: 'underlay UDP socket closed' };
    const loop = this.metrics.loop.stalled();
    if (loop.stalled) return { ok: false, reason: `event loop stalled (${Math.round(loop.maxDelayMs)} ms)` };
    return { ok: true };
  }

  status(): unknown {
    const s = this.metrics.loop.stats();
    const ml = this.metricsServer?.address() ?? null;
    return {
      eventLoopDelayMs: { p50: s.p50 * 1000, p99: s.p99 * 1000, max: s.max * 1000 },
      metricsListen: ml ? (ml.family === 'IPv6' ? `[${ml.address}]:${ml.port}` : `${ml.address}:${ml.port}`) : null,
    };
  }
}

/** The factory line for src/cli/extensions.ts. */
export function createOpsExtension(_config: Config, logger: Logger): OpsExtension {
  return new OpsExtension({ logger: logger.child({ component: 'ops' }) });
}
