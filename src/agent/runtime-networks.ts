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
 *   restore: `withRuntimeNetworks(config)` (the CLI, at start and on every SIGHUP before the
 *            config is applied) adds the persisted entries to the config read from the file, each
 *            validated again; a config network with the same name, VNI, bridge or TAP (or an
 *            overlapping subnet) wins: the runtime entry is dropped from the state file and
 *            reported. So a restart re-creates them before any extension (Docker endpoints) starts,
 *            and a reload never removes them.
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
import type { ReloadResult } from './reload';

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
}

/** What the runtime networks work on: the running agent (Agent.changeNetworks). */
export interface RuntimeNetworkHost {
  readonly config: Config;
  /** Applies a config differing only in its networks, as a reload does (serialized with reloads). */
  changeNetworks(next: Config): Promise<unknown>;
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

/**
 * `config` plus the runtime networks `entries` that still validate against it (in order). Dropped
 * ones (a config network wins, or the entry no longer validates) are returned with the reason.
 */
export function mergeRuntimeNetworks(config: Config, entries: readonly RuntimeNetworkEntry[]): { config: Config; kept: RuntimeNetworkEntry[]; dropped: { name: string; vni: unknown; reason: string }[] } {
  let c = config;
  const kept: RuntimeNetworkEntry[] = [];
  const dropped: { name: string; vni: unknown; reason: string }[] = [];
  for (const e of entries) {
    const r = validateAddedNetwork(c, e.spec);
    if (!r.network) {
      dropped.push({ name: typeof e.spec.name === 'string' ? e.spec.name : '?', vni: e.spec.vni, reason: problemText(c, r.problems) });
      continue;
    }
    kept.push(e);
    c = { ...c, networks: [...c.networks, r.network] };
  }
  return { config: c, kept, dropped };
}

export class RuntimeNetworks implements RuntimeNetworkApi {
  private host: RuntimeNetworkHost | null = null;
  private entries: RuntimeNetworkEntry[];

  constructor(private readonly dir: string | null, private readonly logger: Logger = nullLogger) {
    this.entries = readRuntimeNetworks(dir);
  }

  /** The running agent (set when it has started). */
  bind(host: RuntimeNetworkHost | null): void {
    this.host = host;
  }

  /**
   * `config` (as read from the file, at start or on SIGHUP) plus the runtime networks: what the
   * agent is to run. A config network clashing with a runtime one wins: the runtime entry is
   * dropped (state file updated) and reported (logged, and returned).
   */
  withRuntimeNetworks(config: Config): { config: Config; dropped: { name: string; vni: unknown; reason: string }[] } {
    const r = mergeRuntimeNetworks(config, this.entries);
    for (const d of r.dropped) {
      this.logger.warn({ network: d.name, vni: d.vni, reason: d.reason }, `runtime network ${d.name} dropped (the config wins): ${d.reason}`);
    }
    if (r.dropped.length) {
      writeRuntimeNetworks(this.dir, r.kept);
      this.entries = r.kept;
    }
    return { config: r.config, dropped: r.dropped };
  }

  /**
   * A SIGHUP reload of `fileConfig` (the config file as read again): the runtime networks merged
   * in (withRuntimeNetworks), then applied by the agent (Agent.applyConfig).
   */
  async reload(agent: { applyConfig(next: Config): Promise<ReloadResult> }, fileConfig: Config): Promise<ReloadResult> {
    return agent.applyConfig(this.withRuntimeNetworks(fileConfig).config);
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

  async create(req: RuntimeNetworkRequest): Promise<NetworkConfig> {
    const host = this.h();
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
