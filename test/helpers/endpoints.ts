/**
 * Helpers of the endpoint netns tests: empty container namespaces owned by the lab (removed by
 * `lab.destroy()`), agents with IPAM/endpoint config (stateDir and api.socket inside the lab's
 * scratch directory), and the `vxmesh attach/detach/endpoints` CLI run inside a host namespace.
 */
import * as path from 'node:path';
import type { Lab, LabHost } from '../../lab/netns';
import { REPO_ROOT } from '../../lab/netns';
import { agentConfig, startAgent, type LabAgent } from '../../lab/vxmesh';

export const BIN = path.join(REPO_ROOT, 'bin', 'vxmesh');

/** An empty namespace `<prefix>-<short>` with lo up, deleted with the lab. */
export async function addEmptyNamespace(lab: Lab, short: string): Promise<string> {
  const ns = `${lab.prefix}-${short}`;
  await lab.exec(null, 'ip', ['netns', 'add', ns]);
  (lab as unknown as { namespaces: string[] }).namespaces.push(ns);
  await lab.exec(ns, 'ip', ['link', 'set', 'lo', 'up']);
  return ns;
}

export function socketOf(lab: Lab, h: LabHost): string {
  return path.join(lab.dir, `${h.name}.sock`);
}

export function stateDirOf(lab: Lab, h: LabHost): string {
  return path.join(lab.dir, `state-${h.name}`);
}

export interface EpNet {
  name: string; vni?: number; bridge?: string; subnet?: string | string[]; gateway?: string | string[]; hostBlock?: string; range?: string | string[];
  mode?: string; parent?: string; hostEndpoint?: boolean; mtu?: number;
}

/** Agent config with endpoint fields; gossip (profile test) when `keyFile` is given. */
export function endpointAgentConfig(lab: Lab, h: LabHost, nets: EpNet[], opts: { keyFile?: string; peers?: boolean } = {}): Record<string, unknown> {
  const overlay = nets.filter((n) => (n.mode ?? 'overlay') === 'overlay').map((n) => ({ name: n.name, vni: n.vni ?? 42, bridge: n.bridge ?? 'br0' }));
  const c = agentConfig(lab, h, { networks: overlay, extra: opts.keyFile ? { gossip: { seeds: [lab.hosts[0].address], keyFile: opts.keyFile, profile: 'test' } } : {} });
  c.networks = nets.map((n) => ({ ...n }));
  c.stateDir = stateDirOf(lab, h);
  c.api = { listen: '127.0.0.1:9469', socket: socketOf(lab, h) };
  if (opts.keyFile || opts.peers === false) delete c.peers;
  return c;
}

export async function startEndpointAgent(lab: Lab, h: LabHost, config: Record<string, unknown>): Promise<LabAgent> {
  return startAgent(lab, h, config, { readyTimeoutMs: 30_000 });
}

export interface CliResult { code: number; stdout: string; stderr: string; json?: unknown }

/** Runs `vxmesh <args>` in host `h`'s namespace with its socket. */
export async function vx(lab: Lab, h: LabHost, args: string[]): Promise<CliResult> {
  const r = await lab.exec(h.ns, process.execPath, [BIN, ...args], { check: false, timeoutMs: 60_000, env: { ...process.env, VXMESH_SOCKET: socketOf(lab, h) } });
  let json: unknown;
  if (args.includes('--json') && r.code === 0) json = JSON.parse(r.stdout);
  return { ...r, json };
}

export interface AttachedJson { network: string; name: string; ifname: string; mac: string; ips: string[]; host: string }

export async function attachOk(lab: Lab, h: LabHost, args: string[]): Promise<AttachedJson> {
  const r = await vx(lab, h, ['attach', ...args, '--json']);
  if (r.code !== 0) throw new Error(`attach ${args.join(' ')} on ${h.name} failed (${r.code}): ${r.stderr}`);
  return r.json as AttachedJson;
}

/** Interfaces of namespace `ns` (null: the host's) as `ip -j link` names. */
export async function links(lab: Lab, ns: string): Promise<string[]> {
  const r = await lab.exec(ns, 'ip', ['-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname);
}
