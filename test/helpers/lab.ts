/**
 * Test-side helpers over `src/lab/netns.ts`: skip reasons, a lab that is destroyed in `t.after`,
 * and the standard topology of the data-plane tests (N hosts, one bridge each, M containers per
 * host on one overlay subnet).
 */

import type { TestContext } from 'node:test';
import { haveTool, Lab, LabContainer, LabHost, LabOptions, labSkipReason } from '../../src/lab/netns';

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
