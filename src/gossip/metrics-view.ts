/**
 * The gossip node's metrics view (src/metrics/sources.ts GossipMetricsView), read at scrape time:
 * members by state from `members()`; probes and failures from the prober; suspicions, packets and
 * drops (by the fixed GossipDropReason set) from `stats`; bytes from the transport's stats when it
 * keeps them (UDP and memory transports do). Offered by the extension as `GossipApi.metricsView`.
 */
import type { GossipMetricsView } from '../metrics/sources';
import type { GossipNode } from './swim';
import type { TransportStats } from './transport';

const STATES = ['alive', 'suspect', 'dead', 'left'];

export function gossipMetricsView(node: GossipNode, joined: () => boolean): GossipMetricsView {
  return {
    membersByState: () => {
      const out: Record<string, number> = Object.fromEntries(STATES.map((s) => [s, 0]));
      for (const m of node.members()) out[m.state] = (out[m.state] ?? 0) + 1;
      return out;
    },
    counters: () => {
      const st = node.stats;
      const ts = (node.transport as { stats?: TransportStats }).stats;
      return {
        probes: node.prober.probes,
        probesFailed: node.prober.failures,
        // the prober counts no indirect probes under this name: the family has no sample
        indirectProbes: undefined,
        suspicions: st.suspicionsStarted,
        messagesIn: st.packetsReceived,
        messagesOut: st.packetsSent,
        bytesIn: ts ? ts.packetBytesReceived + ts.streamBytesReceived : undefined,
        bytesOut: ts ? ts.packetBytesSent + ts.streamBytesSent : undefined,
        pushPulls: st.streamsInitiated,
        rejected: { ...st.drops },
      };
    },
    rtts: () => node.rtts(),
    joined,
    memberStates: () => node.members().map((m) => ({ peer: m.name, state: m.state })),
  };
}
