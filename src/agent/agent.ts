/**
 * The vxmesh agent: owns the system resources of one host and wires the data path to them.
 *
 * Start, in order (each step undone in reverse if a later one fails):
 *   1. per network: bridge, TAP, MTUs, enslave, up (netsetup.ts);
 *   2. the underlay UDP transport (receive socket on the VXLAN port + source sockets);
 *   3. the Datapath over those seams;
 *   4. the control API (GET /v1/status built in, status.ts);
 *   5. extensions (gossip, metrics, health, crypto), in the order given.
 * `stop()` undoes what start did, in reverse: a TAP we created vanishes when closed; a persistent
 * TAP we attached is taken off the bridge and left; a bridge that existed is left in place (brought
 * down again only if it was down and we brought it up). A bridge vxmesh created stays, up and with
 * its container ports, across stop and start (clean or after a crash): the state file (state.ts,
 * `stateDir`) remembers it is ours, and it is deleted only by `vxmesh cleanup` or when its network
 * is removed from the config (on reload, or found at start).
 *
 * `applyConfig()` (SIGHUP, reload.ts) applies network add/remove/change, static peers, log level
 * and gossip seeds/keyring live; other changes are refused with reasons (see config/diff.ts).
 *
 * All system calls go through `AgentSystem` (system.ts; default: the addon), so the lifecycle can
 * also run over in-memory devices.
 */

import { AsyncLocalStorage } from 'node:async_hooks';
import type { Clock } from '../clock';
import { systemClock } from '../clock';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import type { Config, Endpoint } from '../config/types';
import { effectiveBusyPollUs } from '../config/load';
import { SystemError, VxmeshError } from '../errors';
import type { UdpTransport } from '../dataplane/seams';
import type { GossipApi } from '../gossip/api';
import { Datapath } from '../dataplane/datapath';
import { ApiServer, sendJson } from '../api/server';
import { nativeSystem, type AgentSystem } from './system';
import { deleteBridge, setupNetwork, teardownNetwork, type NetworkState } from './netsetup';
import { StateStore } from './state';
import { buildStatus, epText, fdbJson } from './status';
import { AgentWatch, type WatchOptions } from './watch';
import { serviceReady } from '../metrics/readiness';
import type { TimerHandle } from '../clock';
import { ConfigError } from '../errors';
import { applyReload, type ReloadResult } from './reload';

export type { AgentSystem, OpenedTap } from './system';
export { nativeSystem } from './system';
export type { ReloadResult } from './reload';

/** What a reload applies, computed in its turn (Agent.applyConfig). */
export interface ReloadPlan {
  config: Config;
  /** Run once the reload passed the refusal check, before anything changes; a throw refuses it. */
  commit?(): void;
}

/** A ready report with the names of its failing checks (what status and /readyz print). */
export function withFailing(r: ReadyReport & { degraded?: string[] }): ReadyReport & { failing: string[] } {
  const degraded = r.degraded ?? []; // shown, but not holding readiness back (gossip join)
  return { ...r, failing: Object.entries(r.checks).filter(([k, v]) => !v && !degraded.includes(k)).map(([k]) => k) };
}

/** A plug-in started after the data path (gossip, metrics, health, crypto). */
export interface AgentExtension {
  readonly name: string;
  start(agent: Agent): Promise<void> | void;
  stop(): Promise<void> | void;
  /** JSON-able; appears as `status().extensions[name]`. */
  status?(): unknown;
  /** Contributes `ext:<name>` to `ready().checks`. */
  ready?(): boolean;
  /** Called on a reload the agent accepted, after the agent applied its part. */
  reload?(config: Config): Promise<void> | void;
}

