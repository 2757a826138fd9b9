/**
 * The policy extension of the agent: keeps the policy store (store.ts), compiles each overlay
 * network's policies against its endpoints (compile.ts) whenever either changes, hands each network's
 * enforcer (enforcer.ts) to the data path, spreads policies by gossip, and serves the API:
 *
 *   GET  /v1/policies                      every policy with its version (`vxmesh policy list`)
 *   GET  /v1/policy?name=N                 one policy's document (`vxmesh policy get`)
 *   GET  /v1/policy/denials[?network=N]    the denial rings (`vxmesh policy denials`)
 *   GET  /v1/policy/trace?network=&from=&to=&port=&protocol=   (`vxmesh policy trace`)
 *   POST /v1/policies {document: TEXT}     apply  — control socket only (root)
 *   DELETE /v1/policy?name=N               delete — control socket only (root)
 *
 * Endpoints come from an `PolicyEndpointSource` (the endpoints extension: every host's endpoints
 * with labels, from gossip), policies from peers through a `PolicySyncChannel` (a gossip record
 * section); both are handed over at start (cli/extensions.ts). Without gossip each agent keeps the
 * policies applied to it.
 */
import type * as http from 'node:http';
import type { Agent, AgentExtension } from '../agent/agent';
import type { Clock } from '../clock';
import type { Config, NetworkConfig } from '../config/types';
import { ConfigError } from '../errors';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { sendError, sendJson, type Handler } from '../api/server';
import type { PolicyMetricsView } from '../metrics/sources';
import { ipBytes } from '../ipam/cidr';
import { CompiledPolicy } from './compile';
import { PolicyDocumentError, parsePolicyText, PROTOCOL_NUMBER, type Protocol } from './document';
import {
  PC_ALLOWED_NEW, PC_ALLOWED_TRACKED, PC_AUDIT_EGRESS, PC_AUDIT_INGRESS, PC_DENIED_EGRESS, PC_DENIED_INGRESS, PC_NON_IP,
  PC_DENIED_CACHED, PC_HAIRPIN, PC_HAIRPIN_FAILED, PC_RELATED, PC_REVOKED, PC_SPOOFED, PolicyEnforcer, type EnforcerOptions,
} from './enforcer';
import { ifindexOf, NftLocalPorts, type LocalNetwork, type LocalPortsDriver } from './local-ports';
import { loadAddon } from '../native/addon';
import type { PolicyEndpoint } from './semantics';
import { type PolicyEntryJson, PolicyStore } from './store';
import { trace } from './trace';

/** An endpoint of the cluster as the endpoints extension lists it. */
export interface PolicyEndpointRecord {
  host: string;
  /** The host's underlay address (canonical), the data path's name for the sender of a frame. */
  hostAddr?: string;
  network: string;
  name: string;
  mac: string;
  ips: string[];
  labels: Record<string, string>;
  /** This host's veth endpoints: the host-side port on the bridge (same-host enforcement). */
  port?: string;
}

/** Where endpoints come from (the endpoints extension). */
export interface PolicyEndpointSource {
  list(): PolicyEndpointRecord[];
  onChange(cb: () => void): () => void;
}

/** How policies travel between hosts (a gossip record section). */
export interface PolicySyncChannel {
  /**
   * Publishes this host's copy of the store (JSON text), or withdraws it. Returns false when it
   * cannot be spread (too large even compressed, gossip-sync.ts); void counts as spread.
   */
  publish(data: string | null): boolean | void;
  /** Every other live host's published copy. */
  received(): { node: string; data: string }[];
  onChange(cb: () => void): () => void;
}

/** A router to register routes on (ApiServer). */
export interface Router {
  route(method: string, path: string, handler: Handler): unknown;
  unroute(method: string, path: string): void;
}

/** The data path's side: one enforcer (or none) per network. */
export interface PolicyDatapath {
  setPolicyFilter(vni: number, filter: PolicyEnforcer | null): boolean;
}

