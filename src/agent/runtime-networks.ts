/**
 * Runtime networks: vxmesh networks created while the agent runs (by the Docker driver, from
 * `docker network create -d vxmesh --opt vni=N --subnet …`) instead of being listed in the config.
 *
 *   create:  the entry (name, vni, bridge, tap, subnet, gateway, mtu) is validated exactly like a
 *            config entry (config/load.ts validateAddedNetwork: same checks and defaults, unique
 *            name/VNI/bridge/TAP, plus: no subnet overlapping another network's) — a bad one is a
 *            RuntimeNetworkError naming the option, nothing made; then the agent applies the running
 *            config plus the network the way a reload adds one (netsetup: bridge + TAP, then
 *            datapath.addNetwork, then every extension's reload: gossip announces the VNI, endpoints
 *            make it attachable); then it is written to `<stateDir>/runtime-networks.json`
 *            (atomically). A failure of either step takes the network out again.
 *   restore: `withRuntimeNetworks(config)` (the CLI at start; `reload()` on every SIGHUP, in the
 *            agent's turn) adds the persisted entries to the config read from the file, each
 *            validated again, and writes nothing: the state file changes (`commit`) only once the
 *            config is accepted (the agent started; the reload passed its refusal check). A config
 *            network clashing with a runtime network (name with other settings, VNI, bridge, TAP,
 *            overlapping subnet) refuses the reload / the start (ConfigError naming both networks
 *            and the Docker networks using it) while a Docker network uses it — at start every one
 *            counts as used; with no Docker network on it the config wins (entry dropped, logged);
 *            an identical config entry adopts it. So a restart re-creates them before any
 *            extension (Docker endpoints) starts, and a reload never loses one.
 *   serialized: create, remove and reload each run in one turn of Agent.exclusive (with the
 *            Docker driver's requests): validated against, and applied to, the config then running.
 *   remove:  the network taken out of the running config (reload's removal: data path network,
 *            TAP, bridge), then its entry removed from the state file. Only runtime networks.
 *
 * A corrupt state file is a StateError naming it (never silently reset).
 */
import * as path from 'node:path';
import type { Config, NetworkConfig } from '../config/types';
import { validateAddedNetwork } from '../config/load';
import { formatPath } from '../config/check';
import { VxmeshError } from '../errors';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { readJsonState, writeJsonAtomic } from '../state/atomic';
import { ConfigError } from '../errors';
import { overlaps as cidrOverlaps, parseCidr } from '../ipam/cidr';
import type { ReloadResult } from './reload';
import type { ReloadPlan } from './agent';

export const RUNTIME_NETWORKS_FILE = 'runtime-networks.json';

/** A persisted runtime network: the config-shaped entry plus who created it and when. */
export interface RuntimeNetworkEntry {
  /** Config-shaped mapping (name, vni, bridge, tap, subnet, gateway, mtu), validated on every load. */
  spec: Record<string, unknown>;
  /** e.g. `docker:<NetworkID>`. */
  createdBy: string;
  createdAt: string;
}

/** What a creator asks for. */
export interface RuntimeNetworkRequest {
  name: string;
  vni: number;
  subnets: string[];
  gateways?: (string | null)[];
  mtu?: number;
  createdBy: string;
}

/** The typed interface the Docker driver gets (src/cli/extensions.ts connect()). */
export interface RuntimeNetworkApi {
  /** Creates and persists a network; RuntimeNetworkError for bad input (nothing made). */
  create(req: RuntimeNetworkRequest): Promise<NetworkConfig>;
  /** Removes a runtime network (false when `name` is not one). */
  remove(name: string): Promise<boolean>;
  isRuntime(name: string): boolean;
  list(): RuntimeNetworkEntry[];
  /**
   * Who uses a runtime network (the Docker NetworkIDs mapped to it), asked when a reload's config
   * network clashes with it (withRuntimeNetworks); null: unknown (every one counts as used).
   */
  setUsers(fn: ((network: string) => string[]) | null): void;
}

