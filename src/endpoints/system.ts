/**
 * What attach/detach does to the kernel, behind a seam: `IprouteEndpointSystem` drives iproute2
 * (`ip -batch`, one process per namespace touched; `nsenter --net=PATH` for the endpoint's
 * namespace since `ip -n` takes only names) and `MemoryEndpointSystem` is its in-memory twin for
 * unit tests (same errors, records every link).
 *
 * Every create is undoable by one call: deleting the host end of a veth removes both ends; a
 * macvlan or a host-side veth is deleted by name in its namespace.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { EndpointError, ERR_ATTACH_FAILED, ERR_IFNAME_IN_USE, ERR_NETNS_MISSING, ERR_BAD_ENDPOINT } from '../errors';

export interface LinkSpec {
  /** Namespace path of the endpoint (`/run/netns/NAME` or any path), or null for the host itself. */
  nsPath: string | null;
  ifname: string;
  mac: string;
  mtu: number;
  /** "addr/prefix" */
  addresses: string[];
  /** Default-route gateways (one per family at most). */
  gateways: string[];
}

export interface EndpointSystem {
  /** Creates a veth pair: `hostIf` on `bridge` in the agent's namespace, the peer as `spec`. */
  createVeth(hostIf: string, bridge: string, spec: LinkSpec): Promise<void>;
  /**
   * Creates a veth pair whose peer `peer` stays in the agent's namespace, down and unaddressed
   * (MAC `mac`, MTU `mtu`), for a runtime that moves and configures it itself (Docker's Join);
   * `hostIf` goes on `bridge`, up.
   */
  createVethPeer(hostIf: string, bridge: string, peer: string, mac: string, mtu: number): Promise<void>;
  /** Creates a macvlan of `parent` (mode bridge) as `spec` (inside spec.nsPath). */
  createMacvlan(parent: string, spec: LinkSpec): Promise<void>;
  /** Deletes link `ifname` in `nsPath` (null: the agent's namespace); false when it was not there. */
  deleteLink(nsPath: string | null, ifname: string): Promise<boolean>;
  linkExists(nsPath: string | null, ifname: string): Promise<boolean>;
  /** Master bridge of `ifname` in the agent's namespace, or null. */
  masterOf(ifname: string): string | null;
  /** Enslaves `ifname` to `bridge` and brings it up. */
  enslave(ifname: string, bridge: string): Promise<void>;
  /** Creates bridge `name` (up, `mtu`) if missing; resolves whether it created it. */
  ensureBridge(name: string, mtu: number): Promise<boolean>;
  /** Interface MAC of `ifname` in `nsPath`, or null when it is not there. */
  macOf(nsPath: string | null, ifname: string): Promise<string | null>;
  /** Sets the MTU of `ifname` in `nsPath` (null: the agent's namespace); false when it is not there. */
  setMtu(nsPath: string | null, ifname: string, mtu: number): Promise<boolean>;
}

export const NETNS_DIR = '/run/netns';
const NS_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;
export const IFNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

/** A name under /run/netns or a path → the path; EndpointError when it does not exist. */
export function resolveNetns(netns: string): string {
  let p: string;
  if (netns.includes('/')) p = netns;
  else if (NS_NAME_RE.test(netns)) p = `${NETNS_DIR}/${netns}`;
  else throw new EndpointError(ERR_BAD_ENDPOINT, `netns "${netns}" is neither a name under ${NETNS_DIR} nor a path`, true);
  if (!fs.existsSync(p)) {
    throw new EndpointError(ERR_NETNS_MISSING, `network namespace ${netns}${p !== netns ? ` (${p})` : ''} does not exist`, true, { netns });
  }
  return p;
}

interface Run { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 15_000, maxBuffer: 1 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr || (err && code !== 0 && !stderr ? err.message : '')) });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** ip -batch in `nsPath` (null = here). */
async function ipBatch(nsPath: string | null, lines: string[]): Promise<Run> {
  const input = lines.join('\n') + '\n';
  return nsPath ? run('nsenter', [`--net=${nsPath}`, 'ip', '-batch', '-'], input) : run('ip', ['-batch', '-'], input);
}

function fail(what: string, r: Run): never {
  const msg = r.stderr.trim().split('\n').filter((l) => !/^Command failed/.test(l)).join('; ') || `exit ${r.code}`;
  throw new EndpointError(ERR_ATTACH_FAILED, `${what}: ${msg}`, false);
}

function nsSideLines(spec: LinkSpec, tmpName: string | null): string[] {
  const l: string[] = [];
  if (tmpName) l.push(`link set dev ${tmpName} name ${spec.ifname}`);
  for (const a of spec.addresses) l.push(`addr add ${a} dev ${spec.ifname}${a.includes(':') ? ' nodad' : ''}`);
  l.push(`link set dev ${spec.ifname} up`);
  if (spec.nsPath) l.push('link set dev lo up');
  // the family follows the gateway's address (a per-line -6 is not accepted in ip -batch)
  for (const g of spec.gateways) l.push(`route replace default via ${g} dev ${spec.ifname}`);
  return l;
}

