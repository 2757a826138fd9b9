/**
 * Gossip timing and size parameters, with named profiles (memberlist's DefaultLANConfig /
 * DefaultWANConfig / DefaultLocalConfig). Every field says its unit, formula and trade-off.
 * `N` below is the number of live (alive + suspect) members this node knows.
 */

export interface GossipTuning {
  /** ms between probes of the next member (round-robin). Detection time scales with it; cost is
   *  one ping (+ ack) per member per interval. Multiplied by the awareness score + 1. */
  probeIntervalMs: number;
  /** ms to wait for a direct ack before asking `indirectChecks` helpers. Must exceed the network
   *  RTT with margin (too low → needless indirect probes). Multiplied by awareness score + 1. */
  probeTimeoutMs: number;
  /** Helpers asked to probe a member that missed its direct ack. More → fewer false suspicions
   *  under loss, more packets on failure. */
  indirectChecks: number;
  /** Largest Lifeguard awareness multiplier of probe interval/timeout (1 disables awareness). */
  awarenessMaxMultiplier: number;
  /** Suspicion minimum timeout = suspicionMult × max(1, log10(N)) × probeIntervalMs. Lower →
   *  faster death verdicts, but a suspected member has less time to hear of it and refute. */
  suspicionMult: number;
  /** Suspicion maximum timeout = suspicionMaxTimeoutMult × minimum; used while no independent
   *  confirmation has arrived (Lifeguard). Higher → fewer false verdicts for a slow member. */
  suspicionMaxTimeoutMult: number;
  /** Independent confirmations k after which the timeout reaches the minimum (capped at N − 2). */
  suspicionConfirmations: number;
  /** λ: an update is piggybacked at most λ × ceil(log10(N + 1)) times. Higher → more reliable
   *  spread under loss, more bytes per packet. */
  retransmitMult: number;
  /** ms between gossip rounds (pending updates sent to `gossipNodes` random members). Lower →
   *  faster spread (join latency ≈ log_(fanout+1)(N) rounds), more packets while updates are pending. */
  gossipIntervalMs: number;
  /** Fan-out per gossip round. */
  gossipNodes: number;
  /** ms after a member died/left during which gossip is still sent to it (so it learns it was
   *  declared dead and can refute). */
  gossipToTheDeadMs: number;
  /** Base ms between push-pull full-state exchanges with a random member; scaled by
   *  ceil(log2(N) − log2(pushPullScaleThreshold)) + 1 above the threshold, so the per-node cost
   *  stays flat as clusters grow. Lower → faster repair of missed updates, more bytes. */
  pushPullIntervalMs: number;
  /** Cluster size above which the push-pull interval starts to grow. */
  pushPullScaleThreshold: number;
  /** ms between attempts to push-pull with a random dead member (heals partitions). */
  reconnectIntervalMs: number;
  /** ms a push-pull stream may take before it is abandoned. */
  streamTimeoutMs: number;
  /** ms a dead or left member stays listed (and visible in status) before it is reaped. */
  reapAfterMs: number;
  /** ms a reaped member's last incarnation is remembered, so replayed old records stay rejected. */
  tombstoneMs: number;
  /** Most tombstones kept (oldest dropped first). */
  maxTombstones: number;
  /** Largest gossip UDP datagram in bytes (after encryption). 1400 keeps packets below common
   *  MTUs, so no datagram is ever sent as IP fragments: a record larger than one datagram can
   *  carry (many endpoints) is gossiped in parts (codec.ts `splitAlive`) and reassembled. */
  packetBudget: number;
  /** ms a leaving member keeps gossiping its `left` update before it stops. */
  leavePropagateMs: number;
  /** ms after the first part of a record cut into parts (many endpoints) that a record still
   *  incomplete is fetched whole by a push-pull exchange (with the member itself when we know its
   *  address). Parts are gossiped like any update, so a part can miss a node; lower → faster
   *  repair, more streams under loss. */
  partRepairMs: number;
}

const lan: GossipTuning = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  awarenessMaxMultiplier: 8,
  suspicionMult: 2,
  suspicionMaxTimeoutMult: 6,
  suspicionConfirmations: 3,
  retransmitMult: 4,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  gossipToTheDeadMs: 30_000,
  pushPullIntervalMs: 30_000,
  pushPullScaleThreshold: 32,
  reconnectIntervalMs: 30_000,
  streamTimeoutMs: 10_000,
  reapAfterMs: 15 * 60_000,
  tombstoneMs: 24 * 3600_000,
  maxTombstones: 100_000,
  packetBudget: 1400,
  leavePropagateMs: 1000,
  partRepairMs: 5000,
};

/** Longer timeouts for WAN RTTs (memberlist DefaultWANConfig). */
const wan: GossipTuning = {
  ...lan,
  probeIntervalMs: 5000,
  probeTimeoutMs: 3000,
  suspicionMult: 6,
  gossipIntervalMs: 500,
  gossipNodes: 4,
  gossipToTheDeadMs: 60_000,
  pushPullIntervalMs: 60_000,
  reconnectIntervalMs: 60_000,
  streamTimeoutMs: 30_000,
  reapAfterMs: 60 * 60_000,
  leavePropagateMs: 3000,
  partRepairMs: 15_000,
};

/** Fast timers for tests on one machine (memberlist DefaultLocalConfig, faster still). */
const test: GossipTuning = {
  ...lan,
  probeIntervalMs: 200,
  probeTimeoutMs: 100,
  suspicionMult: 3,
  gossipIntervalMs: 50,
  gossipToTheDeadMs: 5_000,
  pushPullIntervalMs: 3_000,
  reconnectIntervalMs: 2_000,
  streamTimeoutMs: 2_000,
  reapAfterMs: 60_000,
  leavePropagateMs: 300,
  partRepairMs: 1000,
};

export const PROFILES: Readonly<Record<'lan' | 'wan' | 'test', Readonly<GossipTuning>>> = { lan, wan, test };

export function tuningFor(profile: 'lan' | 'wan' | 'test', overrides: Partial<GossipTuning> = {}): GossipTuning {
  return { ...PROFILES[profile], ...overrides };
}

/** Minimum suspicion timeout for a cluster of `n`: suspicionMult × max(1, log10(n)) × probeInterval. */
export function suspicionMinMs(t: GossipTuning, n: number): number {
  return t.suspicionMult * Math.max(1, Math.log10(Math.max(1, n))) * t.probeIntervalMs;
}

/** Push-pull interval for a cluster of `n` (memberlist pushPullScale). */
export function pushPullIntervalFor(t: GossipTuning, n: number): number {
  if (n <= t.pushPullScaleThreshold) return t.pushPullIntervalMs;
  const mult = Math.ceil(Math.log2(n) - Math.log2(t.pushPullScaleThreshold)) + 1;
  return t.pushPullIntervalMs * mult;
}
