/**
 * The agent's control-plane watch, run once a second off the hot path (the data path only counts):
 *   1. peer liveness — per peer (static or learned), when a packet from it last arrived (from its
 *      rx counter moving), and its state: `up` (a packet within `downAfterMs`), `down` (none for
 *      that long, or never since start + downAfterMs), `unknown` before that. Transitions are
 *      logged (warn on down, a static peer that never answered included; info on up);
 *   2. drop summaries — every `dropSummaryMs`, each drop reason that moved is logged at warn (rate
 *      limited per network and reason) with the count, what it means, the offending peers (`peers`:
 *      from the data path's per-peer drop tables, strangers from the drop ring; src/capture/summary.ts)
 *      and the peers that sent during the window; per-peer drops at debug, dropped flows at trace;
 *   3. bridge port MTUs — any port of a network's bridge whose MTU exceeds the network MTU (the
 *      kernel bridge drops larger frames before the agent sees them: small pings work, TCP stalls)
 *      is logged once per port and MTU, listed in status and counted in a metric.
 *   4. network health — a callback for the agent's failed-network check (the TAP still exists).
 * Every decision is logged at debug (state changes) or trace (each round), never per packet.
 */

import type { Clock } from '../clock';
import { LogLimiter, type Logger } from '../log';
import { RX_DROP_REASONS, TX_DROP_REASONS } from '../dataplane/counters';
import type { Datapath } from '../dataplane/datapath';
import type { NetworkConfig } from '../config/types';
import type { AgentSystem } from './system';
import { PeerDropWindow } from '../capture/summary';

export type PeerState = 'up' | 'down' | 'unknown';

export interface PeerLivenessView {
  /** Node name when known (gossip), else the endpoint. */
  peer: string;
  endpoint: string;
  static: boolean;
  state: PeerState;
  /** Wall-clock ISO time of the last packet received, or null. */
  lastReceived: string | null;
  /** Seconds since the last packet, or null. */
  lastReceivedAgoSeconds: number | null;
}

export interface WatchOptions {
  /** A peer with no packet for this long is down (default 15 000 ms). */
  downAfterMs?: number;
  /** Drop summary window (default 10 000 ms); each reason logged at most once a minute. */
  dropSummaryMs?: number;
}

/** What the watch reads from the agent. */
export interface WatchTarget {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly system: AgentSystem;
  datapath(): Datapath | null;
  networks(): readonly { config: NetworkConfig }[];
  /** Node name of an underlay endpoint, when gossip knows it. */
  nodeName(endpoint: string): string | null;
}

const MEANING: Record<string, string> = {
  truncated: 'UDP datagrams shorter than a VXLAN header',
  no_i_flag: 'VXLAN headers without the I (VNI valid) flag',
  reserved_bits: 'VXLAN headers with reserved bits set',
  unknown_vni: 'a VNI this host does not serve: check networks[].vni on both hosts',
  runt_frame: 'frames shorter than an Ethernet header',
  oversize_frame: 'frames larger than the network MTU: check MTUs on both hosts and in the containers',
  bad_src_mac: 'frames with a multicast or zero source MAC',
  own_src_mac: 'frames with one of this host\'s own MACs as source (a loop?)',
  plaintext_on_encrypted: 'plaintext VXLAN on an encrypted network: is the sender configured with encrypted: true?',
  decrypt_failed: 'sealed packets that did not authenticate (no session, replay, or a key we do not have)',
  tap_write_failed: 'frames the TAP refused',
  no_peers: 'frames with no peer to go to (no peer serves this VNI)',
  no_session: 'frames for an encrypted network with no session to the peer',
  send_failed: 'UDP sends that failed',
};

export class AgentWatch {
  private readonly downAfterMs: number;
  private readonly dropSummaryMs: number;
  private readonly limiter: LogLimiter;
  private readonly startedAt: number;
  private readonly peers = new Map<string, { rx: number; lastRxAt: number | null; lastRxWall: number | null; state: PeerState; static: boolean }>();
  /** Per network: drop counters at the start of the window. */
  private readonly dropBase = new Map<number, { rx: Float64Array; tx: Float64Array }>();
  private readonly globalBase = new Float64Array(RX_DROP_REASONS.length);
  private peerRxAtWindow = new Map<string, number>();
  private windowStart: number;
  /** Per network: ports whose MTU exceeds the network MTU. */
  private readonly oversized = new Map<number, { port: string; mtu: number }[]>();
  private readonly warnedPorts = new Set<string>();
  private readonly peerDrops: PeerDropWindow;