export interface AgentOptions {
  logger?: Logger;
  clock?: Clock;
  extensions?: AgentExtension[];
  /** System calls; default: the addon (netdev.ts, native-io.ts). */
  system?: AgentSystem;
  /** Start the control API on config.api.listen (default true). */
  api?: boolean;
  /**
   * Directory of the state file that remembers which bridges vxmesh created (see state.ts); the
   * CLI's default is /var/lib/vxmesh. null or absent: remembered in memory only (this process).
   */
  stateDir?: string | null;
  /** Peer liveness and drop-summary settings of the control-plane watch (watch.ts). */
  watch?: WatchOptions;
  /**
   * The gossip extension's API when gossip runs (the CLI hands it over, cli/extensions.ts
   * `gossipApiOf`): the `gossipJoined` readiness check (metrics/readiness.ts), gossip metrics and
   * the member names of peers (`nodeName`) read it. null or absent: no gossip.
   */
  gossip?: GossipApi | null;
}

/** The last reload's outcome (status `reload`, `vxmesh reload`). */
export interface ReloadRecord {
  /** Reloads handled so far (0: none yet). */
  generation: number;
  result: 'none' | 'ok' | 'invalid' | 'refused' | 'partial';
  message: string | null;
  at: string | null;
}

export interface ReadyReport {
  ok: boolean;
  checks: Record<string, boolean>;
}

export class Agent {
  config: Config;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly extensions: AgentExtension[];
  readonly system: AgentSystem;
  /** The gossip extension's API (AgentOptions.gossip), or null without gossip. */
  readonly gossip: GossipApi | null;
  datapath!: Datapath;
  api: ApiServer | null = null;
  udp: UdpTransport | null = null;
  private readonly nets = new Map<number, NetworkState>();
  private startedAt = 0;
  private running = false;
  private stopping: Promise<void> | null = null;
  private startedExtensions: AgentExtension[] = [];
  /** True once every extension's start has completed (the API answers before that). */
  private extensionsStarted = false;
  /** Serializes network changes (reloads, runtime networks, Docker requests) and stop: exclusive(). */
  private queue: Promise<unknown> = Promise.resolve();
  /** The turn of the exclusive() section running (what makes it re-entrant). */
  private readonly turns = new AsyncLocalStorage<{ active: boolean }>();
  readonly state: StateStore;
  /** Bridges vxmesh owns: from the state file, then those of the networks in place. */
  private owned = new Set<string>();
  /** Peer liveness, drop summaries, bridge port MTUs (control plane, 1 s). */
  watch: AgentWatch | null = null;
  private watchTimer: TimerHandle | null = null;
  private readonly watchOpts: WatchOptions;
  private names: { at: number; map: Map<string, string> } | null = null;
  /** Networks whose TAP failed or vanished, with the recovery schedule (checkNetworks). */
  private readonly failures = new Map<number, { reason: string; since: number; attempts: number; nextAt: number; lastError: string | null }>();
  private reloadRec: ReloadRecord = { generation: 0, result: 'none', message: null, at: null };

  private constructor(config: Config, opts: AgentOptions) {
    this.config = config;
    this.logger = opts.logger ?? nullLogger;
    this.clock = opts.clock ?? systemClock;
    this.extensions = opts.extensions ?? [];
    this.system = opts.system ?? nativeSystem();
    this.gossip = opts.gossip ?? null;
    this.state = new StateStore(opts.stateDir ?? null);
    this.watchOpts = opts.watch ?? {};
  }

  /** Sets everything up (see the file comment); on failure undoes what was done and rethrows. */
  static async start(config: Config, opts: AgentOptions = {}): Promise<Agent> {
    const agent = new Agent(config, opts);
    try {
      await agent.startAll(opts.api !== false);
    } catch (e) {
      await agent.teardown(true).catch((e2) => agent.logger.error({ err: (e2 as Error).message }, 'cleanup after failed start failed'));
      throw e;
    }
    return agent;
  }

