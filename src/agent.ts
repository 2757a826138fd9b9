/**
 * The vxmesh agent: owns the system resources of one host and wires the data path to them.
 *
 * Start, in order (each step undone in reverse if a later one fails):
 *   1. per network: bridge (created if missing, remembered), TAP (created, or a persistent one
 *      attached), MTUs (TAP always; bridge only if we created it), TAP enslaved, both up;
 *   2. the underlay UDP transport (receive socket on the VXLAN port + source sockets);
 *   3. the Datapath over those seams;
 *   4. the control API (GET /v1/status built in);
 *   5. extensions (gossip, metrics, health, crypto), in the order given.
 * `stop()` undoes exactly what start created, in reverse, and nothing else: a TAP we created
 * vanishes when closed; a persistent TAP we attached is taken off the bridge and left; a bridge we
 * created is brought down and deleted; a bridge that existed is left in place (brought down again
 * only if it was down and we brought it up).
 *
 * `applyConfig()` (SIGHUP) applies network add/remove/change, static peers, log level and gossip
 * seeds/keyring live; other changes are refused with reasons (see config/diff.ts).
 *
 * All system calls go through `AgentSystem` (default: the addon via netdev.ts / native-io.ts), so
 * the lifecycle can also run over in-memory devices.
 */

import * as fs from 'node:fs';
import type { Clock } from './clock';
import { systemClock } from './clock';
import type { Logger } from './log';
import { nullLogger } from './log';
import type { Config, Endpoint, NetworkConfig } from './config/types';
import { diffConfig, type ConfigDiff } from './config/diff';
import { ConfigError, SystemError, VxmeshError } from './errors';
import type { TapDevice, UdpTransport } from './dataplane/io';
import { Datapath } from './dataplane/datapath';
import { RX_DROP_REASONS, TX_DROP_REASONS, type NetworkCounters, type GlobalCounters } from './dataplane/counters';
import { ApiServer, sendJson } from './api/server';
import * as netdev from './dataplane/netdev';
import { NativeTap, NativeUdp } from './dataplane/native-io';
import { loadNativeAead } from './crypto/aead';

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

/** A TAP as opened by the system: the data-path seam plus whether opening created it. */
export interface OpenedTap extends TapDevice {
  readonly created: boolean;
}

/** The system calls the agent makes (all synchronous, throwing SystemError). */
export interface AgentSystem {
  linkExists(name: string): boolean;
  bridgeCreate(name: string): void;
  bridgeDelete(name: string): void;
  bridgeAddPort(bridge: string, ifname: string): void;
  bridgeDelPort(bridge: string, ifname: string): void;
  setMtu(name: string, mtu: number): void;
  setUp(name: string, up: boolean): void;
  isUp(name: string): boolean;
  /** Name of the bridge `ifname` is enslaved to, or null. */
  masterOf(ifname: string): string | null;
  /** `vnetHdr`: the fast path (IFF_VNET_HDR + checksum/TSO offloads), see config `underlay.offload`. */
  openTap(name: string, opts?: { vnetHdr: boolean }): OpenedTap;
  /** `gro`: try UDP GRO receive (fast path); a kernel without it leaves it off, no error. */
  openUdp(opts: { address: string; port: number; family: 4 | 6; sourcePorts: number; gro?: boolean }): UdpTransport;
}

export interface AgentOptions {
  logger?: Logger;
  clock?: Clock;
  extensions?: AgentExtension[];
  /** System calls; default: the addon (netdev.ts, native-io.ts). */
  system?: AgentSystem;
  /** Start the control API on config.api.listen (default true). */
  api?: boolean;
}

/** What the agent set up for one network, so that stop removes exactly that. */
interface NetworkState {
  config: NetworkConfig;
  tap: OpenedTap;
  bridgeCreated: boolean;
  /** A bridge that existed but was down, brought up by us (brought down again on stop). */
  bridgeRaised: boolean;
  /** We enslaved the TAP (false: a persistent TAP was already on this bridge). */
  portAdded: boolean;
}

