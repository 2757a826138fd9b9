/**
 * CLI views of the probes: `vxmesh status --matrix` (GET /v1/reachability: host × host, the
 * partition count and components) and the data-path lines of plain `vxmesh status` (each peer's
 * probe state, RTT and path MTU, from `extensions.probe`). The status command keeps its own
 * options; `withMatrix` only adds `--matrix`.
 */
import type { Command } from '../cli/command';
import { out, parseCommandArgs } from '../cli/command';
import { API_OPTIONS, apiAddressOf, apiGet, table } from '../cli/commands/status';
import { VxmeshError } from '../errors';
import type { NamedPeerView, ReachabilityJson } from './extension';

/** One cell: `up 0.4ms` / `DOWN` / `-` (no claim) / `·` (the host itself). */
function cell(c: { up: boolean; rttMs: number | null } | undefined, self: boolean): string {
  if (self) return '·';
  if (!c) return '-';
  if (!c.up) return 'DOWN';
  return c.rttMs === null ? 'up' : `up ${c.rttMs < 10 ? c.rttMs.toFixed(2) : c.rttMs.toFixed(0)}ms`;
}

/** The matrix as text: rows = the reporting host (its own probes), columns = the host probed. */
export function renderMatrix(r: ReachabilityJson): string {
  const hosts = r.hosts;
  const byFrom = new Map(r.rows.map((row) => [row.from, row]));
  const lines: string[] = [];
  lines.push(`reachability matrix seen from ${r.node} (row: the host that probed, column: the host probed; data path, not gossip)`);
  lines.push(table(['FROM \\ TO', ...hosts], hosts.map((from) => {
    const row = byFrom.get(from);
    const cells = new Map(row?.peers.map((p) => [p.peer, p]) ?? []);
    const label = row === undefined ? `${from} (no row)` : row.fresh ? from : `${from} (stale)`;
    return [label, ...hosts.map((to) => (row === undefined ? (to === from ? '·' : '?') : cell(cells.get(to), to === from)))];
  })));
  lines.push('');
  lines.push(r.partitions <= 1 ? `partitions: ${r.partitions} (every host reaches every other)` : `partitions: ${r.partitions} — SPLIT: ${r.components.map((c) => `{${c.join(', ')}}`).join(' | ')}`);
  const pm = r.peers.filter((p) => p.pathMtu !== null);
  if (pm.length) lines.push(`path MTU from ${r.node}: ${pm.map((p) => `${p.peer} ${p.pathMtu}`).join(', ')}`);
  return lines.join('\n');
}

/** Lines for plain `vxmesh status`: each peer's data-path probe verdict, RTT and path MTU. */
export function probeStatusLines(ext: unknown): string[] {
  const e = ext as { peers?: NamedPeerView[]; partitions?: number } | undefined;
  if (!e?.peers) return [];
  const lines = ['', `data path probes (partitions: ${e.partitions ?? '-'}; vxmesh status --matrix for every host)`];
  if (e.peers.length === 0) return [...lines, '(no peers)'];
  lines.push(table(['PEER', 'ENDPOINT', 'PROBE', 'RTT', 'PATH MTU', 'INNER MTU', 'SEARCH', 'LAST ANSWER'], e.peers.map((p) => [
    p.peer, p.endpoint, p.state, p.rttMs === null ? '-' : `${p.rttMs}ms`, p.pathMtu ?? '-', p.innerMtu ?? '-', p.phase,
    p.lastReplyAgoSeconds === null ? 'never' : `${p.lastReplyAgoSeconds}s ago`,
  ])));
  return lines;
}

/** `status` with `--matrix`: prints the reachability matrix instead of the status. */
export function withMatrix(cmd: Command): Command {
  return {
    ...cmd,
    usage: cmd.usage.replace(/^Usage: vxmesh status \[--json\]/, 'Usage: vxmesh status [--matrix] [--json]').replace(
      /\nOptions:\n/, '\nOptions:\n      --matrix          the reachability matrix (host × host, GET /v1/reachability) and the partition count\n'),
    async run(args) {
      if (!args.includes('--matrix')) return cmd.run(args);
      const { values } = parseCommandArgs(args, { ...API_OPTIONS, matrix: { type: 'boolean' } } as const);
      const r = await apiGet(apiAddressOf(values), '/v1/reachability');
      let text: string;
      try {
        text = values.json ? JSON.stringify(r, null, 2) : renderMatrix(r as ReachabilityJson);
      } catch (e) {
        throw new VxmeshError('ERR_VXMESH_API', `the answer to /v1/reachability is not what this CLI expects (${(e as Error).message}): is --api pointing at a vxmesh agent of the same version?`);
      }
      out(text);
      return (r as ReachabilityJson).partitions > 1 ? 3 : 0;
    },
  };
}