export class IprouteEndpointSystem implements EndpointSystem {
  async createVeth(hostIf: string, bridge: string, spec: LinkSpec): Promise<void> {
    const peerNs = spec.nsPath ? ` netns ${spec.nsPath}` : '';
    const r = await ipBatch(null, [
      `link add ${hostIf} mtu ${spec.mtu} type veth peer name ${spec.ifname} mtu ${spec.mtu} address ${spec.mac}${peerNs}`,
      `link set dev ${hostIf} master ${bridge} up`,
    ]);
    if (r.code !== 0) {
      const created = await this.linkExists(null, hostIf);
      if (created) await this.deleteLink(null, hostIf);
      if (/File exists/.test(r.stderr) && !created) {
        throw new EndpointError(ERR_IFNAME_IN_USE, `interface name ${spec.ifname} is already used${spec.nsPath ? ` in ${spec.nsPath}` : ' on the host'}`, true);
      }
      fail(`creating veth ${hostIf} → ${spec.ifname}`, r);
    }
    const n = await ipBatch(spec.nsPath, nsSideLines(spec, null));
    if (n.code !== 0) {
      await this.deleteLink(null, hostIf);
      fail(`configuring ${spec.ifname}`, n);
    }
  }

  async createVethPeer(hostIf: string, bridge: string, peer: string, mac: string, mtu: number): Promise<void> {
    const r = await ipBatch(null, [
      `link add ${hostIf} mtu ${mtu} type veth peer name ${peer} mtu ${mtu} address ${mac}`,
      `link set dev ${hostIf} master ${bridge} up`,
    ]);
    if (r.code !== 0) {
      const created = await this.linkExists(null, hostIf);
      if (created) await this.deleteLink(null, hostIf);
      if (/File exists/.test(r.stderr) && !created) throw new EndpointError(ERR_IFNAME_IN_USE, `interface name ${peer} or ${hostIf} is already used on the host`, true);
      fail(`creating veth ${hostIf} → ${peer}`, r);
    }
  }

  async createMacvlan(parent: string, spec: LinkSpec): Promise<void> {
    const tmp = `mv${Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, '0')}`;
    if (spec.nsPath && (await this.linkExists(spec.nsPath, spec.ifname))) {
      throw new EndpointError(ERR_IFNAME_IN_USE, `interface name ${spec.ifname} is already used in ${spec.nsPath}`, true);
    }
    const r = await ipBatch(null, [
      `link add link ${parent} name ${tmp} mtu ${spec.mtu} address ${spec.mac} type macvlan mode bridge`,
      ...(spec.nsPath ? [`link set dev ${tmp} netns ${spec.nsPath}`] : []),
    ]);
    if (r.code !== 0) {
      await this.deleteLink(null, tmp);
      fail(`creating macvlan of ${parent}`, r);
    }
    const n = await ipBatch(spec.nsPath, nsSideLines(spec, tmp));
    if (n.code !== 0) {
      if (!(await this.deleteLink(spec.nsPath, tmp))) await this.deleteLink(spec.nsPath, spec.ifname);
      fail(`configuring ${spec.ifname}`, n);
    }
  }

  async setMtu(nsPath: string | null, ifname: string, mtu: number): Promise<boolean> {
    if (!(await this.linkExists(nsPath, ifname))) return false;
    const r = await ipBatch(nsPath, [`link set dev ${ifname} mtu ${mtu}`]);
    if (r.code !== 0) fail(`setting MTU ${mtu} on ${ifname}`, r);
    return true;
  }
  async deleteLink(nsPath: string | null, ifname: string): Promise<boolean> {
    if (nsPath && !fs.existsSync(nsPath)) return false;
    const r = await ipBatch(nsPath, [`link del dev ${ifname}`]);
    return r.code === 0;
  }

  async linkExists(nsPath: string | null, ifname: string): Promise<boolean> {
    if (!nsPath) return fs.existsSync(`/sys/class/net/${ifname}`) || (await ipBatch(null, [`link show dev ${ifname}`])).code === 0;
    if (!fs.existsSync(nsPath)) return false;
    return (await ipBatch(nsPath, [`link show dev ${ifname}`])).code === 0;
  }

  masterOf(ifname: string): string | null {
    try {
      return fs.readlinkSync(`/sys/class/net/${ifname}/master`).split('/').pop() ?? null;
    } catch {
      return null;
    }
  }

  async enslave(ifname: string, bridge: string): Promise<void> {
    const r = await ipBatch(null, [`link set dev ${ifname} master ${bridge} up`]);
    if (r.code !== 0) fail(`enslaving ${ifname} to ${bridge}`, r);
  }

  async ensureBridge(name: string, mtu: number): Promise<boolean> {
    if (await this.linkExists(null, name)) return false;
    const r = await ipBatch(null, [`link add ${name} mtu ${mtu} type bridge`, `link set dev ${name} up`]);
    if (r.code !== 0) fail(`creating bridge ${name}`, r);
    return true;
  }