export interface ReadyReport {
  ok: boolean;
  checks: Record<string, boolean>;
}

export interface ReloadResult {
  added: string[];
  removed: string[];
  changed: string[];
  peersChanged: boolean;
  logLevelChanged: boolean;
  /** gossip.seeds or gossip.keyFile changed (applied by the extensions' reload). */
  gossipChanged: boolean;
}

/** Reads /sys/class/net/<ifname>/master (valid inside `ip netns exec`, which remounts /sys). */
function sysfsMaster(ifname: string): string | null {
  try {
    const target = fs.readlinkSync(`/sys/class/net/${ifname}/master`);
    return target.split('/').pop() ?? null;
  } catch {
    return null;
  }
}

/** The real system: the addon's ioctls and devices (the addon loads on first use). */
export function nativeSystem(): AgentSystem {
  return {
    linkExists: (n) => netdev.linkExists(n),
    bridgeCreate: (n) => netdev.bridgeCreate(n),
    bridgeDelete: (n) => netdev.bridgeDelete(n),
    bridgeAddPort: (b, i) => netdev.bridgeAddPort(b, i),
    bridgeDelPort: (b, i) => netdev.bridgeDelPort(b, i),
    setMtu: (n, m) => netdev.setMtu(n, m),
    setUp: (n, up) => netdev.setUp(n, up),
    isUp: (n) => netdev.isUp(n),
    masterOf: sysfsMaster,
    openTap: (n, o) => NativeTap.open(n, { vnetHdr: o?.vnetHdr ?? false }),
    openUdp: (o) => {
      const u = NativeUdp.open({ address: o.address, port: o.port, family: o.family, sourcePorts: o.sourcePorts });
      if (o.gro) {
        try {
          u.setGro(true);
        } catch {
          // no UDP_GRO in this kernel: datagrams arrive one by one (correct, slower)
        }
      }
      return u;
    },
  };
}

function countersJson(c: NetworkCounters): Record<string, unknown> {
  const rxDrops: Record<string, number> = {};
  RX_DROP_REASONS.forEach((r, i) => { rxDrops[r] = c.rxDrops[i]; });
  const txDrops: Record<string, number> = {};
  TX_DROP_REASONS.forEach((r, i) => { txDrops[r] = c.txDrops[i]; });
  return {
    rxPackets: c.rxPackets, rxBytes: c.rxBytes, rxDelivered: c.rxDelivered, rxDeliveredBytes: c.rxDeliveredBytes, rxDrops,
    txFrames: c.txFrames, txFrameBytes: c.txFrameBytes, txPackets: c.txPackets, txBytes: c.txBytes, txDrops,
    txFlooded: c.txFlooded, fdbEvictions: c.fdbEvictions,
  };
}

function globalJson(c: GlobalCounters): Record<string, unknown> {
  const rxDrops: Record<string, number> = {};
  RX_DROP_REASONS.forEach((r, i) => { rxDrops[r] = c.rxDrops[i]; });
  return { rxDatagrams: c.rxDatagrams, rxDrops, tapBatches: c.tapBatches, udpBatches: c.udpBatches };
}

const epText = (e: { address: string; port: number }): string => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);

export class Agent {
  config: Config;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly extensions: AgentExtension[];
  readonly system: AgentSystem;
  datapath!: Datapath;
  api: ApiServer | null = null;
  udp: UdpTransport | null = null;
  private readonly nets = new Map<number, NetworkState>();
  private startedAt = 0;
  private running = false;
  private stopping: Promise<void> | null = null;
  private startedExtensions: AgentExtension[] = [];
  /** Serializes reloads and stop. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(config: Config, opts: AgentOptions) {
    this.config = config;
    this.logger = opts.logger ?? nullLogger;
    this.clock = opts.clock ?? systemClock;
    this.extensions = opts.extensions ?? [];
    this.system = opts.system ?? nativeSystem();
  }

  /** Sets everything up (see the file comment); on failure undoes what was done and rethrows. */
  static async start(config: Config, opts: AgentOptions = {}): Promise<Agent> {
    const agent = new Agent(config, opts);
    try {
      await agent.startAll(opts.api !== false);
    } catch (e) {
      await agent.teardown().catch((e2) => agent.logger.error({ err: (e2 as Error).message }, 'cleanup after failed start failed'));
      throw e;
    }
    return agent;
  }