export interface PolicyExtensionOptions {
  logger?: Logger;
  /** State directory (default: the agent's, `vxmesh agent --state-dir`); null: keep nothing on disk. */
  stateDir?: string | null;
  endpoints?: PolicyEndpointSource;
  sync?: PolicySyncChannel;
  /** Router for the write routes (the root-only control socket). */
  control?: Router;
  conntrackEntries?: number;
  seed?: number;
  /**
   * Same-host enforcement's kernel part (local-ports.ts); absent: off (frames between endpoints of
   * this host cross the bridge unchecked). The agent uses `NftLocalPorts`.
   */
  localPorts?: LocalPortsDriver;
  /** The super-frame cutter for same-host write backs (the addon's gsoSegment). */
  segment?: EnforcerOptions['segment'];
}

/** How often the same-host rules are compared with the kernel's devices (a re-created TAP or port). */
export const LOCAL_PORTS_CHECK_MS = 2000;

interface NetState {
  config: NetworkConfig;
  enforcer: PolicyEnforcer;
  version: number;
  attached: boolean;
}

export class PolicyExtension implements AgentExtension {
  readonly name = 'policy';
  store!: PolicyStore;
  private agent: Agent | null = null;
  private config: Config;
  private readonly log: Logger;
  private readonly nets = new Map<string, NetState>();
  private endpoints: PolicyEndpointSource | null;
  private sync: PolicySyncChannel | null;
  private control: Router | null;
  private readonly unsubscribe: (() => void)[] = [];
  private lastPublished = '';
  private syncTooLarge = false;
  /** The copy last merged from each host (unchanged copies are not parsed and merged again). */
  private readonly lastReceived = new Map<string, string>();
  // Same-host enforcement: what the kernel should have, what it was last given, the apply chain.
  private localWanted: LocalNetwork[] = [];
  private localApplied = '';
  private localChain: Promise<void> = Promise.resolve();
  private localError: string | null = null;
  /**
   * True until the first sync went through: that one is always given to the kernel, even when
   * nothing is wanted, so a table left by an agent that crashed (stop never ran) is replaced or
   * removed at start rather than redirecting frames to a TAP nobody reads.
   */
  private localFirst = true;
  private localTimer: { cancel(): void } | null = null;

  constructor(config: Config, private readonly opts: PolicyExtensionOptions = {}) {
    this.config = config;
    this.log = (opts.logger ?? nullLogger).child({ component: 'policy' });
    this.endpoints = opts.endpoints ?? null;
    this.sync = opts.sync ?? null;
    this.control = opts.control ?? null;
  }

  /** Hands over the endpoint source / sync channel / control router (cli/extensions.ts), before start. */
  connect(parts: { endpoints?: PolicyEndpointSource | null; sync?: PolicySyncChannel | null; control?: Router | null }): void {
    if (parts.endpoints !== undefined) this.endpoints = parts.endpoints;
    if (parts.sync !== undefined) this.sync = parts.sync;
    if (parts.control !== undefined) this.control = parts.control;
  }

  /** The agent's clock (valid from start). */
  get clock(): Clock {
    return this.agent!.clock;
  }

  start(agent: Agent): void {
    this.agent = agent;
    // The agent's state directory (`--state-dir`; none: policies are kept in memory only).
    const dir = this.opts.stateDir !== undefined ? this.opts.stateDir : agent.state.dir;
    this.store = new PolicyStore(this.config.node.name, dir === null ? null : PolicyStore.fileIn(dir));
    this.store.load();
    if (this.sync) {
      this.unsubscribe.push(this.sync.onChange(() => this.pull()));
      this.pull();
    }
    if (this.endpoints) this.unsubscribe.push(this.endpoints.onChange(() => this.recompile()));
    this.applyNetworks(this.config);
    this.publish();
    if (this.opts.localPorts) this.localTimer = agent.clock.setInterval(LOCAL_PORTS_CHECK_MS, () => this.syncLocalPorts());
    const api = agent.api;
    if (api) {
      api.route('GET', '/v1/policies', (_q, res) => sendJson(res, 200, { policies: this.list() }));
      api.route('GET', '/v1/policy', (req, res) => this.getPolicy(req, res));
      api.route('GET', '/v1/policy/denials', (req, res) => this.getDenials(req, res));
      api.route('GET', '/v1/policy/trace', (req, res) => this.getTrace(req, res));
    }
    const ctl = this.control;
    if (ctl) {
      for (const [p, h] of [['/v1/policies', this.listHandler()], ['/v1/policy', (q: http.IncomingMessage, r: http.ServerResponse) => this.getPolicy(q, r)],
        ['/v1/policy/denials', (q: http.IncomingMessage, r: http.ServerResponse) => this.getDenials(q, r)],
        ['/v1/policy/trace', (q: http.IncomingMessage, r: http.ServerResponse) => this.getTrace(q, r)]] as const) ctl.route('GET', p, h);
      ctl.route('POST', '/v1/policies', (_q, res, body) => this.postPolicy(res, body));
      ctl.route('DELETE', '/v1/policy', (req, res) => this.deletePolicy(req, res));
    }
  }