  private async startAll(withApi: boolean): Promise<void> {
    const c = this.config;
    this.startedAt = this.clock.now();
    const prior = this.state.load(); // a corrupt file stops the start here (ERR_VXMESH_STATE)
    for (const b of prior.bridges) this.owned.add(b.name);
    // Bridges of networks no longer configured go with their network.
    const wanted = new Set(c.networks.map((n) => n.bridge));
    for (const b of prior.bridges) {
      if (wanted.has(b.name)) continue;
      this.owned.delete(b.name);
      if (this.system.linkExists(b.name)) {
        this.logger.info({ bridge: b.name, network: b.network, vni: b.vni }, 'network no longer in the config: deleting the bridge vxmesh created for it');
        deleteBridge(this.system, b.name, this.logger);
      }
    }
    for (const net of c.networks) {
      this.nets.set(net.vni, setupNetwork(this.system, c, net, this.logger, this.owned));
      this.saveState(); // a bridge created is recorded at once: a crash right after still knows it
    }
    this.saveState();

    const u = c.underlay;
    const gro = u.offload !== false;
    this.udp = this.system.openUdp({ address: u.address, port: u.port, family: u.family, sourcePorts: u.sourcePorts, ...(gro ? { gro } : {}) });
    this.logger.info({ address: u.address, port: u.port, sourcePorts: u.sourcePorts, offload: gro }, 'underlay UDP bound');

    this.datapath = new Datapath({
      config: c,
      udp: this.udp,
      networks: [...this.nets.values()].map((s) => ({ config: s.config, tap: s.tap })),
      logger: this.logger.child({ component: 'datapath' }),
      clock: this.clock,
      tapThreads: u.tapThreads === true && u.offload !== false,
      busyPollUs: effectiveBusyPollUs(u),
    });
    this.datapath.start();
    this.running = true;
    for (const n of c.networks) {
      this.logger.info({ network: n.name, vni: n.vni, bridge: n.bridge, mtu: n.mtu, encrypted: n.encrypted },
        `network ${n.name}: containers on ${n.bridge} need MTU ${n.mtu} or less on their interfaces`);
    }
    const watch = new AgentWatch({
      clock: this.clock,
      logger: this.logger.child({ component: 'watch' }),
      system: this.system,
      datapath: () => (this.running ? this.datapath : null),
      networks: () => [...this.nets.values()],
      nodeName: (ep) => this.nodeName(ep),
    }, this.watchOpts);
    this.watch = watch;
    this.watchTimer = this.clock.setInterval(1000, () => {
      watch.tick();
      this.checkNetworks();
    });

    if (withApi) {
      this.api = new ApiServer({ host: c.api.listen.host, port: c.api.listen.port, logger: this.logger.child({ component: 'api' }) });
      this.api.route('GET', '/v1/status', (_req, res) => sendJson(res, 200, this.status()));
      // Served from the data path; the gossip extension replaces both with its own when it runs.
      this.api.route('GET', '/v1/fdb', (_req, res) => sendJson(res, 200, { networks: this.running ? fdbJson(this.datapath) : [] }));
      this.api.route('GET', '/v1/members', (_req, res) => sendJson(res, 200, { gossip: 'off', members: [] }));
      try {
        const a = await this.api.listen();
        this.logger.info({ listen: epText({ address: a.address, port: a.port }) }, 'control API listening');
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        throw new SystemError('ERR_VXMESH_API_LISTEN', `cannot listen on api.listen ${epText({ address: c.api.listen.host, port: c.api.listen.port })}: ${err.code ?? err.message}`, 'listen', err.code ?? 'EIO');
      }
    }

    for (const ext of this.extensions) {
      await ext.start(this);
      this.startedExtensions.push(ext);
      this.logger.debug({ extension: ext.name }, 'extension started');
    }
    this.extensionsStarted = true;
    this.logger.info({ networks: c.networks.map((n) => n.name), peers: c.peers.length }, 'agent started');
  }

