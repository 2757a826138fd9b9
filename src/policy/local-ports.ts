/**
 * Same-host enforcement, the kernel's part: on a network whose policy isolates anything, frames
 * between two endpoints of this host must pass the agent instead of crossing the Linux bridge.
 * One nftables table in the netdev family, rebuilt whole in one transaction on every change (never
 * half made), with two kinds of ingress chains:
 *
 *   table netdev vxmesh-policy {
 *     set l_<net> { type ether_addr; elements = { MACs of this host's endpoints of <net> } }
 *     chain p_<port> {                     # each endpoint's host-side port (frames from the endpoint)
 *       type filter hook ingress device "<port>" priority -500;
 *       ether daddr @l_<net> meta protocol { ip, ip6 } ether saddr <its MAC> fwd to "<tap>"
 *       ether daddr @l_<net> meta protocol { ip, ip6 } counter drop   # forged source MAC
 *     }
 *     chain t_<net> {                      # the network's TAP (frames the agent writes)
 *       type filter hook ingress device "<tap>" priority -500;
 *       ether saddr @l_<net> ether daddr @l_<net> fwd to ether daddr map { <MAC> : "<port>", … }
 *     }
 *   }
 *
 * So an IPv4/IPv6 frame from endpoint A to endpoint B of the same host goes A's port → (fwd) → the
 * TAP → the agent (inside.ts "[policy hairpin]": PolicyEnforcer.filterLocal, the source must be A)
 * → written back to the TAP → (fwd) → B's port: the bridge never sees it, so it learns nothing
 * wrong (A stays on A's port) and the TAP needs no hairpin mode. Why not the bridge itself: an
 * isolated port cannot reach another isolated port even through a static FDB entry, and a frame the
 * agent writes back with B's MAC learned on the TAP port would be dropped as "same port"; bridge
 * conntrack (stateful nft bridge rules) is not in this kernel. ARP, IPv6 ND and other non-IP frames,
 * broadcast and multicast keep crossing the bridge (ARP/ND always pass; see docs/policy.md for
 * multicast), so address resolution works with or without the agent. The anti-spoofing table
 * (endpoints/antispoof.ts, bridge prerouting) does not see redirected frames: the MAC is checked
 * here (rule 2), the addresses by the agent (`filterLocal`: an address of the endpoint owning the
 * source MAC, link-local and :: as antispoof allows).
 *
 * `NftLocalPorts` drives `nft -f -`; `MemoryLocalPorts` is the twin (records the last ruleset).
 */
import { runNft } from '../agent/nft';
import * as fs from 'node:fs';

export const NFT_POLICY_TABLE = 'vxmesh-policy';

export interface LocalPort {
  /** Host-side port (veth on the bridge). */
  port: string;
  mac: string;
}

export interface LocalNetwork {
  network: string;
  tap: string;
  ports: LocalPort[];
}

export interface LocalPortsDriver {
  /** Makes the kernel state exactly `nets` (an empty list removes the table). Throws on failure. */
  apply(nets: LocalNetwork[]): Promise<void>;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IF_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const ident = (s: string): string => s.replace(/[^A-Za-z0-9_]/g, '_');

/** The nft script that replaces the table by one for `nets` (ports without a valid name/MAC are left out). */
export function rulesetFor(nets: LocalNetwork[]): string {
  const t = `netdev ${NFT_POLICY_TABLE}`;
  const lines = [`table ${t}`, `delete table ${t}`];
  const live = nets.map((n) => ({ ...n, ports: n.ports.filter((p) => IF_RE.test(p.port) && MAC_RE.test(p.mac.toLowerCase())) }))
    .filter((n) => IF_RE.test(n.tap) && n.ports.length > 0);
  if (live.length === 0) return lines.join('\n') + '\n';
  lines.push(`table ${t} {`);
  for (const n of live) {
    const set = `l_${ident(n.network)}`;
    const macs = n.ports.map((p) => p.mac.toLowerCase());
    lines.push(`  set ${set} { type ether_addr; elements = { ${[...new Set(macs)].join(', ')} } }`);
    for (const p of n.ports) {
      lines.push(`  chain p_${ident(p.port)} {`);
      lines.push(`    type filter hook ingress device "${p.port}" priority -500; policy accept;`);
      lines.push(`    ether daddr @${set} meta protocol { ip, ip6 } ether saddr ${p.mac.toLowerCase()} fwd to "${n.tap}"`);
      lines.push(`    ether daddr @${set} meta protocol { ip, ip6 } counter drop`);
      lines.push('  }');
    }
    lines.push(`  chain t_${ident(n.network)} {`);
    lines.push(`    type filter hook ingress device "${n.tap}" priority -500; policy accept;`);
    lines.push(`    ether saddr @${set} ether daddr @${set} fwd to ether daddr map { ${n.ports.map((p) => `${p.mac.toLowerCase()} : "${p.port}"`).join(', ')} }`);
    lines.push('  }');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

const run = runNft; // shared runner (src/agent/nft.ts)

/** Whether a network device exists (a port being detached, a TAP being re-created). */
export function deviceExists(name: string): boolean {
  return IF_RE.test(name) && fs.existsSync(`/sys/class/net/${name}`);
}

/** The ifindex of a device (0 when absent): part of the signature, so a re-created device is re-bound. */
export function ifindexOf(name: string): number {
  try {
    return IF_RE.test(name) ? Number(fs.readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8')) || 0 : 0;
  } catch {
    return 0;
  }
}

export class NftLocalPorts implements LocalPortsDriver {
  async apply(nets: LocalNetwork[]): Promise<void> {
    // Devices that are gone (a detach in progress) would fail the whole transaction: leave them out.
    const present = nets.map((n) => ({ ...n, ports: n.ports.filter((p) => deviceExists(p.port)) })).filter((n) => deviceExists(n.tap));
    const r = await run(['-f', '-'], rulesetFor(present));
    if (r.code !== 0) throw new Error(`nftables (same-host policy table): ${r.stderr.trim()}`);
  }
}

export class MemoryLocalPorts implements LocalPortsDriver {
  applied: LocalNetwork[] | null = null;
  calls = 0;
  fail: Error | null = null;
  async apply(nets: LocalNetwork[]): Promise<void> {
    this.calls++;
    if (this.fail) throw this.fail;
    this.applied = nets.map((n) => ({ ...n, ports: n.ports.map((p) => ({ ...p })) }));
  }
}
