/**
 * Attach and detach endpoints, keep the registry, restore after a restart.
 *
 *   attach: check (network, netns, ifname, MAC, addresses, labels) → addresses (IPAM, or the
 *           requested ones, checked against the whole cluster) → link (veth: host end on the
 *           bridge, the peer as IFNAME in NETNS with MAC, MTU, addresses, default route; macvlan
 *           of the parent; host endpoint: a veth whose addressed end stays on the host) →
 *           anti-spoofing rules on the host end → registry (persisted) → gossip announcement.
 *           Any failure undoes the steps before it, in reverse: no stray link, no leaked address.
 *   detach: rules → link → addresses → registry → announcement (a namespace already gone is fine).
 *   restore (agent start): every registered endpoint whose link is still in the kernel is kept
 *           (host end re-enslaved: the agent may have recreated the bridge; rules reinstalled);
 *           the others are forgotten and their addresses released; IPAM allocations without an
 *           endpoint (a crash between the two writes) are released.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NetworkConfig, NetworkMode } from '../config/types';
import {
  EndpointError, ERR_ADDRESS_OUTSIDE, ERR_ADDRESS_TAKEN, ERR_BAD_ENDPOINT, ERR_ENDPOINT_EXISTS, ERR_ENDPOINT_NOT_FOUND, ERR_IFNAME_IN_USE, ERR_UNKNOWN_NETWORK,
} from '../errors';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { canonicalIp, parseCidr, formatIp } from '../ipam/cidr';
import type { Ipam } from '../ipam/ipam';
import type { Assigned } from '../ipam/pool';
import type { SpoofGuard } from './antispoof';
import type { EndpointAnnouncer, ListedEndpoint } from './announce';
import type { EndpointState, Registry } from './registry';
import { EndpointSystem, IFNAME_RE, resolveNetns } from './system';

export interface AttachRequest {
  network: string;
  /** Name under /run/netns or a path; omitted with `host`. */
  netns?: string;
  ifname?: string;
  ip?: string[];
  mac?: string;
  name?: string;
  labels?: Record<string, string>;
  /** A host endpoint: the host itself gets the address. */
  host?: boolean;
  containerId?: string;
  /**
   * Another path to the same namespace that this agent can open (the CNI plugin sends
   * /proc/<its pid>/root/<CNI_NETNS>: a runtime's netns mount may not propagate into the agent's
   * mount namespace). Used for the operation only; `netns` is what is recorded.
   */
  netnsVia?: string;
  /**
   * A runtime that moves the interface itself (Docker's Join): a veth pair is made whose peer
   * stays in the agent's namespace, named `vp<id>`, down and unaddressed (the view's `ifname`);
   * `netns` is not needed then (set later with `setSandbox`).
   */
  runtimePeer?: boolean;
  /** IPAM owners whose addresses become this endpoint's (a runtime's IPAM driver allocated them). */
  adopt?: string[];
}

export interface DetachRequest {
  network: string;
  netns?: string;
  ifname?: string;
  host?: boolean;
  containerId?: string;
}

/** What attach prints (`--json`) and the API returns. */
export interface EndpointView {
  network: string;
  name: string;
  ifname: string;
  mac: string;
  ips: string[];
  host: string;
  netns?: string;
  labels?: Record<string, string>;
  gateways?: string[];
  hostIf?: string | null;
  mtu?: number;
  containerId?: string | null;
}

export interface ManagerOptions {
  node: string;
  networks: NetworkConfig[];
  ipam: Ipam;
  system: EndpointSystem;
  guard: SpoofGuard;
  registry: Registry;
  announcer: EndpointAnnouncer | null;
  logger?: Logger;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9_.\/-]{0,62}$/;

export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0] & 0xfe) | 0x02; // unicast, locally administered
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function modeOf(n: NetworkConfig): NetworkMode {
  return n.mode ?? 'overlay';
}

export class EndpointManager {
  readonly stats = { attached: 0, detached: 0, attachFailed: 0, restored: 0, forgotten: 0 };
  private readonly nets = new Map<string, NetworkConfig>();
  private readonly log: Logger;
  private readonly busy = new Set<string>();

