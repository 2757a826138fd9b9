/**
 * `vxmesh status [--json] [--api ADDR]`: the running agent's status from GET /v1/status on its
 * control API (default 127.0.0.1:9469): this node, its networks, peers, and gossip members with
 * their state (alive, suspect, dead, left) and time of last change. A readable table by default.
 * Also the shared API client and table printer of `vxmesh members` and `vxmesh fdb`.
 */

import type { Command } from '../command';
import { out, parseCommandArgs } from '../command';
import { UsageError, VxmeshError } from '../../errors';

export const DEFAULT_API = '127.0.0.1:9469';

export const API_OPTIONS = {
  json: { type: 'boolean' },
  api: { type: 'string', short: 'a' },
} as const;

/** GET `path` from the agent's API at `api` ("host:port"); throws VxmeshError ERR_VXMESH_API on failure. */
export async function apiGet(api: string | undefined, path: string): Promise<unknown> {
  const addr = api ?? DEFAULT_API;
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d{1,5}$/.test(addr)) throw new UsageError(`--api expects host:port, got "${addr}"`);
  const url = `http://${addr}${path}`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new VxmeshError('ERR_VXMESH_API', `cannot reach the agent at ${addr} (${cause}); is it running, and is --api right?`);
  }
  if (!res.ok) throw new VxmeshError('ERR_VXMESH_API', `${url}: HTTP ${res.status}${res.status === 404 ? ' (gossip not enabled on this agent?)' : ''}`);
  return res.json();
}

/** Left-aligned columns, two spaces apart. */
export function table(header: string[], rows: (string | number)[][]): string {
  const all = [header, ...rows.map((r) => r.map(String))];
  const w = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join('  ')).join('\n');
}

/** "12s ago", "3m ago", "2h ago" from an ISO time. */
export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export interface MemberJson {
  name: string; state: string; incarnation: number; since: string; address: string; underlay: string;
  vnis: number[]; endpoints: number; self: boolean;
}

export function membersTable(members: MemberJson[]): string {
  if (members.length === 0) return '(no members)';
  return table(
    ['NAME', 'STATE', 'SINCE', 'GOSSIP', 'UNDERLAY', 'VNIS', 'ENDPOINTS'],
    members.map((m) => [m.self ? `${m.name} (self)` : m.name, m.state, ago(m.since), m.address, m.underlay, m.vnis.join(',') || '-', m.endpoints]),
  );
}

interface StatusJson {
  node: string;
  uptimeSeconds: number;
  ready: { ok: boolean } | boolean;
  underlay: { address: string; port: number };
  networks: { name: string; vni: number; bridge: string; mtu: number; encrypted: boolean; fdbSize: number | null }[];
  peers: { peer: string; static: boolean; rxPackets: number; txPackets: number }[];
  extensions: Record<string, unknown>;
}

export function renderStatus(s: StatusJson): string {
  const lines: string[] = [];
  const ready = typeof s.ready === 'object' ? s.ready.ok : s.ready;
  lines.push(`node ${s.node}  underlay ${s.underlay.address}:${s.underlay.port}  up ${s.uptimeSeconds}s  ${ready ? 'ready' : 'NOT READY'}`);
  const dups = (s.extensions?.crypto as { duplicateHostKeys?: { host: string; address: string | null }[] } | undefined)?.duplicateHostKeys ?? [];
  for (const d of dups) {
    const host = d.address !== null && d.address !== d.host ? `${d.host} (${d.address})` : d.host;
    lines.push(`ERROR: host ${host} uses the same host key as this host (cloned image or shared node.keyFile?)`);
  }
  lines.push('', 'networks');
  lines.push(table(['NAME', 'VNI', 'BRIDGE', 'MTU', 'ENCRYPTED', 'FDB'], s.networks.map((n) => [n.name, n.vni, n.bridge, n.mtu, n.encrypted ? 'yes' : 'no', n.fdbSize ?? '-'])));
  if (s.peers.length) {
    lines.push('', 'peers');
    lines.push(table(['PEER', 'STATIC', 'RX PKTS', 'TX PKTS'], s.peers.map((p) => [p.peer, p.static ? 'yes' : 'no', p.rxPackets, p.txPackets])));
  }
  const g = s.extensions?.gossip as { members?: MemberJson[]; liveMembers?: number; address?: string; fdbEntries?: number } | undefined;
  if (g?.members) {
    lines.push('', `members (gossip on ${g.address}, ${g.liveMembers} live, ${g.fdbEntries} FDB entries)`);
    lines.push(membersTable(g.members));
  } else {
    lines.push('', 'gossip: off');
  }
  return lines.join('\n');
}

/**
 * A read-only command over one API path: `vxmesh <name> [--json] [--api HOST:PORT]` GETs `path`
 * and prints the raw JSON or `render(json)`. `about` is the help text between synopsis and options.
 */
export function apiViewCommand<T>(spec: { name: string; summary: string; path: string; about: string[]; exitOne: string; render(r: T): string }): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    usage: [
      `Usage: vxmesh ${spec.name} [--json] [--api HOST:PORT]`,
      '',
      ...spec.about,
      '',
      'Options:',
      '      --json            print the raw JSON',
      '  -a, --api HOST:PORT   the agent\'s api.listen (default 127.0.0.1:9469)',
      '',
      `Exit codes: 0 success, 1 ${spec.exitOne}, 2 bad arguments.`,
    ].join('\n'),
    async run(args) {
      const { values } = parseCommandArgs(args, API_OPTIONS);
      const r = await apiGet(values.api, spec.path);
      out(values.json ? JSON.stringify(r, null, 2) : spec.render(r as T));
      return 0;
    },
  };
}

export const status: Command = apiViewCommand<StatusJson>({
  name: 'status',
  summary: 'Show the running agent: networks, peers, gossip members',
  path: '/v1/status',
  about: [
    'Reads GET /v1/status from the agent\'s control API and prints this node, its networks',
    '(with FDB sizes), peers, and the gossip members with their state (alive, suspect, dead,',
    'left) and time of the last change.',
  ],
  exitOne: 'agent unreachable or API error',
  render: renderStatus,
});
