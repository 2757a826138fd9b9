/**
 * The data path of one host: frames between each network's TAP ("inside") and the underlay UDP
 * transport ("outside"), as VXLAN (RFC 7348). This file holds the lifecycle, the networks and the
 * control-plane entry points, and wires the two directions, each of which reads top to bottom in
 * its own file with its numbered stages:
 *
 *   inside.ts    TAP → wire: read → classify → learn local → size check → decide
 *                (suppress | unicast | flood | drop) → encapsulate → [seal] → send → count
 *   outside.ts   wire → TAP: recv → [open] → VXLAN check → network → frame check → owner check
 *                → learn remote → deliver → count
 *
 * Around them: seams.ts (TAP / UDP / vnet / reader seams and batch types), cipher-seam.ts (what a
 * cipher offers), context.ts (what both directions share), network.ts, peers.ts, slabs.ts (all
 * the memory, allocated here, never per packet), tso.ts, arp-nd.ts, reader-ring.ts.
 *
 * Fast path (a network whose TAP reports `vnetHdr`, see `VnetTapDevice`): reads into 64 KiB slots
 * of their own slab (TSO super-frames with their gso type and MSS); one FDB decision and one VXLAN
 * header per super-frame; the transport cuts super-frames into segments (`sendBatchGso`). On an
 * encrypted network the cipher cuts and seals them (`sealSuperFrame`).
 *
 * A frame never crosses from one VNI to another: outbound frames carry their TAP's VNI; inbound
 * frames go to the TAP of the VNI in their header, and FDB / neighbour tables are per network.
 *
 * Control plane (any time outside a batch): start/stop, add/removeNetwork, static peers, gossip
 * hooks (network peers, static FDB entries, neighbour entries), local endpoints, cipher.
 */
import type { CaptureHub } from '../capture/drops';
import type { PolicyFilter } from './policy-seam';
import type { ProbeHost, ProbeStage } from './probe-seam';
import type { Clock, TimerHandle } from '../clock';
import type { AcceptFrom, Config, Endpoint, FdbConfig, NetworkConfig } from '../config/types';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { peerKeyOfEndpoint } from './addr';
import type { CipherHost, PacketCipher } from './cipher-seam';
import { PathContext, pauseDevice, type FailureEvent, type Underlay } from './context';
import { fdbRefusalIndex, txDropIndex, type BatchHistogram, type GlobalCounters, type PeerCounters } from './counters';
import { ETH_HLEN, VLAN_HLEN, toMacNumber } from './ethernet';
import { FDB_KIND_NAMES, type FdbOwner } from './fdb';
import { Inside } from './inside';
import { Network, type DatapathNetwork, type DeviceFailure } from './network';
import { Outside } from './outside';
import { Peer } from './peers';
import { ReaderRing } from './reader-ring';
import { TAILROOM, allocateInbound, allocateOutbound } from './slabs';
import { isGroRunUdp, isGsoTap, isVnetTap, type BusyPollStats, type ReaderTapDevice, type TapDevice, type UdpTransport } from './seams';
import { VXLAN_HLEN } from './vxlan';

/** NativeTap.setLatencyReads on the data path's TAPs; VXMESH_TAP_LATENCY_READS=0 turns it off (A/B measurements). */
const LATENCY_READS = process.env.VXMESH_TAP_LATENCY_READS !== '0';
/**
 * GRO runs (seams.ts `RxRuns`): a UDP GRO buffer's run of one inner TCP flow is received as ONE
 * descriptor when the transport forms them and every network's TAP writes GSO frames;
 * VXMESH_GRO_RUNS=0 turns it off (one descriptor per datagram, coalesced again by the TAP write: A/B runs).
 */
const GRO_RUNS = process.env.VXMESH_GRO_RUNS !== '0';

export { Peer, type DatapathNetwork, type DeviceFailure, type FailureEvent };