/** What the runtime networks work on: the running agent (Agent.exclusive, Agent.changeNetworks). */
export interface RuntimeNetworkHost {
  readonly config: Config;
  /** Applies a config differing only in its networks, as a reload does (serialized with reloads). */
  changeNetworks(next: Config): Promise<unknown>;
  /** Runs `fn` alone among network changes (reloads, other creates/removes, Docker requests); re-entrant. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T>;
}

export class RuntimeNetworkError extends VxmeshError {
  constructor(message: string) {
    super('ERR_VXMESH_RUNTIME_NETWORK', message);
  }
}

/** Bridge and TAP names of a runtime network (at most 11 characters). */
export function runtimeNames(vni: number): { bridge: string; tap: string } {
  return { bridge: `vxb${vni}`, tap: `vxt${vni}` };
}

function checkFile(v: unknown): RuntimeNetworkEntry[] | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  if (o.version !== 1) return `unknown version ${JSON.stringify(o.version)}`;
  if (!Array.isArray(o.networks)) return '"networks" is not a list';
  const out: RuntimeNetworkEntry[] = [];
  for (const [i, e] of (o.networks as unknown[]).entries()) {
    const x = e as Record<string, unknown> | null;
    if (!x || typeof x.spec !== 'object' || x.spec === null || Array.isArray(x.spec) || typeof x.createdBy !== 'string' || typeof x.createdAt !== 'string') {
      return `networks[${i}] is not {spec, createdBy, createdAt}`;
    }
    out.push({ spec: x.spec as Record<string, unknown>, createdBy: x.createdBy, createdAt: x.createdAt });
  }
  return out;
}

/** The persisted entries of `dir` ([] when the file does not exist; null dir: none). Throws StateError. */
export function readRuntimeNetworks(dir: string | null): RuntimeNetworkEntry[] {
  if (dir === null) return [];
  return readJsonState(path.join(dir, RUNTIME_NETWORKS_FILE), checkFile) ?? [];
}

function writeRuntimeNetworks(dir: string | null, entries: RuntimeNetworkEntry[]): void {
  if (dir === null) return;
  writeJsonAtomic(path.join(dir, RUNTIME_NETWORKS_FILE), { version: 1, networks: entries });
}

/** Problems of validateAddedNetwork as one message in the creator's words (`--opt vni`, `--subnet`). */
function problemText(config: Config, problems: { path: ReadonlyArray<string | number>; message: string }[]): string {
  const all = [...config.networks, ...(config.localNetworks ?? [])];
  const words: Record<string, string> = { vni: '--opt vni', mtu: '--opt mtu', name: '--opt name', subnet: '--subnet', gateway: '--gateway', bridge: 'bridge', tap: 'TAP' };
  return problems.map((q) => {
    const field = q.path.length >= 3 ? String(q.path[2]) : '';
    const msg = q.message.replace(/networks\[(\d+)\]/g, (_m, k: string) => (all[Number(k)] ? `vxmesh network ${all[Number(k)].name}` : `networks[${k}]`));
    return `${words[field] ?? (field || formatPath(q.path))}: ${msg}`;
  }).join('; ');
}

/** What `withRuntimeNetworks` found besides the kept entries. */
export interface RuntimeMerge {
  /** `config` plus the runtime networks kept (in order). */
  config: Config;
  /** Runtime networks a config network takes over (no Docker network uses them): to be dropped. */
  dropped: { name: string; vni: unknown; reason: string }[];
  /** Runtime networks the config now lists identically: the config's from now on. */
  adopted: string[];
  /** Writes the state file without the dropped and adopted entries (once the config is accepted). */
  commit(): void;
}

/** The fields a config entry must share with a runtime network to adopt it (nothing torn down). */
function setupKey(n: NetworkConfig): string {
  return JSON.stringify([n.vni, n.bridge, n.tap, n.mtu, n.encrypted ?? false, n.mode ?? 'overlay', n.ipam ?? null]);
}

/** Why config network `c` cannot run beside runtime network `r` (empty: it can). */
function clashesOf(c: NetworkConfig, r: NetworkConfig): string[] {
  const out: string[] = [];
  const overlay = (c.mode ?? 'overlay') === 'overlay';
  if (c.name === r.name) out.push(`the name ${r.name} is runtime network ${r.name}'s (with other settings)`);
  if (overlay && c.vni === r.vni) out.push(`vni ${r.vni} is already runtime network ${r.name}`);
  if (c.bridge === r.bridge) out.push(`bridge ${r.bridge} is runtime network ${r.name}'s`);
  if (overlay && c.tap === r.tap) out.push(`TAP ${r.tap} is runtime network ${r.name}'s`);
  for (const s of c.ipam?.subnets ?? []) {
    const a = parseCidr(s);
    const t = (r.ipam?.subnets ?? []).find((x) => a && cidrOverlaps(a, parseCidr(x)!));
    if (t) out.push(`${s} overlaps ${t}, the subnet of runtime network ${r.name}`);
  }
  return out;
}

