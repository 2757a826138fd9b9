/**
 * The `endpoints` agent extension: IPAM + endpoint registry + anti-spoofing + the root-only
 * control socket (`api.socket`).
 *
 *   start: state store (config `stateDir`, else the agent's --state-dir) → IPAM (leases through gossip when the gossip extension runs,
 *          else static ranges) → bridges of `mode: bridge` networks (created if missing) →
 *          restore registered endpoints (state + kernel) → host endpoints (`hostEndpoint: true`)
 *          → control socket routes:
 *            GET  /v1/ready            {ready, checks} (the CNI plugin's "try again later")
 *            POST /v1/attach           AttachRequest → EndpointView
 *            POST /v1/detach           DetachRequest → EndpointView
 *            POST /v1/check            DetachRequest → EndpointView (400 when absent, 500 when its link is gone)
 *            POST /v1/gc               {network, valid: [{containerId, ifname}]} → {removed} (CNI GC)
 *            GET  /v1/endpoints        {endpoints: [...]} every endpoint in the cluster
 *            GET  /v1/ipam             IPAM status (blocks, allocations, counters)
 *          and GET /v1/endpoints on api.listen too (read-only).
 *   stop:  control socket closed; endpoints stay (they outlive the agent and are found again);
 *          a bridge this extension created is removed only when nothing is attached to it.
 * Errors answer `{error, code}` with 400 (bad input: the CLI exits 2), 409 (exhausted), 503
 * (not ready) or 500.
 */
import type * as http from 'node:http';
import type { Agent, AgentExtension } from '../agent/agent';
import { ControlSocket } from '../api/control-socket';
import { sendJson } from '../api/server';
import type { Config, NetworkConfig } from '../config/types';
import { EndpointError, VxmeshError, ERR_IPAM_EXHAUSTED } from '../errors';
import type { Logger } from '../log';
import { GossipLeaseChannel } from '../ipam/gossip-channel';
import { Ipam } from '../ipam/ipam';
import { DEFAULT_STATE_DIR, FileStateStore, StateStore } from '../ipam/state-store';
import { DEFAULT_SOCKET } from '../ipam/config';
import { NftSpoofGuard, SpoofGuard } from './antispoof';
import { GossipEndpointAnnouncer, GossipEndpointsApi } from './announce';
import { AttachRequest, DetachRequest, EndpointManager, modeOf } from './manager';
import { Registry } from './registry';
import { EndpointSystem, IprouteEndpointSystem } from './system';

export interface EndpointsExtensionOptions {
  store?: StateStore;
  system?: EndpointSystem;
  guard?: SpoofGuard;
  /** The gossip API (default: the agent's gossip extension, when it runs). */
  gossip?: GossipEndpointsApi | null;
  settleMs?: number;
  reclaimAfterMs?: number;
}

function statusOf(e: unknown): number {
  if (e instanceof EndpointError) return e.badInput ? 400 : e.code === ERR_IPAM_EXHAUSTED ? 409 : e.code === 'ERR_VXMESH_NOT_READY' ? 503 : 500;
  return 500;
}

export class EndpointsExtension implements AgentExtension {
  readonly name = 'endpoints';
  manager: EndpointManager | null = null;
  ipam: Ipam | null = null;
  socket: ControlSocket | null = null;
  private readonly log: Logger;
  private createdBridges: string[] = [];
  private system!: EndpointSystem;
  private guard!: SpoofGuard;
  private agent: Agent | null = null;
  /** Handed over by src/cli/extensions.ts (connect), never looked up by name. */
  private gossip: GossipEndpointsApi | null = null;

  constructor(private config: Config, logger: Logger, private readonly opts: EndpointsExtensionOptions = {}) {
    this.log = logger.child({ component: 'endpoints' });
  }

  /** Typed connections made once by buildExtensions: the gossip API when gossip runs. */
  connect(links: { gossip: GossipEndpointsApi | null }): void {
    this.gossip = links.gossip;
  }

  networks(): NetworkConfig[] {
    return [...this.config.networks, ...(this.config.localNetworks ?? [])];
  }