  constructor(private readonly o: ManagerOptions) {
    for (const n of o.networks) this.nets.set(n.name, n);
    this.log = (o.logger ?? nullLogger).child({ component: 'endpoints' });
  }

  network(name: string): NetworkConfig {
    const n = this.nets.get(name);
    if (!n) {
      const known = [...this.nets.keys()];
      throw new EndpointError(ERR_UNKNOWN_NETWORK, `unknown network "${name}"${known.length ? ` (this agent has: ${known.join(', ')})` : ' (this agent has no networks)'}`, true);
    }
    return n;
  }

  async attach(req: AttachRequest): Promise<EndpointView> {
    const net = this.network(req.network);
    const mode = modeOf(net);
    const host = req.host === true;
    const peerId = req.runtimePeer ? randomBytes(6).toString('hex') : null;
    if (req.runtimePeer && (host || mode === 'macvlan')) throw new EndpointError(ERR_BAD_ENDPOINT, `runtime endpoints are veth endpoints of overlay and bridge networks; network ${net.name} is ${mode}`, true);
    const ifname = peerId ? `vp${peerId.slice(0, 11)}` : req.ifname ?? (host ? `vxh-${net.name}`.slice(0, 15) : 'eth0');
    if (!IFNAME_RE.test(ifname)) throw new EndpointError(ERR_BAD_ENDPOINT, `bad interface name "${ifname}" (1..15 of A-Z a-z 0-9 _ . -)`, true);
    if (host && mode === 'macvlan') throw new EndpointError(ERR_BAD_ENDPOINT, `host endpoints are for overlay and bridge networks; network ${net.name} is macvlan`, true);
    if (!host && !peerId && !req.netns) throw new EndpointError(ERR_BAD_ENDPOINT, 'a netns is required (or a host endpoint)', true);
    const opPath = host || peerId ? null : resolveNetns(req.netnsVia ?? req.netns!);
    const nsPath = host || peerId ? null : req.netnsVia ? req.netns! : opPath;
    let mac = req.mac?.toLowerCase() ?? randomMac();
    if (!MAC_RE.test(mac) || (parseInt(mac.slice(0, 2), 16) & 1) === 1 || mac === '00:00:00:00:00:00') {
      throw new EndpointError(ERR_BAD_ENDPOINT, `bad MAC "${req.mac}" (a unicast aa:bb:cc:dd:ee:ff)`, true);
    }
    const labels = checkLabels(req.labels ?? {});
    const key = `${net.name}|${nsPath ?? ''}|${ifname}`;
    if (this.busy.has(key) || this.o.registry.find((e) => e.network === net.name && e.nsPath === nsPath && e.ifname === ifname)) {
      throw new EndpointError(ERR_IFNAME_IN_USE, `interface name ${ifname} is already used by an endpoint of network ${net.name}${req.netns ? ` in ${req.netns}` : ' on the host'}`, true);
    }
    if (this.o.registry.find((e) => e.mac === mac && e.network === net.name) || this.o.announcer?.remote().some((e) => e.network === net.name && e.mac === mac)) {
      if (req.mac) throw new EndpointError(ERR_ADDRESS_TAKEN, `MAC ${mac} is already used on network ${net.name}`, true);
      mac = randomMac();
    }
    const adopted = new Set<string>();
    if (req.adopt?.length && net.ipam) {
      const owners = new Set(req.adopt);
      for (const [ip, o] of this.o.ipam.allocations(net.name)) if (owners.has(o)) adopted.add(ip);
    }
    const requested = (req.ip ?? []).map((s) => this.checkRequested(net, s, adopted));
    let name = req.name ?? this.defaultName(net.name, req.netns ?? 'host', ifname);
    // CNI: the short container id is a hint; a clash (same prefix, or a second interface) takes the full id + ifname
    if (req.containerId && this.o.registry.find((e) => e.network === net.name && e.name === name)) name = `${req.containerId}-${ifname}`;
    if (this.o.registry.find((e) => e.network === net.name && e.name === name)) {
      throw new EndpointError(ERR_ENDPOINT_EXISTS, `an endpoint named "${name}" already exists on network ${net.name}`, true);
    }
    this.busy.add(key);
    const id = peerId ?? randomBytes(6).toString('hex');
    const owner = `${net.name}/${id}`;
    const undo: (() => Promise<unknown>)[] = [];
    try {
      let addrs: string[];
      let gateways: string[];
      if (net.ipam) {
        if (adopted.size) {
          undo.push(() => this.o.ipam.release(net.name, owner));
          for (const from of req.adopt!) await this.o.ipam.transfer(net.name, from, owner);
        }
        const got: Assigned[] = await this.o.ipam.allocate(net.name, owner, requested.map((r) => r.address));
        undo.push(() => this.o.ipam.release(net.name, owner));
        addrs = got.map((a) => `${a.address}/${a.prefix}`);
        gateways = host ? [] : got.filter((a) => a.gateway).map((a) => a.gateway!);
      } else {
        if (requested.length === 0) throw new EndpointError(ERR_BAD_ENDPOINT, `network ${net.name} has no subnet: give the address with --ip ADDR/PREFIX`, true);
        addrs = requested.map((r) => `${r.address}/${r.prefix}`);
        gateways = [];
      }
      const hostIf = mode === 'macvlan' ? null : `vx${id.slice(0, 11)}`;
      const spec = { nsPath: opPath, ifname, mac, mtu: net.mtu, addresses: addrs, gateways };
      if (peerId) {
        await this.o.system.createVethPeer(hostIf!, net.bridge, ifname, mac, net.mtu);
        undo.push(() => this.o.system.deleteLink(null, hostIf!));
        await this.o.guard.install(hostIf!, mac, addrs.map((a) => a.split('/')[0]));
        undo.push(() => this.o.guard.remove(hostIf!));
      } else if (mode === 'macvlan') {
        await this.o.system.createMacvlan(net.parent!, spec);
        undo.push(() => this.o.system.deleteLink(opPath, ifname));
      } else {
        await this.o.system.createVeth(hostIf!, net.bridge, spec);
        undo.push(() => this.o.system.deleteLink(null, hostIf!));
        if (!host) {
          await this.o.guard.install(hostIf!, mac, addrs.map((a) => a.split('/')[0]));
          undo.push(() => this.o.guard.remove(hostIf!));
        }
      }
      const st: EndpointState = {
        id, network: net.name, name, netns: req.netns ?? '', nsPath, ifname, hostIf, kind: host ? 'host' : mode === 'macvlan' ? 'macvlan' : 'veth',
        mac, addresses: addrs, gateways, labels, containerId: req.containerId ?? null, createdAt: new Date().toISOString(),
        ...(peerId ? { runtimePeer: true } : {}),
      };
      this.o.registry.add(st);
      this.stats.attached++;
      this.announce();
      this.log.info({ network: net.name, name, netns: req.netns, ifname, mac, addresses: addrs }, 'endpoint attached');
      return this.view(st);
    } catch (e) {
      this.stats.attachFailed++;
      for (const u of undo.reverse()) {
        try {
          await u();
        } catch (e2) {
          this.log.warn({ err: (e2 as Error).message }, 'undo after failed attach failed');
        }
      }
      throw e;
    } finally {
      this.busy.delete(key);
    }
  }