  private async startAll(withApi: boolean): Promise<void> {
    const c = this.config;
    this.startedAt = this.clock.now();
    for (const net of c.networks) this.nets.set(net.vni, this.setupNetwork(net));

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
    });
    this.datapath.start();
    this.running = true;

    if (withApi) {
      this.api = new ApiServer({ host: c.api.listen.host, port: c.api.listen.port, logger: this.logger.child({ component: 'api' }) });
      this.api.route('GET', '/v1/status', (_req, res) => sendJson(res, 200, this.status()));
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
    this.logger.info({ networks: c.networks.map((n) => n.name), peers: c.peers.length }, 'agent started');
  }

  /** Bridge, TAP, MTUs, enslave, up — undone on failure of any step. */
  private setupNetwork(net: NetworkConfig): NetworkState {
    const sys = this.system;
    const log = this.logger.child({ network: net.name, vni: net.vni });
    let bridgeCreated = false;
    let bridgeRaised = false;
    let tap: OpenedTap | null = null;
    let portAdded = false;
    try {
      if (!sys.linkExists(net.bridge)) {
        sys.bridgeCreate(net.bridge);
        bridgeCreated = true;
        log.info({ bridge: net.bridge }, 'bridge created');
      }
      // fast path (vnet TAP, TSO) unless underlay.offload is false; encrypted networks too when the
      // native AEAD can seal TSO super-frames (the data path hands them to cipher.sealSuperFrame),
      // else they keep a plain TAP and are sealed per datagram
      const vnetHdr = this.config.underlay.offload !== false && (!net.encrypted || nativeTsoSealing());
      if (vnetHdr) {
        try {
          tap = sys.openTap(net.tap, { vnetHdr });
        } catch (e) {
          log.warn({ tap: net.tap, err: (e as Error).message }, 'TAP offloads unavailable; using plain frames');
          tap = sys.openTap(net.tap);
        }
      } else {
        tap = sys.openTap(net.tap);
      }
      log.info({ tap: net.tap, created: tap.created, vnetHdr: (tap as { vnetHdr?: boolean }).vnetHdr === true },
        tap.created ? 'TAP created' : 'persistent TAP attached');
      sys.setMtu(net.tap, net.mtu);
      if (bridgeCreated) sys.setMtu(net.bridge, net.mtu);
      const master = sys.masterOf(net.tap);
      if (master === net.bridge) {
        portAdded = false;
      } else {
        if (master !== null) {
          throw new SystemError('ERR_VXMESH_NETDEV', `TAP ${net.tap} is already a port of bridge ${master}, not ${net.bridge}`, 'ioctl(SIOCBRADDIF)', 'EBUSY');
        }
        sys.bridgeAddPort(net.bridge, net.tap);
        portAdded = true;
      }
      sys.setUp(net.tap, true);
      if (bridgeCreated) sys.setUp(net.bridge, true);
      else if (!sys.isUp(net.bridge)) {
        sys.setUp(net.bridge, true);
        bridgeRaised = true;
        log.info({ bridge: net.bridge }, 'existing bridge was down: brought up');
      }
      return { config: net, tap, bridgeCreated, bridgeRaised, portAdded };
    } catch (e) {
      this.teardownNetwork({ config: net, tap: tap as OpenedTap, bridgeCreated, bridgeRaised, portAdded }, tap !== null);
      throw e;
    }
  }

  /** Undoes setupNetwork; never throws (logs what it could not undo). */
  private teardownNetwork(s: NetworkState, tapOpen = true): void {
    const sys = this.system;
    const log = this.logger.child({ network: s.config.name, vni: s.config.vni });
    const attempt = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (e) {
        log.warn({ err: (e as Error).message }, `cleanup: ${what} failed`);
      }
    };
    if (tapOpen && s.tap) {
      if (!s.tap.created && s.portAdded) attempt(`removing ${s.config.tap} from ${s.config.bridge}`, () => sys.bridgeDelPort(s.config.bridge, s.config.tap));
      attempt(`closing ${s.config.tap}`, () => s.tap.close());
    }
    if (s.bridgeRaised) attempt(`bringing ${s.config.bridge} back down`, () => sys.setUp(s.config.bridge, false));
    if (s.bridgeCreated) {
      attempt(`bringing ${s.config.bridge} down`, () => sys.setUp(s.config.bridge, false));
      attempt(`deleting ${s.config.bridge}`, () => sys.bridgeDelete(s.config.bridge));
      log.info({ bridge: s.config.bridge }, 'bridge deleted');
    }
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

  private async teardown(): Promise<void> {
    for (const ext of [...this.startedExtensions].reverse()) {
      try {
        await ext.stop();
      } catch (e) {
        this.logger.warn({ extension: ext.name, err: (e as Error).message }, 'extension stop failed');
      }
    }
    this.startedExtensions = [];
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
    for (const s of [...this.nets.values()].reverse()) this.teardownNetwork(s);
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
    for (const ext of this.startedExtensions) if (ext.ready) checks[`ext:${ext.name}`] = ext.ready();
    return { ok: Object.values(checks).every(Boolean), checks };
  }

  /** Everything an operator wants to see, JSON-able (served at GET /v1/status). */
  status(): Record<string, unknown> {
    const c = this.config;
    const networks = [...this.nets.values()].map((s) => {
      const dp = this.running ? this.datapath.network(s.config.vni) : undefined;

      return {
        name: s.config.name,
        vni: s.config.vni,
        bridge: s.config.bridge,
        tap: s.config.tap,
        mtu: s.config.mtu,
        encrypted: s.config.encrypted,
        bridgeCreated: s.bridgeCreated,
        tapCreated: s.tap.created,
        tapReader: this.running ? this.datapath.tapReaderStats(s.tap) : null,
        tapQueueDrops: s.tap.queueDrops?.() ?? null,
        tapWrites: tapWriteStats(s.tap),
        fdbSize: dp ? dp.fdb.size : null,
        counters: dp ? countersJson(dp.counters) : null,
      };
    });
    const peers = this.running
      ? this.datapath.peerList().map((p) => ({
          peer: p.label, static: p.static,
          rxPackets: p.counters.rxPackets, rxBytes: p.counters.rxBytes, txPackets: p.counters.txPackets, txBytes: p.counters.txBytes,
        }))
      : [];
    const extensions: Record<string, unknown> = {};
    for (const ext of this.startedExtensions) {
      if (!ext.status) continue;
      try {
        extensions[ext.name] = ext.status();
      } catch (e) {
        extensions[ext.name] = { error: (e as Error).message };
      }
    }
    return {
      node: c.node.name,
      pid: process.pid,
      uptimeSeconds: Math.round((this.clock.now() - this.startedAt) / 1000),
      ready: this.ready(),
      underlay: { address: c.underlay.address, port: c.underlay.port, family: c.underlay.family, mtu: c.underlay.mtu, sourcePorts: c.underlay.sourcePorts },
      staticPeers: c.peers.map(epText),
      networks,
      peers,
      counters: this.running ? globalJson(this.datapath.counters) : null,
      extensions,
    };
  }

  /**
   * Applies a new validated config (SIGHUP). Refuses (ConfigError listing the reasons, nothing
   * changed) when something that cannot change live changed. Unchanged networks are not touched.
   */
  applyConfig(next: Config): Promise<ReloadResult> {
    const run = this.queue.catch(() => undefined).then(() => this.apply(next));
    this.queue = run;
    return run;
  }

  private async apply(next: Config): Promise<ReloadResult> {
    if (this.stopping || !this.running) throw new VxmeshError('ERR_VXMESH_NOT_RUNNING', 'agent is not running');
    const d: ConfigDiff = diffConfig(this.config, next);
    if (d.refused.length) throw new ConfigError('', `reload refused: ${d.refused.join('; ')}`);

    // Interface names must not clash between a network being added and one staying.
    const removing = [...d.removed, ...d.changed.map((c) => c.before)];
    for (const n of removing) {
      const s = this.nets.get(n.vni);
      if (!s) continue;
      this.datapath.removeNetwork(n.vni);
      this.teardownNetwork(s);
      this.nets.delete(n.vni);
      this.logger.info({ network: n.name, vni: n.vni }, 'network removed');
    }
    const adding = [...d.added, ...d.changed.map((c) => c.after)];
    const failed: string[] = [];
    for (const n of adding) {
      try {
        const s = this.setupNetwork(n);
        this.nets.set(n.vni, s);
        this.datapath.addNetwork({ config: n, tap: s.tap });
        this.logger.info({ network: n.name, vni: n.vni }, 'network added');
      } catch (e) {
        const s = this.nets.get(n.vni);
        if (s) {
          this.teardownNetwork(s);
          this.nets.delete(n.vni);
        }
        failed.push(`${n.name} (vni ${n.vni}): ${(e as Error).message}`);
      }
    }
    if (d.peersChanged) {
      this.datapath.setStaticPeers(next.peers);
      this.logger.info({ peers: next.peers.map(epText) }, 'static peers updated');
    }
    if (d.logLevelChanged) {
      this.logger.level = next.log.level;
      this.logger.info({ level: next.log.level }, 'log level changed');
    }
    // The running config is what is actually in place: networks that failed stay out.
    const inPlace = next.networks.filter((n) => this.nets.has(n.vni));
    this.config = { ...next, networks: inPlace };
    for (const ext of this.startedExtensions) {
      if (!ext.reload) continue;
      try {
        await ext.reload(this.config);
      } catch (e) {
        failed.push(`extension ${ext.name}: ${(e as Error).message}`);
      }
    }
    if (failed.length) {
      throw new VxmeshError('ERR_VXMESH_RELOAD', `reload partly applied; failed: ${failed.join('; ')}`);
    }
    return {
      added: d.added.map((n) => n.name),
      removed: d.removed.map((n) => n.name),
      changed: d.changed.map((c) => c.after.name),
      peersChanged: d.peersChanged,
      logLevelChanged: d.logLevelChanged,
      gossipChanged: d.gossipChanged,
    };
  }

  /** The configured static peers (for extensions). */
  staticPeers(): Endpoint[] {
    return this.config.peers;
  }
}

/** Coalescing on a fast-path TAP's writes (GSO frames written, frames merged into them), or null. */
function tapWriteStats(tap: TapDevice): { gsoWrites: number; coalesced: number } | null {
  const st = (tap as Partial<{ vnetHdr: boolean; stats: { gsoWrites: number; coalesced: number } }>);
  return st.vnetHdr === true && st.stats ? { gsoWrites: st.stats.gsoWrites, coalesced: st.stats.coalesced } : null;
}

/** Whether the addon's AEAD can seal TSO super-frames (aeadSealTso): encrypted networks may then use a vnet TAP. */
function nativeTsoSealing(): boolean {
  const fns = loadNativeAead() as { aeadSealTso?: unknown } | null;
  return fns !== null && typeof fns.aeadSealTso === 'function';
}
