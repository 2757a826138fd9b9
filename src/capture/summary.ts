/**
 * Who caused the drops: per-window deltas of the per-peer drop tables, for the agent watch's
 * rate-limited drop warnings (src/agent/watch.ts names the offending peers with them), and the
 * debug / trace records of per-peer and per-flow drop decisions. Control plane, once per window
 * (default 10 s); bounded: at most PEER_DROP_ROWS peers per network, `maxFlows` flow records per
 * window, never one record per packet.
 *
 * Senders without a row (strangers the data path has no peer for, or peers beyond the rows) are
 * named from the drop ring: the distinct sender endpoints among the ring's entries of that reason
 * recorded during the window.
 */
import { endpointToString, recordToEndpoint } from '../dataplane/addr';
import { PEER_DROP_ROWS, RX_DROP_REASONS, TX_DROP_REASONS, type PeerDropTable } from '../dataplane/counters';
import type { Logger } from '../log';
import type { CaptureHub, CaptureNetwork } from './drops';
import { describeFrame, reasonName } from './render';
import { DIR_RX, KIND_FRAME, type FrameEntry, type FrameRing } from './ring';

const R = RX_DROP_REASONS.length;
const T = TX_DROP_REASONS.length;

export interface Offender {
  /** Node name where known, else the endpoint. */
  peer: string;
  endpoint: string;
  /** Drops in the window (null: seen in the drop ring, count not kept per stranger). */
  dropped: number | null;
}

interface Scope {
  network: CaptureNetwork | null;
  table: PeerDropTable;
  ring: FrameRing | undefined;
  base: { rx: Float64Array; tx: Float64Array };
  ringBase: number;
  fresh: FrameEntry[];
}

export class PeerDropWindow {
  private readonly bases = new Map<PeerDropTable, { rx: Float64Array; tx: Float64Array; ring: number }>();
  private scopes = new Map<number | null, Scope>();

  constructor(private readonly nodeName: (endpoint: string) => string | null, private readonly maxFlows = 20) {}

  /** Starts a window's report: reads what moved since the last `end` (the first window: since start). */
  begin(hub: CaptureHub | null): void {
    const scopes = new Map<number | null, Scope>();
    if (hub === null) {
      this.scopes = scopes;
      return;
    }
    const add = (network: CaptureNetwork | null, table: PeerDropTable) => {
      let b = this.bases.get(table);
      if (!b) this.bases.set(table, (b = { rx: new Float64Array(table.rx.length), tx: new Float64Array(table.tx.length), ring: 0 }));
      const ring = hub.ring(network);
      const fresh = ring === undefined ? [] : ring.entries(Math.min(ring.capacity, ring.total - b.ring));
      scopes.set(network === null ? null : network.config.vni, { network, table, ring, base: b, ringBase: b.ring, fresh });
    };
    add(null, hub.globalTable);
    for (const n of hub.networks()) add(n, n.counters.peerDrops);
    for (const t of [...this.bases.keys()]) if (![...scopes.values()].some((s) => s.table === t)) this.bases.delete(t);
    this.scopes = scopes;
  }

  /** The peers behind the window's drops of `reason` (index) in direction `dir` on network `vni` (null: before a network was known), busiest first. */
  offenders(vni: number | null, dir: 'rx' | 'tx', reason: number, max = 5): Offender[] {
    const s = this.scopes.get(vni);
    if (!s) return [];
    const out: Offender[] = [];
    const [cur, base, W] = dir === 'rx' ? [s.table.rx, s.base.rx, R] : [s.table.tx, s.base.tx, T];
    for (let r = 0; r < s.table.used; r++) {
      const d = cur[r * W + reason] - base[r * W + reason];
      if (d > 0) {
        const ep = s.table.labels[r]!;
        out.push({ peer: this.nodeName(ep) ?? ep, endpoint: ep, dropped: d });
      }
    }
    out.sort((a, b) => (b.dropped ?? 0) - (a.dropped ?? 0));
    if (cur[PEER_DROP_ROWS * W + reason] - base[PEER_DROP_ROWS * W + reason] > 0) {
      const seen = new Set(out.map((o) => o.endpoint));
      const d = dir === 'rx' ? DIR_RX : 1;
      for (const e of s.fresh) {
        if (e.dir !== d || e.reason !== reason || e.addr === null) continue;
        const ep = endpointToString(recordToEndpoint(e.addr, 0));
        if (seen.has(ep)) continue;
        seen.add(ep);
        out.push({ peer: this.nodeName(ep) ?? ep, endpoint: ep, dropped: null });
      }
    }
    return out.slice(0, max);
  }

  /**
   * debug: one record per peer whose drops moved in the window (by reason); trace: one per
   * dropped frame recorded in the window (its flow), at most `maxFlows` in all.
   */
  logDecisions(log: Logger): void {
    const lv = log.level;
    const debug = lv === 'debug' || lv === 'trace';
    if (!debug) return;
    for (const s of this.scopes.values()) {
      const network = s.network === null ? null : s.network.config.name;
      for (let r = 0; r <= Math.min(s.table.used, PEER_DROP_ROWS); r++) {
        const row = r === s.table.used ? PEER_DROP_ROWS : r;
        const rx: Record<string, number> = {};
        const tx: Record<string, number> = {};
        let any = false;
        for (let i = 0; i < R; i++) { const d = s.table.rx[row * R + i] - s.base.rx[row * R + i]; if (d > 0) { rx[RX_DROP_REASONS[i]] = d; any = true; } }
        for (let i = 0; i < T; i++) { const d = s.table.tx[row * T + i] - s.base.tx[row * T + i]; if (d > 0) { tx[TX_DROP_REASONS[i]] = d; any = true; } }
        if (!any) continue;
        const ep = row === PEER_DROP_ROWS ? null : s.table.labels[row]!;
        log.debug({ network: network ?? '-', peer: ep === null ? 'other' : this.nodeName(ep) ?? ep, endpoint: ep, rx, tx },
          `drops by peer ${ep === null ? 'other (no known peer)' : this.nodeName(ep) ?? ep}${network ? ` on network ${network}` : ''} in the window`);
      }
    }
    if (lv !== 'trace') return;
    let n = 0;
    let skipped = 0;
    for (const s of this.scopes.values()) {
      const network = s.network === null ? '-' : s.network.config.name;
      for (const e of s.fresh) {
        if (n >= this.maxFlows) { skipped++; continue; }
        n++;
        const ep = e.addr === null ? null : endpointToString(recordToEndpoint(e.addr, 0));
        log.trace({ network, direction: e.dir === DIR_RX ? 'rx' : 'tx', reason: reasonName(e.dir, e.reason), peer: ep === null ? null : this.nodeName(ep) ?? ep, endpoint: ep,
          len: e.origLen, flow: e.kind === KIND_FRAME ? describeFrame(e.data) : `vxmesh datagram of ${e.origLen} bytes` }, 'dropped frame');
      }
    }
    if (skipped > 0) log.trace({ skipped, maxFlows: this.maxFlows }, 'more dropped frames in the window than traced (vxmesh capture --drops has the last ones)');
  }

  /** Ends the window: the current counts become the base of the next. */
  end(): void {
    for (const s of this.scopes.values()) {
      s.base.rx.set(s.table.rx);
      s.base.tx.set(s.table.tx);
      if (s.ring) this.bases.get(s.table)!.ring = s.ring.total;
    }
  }
}