  async macOf(nsPath: string | null, ifname: string): Promise<string | null> {
    if (nsPath && !fs.existsSync(nsPath)) return null;
    const r = await ipBatch(nsPath, [`-o link show dev ${ifname}`]);
    if (r.code !== 0) {
      // "-o" is a global option and not allowed per batch line on older iproute2: retry plain
      const r2 = await ipBatch(nsPath, [`link show dev ${ifname}`]);
      if (r2.code !== 0) return null;
      return /link\/ether ([0-9a-f:]{17})/.exec(r2.stdout)?.[1] ?? null;
    }
    return /link\/ether ([0-9a-f:]{17})/.exec(r.stdout)?.[1] ?? null;
  }
}

/** In-memory twin: links per namespace, the same errors for a missing netns or a used name. */
export class MemoryEndpointSystem implements EndpointSystem {
  /** "ns|ifname" → link */
  readonly links = new Map<string, { mac: string; master: string | null; addresses: string[]; peer: string | null; mtu?: number }>();
  readonly bridges = new Set<string>();
  /** Make the next create fail at this step ('veth' | 'configure'). */
  failNext: 'veth' | 'configure' | null = null;
  private key(ns: string | null, i: string): string {
    // /proc/<pid>/root/<path> is the same namespace file as <path> (as in the kernel)
    return `${ns === null ? '' : ns.replace(/^\/proc\/\d+\/root(?=\/)/, '')}|${i}`;
  }
  async createVeth(hostIf: string, bridge: string, spec: LinkSpec): Promise<void> {
    if (this.links.has(this.key(spec.nsPath, spec.ifname))) throw new EndpointError(ERR_IFNAME_IN_USE, `interface name ${spec.ifname} is already used`, true);
    if (this.failNext === 'veth') { this.failNext = null; throw new EndpointError(ERR_ATTACH_FAILED, 'creating veth: injected', false); }
    this.links.set(this.key(null, hostIf), { mac: '02:00:00:00:00:00', master: bridge, addresses: [], peer: this.key(spec.nsPath, spec.ifname), mtu: spec.mtu });
    this.links.set(this.key(spec.nsPath, spec.ifname), { mac: spec.mac, master: null, addresses: [...spec.addresses], peer: this.key(null, hostIf), mtu: spec.mtu });
    if (this.failNext === 'configure') { this.failNext = null; await this.deleteLink(null, hostIf); throw new EndpointError(ERR_ATTACH_FAILED, 'configuring: injected', false); }
  }
  async createVethPeer(hostIf: string, bridge: string, peer: string, mac: string, mtu?: number): Promise<void> {
    if (this.links.has(this.key(null, peer)) || this.links.has(this.key(null, hostIf))) throw new EndpointError(ERR_IFNAME_IN_USE, `interface name ${peer} is already used`, true);
    if (this.failNext === 'veth') { this.failNext = null; throw new EndpointError(ERR_ATTACH_FAILED, 'creating veth: injected', false); }
    this.links.set(this.key(null, hostIf), { mac: '02:00:00:00:00:00', master: bridge, addresses: [], peer: this.key(null, peer), mtu });
    this.links.set(this.key(null, peer), { mac, master: null, addresses: [], peer: this.key(null, hostIf), mtu });
  }
  async createMacvlan(_parent: string, spec: LinkSpec): Promise<void> {
    if (this.links.has(this.key(spec.nsPath, spec.ifname))) throw new EndpointError(ERR_IFNAME_IN_USE, `interface name ${spec.ifname} is already used`, true);
    this.links.set(this.key(spec.nsPath, spec.ifname), { mac: spec.mac, master: null, addresses: [...spec.addresses], peer: null, mtu: spec.mtu });
  }
  async deleteLink(ns: string | null, ifname: string): Promise<boolean> {
    const l = this.links.get(this.key(ns, ifname));
    if (!l) return false;
    this.links.delete(this.key(ns, ifname));
    if (l.peer) this.links.delete(l.peer);
    return true;
  }
  async linkExists(ns: string | null, ifname: string): Promise<boolean> {
    return this.links.has(this.key(ns, ifname));
  }
  async setMtu(ns: string | null, ifname: string, mtu: number): Promise<boolean> {
    const l = this.links.get(this.key(ns, ifname));
    if (!l) return false;
    l.mtu = mtu;
    return true;
  }
  /** MTU of a link (as created or set), or undefined. */
  mtuOf(ns: string | null, ifname: string): number | undefined {
    return this.links.get(this.key(ns, ifname))?.mtu;
  }
  masterOf(ifname: string): string | null {
    return this.links.get(this.key(null, ifname))?.master ?? null;
  }
  async enslave(ifname: string, bridge: string): Promise<void> {
    const l = this.links.get(this.key(null, ifname));
    if (l) l.master = bridge;
  }
  async ensureBridge(name: string): Promise<boolean> {
    if (this.bridges.has(name)) return false;
    this.bridges.add(name);
    return true;
  }
  async macOf(ns: string | null, ifname: string): Promise<string | null> {
    return this.links.get(this.key(ns, ifname))?.mac ?? null;
  }
}