  async start(agent: Agent): Promise<void> {
    this.agent = agent;
    const c = this.config;
    const store = this.opts.store ?? new FileStateStore(c.stateDir ?? agent.state?.dir ?? DEFAULT_STATE_DIR);
    const gossip = this.opts.gossip !== undefined ? this.opts.gossip : this.gossip;
    const nets = this.networks();
    this.ipam = Ipam.open({
      node: c.node.name,
      networks: nets.filter((n) => n.ipam).map((n) => ({ name: n.name, ipam: n.ipam! })),
      store,
      channel: gossip ? new GossipLeaseChannel(gossip, agent.clock) : null,
      clock: agent.clock,
      settleMs: this.opts.settleMs,
      reclaimAfterMs: this.opts.reclaimAfterMs,
      logger: this.log,
    });
    this.system = this.opts.system ?? new IprouteEndpointSystem();
    this.guard = this.opts.guard ?? new NftSpoofGuard();
    for (const n of nets) {
      if (modeOf(n) === 'bridge' && (await this.system.ensureBridge(n.bridge, n.mtu))) {
        this.createdBridges.push(n.bridge);
        this.log.info({ network: n.name, bridge: n.bridge }, 'bridge created (mode bridge)');
      }
    }
    const registry = new Registry(store);
    const m = new EndpointManager({
      node: c.node.name, networks: nets, ipam: this.ipam, system: this.system, guard: this.guard, registry,
      announcer: gossip ? new GossipEndpointAnnouncer(gossip) : null, logger: this.log,
    });
    this.manager = m;
    const r = await m.restore();
    if (r.kept || r.forgotten) this.log.info(r, 'endpoints restored from state');
    for (const n of nets) {
      if (n.hostEndpoint && !m.lookup(n.name, { network: n.name, host: true })) {
        const v = await m.attach({ network: n.name, host: true });
        this.log.info({ network: n.name, ips: v.ips }, 'host endpoint attached');
      }
    }
    const sock = new ControlSocket(c.api.socket ?? DEFAULT_SOCKET, this.log);
    const api = sock.api;
    const handle = (fn: (body: unknown) => Promise<unknown>) => async (_req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
      let parsed: unknown = {};
      if (body.length) {
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          sendJson(res, 400, { error: 'request body is not JSON', code: 'ERR_VXMESH_BAD_REQUEST' });
          return;
        }
      }
      try {
        sendJson(res, 200, await fn(parsed));
      } catch (e) {
        const st = statusOf(e);
        if (st === 500) this.log.warn({ err: (e as Error).message }, 'control request failed');
        sendJson(res, st, { error: (e as Error).message, code: e instanceof VxmeshError ? e.code : 'ERR_VXMESH_INTERNAL' });
      }
    };
    api.route('GET', '/v1/ready', (_q, res) => {
      const rd = agent.ready();
      sendJson(res, rd.ok ? 200 : 503, { ready: rd.ok, checks: rd.checks, node: c.node.name });
    });
    const whenReady = () => {
      const rd = agent.ready();
      if (!rd.ok) throw new EndpointError('ERR_VXMESH_NOT_READY', `the agent is not ready (${Object.entries(rd.checks).filter(([, v]) => !v).map(([k]) => k).join(', ')})`, false);
    };
    api.route('POST', '/v1/attach', handle((b) => { whenReady(); return m.attach(requestOf<AttachRequest>(b)); }));
    api.route('POST', '/v1/detach', handle((b) => m.detach(requestOf<DetachRequest>(b))));
    api.route('POST', '/v1/check', handle(async (b) => {
      const q = requestOf<DetachRequest>(b);
      const e = m.lookup(m.network(q.network).name, q);
      if (!e) throw new EndpointError('ERR_VXMESH_ENDPOINT_NOT_FOUND', `no endpoint of network ${q.network} for this container`, true);
      if (!(await m.present(e))) throw new EndpointError('ERR_VXMESH_ENDPOINT_BROKEN', `endpoint ${e.name}: its interface ${e.ifname} is gone`, false);
      return m.view(e);
    }));
    api.route('POST', '/v1/gc', handle(async (b) => {
      const q = requestOf<{ network: string; valid?: { containerId: string; ifname: string }[] }>(b);
      m.network(q.network);
      return { removed: await m.gc(q.network, Array.isArray(q.valid) ? q.valid : []) };
    }));
    api.route('GET', '/v1/endpoints', handle(async () => ({ endpoints: await m.list() })));
    api.route('GET', '/v1/ipam', handle(async () => this.ipam!.status()));
    await sock.listen();
    this.socket = sock;
    agent.api?.route('GET', '/v1/endpoints', (_q, res) => {
      m.list().then((l) => sendJson(res, 200, { endpoints: l }), (e) => sendJson(res, 500, { error: (e as Error).message }));
    });
    this.log.info({ socket: sock.socketPath, endpoints: m.local().length }, 'control socket listening');
  }

  async stop(): Promise<void> {
    await this.socket?.close();
    this.socket = null;
    this.agent?.api?.unroute('GET', '/v1/endpoints');
    const left = this.manager?.local() ?? [];
    for (const b of this.createdBridges) {
      const users = left.filter((e) => this.networks().find((n) => n.name === e.network)?.bridge === b);
      if (users.length === 0) {
        try {
          await this.system.deleteLink(null, b);
        } catch { /* best effort */ }
      }
    }
    this.createdBridges = [];
    if (left.filter((e) => e.kind === 'veth').length === 0 && this.guard) await this.guard.clear().catch(() => undefined);
  }

  status(): unknown {
    return {
      socket: this.socket?.socketPath ?? null,
      endpoints: this.manager?.local().length ?? 0,
      stats: this.manager?.stats,
      ipam: this.ipam?.status(),
    };
  }

  ready(): boolean {
    return this.socket !== null;
  }

  /**
   * Applies a reload's network changes that are safe in place (config/diff.ts refuses the others:
   * IPAM, mode, parent): new networks attachable (a `mode: bridge` one gets its bridge), a changed
   * MTU set on every endpoint this host attached (both ends) and on bridges this extension
   * created, `hostEndpoint` turned on attaches the host endpoint. Throws naming what failed.
   */
  async reload(config: Config): Promise<void> {
    const old = new Map(this.networks().map((n) => [n.name, n]));
    this.config = config;
    const m = this.manager;
    if (!m) return;
    const failed: string[] = [];
    for (const n of this.networks()) {
      const o = old.get(n.name);
      try {
        if (modeOf(n) === 'bridge' && !o && (await this.system.ensureBridge(n.bridge, n.mtu))) {
          this.createdBridges.push(n.bridge);
          this.log.info({ network: n.name, bridge: n.bridge }, 'bridge created (mode bridge)');
        } else if (o && o.mtu !== n.mtu && this.createdBridges.includes(n.bridge)) {
          await this.system.setMtu(null, n.bridge, n.mtu);
        }
      } catch (e) {
        failed.push(`bridge ${n.bridge}: ${(e as Error).message}`);
      }
    }
    this.ipam?.setNetworks(this.networks().filter((n) => n.ipam).map((n) => ({ name: n.name, ipam: n.ipam! }))); // networks added/removed (reload, runtime networks)
    const r = await m.reconfigure(this.networks());
    for (const s of r.mtuSet) {
      this.log.info({ network: s.network, mtu: s.mtu, interfaces: s.interfaces }, `network ${s.network}: MTU ${s.mtu} set on ${s.interfaces.length} endpoint interfaces this host attached`);
    }
    failed.push(...r.failed);
    for (const n of this.networks()) {
      if (!n.hostEndpoint || old.get(n.name)?.hostEndpoint || m.lookup(n.name, { network: n.name, host: true })) continue;
      try {
        const v = await m.attach({ network: n.name, host: true });
        this.log.info({ network: n.name, ips: v.ips }, 'host endpoint attached');
      } catch (e) {
        failed.push(`host endpoint of ${n.name}: ${(e as Error).message}`);
      }
    }
    if (failed.length) throw new Error(failed.join('; '));
  }
}

