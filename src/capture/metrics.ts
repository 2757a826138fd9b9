/**
 * `vxmesh_peer_dropped_packets_total{peer, network, vni, direction, reason}`: the data path's
 * per-peer drop tables (counters.ts PeerDropTable) read at scrape time. Cardinality is bounded:
 * per network (and for the global table, network="-" vni="-"), the `topK` peers with the most drops
 * (all reasons, both directions, since start) are named — `peer` = node name where gossip knows it,
 * else the underlay endpoint, as on every other series — and everything else (the other peers,
 * and senders without a peer: strangers) is one series per reason with `peer="other"`. Only cells
 * that are non-zero are written, so at most networks × (topK + 1) × reasons series exist.
 */
import { PEER_DROP_ROWS, RX_DROP_REASONS, TX_DROP_REASONS, type PeerDropTable } from '../dataplane/counters';
import type { Emit } from '../metrics/family';

/** Peers named per network in the per-peer drop series; the rest are `peer="other"`. */
export const PEER_DROP_TOP_K = 10;

export interface PeerDropSource {
  /** Each network's table (and the global one with network null). */
  tables(): Iterable<{ network: string | null; vni: number | null; table: PeerDropTable }>;
  nodeName(endpoint: string): string | null;
}

/** The rows of `t` that get a name: the `k` with most drops, ties by row (first seen first). */
export function namedRows(t: PeerDropTable, k: number): Set<number> {
  const R = RX_DROP_REASONS.length;
  const T = TX_DROP_REASONS.length;
  const totals: [number, number][] = [];
  for (let r = 0; r < t.used; r++) {
    let s = 0;
    for (let i = 0; i < R; i++) s += t.rx[r * R + i];
    for (let i = 0; i < T; i++) s += t.tx[r * T + i];
    if (s > 0) totals.push([r, s]);
  }
  totals.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  return new Set(totals.slice(0, Math.max(0, k)).map((x) => x[0]));
}

/** Emits the family's samples. */
export function emitPeerDrops(src: PeerDropSource, emit: Emit, k = PEER_DROP_TOP_K): void {
  for (const { network, vni, table: t } of src.tables()) {
    const named = namedRows(t, k);
    const sums = new Map<string, { rx: Float64Array; tx: Float64Array }>();
    const into = (peer: string) => {
      let s = sums.get(peer);
      if (!s) sums.set(peer, (s = { rx: new Float64Array(RX_DROP_REASONS.length), tx: new Float64Array(TX_DROP_REASONS.length) }));
      return s;
    };
    for (let r = 0; r <= PEER_DROP_ROWS; r++) {
      if (r < PEER_DROP_ROWS && r >= t.used) continue;
      const label = r < PEER_DROP_ROWS && named.has(r) ? t.labels[r]! : null;
      const s = into(label === null ? 'other' : src.nodeName(label) ?? label);
      for (let i = 0; i < RX_DROP_REASONS.length; i++) s.rx[i] += t.rx[r * RX_DROP_REASONS.length + i];
      for (let i = 0; i < TX_DROP_REASONS.length; i++) s.tx[i] += t.tx[r * TX_DROP_REASONS.length + i];
    }
    const net = network ?? '-';
    const v = vni ?? '-';
    for (const [peer, s] of sums) {
      for (let i = 0; i < RX_DROP_REASONS.length; i++) if (s.rx[i] > 0) emit({ peer, network: net, vni: v, direction: 'rx', reason: RX_DROP_REASONS[i] }, s.rx[i]);
      for (let i = 0; i < TX_DROP_REASONS.length; i++) if (s.tx[i] > 0) emit({ peer, network: net, vni: v, direction: 'tx', reason: TX_DROP_REASONS[i] }, s.tx[i]);
    }
  }
}

export const PEER_DROPS_FAMILY = 'vxmesh_peer_dropped_packets_total';
export const PEER_DROPS_HELP = 'Packets dropped, by peer (the busiest 10 per network by name, the rest as peer="other"), network (network="-": before a network was known), direction and reason.';
export const PEER_DROPS_LABELS = ['peer', 'network', 'vni', 'direction', 'reason'];
