/**
 * The reachability matrix: each agent's row (its data-path probe verdict, RTT and path MTU for
 * every peer) is published in its own gossip record (section `reach`), so a row speaks only for
 * the host that signed the record it came in: a row never carries claims in another host's name
 * (`decodeRow` takes the sender from gossip, not from the data). Rows are published when a verdict
 * changes, RTT or path MTU moved noticeably, or every `refreshMs` (engine/extension), never per
 * probe.
 *
 * Partitions (`vxmesh_partitions`): the number of connected components of the graph whose nodes
 * are every host named (row senders and the peers their rows name) and whose edges are the pairs
 * {X, Y} that can talk: the claims about the pair — X's row about Y and Y's row about X — taken
 * from fresh rows (this host's own, and those of gossip members alive or suspect), or, when no
 * fresh row speaks about the pair, from the last rows known (a host cut off from us cannot update
 * its row, but what it last said about others is the best we have); an edge exists when there is
 * at least one claim and every claim is `up`. 1 = every host reaches every other through some
 * path; a cut host adds one. Pure functions; tests feed rows directly.
 */

export const REACH_SECTION = 'reach';
export const ROW_VERSION = 1;
/** Most peers one row may name (more: the row is refused). */
export const MAX_ROW_PEERS = 4096;
/** Longest host name / endpoint text in a row. */
export const MAX_NAME_LEN = 255;
/** Largest row text accepted from gossip. */
export const MAX_ROW_BYTES = 256 * 1024;

export interface ReachCell {
  up: boolean;
  /** Smoothed RTT, ms (null: none yet). */
  rttMs: number | null;
  /** Path MTU, outer bytes (null: unknown). */
  pmtu: number | null;
}

export interface ReachRow {
  /** The host whose record carried the row (gossip member name; this host's own name). */
  from: string;
  /** Own row, or a live gossip member's. */
  fresh: boolean;
  seq: number;
  peers: Map<string, ReachCell>;
}

/** The row's wire text: `{"v":1,"seq":N,"p":[[name, up 0|1, rttMs|null, pmtu|null], …]}`. */
export function encodeRow(seq: number, peers: ReadonlyMap<string, ReachCell>): string {
  const p: [string, number, number | null, number | null][] = [];
  for (const [name, c] of [...peers].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    p.push([name, c.up ? 1 : 0, c.rttMs === null ? null : Math.round(c.rttMs * 1000) / 1000, c.pmtu]);
  }
  return JSON.stringify({ v: ROW_VERSION, seq, p });
}

/** Why `decodeRow` refused a row (counted: vxmesh_probe_rows_refused_total{reason}). */
export type RowRefusal = 'too_large' | 'not_json' | 'bad_version' | 'bad_field' | 'too_many_peers';

/**
 * Parses a row published by host `from`. Every field is checked; a row that is not exactly the
 * format is refused whole (the reason returned), never partly believed. Entries naming `from`
 * itself are ignored.
 */
export function decodeRow(from: string, data: string, fresh: boolean): ReachRow | RowRefusal {
  if (data.length > MAX_ROW_BYTES) return 'too_large';
  let j: unknown;
  try {
    j = JSON.parse(data);
  } catch {
    return 'not_json';
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j)) return 'bad_field';
  const o = j as { v?: unknown; seq?: unknown; p?: unknown };
  if (o.v !== ROW_VERSION) return 'bad_version';
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 0) return 'bad_field';
  if (!Array.isArray(o.p)) return 'bad_field';
  if (o.p.length > MAX_ROW_PEERS) return 'too_many_peers';
  const peers = new Map<string, ReachCell>();
  for (const e of o.p as unknown[]) {
    if (!Array.isArray(e) || e.length !== 4) return 'bad_field';
    const [name, up, rtt, pmtu] = e as unknown[];
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LEN || !/^[\x21-\x7e]+$/.test(name)) return 'bad_field';
    if (up !== 0 && up !== 1) return 'bad_field';
    if (rtt !== null && (typeof rtt !== 'number' || !Number.isFinite(rtt) || rtt < 0 || rtt > 3_600_000)) return 'bad_field';
    if (pmtu !== null && (typeof pmtu !== 'number' || !Number.isInteger(pmtu) || pmtu < 68 || pmtu > 65535)) return 'bad_field';
    if (peers.has(name)) return 'bad_field';
    if (name === from) continue;
    peers.set(name, { up: up === 1, rttMs: rtt as number | null, pmtu: pmtu as number | null });
  }
  return { from, fresh, seq: o.seq, peers };
}

export interface Partitioning {
  /** Every host named, sorted. */
  hosts: string[];
  /** Connected components, each sorted, largest first (then by first name). */
  components: string[][];
}

/** Connected components of the hosts the rows name (see the file comment for the edge rule). */
export function partition(rows: readonly ReachRow[]): Partitioning {
  const byFrom = new Map<string, ReachRow>();
  for (const r of rows) byFrom.set(r.from, r);
  const names = new Set<string>();
  for (const r of rows) {
    names.add(r.from);
    for (const p of r.peers.keys()) names.add(p);
  }
  const hosts = [...names].sort();
  const index = new Map(hosts.map((h, i) => [h, i]));
  const parent = hosts.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  };
  // candidate pairs: those some row speaks about
  const pairs = new Set<string>();
  for (const r of rows) for (const p of r.peers.keys()) pairs.add(r.from < p ? `${r.from}\u0000${p}` : `${p}\u0000${r.from}`);
  for (const key of pairs) {
    const [x, y] = key.split('\u0000');
    const claims = (fresh: boolean): boolean[] => {
      const out: boolean[] = [];
      const rx = byFrom.get(x);
      const ry = byFrom.get(y);
      const cx = rx && rx.fresh === fresh ? rx.peers.get(y) : undefined;
      const cy = ry && ry.fresh === fresh ? ry.peers.get(x) : undefined;
      if (cx) out.push(cx.up);
      if (cy) out.push(cy.up);
      return out;
    };
    let c = claims(true);
    if (c.length === 0) c = claims(false);
    if (c.length === 0 || c.some((u) => !u)) continue;
    const a = find(index.get(x)!);
    const b = find(index.get(y)!);
    if (a !== b) parent[a] = b;
  }
  const groups = new Map<number, string[]>();
  for (let i = 0; i < hosts.length; i++) {
    const r = find(i);
    let g = groups.get(r);
    if (!g) groups.set(r, (g = []));
    g.push(hosts[i]);
  }
  const components = [...groups.values()].sort((a, b) => b.length - a.length || (a[0] < b[0] ? -1 : 1));
  return { hosts, components };
}
