/**
 * `vxmesh policy apply FILE | list | get NAME | delete NAME | denials | trace …`: network policies
 * (docs/policy.md), over the agent's root-only control socket (`api.socket`).
 */
import * as fs from 'node:fs';
import type { Command } from '../command';
import { parseCommandArgs } from '../command';
import { UsageError } from '../../errors';
import { AgentRefusedError, DEFAULT_SOCKET, controlRequest } from '../../endpoints/client';
import { socketOf } from './attach';
import { table } from './status';

const USAGE = `Usage: vxmesh policy apply|list|get|delete|denials|trace ...

  vxmesh policy apply FILE [--socket PATH]         apply a policy document (YAML or JSON; - = stdin)
  vxmesh policy list [--json] [--socket PATH]       every policy, its network, version and selector
  vxmesh policy get NAME [--socket PATH]            one policy's document (JSON)
  vxmesh policy delete NAME [--socket PATH]         delete a policy (everywhere, through gossip)
  vxmesh policy denials [--network N] [--json]      the most recent denials (time, source, destination, why)
  vxmesh policy trace --network N --from EP --to EP --port PORT/PROTO [--json]
                                                    the verdict for a flow without sending it, with the
                                                    policies and rules that decided (EP: endpoint name,
                                                    host/name or an IP address; PROTO: tcp, udp, sctp;
                                                    --port icmp for ICMP)

Policies spread to every agent by gossip (the newest version wins) and survive restarts in the
agent's state directory. Semantics: docs/policy.md.

Options:
  -s, --socket PATH   the agent's api.socket (default $VXMESH_SOCKET or ${DEFAULT_SOCKET}); needs root
      --json          print the raw JSON

Exit codes: 0 success, 1 agent unreachable or runtime failure, 2 bad arguments or an invalid document.`;

const OPTIONS = {
  socket: { type: 'string', short: 's' },
  json: { type: 'boolean' },
  network: { type: 'string', short: 'n' },
  from: { type: 'string' },
  to: { type: 'string' },
  port: { type: 'string', short: 'p' },
  help: { type: 'boolean', short: 'h' },
} as const;

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

async function call(socket: string | undefined, method: string, path: string, body?: unknown): Promise<unknown> {
  try {
    return await controlRequest(socketOf(socket), method, path, body);
  } catch (e) {
    if (e instanceof AgentRefusedError && e.badInput) throw new UsageError(e.message);
    throw e;
  }
}

export const policy: Command = {
  name: 'policy',
  summary: 'Network policies: apply, list, get, delete, denials, trace',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, [1, 2]);
    const [sub, arg] = positionals;
    const sock = values.socket;
    const one = (what: string): string => {
      if (!arg) throw new UsageError(`${sub}: missing ${what}`);
      return arg;
    };
    if (sub !== 'apply' && sub !== 'get' && sub !== 'delete' && arg !== undefined) throw new UsageError(`${sub}: unexpected argument ${arg}`);
    switch (sub) {
      case 'apply': {
        const file = one('FILE');
        let text: string;
        try {
          text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
        } catch (e) {
          throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
        const r = (await call(sock, 'POST', '/v1/policies', { document: text })) as { name: string; network: string; version: number; spread: boolean };
        out(values.json ? JSON.stringify(r, null, 2) : `policy ${r.name} applied to network ${r.network} (version ${r.version})${r.spread ? '' : '; not spread by gossip (gossip off or the policy set is too large): apply it on every host'}`);
        return 0;
      }
      case 'list': {
        const r = (await call(sock, 'GET', '/v1/policies')) as { policies: { name: string; network: string; version: number; node: string; time: string; endpoints: unknown; policyTypes: string[] }[] };
        if (values.json) out(JSON.stringify(r, null, 2));
        else out(r.policies.length === 0 ? '(no policies)' : table(['NAME', 'NETWORK', 'TYPES', 'SELECTS', 'VERSION', 'BY', 'AT'],
          r.policies.map((p) => [p.name, p.network, p.policyTypes.join(','), JSON.stringify(p.endpoints), p.version, p.node, p.time])));
        return 0;
      }
      case 'get': {
        const r = await call(sock, 'GET', `/v1/policy?name=${encodeURIComponent(one('NAME'))}`);
        out(JSON.stringify(r, null, 2));
        return 0;
      }
      case 'delete': {
        const name = one('NAME');
        await call(sock, 'DELETE', `/v1/policy?name=${encodeURIComponent(name)}`);
        out(`policy ${name} deleted`);
        return 0;
      }
      case 'denials': {
        const q = values.network ? `?network=${encodeURIComponent(values.network)}` : '';
        const r = (await call(sock, 'GET', `/v1/policy/denials${q}`)) as { denials: { network: string; time: string; reason: string; audit: boolean; src: string; dst: string; srcEndpoint: string | null; dstEndpoint: string | null; protocol: number; port: number; fromHost: string | null }[] };
        if (values.json) out(JSON.stringify(r, null, 2));
        else out(r.denials.length === 0 ? '(no denials)' : table(['TIME', 'NETWORK', 'FROM', 'TO', 'PROTO', 'PORT', 'DENIED BY', 'VIA'],
          r.denials.map((d) => [d.time, d.network, d.srcEndpoint ? `${d.srcEndpoint} (${d.src})` : d.src, d.dstEndpoint ? `${d.dstEndpoint} (${d.dst})` : d.dst,
            ({ 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' } as Record<number, string>)[d.protocol] ?? String(d.protocol), d.port || '-',
            d.reason + (d.audit ? ' (audit: passed)' : ''), d.fromHost ?? 'local'])));
        return 0;
      }
      case 'trace': {
        if (!values.network || !values.from || !values.to || !values.port) throw new UsageError('trace: --network, --from, --to and --port are required');
        const m = /^(?:(\d{1,5})\/(tcp|udp|sctp)|icmp)$/i.exec(values.port);
        if (!m) throw new UsageError(`--port: expected PORT/PROTO (e.g. 5432/tcp) or icmp, got ${JSON.stringify(values.port)}`);
        const protocol = m[1] ? m[2].toUpperCase() : 'ICMP';
        const port = m[1] ? Number(m[1]) : 0;
        const q = new URLSearchParams({ network: values.network, from: values.from, to: values.to, port: String(port), protocol });
        const r = (await call(sock, 'GET', `/v1/policy/trace?${q}`)) as { lines: string[]; allowed: boolean };
        out(values.json ? JSON.stringify(r, null, 2) : r.lines.join('\n'));
        return 0;
      }
      default:
        throw new UsageError(sub ? `unknown subcommand "${sub}" (apply, list, get, delete, denials, trace)` : 'missing subcommand (apply, list, get, delete, denials, trace)');
    }
  },
};
