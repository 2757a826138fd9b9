/**
 * The agent extension `probe`: starts the probe engine as the data path's probe stage, publishes
 * this host's reachability row in its gossip record (section `reach`, when gossip is on), and
 * serves GET /v1/reachability (this host's row, the others' from gossip, the partition count);
 * status (`extensions.probe`) lists each peer's data-path state, RTT and path MTU; metrics through
 * `metricsView` (metrics.ts).
 *
 * Row publishing: when a peer's verdict or path MTU changed (at most every `minPublishMs`, default
 * 2 s), and every `refreshMs` (default 30 s: RTTs) — each publish is a new record incarnation,
 * spread by gossip's own dissemination, so it is kept rare.
 */
import type * as http from 'node:http';

import type { Agent, AgentExtension } from '../agent/agent';
import { sendJson } from '../api/server';
import type { TimerHandle } from '../clock';
import type { Config } from '../config/types';
import type { GossipApi } from '../gossip/api';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { ProbeEngine, type ProbeOptions, type ProbePeerView } from './engine';
import type { ProbeMetricsView } from './metrics';
import { REACH_SECTION, decodeRow, encodeRow, partition, type ReachCell, type ReachRow } from './reachability';
import { PROBE_DROP_REASONS } from './wire';

/** The part of the gossip API this extension uses. */
export type ProbeGossip = Pick<GossipApi, 'nodeName' | 'setSection' | 'sections'> & Partial<Pick<GossipApi, 'memberInfos'>>;

/** How long a peer no longer probed (a gossip member declared dead, then reaped) stays in this host's row as down. */
const GONE_TTL_MS = 10 * 60_000;

export interface ProbeExtensionOptions extends ProbeOptions {
  minPublishMs?: number;
  refreshMs?: number;
  gossip?: ProbeGossip | null;
}

/** One peer with its name, as status and /v1/reachability show it. */
export interface NamedPeerView extends ProbePeerView {
  peer: string;
}

/** GET /v1/reachability. */
export interface ReachabilityJson {
  node: string;
  partitions: number;
  components: string[][];
  hosts: string[];
  rows: { from: string; self: boolean; fresh: boolean; peers: { peer: string; up: boolean; rttMs: number | null; pmtu: number | null }[] }[];
  /** This host's own peers in detail. */
  peers: NamedPeerView[];
}

export class ProbeExtension implements AgentExtension {
  readonly name = 'probe';
  engine: ProbeEngine | null = null;
  private agent: Agent | null = null;
  private gossip: ProbeGossip | null = null;
  private readonly log: Logger;
  private timer: TimerHandle | null = null;
  private dirty = true;
  private lastPublish = -Infinity;
  private seq = 0;
  private rowsRefused = 0;
  private lastRowText = new Map<string, string>();
  /** Peers this host's row named, with when they were last probed (a peer that stops being probed stays, down, for GONE_TTL_MS). */
  private readonly named = new Map<string, number>();

  constructor(private readonly config: Config, logger: Logger = nullLogger, private readonly opts: ProbeExtensionOptions = {}) {
    this.log = logger.child({ component: 'probe' });
    this.gossip = opts.gossip ?? null;
  }

  /** Hands over the gossip API (cli/extensions.ts), before start. */
  connect(deps: { gossip: ProbeGossip | null }): void {
    this.gossip = deps.gossip;
  }

  start(agent: Agent): void {
    this.agent = agent;
    const engine = new ProbeEngine({ ...this.opts, logger: this.log, clock: this.opts.clock ?? agent.clock });
    this.engine = engine;
    agent.datapath.setProbe(engine);
    engine.start();
    engine.onChange(() => {
      this.dirty = true;
    });
    this.timer = agent.clock.setInterval(1000, () => this.publish());
    agent.api?.route('GET', '/v1/reachability', (_q: http.IncomingMessage, res: http.ServerResponse) => sendJson(res, 200, this.reachability()));
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
    this.agent?.api?.unroute('GET', '/v1/reachability');
    if (this.engine) {
      this.engine.stop();
      try {
        this.agent?.datapath.setProbe(null);
      } catch {
        // data path already gone
      }
    }
    this.engine = null;
  }

  private nodeName(): string {
    return this.gossip?.nodeName ?? this.config.node.name;
  }

  /** This host's peers with their names (node name where gossip knows it, else the endpoint). */
  peers(): NamedPeerView[] {
    const e = this.engine;
    if (!e) return [];
    return e.peerViews().map((p) => ({ peer: this.agent?.nodeName(p.endpoint) ?? p.endpoint, ...p }));
  }