export interface DatapathOptions {
  networks: { config: NetworkConfig; tap: TapDevice }[];
  udp: UdpTransport;
  clock: Clock;
  /** Underlay: family (IP header size), MTU (outer packet bound), VXLAN port (learned peers' port); address → excluded from peers. */
  underlay?: Underlay;
  /** Static peers (serve every VNI). Default none (or `config.peers`). */
  peers?: Endpoint[];
  fdb?: FdbConfig;
  /** Convenience: take underlay, peers and fdb from a full Config when not given separately. */
  config?: Config;
  /** Packets per I/O call; default 64. */
  batchSize?: number;
  /** Bytes before each TAP frame for VXLAN + crypto headers; default 64 (≥ 8 + cipher.headroom). */
  headroom?: number;
  /**
   * Bytes per slab slot (TAP and UDP); default headroom + 2048, raised automatically to fit the
   * largest network frame + 64 bytes of tailroom. Vnet TAPs (fast path) read into a separate slab
   * of `batchSize` slots of headroom + VNET_FRAME_MAX (+ tailroom), allocated with the first one.
   */
  slotSize?: number;
  /** Batches processed per readiness callback before yielding (fairness); default 8. */
  burst?: number;
  /**
   * Read fast-path (vnet) TAPs on an addon thread (`ReaderTapDevice`), so that the per-frame read
   * syscalls overlap with the processing of the previous batch on the JS thread. Default false
   * (see bench/results for the measurement behind the default).
   */
  tapThreads?: boolean;
  /**
   * Busy-poll window in µs (seams.ts `BusyPollStats`; config `underlay.busyPollUs`): after a
   * readiness callback returned, the devices that offer `setBusyPoll` (the native TAPs read on the
   * loop and the UDP transport) are polled that long before the loop may sleep. Default 0 (off;
   * the agent passes the config's value). Devices without it (the in-memory twins) ignore it.
   */
  busyPollUs?: number;
  /**
   * Most peers learned from traffic (senders `acceptFrom` lets in; static and gossip peers not
   * limited); beyond it the longest-idle learned peer is evicted. Default `config.underlay.maxLearnedPeers`, else 1024.
   */
  maxLearnedPeers?: number;
  logger?: Logger;
}

const DEFAULT_FDB: FdbConfig = { ageingSeconds: 300, maxEntries: 16384 };

/** The owner key of a gossip member's endpoint (its underlay address), or null (operator / API). */
function ownerKey(owner: Endpoint | undefined): FdbOwner | null {
  return owner === undefined ? null : peerKeyOfEndpoint(owner);
}

export class Datapath {
  readonly batchSize: number;
  readonly headroom: number;
  readonly burst: number;
  readonly tapThreads: boolean;
  readonly busyPollUs: number;
  private slotSize: number;
  /** The inbound memory has the GRO run area (allocated the first time runs are turned on). */
  private runsArea = false;
  private readonly ctx: PathContext;
  private readonly inside: Inside;
  private readonly outside: Outside;
  private readonly fdbCfg: FdbConfig;
  private sweepTimer: TimerHandle | null = null;
  private readonly registered = new WeakSet<object>();
  private readonly errorsRegistered = new WeakSet<object>();
  /** TAPs read by an addon thread (`tapThreads`), with their rings. */
  private readonly readers = new Map<TapDevice, ReaderRing>();