  private listHandler(): Handler {
    return (_q, res) => sendJson(res, 200, { policies: this.list() });
  }

  async stop(): Promise<void> {
    this.localTimer?.cancel();
    this.localTimer = null;
    for (const u of this.unsubscribe.splice(0)) u();
    // The same-host rules go first (frames would be sent to a TAP nobody reads), then the filters.
    if (this.opts.localPorts && this.localApplied !== '') {
      this.localWanted = [];
      await this.syncLocalPorts(true);
    }
    for (const s of this.nets.values()) if (s.attached) this.agent?.datapath?.setPolicyFilter(s.config.vni, null);
    this.nets.clear();
    const api = this.agent?.api;
    for (const p of ['/v1/policies', '/v1/policy', '/v1/policy/denials', '/v1/policy/trace']) api?.unroute('GET', p);
    this.control?.unroute('POST', '/v1/policies');
    this.control?.unroute('DELETE', '/v1/policy');
    for (const p of ['/v1/policies', '/v1/policy', '/v1/policy/denials', '/v1/policy/trace']) this.control?.unroute('GET', p);
  }

  reload(config: Config): void {
    this.config = config;
    this.applyNetworks(config);
  }

  // ---- policies --------------------------------------------------------------------------------

  /** Applies a document (YAML or JSON text). Throws PolicyDocumentError / ConfigError on bad input. */
  apply(text: string): { name: string; network: string; version: number } {
    const networks = this.config.networks.map((n) => n.name);
    const localNetworks = (this.config.localNetworks ?? []).map((n) => ({ name: n.name, mode: n.mode }));
    const { policy, doc } = parsePolicyText(text, { networks, localNetworks });
    const e = this.store.apply(policy, doc, Date.now());
    if (!this.publish()) {
      // Too large to spread: the policy is kept here only; say so (the caller sees a warning).
      this.log.warn({ policy: policy.name }, 'the policy set is too large to spread by gossip; other hosts keep their copy');
    }
    this.recompile();
    this.log.info({ policy: policy.name, network: policy.network, version: e.version.counter }, 'policy applied');
    return { name: policy.name, network: policy.network, version: e.version.counter };
  }

  delete(name: string): boolean {
    const ok = this.store.delete(name, Date.now());
    if (ok) {
      this.publish();
      this.recompile();
      this.log.info({ policy: name }, 'policy deleted');
    }
    return ok;
  }

  list(): { name: string; network: string; version: number; node: string; time: string; endpoints: unknown; policyTypes: string[] }[] {
    return this.store.list().map((e) => ({
      name: e.name, network: e.policy!.network, version: e.version.counter, node: e.version.node, time: new Date(e.version.time).toISOString(),
      endpoints: (e.doc as { endpoints?: unknown }).endpoints ?? {}, policyTypes: [...e.policy!.policyTypes],
    }));
  }

  /** Pulls the other hosts' copies; the newest version of each policy wins. */
  private pull(): void {
    if (!this.sync) return;
    let changed = 0;
    const seen = new Set<string>();
    for (const { node, data } of this.sync.received()) {
      seen.add(node);
      if (this.lastReceived.get(node) === data) continue;
      this.lastReceived.set(node, data);
      let list: unknown;
      try {
        list = JSON.parse(data);
      } catch {
        this.log.warn({ from: node }, 'ignoring an unreadable policy section');
        continue;
      }
      if (!Array.isArray(list)) continue;
      changed += this.store.merge(list as PolicyEntryJson[]);
    }
    for (const node of this.lastReceived.keys()) if (!seen.has(node)) this.lastReceived.delete(node);
    if (changed) {
      this.log.info({ changed }, 'policies updated from the cluster');
      this.publish();
      this.recompile();
    }
  }