  private defaultName(network: string, netns: string, ifname: string): string {
    const base = netns === 'host' ? `host-${this.o.node}` : path.basename(netns);
    const taken = (n: string) => this.o.registry.find((e) => e.network === network && e.name === n) !== undefined;
    if (!taken(base)) return base;
    if (!taken(`${base}-${ifname}`)) return `${base}-${ifname}`;
    return `${base}-${ifname}-${randomBytes(2).toString('hex')}`;
  }

  /**
   * Checks a requested address on `network` as attach does (canonical, inside the subnet, not
   * used by an endpoint here or announced by another host); EndpointError when it is not usable.
   */
  checkAddress(network: string, s: string): { address: string; prefix: number } {
    return this.checkRequested(this.network(network), s, new Set());
  }

  /** Records the runtime's sandbox (Docker's SandboxKey) of endpoint `id` (persisted; display only). */
  setSandbox(id: string, netns: string): void {
    const e = this.o.registry.find((x) => x.id === id);
    if (e && e.netns !== netns) this.o.registry.add({ ...e, netns });
  }

  /** A requested address: canonical, inside the subnet when there is one, free across the cluster. */
  private checkRequested(net: NetworkConfig, s: string, adopted: ReadonlySet<string>): { address: string; prefix: number } {
    const hasPrefix = s.includes('/');
    const c = hasPrefix ? parseCidr(s, false) : null;
    const addr = c ? formatIp(c.family, c.address) : canonicalIp(s);
    if (!addr) throw new EndpointError(ERR_BAD_ENDPOINT, `bad address "${s}"`, true);
    let prefix = c ? c.prefix : -1;
    if (net.ipam) {
      const sub = net.ipam.subnets.map((x) => parseCidr(x)!).find((x) => {
        const p = parseCidr(`${addr}/${x.prefix}`, false)!;
        return p.family === x.family && p.base === x.base;
      });
      if (!sub) throw new EndpointError(ERR_ADDRESS_OUTSIDE, `address ${addr} is outside network ${net.name}'s subnet ${net.ipam.subnets.join(', ')}`, true);
      prefix = sub.prefix;
      if (adopted.has(addr)) return { address: addr, prefix };
    } else if (prefix < 0) {
      throw new EndpointError(ERR_BAD_ENDPOINT, `network ${net.name} has no subnet: give the address as ADDR/PREFIX`, true);
    }
    const inUse = this.o.announcer?.remote().find((e) => e.network === net.name && e.ips.includes(addr));
    if (inUse) throw new EndpointError(ERR_ADDRESS_TAKEN, `address ${addr} is already taken on network ${net.name} (endpoint ${inUse.name} on host ${inUse.host})`, true);
    const local = this.o.registry.find((e) => e.network === net.name && e.addresses.some((a) => a.split('/')[0] === addr));
    if (local) throw new EndpointError(ERR_ADDRESS_TAKEN, `address ${addr} is already taken on network ${net.name} (endpoint ${local.name} on this host)`, true);
    return { address: addr, prefix };
  }

