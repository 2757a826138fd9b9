/**
 * The `observe` agent extension (when gossip runs): convergence telemetry (convergence.ts) and the
 * periodic reconciliation of the FDB and neighbour tables with the gossip state (reconcile.ts).
 * Its metric families are registered in the ops extension's registry (handed over by
 * cli/extensions.ts `connect`), its summary is `extensions.observe` of GET /v1/status.
 */

import type { Metric, Registry } from 'prom-client';
import type { Agent, AgentExtension } from '../agent/agent';
import type { Config } from '../config/types';
import type { GossipApi } from '../gossip/api';
import type { Logger } from '../log';
import { Family, type Emit } from '../metrics/family';
import { CONVERGENCE_BUCKETS, ConvergenceObserver, type ConvergenceHistogram } from './convergence';
import { Reconciler, RECONCILE_KINDS, type ReconcileKind, type ReconcileTable } from './reconcile';

export interface ObserveOptions {
  reconcileIntervalMs?: number;
  tickMs?: number;
  wallNow?: () => number;
}

/** The kinds each table can have (the others are never counted: no series for them). */
export const TABLE_KINDS: Record<ReconcileTable, readonly ReconcileKind[]> = {
  fdb: RECONCILE_KINDS.filter((k) => k !== 'wrong_mac'),
  neigh: RECONCILE_KINDS.filter((k) => k !== 'wrong_host'),
};

export class ObserveExtension implements AgentExtension {
  readonly name = 'observe';
  reconciler: Reconciler | null = null;
  convergence: ConvergenceObserver | null = null;
  private gossip: GossipApi | null = null;
  private registered = false;
  private readonly log: Logger;

  constructor(private config: Config, logger: Logger, private readonly opts: ObserveOptions = {}) {
    this.log = logger.child({ component: 'observe' });
  }

  /** Typed connections made once by buildExtensions: the gossip API, and the registry of /metrics. */
  connect(links: { gossip: GossipApi | null; registry: Registry | null }): void {
    this.gossip = links.gossip;
    if (links.registry && !this.registered) {
      this.registered = true;
      for (const f of this.families()) links.registry.registerMetric(f as unknown as Metric);
    }
  }

  start(agent: Agent): void {
    const g = this.gossip;
    if (!g) return;
    this.reconciler = new Reconciler({
      target: () => agent.datapath, source: g, underlay: agent.config.underlay, clock: agent.clock,
      intervalMs: this.opts.reconcileIntervalMs, logger: this.log,
    });
    this.convergence = new ConvergenceObserver({
      gossip: g,
      clock: agent.clock,
      wallNow: this.opts.wallNow,
      tickMs: this.opts.tickMs,
      logger: this.log,
      networkOf: (vni) => this.config.networks.find((n) => n.vni === vni)?.name ?? null,
      local: () => {
        const dp = agent.datapath;
        if (!dp) return null;
        const nets = dp.networks();
        return {
          version: () => nets.map((n) => `${n.config.vni}:${dp.localVersion(n.config.vni)}`).join(','),
          endpoints: () => nets.flatMap((n) => dp.localEndpoints(n.config.vni).map((e) => ({ vni: n.config.vni, mac: e.mac }))),
        };
      },
    });
    this.reconciler.start();
    this.convergence.start();
  }

  stop(): void {
    this.reconciler?.stop();
    this.convergence?.stop();
  }

  reload(config: Config): void {
    this.config = config;
  }

  status(): unknown {
    return {
      reconcile: this.reconciler?.status() ?? null,
      convergence: this.convergence?.status() ?? null,
    };
  }

  private families(): Family[] {
    const conv = (): ConvergenceObserver | null => this.convergence;
    const rec = (): Reconciler | null => this.reconciler;
    return [
      new Family('vxmesh_endpoint_convergence_seconds',
        'Time from an endpoint\'s first appearance on its host to this host learning it through gossip, by network (wall clocks of two hosts: skew adds to it; see docs/metrics.md).',
        'histogram', ['network', 'le'], (emit) => { const c = conv(); if (c) emitHistograms(c.histograms.values(), emit); }),
      new Family('vxmesh_endpoint_convergence_all_seconds',
        'Time from an endpoint\'s first appearance on this host to its knowledge by every live member serving its network (the latest of their acknowledgements), by network; observed once per endpoint on its origin host (wall clocks: skew adds to it; see docs/metrics.md).',
        'histogram', ['network', 'le'], (emit) => { const c = conv(); if (c) emitHistograms(c.allHistograms.values(), emit); }),
      new Family('vxmesh_endpoint_convergence_all_incomplete_total',
        'Endpoints of this host that left the 5-minute window before every live member serving the network had acknowledged them (a member that joined after the endpoint, an older agent, or a lost record): not observed in vxmesh_endpoint_convergence_all_seconds.',
        'counter', [], (emit) => { const c = conv(); if (c) emit({}, c.incomplete); }),
      new Family('vxmesh_endpoint_convergence_negative_total',
        'Convergence observations that came out negative (this host\'s clock behind the origin\'s): observed as 0. Growing: the hosts\' clocks are not synchronised.',
        'counter', [], (emit) => { const c = conv(); if (c) emit({}, c.negative); }),
      new Family('vxmesh_endpoint_convergence_unstamped_total',
        'Endpoints learned whose origin never published their appearance time (an older agent, or more new endpoints than its record carries): not observed.',
        'counter', [], (emit) => { const c = conv(); if (c) emit({}, c.unstamped); }),
      new Family('vxmesh_reconcile_mismatches_total',
        'Entries of the FDB (table="fdb") and the ARP/ND table (table="neigh") that disagreed with the gossip state at a reconciliation, by kind: missing, stale, wrong_host (fdb), wrong_mac (neigh). Each was repaired.',
        'counter', ['table', 'kind'], (emit) => {
          const r = rec();
          if (!r) return;
          for (const t of ['fdb', 'neigh'] as const) for (const k of TABLE_KINDS[t]) emit({ table: t, kind: k }, r.mismatches[t][k]);
        }),
      new Family('vxmesh_reconcile_repair_failures_total',
        'Repairs the table refused (full FDB, network gone): the mismatch is found again at the next run.',
        'counter', ['table'], (emit) => {
          const r = rec();
          if (r) for (const t of ['fdb', 'neigh'] as const) emit({ table: t }, r.repairFailures[t]);
        }),
      new Family('vxmesh_reconcile_runs_total', 'Reconciliations of the FDB and ARP/ND tables with the gossip state.', 'counter', [],
        (emit) => { const r = rec(); if (r) emit({}, r.runs); }),
    ];
  }
}

/** One histogram series set per network: cumulative buckets, sum, count. */
function emitHistograms(hs: Iterable<ConvergenceHistogram>, emit: Emit): void {
  for (const h of hs) {
    let cum = 0;
    CONVERGENCE_BUCKETS.forEach((b, i) => {
      cum += h.counts[i];
      emit({ network: h.network, le: b }, cum, '_bucket');
    });
    cum += h.counts[CONVERGENCE_BUCKETS.length];
    emit({ network: h.network, le: '+Inf' }, cum, '_bucket');
    emit({ network: h.network }, h.sum, '_sum');
    emit({ network: h.network }, cum, '_count');
  }
}

/** Factory for src/cli/extensions.ts: on when gossip is configured (both mechanisms read its state). */
export function createObserveExtension(config: Config, logger: Logger): AgentExtension | null {
  return config.gossip ? new ObserveExtension(config, logger) : null;
}
