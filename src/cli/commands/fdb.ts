/** `vxmesh fdb [--json] [--api ADDR]`: forwarding database per network (GET /v1/fdb) as a table. */

import type { Command } from '../command';
import { apiViewCommand, table } from './status';

interface FdbJson {
  networks: { network: string; vni: number; entries: { mac: string; kind: string; peer: string | null; idleMs: number; ips: string[] }[] }[];
}

export function renderFdb(r: FdbJson): string {
  const rows: (string | number)[][] = [];
  for (const n of r.networks) {
    for (const e of n.entries) rows.push([n.network, n.vni, e.mac, e.kind, e.peer ?? '(local)', e.ips.join(',') || '-', e.kind === 'static' ? '-' : `${Math.round(e.idleMs / 1000)}s`]);
  }
  if (rows.length === 0) return '(no entries)';
  return table(['NETWORK', 'VNI', 'MAC', 'KIND', 'HOST', 'IPS', 'IDLE'], rows);
}

export const fdb: Command = apiViewCommand<FdbJson>({
  name: 'fdb',
  summary: 'Show the forwarding database: which host each MAC lives behind',
  path: '/v1/fdb',
  about: [
    'Reads GET /v1/fdb from the agent: per network, every MAC with its kind (local = learned on',
    'this host\'s bridge, remote = learned from VXLAN traffic, static = programmed from gossip),',
    'the host (underlay endpoint) it lives behind, its IP addresses and idle time. Served from the',
    'data path, with or without gossip.',
  ],
  exitOne: 'agent unreachable or API error',
  render: renderFdb,
});