  /** Publishes our copy; false when it is too large to spread. */
  private publish(): boolean {
    if (!this.sync) return true;
    const list = this.store.toJson();
    const data = JSON.stringify(list);
    if (data !== this.lastPublished) {
      this.lastPublished = data;
      this.syncTooLarge = this.sync.publish(list.length ? data : null) === false;
    }
    return !this.syncTooLarge;
  }

  // ---- networks and compilation ----------------------------------------------------------------

  private applyNetworks(config: Config): void {
    const seen = new Set<string>();
    for (const n of config.networks) {
      seen.add(n.name);
      let s = this.nets.get(n.name);
      if (!s) {
        s = { config: n, enforcer: new PolicyEnforcer({ clock: this.agent!.clock, conntrackEntries: this.opts.conntrackEntries, seed: this.opts.seed, segment: this.opts.segment }), version: 0, attached: false };
        this.nets.set(n.name, s);
      }
      s.config = n;
      s.enforcer.audit = n.policyMode === 'audit';
    }
    for (const [name, s] of this.nets) {
      if (seen.has(name)) continue;
      if (s.attached) this.agent?.datapath?.setPolicyFilter(s.config.vni, null);
      this.nets.delete(name);
    }
    this.recompile();
  }

  /** The endpoints of `network`, as policy sees them. */
  endpointsOf(network: string): PolicyEndpoint[] {
    const out: PolicyEndpoint[] = [];
    for (const e of this.endpoints?.list() ?? []) {
      if (e.network !== network) continue;
      const ips = e.ips.map((x) => ipBytes(x)).filter((x): x is Uint8Array => x !== null);
      out.push({ name: e.name, labels: e.labels, ips, host: e.host, hostAddr: e.hostAddr, mac: e.mac, port: e.port });
    }
    return out;
  }

  /** Recompiles every network (control plane: policy, endpoint or config change). */
  recompile(): void {
    const dp = this.agent?.datapath;
    const local: LocalNetwork[] = [];
    const node = this.config.node.name;
    for (const s of this.nets.values()) {
      const policies = this.store.forNetwork(s.config.name);
      const defaultDeny = s.config.defaultPolicy === 'deny';
      const want = policies.length > 0 || defaultDeny;
      let cp: CompiledPolicy | null = null;
      if (want) {
        s.version++;
        cp = new CompiledPolicy({ policies, defaultDeny }, this.endpointsOf(s.config.name), { version: s.version, seed: this.opts.seed });
      }
      // Same-host enforcement where something is isolated (audit too: it must see the frames). The
      // data path learns the local endpoints first; the port rules follow (syncLocalPorts), so a
      // redirected frame always finds the agent ready for it.
      const ports = cp !== null && cp.anyIsolated && this.opts.localPorts
        ? cp.endpoints.map((e, index) => ({ e, index })).filter(({ e }) => e.host === node && e.port && e.mac) : [];
      if (ports.length > 0) local.push({ network: s.config.name, tap: s.config.tap, ports: ports.map(({ e }) => ({ port: e.port!, mac: e.mac! })) });
      s.enforcer.setCompiled(cp);
      s.enforcer.setLocal(ports.length > 0 ? ports.map(({ e, index }) => ({ mac: e.mac!, index })) : null);
      // Always (re)set: a network re-created by a reload is a new data-path network.
      if (dp) s.attached = dp.setPolicyFilter(s.config.vni, want ? s.enforcer : null) && want;
    }
    this.localWanted = local;
    void this.syncLocalPorts();
  }

  /**
   * Gives the kernel the same-host rules when they (or the devices they name: a re-created TAP or
   * port has a new ifindex) differ from what it was last given. Serialized; a failure is logged,
   * shown in status and retried on the next check.
   */
  private syncLocalPorts(force = false): Promise<void> {
    const drv = this.opts.localPorts;
    if (!drv) return Promise.resolve();
    this.localChain = this.localChain.then(async () => {
      const want = this.localWanted;
      const sig = want.length === 0 ? '' : JSON.stringify(want.map((n) => [n, ifindexOf(n.tap), n.ports.map((p) => ifindexOf(p.port))]));
      const first = this.localFirst;
      if (!force && !first && sig === this.localApplied && this.localError === null) return;
      try {
        await drv.apply(want);
        if (this.localError !== null) this.log.info('same-host policy rules installed');
        this.localApplied = sig;
        this.localError = null;
        this.localFirst = false;
        this.log.debug({ networks: want.map((n) => n.network), ports: want.reduce((a, n) => a + n.ports.length, 0) }, 'same-host policy rules applied');
      } catch (e) {
        const msg = (e as Error).message;
        if (first && want.length === 0) {
          // The start-up clean-up with nothing to enforce (a host without nft, say): said once, not retried.
          this.localFirst = false;
          this.log.warn({ err: msg }, 'could not remove a same-host policy table left by an earlier agent');
          return;
        }
        if (msg !== this.localError) this.log.error({ err: msg }, 'same-host policy rules could not be applied (retrying)');
        this.localError = msg;
      }
    });
    return this.localChain;
  }