  async detach(req: DetachRequest): Promise<EndpointView> {
    const net = this.network(req.network);
    const e = this.lookup(net.name, req);
    if (!e) {
      throw new EndpointError(ERR_ENDPOINT_NOT_FOUND, `no endpoint of network ${net.name}${req.containerId ? ` for container ${req.containerId}` : req.host ? ' on the host' : ` in netns ${req.netns}`} with interface ${req.ifname ?? (req.host ? `vxh-${net.name}` : 'eth0')}`, true);
    }
    await this.remove(e);
    this.log.info({ network: e.network, name: e.name, ifname: e.ifname }, 'endpoint detached');
    return this.view(e);
  }

  /** The registered endpoint a detach (or CNI DEL/CHECK) names, or undefined. */
  lookup(network: string, req: DetachRequest): EndpointState | undefined {
    const ifname = req.ifname ?? (req.host ? `vxh-${network}`.slice(0, 15) : 'eth0');
    if (req.containerId) return this.o.registry.find((x) => x.network === network && x.containerId === req.containerId && x.ifname === ifname);
    let nsPath: string | null = null;
    if (!req.host) {
      if (!req.netns) throw new EndpointError(ERR_BAD_ENDPOINT, 'a netns is required (or a host endpoint)', true);
      nsPath = req.netns.includes('/') ? req.netns : `/run/netns/${req.netns}`;
    }
    return this.o.registry.find((x) => x.network === network && x.nsPath === nsPath && x.ifname === ifname);
  }

