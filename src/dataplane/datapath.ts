/**
 * The data path of one host: frames between each network's TAP ("inside") and the underlay UDP
 * transport ("outside"), as VXLAN (RFC 7348). Hot path; batch-shaped; no per-packet allocation.
 *
 * Outbound (inside → outside), per TAP readiness, up to `burst` batches:
 *   1. readBatch into the TAP slab, each frame at slot + headroom (room for VXLAN + crypto headers);
 *   2. per frame: count; runt (< 14 B) → drop `runt_frame`;
 *   3. learn the source MAC as local (unicast, non-zero), snoop its IPv4/IPv6/ARP sender address;
 *   4. oversize (> MTU + 14, + 4 if VLAN-tagged, or the outer packet > underlay MTU) → `oversize_frame`;
 *   5. destination: group bit → ARP/ND suppression (known remote target: reply written to the TAP,
 *      frame consumed) else flood; known remote → unicast to its peer; known local → `local_dst`;
 *      unknown → flood. Flood = head-end replication to every peer serving the VNI (descriptors
 *      sharing the same slab bytes); no peer → `no_peers`;
 *   6. encrypted network without cipher → `no_session`;
 *   7. VXLAN header written in place at headroom − 8; source socket = flow hash % sourceCount;
 *   8. encrypted network: cipher.sealBatch over the descriptors (in place);
 *   9. ONE udp.sendBatch for the batch (more only when a flood overflows the descriptor table);
 *      count per network and per peer; unsent → `send_failed`. ARP/ND replies: one TAP writeBatch.
 *
 * Fast path (a network whose TAP reports `vnetHdr`, see `VnetTapDevice`): step 1 is `readBatchVnet`
 * into 64 KiB slots of their own slab (TSO super-frames with their gso type and MSS); steps 2–7 run
 * once per super-frame (one FDB decision, one VXLAN header); step 4 checks what goes on the wire (a
 * super-frame: every MSS-sized segment, headers included, must fit; else `oversize_frame`); step 9
 * is `sendBatchGso`, where the transport cuts super-frames into segments behind a copy of the VXLAN
 * header (UDP GSO or sendmmsg). Counters: txFrames/txFrameBytes count what the TAP gave (a
 * super-frame once), txPackets/txBytes what goes on the wire (one per segment, VXLAN header +
 * segment bytes, computed from the parsed headers exactly as the transport cuts them).
 * Encrypted networks on a vnet TAP: a TSO super-frame is handed (with its VXLAN header) to
 * `cipher.sealSuperFrame`, which cuts and seals it; the sealed datagrams go out at once with
 * `sendBatch` after what was queued before it. Plain frames are sealed per datagram as in step 8.
 *
 * Inbound (outside → inside), per UDP readiness, up to `burst` batches:
 *   1. recvBatch into the UDP slab (datagram at slot + 0), source address records alongside;
 *   2. cipher envelopes (if a cipher is set): cipher.openBatch in place → plaintext VXLAN, consumed
 *      control messages, or `decrypt_failed` (global: the VNI is unknown until decrypted);
 *   3. VXLAN header: `truncated` / `no_i_flag` / `reserved_bits` (global drops);
 *   4. VNI → network, else `unknown_vni` (global); from here counted per network (rxPackets);
 *   5. `plaintext_on_encrypted`, `runt_frame`, `oversize_frame`, `bad_src_mac` (group or zero),
 *      `own_src_mac` (the TAP's MAC or a local FDB entry);
 *   6. learn the inner source MAC → the sending peer (remote entry);
 *   7. one TAP writeBatch per network per batch, descriptors pointing INTO the receive slab at +8
 *      (no copy); unwritten → `tap_write_failed`. (With UDP GRO on, the transport splits coalesced
 *      buffers back into datagrams; a vnet TAP's writeBatch coalesces TCP segment runs and runs of
 *      equal-sized UDP datagrams of one flow into GSO frames: both invisible here.)
 *   Identity per network: rxDelivered + Σ rxDrops = rxPackets.
 *
 * A frame never crosses from one VNI to another: outbound frames carry their TAP's VNI; inbound
 * frames go to the TAP of the VNI in their header, and FDB / neighbour tables are per network.
 *
 * Control plane (any time outside a batch): start/stop, add/removeNetwork, static peers, gossip
 * hooks (network peers, static FDB entries, neighbour entries), local endpoints, cipher.
 */
import type { Clock, TimerHandle } from '../clock';
import type { AddressFamily, Config, Endpoint, FdbConfig, NetworkConfig } from '../config/types';
import type { Logger } from '../log';
import { LogLimiter, nullLogger } from '../log';
import {
  ADDR_LEN, canonicalEndpoint, endpointToRecord, endpointToString, peerKeyOf, peerKeyOfEndpoint, recordToEndpoint,
  type PeerKey,
} from './addr';
import {
  GlobalCounters, NetworkCounters, PeerCounters, rxDropIndex, txDropIndex,
} from './counters';
import {
  ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_HLEN, VLAN_HLEN, isVlanTpid, macEquals, toMacNumber,
} from './ethernet';
import { FDB_KIND_NAMES, FDB_LOCAL, Fdb } from './fdb';
import { flowHash } from './flowhash';
import type { RxBatch, TapDevice, TapReaderRing, TxBatch, UdpTransport } from './io';
import { NeighTable, arpRequestTarget, arpSenderIp, ndSolicitTarget, writeArpReply, writeNdAdvert } from './neigh';
import { VXLAN_HLEN, VXLAN_OK, vxlanCheck, vxlanVni } from './vxlan';
import {
  CIPHER_CONSUMED, CIPHER_FAILED, CIPHER_NO_SESSION, CIPHER_OK, CIPHER_QUEUED,
  type CipherBatch, type CipherHost, type PacketCipher,
} from './cipher-seam';

export {
  CIPHER_CONSUMED, CIPHER_FAILED, CIPHER_NO_SESSION, CIPHER_OK, CIPHER_QUEUED,
  type CipherBatch, type CipherHost, type PacketCipher,
};

// ---- fast-path seams ----------------------------------------------------------------------------

/**
 * A TAP opened with IFF_VNET_HDR (`NativeTap` with `vnetHdr: true`): frames come with their virtio
 * gso type and MSS (`gso[2i]`, `gso[2i+1]`; type 0 = a plain frame whose checksum is complete) and
 * may be TCP super-frames of up to `VNET_FRAME_MAX` bytes; slots need that much after the headroom.
 * `writeBatch` keeps its contract (the device coalesces TCP segment runs itself).
 */
export interface VnetTapDevice extends TapDevice {
  readonly vnetHdr: boolean;
  readBatchVnet(batch: RxBatch, gso: Uint16Array): number;
}

/**
 * A TAP whose reads can run on an addon thread (`NativeTap`): batches are read into a ring of
 * slabs while the data path processes earlier ones; taken and released oldest first.
 */
export interface ReaderTapDevice extends VnetTapDevice {
  startReader(ring: TapReaderRing, cb: () => void): void;
  /** `(k << 16) | n`, or -1 when no batch is ready. */
  readerNext(): number;
  readerRelease(): void;
}

/** Slabs per TAP reader ring: the thread fills one while JS processes another. */
const READER_SLABS = 3;

/** A network's reader ring and the per-slab views the pipeline sends from. */
interface ReaderState {
  ring: TapReaderRing;
  slabs: Buffer[];
  lens: Uint32Array[];
  gso: Uint16Array[];
  /** Descriptor tables / seal batches over each slab, rebuilt when `tx` is reallocated. */
  vtx: TxBatch[];
  vseal: (CipherBatch | undefined)[];
  forTx: TxBatch | null;
  again: () => void;
}

/**
 * A transport that can cut TSO super-frames (`NativeUdp.sendBatchGso`): descriptor j with
 * `gso[2j] !== 0` is a `prefixLen`-byte prefix + super-frame sent as MSS-sized segments.
 */
export interface GsoUdpTransport extends UdpTransport {
  sendBatchGso(batch: TxBatch, gso: Uint16Array, prefixLen?: number): number;
}

/** Largest frame a vnet TAP hands over (64 KiB TSO super-frame + Ethernet header; = native-io VNET_MAX_FRAME). */
export const VNET_FRAME_MAX = 65536 + 14;
/** virtio_net_hdr gso types (linux/virtio_net.h). */
const GSO_TCPV4 = 1;
const GSO_TCPV6 = 4;
const GSO_ECN = 0x80;
/** Most segments the transport cuts one super-frame into (native VX_GSO_MAX_SEGS). */
const GSO_MAX_SEGS = 256;

