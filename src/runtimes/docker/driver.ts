/**
 * Docker's remote NetworkDriver and IpamDriver for vxmesh (one plugin "vxmesh", both interfaces),
 * over the endpoint manager and IPAM of the endpoints extension. See docs/docker.md.
 *
 * Networks: a Docker network maps to a vxmesh network of the agent config, chosen by
 * `--opt network=NAME`, else `--opt vni=N`, else the network whose subnet is the Docker network's
 * IPv4 (or IPv6) pool. The map (Docker NetworkID → vxmesh network) is persisted in
 * `<stateDir>/docker.json`: dockerd sends CreateNetwork once, also across restarts of either side.
 * With `--opt vni=N` and no network of that VNI, the network is created in the agent (a runtime
 * network, src/agent/runtime-networks.ts, handed over by connect()): its IPAM pool is answered
 * before it exists (PoolID `vxmesh/` + '*' + `/<subnet>`, resolved by subnet), and it is removed
 * with the last Docker network on it.
 *
 * IPAM: pools are the vxmesh networks' subnets (PoolID `vxmesh/<network>/<subnet>`, stable across
 * restarts, so RequiresRequestReplay is false); RequestAddress allocates through vxmesh IPAM (this
 * host's blocks: unique across hosts) under an owner `docker/<random>`; a requested address (`--ip`)
 * is checked cluster-wide first. The gateway is the network's configured gateway, never allocated.
 *
 * Endpoints: CreateEndpoint makes a vxmesh endpoint (EndpointManager.attach with runtimePeer):
 * the IPAM driver's allocation is adopted, a veth pair is made (host end on the network's bridge,
 * anti-spoofing rules for its MAC + addresses; the peer left in the agent's namespace), registered
 * (persisted; containerId = Docker's EndpointID) and announced by gossip. Join answers the peer's
 * name (Docker moves it into the sandbox, renames it eth<N>, sets MAC and addresses) with the
 * gateway; DeleteEndpoint detaches it (link, rules, addresses, registry, announcement).
 * Any failure of CreateEndpoint undoes what it made (the manager's undo list).
 */
import { randomBytes } from 'node:crypto';
import type { NetworkConfig } from '../../config/types';
import type { EndpointManager } from '../../endpoints/manager';
import type { Ipam } from '../../ipam/ipam';
import { canonicalIp, formatCidr, formatIp, parseCidr } from '../../ipam/cidr';
import type { StateStore } from '../../ipam/state-store';
import { readVersioned } from '../../ipam/state-store';
import type { Body } from './protocol';
import type { RuntimeNetworkApi } from '../../agent/runtime-networks';

export const DOCKER_STATE_FILE = 'docker.json';
export const GATEWAY_OPTION = 'com.docker.network.gateway';
export const GENERIC_OPTIONS = 'com.docker.network.generic';
export const ADDRESS_SPACE = 'vxmesh';
/** Owner prefix of addresses the IPAM driver handed out and no endpoint has adopted yet. */
export const IPAM_OWNER_PREFIX = 'docker/';
const ID_RE = /^[A-Za-z0-9_.-]{1,128}$/;
const NETWORK_OPTIONS = ['network', 'vni', 'mtu', 'name'];
/** PoolID network part of a pool whose network does not exist yet (created from `--opt vni=`). */
const NEW_POOL = '*';

/** What the driver needs from the endpoints extension (handed over by connect()). */
export interface DockerBackend {
  readonly manager: EndpointManager | null;
  readonly ipam: Ipam | null;
}

export interface DockerDriverOptions {
  backend: DockerBackend;
  store: StateStore;
  node: string;
  networks: () => NetworkConfig[];
  /** Null when the agent is ready, else why not (shown by Docker). */
  notReady: () => string | null;
  /** Creates/removes networks from `--opt vni=` (src/agent/runtime-networks.ts); null: only configured networks. */
  runtime?: RuntimeNetworkApi | null;
  /**
   * Runs a request that creates, deletes or allocates in the agent's turn among network changes
   * (Agent.exclusive: a SIGHUP reload waits for a CreateEndpoint, and the other way round);
   * absent: the driver's own queue only.
   */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>;
}

interface NetMap { network: string; createdAt: string }

export class DockerError extends Error {}

