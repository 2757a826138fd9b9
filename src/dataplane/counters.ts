/**
 * Data-path counters: plain numbers in typed arrays, incremented on the hot path by index and read
 * by the control plane (metrics, status) at scrape time. The set of drop reasons is fixed here;
 * nothing taken from packet contents ever becomes a label.
 *
 * Identity (tested): for every network, rxDelivered + Σ rxDrops[reason] === rxPackets, where
 * rxPackets counts every datagram attributed to that network (VNI known). Datagrams dropped before
 * their VNI is known are counted in `GlobalCounters.rxDrops` only.
 */
import { constants as osConstants } from 'node:os';
import type { PeerKey } from './addr';

/** Reasons an inbound (UDP → TAP) datagram is dropped. */
export const RX_DROP_REASONS = [
  'truncated',        // shorter than the 8-byte VXLAN header
  'no_i_flag',        // I flag (VNI valid) not set
  'reserved_bits',    // any reserved bit set in the VXLAN header
  'unknown_vni',      // VNI not configured on this host
  'unknown_vtep',     // plaintext network: the sender is not a known host nor let in by acceptFrom (admission.ts)
  'runt_frame',       // inner frame shorter than an Ethernet header (14 bytes)
  'oversize_frame',   // inner frame larger than the network MTU + Ethernet header
  'bad_src_mac',      // inner source MAC multicast/broadcast or all-zero
  'own_src_mac',      // inner source MAC is one of ours (loop)
  'plaintext_on_encrypted', // plaintext VXLAN for an encrypted network
  'decrypt_failed',   // crypto: authentication failed / replay / no session
  'not_serving',      // the (authenticated) sender does not serve this network (static peers serve all, gossip peers their VNIs)
  'foreign_src_mac',  // the inner source MAC is bound to another host by gossip (a static entry)
  'tap_write_failed', // the TAP write skipped this frame (an errno) or stopped before it (EAGAIN)
  'policy_denied',    // network policy: denied, spoofed source or revoked connection (src/policy)
] as const;
export type RxDropReason = (typeof RX_DROP_REASONS)[number];

/** Reasons an outbound (TAP → UDP) frame is dropped. */
export const TX_DROP_REASONS = [
  'runt_frame',       // shorter than 14 bytes
  'oversize_frame',   // VXLAN packet would exceed the underlay MTU (never fragmented)
  'local_dst',        // destination MAC lives on this host's bridge
  'no_peers',         // flood with no peer serving the VNI / unknown destination
  'no_session',       // encrypted network with no session (after the queue timed out)
  'send_failed',      // the send skipped this datagram with an errno not listed below, or stopped before it (EAGAIN)
  'emsgsize',         // the send skipped it with EMSGSIZE: larger than the path MTU (DF is always set)
  'unreachable',      // the send skipped it with ENETUNREACH / EHOSTUNREACH: no route to that peer
  'policy_denied',    // network policy: the source's egress or the destination's ingress denies it
  'path_mtu',         // larger than the peer's measured path MTU carries (src/probe); the sender got ICMP frag needed / Packet Too Big
] as const;
export type TxDropReason = (typeof TX_DROP_REASONS)[number];

const ERRNO = osConstants.errno;

/** The outbound drop reason (index) of a descriptor the send skipped with `errno` (> 0). */
export function txDropForErrno(errno: number): number {
  if (errno === ERRNO.EMSGSIZE) return txDropIndex.emsgsize;
  if (errno === ERRNO.ENETUNREACH || errno === ERRNO.EHOSTUNREACH) return txDropIndex.unreachable;
  return txDropIndex.send_failed;
}

/** Reasons the FDB refused to take an entry (the frame itself still goes on). */
export const FDB_REFUSAL_REASONS = [
  'probe_limit',      // no index slot free within FDB_MAX_PROBE of the MAC's home (hash flooding)
  'local_limit',      // a new MAC on this host's bridge beyond fdb.maxLocalPerNetwork (not learned; its frames still go out)
  'local_entry',      // a gossip FDB / neighbour entry would replace or answer for a MAC on this host's bridge
  'other_owner',      // a gossip FDB / neighbour entry (set or delete) of another member's entry
] as const;
export type FdbRefusalReason = (typeof FDB_REFUSAL_REASONS)[number];
export const fdbRefusalIndex = Object.fromEntries(FDB_REFUSAL_REASONS.map((r, i) => [r, i])) as Record<FdbRefusalReason, number>;

export const rxDropIndex = Object.fromEntries(RX_DROP_REASONS.map((r, i) => [r, i])) as Record<RxDropReason, number>;
export const txDropIndex = Object.fromEntries(TX_DROP_REASONS.map((r, i) => [r, i])) as Record<TxDropReason, number>;

/** Peers tracked by row in each network's drop table (the rest share the `other` row); see PeerDropTable. */
export const PEER_DROP_ROWS = 64;

