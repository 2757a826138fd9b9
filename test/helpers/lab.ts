/**
 * Test-side helpers over `lab/netns.ts`: skip reasons, a lab that is destroyed in `t.after`,
 * and the standard topology of the data-plane tests (N hosts, one bridge each, M containers per
 * host on one overlay subnet).
 */

import type { TestContext } from 'node:test';
import { haveTool, Lab, LabContainer, LabHost, LabOptions, labSkipReason, PingResult } from '../../lab/netns';
import { agentConfig, AgentConfigOptions, LabAgent, LabNetwork, startAgent } from '../../lab/vxmesh';

/** Reason to skip a netns test (not root, no iproute2, missing tools), or undefined to run it. */
export function netnsSkip(...tools: string[]): string | undefined {
  const r = labSkipReason();
  if (r) return r;
  for (const t of tools) if (!haveTool(t)) return `${t} is not installed`;
  return undefined;
}

/** Creates a lab that is destroyed when the test (or suite) `t` ends, pass or fail. */
export async function labFor(t: TestContext | { after(fn: () => Promise<void> | void): void }, opts: LabOptions): Promise<Lab> {
  const lab = await Lab.create(opts);
  t.after(() => lab.destroy());
  return lab;
}

export interface Topology {
  lab: Lab;
  hosts: LabHost[];
  /** containers[h][c]: container c (0-based) of host h (0-based). */
  containers: LabContainer[][];
  all: LabContainer[];
}

/**
 * On every host: bridge `bridge` (default br0) and `perHost` containers named
 * `<namePrefix>h<i>c<j>` with overlay addresses `<subnet>.<10*i + j>/24` (subnet default 198.19.0).
 */
export async function buildTopology(
  lab: Lab,
  opts: { perHost?: number; bridge?: string; subnet?: string; namePrefix?: string; createBridge?: boolean } = {},
): Promise<Topology> {
  const perHost = opts.perHost ?? 2;
  const bridge = opts.bridge ?? 'br0';
  const subnet = opts.subnet ?? '198.19.0';
  const containers: LabContainer[][] = [];
  for (const h of lab.hosts) {
    if (opts.createBridge !== false) await lab.addBridge(h, bridge);
    const row: LabContainer[] = [];
    for (let j = 1; j <= perHost; j++) {
      row.push(
        await lab.addContainer(h, {
          bridge,
          name: `${opts.namePrefix ?? ''}h${h.index}c${j}`,
          address: `${subnet}.${10 * h.index + j}/24`,
        }),
      );
    }
    containers.push(row);
  }
  return { lab, hosts: lab.hosts, containers, all: containers.flat() };
}

/** Every unordered pair of distinct items (15 pairs for 6 containers). */
export function pairs<T>(xs: T[]): Array<[T, T]> {
  const out: Array<[T, T]> = [];
  for (let i = 0; i < xs.length; i++) for (let j = i + 1; j < xs.length; j++) out.push([xs[i], xs[j]]);
  return out;
}

/** Underlay addresses of every host but `h`. */
export function otherHosts(lab: Lab, h: LabHost): string[] {
  return lab.hosts.filter((x) => x !== h).map((x) => x.address);
}

/** Starts one vxmesh agent per host (static peers: every other host), all networks given; stopped by lab.destroy(). */
export async function startAgents(lab: Lab, networks: LabNetwork[], opts: Partial<AgentConfigOptions> = {}, hosts: LabHost[] = lab.hosts): Promise<LabAgent[]> {
  const agents: LabAgent[] = [];
  for (const h of hosts) agents.push(await startAgent(lab, h, agentConfig(lab, h, { ...opts, networks })));
  return agents;
}

/** Non-zero drop counters of an agent, as `rx:<reason>` / `tx:<reason>` (global and per network summed). */
export async function dropsByReason(agent: LabAgent): Promise<Record<string, number>> {
  const s = await agent.status();
  const out: Record<string, number> = {};
  const add = (r: Record<string, number> | undefined, prefix: string) => {
    for (const [k, v] of Object.entries(r ?? {})) if (v) out[`${prefix}${k}`] = (out[`${prefix}${k}`] ?? 0) + v;
  };
  add(s.counters?.rxDrops, 'rx:');
  for (const n of s.networks) {
    add(n.counters?.rxDrops, 'rx:');
    add(n.counters?.txDrops, 'tx:');
  }
  return out;
}

/**
 * Pings `to` from `from` (`count` echoes, default 3) and asserts that it is reachable: at least one
 * reply. Partial loss is reported as a test diagnostic, not a failure (the host may be loaded by
 * parallel test files; loss is not what these tests are about — reachability and isolation are).
 */
export async function assertReaches(
  t: { diagnostic(msg: string): void },
  lab: Lab,
  from: LabContainer,
  to: { address: string; name?: string },
  opts: { count?: number; size?: number; dontFragment?: boolean } = {},
): Promise<PingResult> {
  const count = opts.count ?? 3;
  const p = await lab.ping(from, to.address, { count, intervalS: 0.05, size: opts.size, dontFragment: opts.dontFragment });
  if (p.received === 0) throw new Error(`${from.name} -> ${to.name ?? to.address}: no reply\n${p.output}`);
  if (p.received < count) t.diagnostic(`${from.name} -> ${to.name ?? to.address}: ${p.received}/${count} replies`);
  return p;
}

/** Pings `to` from `from` `count` times with `marker` (≤ 16 bytes) as the payload pattern; returns replies received. */
export async function pingWithMarker(lab: Lab, from: LabContainer, to: LabContainer, marker: string, count = 5): Promise<number> {
  const r = await lab.exec(from.ns, 'ping', ['-n', '-q', '-c', String(count), '-i', '0.1', '-W', '2', '-p', Buffer.from(marker).toString('hex'), to.address],
    { check: false, timeoutMs: 20_000 });
  const m = /(\d+) received/.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}