  /** Stops extensions, API, data path, UDP, then every network; idempotent. */
  stop(): Promise<void> {
    if (!this.stopping) {
      const p = this.queue.catch(() => undefined).then(() => this.teardown());
      this.queue = p;
      this.stopping = p;
    }
    return this.stopping;
  }

  /** `failedStart`: also delete the bridges this start created (nothing is attached to them yet). */
  private async teardown(failedStart = false): Promise<void> {
    for (const ext of [...this.startedExtensions].reverse()) {
      try {
        await ext.stop();
      } catch (e) {
        this.logger.warn({ extension: ext.name, err: (e as Error).message }, 'extension stop failed');
      }
    }
    this.startedExtensions = [];
    this.extensionsStarted = false;
    this.watchTimer?.cancel();
    this.watchTimer = null;
    this.failures.clear();
    if (this.api) {
      await this.api.close();
      this.api = null;
    }
    if (this.running) {
      try {
        this.datapath.stop();
      } catch (e) {
        this.logger.warn({ err: (e as Error).message }, 'datapath stop failed');
      }
      this.running = false;
    }
    if (this.udp) {
      try {
        this.udp.close();
      } catch (e) {
        this.logger.warn({ err: (e as Error).message }, 'UDP close failed');
      }
      this.udp = null;
    }
    let forgot = false;
    for (const s of [...this.nets.values()].reverse()) {
      const del = failedStart && s.bridgeNew;
      teardownNetwork(this.system, s, this.logger, { deleteBridge: del });
      if (del) {
        this.nets.delete(s.config.vni);
        this.owned.delete(s.config.bridge);
        forgot = true;
      }
    }
    if (forgot) {
      try {
        this.saveState();
      } catch (e) {
        this.logger.warn({ err: (e as Error).message }, 'cleanup: state file not updated');
      }
    }
    this.nets.clear();
    this.logger.info({}, 'agent stopped');
  }

  /** Is the agent serving: every TAP open, UDP bound, data path running, API up, extensions ready. */
  ready(): ReadyReport {
    const checks: Record<string, boolean> = {
      config: true,
      taps: this.running && this.config.networks.every((n) => this.nets.has(n.vni)),
      udp: this.udp !== null,
      datapath: this.running,
    };
    if (this.api) checks.api = this.api.address() !== null;
    // The API answers while extensions are still starting (e.g. the endpoints extension restoring
    // endpoints, its control socket not yet listening): not ready until every one has started.
    checks.extensions = this.extensionsStarted;
    // one named check per network: false while its TAP is failed (being re-created)
    for (const s of this.nets.values()) checks[`network:${s.config.name}`] = !this.failures.has(s.config.vni);
    for (const ext of this.startedExtensions) if (ext.ready) checks[`ext:${ext.name}`] = ext.ready();
    return { ok: Object.values(checks).every(Boolean), checks };
  }

  /** Everything an operator wants to see, JSON-able (served at GET /v1/status; see status.ts). */
  status(): Record<string, unknown> {
    return buildStatus({
      config: this.config,
      running: this.running,
      datapath: this.running ? this.datapath : undefined,
      networks: this.nets.values(),
      uptimeSeconds: Math.round((this.clock.now() - this.startedAt) / 1000),
      ready: withFailing(serviceReady(this)),
      reload: this.reloadRec,
      watch: this.watch,
      networkFailure: (vni) => this.networkFailure(vni),
      extensions: this.startedExtensions,
    });
  }

  /**
   * Applies a new validated config (SIGHUP). Refuses (ConfigError listing the reasons, nothing
   * changed) when something that cannot change live changed. Unchanged networks are not touched.
   * `next` may be a function giving the plan in the agent's turn (inside the network-change queue,
   * so it sees every network change before it): the config, and `commit` — run once the reload
   * passed the refusal check, before anything changes (runtime-networks.ts saves its state there;
   * a throw refuses the reload). A ConfigError from the plan refuses the reload too.
   */
  applyConfig(next: Config | (() => ReloadPlan)): Promise<ReloadResult> {
    return this.exclusive(async () => {
      try {
        const plan = typeof next === 'function' ? next() : { config: next };
        const r = await this.apply(plan.config, plan.commit);
        this.noteReload('ok', null);
        return r;
      } catch (e) {
        this.noteReload(e instanceof ConfigError ? 'refused' : 'partial', (e as Error).message);
        throw e;
      }
    });
  }

