/**
 * The meaning of a set of policies, written as plainly as Kubernetes' NetworkPolicy documentation
 * states it. This is the reference: `compile.ts` builds flat tables that must give the same verdict
 * for every flow (a property test compares them), `vxmesh policy trace` explains a verdict from it,
 * and the netns truth-table test computes its expected matrix with it.
 *
 *   - An endpoint selected by a policy whose `policyTypes` has a direction is isolated in that
 *     direction; a network with `defaultPolicy: deny` isolates every endpoint in both.
 *   - A non-isolated direction allows everything. For an isolated one, the allows are the union of
 *     the rules of every policy that selects the endpoint for that direction.
 *   - A flow passes only when the source's egress and the destination's ingress both allow it
 *     (a side that is not an endpoint of the network has no policy: outside addresses, the host).
 *   - A rule without peers allows every peer; a rule without ports allows every protocol and port.
 *     A port entry names a protocol and optionally a port or a range; ICMP has no ports, so only a
 *     rule without ports allows it.
 *   - An `endpoints` peer matches endpoints of the same network by labels; a `cidr` peer matches the
 *     peer's IP address (endpoint or not) unless it lies in one of the `except` blocks.
 *   - Replies of an allowed connection pass (conntrack.ts); ARP and ND always pass (the data path).
 */
import { cidrContains } from '../ipam/cidr';
import type { Policy, PolicyPeer, PolicyRule, PolicyType } from './document';
import { PROTOCOL_NUMBER } from './document';
import { type Labels, selectorMatches } from './selector';

/** An endpoint as policy sees it. */
export interface PolicyEndpoint {
  readonly name: string;
  readonly labels: Labels;
  /** 16-byte addresses (IPv4 as ::ffff:a.b.c.d). */
  readonly ips: readonly Uint8Array[];
  /** Host it lives on (node name), for traces and listings. */
  readonly host?: string;
  /**
   * That host's underlay address (canonical text), as the data path knows the sender of a frame:
   * a remote frame's inner source must be an endpoint whose `hostAddr` is the frame's sender.
   */
  readonly hostAddr?: string;
  /** MAC address (same-host enforcement keys this host's endpoints by it). */
  readonly mac?: string;
  /** This host's endpoints only: the host-side port (veth on the bridge). */
  readonly port?: string;
}

/** One side of a flow: its address, and the endpoint it belongs to (null: not an endpoint). */
export interface FlowSide {
  readonly ip: Uint8Array;
  readonly endpoint: PolicyEndpoint | null;
}

export interface Flow {
  readonly src: FlowSide;
  readonly dst: FlowSide;
  /** IANA protocol number (6 TCP, 17 UDP, 132 SCTP, 1 ICMP, 58 ICMPv6, …). */
  readonly protocol: number;
  /** Destination port (0 for protocols without ports). */
  readonly port: number;
}

export interface NetworkPolicies {
  readonly policies: readonly Policy[];
  /** `defaultPolicy: deny` on the network. */
  readonly defaultDeny: boolean;
}

/** Why one direction allowed or denied. */
export interface SideVerdict {
  readonly direction: PolicyType;
  /** The side this direction belongs to (egress: source; ingress: destination), or null. */
  readonly endpoint: string | null;
  readonly isolated: boolean;
  /** Policies selecting the endpoint for this direction (`(defaultPolicy: deny)` for the default). */
  readonly selectedBy: readonly string[];
  /** The rules that allowed it: `policy` and the rule's index in its direction. */
  readonly allowedBy: readonly { policy: string; rule: number }[];
  readonly allowed: boolean;
}

export interface Verdict {
  readonly allowed: boolean;
  readonly egress: SideVerdict;
  readonly ingress: SideVerdict;
}

export const DEFAULT_DENY_NAME = '(defaultPolicy: deny)';

/** The verdict for the first packet of `flow`, with the policies and rules that decided. */
export function evaluate(np: NetworkPolicies, flow: Flow): Verdict {
  const egress = side(np, 'Egress', flow.src.endpoint, flow.dst, flow);
  const ingress = side(np, 'Ingress', flow.dst.endpoint, flow.src, flow);
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}

function side(np: NetworkPolicies, dir: PolicyType, ep: PolicyEndpoint | null, peer: FlowSide, flow: Flow): SideVerdict {
  if (!ep) return { direction: dir, endpoint: null, isolated: false, selectedBy: [], allowedBy: [], allowed: true };
  const selectedBy: string[] = np.defaultDeny ? [DEFAULT_DENY_NAME] : [];
  const allowedBy: { policy: string; rule: number }[] = [];
  for (const pol of np.policies) {
    if (!pol.policyTypes.includes(dir) || !selectorMatches(pol.selector, ep.labels)) continue;
    selectedBy.push(pol.name);
    const rules = dir === 'Ingress' ? pol.ingress : pol.egress;
    rules.forEach((r, i) => {
      if (ruleMatches(r, peer, flow)) allowedBy.push({ policy: pol.name, rule: i });
    });
  }
  const isolated = selectedBy.length > 0;
  return { direction: dir, endpoint: ep.name, isolated, selectedBy, allowedBy, allowed: !isolated || allowedBy.length > 0 };
}

/** True when `rule` allows traffic with `peer` (the other side) on the flow's protocol/port. */
export function ruleMatches(rule: PolicyRule, peer: FlowSide, flow: Flow): boolean {
  return (rule.peers === null || rule.peers.some((p) => peerMatches(p, peer))) && portsMatch(rule, flow);
}

export function peerMatches(p: PolicyPeer, peer: FlowSide): boolean {
  if (p.kind === 'endpoints') return peer.endpoint !== null && selectorMatches(p.selector, peer.endpoint.labels);
  return cidrContains(p.cidr, peer.ip, 0) && !p.except.some((e) => cidrContains(e, peer.ip, 0));
}

export function portsMatch(rule: PolicyRule, flow: Flow): boolean {
  if (rule.ports === null) return true;
  return rule.ports.some((pp) => PROTOCOL_NUMBER[pp.protocol] === flow.protocol
    && (pp.port === null || (flow.port >= pp.port && flow.port <= (pp.endPort ?? pp.port))));
}
