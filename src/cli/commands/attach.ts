/**
 * `vxmesh attach --network NAME --netns NETNS [--ifname eth0] [--ip ADDR]... [--mac MAC]
 * [--name NAME] [--label KEY=VALUE]... [--host] [--json] [--socket PATH]`: asks the agent over
 * its control socket to attach an endpoint (src/endpoints/manager.ts) and prints it. Also the
 * shared socket client plumbing of `vxmesh detach` and `vxmesh endpoints`.
 */
import type { Command } from '../command';
import { out, parseCommandArgs } from '../command';
import { UsageError, VxmeshError } from '../../errors';
import { AgentRefusedError, controlRequest, DEFAULT_SOCKET } from '../../endpoints/client';

export function socketOf(v: string | undefined): string {
  return v ?? process.env.VXMESH_SOCKET ?? DEFAULT_SOCKET;
}

/** Calls the agent; its 400 answers become UsageError (exit 2), the rest VxmeshError (exit 1). */
export async function call(socket: string, method: string, path: string, body?: unknown): Promise<unknown> {
  try {
    return await controlRequest(socket, method, path, body);
  } catch (e) {
    if (e instanceof AgentRefusedError && e.badInput) throw new UsageError(e.message);
    if (e instanceof VxmeshError) throw e;
    throw new VxmeshError('ERR_VXMESH_API', (e as Error).message);
  }
}

export interface EndpointJson {
  network: string; name: string; ifname: string; mac: string; ips: string[]; host: string;
}

export function endpointLine(e: EndpointJson): string {
  return `${e.network}/${e.name}: ${e.ifname} ${e.mac} ${e.ips.join(' ') || '(no address)'} on host ${e.host}`;
}

const SOCKET_HELP = '      --socket PATH       the agent\'s api.socket (default $VXMESH_SOCKET or /run/vxmesh/vxmesh.sock)';

export const attach: Command = {
  name: 'attach',
  summary: 'Attach a network namespace (a container) to a network',
  usage: [
    'Usage: vxmesh attach --network NAME --netns NETNS [--ifname eth0] [--ip ADDR]... [--mac MAC]',
    '                     [--name NAME] [--label KEY=VALUE]... [--host] [--json] [--socket PATH]',
    '',
    'Creates a veth pair (a macvlan on macvlan networks), moves one end into NETNS (a name under',
    '/run/netns or a path) as IFNAME with MAC, the network MTU and its addresses (from IPAM unless',
    '--ip), adds a default route via the gateway, brings it up and enslaves the host end to the',
    'network\'s bridge. Nothing is left half-made on failure. --host gives the host itself an',
    'address on the network instead.',
    '',
    'Options:',
    '  -n, --network NAME      the vxmesh network (required)',
    '      --netns NETNS       namespace name or path (required unless --host)',
    '  -i, --ifname NAME       interface name inside NETNS (default eth0)',
    '      --ip ADDR           address to use instead of IPAM (once per family; ADDR/PREFIX without a subnet)',
    '      --mac MAC           MAC address (default: random, locally administered)',
    '      --name NAME         endpoint name (default: the namespace name)',
    '  -l, --label KEY=VALUE   label (repeatable)',
    '      --host              a host endpoint',
    '      --json              print {network, name, ifname, mac, ips, host}',
    SOCKET_HELP,
    '',
    'Exit codes: 0 attached, 1 agent unreachable or runtime failure (e.g. subnet exhausted),',
    '2 bad arguments (unknown network, missing netns, address outside the subnet or taken,',
    'interface name in use).',
  ].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, {
      network: { type: 'string', short: 'n' },
      netns: { type: 'string' },
      ifname: { type: 'string', short: 'i' },
      ip: { type: 'string', multiple: true },
      mac: { type: 'string' },
      name: { type: 'string' },
      label: { type: 'string', short: 'l', multiple: true },
      host: { type: 'boolean' },
      json: { type: 'boolean' },
      socket: { type: 'string' },
    });
    if (!values.network) throw new UsageError('--network is required');
    if (!values.netns && !values.host) throw new UsageError('--netns is required (or --host for a host endpoint)');
    if (values.netns && values.host) throw new UsageError('--netns and --host exclude each other');
    const labels: Record<string, string> = {};
    for (const l of (values.label as unknown as string[] | undefined) ?? []) {
      const i = l.indexOf('=');
      if (i <= 0) throw new UsageError(`--label expects KEY=VALUE, got "${l}"`);
      labels[l.slice(0, i)] = l.slice(i + 1);
    }
    const body = {
      network: values.network, netns: values.netns, ifname: values.ifname, ip: values.ip as unknown as string[] | undefined,
      mac: values.mac, name: values.name, labels, host: values.host === true,
    };
    const e = (await call(socketOf(values.socket), 'POST', '/v1/attach', body)) as EndpointJson;
    if (values.json) out(JSON.stringify({ network: e.network, name: e.name, ifname: e.ifname, mac: e.mac, ips: e.ips, host: e.host }));
    else out(`attached ${endpointLine(e)}`);
    return 0;
  },
};