  private async remove(e: EndpointState): Promise<void> {
    if (e.hostIf && e.kind === 'veth') await this.o.guard.remove(e.hostIf);
    if (e.kind === 'macvlan') await this.o.system.deleteLink(e.nsPath, e.ifname);
    else if (e.hostIf) await this.o.system.deleteLink(null, e.hostIf);
    await this.o.ipam.release(e.network, `${e.network}/${e.id}`);
    this.o.registry.remove(e.id);
    this.stats.detached++;
    this.announce();
  }

  /** Is the endpoint's link still in the kernel (CNI CHECK)? */
  async present(e: EndpointState): Promise<boolean> {
    if (e.kind === 'macvlan') return this.o.system.linkExists(e.nsPath, e.ifname);
    // the namespace path may not be visible here (a runtime's mount): then the host end tells
    return e.hostIf !== null && (await this.o.system.linkExists(null, e.hostIf))
      && (e.nsPath === null || !this.visible(e.nsPath) || (await this.o.system.linkExists(e.nsPath, e.ifname)));
  }

  private visible(p: string): boolean {
    return fs.existsSync(p);
  }

  /** CNI GC: detaches this network's CNI endpoints whose (container id, ifname) is not in `valid`. */
  async gc(network: string, valid: { containerId: string; ifname: string }[]): Promise<string[]> {
    const keep = new Set(valid.map((v) => `${v.containerId}|${v.ifname}`));
    const gone: string[] = [];
    for (const e of this.o.registry.all()) {
      if (e.network !== network || e.containerId === null || keep.has(`${e.containerId}|${e.ifname}`)) continue;
      await this.remove(e);
      gone.push(e.name);
      this.log.info({ network, name: e.name, containerId: e.containerId }, 'endpoint garbage-collected (CNI GC)');
    }
    return gone;
  }

  /** See the file comment. */
  async restore(): Promise<{ kept: number; forgotten: number }> {
    let kept = 0;
    let forgotten = 0;
    for (const e of this.o.registry.all()) {
      const net = this.nets.get(e.network);
      let alive = false;
      if (net) {
        if (e.kind === 'macvlan') alive = await this.o.system.linkExists(e.nsPath, e.ifname);
        else if (e.hostIf) alive = await this.o.system.linkExists(null, e.hostIf);
      }
      if (!alive) {
        this.log.info({ network: e.network, name: e.name, ifname: e.ifname }, net ? 'endpoint gone while the agent was down: forgotten, addresses released' : 'endpoint of a network no longer configured: removed');
        try {
          if (e.kind !== 'macvlan' && e.hostIf) await this.o.system.deleteLink(null, e.hostIf);
          if (e.kind === 'veth' && e.hostIf) await this.o.guard.remove(e.hostIf);
        } catch { /* best effort */ }
        if (this.o.ipam.has(e.network)) await this.o.ipam.release(e.network, `${e.network}/${e.id}`);
        this.o.registry.remove(e.id);
        forgotten++;
        continue;
      }
      if (e.kind !== 'macvlan' && e.hostIf && this.o.system.masterOf(e.hostIf) !== net!.bridge) await this.o.system.enslave(e.hostIf, net!.bridge);
      if (e.kind === 'veth' && e.hostIf) await this.o.guard.install(e.hostIf, e.mac, e.addresses.map((a) => a.split('/')[0]));
      kept++;
    }
    // allocations whose endpoint never got registered (crash between the two writes)
    for (const n of this.nets.values()) {
      if (!this.o.ipam.has(n.name)) continue;
      const owners = new Set(this.o.registry.all().filter((e) => e.network === n.name).map((e) => `${n.name}/${e.id}`));
      for (const owner of new Set(this.o.ipam.allocations(n.name).values())) {
        if (!owners.has(owner)) await this.o.ipam.release(n.name, owner);
      }
    }
    this.stats.restored += kept;
    this.stats.forgotten += forgotten;
    this.announce();
    return { kept, forgotten };
  }