  constructor(private readonly t: WatchTarget, opts: WatchOptions = {}) {
    this.downAfterMs = opts.downAfterMs ?? 15_000;
    this.dropSummaryMs = opts.dropSummaryMs ?? 10_000;
    this.limiter = new LogLimiter(t.logger, { intervalMs: 60_000, clock: t.clock });
    this.startedAt = t.clock.now();
    this.windowStart = this.startedAt;
    this.peerDrops = new PeerDropWindow((ep) => t.nodeName(ep));
  }

  /** One round (the agent's 1 s timer calls it). Never throws. */
  tick(): void {
    const dp = this.t.datapath();
    if (!dp) return;
    try {
      this.livenessRound(dp);
      if (this.t.clock.now() - this.windowStart >= this.dropSummaryMs) this.dropRound(dp);
      this.mtuRound();
    } catch (e) {
      this.t.logger.warn({ err: (e as Error).message }, 'watch round failed');
    }
  }

  private livenessRound(dp: Datapath): void {
    const now = this.t.clock.now();
    const seen = new Set<string>();
    for (const p of dp.peerList()) {
      const key = p.label;
      seen.add(key);
      let s = this.peers.get(key);
      if (!s) {
        s = { rx: 0, lastRxAt: null, lastRxWall: null, state: 'unknown', static: p.static };
        this.peers.set(key, s);
        this.t.logger.debug({ peer: this.t.nodeName(key) ?? key, endpoint: key, static: p.static }, p.static ? 'static peer tracked' : 'peer learned from traffic or gossip: tracked');
      }
      s.static = p.static;
      if (p.counters.rxPackets !== s.rx) {
        s.rx = p.counters.rxPackets;
        s.lastRxAt = now;
        s.lastRxWall = Date.now();
      }
      const since = s.lastRxAt ?? this.startedAt;
      const next: PeerState = s.lastRxAt !== null && now - s.lastRxAt < this.downAfterMs ? 'up'
        : now - since >= this.downAfterMs ? 'down' : 'unknown';
      if (next !== s.state) this.transition(key, s, next);
      s.state = next;
    }
    for (const k of [...this.peers.keys()]) {
      if (seen.has(k)) continue;
      this.peers.delete(k);
      this.t.logger.debug({ peer: this.t.nodeName(k) ?? k, endpoint: k }, 'peer forgotten by the data path');
    }
  }

  private transition(key: string, s: { lastRxAt: number | null; static: boolean }, next: PeerState): void {
    const log = this.t.logger;
    const name = this.t.nodeName(key);
    const fields = { peer: name ?? key, endpoint: key, static: s.static };
    if (next === 'down') {
      if (s.lastRxAt === null) {
        log.warn({ ...fields, afterSeconds: this.downAfterMs / 1000 }, `${s.static ? 'static peer' : 'peer'} ${name ?? key} has never answered: no packet from it since the agent started (is its agent running, the VXLAN port open, and this host in its peers?)`);
      } else {
        log.warn({ ...fields, silentSeconds: Math.round((this.t.clock.now() - s.lastRxAt) / 1000) }, `peer ${name ?? key} is down: no packet from it for ${this.downAfterMs / 1000}s`);
      }
    } else if (next === 'up') {
      log.info(fields, `peer ${name ?? key} is up`);
    }
    log.debug({ ...fields, state: next }, 'peer state changed');
  }

