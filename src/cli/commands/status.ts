/**
 * `vxmesh status [--json] [--api ADDR | --config FILE]`: the running agent's status from GET
 * /v1/status on its control API (default 127.0.0.1:9469, or `api.listen` of the config given):
 * this node, whether it is ready (the failing readiness check named, as GET /readyz names it;
 * gossip join shown as degraded, never as "not ready"), its networks with drops by reason, peers,
 * crypto sessions (age, queued packets), reconciliation of the FDB/neighbour tables, and gossip
 * members with their state (alive, suspect, dead, left) and time of last change. A readable table
 * by default; exit 3 when the agent answers but is not ready.
 * Also the shared API client and table printer of `vxmesh members` and `vxmesh fdb`.
 */

import type { Command } from '../command';
import { out, parseCommandArgs } from '../command';
import { ConfigError, UsageError, VxmeshError } from '../../errors';
import { loadConfigFile } from '../../config/load';
import { probeStatusLines, withMatrix } from '../../probe/cli';

export const DEFAULT_API = '127.0.0.1:9469';

export const API_OPTIONS = {
  json: { type: 'boolean' },
  api: { type: 'string', short: 'a' },
  config: { type: 'string', short: 'c' },
} as const;

/**
 * The API address to use: `--api` as given, else `api.listen` of `--config FILE` (a wildcard
 * listener is reached on the loopback address of its family), else the default. Both given is a
 * usage error; an unreadable or invalid config is a ConfigError (exit 2) naming the file.
 */
export function apiAddressOf(values: { api?: string; config?: string }): string | undefined {
  if (values.config === undefined) return values.api;
  if (values.api !== undefined) throw new UsageError('give --api or --config, not both');
  let listen: { host: string; port: number };
  try {
    listen = loadConfigFile(values.config).api.listen;
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError('', `--config ${values.config}: ${e.message}`);
    throw e;
  }
  const host = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  return host.includes(':') ? `[${host}]:${listen.port}` : `${host}:${listen.port}`;
}

/**
 * Checks `--api HOST:PORT` (usage errors, exit 2): a host (name, IPv4, or [IPv6]) and a port in
 * 1..65535. Returns the address as given.
 */
export function checkApiAddress(api: string | undefined): string {
  const addr = api ?? DEFAULT_API;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:/\s\[\]]+):(\d{1,5})$/.exec(addr);
  if (!m) throw new UsageError(`--api expects HOST:PORT (e.g. 127.0.0.1:9469 or [::1]:9469), got "${addr}"`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new UsageError(`--api: port ${m[2]} is out of range (1-65535)`);
  return addr;
}

/**
 * GET `path` from the agent's API at `api` ("host:port"). Every failure is a VxmeshError
 * ERR_VXMESH_API with a sentence (never a stack): unreachable, an HTTP error (with the agent's own
 * `error` text when it sent one), or an answer that is not a vxmesh agent's JSON.
 */
export async function apiGet(api: string | undefined, path: string): Promise<unknown> {
  const addr = checkApiAddress(api);
  const url = `http://${addr}${path}`;
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    text = await res.text();
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new VxmeshError('ERR_VXMESH_API', `cannot reach the agent at ${addr} (${cause}); is it running, and is --api right?`);
  }
  let body: unknown;
  let json = true;
  try {
    body = JSON.parse(text);
  } catch {
    json = false;
  }
  if (!res.ok) {
    const said = json && body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string' ? (body as { error: string }).error : null;
    if (said) throw new VxmeshError('ERR_VXMESH_API', `the agent at ${addr} answered HTTP ${res.status} for ${path}: ${said}`);
    throw new VxmeshError('ERR_VXMESH_API', `${addr} answered HTTP ${res.status} for ${path}${json ? '' : ' (not JSON)'}: is --api pointing at a vxmesh agent (api.listen), and is it the same version as this CLI?`);
  }
  if (!json || body === null || typeof body !== 'object') {
    throw new VxmeshError('ERR_VXMESH_API', `${addr} answered ${path} with something that is not a vxmesh agent's JSON (content-type ${res.headers.get('content-type') ?? 'none'}): is --api pointing at a vxmesh agent?`);
  }
  return body;
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