export function isVnetTap(tap: TapDevice): tap is VnetTapDevice {
  const t = tap as Partial<VnetTapDevice>;
  return t.vnetHdr === true && typeof t.readBatchVnet === 'function';
}

export function isGsoUdp(udp: UdpTransport): udp is GsoUdpTransport {
  return typeof (udp as Partial<GsoUdpTransport>).sendBatchGso === 'function';
}

/** Payload bytes after the headers of the last super-frame parsed by `tsoHeaderLen`. */
let tsoPayload = 0;

/**
 * Header length (Ethernet + IP + TCP) of TCP super-frame `b[off, off+len)` of virtio type `type`,
 * parsed exactly as the transport's segmenter does (native gso.c `vx_parse_tcp`: untagged IPv4
 * without fragmentation or IPv6 with TCP as next header; bytes past the IP length are not sent);
 * sets `tsoPayload`. −1 when the transport could not cut it.
 */
export function tsoHeaderLen(b: Buffer, off: number, len: number, type: number): number {
  const t = type & ~GSO_ECN;
  if (len < ETH_HLEN) return -1;
  const et = (b[off + 12] << 8) | b[off + 13];
  const ip = off + ETH_HLEN;
  let l4: number;
  let end: number;
  if (et === ETHERTYPE_IPV4 && t === GSO_TCPV4) {
    if (len < ETH_HLEN + 20 || b[ip] >>> 4 !== 4) return -1;
    const ihl = (b[ip] & 15) * 4;
    const tot = (b[ip + 2] << 8) | b[ip + 3];
    if (ihl < 20 || tot < ihl + 20 || ETH_HLEN + tot > len) return -1;
    if (b[ip + 9] !== 6 || (((b[ip + 6] << 8) | b[ip + 7]) & 0x3fff) !== 0) return -1;
    l4 = ETH_HLEN + ihl;
    end = ETH_HLEN + tot;
  } else if (et === ETHERTYPE_IPV6 && t === GSO_TCPV6) {
    if (len < ETH_HLEN + 40 || b[ip] >>> 4 !== 6 || b[ip + 6] !== 6) return -1;
    const pl = (b[ip + 4] << 8) | b[ip + 5];
    if (pl < 20 || ETH_HLEN + 40 + pl > len) return -1;
    l4 = ETH_HLEN + 40;
    end = ETH_HLEN + 40 + pl;
  } else {
    return -1;
  }
  const doff = (b[off + l4 + 12] >>> 4) * 4;
  if (doff < 20 || l4 + doff > end) return -1;
  tsoPayload = end - l4 - doff;
  return l4 + doff;
}

// ---- peers and networks ---------------------------------------------------------------------------

/** A peer host on the underlay. One object per address (see `addr.ts` on why ports are not keys). */
export class Peer {
  readonly key: PeerKey;
  readonly endpoint: Endpoint;
  /** 18-byte destination record (address + VXLAN port). */
  readonly record: Buffer;
  readonly label: string;
  readonly counters = new PeerCounters();
  /** Listed in the static peer set. */
  isStatic = false;

  constructor(ep: Endpoint) {
    this.endpoint = canonicalEndpoint(ep);
    this.record = endpointToRecord(this.endpoint);
    this.key = peerKeyOf(this.record, 0);
    this.label = endpointToString(this.endpoint);
  }
}

/** One network as the data path holds it (what `network(vni)` / `networks()` return). */
export interface DatapathNetwork {
  readonly config: NetworkConfig;
  readonly counters: NetworkCounters;
  readonly fdb: Fdb<Peer>;
  readonly neigh: NeighTable;
  readonly tap: TapDevice;
  /** ARP requests / neighbour solicitations answered locally. */
  readonly neighAnswered: number;
}

class Network implements DatapathNetwork {
  readonly counters = new NetworkCounters();
  readonly fdb: Fdb<Peer>;
  readonly neigh = new NeighTable();
  neighAnswered = 0;
  /** Largest frame sent/accepted, untagged and 802.1Q-tagged. */
  maxUntagged = 0;
  maxTagged = 0;
  /** Gossip's peer set for this VNI, or null → the static peers. */
  override: Peer[] | null = null;
  /** Effective flood list. */
  floodPeers: Peer[] = [];
  /** Inbound TAP write descriptors (into the UDP slab). */
  tapTx!: TxBatch;
  rxPending = 0;
  removed = false;
  /** The TAP is a vnet TAP: read with readBatchVnet into the 64 KiB slab (fast path). */
  readonly vnet: boolean;

  constructor(readonly config: NetworkConfig, readonly tap: TapDevice, fdbCfg: FdbConfig, clock: Clock) {
    this.fdb = new Fdb<Peer>({ ...fdbCfg, clock, counters: this.counters });
    this.vnet = isVnetTap(tap);
  }
}

export interface DatapathOptions {
  networks: { config: NetworkConfig; tap: TapDevice }[];
  udp: UdpTransport;
  clock: Clock;
  /** Underlay: family (IP header size), MTU (outer packet bound), VXLAN port (learned peers' port); address → excluded from peers. */
  underlay?: { family: AddressFamily; mtu: number; port: number; address?: string };
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
  /** Most peers learned from traffic (static and gossip peers not limited); default 4096. */
  maxLearnedPeers?: number;
  logger?: Logger;
}

const TAILROOM = 64;
const DEFAULT_FDB: FdbConfig = { ageingSeconds: 300, maxEntries: 16384 };
const RX_TRUNCATED = rxDropIndex.truncated;
const RX_NO_I_FLAG = rxDropIndex.no_i_flag;
const RX_RESERVED = rxDropIndex.reserved_bits;
const RX_UNKNOWN_VNI = rxDropIndex.unknown_vni;
const RX_RUNT = rxDropIndex.runt_frame;
const RX_OVERSIZE = rxDropIndex.oversize_frame;
const RX_BAD_SRC = rxDropIndex.bad_src_mac;
const RX_OWN_SRC = rxDropIndex.own_src_mac;
const RX_PLAINTEXT = rxDropIndex.plaintext_on_encrypted;
const RX_DECRYPT = rxDropIndex.decrypt_failed;
const RX_TAP_FAIL = rxDropIndex.tap_write_failed;
const TX_RUNT = txDropIndex.runt_frame;
const TX_OVERSIZE = txDropIndex.oversize_frame;
const TX_LOCAL_DST = txDropIndex.local_dst;
const TX_NO_PEERS = txDropIndex.no_peers;
const TX_NO_SESSION = txDropIndex.no_session;
const TX_SEND_FAILED = txDropIndex.send_failed;
const VXLAN_STATUS_INDEX = [-1, RX_TRUNCATED, RX_NO_I_FLAG, RX_RESERVED];

// datagram states in the inbound pass
const D_PLAIN = 0;
const D_DECRYPTED = 1;
const D_SKIP = 2;

/** Batch-size histogram buckets: ≤1, ≤2, ≤4 … ≤128, larger. */
const BATCH_BOUNDS = [1, 2, 4, 8, 16, 32, 64, 128] as const;
class BatchHistogram {
  readonly counts = new Float64Array(BATCH_BOUNDS.length + 1);
  sum = 0;
  constructor(readonly io: string) {}
  add(n: number): void {
    const b = n <= 1 ? 0 : 32 - Math.clz32(n - 1);
    this.counts[b < BATCH_BOUNDS.length ? b : BATCH_BOUNDS.length]++;
    this.sum += n;
  }
  get bounds(): readonly number[] {
    return BATCH_BOUNDS;
  }
}

export class Datapath {
  readonly counters = new GlobalCounters();
  readonly batchSize: number;
  readonly headroom: number;
  readonly burst: number;
  readonly tapThreads: boolean;
  private slotSize: number;
  private readonly udp: UdpTransport;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly underlay: { family: AddressFamily; mtu: number; port: number; address?: string };
  private readonly fdbCfg: FdbConfig;
  private readonly sourceCount: number;
  private readonly maxLearnedPeers: number;

  private readonly byVni = new Map<number, Network>();
  /** The same networks as an array (iterated per batch without allocating an iterator). */
  private netList: Network[] = [];
  private readonly peersByKey = new Map<PeerKey, Peer>();
  private staticPeers: Peer[] = [];
  private learnedPeers = 0;
  private cipher: PacketCipher | null = null;
  private running = false;
  private sweepTimer: TimerHandle | null = null;
  private readonly registered = new WeakSet<object>();
  private readonly warnings: LogLimiter;