  /**
   * Applies a config that differs from the running one only in its networks, the way a reload
   * adds or removes one (runtime networks, runtime-networks.ts); serialized with reloads, not
   * recorded as one. Build `next` from `agent.config` inside `exclusive()`, or it may undo a
   * reload queued before it.
   */
  changeNetworks(next: Config): Promise<ReloadResult> {
    return this.exclusive(() => this.apply(next));
  }

  /**
   * Runs `fn` alone among the agent's network changes: SIGHUP reloads, runtime network creates
   * and removes, Docker requests (src/runtimes/docker) and stop all take their turn in one queue,
   * so none works on a config another is replacing. Re-entrant: applyConfig, changeNetworks or
   * exclusive called from inside `fn` (while it runs) run at once instead of waiting for `fn`.
   * After stop() a turn is refused (ERR_VXMESH_NOT_RUNNING).
   */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const turn = this.turns.getStore();
    if (turn?.active) return Promise.resolve().then(fn);
    const run = this.queue.catch(() => undefined).then(() => {
      if (this.stopping) throw new VxmeshError('ERR_VXMESH_NOT_RUNNING', 'the vxmesh agent is stopping');
      const mine = { active: true };
      return this.turns.run(mine, async () => {
        try {
          return await fn();
        } finally {
          mine.active = false;
        }
      });
    });
    this.queue = run;
    return run;
  }

  /**
   * Records a reload's outcome (status `reload`). applyConfig records its own; the CLI records
   * `invalid` when the new file does not load.
   */
  noteReload(result: ReloadRecord['result'], message: string | null): void {
    this.reloadRec = { generation: this.reloadRec.generation + 1, result, message, at: new Date().toISOString() };
  }

  get lastReload(): ReloadRecord {
    return this.reloadRec;
  }

  /**
   * The gossip member name of an underlay endpoint ("addr:port"), when gossip runs and knows it.
   * The endpoint → name map is rebuilt at most once a second (status and scrapes ask per peer).
   */
  nodeName(endpoint: string): string | null {
    const now = this.clock.now();
    if (!this.names || now - this.names.at >= 1000) {
      const map = new Map<string, string>();
      const g = this.gossip;
      if (g && this.running) {
        try {
          for (const m of g.memberInfos()) map.set(m.record.underlay, m.name);
        } catch {
          // gossip stopping: no names this round
        }
      }
      this.names = { at: now, map };
    }
    return this.names.map.get(endpoint) ?? null;
  }

  private async apply(next: Config, commit?: () => void): Promise<ReloadResult> {
    if (this.stopping || !this.running) throw new VxmeshError('ERR_VXMESH_NOT_RUNNING', 'agent is not running');
    const agent = this;
    const target = {
      get config() { return agent.config; },
      set config(c: Config) { agent.config = c; },
      system: this.system,
      logger: this.logger,
      datapath: this.datapath,
      nets: this.nets,
      extensions: this.startedExtensions,
      ownedBridges: () => this.owned,
      saveState: () => this.saveState(),
    };
    return applyReload(target, next, commit);
  }

  /**
   * Records the bridges vxmesh owns: those of the networks in place (created now or reused), plus
   * owned ones not in use yet whose network is still configured (a start that failed part-way).
   */
  private saveState(): void {
    const bridges = new Map<string, { name: string; network: string; vni: number }>();
    for (const s of this.nets.values()) if (s.bridgeCreated) bridges.set(s.config.bridge, { name: s.config.bridge, network: s.config.name, vni: s.config.vni });
    for (const n of this.config.networks) {
      if (this.owned.has(n.bridge) && !bridges.has(n.bridge) && this.system.linkExists(n.bridge)) bridges.set(n.bridge, { name: n.bridge, network: n.name, vni: n.vni });
    }
    this.owned = new Set(bridges.keys());
    this.state.save({ version: 1, pid: process.pid, bridges: [...bridges.values()] });
  }

  /** A network's failure (its TAP failed or was deleted; being re-created), or null while it works. */
  networkFailure(vni: number): { reason: string; since: number; attempts: number; nextInMs: number; lastError: string | null } | null {
    const f = this.failures.get(vni);
    return f ? { reason: f.reason, since: f.since, attempts: f.attempts, nextInMs: Math.max(0, f.nextAt - this.clock.now()), lastError: f.lastError } : null;
  }

  /**
   * Once a second: a network whose TAP the data path marked failed, or whose TAP vanished (deleted
   * under the running agent), is failed (a named readiness check, status, vxmesh_network_failed)
   * and recovered — the TAP re-created, enslaved and put under the data path (replaceTap: FDB and
   * counters kept) — with backoff: 1 s, 2 s, 4 s … 30 s between attempts.
   */
  private checkNetworks(): void {
    if (!this.running || this.stopping) return;
    const now = this.clock.now();
    for (const s of [...this.nets.values()]) {
      const vni = s.config.vni;
      const dpFail = this.datapath.network(vni)?.failed ?? null;
      let f = this.failures.get(vni);
      if (!f) {
        let reason: string | null = null;
        if (dpFail) reason = dpFail.reason;
        else if (!this.system.linkExists(s.config.tap)) reason = `TAP ${s.config.tap} was deleted`;
        if (reason === null) continue;
        f = { reason, since: now, attempts: 0, nextAt: now, lastError: null };
        this.failures.set(vni, f);
        this.logger.error({ network: s.config.name, vni, tap: s.config.tap, reason }, `network ${s.config.name} failed: ${reason}; re-creating its TAP`);
      }
      if (now < f.nextAt) continue;
      f.attempts++;
      try {
        this.recoverNetwork(s);
        this.failures.delete(vni);
        this.logger.info({ network: s.config.name, vni, tap: s.config.tap, attempts: f.attempts, downMs: now - f.since }, `network ${s.config.name} recovered: TAP ${s.config.tap} re-created`);
      } catch (e) {
        f.lastError = (e as Error).message;
        const wait = Math.min(30_000, 1000 * 2 ** Math.min(f.attempts - 1, 5));
        f.nextAt = now + wait;
        this.logger.warn({ network: s.config.name, vni, attempt: f.attempts, retryInMs: wait, err: f.lastError }, `network ${s.config.name}: re-creating TAP ${s.config.tap} failed`);
      }
    }
  }

  /** Closes the failed TAP, sets the network up again (same bridge), and hands the new TAP to the data path. */
  private recoverNetwork(s: NetworkState): void {
    try {
      s.tap.close();
    } catch {
      // already unusable
    }
    const fresh = setupNetwork(this.system, this.config, s.config, this.logger, this.owned);
    try {
      this.datapath.replaceTap(s.config.vni, fresh.tap);
    } catch (e) {
      teardownNetwork(this.system, fresh, this.logger);
      throw e;
    }
    // what stop undoes: the original bridge facts, the new TAP
    this.nets.set(s.config.vni, { ...fresh, bridgeCreated: s.bridgeCreated || fresh.bridgeCreated, bridgeRaised: s.bridgeRaised || fresh.bridgeRaised, portAdded: s.portAdded || fresh.portAdded });
  }

  /** The configured static peers (for extensions). */
  staticPeers(): Endpoint[] {
    return this.config.peers;
  }
}