export class RuntimeNetworks implements RuntimeNetworkApi {
  private host: RuntimeNetworkHost | null = null;
  private entries: RuntimeNetworkEntry[];
  private users: ((network: string) => string[]) | null = null;

  constructor(private readonly dir: string | null, private readonly logger: Logger = nullLogger) {
    this.entries = readRuntimeNetworks(dir);
  }

  /** The running agent (set when it has started). */
  bind(host: RuntimeNetworkHost | null): void {
    this.host = host;
  }

  setUsers(fn: ((network: string) => string[]) | null): void {
    this.users = fn;
  }

  /** Who uses runtime network `e` (Docker NetworkIDs); without the Docker driver running: its creator. */
  private usersOf(e: RuntimeNetworkEntry): string[] {
    if (this.users) return this.users(String(e.spec.name));
    return [e.createdBy.startsWith('docker:') ? e.createdBy.slice('docker:'.length) : e.createdBy];
  }

  private file(): string {
    return this.dir === null ? RUNTIME_NETWORKS_FILE : path.join(this.dir, RUNTIME_NETWORKS_FILE);
  }

  /**
   * `config` (as read from the file, at start or on SIGHUP) plus the runtime networks: what the
   * agent is to run. Nothing is written here: `commit()` does, once the config is accepted.
   *
   * A config network clashing with a runtime network (same name with other settings, same VNI,
   * bridge or TAP, overlapping subnet):
   *   - the runtime network is in use (a Docker network on this host is mapped to it; before the
   *     Docker driver runs, at start, every runtime network counts as used by its creator) →
   *     ConfigError naming both networks, the clash and the Docker networks: the reload is refused
   *     (the start fails), nothing changes;
   *   - no Docker network uses it → the config network wins: the runtime entry is dropped at
   *     commit (logged).
   * A config entry identical to a runtime network (name, VNI, bridge, TAP, MTU, encryption,
   * subnets/gateways) adopts it: nothing is torn down and it is the config's from then on (the
   * last Docker network leaving no longer removes it). A persisted entry that is invalid on its
   * own (e.g. its MTU above a new underlay's) is a ConfigError naming the state file (never
   * silently dropped).
   */
  withRuntimeNetworks(config: Config, when: 'start' | 'reload' = 'start'): RuntimeMerge {
    const file = this.file();
    const configNets = [...config.networks, ...(config.localNetworks ?? [])];
    const alone: Config = { ...config, networks: [], localNetworks: [] };
    let c = config;
    const kept: RuntimeNetworkEntry[] = [];
    const dropped: RuntimeMerge['dropped'] = [];
    const adopted: string[] = [];
    const problems: string[] = [];
    for (const e of this.entries) {
      const name = typeof e.spec.name === 'string' ? e.spec.name : '?';
      const own = validateAddedNetwork(alone, e.spec);
      if (!own.network) {
        problems.push(`${file}: runtime network ${name}: ${problemText(alone, own.problems)} (fix or remove its entry)`);
        continue;
      }
      const r = own.network;
      const same = configNets.find((n) => n.name === r.name);
      if (same && setupKey(same) === setupKey(r)) {
        adopted.push(r.name);
        continue;
      }
      const clash = configNets.map((n) => [n, clashesOf(n, r)] as const).filter(([, l]) => l.length);
      if (clash.length) {
        const what = clash.map(([n, l]) => `config network ${n.name} clashes with runtime network ${r.name} (${l.join('; ')})`).join('; ');
        const users = this.usersOf(e);
        if (users.length) {
          const ids = users.map((u) => u.slice(0, 12)).join(', ');
          problems.push(`${what}, which is in use by Docker network ${ids}: remove ${users.length > 1 ? 'those Docker networks' : 'that Docker network'} first (docker network rm ${ids}), or change the config network`);
        } else {
          dropped.push({ name: r.name, vni: r.vni, reason: what });
        }
        continue;
      }
      const v = validateAddedNetwork(c, e.spec);
      if (!v.network) {
        problems.push(`runtime network ${r.name}: ${problemText(c, v.problems)}`);
        continue;
      }
      kept.push(e);
      c = { ...c, networks: [...c.networks, v.network] };
    }
    if (problems.length) {
      throw new ConfigError('', `${when === 'reload' ? 'reload refused' : 'cannot start'}: ${problems.join('; ')}`);
    }
    const commit = () => {
      if (!dropped.length && !adopted.length) return;
      writeRuntimeNetworks(this.dir, kept);
      this.entries = kept;
      for (const d of dropped) this.logger.warn({ network: d.name, vni: d.vni, reason: d.reason }, `runtime network ${d.name} dropped (no Docker network uses it; the config wins): ${d.reason}`);
      for (const a of adopted) this.logger.info({ network: a }, `runtime network ${a} adopted by the config (an identical entry): it is the config's now`);
    };
    return { config: c, dropped, adopted, commit };
  }