export interface JoinJson {
  state: string; seeds: string[]; attempts: number; nextAttemptInMs: number | null; failures?: Record<string, unknown>; lastError: string | null;
}

type DropsJson = Record<string, number>;

export interface StatusJson {
  node: string;
  uptimeSeconds: number;
  ready: { ok: boolean; checks?: Record<string, boolean>; failing?: string[]; degraded?: string[]; gossip?: JoinJson } | boolean;
  reload?: { generation: number; result: string; message: string | null; at: string | null };
  underlay: { address: string; port: number };
  networks: {
    name: string; vni: number; bridge: string; mtu: number; encrypted: boolean; fdbSize: number | null;
    failed?: string | null; oversizedPorts?: { port: string; mtu: number }[];
    tapQueueDrops?: number | null;
    counters?: { rxDrops?: DropsJson; txDrops?: DropsJson } | null;
  }[];
  peers: { peer: string; endpoint?: string; static: boolean; state?: string; lastReceived?: string | null; rxPackets: number; txPackets: number }[];
  counters?: { rxDrops?: DropsJson } | null;
  /** Data-path busy-poll (dataplane/seams.ts BusyPollStats), null when off. */
  busyPoll?: { windowUs: number; spins: number; polls: number; hits: number; callbacks: number; spunUs: number; capped: number; contended?: number } | null;
  extensions: Record<string, unknown>;
}

/** One crypto peer of GET /v1/status (extensions.crypto.peers). */
interface CryptoPeerJson {
  endpoint: { address: string; port: number } | null;
  session: { ageMs: number; sent: number; initiator: boolean } | null;
  handshaking: boolean; queued: number; lastHandshakeAgoMs: number | null;
}

