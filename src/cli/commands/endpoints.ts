/** `vxmesh endpoints [--json] [--socket PATH]`: every endpoint in the cluster with host, network, name, addresses, MAC, labels (and anti-spoofing drops for local ones). */
import type { Command } from '../command';
import { out, parseCommandArgs } from '../command';
import { table } from './status';
import { call, socketOf } from './attach';

interface Listed {
  host: string; network: string; name: string; ifname: string; mac: string; ips: string[]; labels: Record<string, string>; local: boolean; drops?: number;
}

export const endpointsCmd: Command = {
  name: 'endpoints',
  summary: 'List every endpoint in the cluster',
  usage: [
    'Usage: vxmesh endpoints [--json] [--socket PATH]',
    '',
    'Lists the endpoints of this host and those other hosts announce through gossip: host,',
    'network, name, interface, addresses, MAC, labels; for this host\'s endpoints also the frames',
    'dropped by anti-spoofing (forged source MAC or address).',
    '',
    'Options:',
    '      --json              print {endpoints: [...]}',
    '      --socket PATH       the agent\'s api.socket (default $VXMESH_SOCKET or /run/vxmesh/vxmesh.sock)',
    '',
    'Exit codes: 0 success, 1 agent unreachable, 2 bad arguments.',
  ].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, { json: { type: 'boolean' }, socket: { type: 'string' } });
    const r = (await call(socketOf(values.socket), 'GET', '/v1/endpoints')) as { endpoints: Listed[] };
    if (values.json) {
      out(JSON.stringify(r, null, 2));
      return 0;
    }
    if (r.endpoints.length === 0) {
      out('(no endpoints)');
      return 0;
    }
    out(table(['HOST', 'NETWORK', 'NAME', 'IFNAME', 'ADDRESSES', 'MAC', 'LABELS', 'SPOOF DROPS'], r.endpoints.map((e) => [
      e.host, e.network, e.name, e.ifname, e.ips.join(',') || '-', e.mac,
      Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-', e.local ? String(e.drops ?? 0) : '-',
    ])));
    return 0;
  },
};
