/**
 * `vxmesh policy trace`: the verdict for a flow between two endpoints without sending it, with the
 * policies and rules that decided (semantics.ts), as data and as text.
 */
import { formatIp16 as ipText } from '../ipam/cidr';
import { evaluate, type NetworkPolicies, type PolicyEndpoint, type SideVerdict, type Verdict } from './semantics';

export interface TraceRequest {
  from: PolicyEndpoint | { ip: Uint8Array };
  to: PolicyEndpoint | { ip: Uint8Array };
  protocol: number;
  port: number;
}

export interface TraceResult {
  allowed: boolean;
  from: string;
  to: string;
  protocol: string;
  port: number;
  egress: SideVerdict;
  ingress: SideVerdict;
  lines: string[];
}

const PROTO_NAMES: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };

function isEndpoint(x: TraceRequest['from']): x is PolicyEndpoint {
  return 'name' in x;
}

export function trace(np: NetworkPolicies, req: TraceRequest): TraceResult {
  const fromEp = isEndpoint(req.from) ? req.from : null;
  const toEp = isEndpoint(req.to) ? req.to : null;
  const fromIp = fromEp ? fromEp.ips[0] ?? new Uint8Array(16) : (req.from as { ip: Uint8Array }).ip;
  const toIp = toEp ? toEp.ips[0] ?? new Uint8Array(16) : (req.to as { ip: Uint8Array }).ip;
  const v: Verdict = evaluate(np, { src: { ip: fromIp, endpoint: fromEp }, dst: { ip: toIp, endpoint: toEp }, protocol: req.protocol, port: req.port });
  const proto = PROTO_NAMES[req.protocol] ?? String(req.protocol);
  const name = (ep: PolicyEndpoint | null, ip: Uint8Array): string => (ep ? `${ep.name} (${ipText(ip)}${ep.host ? ` on ${ep.host}` : ''})` : ipText(ip));
  const lines = [`${name(fromEp, fromIp)} → ${name(toEp, toIp)} ${proto}${req.protocol === 6 || req.protocol === 17 || req.protocol === 132 ? ` port ${req.port}` : ''}: ${v.allowed ? 'ALLOWED' : 'DENIED'}`];
  for (const s of [v.egress, v.ingress]) lines.push(sideLine(s));
  return { allowed: v.allowed, from: name(fromEp, fromIp), to: name(toEp, toIp), protocol: proto, port: req.port, egress: v.egress, ingress: v.ingress, lines };
}

function sideLine(s: SideVerdict): string {
  const who = s.direction === 'Egress' ? 'egress of the source' : 'ingress of the destination';
  if (!s.endpoint) return `  ${who}: not an endpoint of the network, no policy applies → allowed`;
  if (!s.isolated) return `  ${who} ${s.endpoint}: no policy selects it for ${s.direction} → allowed`;
  const by = s.selectedBy.join(', ');
  if (s.allowed) return `  ${who} ${s.endpoint}: isolated by ${by}; allowed by ${s.allowedBy.map((r) => `${r.policy} ${s.direction.toLowerCase()}[${r.rule}]`).join(', ')}`;
  return `  ${who} ${s.endpoint}: isolated by ${by}; no rule allows this flow → denied`;
}