function fail(msg: string): never {
  throw new DockerError(msg);
}

function str(b: Body, k: string, required = true): string {
  const v = b[k];
  if (v === undefined || v === null || v === '') {
    if (required) fail(`${k} is missing`);
    return '';
  }
  if (typeof v !== 'string') fail(`${k} must be a string`);
  return v;
}

function id(b: Body, k: string): string {
  const v = str(b, k);
  if (!ID_RE.test(v)) fail(`${k} ${JSON.stringify(v.slice(0, 80))} is not a Docker id`);
  return v;
}

function obj(b: Body, k: string): Record<string, unknown> {
  const v = b[k];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) fail(`${k} must be an object`);
  return v as Record<string, unknown>;
}

export class DockerDriver {
  readonly stats = { networksCreated: 0, networksDeleted: 0, endpointsCreated: 0, endpointsDeleted: 0, addressesRequested: 0, addressesReleased: 0, refused: 0 };
  private readonly nets = new Map<string, NetMap>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: DockerDriverOptions) {
    const doc = readVersioned<{ networks: Record<string, NetMap> }>(o.store, DOCKER_STATE_FILE, (d) => {
      if (typeof d.networks !== 'object' || d.networks === null || Array.isArray(d.networks)) return 'networks is not an object';
      for (const v of Object.values(d.networks as Record<string, unknown>)) {
        if (!v || typeof (v as NetMap).network !== 'string') return 'a network entry lacks network';
      }
      return null;
    });
    for (const [k, v] of Object.entries(doc?.networks ?? {})) this.nets.set(k, v);
  }

  /** Every handler by its protocol method name. */
  handlers(): Record<string, (b: Body) => Promise<Body> | Body> {
    const s = (fn: (b: Body) => Promise<Body> | Body) => (b: Body) => this.serial(() => fn(b));
    return {
      'Plugin.Activate': () => ({ Implements: ['NetworkDriver', 'IpamDriver'] }),
      'NetworkDriver.GetCapabilities': () => ({ Scope: 'local', ConnectivityScope: 'global' }),
      'NetworkDriver.CreateNetwork': s((b) => this.createNetwork(b)),
      'NetworkDriver.DeleteNetwork': s((b) => this.deleteNetwork(b)),
      'NetworkDriver.CreateEndpoint': s((b) => this.createEndpoint(b)),
      'NetworkDriver.DeleteEndpoint': s((b) => this.deleteEndpoint(b)),
      'NetworkDriver.EndpointOperInfo': (b) => this.operInfo(b),
      'NetworkDriver.Join': s((b) => this.join(b)),
      'NetworkDriver.Leave': s((b) => this.leave(b)),
      'NetworkDriver.DiscoverNew': () => ({}),
      'NetworkDriver.DiscoverDelete': () => ({}),
      'NetworkDriver.ProgramExternalConnectivity': (b) => { this.known(b); return {}; },
      'NetworkDriver.RevokeExternalConnectivity': () => ({}),
      'IpamDriver.GetCapabilities': () => ({ RequiresMACAddress: false, RequiresRequestReplay: false }),
      'IpamDriver.GetDefaultAddressSpaces': () => ({ LocalDefaultAddressSpace: ADDRESS_SPACE, GlobalDefaultAddressSpace: ADDRESS_SPACE }),
      'IpamDriver.RequestPool': s((b) => this.requestPool(b)),
      'IpamDriver.ReleasePool': (b) => { this.pool(str(b, 'PoolID'), true); return {}; },
      'IpamDriver.RequestAddress': s((b) => this.requestAddress(b)),
      'IpamDriver.ReleaseAddress': s((b) => this.releaseAddress(b)),
    };
  }

  /** The Docker networks (NetworkIDs) mapped to vxmesh network `name`. */
  usersOf(name: string): string[] {
    return [...this.nets].filter(([, v]) => v.network === name).map(([k]) => k);
  }

  /** Docker networks this host has, by NetworkID. */
  networkMap(): Record<string, string> {
    return Object.fromEntries([...this.nets].map(([k, v]) => [k, v.network]));
  }

  private serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const ex = this.o.exclusive;
    const p = this.queue.catch(() => undefined).then(ex ? () => ex(async () => fn()) : fn);
    this.queue = p;
    return p.catch((e) => {
      this.stats.refused++;
      throw e;
    });
  }

  private m(): EndpointManager {
    const m = this.o.backend.manager;
    if (!m) fail(`the vxmesh agent on ${this.o.node} is still starting (endpoints not restored yet): try again`);
    return m;
  }

  private ipam(): Ipam {
    const i = this.o.backend.ipam;
    if (!i) fail(`the vxmesh agent on ${this.o.node} is still starting (IPAM not open yet): try again`);
    return i;
  }

  private ready(): void {
    const why = this.o.notReady();
    if (why) fail(`the vxmesh agent on ${this.o.node} is not ready (${why}): try again when \`vxmesh status\` says ready`);
  }

  private persist(): void {
    this.o.store.write(DOCKER_STATE_FILE, { version: 1, networks: Object.fromEntries(this.nets) });
  }

  private network(name: string): NetworkConfig {
    return this.m().network(name);
  }

  /** The vxmesh network of a Docker NetworkID, or a clear error. */
  private known(b: Body): NetworkConfig {
    const nid = id(b, 'NetworkID');
    const e = this.nets.get(nid);
    if (!e) fail(`Docker network ${nid.slice(0, 12)} is not known to the vxmesh agent on ${this.o.node} (created while another state directory was in use?): remove it and create it again`);
    return this.network(e.network);
  }

  // ---------------------------------------------------------------- network driver

  private async createNetwork(b: Body): Promise<Body> {
    this.ready();
    const nid = id(b, 'NetworkID');
    const opts = obj(obj(b, 'Options'), GENERIC_OPTIONS);
    for (const k of Object.keys(opts)) {
      if (!NETWORK_OPTIONS.includes(k)) fail(`unknown option --opt ${k} (vxmesh takes: ${NETWORK_OPTIONS.join(', ')})`);
    }
    const pools: string[] = [];
    const gateways: (string | null)[] = [];
    for (const k of ['IPv4Data', 'IPv6Data']) {
      const l = b[k];
      if (l === undefined || l === null) continue;
      if (!Array.isArray(l)) fail(`${k} must be a list`);
      for (const d of l) {
        const o = typeof d === 'object' && d !== null ? (d as Record<string, unknown>) : {};
        if (typeof o.Pool !== 'string') fail(`${k} entry without a Pool`);
        pools.push(o.Pool);
        gateways.push(typeof o.Gateway === 'string' && o.Gateway ? o.Gateway.split('/')[0] : null);
      }
    }
    const all = this.o.networks();
    const prev = this.nets.get(nid);
    if (prev && all.some((x) => x.name === prev.network)) return {}; // dockerd repeating itself
    if (opts.network === undefined && (opts.mtu !== undefined || opts.name !== undefined) && opts.vni === undefined) {
      fail('--opt mtu and --opt name are for creating a vxmesh network: give --opt vni=N too');
    }
    let net: NetworkConfig;
    let created = false;
    if (opts.network !== undefined) {
      if (typeof opts.network !== 'string' || !opts.network) fail('--opt network must name a vxmesh network');
      if (opts.vni !== undefined || opts.mtu !== undefined || opts.name !== undefined) fail('--opt network names an existing vxmesh network: leave out --opt vni, mtu and name');
      net = this.network(opts.network);
    } else if (opts.vni !== undefined) {
      const vni = Number(opts.vni);
      if (typeof opts.vni !== 'string' || !/^[0-9]{1,8}$/.test(opts.vni)) fail(`--opt vni: expected a VXLAN network identifier 1..16777215, got ${JSON.stringify(String(opts.vni).slice(0, 40))}`);
      const n = all.find((x) => x.vni === vni && (x.mode ?? 'overlay') === 'overlay');
      if (n) {
        if (opts.mtu !== undefined && Number(opts.mtu) !== n.mtu) fail(`vxmesh network ${n.name} (vni ${vni}) already exists with MTU ${n.mtu}, not ${String(opts.mtu)}`);
        if (opts.name !== undefined && opts.name !== n.name) fail(`vni ${vni} is already vxmesh network ${n.name}, not ${String(opts.name)}`);
        net = n;
      } else {
        const rt = this.o.runtime;
        if (!rt) fail(`no vxmesh network with VNI ${vni} on ${this.o.node} (this agent has: ${all.map((x) => `${x.name} vni ${x.vni}`).join(', ') || 'none'})`);
        if (!pools.length) fail(`--subnet is needed to create vxmesh network vni ${vni} (with --ipam-driver vxmesh)`);
        let mtu: number | undefined;
        if (opts.mtu !== undefined) {
          if (typeof opts.mtu !== 'string' || !/^[0-9]{1,5}$/.test(opts.mtu)) fail(`--opt mtu: expected a number of bytes, got ${JSON.stringify(String(opts.mtu).slice(0, 40))}`);
          mtu = Number(opts.mtu);
        }
        if (opts.name !== undefined && typeof opts.name !== 'string') fail('--opt name must be a string');
        // the same name on every host (gossip IPAM leases and endpoint records are per network name)
        const name = (opts.name as string | undefined) ?? `docker-${vni}`;
        net = await rt.create({ name, vni, subnets: pools.map((p) => canonical(p) ?? p), gateways, ...(mtu !== undefined ? { mtu } : {}), createdBy: `docker:${nid}` });
        created = true;
      }
    } else {
      const byPool = all.filter((x) => x.ipam && pools.some((p) => x.ipam!.subnets.includes(canonical(p) ?? '')));
      if (byPool.length !== 1) {
        const outside = pools.find((p) => !all.some((x) => x.ipam?.subnets.some((s) => overlaps(s, p))));
        if (outside) fail(`pool ${outside} is outside every vxmesh network's subnet: give --opt network=NAME, or --opt vni=N to create a vxmesh network with this subnet`);
        fail(`say which vxmesh network: --opt network=NAME (this agent has: ${all.map((x) => x.name).join(', ') || 'none'}), or --opt vni=N to create one`);
      }
      net = byPool[0];
    }
    const undo = async () => {
      if (created) await this.o.runtime!.remove(net.name).catch(() => undefined);
    };
    try {
      if (net.mode === 'macvlan') fail(`vxmesh network ${net.name} is macvlan: Docker endpoints need an overlay or bridge network`);
      for (const p of pools) {
        const c = parseCidr(p, false);
        if (!c) fail(`pool ${p} is not a CIDR`);
        if (!net.ipam) continue;
        const inside = net.ipam.subnets.map((s) => parseCidr(s)!).some((s) => s.family === c.family && c.prefix >= s.prefix && parseCidr(`${p.split('/')[0]}/${s.prefix}`, false)!.base === s.base);
        if (!inside) fail(`pool ${p} is outside vxmesh network ${net.name}'s subnet ${net.ipam.subnets.join(', ')}`);
      }
      if (prev && prev.network !== net.name) fail(`Docker network ${nid.slice(0, 12)} is already mapped to vxmesh network ${prev.network}`);
      if (!prev) {
        this.nets.set(nid, { network: net.name, createdAt: new Date().toISOString() });
        try {
          this.persist();
        } catch (e) {
          this.nets.delete(nid);
          throw e;
        }
        this.stats.networksCreated++;
      }
    } catch (e) {
      await undo();
      throw e;
    }
    return {};
  }

  private async deleteNetwork(b: Body): Promise<Body> {
    const nid = id(b, 'NetworkID');
    const e = this.nets.get(nid);
    if (!e) return {};
    // endpoints Docker forgot to delete (it deletes them first): removed with the network
    const m = this.o.backend.manager;
    if (m) {
      for (const ep of m.local().filter((x) => x.runtimePeer && x.network === e.network && x.labels['docker.network'] === nid)) {
        await m.detach({ network: ep.network, containerId: ep.containerId!, ifname: ep.ifname });
      }
    }
    // a vxmesh network created from `--opt vni=` goes with the last Docker network on it
    const rt = this.o.runtime;
    if (rt && rt.isRuntime(e.network) && ![...this.nets].some(([k, v]) => k !== nid && v.network === e.network)) {
      await rt.remove(e.network);
    }
    this.nets.delete(nid);
    try {
      this.persist();
    } catch (err) {
      this.nets.set(nid, e);
      throw err;
    }
    this.stats.networksDeleted++;
    return {};
  }

  private endpointOf(net: NetworkConfig, eid: string) {
    return this.m().local().find((x) => x.runtimePeer && x.network === net.name && x.containerId === eid);
  }

  private async createEndpoint(b: Body): Promise<Body> {
    this.ready();
    const net = this.known(b);
    const nid = id(b, 'NetworkID');
    const eid = id(b, 'EndpointID');
    const iface = obj(b, 'Interface');
    const address = str(iface, 'Address', false);
    const address6 = str(iface, 'AddressIPv6', false);
    const mac = str(iface, 'MacAddress', false);
    const existing = this.endpointOf(net, eid);
    if (existing) return { Interface: mac ? {} : { MacAddress: existing.mac } };
    const ips = [address, address6].filter((x) => x);
    const ipam = this.o.backend.ipam;
    const owners = new Set<string>();
    if (ipam && ipam.has(net.name)) {
      const alloc = ipam.allocations(net.name);
      for (const a of ips) {
        const o = alloc.get(a.split('/')[0]);
        if (o?.startsWith(IPAM_OWNER_PREFIX)) owners.add(o);
      }
    }
    // no MAC from Docker: one derived from the IPv4 address (as Docker's bridge driver does), so a
    // container restarted with the same address keeps its MAC and its peers' ARP caches stay right
    const v4 = address ? address.split('/')[0].split('.').map(Number) : null;
    const useMac = mac || (v4 && v4.length === 4 ? ['02', '42', ...v4.map((x) => x.toString(16).padStart(2, '0'))].join(':') : '');
    const v = await this.m().attach({
      network: net.name, runtimePeer: true, containerId: eid, name: `docker-${eid.slice(0, 12)}`,
      ip: ips.map((a) => a.split('/')[0]), ...(useMac ? { mac: useMac } : {}), adopt: [...owners],
      labels: { 'docker.network': nid },
    });
    this.stats.endpointsCreated++;
    const out: Record<string, string> = {};
    if (!mac) out.MacAddress = v.mac;
    if (!address && !address6) {
      const a4 = v.ips.find((a) => !a.includes(':'));
      const a6 = v.ips.find((a) => a.includes(':'));
      if (a4) out.Address = a4;
      if (a6) out.AddressIPv6 = a6;
    }
    return { Interface: out };
  }

  private async deleteEndpoint(b: Body): Promise<Body> {
    const nid = id(b, 'NetworkID');
    const eid = id(b, 'EndpointID');
    const e = this.nets.get(nid);
    const m = this.m();
    const ep = m.local().find((x) => x.runtimePeer && x.containerId === eid && (!e || x.network === e.network));
    if (!ep) return {};
    await m.detach({ network: ep.network, containerId: eid, ifname: ep.ifname });
    this.stats.endpointsDeleted++;
    return {};
  }

  private operInfo(b: Body): Body {
    const net = this.known(b);
    const ep = this.endpointOf(net, id(b, 'EndpointID'));
    if (!ep) fail(`no vxmesh endpoint for Docker endpoint ${str(b, 'EndpointID').slice(0, 12)}`);
    return { Value: { network: ep.network, name: ep.name, hostIf: ep.hostIf, mac: ep.mac, addresses: ep.addresses, node: this.o.node } };
  }

  private join(b: Body): Body {
    this.ready();
    const net = this.known(b);
    const eid = id(b, 'EndpointID');
    const sandbox = str(b, 'SandboxKey');
    const ep = this.endpointOf(net, eid);
    if (!ep) fail(`no vxmesh endpoint for Docker endpoint ${eid.slice(0, 12)} on network ${net.name}`);
    this.m().setSandbox(ep.id, sandbox);
    const gws = net.ipam?.gateways ?? [];
    const v4 = gws.find((g) => g && !g.includes(':'));
    const v6 = gws.find((g) => g && g.includes(':'));
    return {
      InterfaceName: { SrcName: ep.ifname, DstPrefix: 'eth' },
      ...(v4 && ep.addresses.some((a) => !a.includes(':')) ? { Gateway: v4 } : {}),
      ...(v6 && ep.addresses.some((a) => a.includes(':')) ? { GatewayIPv6: v6 } : {}),
      StaticRoutes: [],
      DisableGatewayService: true,
    };
  }

  private leave(b: Body): Body {
    const nid = id(b, 'NetworkID');
    const eid = id(b, 'EndpointID');
    const e = this.nets.get(nid);
    const m = this.o.backend.manager;
    const ep = e && m ? m.local().find((x) => x.runtimePeer && x.network === e.network && x.containerId === eid) : undefined;
    if (ep && m) m.setSandbox(ep.id, '');
    return {};
  }

  // ---------------------------------------------------------------- IPAM driver

  /**
   * PoolID → network + subnet (error when it is not ours). A pool of a network to be created from
   * `--opt vni=` (PoolID vxmesh / NEW_POOL / subnet) is the network with that subnet, null while there is none
   * (`pending`: that is no error).
   */
  private pool(poolId: string, pending: true): { net: NetworkConfig | null; subnet: string };
  private pool(poolId: string): { net: NetworkConfig; subnet: string };
  private pool(poolId: string, pending = false): { net: NetworkConfig | null; subnet: string } {
    const m = /^vxmesh\/([^/]+)\/(.+)$/.exec(poolId);
    if (!m) fail(`pool ${JSON.stringify(poolId.slice(0, 80))} is not a vxmesh pool`);
    if (m[1] === NEW_POOL) {
      const n = this.o.networks().find((x) => x.ipam?.subnets.includes(m[2])) ?? null;
      if (!n && !pending) fail(`pool ${m[2]}: no vxmesh network has this subnet (create the Docker network with --opt vni=N)`);
      return { net: n, subnet: m[2] };
    }
    const net = this.network(m[1]);
    if (!net.ipam?.subnets.includes(m[2])) fail(`pool ${poolId}: ${m[2]} is no longer a subnet of vxmesh network ${net.name}`);
    return { net, subnet: m[2] };
  }

  private requestPool(b: Body): Body {
    this.ready();
    const space = str(b, 'AddressSpace', false);
    if (space && space !== ADDRESS_SPACE) fail(`address space ${space} is not vxmesh's (${ADDRESS_SPACE})`);
    const want = str(b, 'Pool', false);
    if (str(b, 'SubPool', false)) fail('--ip-range is not supported by the vxmesh IPAM driver (each host allocates from its own blocks of the subnet)');
    const v6 = b.V6 === true;
    const opts = obj(b, 'Options');
    for (const k of Object.keys(opts)) if (k !== 'network') fail(`unknown IPAM option --ipam-opt ${k} (vxmesh takes: network)`);
    const all = this.o.networks().filter((n) => n.ipam);
    const fam = (s: string) => (s.includes(':') ? 6 : 4);
    let net: NetworkConfig;
    if (opts.network !== undefined) {
      if (typeof opts.network !== 'string') fail('--ipam-opt network must name a vxmesh network');
      net = this.network(opts.network);
      if (!net.ipam) fail(`vxmesh network ${net.name} has no subnet: the vxmesh IPAM driver needs one (set subnet: in the agent config)`);
    } else if (want) {
      const c = canonical(want);
      const n = all.find((x) => x.ipam!.subnets.includes(c ?? ''));
      if (!n) {
        const inside = all.find((x) => x.ipam!.subnets.some((s) => overlaps(s, want)));
        // a subnet of no network yet: the network may be created from `--opt vni=` (CreateNetwork
        // comes after the pool and the gateway), so the pool is handed out by subnet
        if (!inside && c && this.o.runtime) return { PoolID: `vxmesh/${NEW_POOL}/${c}`, Pool: c, Data: {} };
        if (inside) fail(`pool ${want} is not vxmesh network ${inside.name}'s subnet ${inside.ipam!.subnets.join(', ')}: give that subnet or leave --subnet out`);
        fail(`pool ${want} is outside every vxmesh network's subnet (this agent has: ${all.map((x) => `${x.name} ${x.ipam!.subnets.join(', ')}`).join('; ') || 'none'})`);
      }
      net = n;
    } else {
      const cands = all.filter((x) => x.ipam!.subnets.some((s) => fam(s) === (v6 ? 6 : 4)));
      if (cands.length !== 1) fail(`say which vxmesh network: --ipam-opt network=NAME (this agent has: ${all.map((x) => x.name).join(', ') || 'no network with a subnet'})`);
      net = cands[0];
    }
    const subnet = net.ipam!.subnets.find((s) => fam(s) === (v6 ? 6 : 4));
    if (!subnet) fail(`vxmesh network ${net.name} has no IPv${v6 ? 6 : 4} subnet`);
    if (want && canonical(want) !== subnet) {
      fail(overlaps(subnet, want) ? `pool ${want} is not vxmesh network ${net.name}'s subnet ${subnet}: give that subnet or leave --subnet out` : `pool ${want} is outside vxmesh network ${net.name}'s subnet ${subnet}`);
    }
    const i = net.ipam!.subnets.indexOf(subnet);
    const gw = net.ipam!.gateways[i];
    const prefix = subnet.split('/')[1];
    return { PoolID: `vxmesh/${net.name}/${subnet}`, Pool: subnet, Data: gw ? { [GATEWAY_OPTION]: `${gw}/${prefix}` } : {} };
  }

  private async requestAddress(b: Body): Promise<Body> {
    this.ready();
    const { net: found, subnet } = this.pool(str(b, 'PoolID'), true);
    const want = str(b, 'Address', false);
    const opts = obj(b, 'Options');
    const prefix = subnet.split('/')[1];
    if (!found) {
      // the network is still to be created (from `--opt vni=`): only its gateway is asked for
      if (opts.RequestAddressType !== GATEWAY_OPTION) fail(`pool ${subnet}: no vxmesh network has this subnet (create the Docker network with --opt vni=N)`);
      const c = parseCidr(subnet, false)!;
      if (want) {
        const w = canonicalIp(want);
        const wc = w ? parseCidr(`${w}/${c.prefix}`, false) : null;
        if (!w || !wc || wc.family !== c.family || wc.base !== c.base) fail(`gateway ${want} is not inside ${subnet}`);
        return { Address: `${w}/${prefix}`, Data: {} };
      }
      return { Address: `${firstHost(subnet)}/${prefix}`, Data: {} };
    }
    const net = found;
    const i = net.ipam!.subnets.indexOf(subnet);
    if (opts.RequestAddressType === GATEWAY_OPTION) {
      const gw = net.ipam!.gateways[i];
      if (!gw) fail(`vxmesh network ${net.name} has no gateway for ${subnet}: Docker needs one (set gateway: for the network in the agent config)`);
      if (want && canonicalIp(want) !== gw) fail(`gateway ${want} is not vxmesh network ${net.name}'s gateway ${gw}`);
      return { Address: `${gw}/${prefix}`, Data: {} };
    }
    let requested: string[] = [];
    if (want) {
      const c = this.m().checkAddress(net.name, want);
      requested = [c.address];
    }
    const owner = `${IPAM_OWNER_PREFIX}${randomBytes(6).toString('hex')}`;
    const got = await this.ipam().allocateIn(net.name, owner, subnet, requested);
    this.stats.addressesRequested++;
    return { Address: `${got[0].address}/${got[0].prefix}`, Data: {} };
  }

  private async releaseAddress(b: Body): Promise<Body> {
    const { net } = this.pool(str(b, 'PoolID'), true);
    if (!net) return {}; // the network was removed (or never created): nothing left to release
    const addr = str(b, 'Address').split('/')[0];
    const ipam = this.ipam();
    const owner = ipam.allocations(net.name).get(addr);
    // an endpoint's address is released with the endpoint (DeleteEndpoint comes first)
    if (owner?.startsWith(IPAM_OWNER_PREFIX)) {
      await ipam.release(net.name, owner);
      this.stats.addressesReleased++;
    }
    return {};
  }
}

/** The first address after the network address (the default gateway of a new network). */
function firstHost(cidr: string): string {
  const c = parseCidr(cidr, false)!;
  return formatIp(c.family, c.base + 1n);
}

function canonical(cidr: string): string | null {
  const c = parseCidr(cidr, false);
  return c ? formatCidr(c) : null;
}

/** Do two CIDRs overlap (one inside the other)? */
function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a, false);
  const y = parseCidr(b, false);
  if (!x || !y || x.family !== y.family) return false;
  const p = Math.min(x.prefix, y.prefix);
  return parseCidr(`${a.split('/')[0]}/${p}`, false)!.base === parseCidr(`${b.split('/')[0]}/${p}`, false)!.base;
}