  /** Waits for the same-host rules in flight (tests). */
  settled(): Promise<void> {
    return this.localChain;
  }

  enforcer(network: string): PolicyEnforcer | null {
    return this.nets.get(network)?.enforcer ?? null;
  }

  // ---- API handlers ----------------------------------------------------------------------------

  private getPolicy(req: http.IncomingMessage, res: http.ServerResponse): void {
    const name = query(req).get('name') ?? '';
    const e = this.store.get(name);
    if (!e) return sendError(res, 404, `no policy named "${name}"`);
    sendJson(res, 200, { name: e.name, version: e.version, document: e.doc });
  }

  private postPolicy(res: http.ServerResponse, body: Buffer): void {
    try {
      // The CLI sends {"document": TEXT}; a raw YAML/JSON document is accepted as well.
      let text = body.toString('utf8');
      try {
        const j = JSON.parse(text) as { document?: unknown };
        if (j && typeof j === 'object' && typeof j.document === 'string') text = j.document;
      } catch {
        /* raw YAML */
      }
      const r = this.apply(text);
      sendJson(res, 200, { ...r, spread: this.sync ? !this.syncTooLarge : false });
    } catch (e) {
      if (e instanceof PolicyDocumentError || e instanceof ConfigError) return sendJson(res, 400, { error: e.message, code: e.code });
      if (e instanceof RangeError) return sendJson(res, 400, { error: e.message, code: 'ERR_VXMESH_POLICY_LIMIT' });
      throw e;
    }
  }

  private deletePolicy(req: http.IncomingMessage, res: http.ServerResponse): void {
    const name = query(req).get('name') ?? '';
    if (!this.delete(name)) return sendJson(res, 404, { error: `no policy named "${name}"`, code: 'ERR_VXMESH_POLICY_UNKNOWN' });
    sendJson(res, 200, { deleted: name });
  }

  private getDenials(req: http.IncomingMessage, res: http.ServerResponse): void {
    const only = query(req).get('network');
    const out: unknown[] = [];
    for (const [name, s] of this.nets) {
      if (only && only !== name) continue;
      for (const d of s.enforcer.denials()) out.push({ network: name, ...d, time: new Date(d.time).toISOString() });
    }
    sendJson(res, 200, { denials: out });
  }