/**
 * Drops by peer × reason for one network (or, for the global table, drops before a network is
 * known): fixed Float64Arrays allocated at construction, `PEER_DROP_ROWS` peer rows + one `other`
 * row (peers beyond the rows, and senders the data path has no peer for: strangers, a datagram it
 * could not attribute). A peer gets a row at its first drop (one Map entry, kept until the network
 * goes); the hot path is one Map lookup by peer key and an increment. Which rows are exported by
 * name (the busiest K) is decided at scrape time (src/capture/metrics.ts), never here.
 *
 * Identity (tested): Σ_rows rx[row][reason] equals the network's rxDrops[reason] (tx likewise).
 */
export class PeerDropTable {
  readonly rows = PEER_DROP_ROWS;
  /** (rows + 1) × RX_DROP_REASONS.length; row `rows` is `other`. */
  readonly rx = new Float64Array((PEER_DROP_ROWS + 1) * RX_DROP_REASONS.length);
  /** (rows + 1) × TX_DROP_REASONS.length. */
  readonly tx = new Float64Array((PEER_DROP_ROWS + 1) * TX_DROP_REASONS.length);
  /** Each used row's peer label (underlay "address:port"), by row. */
  readonly labels: (string | null)[] = new Array<string | null>(PEER_DROP_ROWS).fill(null);
  used = 0;
  private readonly index = new Map<PeerKey, number>();

  /** The row of the peer with `key` (given one at its first drop while rows are free), else `other`. */
  row(key: PeerKey, label: string): number {
    const r = this.index.get(key);
    if (r !== undefined) return r;
    if (this.used === PEER_DROP_ROWS) return PEER_DROP_ROWS;
    const n = this.used++;
    this.index.set(key, n);
    this.labels[n] = label;
    return n;
  }

  countRx(row: number, reason: number, n: number): void {
    this.rx[row * RX_DROP_REASONS.length + reason] += n;
  }

  countTx(row: number, reason: number, n: number): void {
    this.tx[row * TX_DROP_REASONS.length + reason] += n;
  }
}

/** Counters of one network (one VNI). Numbers are exact (Float64 holds integers up to 2^53). */
export class NetworkCounters {
  /** Datagrams received from the underlay for this VNI. */
  rxPackets = 0;
  rxBytes = 0;
  /** Inner frames written to the TAP. */
  rxDelivered = 0;
  rxDeliveredBytes = 0;
  readonly rxDrops = new Float64Array(RX_DROP_REASONS.length);
  /** Frames read from the TAP. */
  txFrames = 0;
  txFrameBytes = 0;
  /** UDP datagrams sent (a flooded frame counts once per peer). */
  txPackets = 0;
  txBytes = 0;
  readonly txDrops = new Float64Array(TX_DROP_REASONS.length);
  /** Frames flooded (broadcast/multicast/unknown unicast) and ARP/ND answered locally. */
  txFlooded = 0;
  fdbEvictions = 0;
  /** Entries the FDB refused to take, by `FDB_REFUSAL_REASONS`. */
  readonly fdbRefused = new Float64Array(FDB_REFUSAL_REASONS.length);
  /** rxDrops / txDrops again, by peer (src/capture/drops.ts counts them). */
  readonly peerDrops = new PeerDropTable();

  rxDropCount(reason: RxDropReason): number {
    return this.rxDrops[rxDropIndex[reason]];
  }
  txDropCount(reason: TxDropReason): number {
    return this.txDrops[txDropIndex[reason]];
  }
  totalRxDrops(): number {
    let s = 0;
    for (const v of this.rxDrops) s += v;
    return s;
  }
}

/** Per-peer counters (keyed by the peer's underlay address). */
export class PeerCounters {
  rxPackets = 0;
  rxBytes = 0;
  txPackets = 0;
  txBytes = 0;
}

/** Counters not attributable to a network. */
export class GlobalCounters {
  rxDatagrams = 0;
  /** Of rxDatagrams, those the probe stage took (outside.ts 2b: answered, replies or probe drops; src/probe). */
  rxProbes = 0;
  /** Learned peers evicted (longest idle first) because `maxLearnedPeers` were already known. */
  peerEvictions = 0;
  readonly rxDrops = new Float64Array(RX_DROP_REASONS.length);
  /** rxDrops again, by sender (src/capture/drops.ts counts them). */
  readonly peerDrops = new PeerDropTable();
  /** Histogram-friendly raw batch sizes are kept by the metrics layer; these are totals. */
  tapBatches = 0;
  udpBatches = 0;
  rxDropCount(reason: RxDropReason): number {
    return this.rxDrops[rxDropIndex[reason]];
  }
}

/** Batch-size histogram buckets: ≤1, ≤2, ≤4 … ≤128, larger. */
const BATCH_BOUNDS = [1, 2, 4, 8, 16, 32, 64, 128] as const;

/** Sizes of the batches one kind of I/O call moved (metrics). */
export class BatchHistogram {
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
