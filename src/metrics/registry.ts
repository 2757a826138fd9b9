/**
 * The Prometheus registry of one agent, built from the data plane's own counters at scrape time.
 *
 * Every vxmesh metric family is a `Family` (family.ts) registered in a prom-client Registry beside
 * prom-client's default process metrics: at each scrape its callback copies the current values out
 * of the plain counters that the data path, gossip and crypto increment (src/dataplane/counters.ts
 * and the views in sources.ts) and renders them. So the hot path never calls prom-client; a scrape costs O(networks × reasons + peers + members); series of a removed network
 * or peer disappear at the next scrape; and label values come only from config (network names,
 * VNIs), peer addresses and fixed reason sets, never from packet contents.
 *
 * One scrape is one consistent snapshot: the registry renders every family synchronously (before
 * its first await), on the thread that runs the data path, so no packet is processed
 * between two families and identities such as delivered + Σ drops = received hold exactly.
 *
 * Sources are attached as they come up (`attachDatapath`, `attachGossip`, `attachCrypto`); a
 * family whose source is absent has no samples. Metric names and meanings:
 * docs/metrics.md (a unit test checks that every family here is documented there).
 */

import { Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { Family, FastRegistry, type Emit, type LabelValues } from './family';
import { FDB_REFUSAL_REASONS, RX_DROP_REASONS, TX_DROP_REASONS } from '../dataplane/counters';
import { LoopMonitor, type LoopMonitorOptions } from './loop';
import type { AgentWatchMetricsView, CryptoMetricsView, DatapathMetricsView, GossipMetricsView, PolicyMetricsView, PolicyNetworkView } from './sources';
import { defineProbeMetrics, type ProbeMetricsView } from '../probe/metrics';
import {
  PC_ALLOWED_NEW, PC_ALLOWED_TRACKED, PC_AUDIT_EGRESS, PC_AUDIT_INGRESS, PC_DENIED_EGRESS, PC_DENIED_INGRESS, PC_NON_IP, PC_RELATED,
  PC_REVOKED, PC_SPOOFED,
} from '../policy/enforcer';

export interface VxmeshMetricsOptions {
  /** Registry to fill (default: a new FastRegistry; never the prom-client global). A plain Registry works too, with prom-client's slower formatter. */
  registry?: Registry;
  /** prom-client's default process and Node.js metrics (process_*, nodejs_*); default true. */
  defaultMetrics?: boolean;
  /** The event-loop monitor, or options for a new one. */
  loop?: LoopMonitor | LoopMonitorOptions;
  /** Static facts for `vxmesh_info`. */
  info?: { version: string; node: string };
}

type Labels = LabelValues;
/** A metrics source: the view, a function resolving it at scrape time, or null (absent). */
export type Source<T> = T | (() => T | null) | null;

function asGetter<T>(s: Source<T>): () => T | null {
  if (typeof s === 'function') return s as () => T | null;
  return () => s;
}

const MEMBER_STATES = ['alive', 'suspect', 'dead', 'left'] as const;

export class VxmeshMetrics {
  readonly registry: Registry;
  readonly loop: LoopMonitor;
  private datapath: () => DatapathMetricsView | null = () => null;
  private gossip: () => GossipMetricsView | null = () => null;
  private crypto: () => CryptoMetricsView | null = () => null;
  private policy: () => PolicyMetricsView | null = () => null;
  private probe: () => ProbeMetricsView | null = () => null;
  private readyFn: (() => boolean) | null = null;
  private watch: () => AgentWatchMetricsView | null = () => null;
  private peerName: (endpoint: string) => string | null = () => null;
  /**
   * Last known state of every gossip member seen (bounded): a member reaped from gossip's table
   * keeps its last state (dead) here, so alerts naming it stay firing while it is down; it goes
   * when it comes back (its live state replaces it) or when it had left gracefully.
   */
  private readonly memberMemory = new Map<string, string>();
  private info: { version: string; node: string };
  private readonly reloads = { ok: 0, refused: 0 };
  private lastReloadOkSeconds = 0;
  private readonly ownLoop: boolean;

  constructor(opts: VxmeshMetricsOptions = {}) {
    this.registry = opts.registry ?? new FastRegistry();
    this.ownLoop = !(opts.loop instanceof LoopMonitor);
    this.loop = opts.loop instanceof LoopMonitor ? opts.loop : new LoopMonitor(opts.loop);
    this.info = opts.info ?? { version: 'unknown', node: 'unknown' };
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      // These three are gauges named like counters, which `promtool check metrics` rejects; the
      // same figures by type remain (nodejs_active_handles{type}, …): sum() gives the totals.
      for (const n of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
        this.registry.removeSingleMetric(n);
      }
    }
    this.define();
  }

  /** The Content-Type of `metrics()` output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  start(): void {
    this.loop.start();
  }

  stop(): void {
    if (this.ownLoop) this.loop.stop();
  }

  /** Attaches a source: the view itself, or a function resolving it at each scrape (null: absent). */
  attachDatapath(dp: Source<DatapathMetricsView>): void {
    this.datapath = asGetter(dp);
  }
  attachGossip(g: Source<GossipMetricsView>): void {
    this.gossip = asGetter(g);
  }
  attachCrypto(c: Source<CryptoMetricsView>): void {
    this.crypto = asGetter(c);
  }
  attachPolicy(p: Source<PolicyMetricsView>): void {
    this.policy = asGetter(p);
  }
  /** Data-path probes (src/probe): path MTU, probe reachability and RTT per peer, partitions. */
  attachProbe(p: Source<ProbeMetricsView>): void {
    this.probe = asGetter(p);
  }
  /** The agent's watch (peer liveness, oversized bridge ports). */
  attachWatch(w: Source<AgentWatchMetricsView>): void {
    this.watch = asGetter(w);
  }
  /** Node name of an underlay endpoint ("addr:port"), for the `peer` label of traffic series. */
  setPeerNames(fn: (endpoint: string) => string | null): void {
    this.peerName = fn;
  }
  setReady(fn: (() => boolean) | null): void {
    this.readyFn = fn;
  }
  setInfo(info: { version: string; node: string }): void {
    this.info = info;
  }
  /** Counts a configuration reload (accepted or refused). */
  recordReload(ok: boolean, nowSeconds = Date.now() / 1000): void {
    if (ok) {
      this.reloads.ok++;
      this.lastReloadOkSeconds = nowSeconds;
    } else {
      this.reloads.refused++;
    }
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  // ---- definitions ----------------------------------------------------------------------------

  /** Network policy (src/policy): verdicts per network and direction, conntrack occupancy. */
  private definePolicy(): void {
    const each = (fn: (network: string, c: ArrayLike<number>, n: PolicyNetworkView) => void) => {
      const p = this.policy();
      if (!p) return;
      for (const n of p.networks()) fn(n.network, n.counters, n);
    };
    this.counter('vxmesh_policy_denied_total', 'Frames of new flows a network policy denied, by the direction that denied (egress of the source, ingress of the destination; both count when both deny).', ['network', 'direction'],
      (emit) => each((network, c) => { emit({ network, direction: 'egress' }, c[PC_DENIED_EGRESS]); emit({ network, direction: 'ingress' }, c[PC_DENIED_INGRESS]); }));
    this.counter('vxmesh_policy_audit_denied_total', 'policyMode audit: new flows a policy would have denied (passed), by direction.', ['network', 'direction'],
      (emit) => each((network, c) => { emit({ network, direction: 'egress' }, c[PC_AUDIT_EGRESS]); emit({ network, direction: 'ingress' }, c[PC_AUDIT_INGRESS]); }));
    this.counter('vxmesh_policy_allowed_total', 'Frames a network policy passed: new (a new flow allowed), tracked (conntrack: later packets and replies), related (ICMP errors of a tracked flow).', ['network', 'kind'],
      (emit) => each((network, c) => { emit({ network, kind: 'new' }, c[PC_ALLOWED_NEW]); emit({ network, kind: 'tracked' }, c[PC_ALLOWED_TRACKED]); emit({ network, kind: 'related' }, c[PC_RELATED]); }));
    this.counter('vxmesh_policy_dropped_total', 'Frames a network policy dropped for other reasons: spoofed (the inner source is not an endpoint of the sending host), non_ip, revoked (a policy change no longer allows the connection).', ['network', 'reason'],
      (emit) => each((network, c) => { emit({ network, reason: 'spoofed' }, c[PC_SPOOFED]); emit({ network, reason: 'non_ip' }, c[PC_NON_IP]); emit({ network, reason: 'revoked' }, c[PC_REVOKED]); }));
    this.gauge('vxmesh_policy_conntrack_entries', 'Connections tracked for network policy.', ['network'],
      (emit) => each((network, _c, n) => emit({ network }, n.conntrack.entries)));
    this.gauge('vxmesh_policy_conntrack_capacity', 'Size of the policy conntrack table (entries).', ['network'],
      (emit) => each((network, _c, n) => emit({ network }, n.conntrack.capacity)));
    this.counter('vxmesh_policy_conntrack_evictions_total', 'Tracked connections evicted because the table was full (their next packet is checked as a new flow).', ['network'],
      (emit) => each((network, _c, n) => emit({ network }, n.conntrack.evictions)));
  }

  private family(type: 'counter' | 'gauge', name: string, help: string, labelNames: string[], fill: (emit: Emit) => void): void {
    this.registry.registerMetric(new Family(name, help, type, labelNames, fill) as unknown as Metric);
  }

  private counter(name: string, help: string, labelNames: string[], fill: (emit: Emit) => void): void {
    this.family('counter', name, help, labelNames, fill);
  }

  private gauge(name: string, help: string, labelNames: string[], fill: (emit: Emit) => void): void {
    this.family('gauge', name, help, labelNames, fill);
  }

  private define(): void {
    this.definePolicy();
    defineProbeMetrics((type, name, help, labels, fill) => this.family(type, name, help, labels, fill), () => this.probe());
    const dp = (): DatapathMetricsView | null => this.datapath();
    const nets = (fn: (l: Labels, c: import('../dataplane/counters').NetworkCounters) => void) => {
      const d = dp();
      if (!d) return;
      for (const n of d.networks()) fn({ network: n.config.name, vni: n.config.vni }, n.counters);
    };
    const net = ['network', 'vni'];

    // Agent.
    this.gauge('vxmesh_info', 'Constant 1, labelled with the vxmesh version and node name.', ['version', 'node'],
      (emit) => emit({ version: this.info.version, node: this.info.node }, 1));
    this.gauge('vxmesh_ready', '1 when the agent is ready (TAPs open, UDP bound, config loaded, gossip joined when seeds are set), else 0.', [],
      (emit) => emit({}, this.readyFn?.() ? 1 : 0));
    this.counter('vxmesh_config_reloads_total', 'Configuration reloads (SIGHUP) by result: ok (applied) or refused (invalid; the running config stays).', ['result'],
      (emit) => { emit({ result: 'ok' }, this.reloads.ok); emit({ result: 'refused' }, this.reloads.refused); });
    this.gauge('vxmesh_config_last_reload_success_timestamp_seconds', 'Unix time of the last successful reload (0: none since start).', [],
      (emit) => emit({}, this.lastReloadOkSeconds));

    // Data plane, per network. Inbound = underlay UDP → TAP; outbound = TAP → underlay UDP.
    this.gauge('vxmesh_networks', 'Networks (VNIs) configured and running.', [],
      (emit) => { let n = 0; const d = dp(); if (d) for (const _ of d.networks()) n++; emit({}, n); });
    this.counter('vxmesh_network_rx_packets_total', 'VXLAN datagrams received for this network (VNI known). Equals delivered + dropped, exactly.', net,
      (emit) => nets((l, c) => emit(l, c.rxPackets)));
    this.counter('vxmesh_network_rx_bytes_total', 'Bytes of VXLAN datagrams received for this network (UDP payload: VXLAN header + inner frame).', net,
      (emit) => nets((l, c) => emit(l, c.rxBytes)));
    this.counter('vxmesh_network_rx_delivered_packets_total', 'Inner frames written to the network\'s TAP.', net,
      (emit) => nets((l, c) => emit(l, c.rxDelivered)));
    this.counter('vxmesh_network_rx_delivered_bytes_total', 'Bytes of inner frames written to the network\'s TAP.', net,
      (emit) => nets((l, c) => emit(l, c.rxDeliveredBytes)));
    this.counter('vxmesh_network_rx_dropped_packets_total', 'Inbound datagrams of this network dropped, by reason (fixed set).', [...net, 'reason'],
      (emit) => nets((l, c) => { for (let i = 0; i < RX_DROP_REASONS.length; i++) emit({ network: l.network, vni: l.vni, reason: RX_DROP_REASONS[i] }, c.rxDrops[i]); }));
    this.counter('vxmesh_network_tx_frames_total', 'Frames read from the network\'s TAP.', net,
      (emit) => nets((l, c) => emit(l, c.txFrames)));
    this.counter('vxmesh_network_tx_frame_bytes_total', 'Bytes of frames read from the network\'s TAP.', net,
      (emit) => nets((l, c) => emit(l, c.txFrameBytes)));
    this.counter('vxmesh_network_tx_packets_total', 'VXLAN datagrams sent for this network (a flooded frame counts once per peer).', net,
      (emit) => nets((l, c) => emit(l, c.txPackets)));
    this.counter('vxmesh_network_tx_bytes_total', 'Bytes of VXLAN datagrams sent for this network (UDP payload).', net,
      (emit) => nets((l, c) => emit(l, c.txBytes)));
    this.counter('vxmesh_network_tx_dropped_frames_total', 'Outbound frames of this network dropped, by reason (fixed set).', [...net, 'reason'],
      (emit) => nets((l, c) => { for (let i = 0; i < TX_DROP_REASONS.length; i++) emit({ network: l.network, vni: l.vni, reason: TX_DROP_REASONS[i] }, c.txDrops[i]); }));
    this.counter('vxmesh_network_tx_flooded_frames_total', 'Outbound frames flooded by head-end replication (broadcast, multicast, unknown unicast).', net,
      (emit) => nets((l, c) => emit(l, c.txFlooded)));
    this.counter('vxmesh_network_neigh_answered_total', 'ARP requests and IPv6 neighbour solicitations answered locally from gossip, without leaving the host.', net,
      (emit) => { const d = dp(); if (d?.neighAnswered) for (const x of d.neighAnswered()) emit({ network: x.network, vni: x.vni }, x.count); });
    this.counter('vxmesh_network_tap_queue_dropped_frames_total', 'Frames the kernel dropped because the network\'s TAP queue (txqueuelen) was full before the agent read them (the TAP\'s tx_dropped).', net,
      (emit) => { const d = dp(); if (d?.tapQueueDrops) for (const x of d.tapQueueDrops()) emit({ network: x.network, vni: x.vni }, x.count); });
    this.counter('vxmesh_fdb_evictions_total', 'FDB entries evicted because the network\'s table was full (oldest first).', net,
      (emit) => nets((l, c) => emit(l, c.fdbEvictions)));
    this.counter('vxmesh_fdb_refused_total', 'FDB entries the network\'s table refused to take, by reason (fixed set; the frame itself goes on).', [...net, 'reason'],
      (emit) => nets((l, c) => { for (let i = 0; i < FDB_REFUSAL_REASONS.length; i++) emit({ network: l.network, vni: l.vni, reason: FDB_REFUSAL_REASONS[i] }, c.fdbRefused[i]); }));
    this.gauge('vxmesh_fdb_entries', 'FDB entries now, by network and kind.', [...net, 'kind'],
      (emit) => { const d = dp(); if (d) for (const e of d.fdbEntries()) emit({ network: e.network, vni: e.vni, kind: e.kind }, e.count); });

    // Data plane, global (before a datagram's VNI is known) and I/O batches.
    this.counter('vxmesh_rx_datagrams_total', 'UDP datagrams received on the VXLAN port, all networks and malformed ones included.', [],
      (emit) => emit({}, dp()?.counters.rxDatagrams ?? 0));
    this.counter('vxmesh_rx_dropped_datagrams_total', 'Datagrams dropped before their network was known (malformed header, unknown VNI), by reason.', ['reason'],
      (emit) => { const d = dp(); if (d) RX_DROP_REASONS.forEach((reason, i) => emit({ reason }, d.counters.rxDrops[i])); });
    this.counter('vxmesh_io_batches_total', 'Batched I/O calls that moved at least one packet, by device (tap: TAP reads, udp: UDP receives).', ['io'],
      (emit) => { const d = dp(); if (d) { emit({ io: 'tap' }, d.counters.tapBatches); emit({ io: 'udp' }, d.counters.udpBatches); } });
    this.registry.registerMetric(batchHistogram(() => dp()?.batchSizes?.() ?? []));
    // Busy-poll (native/busypoll.h): no samples while it is off.
    const bp = (fn: (b: NonNullable<ReturnType<NonNullable<DatapathMetricsView['busyPollStats']>>>) => void) => {
      const b = dp()?.busyPollStats?.() ?? null;
      if (b) fn(b);
    };
    this.gauge('vxmesh_busy_poll_window_seconds', 'Busy-poll window (underlay.busyPollUs): how long after a batch the data path polls its devices before the event loop may sleep.', [],
      (emit) => bp((b) => emit({}, b.windowUs / 1e6)));
    this.counter('vxmesh_busy_poll_windows_total', 'Busy-poll windows started (a data-path readiness callback returned).', [],
      (emit) => bp((b) => emit({}, b.spins)));
    this.counter('vxmesh_busy_poll_polls_total', 'Zero-timeout polls of the data path\'s devices while busy-polling.', [],
      (emit) => bp((b) => emit({}, b.polls)));
    this.counter('vxmesh_busy_poll_hits_total', 'Busy-poll polls that found a device ready: batches handled without sleeping and being woken.', [],
      (emit) => bp((b) => emit({}, b.hits)));
    this.counter('vxmesh_busy_poll_seconds_total', 'Time spent polling and yielding while busy-polling (wall clock; callbacks and other tasks\' turns excluded): what the spin costs.', [],
      (emit) => bp((b) => emit({}, b.spunUs / 1e6)));
    this.counter('vxmesh_busy_poll_backoffs_total', 'Busy-poll windows ended because a yield lost the CPU for > 200 µs (a CPU-bound task shares it); no spinning for 50 ms after each.', [],
      (emit) => bp((b) => emit({}, b.contended ?? 0)));
    this.counter('vxmesh_busy_poll_capped_total', 'Busy-poll windows cut short by the 1 ms cap per event-loop turn (timers and other handles run then).', [],
      (emit) => bp((b) => emit({}, b.capped)));

    // Peers.
    const peers = (fn: (peer: string, c: import('../dataplane/counters').PeerCounters) => void) => {
      const d = dp();
      if (d) for (const [peer, c] of d.peers()) fn(peer, c);
    };
    this.gauge('vxmesh_peers', 'Peers (underlay endpoints) the data path sends to or receives from.', [],
      (emit) => { let n = 0; peers(() => n++); emit({}, n); });
    this.counter('vxmesh_peer_evictions_total', 'Learned peers (senders let in by acceptFrom) evicted, longest idle first, because underlay.maxLearnedPeers were known.', [],
      (emit) => { const d = dp(); if (d) emit({}, d.counters.peerEvictions ?? 0); });
    // Label meanings, the same on every series: `peer` = the peer's node name where gossip knows
    // it (else its underlay endpoint), `endpoint` = its underlay "address:port".
    const pl = (endpoint: string): Labels => ({ peer: this.peerName(endpoint) ?? endpoint, endpoint });
    const pe = ['peer', 'endpoint'];
    this.counter('vxmesh_peer_rx_packets_total', 'VXLAN datagrams received from this peer (all networks, before validation).', pe,
      (emit) => peers((ep, c) => emit(pl(ep), c.rxPackets)));
    this.counter('vxmesh_peer_rx_bytes_total', 'Bytes received from this peer (UDP payload).', pe,
      (emit) => peers((ep, c) => emit(pl(ep), c.rxBytes)));
    this.counter('vxmesh_peer_tx_packets_total', 'VXLAN datagrams sent to this peer.', pe,
      (emit) => peers((ep, c) => emit(pl(ep), c.txPackets)));
    this.counter('vxmesh_peer_tx_bytes_total', 'Bytes sent to this peer (UDP payload).', pe,
      (emit) => peers((ep, c) => emit(pl(ep), c.txBytes)));
    this.gauge('vxmesh_peer_up', 'Peer liveness from received traffic: 1 up (a packet within the last 15 s), 0 down (none for that long, or never); absent until known. `static`: a configured peer.', [...pe, 'static'],
      (emit) => { const w = this.watch(); if (w) for (const p of w.peerViews()) if (p.state !== 'unknown') emit({ peer: p.peer, endpoint: p.endpoint, static: String(p.static) }, p.state === 'up' ? 1 : 0); });
    this.gauge('vxmesh_peer_last_received_seconds', 'Seconds since the last packet from this peer (absent: none yet).', pe,
      (emit) => { const w = this.watch(); if (w) for (const p of w.peerViews()) if (p.lastReceivedAgoSeconds !== null) emit({ peer: p.peer, endpoint: p.endpoint }, p.lastReceivedAgoSeconds); });
    this.gauge('vxmesh_network_failed', '1 while the network\'s TAP is failed (a device error, or deleted under the agent) and being re-created with backoff, else 0: the network forwards nothing meanwhile.', net,
      (emit) => { const w = this.watch(); const d = dp(); if (w?.networkFailed && d) for (const n of d.networks()) emit({ network: n.config.name, vni: n.config.vni }, w.networkFailed(n.config.vni) ? 1 : 0); });
    this.gauge('vxmesh_network_oversized_ports', 'Ports of the network\'s bridge whose MTU exceeds the network MTU (their large frames are dropped by the kernel bridge; see the agent\'s log).', net,
      (emit) => { const w = this.watch(); const d = dp(); if (w && d) for (const n of d.networks()) emit({ network: n.config.name, vni: n.config.vni }, w.oversizedPorts(n.config.vni).length); });

    // Gossip.
    const g = (): GossipMetricsView | null => this.gossip();
    this.gauge('vxmesh_gossip_members', 'Gossip members known, by state (alive, suspect, dead, left); this node included.', ['state'],
      (emit) => { const x = g(); if (x) for (const [state, n] of Object.entries(x.membersByState())) emit({ state }, n); });
    this.gauge('vxmesh_gossip_member_state', 'One series per gossip member and state: 1 for the member\'s current state, else 0. A member reaped while dead stays dead here until it returns, so an alert on it stays firing.', ['peer', 'state'],
      (emit) => {
        const x = g();
        if (!x?.memberStates) return;
        const seen = new Set<string>();
        for (const m of x.memberStates()) {
          seen.add(m.peer);
          this.memberMemory.delete(m.peer); // re-insert: most recent last (the bound drops the oldest)
          this.memberMemory.set(m.peer, m.state);
        }
        for (const [peer, state] of [...this.memberMemory]) {
          if (!seen.has(peer) && state === 'left') this.memberMemory.delete(peer);
          else if (!seen.has(peer) && state !== 'dead') this.memberMemory.set(peer, 'dead'); // reaped: gone without a leave
        }
        while (this.memberMemory.size > 4096) this.memberMemory.delete(this.memberMemory.keys().next().value as string);
        for (const [peer, state] of this.memberMemory) for (const s of MEMBER_STATES) emit({ peer, state: s }, s === state ? 1 : 0);
      });
    this.gauge('vxmesh_gossip_joined', '1 when this node has joined the gossip cluster, else 0 (absent when gossip is not configured).', [],
      (emit) => { const x = g(); if (x) emit({}, x.joined() ? 1 : 0); });
    const gc = (fn: (c: ReturnType<GossipMetricsView['counters']>) => void) => { const x = g(); if (x) fn(x.counters()); };
    this.counter('vxmesh_gossip_probes_total', 'Direct SWIM probes sent.', [], (emit) => gc((c) => emit({}, c.probes)));
    this.counter('vxmesh_gossip_probe_failures_total', 'Probes with no ack, direct or indirect, within the probe timeout.', [], (emit) => gc((c) => emit({}, c.probesFailed)));
    this.counter('vxmesh_gossip_indirect_probes_total', 'Indirect probe requests sent (ping-req) after a direct probe went unanswered.', [], (emit) => gc((c) => { if (c.indirectProbes !== undefined) emit({}, c.indirectProbes); }));
    this.counter('vxmesh_gossip_suspicions_total', 'Members this node started suspecting.', [], (emit) => gc((c) => emit({}, c.suspicions)));
    this.counter('vxmesh_gossip_push_pulls_total', 'Full-state push-pull exchanges initiated.', [], (emit) => gc((c) => { if (c.pushPulls !== undefined) emit({}, c.pushPulls); }));
    this.counter('vxmesh_gossip_messages_total', 'Gossip packets by direction (in, out).', ['direction'],
      (emit) => gc((c) => { emit({ direction: 'in' }, c.messagesIn); emit({ direction: 'out' }, c.messagesOut); }));
    this.counter('vxmesh_gossip_bytes_total', 'Gossip bytes on the wire by direction (in, out).', ['direction'],
      (emit) => gc((c) => { if (c.bytesIn !== undefined) emit({ direction: 'in' }, c.bytesIn); if (c.bytesOut !== undefined) emit({ direction: 'out' }, c.bytesOut); }));
    this.counter('vxmesh_gossip_rejected_packets_total', 'Gossip packets rejected before processing (wrong key, malformed, oversize…), by reason.', ['reason'],
      (emit) => gc((c) => { for (const [reason, n] of Object.entries(c.rejected)) emit({ reason }, n); }));
    this.gauge('vxmesh_peer_rtt_seconds', 'Round-trip time to a gossip member, from probe acks (smoothed).', ['peer'],
      (emit) => { const x = g(); if (x?.rtts) for (const r of x.rtts()) emit({ peer: r.peer }, r.seconds); });

    // Crypto.
    const cr = (): CryptoMetricsView | null => this.crypto();
    this.counter('vxmesh_crypto_handshakes_total', 'Session handshakes by result.', ['result'],
      (emit) => { const x = cr(); if (x) for (const [result, n] of Object.entries(x.counters().handshakes)) emit({ result }, n); });
    this.counter('vxmesh_crypto_failures_total', 'Encrypted packets rejected, by reason (authentication, replay, no session…).', ['reason'],
      (emit) => { const x = cr(); if (x) for (const [reason, n] of Object.entries(x.counters().failures)) emit({ reason }, n); });
    this.gauge('vxmesh_crypto_sessions', 'Established encryption sessions.', [],
      (emit) => { const x = cr(); if (x) emit({}, x.sessions()); });
    this.counter('vxmesh_crypto_duplicate_host_key_total', 'Gossip records, static peers and handshakes seen presenting this host\'s own host key (a cloned image or a shared node.keyFile).', [],
      (emit) => { const x = cr(); if (x?.duplicateHostKeys) emit({}, x.duplicateHostKeys().detections); });
    this.gauge('vxmesh_crypto_duplicate_host_key_hosts', 'Other hosts currently known to use this host\'s own host key (nothing passes between them).', [],
      (emit) => { const x = cr(); if (x?.duplicateHostKeys) emit({}, x.duplicateHostKeys().hosts); });

    // Process.
    this.gauge('vxmesh_event_loop_delay_seconds', 'Event-loop delay over the last complete window (default 10 s), by statistic (p50, p90, p99, max, mean).', ['stat'],
      (emit) => { const s = this.loop.stats(); for (const stat of ['p50', 'p90', 'p99', 'max', 'mean'] as const) emit({ stat }, s[stat]); });
  }
}

/**
 * The batch-size histogram, from fixed-bucket counts kept by the data path (non-cumulative per
 * bucket there; cumulative `le` buckets here, `+Inf` = the count).
 */
function batchHistogram(read: () => Iterable<import('./sources').BatchSizeView>): Metric {
  const name = 'vxmesh_io_batch_size';
  const help = 'Packets moved per batched I/O call, by call (tap_read, tap_write, udp_recv, udp_send).';
  return new Family(name, help, 'histogram', ['io', 'le'], (emit) => {
    for (const h of read()) {
      let cum = 0;
      h.bounds.forEach((b, i) => {
        cum += h.counts[i] ?? 0;
        emit({ io: h.io, le: b }, cum, '_bucket');
      });
      cum += h.counts[h.bounds.length] ?? 0;
      emit({ io: h.io, le: '+Inf' }, cum, '_bucket');
      emit({ io: h.io }, h.sum, '_sum');
      emit({ io: h.io }, cum, '_count');
    }
  }) as unknown as Metric;
}
