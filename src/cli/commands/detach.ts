/** `vxmesh detach --network NAME --netns NETNS [--ifname eth0] [--host] [--json] [--socket PATH]`: undoes an attach and releases its addresses. */
import type { Command } from '../command';
import { out, parseCommandArgs } from '../command';
import { UsageError } from '../../errors';
import { call, endpointLine, EndpointJson, socketOf } from './attach';

export const detach: Command = {
  name: 'detach',
  summary: 'Detach an endpoint and release its addresses',
  usage: [
    'Usage: vxmesh detach --network NAME --netns NETNS [--ifname eth0] [--host] [--json] [--socket PATH]',
    '',
    'Undoes exactly what `vxmesh attach` made (the veth pair or macvlan, its anti-spoofing rules)',
    'and releases its addresses. A namespace that is already gone is fine.',
    '',
    'Options:',
    '  -n, --network NAME      the vxmesh network (required)',
    '      --netns NETNS       namespace name or path (required unless --host)',
    '  -i, --ifname NAME       interface name inside NETNS (default eth0)',
    '      --host              the host endpoint of the network',
    '      --json              print the detached endpoint as JSON',
    '      --socket PATH       the agent\'s api.socket (default $VXMESH_SOCKET or /run/vxmesh/vxmesh.sock)',
    '',
    'Exit codes: 0 detached, 1 agent unreachable or runtime failure, 2 bad arguments (unknown',
    'network, no such endpoint).',
  ].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, {
      network: { type: 'string', short: 'n' },
      netns: { type: 'string' },
      ifname: { type: 'string', short: 'i' },
      host: { type: 'boolean' },
      json: { type: 'boolean' },
      socket: { type: 'string' },
    });
    if (!values.network) throw new UsageError('--network is required');
    if (!values.netns && !values.host) throw new UsageError('--netns is required (or --host)');
    const e = (await call(socketOf(values.socket), 'POST', '/v1/detach', { network: values.network, netns: values.netns, ifname: values.ifname, host: values.host === true })) as EndpointJson;
    out(values.json ? JSON.stringify({ network: e.network, name: e.name, ifname: e.ifname, mac: e.mac, ips: e.ips, host: e.host }) : `detached ${endpointLine(e)}`);
    return 0;
  },
};
