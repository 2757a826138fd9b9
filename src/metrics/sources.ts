/**
 * What the metrics layer reads, and only at scrape time. These are the narrow, structural views of
 * the data path, gossip and crypto state that `registry.ts` turns into Prometheus samples; the
 * real modules satisfy them directly or through the small adapters in `adapters.ts`. Nothing here
 * is called on the hot path.
 */

import type { GlobalCounters, NetworkCounters, PeerCounters } from '../dataplane/counters';

/** One network as the data path holds it. */
export interface NetworkView {
  readonly config: { readonly name: string; readonly vni: number };
  readonly counters: NetworkCounters;
}

/** Fixed-bucket batch-size counts kept by the data path (`counts[i]` = batches with size ≤ bounds[i], non-cumulative; `counts[bounds.length]` = larger). */
export interface BatchSizeView {
  /** Which I/O: tap_read, tap_write, udp_recv, udp_send. */
  readonly io: string;
  readonly bounds: readonly number[];
  readonly counts: ArrayLike<number>;
  /** Σ sizes (for the histogram's _sum). */
  readonly sum: number;
}

export interface DatapathMetricsView {
  readonly counters: GlobalCounters;
  networks(): Iterable<NetworkView>;
  /** Per-peer counters keyed by a stable peer label (underlay "address:port"). */
  peers(): Iterable<[string, PeerCounters]>;
  /** FDB entries per network name and kind (local, remote, static, gossip…). */
  fdbEntries(): Iterable<{ network: string; vni: number; kind: string; count: number }>;
  /** Batch-size histograms, when the data path keeps them. */
  batchSizes?(): Iterable<BatchSizeView>;
  /** Frames the kernel dropped in each network's TAP queue before the agent read them, where known. */
  tapQueueDrops?(): Iterable<{ network: string; vni: number; count: number }>;
  /** Number of ARP/ND requests answered locally per network, when the data path counts them. */
  neighAnswered?(): Iterable<{ network: string; vni: number; count: number }>;
  /** Busy-poll figures (dataplane/seams.ts BusyPollStats), null when off. */
  busyPollStats?(): { windowUs: number; spins: number; polls: number; hits: number; callbacks: number; spunUs: number; capped: number; contended?: number } | null;
}

export interface GossipMetricsView {
  /** Members by state (alive, suspect, dead, left); every state present, 0 included. */
  membersByState(): Record<string, number>;
  /** Monotonic counters. */
  counters(): {
    probes: number;
    probesFailed: number;
    suspicions: number;
    messagesIn: number;
    messagesOut: number;
    /** Optional ones: their families have no sample when the gossip layer does not count them. */
    indirectProbes?: number;
    bytesIn?: number;
    bytesOut?: number;
    pushPulls?: number;
    /** Packets rejected before processing, by fixed reason. */
    rejected: Record<string, number>;
  };
  /** Smoothed probe round-trip time per member, seconds (optional). */
  rtts?(): Iterable<{ peer: string; seconds: number }>;
  /** Whether this node has joined (reached a seed or another member). */
  joined(): boolean;
  /** Every member's name and state now (optional; the per-member state series). */
  memberStates?(): Iterable<{ peer: string; state: string }>;
}

/** What the agent's control-plane watch knows (src/agent/watch.ts), read at scrape time. */
export interface AgentWatchMetricsView {
  /** Liveness of each peer: `peer` the node name where known, else the endpoint. */
  peerViews(): Iterable<{ peer: string; endpoint: string; static: boolean; state: string; lastReceivedAgoSeconds: number | null }>;
  /** Ports of the network's bridge whose MTU exceeds the network MTU. */
  oversizedPorts(vni: number): readonly { port: string; mtu: number }[];
  /** Whether the network's TAP is failed (being re-created by the agent). */
  networkFailed?(vni: number): boolean;
}

export interface CryptoMetricsView {
  counters(): {
    /** Handshakes by result (initiated, completed, failed…). */
    handshakes: Record<string, number>;
    /** Packet-level failures by fixed reason (auth, replay, no_session…). */
    failures: Record<string, number>;
  };
  /** Established sessions now. */
  sessions(): number;
  /** Other hosts presenting this host's own static key: detections so far, and hosts seen now (optional). */
  duplicateHostKeys?(): { detections: number; hosts: number };
}

/** One network's policy counters (src/policy/enforcer.ts slots, see POLICY_COUNTER_SLOTS). */
export interface PolicyNetworkView {
  readonly network: string;
  readonly counters: ArrayLike<number>;
  readonly conntrack: { readonly entries: number; readonly evictions: number; readonly capacity: number };
}

/** The policy extension's view: one entry per network. */
export interface PolicyMetricsView {
  networks(): Iterable<PolicyNetworkView>;
}
