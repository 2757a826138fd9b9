/**
 * The probe series, defined into the metrics registry (src/metrics/registry.ts calls
 * `defineProbeMetrics` once; values are read at scrape time from the probe extension's view).
 * Label meanings are the registry's: `peer` = the node name where gossip knows it, else the
 * underlay endpoint; `endpoint` = the underlay "address:port".
 */

export interface ProbeMetricsView {
  peers(): Iterable<{ peer: string; endpoint: string; state: string; capable: boolean; rttSeconds: number | null; pathMtu: number | null }>;
  /** Connected components of the reachability matrix (reachability.ts). */
  partitions(): number;
  drops(): Iterable<[string, number]>;
  counters(): { sent: number; answered: number; lost: number; sendFailed: number; requests: number; replies: number; icmpSent: number; icmpRateLimited: number; icmpNotAnswerable: number; rowsRefused: number };
}

type Emit = (labels: Record<string, string | number>, value: number) => void;
type Define = (type: 'counter' | 'gauge', name: string, help: string, labels: string[], fill: (emit: Emit) => void) => void;

export function defineProbeMetrics(define: Define, view: () => ProbeMetricsView | null): void {
  const pe = ['peer', 'endpoint'];
  const each = (fn: (p: ReturnType<ProbeMetricsView['peers']> extends Iterable<infer T> ? T : never) => void) => {
    const v = view();
    if (v) for (const p of v.peers()) fn(p);
  };
  define('gauge', 'vxmesh_peer_path_mtu_bytes', 'Path MTU to the peer measured by data-path probes (outer IP packet bytes, RFC 8899-style search); absent while unknown (peer down, or not answering probes).', pe,
    (emit) => each((p) => { if (p.pathMtu !== null) emit({ peer: p.peer, endpoint: p.endpoint }, p.pathMtu); }));
  define('gauge', 'vxmesh_peer_probe_up', 'Data-path reachability of the peer from probes through the VXLAN port: 1 up (a probe answered within 5 s), 0 down; absent before the first verdict.', pe,
    (emit) => each((p) => { if (p.state !== 'unknown') emit({ peer: p.peer, endpoint: p.endpoint }, p.state === 'up' ? 1 : 0); }));
  define('gauge', 'vxmesh_peer_probe_capable', 'Whether the peer answers data-path probes: 1 once it has answered one since this agent started probing it, 0 while it never has (a kernel VXLAN peer, which drops probes unseen; or a host down since then). VxmeshPeerDataPathDown fires only where this is 1.', pe,
    (emit) => each((p) => emit({ peer: p.peer, endpoint: p.endpoint }, p.capable ? 1 : 0)));
  define('gauge', 'vxmesh_peer_probe_rtt_seconds', 'Round-trip time to the peer over the data path (smoothed over answered probes, srtt += (sample − srtt)/8).', pe,
    (emit) => each((p) => { if (p.rttSeconds !== null) emit({ peer: p.peer, endpoint: p.endpoint }, p.rttSeconds); }));
  define('gauge', 'vxmesh_partitions', 'Connected components of the cluster\'s data-path reachability matrix as this host sees it (1: every host reaches every other; more: a split).', [],
    (emit) => { const v = view(); if (v) emit({}, v.partitions()); });
  define('counter', 'vxmesh_probe_drops_total', 'Received probes dropped, by reason (truncated, bad_version, bad_type, unknown_vni, not_admitted, unauthenticated, unexpected_reply, rate_limited, reply_failed).', ['reason'],
    (emit) => { const v = view(); if (v) for (const [reason, n] of v.drops()) emit({ reason }, n); });
  define('counter', 'vxmesh_probe_packets_total', 'Probe traffic by kind: sent (requests), answered, lost (unanswered in time), send_failed, requests (received), replies (sent).', ['kind'],
    (emit) => {
      const v = view();
      if (!v) return;
      const c = v.counters();
      emit({ kind: 'sent' }, c.sent);
      emit({ kind: 'answered' }, c.answered);
      emit({ kind: 'lost' }, c.lost);
      emit({ kind: 'send_failed' }, c.sendFailed);
      emit({ kind: 'requests' }, c.requests);
      emit({ kind: 'replies' }, c.replies);
    });
  define('counter', 'vxmesh_probe_icmp_total', 'ICMP fragmentation-needed / Packet Too Big answers for frames larger than their peer\'s path: sent, rate_limited (over 100/s), not_answerable (no DF, not IP, an ICMP error…; still dropped as path_mtu).', ['result'],
    (emit) => {
      const v = view();
      if (!v) return;
      const c = v.counters();
      emit({ result: 'sent' }, c.icmpSent);
      emit({ result: 'rate_limited' }, c.icmpRateLimited);
      emit({ result: 'not_answerable' }, c.icmpNotAnswerable);
    });
  define('counter', 'vxmesh_probe_rows_refused_total', 'Reachability rows from gossip refused as malformed (never partly believed).', [],
    (emit) => { const v = view(); if (v) emit({}, v.counters().rowsRefused); });
}