  // outbound memory: TAP slots, then scratch slots for encrypted flood copies
  private tapSlab!: Buffer;
  private tapRx!: RxBatch;
  private scratchBase = 0;
  private scratchUsed = 0;
  private tx!: TxBatch;
  private txPeer: (Peer | null)[] = [];
  private txCap = 0;
  /** Per send descriptor: virtio gso type + MSS (0 = plain), datagrams and bytes it puts on the wire. */
  private txGso!: Uint16Array;
  private txSegs!: Uint16Array;
  private txWire!: Uint32Array;

  // fast path memory (allocated with the first vnet TAP): 64 KiB slots; `vtx` shares tx's arrays
  private readonly gsoUdp: GsoUdpTransport | null;
  private vnetSlab: Buffer | null = null;
  private vnetSlot = 0;
  private vnetRx!: RxBatch;
  private vnetGso!: Uint16Array;
  private vtx!: TxBatch;
  /** The descriptor table in use (tx, or vtx while a vnet batch is processed). */
  private cur!: TxBatch;
  private seal!: CipherBatch;
  /** `seal` over the vnet slab (same arrays). */
  private vseal!: CipherBatch;
  /** TAPs read by an addon thread (`tapThreads`), with their rings. */
  private readonly readers = new Map<TapDevice, ReaderState>();
  /** Encrypted fast path: sealed datagrams of one super-frame (UDP-GSO layout, stride last in encLens), their send table. */
  private encOut!: Buffer;
  private encLens!: Uint32Array;
  private encTx!: TxBatch;
  private readonly encVxlan = Buffer.alloc(VXLAN_HLEN);
  private replySlab!: Buffer;
  private replies!: TxBatch;

  // inbound memory
  private udpSlab!: Buffer;
  private udpRx!: RxBatch;
  private open!: CipherBatch;
  private openIdx!: Uint32Array;
  private dOff!: Uint32Array;
  private dLen!: Uint32Array;
  private dState!: Uint8Array;
  private touched: (Network | null)[] = [];
  private lastPeer: Peer | null = null;

  private readonly hist = {
    tapRead: new BatchHistogram('tap_read'),
    tapWrite: new BatchHistogram('tap_write'),
    udpRecv: new BatchHistogram('udp_recv'),
    udpSend: new BatchHistogram('udp_send'),
  };

  constructor(opts: DatapathOptions) {
    const cfg = opts.config;
    this.udp = opts.udp;
    this.clock = opts.clock;
    this.log = opts.logger ?? nullLogger;
    this.warnings = new LogLimiter(this.log, { intervalMs: 10_000, burst: 1, clock: this.clock });
    const u = opts.underlay ?? (cfg ? { family: cfg.underlay.family, mtu: cfg.underlay.mtu, port: cfg.underlay.port, address: cfg.underlay.address } : null);
    if (!u) throw new TypeError('Datapath: underlay (or config) is required');
    this.underlay = { ...u };
    this.fdbCfg = opts.fdb ?? cfg?.fdb ?? DEFAULT_FDB;
    this.batchSize = Math.max(1, Math.floor(opts.batchSize ?? 64));
    this.headroom = Math.max(64, Math.ceil((opts.headroom ?? 64) / 8) * 8);
    this.burst = Math.max(1, Math.floor(opts.burst ?? 8));
    this.tapThreads = opts.tapThreads === true;
    this.maxLearnedPeers = opts.maxLearnedPeers ?? 4096;
    this.sourceCount = Math.max(1, Math.min(256, this.udp.sourceCount | 0));
    this.gsoUdp = isGsoUdp(this.udp) ? this.udp : null;
    this.slotSize = opts.slotSize ?? this.headroom + 2048;
    for (const n of opts.networks) this.slotSize = Math.max(this.slotSize, this.neededSlot(n.config));
    this.allocate();
    for (const n of opts.networks) this.addNetworkInternal(n.config, n.tap);
    const peers = opts.peers ?? cfg?.peers;
    if (peers) this.setStaticPeers(peers);
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Registers readiness callbacks (once per device) and starts FDB ageing. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.register(this.udp, () => this.udpReadable());
    for (const net of this.byVni.values()) this.registerTap(net);
    const every = Math.min(30_000, Math.max(1_000, (this.fdbCfg.ageingSeconds * 1000) / 4));
    this.sweepTimer = this.clock.setInterval(every, () => this.sweep());
  }