  private dropRound(dp: Datapath): void {
    const now = this.t.clock.now();
    const senders: string[] = [];
    const peerRx = new Map<string, number>();
    for (const p of dp.peerList()) {
      peerRx.set(p.label, p.counters.rxPackets);
      if (p.counters.rxPackets > (this.peerRxAtWindow.get(p.label) ?? 0)) senders.push(this.t.nodeName(p.label) ?? p.label);
    }
    const windowS = Math.round((now - this.windowStart) / 1000);
    this.peerDrops.begin((dp as Partial<Datapath>).capture ?? null);
    const report = (scope: Record<string, unknown>, dir: 'rx' | 'tx', reason: string, n: number) => {
      if (n <= 0 || reason === 'local_dst') return; // local_dst: the destination is on this host's bridge (normal)
      const key = `${dir}:${reason}:${String(scope.network ?? '-')}`;
      const idx = (dir === 'rx' ? RX_DROP_REASONS : TX_DROP_REASONS as readonly string[]).indexOf(reason);
      const who = this.peerDrops.offenders(typeof scope.vni === 'number' ? scope.vni : null, dir, idx);
      const named = who.length === 0 ? '' : ` ${dir === 'rx' ? 'from' : 'to'} ${who.map((o) => (o.peer === o.endpoint ? o.peer : `${o.peer} (${o.endpoint})`) + (o.dropped !== null ? ` ×${o.dropped}` : '')).join(', ')}`;
      this.limiter.warn(key, { ...scope, direction: dir, reason, dropped: n, windowSeconds: windowS, peers: who, ...(dir === 'rx' ? { sendersInWindow: senders } : {}) },
        `dropped ${n} ${dir === 'rx' ? 'received' : 'outgoing'} packet${n === 1 ? '' : 's'} (${reason}: ${MEANING[reason] ?? reason})${scope.network ? ` on network ${String(scope.network)}` : ''}${named} in the last ${windowS}s`);
    };
    const g = dp.counters;
    RX_DROP_REASONS.forEach((r, i) => report({}, 'rx', r, g.rxDrops[i] - this.globalBase[i]));
    this.globalBase.set(g.rxDrops);
    for (const n of dp.networks()) {
      const c = n.counters;
      let base = this.dropBase.get(n.config.vni);
      if (!base) {
        base = { rx: new Float64Array(RX_DROP_REASONS.length), tx: new Float64Array(TX_DROP_REASONS.length) };
        this.dropBase.set(n.config.vni, base);
      }
      const scope = { network: n.config.name, vni: n.config.vni };
      RX_DROP_REASONS.forEach((r, i) => report(scope, 'rx', r, c.rxDrops[i] - base!.rx[i]));
      TX_DROP_REASONS.forEach((r, i) => report(scope, 'tx', r, c.txDrops[i] - base!.tx[i]));
      base.rx.set(c.rxDrops);
      base.tx.set(c.txDrops);
    }
    this.peerDrops.logDecisions(this.t.logger);
    this.peerDrops.end();
    this.peerRxAtWindow = peerRx;
    this.windowStart = now;
    this.t.logger.trace({ senders, windowSeconds: windowS }, 'drop summary round');
  }

  private mtuRound(): void {
    const sys = this.t.system;
    if (!sys.bridgePorts) return;
    for (const { config: n } of this.t.networks()) {
      let ports: { name: string; mtu: number }[];
      try {
        ports = sys.bridgePorts(n.bridge);
      } catch {
        continue;
      }
      const over = ports.filter((p) => p.name !== n.tap && p.mtu > n.mtu).map((p) => ({ port: p.name, mtu: p.mtu }));
      const before = this.oversized.get(n.vni) ?? [];
      for (const p of over) {
        const k = `${n.vni}:${p.port}:${p.mtu}`;
        if (this.warnedPorts.has(k)) continue;
        this.warnedPorts.add(k);
        this.t.logger.warn({ network: n.name, vni: n.vni, bridge: n.bridge, port: p.port, portMtu: p.mtu, networkMtu: n.mtu },
          `port ${p.port} of ${n.bridge} has MTU ${p.mtu}, above network ${n.name}'s MTU ${n.mtu}: frames larger than ${n.mtu} from it are dropped by the bridge (small pings work, TCP stalls); set the container interface and its veth to MTU ${n.mtu}`);
      }
      for (const p of before) {
        if (!over.some((o) => o.port === p.port)) {
          this.t.logger.info({ network: n.name, bridge: n.bridge, port: p.port }, `port ${p.port} of ${n.bridge} no longer exceeds the network MTU`);
          for (const k of [...this.warnedPorts]) if (k.startsWith(`${n.vni}:${p.port}:`)) this.warnedPorts.delete(k);
        }
      }
      this.oversized.set(n.vni, over);
    }
  }

  /** Ports above the network MTU, per VNI (status, metrics). */
  oversizedPorts(vni: number): { port: string; mtu: number }[] {
    return this.oversized.get(vni) ?? [];
  }

  /** Liveness of every peer the data path knows. */
  peerViews(): PeerLivenessView[] {
    const now = this.t.clock.now();
    return [...this.peers.entries()].map(([endpoint, s]) => ({
      peer: this.t.nodeName(endpoint) ?? endpoint,
      endpoint,
      static: s.static,
      state: s.state,
      lastReceived: s.lastRxWall === null ? null : new Date(s.lastRxWall).toISOString(),
      lastReceivedAgoSeconds: s.lastRxAt === null ? null : Math.round((now - s.lastRxAt) / 1000),
    }));
  }

  peerState(endpoint: string): PeerState {
    return this.peers.get(endpoint)?.state ?? 'unknown';
  }
}