  /**
   * A reload's networks (overlay and local): networks added become attachable, removed ones not
   * (their endpoints stay until detached), and when a network's MTU changed every endpoint of it
   * this host attached gets the new MTU on both ends — the bridge port and the interface in the
   * container (a runtime-moved peer only on the bridge side: its namespace is the runtime's).
   * Returns the interfaces set and what failed (an interface gone is skipped, not a failure).
   */
  async reconfigure(networks: NetworkConfig[]): Promise<{ mtuSet: { network: string; mtu: number; interfaces: string[] }[]; failed: string[] }> {
    const before = new Map(this.nets);
    this.nets.clear();
    for (const n of networks) this.nets.set(n.name, n);
    const mtuSet: { network: string; mtu: number; interfaces: string[] }[] = [];
    const failed: string[] = [];
    for (const n of networks) {
      const o = before.get(n.name);
      if (!o || o.mtu === n.mtu) continue;
      const done: string[] = [];
      const set = async (nsPath: string | null, ifname: string, where: string): Promise<void> => {
        try {
          if (await this.o.system.setMtu(nsPath, ifname, n.mtu)) done.push(where);
        } catch (e) {
          failed.push(`${where}: ${(e as Error).message}`);
        }
      };
      for (const e of this.local().filter((x) => x.network === n.name)) {
        if (e.hostIf) await set(null, e.hostIf, e.hostIf);
        if (e.kind === 'host') await set(null, e.ifname, e.ifname);
        else if (!e.runtimePeer && e.nsPath) await set(e.nsPath, e.ifname, `${e.name}:${e.ifname}`);
      }
      mtuSet.push({ network: n.name, mtu: n.mtu, interfaces: done });
    }
    return { mtuSet, failed };
  }

  /** This host's endpoints. */
  local(): EndpointState[] {
    return this.o.registry.all();
  }

  view(e: EndpointState): EndpointView {
    const net = this.nets.get(e.network);
    return {
      network: e.network, name: e.name, ifname: e.ifname, mac: e.mac, ips: e.addresses, host: this.o.node,
      netns: e.netns, labels: e.labels, gateways: e.gateways, hostIf: e.hostIf, mtu: net?.mtu, containerId: e.containerId,
    };
  }

  /** Every endpoint in the cluster: ours and those other hosts announce. */
  async list(): Promise<(ListedEndpoint & { drops?: number; local: boolean })[]> {
    const own = await Promise.all(this.local().map(async (e) => ({
      host: this.o.node, network: e.network, name: e.name, ifname: e.ifname, mac: e.mac, ips: e.addresses.map((a) => a.split('/')[0]), labels: e.labels,
      local: true, drops: e.kind === 'veth' && e.hostIf ? await this.o.guard.drops(e.hostIf) : 0,
    })));
    const remote = (this.o.announcer?.remote() ?? []).map((e) => ({ ...e, local: false }));
    return [...own, ...remote].sort((a, b) => (a.network + ' ' + a.host + ' ' + a.name < b.network + ' ' + b.host + ' ' + b.name ? -1 : 1));
  }

  announce(): void {
    if (!this.o.announcer) return;
    const own: ListedEndpoint[] = this.local().map((e) => ({ host: this.o.node, network: e.network, name: e.name, ifname: e.ifname, mac: e.mac, ips: e.addresses.map((a) => a.split('/')[0]), labels: e.labels }));
    const overlay = this.local().flatMap((e) => {
      const n = this.nets.get(e.network);
      return n && modeOf(n) === 'overlay' ? [{ vni: n.vni, mac: e.mac, ips: e.addresses.map((a) => a.split('/')[0]) }] : [];
    });
    try {
      this.o.announcer.announce(own, overlay);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cannot announce endpoints');
    }
  }
}

function checkLabels(l: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = Object.entries(l);
  if (entries.length > 16) throw new EndpointError(ERR_BAD_ENDPOINT, 'at most 16 labels', true);
  for (const [k, v] of entries) {
    if (!LABEL_KEY_RE.test(k) || typeof v !== 'string' || v.length > 255) throw new EndpointError(ERR_BAD_ENDPOINT, `bad label ${JSON.stringify(k)}=${JSON.stringify(v)} (key: 1..63 of A-Z a-z 0-9 _ . / -; value: at most 255 characters)`, true);
    out[k] = v;
  }
  return out;
}