  /**
   * Stops forwarding: later readiness callbacks drain and discard (a level-triggered device must be
   * read). Closing the devices is the owner's (agent's) job.
   */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.sweepTimer?.cancel();
    this.sweepTimer = null;
  }

  get isRunning(): boolean {
    return this.running;
  }

  // ---- control plane: networks ---------------------------------------------------------------

  networks(): DatapathNetwork[] {
    return [...this.byVni.values()];
  }

  network(vni: number): DatapathNetwork | undefined {
    return this.byVni.get(vni);
  }

  /** Adds a network (reload): others are not disturbed. Throws on a duplicate VNI. */
  addNetwork(n: { config: NetworkConfig; tap: TapDevice }): DatapathNetwork {
    const need = this.neededSlot(n.config);
    if (need > this.slotSize) {
      this.slotSize = need;
      this.allocate();
    }
    const net = this.addNetworkInternal(n.config, n.tap);
    if (this.running) this.registerTap(net);
    return net;
  }

  /** Removes a network: its FDB and neighbour table are dropped; the TAP is left to its owner to close. */
  removeNetwork(vni: number): boolean {
    const net = this.byVni.get(vni);
    if (!net) return false;
    net.removed = true;
    this.byVni.delete(vni);
    // the reader's ring stays referenced by its thread's callback until the owner closes the TAP
    if (!this.netList.some((n) => n !== net && n.tap === net.tap)) this.readers.delete(net.tap);
    this.netList = [...this.byVni.values()];
    net.fdb.clear();
    net.neigh.clear();
    return true;
  }

  // ---- control plane: peers -----------------------------------------------------------------

  /** Replaces the static peers (they serve every VNI without a gossip override). */
  setStaticPeers(endpoints: readonly Endpoint[]): void {
    const next: Peer[] = [];
    const seen = new Set<PeerKey>();
    for (const ep of endpoints) {
      if (this.isSelf(ep)) continue;
      const p = this.peerFor(ep);
      if (seen.has(p.key)) continue;
      seen.add(p.key);
      next.push(p);
    }
    for (const old of this.staticPeers) {
      if (seen.has(old.key)) continue;
      old.isStatic = false;
      // entries learned behind a peer we no longer talk to would black-hole until they age
      for (const net of this.byVni.values()) net.fdb.removeByPeer((p) => p === old);
    }
    for (const p of next) p.isStatic = true;
    this.staticPeers = next;
    this.recomputeFlood();
  }

  /** Gossip: the peers serving `vni` (flood targets), or null to fall back to the static peers. */
  setNetworkPeers(vni: number, endpoints: readonly Endpoint[] | null): boolean {
    const net = this.byVni.get(vni);
    if (!net) return false;
    if (endpoints === null) net.override = null;
    else {
      const list: Peer[] = [];
      const seen = new Set<PeerKey>();
      for (const ep of endpoints) {
        if (this.isSelf(ep)) continue;
        const p = this.peerFor(ep);
        if (!seen.has(p.key)) {
          seen.add(p.key);
          list.push(p);
        }
      }
      net.override = list;
    }
    this.recomputeFlood();
    return true;
  }

  /** Per-peer counters keyed by "address:port" (status, metrics). */
  peerCounters(): Map<string, PeerCounters> {
    const m = new Map<string, PeerCounters>();
    for (const p of this.peersByKey.values()) m.set(p.label, p.counters);
    return m;
  }

  /** Same as `peerCounters`, as the metrics view's `peers()`. */
  peers(): Iterable<[string, PeerCounters]> {
    return this.peerCounters();
  }

  /** Every known peer with its flags. */
  peerList(): { endpoint: Endpoint; label: string; static: boolean; counters: PeerCounters }[] {
    return [...this.peersByKey.values()].map((p) => ({ endpoint: p.endpoint, label: p.label, static: p.isStatic, counters: p.counters }));
  }

  // ---- control plane: FDB / neighbours (gossip) ------------------------------------------------

  /** Static entry: `mac` of network `vni` lives behind `endpoint`. False for an unknown VNI or a full table. */
  fdbSetRemote(vni: number, mac: string | number, endpoint: Endpoint): boolean {
    const net = this.byVni.get(vni);
    if (!net) return false;
    return net.fdb.setStatic(toMacNumber(mac), this.peerFor(endpoint));
  }

  /** Deletes the entry for `mac` in network `vni`. */
  fdbDelete(vni: number, mac: string | number): boolean {
    const net = this.byVni.get(vni);
    return net ? net.fdb.delete(toMacNumber(mac)) : false;
  }

  /** Removes every entry (all networks) behind the host at `endpoint`'s address; returns how many. */
  fdbRemoveByPeer(endpoint: Endpoint): number {
    const key = peerKeyOfEndpoint(endpoint);
    let n = 0;
    for (const net of this.byVni.values()) n += net.fdb.removeByPeer((p) => p.key === key);
    return n;
  }

  /** ARP/ND suppression entry: `ip` of network `vni` is at `mac`. Throws TypeError on bad input. */
  neighSet(vni: number, ip: string, mac: string | number): boolean {
    const net = this.byVni.get(vni);
    if (!net) return false;
    net.neigh.set(ip, mac);
    return true;
  }

  neighDelete(vni: number, ip: string): boolean {
    const net = this.byVni.get(vni);
    return net ? net.neigh.delete(ip) : false;
  }

  /** MACs seen on this host's bridge for `vni`, with the addresses they used (for gossip). */
  localEndpoints(vni: number): { mac: string; ipv4: string[]; ipv6: string[] }[] {
    const net = this.byVni.get(vni);
    if (!net) return [];
    const own = net.tap.mac;
    const ownText = [...own].map((b) => b.toString(16).padStart(2, '0')).join(':');
    return net.fdb.localEntries(this.clock.now()).filter((e) => e.mac !== ownText);
  }

  /** Changes whenever `localEndpoints(vni)` may have changed (cheap to poll). */
  localVersion(vni: number): number {
    return this.byVni.get(vni)?.fdb.localVersion ?? -1;
  }

  /** FDB entry counts per network and kind (metrics). */
  fdbEntries(): { network: string; vni: number; kind: string; count: number }[] {
    const out: { network: string; vni: number; kind: string; count: number }[] = [];
    const now = this.clock.now();
    for (const net of this.byVni.values()) {
      const counts = [0, 0, 0];
      for (const e of net.fdb.entries(now)) counts[FDB_KIND_NAMES.indexOf(e.kind)]++;
      FDB_KIND_NAMES.forEach((kind, i) => out.push({ network: net.config.name, vni: net.config.vni, kind, count: counts[i] }));
    }
    return out;
  }

  /** ARP/ND requests answered locally, per network (metrics). */
  neighAnswered(): { network: string; vni: number; count: number }[] {
    return [...this.byVni.values()].map((n) => ({ network: n.config.name, vni: n.config.vni, count: n.neighAnswered }));
  }

  /** Frames lost in each TAP's kernel queue before the agent read them (metrics; TAPs that can tell). */
  tapQueueDrops(): { network: string; vni: number; count: number }[] {
    const out: { network: string; vni: number; count: number }[] = [];
    for (const n of this.byVni.values()) {
      const c = n.tap.queueDrops?.() ?? null;
      if (c !== null) out.push({ network: n.config.name, vni: n.config.vni, count: c });
    }
    return out;
  }

  /** Batch-size histograms (metrics). */
  batchSizes(): BatchHistogram[] {
    return [this.hist.tapRead, this.hist.tapWrite, this.hist.udpRecv, this.hist.udpSend];
  }

  // ---- control plane: crypto ------------------------------------------------------------------

  /** Sets (or clears, with null) the cipher for encrypted networks. Throws if it needs more room than the slots have. */
  setCipher(cipher: PacketCipher | null): void {
    if (cipher) {
      if (cipher.headroom + VXLAN_HLEN > this.headroom) throw new RangeError(`cipher headroom ${cipher.headroom} + 8 > data path headroom ${this.headroom}`);
      if (cipher.tailroom > TAILROOM) throw new RangeError(`cipher tailroom ${cipher.tailroom} > ${TAILROOM}`);
      if (cipher.sealSuperFrame === undefined) {
        for (const net of this.byVni.values()) {
          if (net.vnet && net.config.encrypted) throw new RangeError(`network ${net.config.name} has a vnet TAP: the cipher must implement sealSuperFrame`);
        }
      }
    }
    if (this.cipher && this.cipher !== cipher) this.cipher.detach?.();
    this.cipher = cipher;
    if (cipher) {
      const host: CipherHost = {
        clock: this.clock,
        sendBatch: (b) => this.safeSend(b),
        countTx: (vni, packets, bytes) => {
          const net = this.byVni.get(vni);
          if (net) {
            net.counters.txPackets += packets;
            net.counters.txBytes += bytes;
          }
        },
        countTxDrop: (vni, reason, packets) => {
          const net = this.byVni.get(vni);
          if (net) net.counters.txDrops[txDropIndex[reason]] += packets;
        },
      };
      cipher.attach?.(host);
    }
    for (const net of this.byVni.values()) this.computeLimits(net);
  }

  // ---- outbound (inside → outside) ------------------------------------------------------------

  private tapReadable(net: Network): void {
    for (let round = 0; round < this.burst; round++) {
      let n: number;
      try {
        n = net.vnet ? (net.tap as VnetTapDevice).readBatchVnet(this.vnetRx, this.vnetGso) : net.tap.readBatch(this.tapRx);
      } catch (e) {
        this.warn('tap_read', e, { tap: net.tap.name });
        return;
      }
      if (n <= 0) return;
      if (!this.running || net.removed) continue; // drain and discard
      this.counters.tapBatches++;
      this.hist.tapRead.add(n);
      if (net.vnet) {
        this.cur = this.vtx;
        try {
          this.processTapBatch(net, n, this.vnetSlab!, this.vnetSlot, this.vnetRx.lens, this.vnetGso);
        } finally {
          this.cur = this.tx;
        }
      } else {
        this.processTapBatch(net, n, this.tapSlab, this.slotSize, this.tapRx.lens, null);
      }
      if (n < this.batchSize) return;
    }
  }

  /**
   * Steps 2–9 of the outbound pipeline over `n` frames at `slab[i * slot + headroom]`. `gso` (vnet
   * TAPs only) holds each frame's virtio gso type and MSS; descriptors go to `this.cur`.
   */
  private processTapBatch(net: Network, n: number, slab: Buffer, slot: number, lens: Uint32Array, gso: Uint16Array | null): void {
    const now = this.clock.now();
    const c = net.counters;
    const fdb = net.fdb;
    const head = this.headroom;
    const enc = net.config.encrypted;
    const vni = net.config.vni;
    const canSend = !enc || this.cipher !== null;
    fdb.setNow(now);
    this.cur.count = 0;
    this.scratchUsed = 0;
    this.replies.count = 0;
    for (let i = 0; i < n; i++) {
      const off = i * slot + head;
      const len = lens[i];
      c.txFrames++;
      c.txFrameBytes += len;
      if (len < ETH_HLEN) {
        c.txDrops[TX_RUNT]++;
        continue;
      }
      // learn the source as local (unicast, non-zero) and snoop its addresses
      if ((slab[off + 6] & 1) === 0) {
        const sHi = (slab[off + 6] << 8) | slab[off + 7];
        const sLo = ((slab[off + 8] << 24) | (slab[off + 9] << 16) | (slab[off + 10] << 8) | slab[off + 11]) >>> 0;
        if ((sHi | sLo) !== 0) {
          const s = fdb.learnLocal(sHi, sLo);
          if (s >= 0) this.snoop(slab, fdb, s, off, len);
        }
      }
      const tagged = isVlanTpid((slab[off + 12] << 8) | slab[off + 13]);
      // what goes on the wire: the frame itself, or (TSO super-frame) each of its segments
      const gsoType = gso === null ? 0 : gso[2 * i];
      let segs = 1;
      let wire = len + VXLAN_HLEN;
      if (gsoType === 0) {
        if (len > (tagged ? net.maxTagged : net.maxUntagged)) {
          c.txDrops[TX_OVERSIZE]++;
          continue;
        }
      } else {
        const mss = gso![2 * i + 1];
        // plaintext: the transport cuts super-frames (needs sendBatchGso); encrypted: the cipher does
        const hlen = (this.gsoUdp === null && !enc) || mss === 0 ? -1 : tsoHeaderLen(slab, off, len, gsoType);
        if (hlen < 0 || hlen + mss > net.maxUntagged) {
          c.txDrops[TX_OVERSIZE]++;
          continue;
        }
        segs = tsoPayload === 0 ? 1 : Math.ceil(tsoPayload / mss);
        if (segs > GSO_MAX_SEGS) {
          c.txDrops[TX_OVERSIZE]++;
          continue;
        }
        wire = segs * (VXLAN_HLEN + hlen) + tsoPayload;
      }
      let peer: Peer | null = null;
      if ((slab[off] & 1) !== 0) {
        if (!tagged && gsoType === 0 && this.trySuppress(slab, net, off, len)) continue;
      } else {
        const dHi = (slab[off] << 8) | slab[off + 1];
        const dLo = ((slab[off + 2] << 24) | (slab[off + 3] << 16) | (slab[off + 4] << 8) | slab[off + 5]) >>> 0;
        const s = fdb.lookup(dHi, dLo);
        if (s >= 0) {
          if (fdb.kindAt(s) === FDB_LOCAL) {
            c.txDrops[TX_LOCAL_DST]++;
            continue;
          }
          peer = fdb.peerAt(s);
        }
      }
      if (peer === null && net.floodPeers.length === 0) {
        c.txDrops[TX_NO_PEERS]++;
        continue;
      }
      if (!canSend) {
        c.txDrops[TX_NO_SESSION]++;
        continue;
      }
      // VXLAN header in place, in front of the frame
      const pkt = off - VXLAN_HLEN;
      slab[pkt] = 0x08;
      slab[pkt + 1] = 0;
      slab[pkt + 2] = 0;
      slab[pkt + 3] = 0;
      slab[pkt + 4] = (vni >>> 16) & 0xff;
      slab[pkt + 5] = (vni >>> 8) & 0xff;
      slab[pkt + 6] = vni & 0xff;
      slab[pkt + 7] = 0;
      const plen = len + VXLAN_HLEN;
      const src = this.sourceCount > 1 ? flowHash(slab, off, len) % this.sourceCount : 0;
      const mss = gsoType === 0 ? 0 : gso![2 * i + 1];
      if (enc && gsoType !== 0) {
        // encrypted super-frame: what is queued goes first (order within a flow), then the cipher
        // cuts and seals it and the datagrams are sent right away
        this.flushTx(net);
        if (peer !== null) {
          this.sealSuper(net, slab, pkt, off, len, src, peer, gsoType, mss);
        } else {
          c.txFlooded++;
          const peers = net.floodPeers;
          for (let p = 0; p < peers.length; p++) this.sealSuper(net, slab, pkt, off, len, src, peers[p], gsoType, mss);
        }
        continue;
      }
      if (peer !== null) {
        this.emit(net, pkt, plen, src, peer, gsoType, mss, segs, wire);
      } else {
        c.txFlooded++;
        const peers = net.floodPeers;
        if (enc && gso !== null) {
          // vnet slab (no scratch slots there): every peer's copy goes to the plain slab's scratch
          // slots and is sealed and sent before the next frame (queued ones first: order kept)
          this.flushTx(net);
          this.cur = this.tx;
          try {
            for (let p = 0; p < peers.length; p++) this.emit(net, this.copyToScratch(net, slab, pkt, plen), plen, src, peers[p], 0, 0, 1, plen);
            this.flushTx(net);
          } finally {
            this.cur = this.vtx;
          }
        } else if (enc) {
          // each peer's copy is sealed separately: copies first, the in-place one last
          for (let p = 1; p < peers.length; p++) this.emit(net, this.copyToScratch(net, slab, pkt, plen), plen, src, peers[p], 0, 0, 1, plen);
          this.emit(net, pkt, plen, src, peers[0], 0, 0, 1, plen);
        } else {
          for (let p = 0; p < peers.length; p++) this.emit(net, pkt, plen, src, peers[p], gsoType, mss, segs, wire);
        }
      }
    }
    if (this.replies.count > 0) {
      const w = this.safeTapWrite(net, this.replies);
      net.neighAnswered += w;
      this.hist.tapWrite.add(this.replies.count);
    }
    this.flushTx(net);
  }

  /**
   * Adds one send descriptor (`gsoType`/`mss` non-zero: a super-frame that becomes `segs` datagrams,
   * `wire` bytes in all); flushes first when the table is full.
   */
  private emit(net: Network, off: number, len: number, src: number, peer: Peer, gsoType: number, mss: number, segs: number,
    wire: number): void {
    const tx = this.cur;
    if (tx.count === this.txCap) this.flushTx(net);
    const j = tx.count++;
    tx.offs[j] = off;
    tx.lens[j] = len;
    tx.srcIdx[j] = src;
    tx.addrs.set(peer.record, j * ADDR_LEN);
    this.txGso[2 * j] = gsoType;
    this.txGso[2 * j + 1] = mss;
    this.txSegs[j] = segs;
    this.txWire[j] = wire;
    this.txPeer[j] = peer;
  }

  /** Copies a VXLAN packet from `from` into a scratch slot of the plain slab (encrypted floods only); returns its offset. */
  private copyToScratch(net: Network, from: Buffer, off: number, len: number): number {
    if (this.scratchUsed === this.batchSize) this.flushTx(net);
    const dst = this.scratchBase + this.scratchUsed * this.slotSize + this.headroom - VXLAN_HLEN;
    this.scratchUsed++;
    from.copy(this.tapSlab, dst, off, off + len);
    return dst;
  }

  /**
   * Encrypted fast path: the VXLAN packet at `slab[pkt]` (header at `pkt`, TSO super-frame at `off`,
   * `len` bytes) sealed by `cipher.sealSuperFrame` into `encOut` and sent to `peer` at once (one
   * sendBatch of per-datagram descriptors). Fail closed: no cipher / no session → `no_session`,
   * never plaintext. Counts the datagrams that reached the wire.
   */
  private sealSuper(net: Network, slab: Buffer, pkt: number, off: number, len: number, src: number, peer: Peer,
    gsoType: number, mss: number): void {
    const c = net.counters;
    const cipher = this.cipher;
    let n = 0;
    if (cipher !== null && cipher.sealSuperFrame !== undefined) {
      slab.copy(this.encVxlan, 0, pkt, pkt + VXLAN_HLEN);
      try {
        n = cipher.sealSuperFrame(peer.record, 0, this.encVxlan, slab.subarray(off, off + len), gsoType, mss, this.encOut, this.encLens);
      } catch (e) {
        this.warn('seal', e, {});
        n = -3;
      }
    }
    if (n <= 0) {
      c.txDrops[n === -1 || n === -2 ? TX_OVERSIZE : TX_NO_SESSION]++;
      return;
    }
    const lens = this.encLens;
    const stride = lens[lens.length - 1];
    const b = this.encTx;
    const rec = peer.record;
    for (let i = 0; i < n; i++) {
      b.offs[i] = i * stride;
      b.lens[i] = lens[i];
      b.srcIdx[i] = src;
      b.addrs.set(rec, i * ADDR_LEN);
    }
    b.count = n;
    this.hist.udpSend.add(n);
    const sent = this.safeSend(b);
    let bytes = 0;
    for (let i = 0; i < sent; i++) bytes += lens[i];
    c.txPackets += sent;
    c.txBytes += bytes;
    peer.counters.txPackets += sent;
    peer.counters.txBytes += bytes;
    if (sent < n) c.txDrops[TX_SEND_FAILED] += n - sent;
    b.count = 0;
  }

  /** Seals (encrypted networks), sends the descriptors, counts. */
  private flushTx(net: Network): void {
    const tx = this.cur;
    const c = net.counters;
    if (tx.count > 0 && net.config.encrypted) {
      const cipher = this.cipher;
      if (cipher === null) {
        c.txDrops[TX_NO_SESSION] += tx.count;
        tx.count = 0;
      } else {
        const sb = tx === this.vtx ? this.vseal : this.seal;
        sb.count = tx.count;
        sb.vnis.fill(net.config.vni, 0, tx.count);
        sb.status.fill(CIPHER_NO_SESSION, 0, tx.count);
        try {
          cipher.sealBatch(sb);
        } catch (e) {
          this.warn('seal', e, {});
        }
        let k = 0;
        for (let j = 0; j < sb.count; j++) {
          const st = sb.status[j];
          if (st === CIPHER_OK) {
            tx.offs[k] = sb.outOffs[j];
            tx.lens[k] = sb.outLens[j];
            tx.srcIdx[k] = tx.srcIdx[j];
            this.txWire[k] = sb.outLens[j];
            if (k !== j) tx.addrs.copyWithin(k * ADDR_LEN, j * ADDR_LEN, (j + 1) * ADDR_LEN);
            this.txPeer[k] = this.txPeer[j];
            k++;
          } else if (st !== CIPHER_QUEUED) {
            c.txDrops[TX_NO_SESSION]++;
          }
        }
        tx.count = k;
      }
    }
    this.scratchUsed = 0;
    if (tx.count === 0) return;
    const count = tx.count;
    this.hist.udpSend.add(count);
    const sent = tx === this.vtx ? this.safeSendGso(tx) : this.safeSend(tx);
    const segs = this.txSegs;
    const wire = this.txWire;
    let failed = 0;
    for (let j = 0; j < count; j++) {
      if (j >= sent) {
        failed += segs[j];
        continue;
      }
      const pc = this.txPeer[j]!.counters;
      c.txPackets += segs[j];
      c.txBytes += wire[j];
      pc.txPackets += segs[j];
      pc.txBytes += wire[j];
    }
    if (failed > 0) c.txDrops[TX_SEND_FAILED] += failed;
    tx.count = 0;
  }

  /** Records the IPv4/IPv6/ARP-sender address of a frame from the local entry `s`. */
  private snoop(b: Buffer, fdb: Fdb<Peer>, s: number, off: number, len: number): void {
    const et = (b[off + 12] << 8) | b[off + 13];
    if (et === ETHERTYPE_IPV4) {
      if (len >= ETH_HLEN + 20 && b[off + 14] >>> 4 === 4) {
        fdb.noteIPv4(s, ((b[off + 26] << 24) | (b[off + 27] << 16) | (b[off + 28] << 8) | b[off + 29]) >>> 0);
      }
    } else if (et === ETHERTYPE_IPV6) {
      if (len >= ETH_HLEN + 40 && b[off + 14] >>> 4 === 6) fdb.noteIPv6(s, b, off + 22);
    } else if (et === ETHERTYPE_ARP) {
      const spa = arpSenderIp(b, off, len);
      // only when the ARP sender hardware address is the frame's source
      if (spa > 0 && macEquals(b, off + ETH_HLEN + 8, b, off + 6)) fdb.noteIPv4(s, spa);
    }
  }

  /** ARP request / neighbour solicitation for a known remote endpoint → reply queued for the TAP. */
  private trySuppress(b: Buffer, net: Network, off: number, len: number): boolean {
    if (net.neigh.size === 0) return false;
    const et = (b[off + 12] << 8) | b[off + 13];
    let mac = -1;
    let isArp = false;
    if (et === ETHERTYPE_ARP) {
      const tpa = arpRequestTarget(b, off, len);
      if (tpa < 0) return false;
      mac = net.neigh.lookupV4(tpa);
      isArp = true;
    } else if (et === ETHERTYPE_IPV6) {
      const t = ndSolicitTarget(b, off, len);
      if (t < 0) return false;
      mac = net.neigh.lookupV6(b, t);
    } else {
      return false;
    }
    if (mac < 0) return false;
    // a target on our own bridge answers for itself
    if (net.fdb.isLocal(Math.floor(mac / 0x100000000), mac >>> 0)) return false;
    const r = this.replies;
    if (r.count === this.batchSize) return false;
    const o = r.count * 128;
    r.offs[r.count] = o;
    r.lens[r.count] = isArp ? writeArpReply(b, off, mac, this.replySlab, o) : writeNdAdvert(b, off, mac, this.replySlab, o);
    r.count++;
    return true;
  }

  // ---- inbound (outside → inside) -------------------------------------------------------------

  private udpReadable(): void {
    for (let round = 0; round < this.burst; round++) {
      let n: number;
      try {
        n = this.udp.recvBatch(this.udpRx);
      } catch (e) {
        this.warn('udp_recv', e, {});
        return;
      }
      if (n <= 0) return;
      if (!this.running) continue; // drain and discard
      this.counters.udpBatches++;
      this.hist.udpRecv.add(n);
      this.processUdpBatch(n);
      if (n < this.batchSize) return;
    }
  }

  private processUdpBatch(n: number): void {
    const now = this.clock.now();
    const g = this.counters;
    const slab = this.udpSlab;
    const lens = this.udpRx.lens;
    const addrs = this.udpRx.addrs;
    const slot = this.slotSize;
    const dOff = this.dOff;
    const dLen = this.dLen;
    const dState = this.dState;
    g.rxDatagrams += n;
    const nets = this.netList;
    for (let k = 0; k < nets.length; k++) nets[k].fdb.setNow(now);
    for (let i = 0; i < n; i++) {
      dOff[i] = i * slot;
      dLen[i] = lens[i];
      dState[i] = D_PLAIN;
    }
    if (this.cipher !== null) this.openEnvelopes(n);
    let touched = 0;
    for (let i = 0; i < n; i++) {
      const state = dState[i];
      if (state === D_SKIP) continue;
      const off = dOff[i];
      const len = dLen[i];
      const st = vxlanCheck(slab, off, len);
      if (st !== VXLAN_OK) {
        g.rxDrops[VXLAN_STATUS_INDEX[st]]++;
        continue;
      }
      const net = this.byVni.get(vxlanVni(slab, off));
      if (net === undefined) {
        g.rxDrops[RX_UNKNOWN_VNI]++;
        continue;
      }
      const c = net.counters;
      c.rxPackets++;
      c.rxBytes += len;
      const aOff = i * ADDR_LEN;
      let peer = this.findPeer(addrs, aOff);
      if (peer !== null) {
        peer.counters.rxPackets++;
        peer.counters.rxBytes += len;
      }
      if (net.config.encrypted && state !== D_DECRYPTED) {
        c.rxDrops[RX_PLAINTEXT]++;
        continue;
      }
      const inner = off + VXLAN_HLEN;
      const ilen = len - VXLAN_HLEN;
      if (ilen < ETH_HLEN) {
        c.rxDrops[RX_RUNT]++;
        continue;
      }
      if (ilen > (isVlanTpid((slab[inner + 12] << 8) | slab[inner + 13]) ? net.maxTagged : net.maxUntagged)) {
        c.rxDrops[RX_OVERSIZE]++;
        continue;
      }
      const sHi = (slab[inner + 6] << 8) | slab[inner + 7];
      const sLo = ((slab[inner + 8] << 24) | (slab[inner + 9] << 16) | (slab[inner + 10] << 8) | slab[inner + 11]) >>> 0;
      if ((sHi & 0x100) !== 0 || (sHi | sLo) === 0) {
        c.rxDrops[RX_BAD_SRC]++;
        continue;
      }
      if (macEquals(slab, inner + 6, net.tap.mac, 0) || net.fdb.isLocal(sHi, sLo)) {
        c.rxDrops[RX_OWN_SRC]++;
        continue;
      }
      if (peer === null) peer = this.learnPeer(addrs, aOff);
      if (peer !== null) net.fdb.learnRemote(sHi, sLo, peer);
      if (net.rxPending === 0) this.touched[touched++] = net;
      const w = net.tapTx;
      w.offs[net.rxPending] = inner;
      w.lens[net.rxPending] = ilen;
      net.rxPending++;
    }
    for (let t = 0; t < touched; t++) {
      const net = this.touched[t]!;
      this.touched[t] = null;
      const w = net.tapTx;
      const count = net.rxPending;
      net.rxPending = 0;
      w.count = count;
      this.hist.tapWrite.add(count);
      const written = this.safeTapWrite(net, w);
      const c = net.counters;
      c.rxDelivered += written;
      for (let j = 0; j < written; j++) c.rxDeliveredBytes += w.lens[j];
      if (written < count) c.rxDrops[RX_TAP_FAIL] += count - written;
    }
  }

  /** Hands cipher envelopes to `openBatch`; marks each datagram decrypted, consumed or failed. */
  private openEnvelopes(n: number): void {
    const cipher = this.cipher!;
    const ob = this.open;
    const slab = this.udpSlab;
    ob.count = 0;
    for (let i = 0; i < n; i++) {
      if (!cipher.isEnvelope(slab, this.dOff[i], this.dLen[i])) continue;
      const j = ob.count++;
      ob.offs[j] = this.dOff[i];
      ob.lens[j] = this.dLen[i];
      this.udpRx.addrs.copy(ob.addrs, j * ADDR_LEN, i * ADDR_LEN, (i + 1) * ADDR_LEN);
      this.openIdx[j] = i;
      this.dState[i] = D_SKIP;
    }
    if (ob.count === 0) return;
    ob.status.fill(CIPHER_FAILED, 0, ob.count);
    try {
      cipher.openBatch(ob);
    } catch (e) {
      this.warn('open', e, {});
    }
    for (let j = 0; j < ob.count; j++) {
      const i = this.openIdx[j];
      const st = ob.status[j];
      if (st === CIPHER_OK) {
        const o = ob.outOffs[j];
        const l = ob.outLens[j];
        // the plaintext must lie inside the datagram's own slot
        if (o >= ob.offs[j] && o + l <= ob.offs[j] + ob.lens[j]) {
          this.dOff[i] = o;
          this.dLen[i] = l;
          this.dState[i] = D_DECRYPTED;
          continue;
        }
        this.counters.rxDrops[RX_DECRYPT]++;
      } else if (st !== CIPHER_CONSUMED) {
        this.counters.rxDrops[RX_DECRYPT]++;
      }
    }
  }

  /** Known peer for the source record at `addrs[off]`, or null. Allocation-free for IPv4 and for repeats. */
  private findPeer(addrs: Buffer, off: number): Peer | null {
    const last = this.lastPeer;
    if (last !== null) {
      const r = last.record;
      let k = 0;
      while (k < 16 && r[k] === addrs[off + k]) k++;
      if (k === 16) return last;
    }
    const p = this.peersByKey.get(peerKeyOf(addrs, off));
    if (p === undefined) return null;
    this.lastPeer = p;
    return p;
  }

  /** A new peer learned from traffic (sent to at our VXLAN port), bounded by maxLearnedPeers. */
  private learnPeer(addrs: Buffer, off: number): Peer | null {
    if (this.learnedPeers >= this.maxLearnedPeers) return null;
    const ep = recordToEndpoint(addrs, off);
    ep.port = this.underlay.port;
    const p = new Peer(ep);
    this.peersByKey.set(p.key, p);
    this.learnedPeers++;
    this.lastPeer = p;
    return p;
  }

  // ---- internals ----------------------------------------------------------------------------

  private neededSlot(cfg: NetworkConfig): number {
    return this.headroom + Math.max(2048, Math.ceil((cfg.mtu + ETH_HLEN + VLAN_HLEN + TAILROOM) / 64) * 64);
  }

  /** (Re)allocates slabs and batch descriptors for the current slot size and batch size. */
  private allocate(): void {
    const B = this.batchSize;
    const S = this.slotSize;
    this.txCap = Math.max(256, B * 4);
    this.tapSlab = Buffer.alloc(S * B * 2); // B TAP slots + B scratch slots
    this.scratchBase = S * B;
    const lens = new Uint32Array(B);
    this.tapRx = { slab: this.tapSlab, slotSize: S, headroom: this.headroom, slots: B, lens, addrs: Buffer.alloc(0) };
    const txOffs = new Uint32Array(this.txCap);
    const txLens = new Uint32Array(this.txCap);
    const txAddrs = Buffer.alloc(this.txCap * ADDR_LEN);
    this.tx = { slab: this.tapSlab, offs: txOffs, lens: txLens, addrs: txAddrs, srcIdx: new Uint8Array(this.txCap), count: 0 };
    this.cur = this.tx;
    this.txPeer = new Array<Peer | null>(this.txCap).fill(null);
    this.txGso = new Uint16Array(2 * this.txCap);
    this.txSegs = new Uint16Array(this.txCap);
    this.txWire = new Uint32Array(this.txCap);
    if (this.vnetSlab !== null) this.allocateVnet();
    this.seal = {
      slab: this.tapSlab, offs: txOffs, lens: txLens, addrs: txAddrs, vnis: new Uint32Array(this.txCap),
      outOffs: new Uint32Array(this.txCap), outLens: new Uint32Array(this.txCap), status: new Uint8Array(this.txCap), count: 0,
    };
    if (this.vnetSlab !== null) this.vseal = { ...this.seal, slab: this.vnetSlab };
    this.replySlab = Buffer.alloc(B * 128);
    this.replies = { slab: this.replySlab, offs: new Uint32Array(B), lens: new Uint32Array(B), addrs: Buffer.alloc(0), srcIdx: new Uint8Array(0), count: 0 };

    this.udpSlab = Buffer.alloc(S * B);
    this.udpRx = { slab: this.udpSlab, slotSize: S, headroom: 0, slots: B, lens: new Uint32Array(B), addrs: Buffer.alloc(B * ADDR_LEN) };
    this.open = {
      slab: this.udpSlab, offs: new Uint32Array(B), lens: new Uint32Array(B), addrs: Buffer.alloc(B * ADDR_LEN), vnis: new Uint32Array(B),
      outOffs: new Uint32Array(B), outLens: new Uint32Array(B), status: new Uint8Array(B), count: 0,
    };
    this.openIdx = new Uint32Array(B);
    this.dOff = new Uint32Array(B);
    this.dLen = new Uint32Array(B);
    this.dState = new Uint8Array(B);
    for (const net of this.byVni.values()) this.allocateNet(net);
  }

  /**
   * Fast-path slab: `batchSize` slots of headroom + VNET_FRAME_MAX + tailroom (≈ 4.2 MB for 64), and
   * `vtx`, the descriptor table over it (the same arrays as `tx`: one batch is processed at a time).
   */
  private allocateVnet(): void {
    const B = this.batchSize;
    if (this.vnetSlab === null) {
      this.vnetSlot = Math.ceil((this.headroom + VNET_FRAME_MAX + TAILROOM) / 64) * 64;
      this.vnetSlab = Buffer.alloc(this.vnetSlot * B);
      this.vnetRx = { slab: this.vnetSlab, slotSize: this.vnetSlot, headroom: this.headroom, slots: B, lens: new Uint32Array(B), addrs: Buffer.alloc(0) };
      this.vnetGso = new Uint16Array(2 * B);
    }
    const t = this.tx;
    this.vtx = { slab: this.vnetSlab, offs: t.offs, lens: t.lens, addrs: t.addrs, srcIdx: t.srcIdx, count: 0 };
    if (this.seal !== undefined) this.vseal = { ...this.seal, slab: this.vnetSlab };
    if (this.encOut === undefined) {
      // sealed super-frame: ≤ 256 segments × (cipher + VXLAN + headers) + 64 KiB payload
      this.encOut = Buffer.alloc(256 * 1024);
      this.encLens = new Uint32Array(GSO_MAX_SEGS + 1);
      this.encTx = {
        slab: this.encOut, offs: new Uint32Array(GSO_MAX_SEGS), lens: new Uint32Array(GSO_MAX_SEGS),
        addrs: Buffer.alloc(GSO_MAX_SEGS * ADDR_LEN), srcIdx: new Uint8Array(GSO_MAX_SEGS), count: 0,
      };
    }
  }

  private allocateNet(net: Network): void {
    const B = this.batchSize;
    net.tapTx = { slab: this.udpSlab, offs: new Uint32Array(B), lens: new Uint32Array(B), addrs: Buffer.alloc(0), srcIdx: new Uint8Array(0), count: 0 };
    this.touched = new Array<Network | null>(Math.max(this.touched.length, this.byVni.size + 1)).fill(null);
  }

  private addNetworkInternal(config: NetworkConfig, tap: TapDevice): Network {
    if (!Number.isInteger(config.vni) || config.vni < 0 || config.vni > 0xffffff) throw new RangeError(`bad VNI ${config.vni}`);
    if (this.byVni.has(config.vni)) throw new RangeError(`VNI ${config.vni} already configured`);
    const net = new Network(config, tap, this.fdbCfg, this.clock);
    // an encrypted vnet TAP needs a cipher that seals TSO super-frames (no cipher yet: fail closed until set)
    if (net.vnet && config.encrypted && this.cipher !== null && this.cipher.sealSuperFrame === undefined) {
      throw new RangeError(`network ${config.name}: the cipher cannot seal TSO super-frames; an encrypted network needs a TAP without IFF_VNET_HDR`);
    }
    if (net.vnet && this.vnetSlab === null) this.allocateVnet();
    this.byVni.set(config.vni, net);
    this.netList = [...this.byVni.values()];
    this.allocateNet(net);
    this.computeLimits(net);
    this.recomputeFlood();
    return net;
  }

  /** Largest frames: MTU + 14 (+ 4 tagged), and never an outer packet above the underlay MTU. */
  private computeLimits(net: Network): void {
    const ipHdr = this.underlay.family === 6 ? 40 : 20;
    const overhead = net.config.encrypted && this.cipher ? this.cipher.headroom + this.cipher.tailroom : 0;
    const outerRoom = this.underlay.mtu - ipHdr - 8 - VXLAN_HLEN - overhead;
    net.maxUntagged = Math.min(net.config.mtu + ETH_HLEN, outerRoom);
    net.maxTagged = Math.min(net.config.mtu + ETH_HLEN + VLAN_HLEN, outerRoom);
  }

  private recomputeFlood(): void {
    for (const net of this.byVni.values()) net.floodPeers = net.override ?? this.staticPeers;
  }

  private isSelf(ep: Endpoint): boolean {
    const a = this.underlay.address;
    if (!a) return false;
    try {
      return peerKeyOfEndpoint(ep) === peerKeyOfEndpoint({ address: a, port: 0, family: this.underlay.family }) && ep.port === this.underlay.port;
    } catch {
      return false;
    }
  }

  /**
   * The peer object for `ep` (one per address). An existing peer at the same address but another
   * port is replaced: its FDB entries and list memberships are dropped.
   */
  private peerFor(ep: Endpoint): Peer {
    const fresh = new Peer(ep);
    const old = this.peersByKey.get(fresh.key);
    if (old && old.endpoint.port === fresh.endpoint.port) return old;
    if (old) {
      for (const net of this.byVni.values()) {
        net.fdb.removeByPeer((p) => p === old);
        if (net.override) net.override = net.override.filter((p) => p !== old);
      }
      this.staticPeers = this.staticPeers.filter((p) => p !== old);
      if (!old.isStatic) this.learnedPeers = Math.max(0, this.learnedPeers - 1);
      if (this.lastPeer === old) this.lastPeer = null;
    }
    this.peersByKey.set(fresh.key, fresh);
    return fresh;
  }

  /** Periodic: FDB ageing, then forgetting learned peers nothing refers to any more. */
  private sweep(): void {
    const now = this.clock.now();
    for (const net of this.byVni.values()) net.fdb.sweep(now);
    const used = new Set<Peer>(this.staticPeers);
    for (const net of this.byVni.values()) {
      if (net.override) for (const p of net.override) used.add(p);
      for (const e of net.fdb.entries(now)) if (e.peer) used.add(e.peer);
    }
    for (const [k, p] of this.peersByKey) {
      if (!used.has(p)) {
        this.peersByKey.delete(k);
        if (this.lastPeer === p) this.lastPeer = null;
      }
    }
    this.learnedPeers = 0;
    for (const p of this.peersByKey.values()) if (!p.isStatic) this.learnedPeers++;
  }

  private register(dev: { onReadable(cb: () => void): void }, cb: () => void): void {
    if (this.registered.has(dev)) return;
    this.registered.add(dev);
    dev.onReadable(cb);
  }

  private registerTap(net: Network): void {
    const rt = net.tap as Partial<ReaderTapDevice>;
    if (this.tapThreads && net.vnet && typeof rt.startReader === 'function' && !this.registered.has(net.tap)) {
      this.registered.add(net.tap);
      const st = this.newReaderState(net);
      this.readers.set(net.tap, st);
      rt.startReader(st.ring, st.again);
      return;
    }
    this.register(net.tap, () => {
      // the TAP object may outlive its network (removed, or re-added under a new Network)
      const cur = this.tapOwner(net.tap) ?? net;
      this.tapReadable(cur);
    });
  }

  /** The TAP's reader thread figures (`tapThreads`), or null when the TAP is read on the loop. */
  tapReaderStats(tap: TapDevice): { wakeups: number; fullWaits: number } | null {
    if (!this.readers.has(tap)) return null;
    const t = tap as Partial<{ readerStats(): { wakeups: number; fullWaits: number } }>;
    return typeof t.readerStats === 'function' ? t.readerStats() : null;
  }

  private newReaderState(net: Network): ReaderState {
    const B = this.batchSize;
    const slot = this.vnetSlot;
    const ring: TapReaderRing = {
      slab: Buffer.alloc(READER_SLABS * B * slot), slotSize: slot, headroom: this.headroom, slots: B, nslabs: READER_SLABS,
      lens: new Uint32Array(READER_SLABS * B), gso: new Uint16Array(READER_SLABS * 2 * B),
    };
    const st: ReaderState = {
      ring, slabs: [], lens: [], gso: [], vtx: [], vseal: [], forTx: null,
      again: () => this.tapRingReady(this.tapOwner(net.tap) ?? net, st),
    };
    for (let k = 0; k < READER_SLABS; k++) {
      st.slabs.push(ring.slab.subarray(k * B * slot, (k + 1) * B * slot));
      st.lens.push(ring.lens.subarray(k * B, (k + 1) * B));
      st.gso.push(ring.gso.subarray(2 * k * B, 2 * (k + 1) * B));
    }
    return st;
  }

  /** Reader thread batches ready: process up to 2 × burst, then yield (and come back) if more wait. */
  private tapRingReady(net: Network, st: ReaderState): void {
    const tap = net.tap as ReaderTapDevice;
    if (st.forTx !== this.tx) {
      const t = this.tx;
      for (let k = 0; k < READER_SLABS; k++) {
        st.vtx[k] = { slab: st.slabs[k], offs: t.offs, lens: t.lens, addrs: t.addrs, srcIdx: t.srcIdx, count: 0 };
        st.vseal[k] = (this.seal as CipherBatch | undefined) !== undefined ? { ...this.seal, slab: st.slabs[k] } : undefined;
      }
      st.forTx = t;
    }
    for (let round = 0; round < 2 * this.burst; round++) {
      let r: number;
      try {
        r = tap.readerNext();
      } catch (e) {
        this.warn('tap_read', e, { tap: tap.name });
        return;
      }
      if (r < 0) return;
      const k = r >>> 16;
      const n = r & 0xffff;
      if (this.running && !net.removed && net.tap === tap) {
        this.counters.tapBatches++;
        this.hist.tapRead.add(n);
        const slab = this.vnetSlab, vtx = this.vtx, vseal = this.vseal;
        this.vnetSlab = st.slabs[k];
        this.vtx = st.vtx[k];
        if (st.vseal[k] !== undefined) this.vseal = st.vseal[k]!;
        this.cur = this.vtx;
        try {
          this.processTapBatch(net, n, st.slabs[k], this.vnetSlot, st.lens[k], st.gso[k]);
        } finally {
          this.cur = this.tx;
          this.vnetSlab = slab;
          this.vtx = vtx;
          this.vseal = vseal;
        }
      }
      tap.readerRelease();
    }
    setImmediate(st.again); // more may be ready (the thread may be waiting for a free slab)
  }

  private tapOwner(tap: TapDevice): Network | undefined {
    const nets = this.netList;
    for (let i = 0; i < nets.length; i++) if (nets[i].tap === tap) return nets[i];
    return undefined;
  }

  private safeSend(b: TxBatch): number {
    try {
      const n = this.udp.sendBatch(b);
      return n > 0 ? Math.min(n, b.count) : 0;
    } catch (e) {
      this.warn('udp_send', e, {});
      return 0;
    }
  }

  /** The vnet batch: super-frames are cut by the transport (descriptor gso info in `txGso`). */
  private safeSendGso(b: TxBatch): number {
    try {
      const n = this.gsoUdp !== null ? this.gsoUdp.sendBatchGso(b, this.txGso, VXLAN_HLEN) : this.udp.sendBatch(b);
      return n > 0 ? Math.min(n, b.count) : 0;
    } catch (e) {
      this.warn('udp_send', e, {});
      return 0;
    }
  }

  private safeTapWrite(net: Network, b: TxBatch): number {
    try {
      const n = net.tap.writeBatch(b);
      return n > 0 ? Math.min(n, b.count) : 0;
    } catch (e) {
      this.warn('tap_write', e, { tap: net.tap.name });
      return 0;
    }
  }

  /** I/O errors are counted as drops; logged at most once per 10 s per kind (with a suppressed count). */
  private warn(kind: string, e: unknown, fields: Record<string, unknown>): void {
    const err = e as { message?: string; code?: string };
    this.warnings.log('warn', kind, { ...fields, kind, err: err?.message, code: err?.code }, 'data path I/O error');
  }
}