  constructor(opts: DatapathOptions) {
    const cfg = opts.config;
    const u = opts.underlay ?? (cfg ? { family: cfg.underlay.family, mtu: cfg.underlay.mtu, port: cfg.underlay.port, address: cfg.underlay.address } : null);
    if (!u) throw new TypeError('Datapath: underlay (or config) is required');
    this.fdbCfg = opts.fdb ?? cfg?.fdb ?? DEFAULT_FDB;
    this.batchSize = Math.max(1, Math.floor(opts.batchSize ?? 64));
    this.headroom = Math.max(64, Math.ceil((opts.headroom ?? 64) / 8) * 8);
    this.burst = Math.max(1, Math.floor(opts.burst ?? 8));
    this.tapThreads = opts.tapThreads === true;
    this.busyPollUs = opts.busyPollUs ?? 0;
    if (!Number.isInteger(this.busyPollUs) || this.busyPollUs < 0 || this.busyPollUs > 100_000) {
      throw new RangeError(`Datapath: busyPollUs must be an integer 0..100000, got ${opts.busyPollUs}`);
    }
    this.ctx = new PathContext(opts.udp, opts.clock, opts.logger ?? nullLogger, { ...u }, this.batchSize, this.headroom, this.burst,
      opts.maxLearnedPeers ?? cfg?.underlay.maxLearnedPeers ?? 1024);
    this.slotSize = opts.slotSize ?? this.headroom + 2048;
    for (const n of opts.networks) this.slotSize = Math.max(this.slotSize, this.neededSlot(n.config));
    this.inside = new Inside(this.ctx, allocateOutbound(this.batchSize, this.slotSize, this.headroom));
    this.outside = new Outside(this.ctx, allocateInbound(this.batchSize, this.slotSize), () => this.slotSize);
    for (const n of opts.networks) this.addNetworkInternal(n.config, n.tap);
    const peers = opts.peers ?? cfg?.peers;
    if (peers) this.setStaticPeers(peers);
    this.refreshRuns();
  }

  /** Whether inbound GRO runs are received as one descriptor (see GRO_RUNS). */
  get groRuns(): boolean {
    return this.outside.runs;
  }

  /** Drop rings, per-peer drop tables and live capture sessions (src/capture). */
  get capture(): CaptureHub {
    return this.ctx.capture;
  }