function requestOf<T>(b: unknown): T {
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new EndpointError('ERR_VXMESH_BAD_REQUEST', 'request body must be a JSON object', true);
  const o = b as Record<string, unknown>;
  if (typeof o.network !== 'string') throw new EndpointError('ERR_VXMESH_BAD_REQUEST', 'network is required', true);
  for (const k of ['netns', 'netnsVia', 'ifname', 'mac', 'name', 'containerId']) {
    if (o[k] !== undefined && typeof o[k] !== 'string') throw new EndpointError('ERR_VXMESH_BAD_REQUEST', `${k} must be a string`, true);
  }
  if (o.ip !== undefined && (!Array.isArray(o.ip) || !o.ip.every((x) => typeof x === 'string'))) throw new EndpointError('ERR_VXMESH_BAD_REQUEST', 'ip must be a list of strings', true);
  if (o.labels !== undefined && (typeof o.labels !== 'object' || o.labels === null || Array.isArray(o.labels))) throw new EndpointError('ERR_VXMESH_BAD_REQUEST', 'labels must be an object', true);
  return o as unknown as T;
}

/**
 * Factory for src/cli/extensions.ts: on when a network has a `subnet`, a non-overlay `mode` or
 * `hostEndpoint`, or when `api.socket` or `stateDir` is set to something other than the default
 * (so agents without endpoints never claim the default socket or write state).
 */
export function createEndpointsExtension(config: Config, logger: Logger): AgentExtension | null {
  const nets = [...config.networks, ...(config.localNetworks ?? [])];
  const wanted = nets.some((n) => n.ipam || (n.mode && n.mode !== 'overlay') || n.hostEndpoint)
    || (config.api.socket !== undefined && config.api.socket !== DEFAULT_SOCKET)
    || (config.stateDir !== undefined && config.stateDir !== DEFAULT_STATE_DIR)
    || config.docker?.enabled === true; // the Docker driver (src/runtimes/docker) works through endpoints
  return wanted ? new EndpointsExtension(config, logger) : null;
}