  private getTrace(req: http.IncomingMessage, res: http.ServerResponse): void {
    const q = query(req);
    const network = q.get('network') ?? '';
    const s = this.nets.get(network);
    if (!s) return sendJson(res, 400, { error: `unknown network "${network}"`, code: 'ERR_VXMESH_USAGE' });
    const eps = this.endpointsOf(network);
    const find = (what: string, v: string | null): PolicyEndpoint | { ip: Uint8Array } | string => {
      if (!v) return `--${what} is required (an endpoint name, host/name, or an IP address)`;
      const slash = v.indexOf('/');
      const byName = eps.filter((e) => (slash > 0 ? e.host === v.slice(0, slash) && e.name === v.slice(slash + 1) : e.name === v));
      if (byName.length === 1) return byName[0];
      if (byName.length > 1) return `--${what} ${v} names ${byName.length} endpoints; write host/name`;
      const ip = ipBytes(v);
      if (!ip) return `--${what} ${v}: no such endpoint on ${network}, and not an IP address`;
      const owner = eps.find((e) => e.ips.some((x) => Buffer.compare(Buffer.from(x), Buffer.from(ip)) === 0));
      return owner ?? { ip };
    };
    const from = find('from', q.get('from'));
    const to = find('to', q.get('to'));
    if (typeof from === 'string') return sendJson(res, 400, { error: from, code: 'ERR_VXMESH_USAGE' });
    if (typeof to === 'string') return sendJson(res, 400, { error: to, code: 'ERR_VXMESH_USAGE' });
    const protoText = (q.get('protocol') ?? 'TCP').toUpperCase();
    const protocol = protoText === 'ICMP' ? 1 : PROTOCOL_NUMBER[protoText as Protocol];
    if (protocol === undefined) return sendJson(res, 400, { error: `unknown protocol ${protoText} (TCP, UDP, SCTP, ICMP)`, code: 'ERR_VXMESH_USAGE' });
    const port = Number(q.get('port') ?? 0);
    if (!Number.isInteger(port) || port < 0 || port > 65535 || (protocol !== 1 && port === 0)) {
      return sendJson(res, 400, { error: `expected a port 1..65535, got ${q.get('port')}`, code: 'ERR_VXMESH_USAGE' });
    }
    const r = trace({ policies: this.store.forNetwork(network), defaultDeny: s.config.defaultPolicy === 'deny' }, { from, to, protocol, port });
    sendJson(res, 200, { network, mode: s.config.policyMode ?? 'enforce', ...r });
  }

  // ---- status and metrics ------------------------------------------------------------------------

  status(): unknown {
    const nets: Record<string, unknown> = {};
    for (const [name, s] of this.nets) {
      const c = s.enforcer.counters;
      const cp = s.enforcer.policy;
      nets[name] = {
        active: s.attached, mode: s.config.policyMode ?? 'enforce', defaultPolicy: s.config.defaultPolicy ?? 'allow',
        policies: this.store.forNetwork(name).length, rules: cp?.ruleCount ?? 0, endpoints: cp?.endpoints.length ?? 0, version: s.version,
        allowedNew: c[PC_ALLOWED_NEW], allowedTracked: c[PC_ALLOWED_TRACKED], deniedEgress: c[PC_DENIED_EGRESS], deniedIngress: c[PC_DENIED_INGRESS],
        auditEgress: c[PC_AUDIT_EGRESS], auditIngress: c[PC_AUDIT_INGRESS], spoofed: c[PC_SPOOFED], nonIp: c[PC_NON_IP], revoked: c[PC_REVOKED],
        related: c[PC_RELATED], conntrack: { ...s.enforcer.conntrack.stats, capacity: s.enforcer.conntrack.capacity },
        deniedCached: c[PC_DENIED_CACHED],
        sameHost: { ...s.enforcer.local, hairpinned: c[PC_HAIRPIN], hairpinFailed: c[PC_HAIRPIN_FAILED] },
        deniedCache: { entries: s.enforcer.deniedCache.stats.entries, evictions: s.enforcer.deniedCache.stats.evictions, capacity: s.enforcer.deniedCache.capacity },
      };
    }
    return {
      policies: this.store?.list().length ?? 0, spreadByGossip: this.sync !== null && !this.syncTooLarge,
      sameHostRules: this.opts.localPorts ? { networks: this.localWanted.map((n) => n.network), error: this.localError } : null, networks: nets,
    };
  }

  /** Per network counters for the metrics registry (read at scrape time). */
  metricsView(): PolicyMetricsView {
    const nets = this.nets;
    return {
      *networks() {
        for (const [network, s] of nets) {
          const ct = s.enforcer.conntrack;
          yield { network, counters: s.enforcer.counters, conntrack: { entries: ct.stats.entries, evictions: ct.stats.evictions, capacity: ct.capacity } };
        }
      },
    };
  }
}

function query(req: http.IncomingMessage): URLSearchParams {
  return new URL(req.url ?? '/', 'http://x').searchParams;
}

export function createPolicyExtension(config: Config, logger: Logger): PolicyExtension | null {
  if (config.networks.length === 0) return null;
  let segment: EnforcerOptions['segment'];
  try {
    const addon = loadAddon();
    segment = (f, t, m, p, o, l) => addon.gsoSegment(f, t, m, p, o, l);
  } catch {
    segment = undefined; // no addon: same-host super-frames are counted as lost
  }
  return new PolicyExtension(config, { logger, localPorts: new NftLocalPorts(), segment });
}