  /** Global counters (datagrams received, drops before a network is known, batches). */
  get counters(): GlobalCounters {
    return this.ctx.counters;
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Registers readiness callbacks (once per device) and starts FDB ageing. Idempotent. */
  start(): void {
    const ctx = this.ctx;
    if (ctx.running) return;
    ctx.running = true;
    if (this.busyPollUs > 0 && !this.registered.has(ctx.udp)) ctx.udp.setBusyPoll?.(this.busyPollUs);
    this.register(ctx.udp, () => this.outside.recv());
    if (!this.errorsRegistered.has(ctx.udp)) {
      this.errorsRegistered.add(ctx.udp);
      ctx.udp.onError?.((err) => ctx.failTransport(err));
    }
    for (const net of ctx.byVni.values()) this.registerTap(net);
    const every = Math.min(30_000, Math.max(1_000, (this.fdbCfg.ageingSeconds * 1000) / 4));
    this.sweepTimer = ctx.clock.setInterval(every, () => this.sweep());
  }

  /**
   * Stops forwarding: later readiness callbacks drain and discard (a level-triggered device must be
   * read). Closing the devices is the owner's (agent's) job.
   */
  stop(): void {
    if (!this.ctx.running) return;
    this.ctx.running = false;
    this.sweepTimer?.cancel();
    this.sweepTimer = null;
  }

  get isRunning(): boolean {
    return this.ctx.running;
  }

  // ---- control plane: networks ---------------------------------------------------------------

  networks(): DatapathNetwork[] {
    return [...this.ctx.byVni.values()];
  }

  network(vni: number): DatapathNetwork | undefined {
    return this.ctx.byVni.get(vni);
  }

  /**
   * Sets (or with null removes) the policy of network `vni` (src/policy): from the next frame on,
   * both directions call it (policy-seam.ts). Returns false when there is no such network.
   */
  setPolicyFilter(vni: number, filter: PolicyFilter | null): boolean {
    const net = this.ctx.byVni.get(vni);
    if (net === undefined) return false;
    net.policy = filter;
    return true;
  }

  /** Adds a network (reload): others are not disturbed. Throws on a duplicate VNI. */
  addNetwork(n: { config: NetworkConfig; tap: TapDevice }): DatapathNetwork {
    const need = this.neededSlot(n.config);
    if (need > this.slotSize) {
      this.slotSize = need;
      this.inside.reallocate(allocateOutbound(this.batchSize, this.slotSize, this.headroom));
      this.outside.reallocate(allocateInbound(this.batchSize, this.slotSize, this.runsArea));
    }
    const net = this.addNetworkInternal(n.config, n.tap);
    if (this.ctx.running) this.registerTap(net);
    this.refreshRuns();
    return net;
  }

  /**
   * Puts network `vni` on a new TAP (the agent re-created a TAP that failed or was deleted): FDB,
   * neighbour table, counters and peers are kept, the failure is cleared, and the new TAP is read
   * from now on. The old TAP is left to its owner to close. Throws RangeError for an unknown VNI,
   * or for a vnet TAP on an encrypted network whose cipher cannot seal super-frames.
   */
  replaceTap(vni: number, tap: TapDevice): DatapathNetwork {
    const ctx = this.ctx;
    const net = ctx.byVni.get(vni);
    if (!net) throw new RangeError(`no network with VNI ${vni}`);
    const vnet = isVnetTap(tap);
    if (vnet && net.config.encrypted && ctx.cipher !== null && ctx.cipher.sealSuperFrame === undefined) {
      throw new RangeError(`network ${net.config.name}: the cipher cannot seal TSO super-frames; an encrypted network needs a TAP without IFF_VNET_HDR`);
    }
    const old = net.tap;
    if (old !== tap) {
      if (!ctx.netList.some((n) => n !== net && n.tap === old)) this.readers.delete(old);
      net.tap = tap;
      net.vnet = vnet;
      if (vnet) this.inside.enableVnet();
    }
    net.failed = null;
    if (old === tap) (tap as { resume?: () => void }).resume?.();
    else if (ctx.running) this.registerTap(net);
    this.refreshRuns();
    return net;
  }

  /** Networks whose TAP failed (poll error, read error, reader thread error), with why and since when (clock ms). */
  failedNetworks(): { vni: number; network: string; reason: string; since: number }[] {
    const out: { vni: number; network: string; reason: string; since: number }[] = [];
    for (const n of this.ctx.byVni.values()) {
      if (n.failed !== null) out.push({ vni: n.config.vni, network: n.config.name, reason: n.failed.reason, since: n.failed.since });
    }
    return out;
  }

  /** The UDP transport's failure (poll or receive error), or null while it works. */
  transportFailure(): DeviceFailure | null {
    return this.ctx.transportFailed;
  }

  /** Registers a listener for device failures (a network's TAP: `vni` set; the transport: `vni` null). */
  onFailure(cb: (f: FailureEvent) => void): void {
    this.ctx.failureListeners.push(cb);
  }

  /** Removes a network: its FDB and neighbour table are dropped; the TAP is left to its owner to close. */
  removeNetwork(vni: number): boolean {
    const ctx = this.ctx;
    const net = ctx.byVni.get(vni);
    if (!net) return false;
    net.removed = true;
    ctx.byVni.delete(vni);
    ctx.capture.detach(net);
    // the reader's ring stays referenced by its thread's callback until the owner closes the TAP
    if (!ctx.netList.some((n) => n !== net && n.tap === net.tap)) this.readers.delete(net.tap);
    ctx.netList = [...ctx.byVni.values()];
    net.fdb.clear();
    net.neigh.clear();
    this.refreshRuns();
    return true;
  }

  // ---- control plane: peers -----------------------------------------------------------------

  /** Replaces the static peers (they serve every VNI without a gossip override). */
  setStaticPeers(endpoints: readonly Endpoint[]): void {
    this.ctx.peers.setStatic(endpoints);
    this.recomputeFlood();
  }

  /** Gossip: the peers serving `vni` (flood targets), or null to fall back to the static peers. */
  setNetworkPeers(vni: number, endpoints: readonly Endpoint[] | null): boolean {
    const net = this.ctx.byVni.get(vni);
    if (!net) return false;
    net.override = endpoints === null ? null : this.ctx.peers.resolve(endpoints);
    this.recomputeFlood();
    return true;
  }

  /**
   * A network's `acceptFrom` (reload: applied in place). Its known hosts stay those of its flood
   * list. False for an unknown VNI; TypeError / RangeError on a bad value (the loader checks first).
   */
  setAcceptFrom(vni: number, acceptFrom: AcceptFrom): boolean {
    const net = this.ctx.byVni.get(vni);
    if (!net) return false;
    net.accept.setAcceptFrom(acceptFrom);
    return true;
  }

  /** Per-peer counters keyed by "address:port" (status, metrics). */
  peerCounters(): Map<string, PeerCounters> {
    const m = new Map<string, PeerCounters>();
    for (const p of this.ctx.peers.byKey.values()) m.set(p.label, p.counters);
    return m;
  }

  /** Same as `peerCounters`, as the metrics view's `peers()`. */
  peers(): Iterable<[string, PeerCounters]> {
    return this.peerCounters();
  }

  /** Every known peer with its flags. */
  peerList(): { endpoint: Endpoint; label: string; static: boolean; counters: PeerCounters }[] {
    return [...this.ctx.peers.byKey.values()].map((p) => ({ endpoint: p.endpoint, label: p.label, static: p.isStatic, counters: p.counters }));
  }

  // ---- control plane: FDB / neighbours (gossip) ------------------------------------------------

  /**
   * Static entry: `mac` of network `vni` lives behind `endpoint`, set on behalf of `owner` (the
   * gossip member whose record says so; omitted: the operator / API). Refused (false, counted in
   * the network's `fdbRefused`) when `mac` is a live local entry (`local_entry`) or a static entry
   * of another owner (`other_owner`). False also for an unknown VNI or a full table.
   */
  fdbSetRemote(vni: number, mac: string | number, endpoint: Endpoint, owner?: Endpoint): boolean {
    const net = this.ctx.byVni.get(vni);
    if (!net) return false;
    const m = toMacNumber(mac);
    const o = ownerKey(owner);
    // checked before the peer is resolved: a refused record must not touch the peer table
    const refused = net.fdb.staticRefusal(m, o);
    if (refused >= 0) return net.fdb.refuse(refused);
    return net.fdb.setStatic(m, this.ctx.peers.peerFor(endpoint), o);
  }

  /** Deletes the static entry for `mac` in network `vni` if `owner` set it (see fdbSetRemote); another's is refused and counted. */
  fdbDelete(vni: number, mac: string | number, owner?: Endpoint): boolean {
    const net = this.ctx.byVni.get(vni);
    return net ? net.fdb.deleteOwned(toMacNumber(mac), ownerKey(owner)) : false;
  }

  /** Removes every entry (all networks) behind the host at `endpoint`'s address; returns how many. */
  fdbRemoveByPeer(endpoint: Endpoint): number {
    const key = peerKeyOfEndpoint(endpoint);
    let n = 0;
    for (const net of this.ctx.byVni.values()) n += net.fdb.removeByPeer((p) => p.key === key);
    return n;
  }

  /**
   * ARP/ND suppression entry: `ip` of network `vni` is at `mac`, set on behalf of `owner` (as for
   * fdbSetRemote). Refused (false, counted) when `mac` is a live local entry (`local_entry`) or
   * another owner holds `ip` (`other_owner`). Throws TypeError on bad input.
   */
  neighSet(vni: number, ip: string, mac: string | number, owner?: Endpoint): boolean {
    const net = this.ctx.byVni.get(vni);
    if (!net) return false;
    const m = toMacNumber(mac);
    if (net.fdb.isLocal(Math.floor(m / 0x100000000), m >>> 0)) return net.fdb.refuse(fdbRefusalIndex.local_entry);
    if (!net.neigh.set(ip, m, ownerKey(owner))) return net.fdb.refuse(fdbRefusalIndex.other_owner);
    return true;
  }

  /** Deletes the neighbour entry for `ip` if `owner` set it; another's is refused and counted. */
  neighDelete(vni: number, ip: string, owner?: Endpoint): boolean {
    const net = this.ctx.byVni.get(vni);
    if (!net) return false;
    const r = net.neigh.delete(ip, ownerKey(owner));
    if (r === 'other_owner') return net.fdb.refuse(fdbRefusalIndex.other_owner);
    return r === 'deleted';
  }

  /** MACs seen on this host's bridge for `vni`, with the addresses they used (for gossip). */
  localEndpoints(vni: number): { mac: string; ipv4: string[]; ipv6: string[] }[] {
    const net = this.ctx.byVni.get(vni);
    if (!net) return [];
    const own = net.tap.mac;
    const ownText = [...own].map((b) => b.toString(16).padStart(2, '0')).join(':');
    return net.fdb.localEntries(this.ctx.clock.now()).filter((e) => e.mac !== ownText);
  }

  /** Changes whenever `localEndpoints(vni)` may have changed (cheap to poll). */
  localVersion(vni: number): number {
    return this.ctx.byVni.get(vni)?.fdb.localVersion ?? -1;
  }

  /** FDB entry counts per network and kind (metrics). */
  fdbEntries(): { network: string; vni: number; kind: string; count: number }[] {
    const out: { network: string; vni: number; kind: string; count: number }[] = [];
    const now = this.ctx.clock.now();
    for (const net of this.ctx.byVni.values()) {
      const counts = [0, 0, 0];
      for (const e of net.fdb.entries(now)) counts[FDB_KIND_NAMES.indexOf(e.kind)]++;
      FDB_KIND_NAMES.forEach((kind, i) => out.push({ network: net.config.name, vni: net.config.vni, kind, count: counts[i] }));
    }
    return out;
  }

  /** ARP/ND requests answered locally, per network (metrics). */
  neighAnswered(): { network: string; vni: number; count: number }[] {
    return [...this.ctx.byVni.values()].map((n) => ({ network: n.config.name, vni: n.config.vni, count: n.neighAnswered }));
  }

  /** Frames lost in each TAP's kernel queue before the agent read them (metrics; TAPs that can tell). */
  tapQueueDrops(): { network: string; vni: number; count: number }[] {
    const out: { network: string; vni: number; count: number }[] = [];
    for (const n of this.ctx.byVni.values()) {
      const c = n.tap.queueDrops?.() ?? null;
      if (c !== null) out.push({ network: n.config.name, vni: n.config.vni, count: c });
    }
    return out;
  }

  /** Batch-size histograms (metrics). */
  batchSizes(): BatchHistogram[] {
    const h = this.ctx.hist;
    return [h.tapRead, h.tapWrite, h.udpRecv, h.udpSend];
  }

  /** Busy-poll figures (window, spins, hits, µs spun; seams.ts `BusyPollStats`), or null when off or unsupported. */
  busyPollStats(): BusyPollStats | null {
    return this.busyPollUs > 0 ? this.ctx.udp.busyPollStats?.() ?? null : null;
  }

  /** The TAP's reader thread figures (`tapThreads`), or null when the TAP is read on the loop. */
  tapReaderStats(tap: TapDevice): { wakeups: number; fullWaits: number } | null {
    if (!this.readers.has(tap)) return null;
    const t = tap as Partial<{ readerStats(): { wakeups: number; fullWaits: number } }>;
    return typeof t.readerStats === 'function' ? t.readerStats() : null;
  }

  // ---- control plane: crypto ------------------------------------------------------------------

  /** Sets (or clears, with null) the cipher for encrypted networks. Throws if it needs more room than the slots have. */
  setCipher(cipher: PacketCipher | null): void {
    const ctx = this.ctx;
    if (cipher) {
      if (cipher.headroom + VXLAN_HLEN > this.headroom) throw new RangeError(`cipher headroom ${cipher.headroom} + 8 > data path headroom ${this.headroom}`);
      if (cipher.tailroom > TAILROOM) throw new RangeError(`cipher tailroom ${cipher.tailroom} > ${TAILROOM}`);
      if (cipher.sealSuperFrame === undefined) {
        for (const net of ctx.byVni.values()) {
          if (net.vnet && net.config.encrypted) throw new RangeError(`network ${net.config.name} has a vnet TAP: the cipher must implement sealSuperFrame`);
        }
      }
    }
    if (ctx.cipher && ctx.cipher !== cipher) ctx.cipher.detach?.();
    ctx.cipher = cipher;
    if (cipher) {
      const host: CipherHost = {
        clock: ctx.clock,
        sendBatch: (b) => ctx.safeSend(b),
        countTx: (vni, packets, bytes) => {
          const net = ctx.byVni.get(vni);
          if (net) {
            net.counters.txPackets += packets;
            net.counters.txBytes += bytes;
          }
        },
        countTxDrop: (vni, reason, packets) => {
          const net = ctx.byVni.get(vni);
          if (net) {
            ctx.capture.stamp(ctx.clock.now()); // outside a batch (a crypto queue timeout)
            ctx.capture.txDrop(net, txDropIndex[reason], packets, null, 0, 0, 0, null);
          }
        },
      };
      cipher.attach?.(host);
    }
    for (const net of ctx.byVni.values()) this.computeLimits(net);
    this.refreshRuns();
  }

  // ---- control plane: probes -----------------------------------------------------------------

  /** Sets (or clears, with null) the data-path probe stage (probe-seam.ts, src/probe). */
  setProbe(probe: ProbeStage | null): void {
    const ctx = this.ctx;
    if (ctx.probe && ctx.probe !== probe) ctx.probe.detach?.();
    if (probe === null) {
      for (const p of ctx.peers.byKey.values()) p.pathFrameMax = p.pathFrameMaxSealed = 0;
    }
    ctx.probe = probe;
    if (probe) {
      const host: ProbeHost = {
        clock: ctx.clock,
        family: ctx.underlay.family === 6 ? 6 : 4,
        mtu: ctx.underlay.mtu,
        networks: () => ctx.netList,
        staticPeers: () => ctx.peers.staticPeers,
        cipher: () => ctx.cipher,
        send: (b) => ctx.safeSend(b),
        tapWrite: (net, b) => ctx.safeTapWrite(net, b),
      };
      probe.attach?.(host);
    }
  }

  // ---- internals ----------------------------------------------------------------------------

  /**
   * GRO runs on when allowed (GRO_RUNS), the transport forms them and every network's TAP writes
   * GSO frames; every segment of a run is bounded by the smallest network frame limit. Control
   * plane (after any change of networks, TAPs or limits).
   */
  private refreshRuns(): void {
    const ctx = this.ctx;
    const nets = ctx.netList;
    let on = GRO_RUNS && nets.length > 0 && isGroRunUdp(ctx.udp);
    let maxFrame = Infinity;
    for (let i = 0; i < nets.length && on; i++) {
      if (!isGsoTap(nets[i].tap)) on = false;
      maxFrame = Math.min(maxFrame, nets[i].maxUntagged);
    }
    if (on && !this.runsArea) {
      this.runsArea = true;
      this.outside.reallocate(allocateInbound(this.batchSize, this.slotSize, true));
    }
    this.outside.setRuns(on, on ? maxFrame : 0);
  }

  private neededSlot(cfg: NetworkConfig): number {
    return this.headroom + Math.max(2048, Math.ceil((cfg.mtu + ETH_HLEN + VLAN_HLEN + TAILROOM) / 64) * 64);
  }

  private addNetworkInternal(config: NetworkConfig, tap: TapDevice): Network {
    const ctx = this.ctx;
    if (!Number.isInteger(config.vni) || config.vni < 0 || config.vni > 0xffffff) throw new RangeError(`bad VNI ${config.vni}`);
    if (ctx.byVni.has(config.vni)) throw new RangeError(`VNI ${config.vni} already configured`);
    const net = new Network(config, tap, this.fdbCfg, ctx.clock);
    // an encrypted vnet TAP needs a cipher that seals TSO super-frames (no cipher yet: fail closed until set)
    if (net.vnet && config.encrypted && ctx.cipher !== null && ctx.cipher.sealSuperFrame === undefined) {
      throw new RangeError(`network ${config.name}: the cipher cannot seal TSO super-frames; an encrypted network needs a TAP without IFF_VNET_HDR`);
    }
    if (net.vnet) this.inside.enableVnet();
    ctx.byVni.set(config.vni, net);
    ctx.netList = [...ctx.byVni.values()];
    ctx.capture.attach(net);
    this.outside.addNetwork(net);
    this.computeLimits(net);
    this.recomputeFlood();
    return net;
  }

  private computeLimits(net: Network): void {
    const cipher = this.ctx.cipher;
    const u = this.ctx.underlay;
    net.computeLimits(u.family, u.mtu, net.config.encrypted && cipher ? cipher.headroom + cipher.tailroom : 0);
  }

  /**
   * Flood lists, and with them each network's known hosts (admission). Lists are replaced, never
   * changed in place, so a network whose list is the same array keeps its accept table as is.
   */
  private recomputeFlood(): void {
    const ctx = this.ctx;
    for (const net of ctx.byVni.values()) {
      const list = net.override ?? ctx.peers.staticPeers;
      if (list === net.floodPeers) continue;
      net.floodPeers = list;
      net.serving = new Set(list);
      net.accept.setKnownRecords(list.map((p) => p.record));
    }
  }

  /** Periodic: FDB ageing, then forgetting learned peers nothing refers to any more. */
  private sweep(): void {
    const ctx = this.ctx;
    const now = ctx.clock.now();
    for (const net of ctx.byVni.values()) net.fdb.sweep(now);
    const used = new Set<Peer>(ctx.peers.staticPeers);
    for (const net of ctx.byVni.values()) {
      if (net.override) for (const p of net.override) used.add(p);
      for (const e of net.fdb.entries(now)) if (e.peer) used.add(e.peer);
    }
    ctx.peers.forgetUnused(used);
  }

  private register(dev: { onReadable(cb: () => void): void }, cb: () => void): void {
    if (this.registered.has(dev)) return;
    this.registered.add(dev);
    dev.onReadable(cb);
  }

  private registerTap(net: Network): void {
    const ctx = this.ctx;
    const tap = net.tap;
    if (!this.errorsRegistered.has(tap)) {
      this.errorsRegistered.add(tap);
      tap.onError?.((err) => {
        const owner = ctx.tapOwner(tap);
        if (owner !== undefined) ctx.failNetwork(owner, err);
      });
    }
    const rt = tap as Partial<ReaderTapDevice>;
    if (this.tapThreads && net.vnet && typeof rt.startReader === 'function' && !this.registered.has(tap)) {
      this.registered.add(tap);
      const ring = new ReaderRing(ctx, this.inside, tap as ReaderTapDevice, net, this.inside.vn!.slot);
      this.readers.set(tap, ring);
      rt.startReader(ring.ring, ring.again);
      return;
    }
    // One read per frame-at-a-time hop instead of two (native-io.ts setLatencyReads).
    if (tap.setLatencyReads !== undefined && !this.registered.has(tap)) tap.setLatencyReads(LATENCY_READS);
    if (this.busyPollUs > 0 && !this.registered.has(tap)) tap.setBusyPoll?.(this.busyPollUs);
    this.register(tap, () => {
      // the TAP object may outlive its network (removed, replaced, or re-added under a new Network)
      const owner = ctx.tapOwner(tap);
      if (owner !== undefined) this.inside.read(owner);
      else if (net.tap === tap) this.inside.read(net); // removed: drain and discard
      else pauseDevice(tap); // replaced: its owner closes it
    });
  }
}