  /**
   * A SIGHUP reload of `fileConfig` (the config file as read again): in the agent's turn (after
   * every network change queued before it), the runtime networks merged in (withRuntimeNetworks:
   * a clash refuses the reload), then applied (Agent.applyConfig); the state file is written only
   * once the reload is accepted.
   */
  reload(agent: { applyConfig(next: () => ReloadPlan): Promise<ReloadResult> }, fileConfig: Config): Promise<ReloadResult> {
    return agent.applyConfig(() => this.withRuntimeNetworks(fileConfig, 'reload'));
  }

  list(): RuntimeNetworkEntry[] {
    return this.entries.map((e) => ({ ...e, spec: { ...e.spec } }));
  }

  isRuntime(name: string): boolean {
    return this.entries.some((e) => e.spec.name === name);
  }

  private h(): RuntimeNetworkHost {
    if (!this.host) throw new RuntimeNetworkError('the vxmesh agent is still starting: try again');
    return this.host;
  }

  /** Validated against, and applied to, the running config in the agent's turn (no reload between). */
  async create(req: RuntimeNetworkRequest): Promise<NetworkConfig> {
    const host = this.h();
    return host.exclusive(() => this.createNow(host, req));
  }

  private async createNow(host: RuntimeNetworkHost, req: RuntimeNetworkRequest): Promise<NetworkConfig> {
    const spec: Record<string, unknown> = {
      name: req.name, vni: req.vni, ...runtimeNames(req.vni),
      ...(req.subnets.length ? { subnet: req.subnets.length === 1 ? req.subnets[0] : req.subnets } : {}),
      ...(req.mtu !== undefined ? { mtu: req.mtu } : {}),
    };
    const gws = (req.gateways ?? []).filter((g): g is string => !!g);
    if (gws.length) spec.gateway = gws.length === 1 ? gws[0] : gws;
    const before = host.config;
    const r = validateAddedNetwork(before, spec);
    if (!r.network) throw new RuntimeNetworkError(`cannot create vxmesh network ${req.name}: ${problemText(before, r.problems)}`);
    const net = r.network;
    const inPlace = () => host.config.networks.some((n) => n.name === net.name && n.vni === net.vni);
    const takeOut = async () => {
      if (!inPlace()) return;
      await host.changeNetworks({ ...host.config, networks: host.config.networks.filter((n) => n.name !== net.name) }).catch((e: unknown) => {
        this.logger.error({ network: net.name, err: (e as Error).message }, 'runtime network: undoing a failed create failed');
      });
    };
    try {
      await host.changeNetworks({ ...host.config, networks: [...host.config.networks, net] });
      if (!inPlace()) throw new Error('it did not come up');
      const entry: RuntimeNetworkEntry = { spec, createdBy: req.createdBy, createdAt: new Date().toISOString() };
      writeRuntimeNetworks(this.dir, [...this.entries, entry]);
      this.entries.push(entry);
    } catch (e) {
      await takeOut();
      throw new RuntimeNetworkError(`cannot create vxmesh network ${net.name} (vni ${net.vni}): ${(e as Error).message}`);
    }
    this.logger.info({ network: net.name, vni: net.vni, bridge: net.bridge, subnets: net.ipam?.subnets ?? [], mtu: net.mtu, createdBy: req.createdBy }, 'runtime network created');
    return host.config.networks.find((n) => n.name === net.name) ?? net;
  }

  async remove(name: string): Promise<boolean> {
    if (!this.isRuntime(name)) return false;
    const host = this.h();
    return host.exclusive(() => this.removeNow(host, name));
  }

  private async removeNow(host: RuntimeNetworkHost, name: string): Promise<boolean> {
    if (!this.isRuntime(name)) return false; // adopted by a reload that ran first
    if (host.config.networks.some((n) => n.name === name)) {
      await host.changeNetworks({ ...host.config, networks: host.config.networks.filter((n) => n.name !== name) });
    }
    const rest = this.entries.filter((e) => e.spec.name !== name);
    writeRuntimeNetworks(this.dir, rest);
    this.entries = rest;
    this.logger.info({ network: name }, 'runtime network removed');
    return true;
  }
}