  /**
   * This host's row. A peer probed no more is not silently forgotten (that would let a stale row
   * of the other side join the two again): gossip drops a dead member from the flood lists, so
   * its probes stop; it stays in the row as down for GONE_TTL_MS, unless it left gracefully.
   */
  private ownCells(): Map<string, ReachCell> {
    const m = new Map<string, ReachCell>();
    const now = this.agent?.clock.now() ?? 0;
    const peers = this.peers();
    const endpoints = new Set(peers.map((p) => p.endpoint));
    for (const p of peers) {
      this.named.set(p.peer, now);
      if (p.state === 'unknown') continue;
      m.set(p.peer, { up: p.state === 'up', rttMs: p.rttMs, pmtu: p.pathMtu });
    }
    let left = new Set<string>();
    try {
      left = new Set((this.gossip?.memberInfos?.() ?? []).filter((i) => i.state === 'left').map((i) => i.name));
    } catch {
      // gossip not started: nobody left
    }
    for (const [name, at] of this.named) {
      if (m.has(name) || at === now) continue;
      // (a peer first named by its endpoint, now by its node name, is not a gone peer)
      if (left.has(name) || endpoints.has(name) || now - at > GONE_TTL_MS) {
        this.named.delete(name);
        continue;
      }
      m.set(name, { up: false, rttMs: null, pmtu: null });
    }
    return m;
  }

  /** Publishes the row when due (1 s timer). Never throws. */
  private publish(): void {
    const g = this.gossip;
    const a = this.agent;
    if (!g || !a) return;
    const now = a.clock.now();
    const min = this.opts.minPublishMs ?? 2000;
    const refresh = this.opts.refreshMs ?? 30_000;
    if (!((this.dirty && now - this.lastPublish >= min) || now - this.lastPublish >= refresh)) return;
    try {
      g.setSection(REACH_SECTION, encodeRow(++this.seq, this.ownCells()));
      this.dirty = false;
      this.lastPublish = now;
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'reachability row not published');
    }
  }

  /** Every row known: this host's own (fresh), and each gossip member's (fresh while alive or suspect). */
  rows(): ReachRow[] {
    const self = this.nodeName();
    const rows: ReachRow[] = [{ from: self, fresh: true, seq: this.seq, peers: this.ownCells() }];
    const g = this.gossip;
    if (!g) return rows;
    let sections: ReturnType<ProbeGossip['sections']> = [];
    try {
      sections = g.sections(REACH_SECTION);
    } catch {
      return rows;
    }
    for (const s of sections) {
      if (s.self || s.node === self) continue;
      const fresh = s.state === 'alive' || s.state === 'suspect';
      const r = decodeRow(s.node, s.data, fresh);
      if (typeof r === 'string') {
        // counted once per distinct text (rows are read at every scrape)
        if (this.lastRowText.get(s.node) !== s.data) {
          this.rowsRefused++;
          this.log.warn({ peer: s.node, reason: r }, 'reachability row refused');
        }
        this.lastRowText.set(s.node, s.data);
        continue;
      }
      this.lastRowText.delete(s.node);
      rows.push(r);
    }
    return rows;
  }

  reachability(): ReachabilityJson {
    const rows = this.rows();
    const p = partition(rows);
    const self = this.nodeName();
    return {
      node: self,
      partitions: p.components.length,
      components: p.components,
      hosts: p.hosts,
      rows: rows.map((r) => ({
        from: r.from, self: r.from === self, fresh: r.fresh,
        peers: [...r.peers].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([peer, c]) => ({ peer, ...c })),
      })),
      peers: this.peers(),
    };
  }

  status(): unknown {
    const e = this.engine;
    const drops: Record<string, number> = {};
    if (e) PROBE_DROP_REASONS.forEach((r, i) => { if (e.counters.drops[i] > 0) drops[r] = e.counters.drops[i]; });
    return { peers: this.peers(), partitions: partition(this.rows()).components.length, drops };
  }

  metricsView(): ProbeMetricsView {
    return {
      peers: () => this.peers().map((p) => ({ peer: p.peer, endpoint: p.endpoint, state: p.state, capable: p.capable, rttSeconds: p.rttMs === null ? null : p.rttMs / 1000, pathMtu: p.pathMtu })),
      partitions: () => partition(this.rows()).components.length,
      drops: () => (this.engine ? PROBE_DROP_REASONS.map((r, i): [string, number] => [r, this.engine!.counters.drops[i]]) : []),
      counters: () => {
        const c = this.engine?.counters;
        return {
          sent: c?.sent ?? 0, answered: c?.answered ?? 0, lost: c?.lost ?? 0, sendFailed: c?.sendFailed ?? 0, requests: c?.requests ?? 0,
          replies: c?.replies ?? 0, icmpSent: c?.icmpSent ?? 0, icmpRateLimited: c?.icmpRateLimited ?? 0, icmpNotAnswerable: c?.icmpNotAnswerable ?? 0,
          rowsRefused: this.rowsRefused,
        };
      },
    };
  }
}

/** The factory line for src/cli/extensions.ts: always on (probes cost ~1 small datagram per peer per second). */
export function createProbeExtension(config: Config, logger: Logger): ProbeExtension {
  return new ProbeExtension(config, logger);
}