/** "3 unknown_vtep, 1 oversize_frame" from a reason → count map (zeros left out), or null. */
export function dropsText(d: DropsJson | undefined): string | null {
  const parts = Object.entries(d ?? {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).map(([r, n]) => `${n} ${r}`);
  return parts.length ? parts.join(', ') : null;
}

/** "45s", "12m", "3h" from milliseconds. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** The join state in one line: "joining, attempt 3, next in 4s: seed 198.18.0.1:7946 timed out". */
export function joinText(j: JoinJson): string {
  const bits = [j.state];
  if (j.attempts) bits.push(`attempt ${j.attempts}`);
  if (j.nextAttemptInMs !== null) bits.push(`next in ${duration(j.nextAttemptInMs)}`);
  return `${bits.join(', ')}${j.lastError ? `: ${j.lastError}` : ''}${j.seeds.length ? ` (seeds ${j.seeds.join(', ')})` : ''}`;
}

/** Whether a status document says ready, and which checks fail. */
export function readiness(s: Pick<StatusJson, 'ready'>): { ok: boolean; failing: string[] } {
  if (typeof s.ready !== 'object') return { ok: s.ready === true, failing: s.ready ? [] : ['unknown'] };
  const failing = s.ready.failing ?? Object.entries(s.ready.checks ?? {}).filter(([, v]) => v === false).map(([k]) => k);
  return { ok: s.ready.ok === true, failing };
}

export function renderStatus(s: StatusJson): string {
  const lines: string[] = [];
  const r = readiness(s);
  const degraded = typeof s.ready === 'object' ? s.ready.degraded ?? [] : [];
  lines.push(`node ${s.node}  underlay ${s.underlay.address}:${s.underlay.port}  up ${s.uptimeSeconds}s  ${r.ok ? 'ready' : `NOT READY (failing: ${r.failing.join(', ') || 'unknown'})`}${degraded.length ? `  degraded: ${degraded.join(', ')}` : ''}`);
  const join = typeof s.ready === 'object' ? s.ready.gossip : undefined;
  if (join && degraded.includes('gossipJoined')) {
    lines.push(`  gossip join: ${joinText(join)} — the data path forwards to the hosts it knows; /readyz answers 200 with the same degraded check`);
  }
  const dups = (s.extensions?.crypto as { duplicateHostKeys?: { host: string; address: string | null }[] } | undefined)?.duplicateHostKeys ?? [];
  for (const d of dups) {
    const host = d.address !== null && d.address !== d.host ? `${d.host} (${d.address})` : d.host;
    lines.push(`ERROR: host ${host} uses the same host key as this host (cloned image or shared node.keyFile?)`);
  }
  if (s.reload && s.reload.generation > 0) {
    lines.push(`last reload #${s.reload.generation}${s.reload.at ? ` (${ago(s.reload.at)})` : ''}: ${s.reload.result}${s.reload.message ? ` — ${s.reload.message}` : ''}`);
  }
  lines.push('', 'networks');
  lines.push(table(['NAME', 'VNI', 'BRIDGE', 'MTU', 'ENCRYPTED', 'FDB', 'STATE'], s.networks.map((n) => [n.name, n.vni, n.bridge, n.mtu, n.encrypted ? 'yes' : 'no', n.fdbSize ?? '-', n.failed ? `FAILED: ${n.failed}` : 'ok'])));
  for (const n of s.networks) {
    for (const p of n.oversizedPorts ?? []) {
      lines.push(`  warning: ${n.bridge} port ${p.port} has MTU ${p.mtu} > network MTU ${n.mtu}: larger frames from it are dropped by the kernel (ip link set ${p.port} mtu ${n.mtu}, and the same inside the container)`);
    }
  }
  // Drops by reason: only reasons that happened, per network and before any network (unknown VNI, …).
  const drops: string[] = [];
  const global = dropsText(s.counters?.rxDrops);
  if (global) drops.push(`  (any network) rx: ${global}`);
  for (const n of s.networks) {
    const rx = dropsText(n.counters?.rxDrops);
    const tx = dropsText(n.counters?.txDrops);
    const q = n.tapQueueDrops ?? 0;
    const parts = [rx ? `rx: ${rx}` : null, tx ? `tx: ${tx}` : null, q > 0 ? `tap queue: ${q}` : null].filter((x) => x !== null);
    if (parts.length) drops.push(`  ${n.name}  ${parts.join('; ')}`);
  }
  lines.push('', drops.length ? 'drops (since start, by reason)' : 'drops: none');
  lines.push(...drops);
  const bp = s.busyPoll;
  if (bp) {
    lines.push('', `busy-poll ${bp.windowUs} µs: ${bp.spins} windows, ${bp.hits} of ${bp.polls} polls found a packet (${bp.callbacks} batches without a wake-up), ${(bp.spunUs / 1e6).toFixed(3)} s spun, ${bp.capped} cut at the 1 ms turn cap${bp.contended ? `, ${bp.contended} backed off (CPU shared with a busy task)` : ''}`);
  }
  if (s.peers.length) {
    lines.push('', 'peers');
    lines.push(table(['PEER', 'ENDPOINT', 'STATIC', 'STATE', 'LAST RX', 'RX PKTS', 'TX PKTS'], s.peers.map((p) => [
      p.peer, p.endpoint ?? p.peer, p.static ? 'yes' : 'no', p.state ?? '-', p.lastReceived ? ago(p.lastReceived) : 'never', p.rxPackets, p.txPackets,
    ])));
  }
  lines.push(...probeStatusLines(s.extensions?.probe));
  const crypto = s.extensions?.crypto as { peers?: CryptoPeerJson[]; alg?: string } | undefined;
  if (crypto?.peers) {
    const names = new Map(s.peers.map((p) => [p.endpoint ?? p.peer, p.peer]));
    const epOf = (e: CryptoPeerJson['endpoint']) => (e ? (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`) : '-');
    lines.push('', `crypto sessions${crypto.alg ? ` (${crypto.alg})` : ''}`);
    lines.push(crypto.peers.length === 0 ? '(no peers with a key)' : table(['PEER', 'SESSION AGE', 'SENT', 'QUEUED', 'HANDSHAKE', 'LAST HANDSHAKE'], crypto.peers.map((p) => {
      const ep = epOf(p.endpoint);
      return [
        names.get(ep) ?? ep, p.session ? duration(p.session.ageMs) : 'none', p.session ? p.session.sent : 0, p.queued,
        p.handshaking ? 'in progress' : '-', p.lastHandshakeAgoMs === null ? 'never' : `${duration(p.lastHandshakeAgoMs)} ago`,
      ];
    })));
  }
  const obs = s.extensions?.observe as { reconcile?: { runs: number; mismatches: Record<string, Record<string, number>>; lastRunAgoMs: number | null } | null; convergence?: { networks: { network: string; count: number; meanSeconds: number | null }[]; negative: number } | null } | undefined;
  if (obs?.reconcile) {
    const r = obs.reconcile;
    const parts = Object.entries(r.mismatches).flatMap(([tb, kinds]) => Object.entries(kinds).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${tb} ${k}`));
    lines.push('', `reconciliation with gossip: ${r.runs} runs${r.lastRunAgoMs !== null ? `, last ${duration(r.lastRunAgoMs)} ago` : ''}; ${parts.length ? `repaired ${parts.join(', ')}` : 'no mismatch found'}`);
  }
  for (const c of obs?.convergence?.networks ?? []) {
    lines.push(`convergence ${c.network}: ${c.count} endpoints learned, mean ${c.meanSeconds ?? '-'}s from their appearance${obs!.convergence!.negative ? ` (${obs!.convergence!.negative} negative: clocks disagree)` : ''}`);
  }
  const g = s.extensions?.gossip as { members?: MemberJson[]; liveMembers?: number; address?: string; fdbEntries?: number } | undefined;
  if (g?.members) {
    lines.push('', `members (gossip on ${g.address}, ${g.liveMembers} live, ${g.fdbEntries} FDB entries)`);
    lines.push(membersTable(g.members));
  } else {
    lines.push('', 'gossip: off (no gossip section in the config: static peers only)');
  }
  return lines.join('\n');
}

/**
 * A read-only command over one API path: `vxmesh <name> [--json] [--api HOST:PORT]` GETs `path`
 * and prints the raw JSON or `render(json)`. `about` is the help text between synopsis and options.
 */
export function apiViewCommand<T>(spec: { name: string; summary: string; path: string; about: string[]; exitOne: string; exitMore?: string; render(r: T): string; exitCode?(r: T): number }): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    usage: [
      `Usage: vxmesh ${spec.name} [--json] [--api HOST:PORT | --config FILE]`,
      '',
      ...spec.about,
      '',
      'Options:',
      '      --json            print the raw JSON',
      '  -a, --api HOST:PORT   the agent\'s api.listen (default 127.0.0.1:9469)',
      '  -c, --config FILE     read api.listen from the agent\'s config file instead of --api',
      '',
      `Exit codes: 0 success, 1 ${spec.exitOne}, 2 bad arguments${spec.exitMore ? `, ${spec.exitMore}` : ''}.`,
    ].join('\n'),
    async run(args) {
      const { values } = parseCommandArgs(args, API_OPTIONS);
      const r = await apiGet(apiAddressOf(values), spec.path);
      let text: string;
      try {
        text = values.json ? JSON.stringify(r, null, 2) : spec.render(r as T);
      } catch (e) {
        throw new VxmeshError('ERR_VXMESH_API', `the answer to ${spec.path} is not what this CLI expects (${(e as Error).message}): is --api pointing at a vxmesh agent of the same version?`);
      }
      out(text);
      return spec.exitCode ? spec.exitCode(r as T) : 0;
    },
  };
}

export const status: Command = withMatrix(apiViewCommand<StatusJson>({
  name: 'status',
  summary: 'Show the running agent: networks, peers, gossip members',
  path: '/v1/status',
  about: [
    'Reads GET /v1/status from the agent\'s control API and prints this node, whether it is ready',
    '(the same checks as GET /readyz, failing ones named; a gossip join still under way is shown as',
    'degraded with its detail, not as "not ready"), the last reload\'s result, its networks (with FDB',
    'sizes, failed state, bridge ports whose MTU is too large), drops by reason, peers (state up/down,',
    'last packet received), crypto sessions (age, packets queued for a handshake), and the gossip',
    'members with their state (alive, suspect, dead, left) and time of the last change.',
  ],
  exitOne: 'agent unreachable or API error',
  exitMore: '3 the agent answers but is not ready (the failing checks are named; /readyz agrees)',
  render: renderStatus,
  exitCode: (r) => (readiness(r).ok ? 0 : 3),
}));
