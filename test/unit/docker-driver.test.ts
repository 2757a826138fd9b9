/**
 * The Docker plugin as dockerd drives it: HTTP on a real unix socket served by the docker
 * extension, over the endpoints extension with in-memory links, anti-spoofing, IPAM and state.
 * Activate/capabilities; the call sequence of `docker network create` + `docker run` + `rm` +
 * `network rm` leaves nothing behind; --ip honoured / refused when in use; unknown network, pool
 * outside the subnet, malformed JSON, oversize body, unknown method, not ready → Err; a failed
 * CreateEndpoint leaves nothing; an agent restart finds the network map and the endpoint again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Agent } from '../../src/agent/agent';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config/types';
import { ConfigErrorList, parseConfig } from '../../src/config/load';
import { MemorySpoofGuard } from '../../src/endpoints/antispoof';
import { EndpointsExtension } from '../../src/endpoints/extension';
import { MemoryEndpointSystem } from '../../src/endpoints/system';
import { MemoryStateStore } from '../../src/ipam/state-store';
import { nullLogger } from '../../src/log';
import { DockerExtension } from '../../src/runtimes/docker/extension';
import { CONTENT_TYPE, MAX_REQUEST_BYTES } from '../../src/runtimes/docker/protocol';
import { DEFAULT_DOCKER_SOCKET } from '../../src/runtimes/docker/config';
import { validateAddedNetwork } from '../../src/config/load';
import { RuntimeNetworkError, type RuntimeNetworkApi, type RuntimeNetworkEntry, type RuntimeNetworkRequest } from '../../src/agent/runtime-networks';
import type { NetworkConfig } from '../../src/config/types';

/**
 * The agent's runtime networks as the driver sees them: create validates like the agent
 * (validateAddedNetwork) and hands the new config to the extensions' reload, as the agent does.
 */
class FakeRuntime implements RuntimeNetworkApi {
  config!: Config;
  exts: { reload(c: Config): Promise<void> | void }[] = [];
  readonly created: RuntimeNetworkRequest[] = [];
  readonly removed: string[] = [];
  failNext: string | null = null;
  private names = new Set<string>();
  bind(c: Config, exts: { reload(c: Config): Promise<void> | void }[]) { this.config = c; this.exts = exts; }
  private async apply(networks: NetworkConfig[]) {
    this.config = { ...this.config, networks };
    for (const e of this.exts) await e.reload(this.config);
  }
  async create(req: RuntimeNetworkRequest): Promise<NetworkConfig> {
    if (this.failNext) { const m = this.failNext; this.failNext = null; throw new RuntimeNetworkError(m); }
    const r = validateAddedNetwork(this.config, { name: req.name, vni: req.vni, bridge: `vxb${req.vni}`, tap: `vxt${req.vni}`, subnet: req.subnets, range: '198.18.248.0/26',
      ...(req.gateways?.[0] ? { gateway: req.gateways[0] } : {}), ...(req.mtu !== undefined ? { mtu: req.mtu } : {}) });
    if (!r.network) throw new RuntimeNetworkError(r.problems.map((p) => p.message).join('; '));
    this.created.push(req);
    this.names.add(req.name);
    await this.apply([...this.config.networks, r.network]);
    return r.network;
  }
  async remove(name: string): Promise<boolean> {
    if (!this.names.delete(name)) return false;
    this.removed.push(name);
    await this.apply(this.config.networks.filter((n) => n.name !== name));
    return true;
  }
  isRuntime(name: string) { return this.names.has(name); }
  users: ((n: string) => string[]) | null = null;
  setUsers(fn: ((n: string) => string[]) | null) { this.users = fn; }
  list(): RuntimeNetworkEntry[] { return [...this.names].map((n) => ({ spec: { name: n }, createdBy: 'docker', createdAt: '' })); }
}

function config(dir: string): Config {
  return {
    node: { name: 'h1', keyFile: null },
    underlay: { address: '198.18.0.1', family: 4, port: 4789, mtu: 1500, sourcePorts: 1 },
    networks: [
      { name: 'blue', vni: 42, bridge: 'br0', tap: 'vx-blue', mtu: 1450, encrypted: false,
        ipam: { subnets: ['198.19.0.0/24'], gateways: ['198.19.0.1'], hostBlocks: [26], ranges: ['198.19.0.0/26'] } },
      { name: 'green', vni: 44, bridge: 'br2', tap: 'vx-green', mtu: 1450, encrypted: false,
        ipam: { subnets: ['198.19.2.0/24', '2001:2:0:2::/64'], gateways: ['198.19.2.1', '2001:2:0:2::1'], hostBlocks: [26, 112], ranges: ['198.19.2.0/26', '2001:2:0:2::/112'] } },
      { name: 'red', vni: 43, bridge: 'br1', tap: 'vx-red', mtu: 1450, encrypted: false,
        ipam: { subnets: ['198.19.1.0/24'], gateways: [null], hostBlocks: [26], ranges: ['198.19.1.0/26'] } },
    ],
    peers: [], fdb: { ageingSeconds: 300, maxEntries: 1000 }, gossip: null,
    api: { listen: { host: '127.0.0.1', port: 0 }, socket: path.join(dir, 'vxmesh.sock') }, log: { level: 'error' }, source: null,
    docker: { enabled: true, socket: path.join(dir, 'plugins', 'vxmesh.sock') },
  } as Config;
}

interface Reply { status: number; type: string; body: Record<string, any> }

function call(socket: string, method: string, body?: unknown, raw?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = raw !== undefined ? Buffer.from(raw) : body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
    const req = http.request({ socketPath: socket, agent: false, method: 'POST', path: `/${method}`, headers: { 'content-length': data.length, accept: CONTENT_TYPE } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function setup(t: { after(fn: () => unknown): void }, runtime: FakeRuntime | null = null) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxm-docker-'));
  const system = new MemoryEndpointSystem();
  const guard = new MemorySpoofGuard();
  const store = new MemoryStateStore();
  let ready = true;
  // the agent's network-change queue (Agent.exclusive), as a plain mutex; `turns` counts the sections
  let queue: Promise<unknown> = Promise.resolve();
  const turns = { n: 0 };
  const exclusive = <T>(fn: () => Promise<T> | T): Promise<T> => {
    const p = queue.catch(() => undefined).then(() => { turns.n++; return fn(); });
    queue = p;
    return p;
  };
  const agent = { clock: systemClock, ready: () => ({ ok: ready, checks: { datapath: ready, 'ext:docker': true } }), api: null, state: { dir: null }, exclusive } as unknown as Agent;
  const cfg = config(dir);
  let ep: EndpointsExtension;
  let dk: DockerExtension;
  const start = async () => {
    ep = new EndpointsExtension(cfg, nullLogger, { store, system, guard, gossip: null });
    dk = new DockerExtension(cfg, nullLogger, { store });
    dk.connect({ endpoints: ep, runtimeNetworks: runtime });
    runtime?.bind(cfg, [ep, dk]);
    await ep.start(agent);
    await dk.start(agent);
  };
  const stop = async () => {
    await dk.stop();
    await ep.stop();
  };
  await start();
  t.after(async () => {
    await stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const sock = cfg.docker!.socket;
  return {
    dir, system, guard, store, sock, cfg, exclusive, turns,
    ep: () => ep, dk: () => dk, start, stop,
    setReady: (v: boolean) => { ready = v; },
    ok: async (method: string, body?: unknown) => {
      const r = await call(sock, method, body);
      assert.equal(r.status, 200, `${method}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.Err ?? r.body.Error, undefined, `${method}: ${r.body.Err ?? r.body.Error}`);
      return r.body;
    },
    err: async (method: string, body: unknown, re: RegExp) => {
      const r = await call(sock, method, body);
      assert.equal(r.status, 200);
      // libnetwork reads Error from its remote IPAM, Err from its remote network driver
      const key = method.startsWith('IpamDriver.') ? 'Error' : 'Err';
      assert.deepEqual(Object.keys(r.body), [key], `${method}: ${JSON.stringify(r.body)}`);
      assert.match(String(r.body[key]), re, `${method}: ${JSON.stringify(r.body)}`);
      return r.body;
    },
  };
}

const NID = 'a'.repeat(64);
const EID = 'b'.repeat(64);
const EID2 = 'c'.repeat(64);

test('Activate, capabilities and address spaces; replies carry the plugin content type', async (t) => {
  const s = await setup(t);
  const a = await call(s.sock, 'Plugin.Activate');
  assert.equal(a.status, 200);
  assert.equal(a.type, CONTENT_TYPE);
  assert.deepEqual(a.body, { Implements: ['NetworkDriver', 'IpamDriver'] });
  assert.deepEqual(await s.ok('NetworkDriver.GetCapabilities'), { Scope: 'local', ConnectivityScope: 'global' });
  assert.deepEqual(await s.ok('IpamDriver.GetCapabilities'), { RequiresMACAddress: false, RequiresRequestReplay: false });
  assert.deepEqual(await s.ok('IpamDriver.GetDefaultAddressSpaces'), { LocalDefaultAddressSpace: 'vxmesh', GlobalDefaultAddressSpace: 'vxmesh' });
  assert.equal(fs.statSync(s.sock).mode & 0o777, 0o600);
});

/** Docker's calls for `network create` (vxmesh IPAM) + `run`; returns the container's address. */
async function createAndRun(s: Awaited<ReturnType<typeof setup>>, eid: string, ip?: string): Promise<{ address: string; join: Record<string, any>; mac: string }> {
  const addr = await s.ok('IpamDriver.RequestAddress', { PoolID: 'vxmesh/blue/198.19.0.0/24', ...(ip ? { Address: ip } : {}), Options: {} });
  const ce = await s.ok('NetworkDriver.CreateEndpoint', { NetworkID: NID, EndpointID: eid, Interface: { Address: addr.Address, AddressIPv6: '', MacAddress: '' }, Options: {} });
  assert.match(ce.Interface.MacAddress, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  assert.equal(ce.Interface.Address, undefined, 'an address Docker gave is not answered back');
  const join = await s.ok('NetworkDriver.Join', { NetworkID: NID, EndpointID: eid, SandboxKey: `/var/run/docker/netns/${eid.slice(0, 12)}`, Options: {} });
  await s.ok('NetworkDriver.ProgramExternalConnectivity', { NetworkID: NID, EndpointID: eid, Options: {} });
  const oi = await s.ok('NetworkDriver.EndpointOperInfo', { NetworkID: NID, EndpointID: eid });
  assert.equal(oi.Value.addresses[0], addr.Address);
  return { address: addr.Address, join, mac: ce.Interface.MacAddress };
}

async function createNetwork(s: Awaited<ReturnType<typeof setup>>): Promise<void> {
  const pool = await s.ok('IpamDriver.RequestPool', { AddressSpace: 'vxmesh', Pool: '', SubPool: '', Options: { network: 'blue' }, V6: false });
  assert.deepEqual(pool, { PoolID: 'vxmesh/blue/198.19.0.0/24', Pool: '198.19.0.0/24', Data: { 'com.docker.network.gateway': '198.19.0.1/24' } });
  await s.ok('NetworkDriver.CreateNetwork', { NetworkID: NID, Options: { 'com.docker.network.generic': {} }, IPv4Data: [{ AddressSpace: 'vxmesh', Pool: '198.19.0.0/24', Gateway: '198.19.0.1/24' }], IPv6Data: [] });
}

test('network create + run + rm + network rm: an announced, anti-spoofed endpoint, then nothing left', async (t) => {
  const s = await setup(t);
  await createNetwork(s);
  const { address, join, mac } = await createAndRun(s, EID);
  assert.equal(address, '198.19.0.2/24');
  assert.equal(mac, '02:42:c6:13:00:02', 'no MAC from Docker: derived from the address (kept when a container restarts with it)');
  assert.deepEqual(join.InterfaceName.DstPrefix, 'eth');
  assert.equal(join.Gateway, '198.19.0.1');
  assert.equal(join.DisableGatewayService, true);
  const e = s.ep().manager!.local();
  assert.equal(e.length, 1);
  assert.equal(e[0].containerId, EID);
  assert.equal(e[0].ifname, join.InterfaceName.SrcName);
  assert.equal(e[0].netns, `/var/run/docker/netns/${EID.slice(0, 12)}`);
  assert.ok(s.system.links.has(`|${e[0].hostIf}`) && s.system.links.has(`|${e[0].ifname}`), 'veth pair in the agent namespace');
  assert.equal(s.system.links.get(`|${e[0].ifname}`)!.mac, mac);
  assert.equal(s.system.masterOf(e[0].hostIf!), 'br0');
  assert.deepEqual(s.guard.ports.get(e[0].hostIf!), { mac, ips: ['198.19.0.2'] });
  assert.equal(s.ep().ipam!.allocations('blue').get('198.19.0.2'), `blue/${e[0].id}`, 'the endpoint owns the address');
  assert.equal((await s.ep().manager!.list())[0].name, `docker-${EID.slice(0, 12)}`);

  await s.ok('NetworkDriver.RevokeExternalConnectivity', { NetworkID: NID, EndpointID: EID });
  await s.ok('NetworkDriver.Leave', { NetworkID: NID, EndpointID: EID });
  await s.ok('NetworkDriver.DeleteEndpoint', { NetworkID: NID, EndpointID: EID });
  await s.ok('IpamDriver.ReleaseAddress', { PoolID: 'vxmesh/blue/198.19.0.0/24', Address: '198.19.0.2' });
  await s.ok('NetworkDriver.DeleteEndpoint', { NetworkID: NID, EndpointID: EID }); // repeated: fine
  await s.ok('NetworkDriver.DeleteNetwork', { NetworkID: NID });
  await s.ok('IpamDriver.ReleaseAddress', { PoolID: 'vxmesh/blue/198.19.0.0/24', Address: '198.19.0.1' });
  await s.ok('IpamDriver.ReleasePool', { PoolID: 'vxmesh/blue/198.19.0.0/24' });
  assert.equal(s.system.links.size, 0);
  assert.equal(s.guard.ports.size, 0);
  assert.equal(s.ep().manager!.local().length, 0);
  assert.equal(s.ep().ipam!.allocations('blue').size, 0);
  assert.deepEqual(s.dk().driver!.networkMap(), {});
});

test('--ip is honoured; an address in use, outside the subnet or the gateway is refused; nothing half-made', async (t) => {
  const s = await setup(t);
  await createNetwork(s);
  const { address } = await createAndRun(s, EID, '198.19.0.40');
  assert.equal(address, '198.19.0.40/24');
  await s.err('IpamDriver.RequestAddress', { PoolID: 'vxmesh/blue/198.19.0.0/24', Address: '198.19.0.40' }, /198\.19\.0\.40 is already taken/);
  await s.err('IpamDriver.RequestAddress', { PoolID: 'vxmesh/blue/198.19.0.0/24', Address: '198.19.5.1' }, /outside network blue's subnet/);
  await s.err('IpamDriver.RequestAddress', { PoolID: 'vxmesh/blue/198.19.0.0/24', Address: '198.19.0.1' }, /reserved/);
  await s.err('IpamDriver.RequestAddress', { PoolID: 'vxmesh/blue/198.19.0.0/24', Address: 'nonsense' }, /bad address/);
  assert.equal(s.ep().ipam!.allocations('blue').size, 1);
  // a failed CreateEndpoint (the veth cannot be made) releases the adopted address, leaves no link
  const a = await s.ok('IpamDriver.RequestAddress', { PoolID: 'vxmesh/blue/198.19.0.0/24' });
  s.system.failNext = 'veth';
  await s.err('NetworkDriver.CreateEndpoint', { NetworkID: NID, EndpointID: EID2, Interface: { Address: a.Address } }, /injected/);
  assert.equal(s.ep().manager!.local().length, 1);
  assert.equal(s.system.links.size, 2);
  assert.equal(s.ep().ipam!.allocations('blue').size, 1, 'the address went back');
  await s.ok('IpamDriver.ReleaseAddress', { PoolID: 'vxmesh/blue/198.19.0.0/24', Address: a.Address });
  // a MAC Docker gives is used and not answered back
  const b = await s.ok('IpamDriver.RequestAddress', { PoolID: 'vxmesh/blue/198.19.0.0/24' });
  const ce = await s.ok('NetworkDriver.CreateEndpoint', { NetworkID: NID, EndpointID: EID2, Interface: { Address: b.Address, MacAddress: '02:42:c6:13:00:09' } });
  assert.deepEqual(ce.Interface, {});
  assert.ok(s.ep().manager!.local().some((e) => e.mac === '02:42:c6:13:00:09'));
});

test('bad input: unknown network, pools outside the subnet, options, unknown ids → Err; malformed, oversize, unknown method', async (t) => {
  const s = await setup(t);
  await s.err('IpamDriver.RequestPool', { Options: { network: 'nope' } }, /unknown network "nope" \(this agent has: blue, green, red\)/);
  await s.err('IpamDriver.RequestPool', { Pool: '198.19.0.0/25' }, /not vxmesh network blue's subnet 198\.19\.0\.0\/24/);
  await s.err('IpamDriver.RequestPool', { Pool: '198.18.200.0/24' }, /outside every vxmesh network's subnet/);
  await s.err('IpamDriver.RequestPool', { Pool: '198.19.1.0/24', Options: { network: 'blue' } }, /outside vxmesh network blue's subnet/);
  await s.err('IpamDriver.RequestPool', {}, /say which vxmesh network: --ipam-opt network=NAME/);
  await s.err('IpamDriver.RequestPool', { Options: { network: 'blue' }, V6: true }, /no IPv6 subnet/);
  await s.err('IpamDriver.RequestPool', { Options: { network: 'blue' }, SubPool: '198.19.0.0/28' }, /--ip-range is not supported/);
  await s.err('IpamDriver.RequestPool', { Options: { colour: 'x' } }, /unknown IPAM option --ipam-opt colour/);
  await s.err('IpamDriver.RequestAddress', { PoolID: 'vxmesh/red/198.19.1.0/24', Options: { RequestAddressType: 'com.docker.network.gateway' } }, /no gateway.*set gateway:/);
  await s.err('IpamDriver.RequestAddress', { PoolID: 'other/x' }, /not a vxmesh pool/);
  await s.err('NetworkDriver.CreateNetwork', { NetworkID: NID, Options: { 'com.docker.network.generic': { network: 'nope' } } }, /unknown network "nope"/);
  await s.err('NetworkDriver.CreateNetwork', { NetworkID: NID, Options: { 'com.docker.network.generic': { vni: '99' } } }, /no vxmesh network with VNI 99/);
  await s.err('NetworkDriver.CreateNetwork', { NetworkID: NID, Options: { 'com.docker.network.generic': { bogus: '9000' } } }, /unknown option --opt bogus \(vxmesh takes: network, vni, mtu, name\)/);
  await s.err('NetworkDriver.CreateNetwork', { NetworkID: NID, Options: { 'com.docker.network.generic': { mtu: '9000' } } }, /--opt mtu and --opt name are for creating a vxmesh network: give --opt vni=N too/);
  await s.err('NetworkDriver.CreateNetwork', { NetworkID: NID, Options: { 'com.docker.network.generic': { network: 'blue' } }, IPv4Data: [{ Pool: '198.18.9.0/24' }] }, /pool 198\.18\.9\.0\/24 is outside vxmesh network blue's subnet/);
  await s.err('NetworkDriver.CreateNetwork', { NetworkID: NID, IPv4Data: [{ Pool: '198.18.9.0/24' }] }, /pool 198\.18\.9\.0\/24 is outside every vxmesh network's subnet: give --opt network=NAME, or --opt vni=N/);
  await s.err('NetworkDriver.CreateNetwork', { NetworkID: 'x y' }, /not a Docker id/);
  await s.err('NetworkDriver.CreateEndpoint', { NetworkID: NID, EndpointID: EID, Interface: { Address: '198.19.0.9/24' } }, /is not known to the vxmesh agent/);
  await s.err('NetworkDriver.Join', { NetworkID: NID, EndpointID: EID, SandboxKey: '/x' }, /is not known/);
  assert.deepEqual(s.dk().driver!.networkMap(), {}, 'no network was mapped');
  // by VNI, and by pool alone
  await s.ok('NetworkDriver.CreateNetwork', { NetworkID: NID, Options: { 'com.docker.network.generic': { vni: '43' } } });
  await s.ok('NetworkDriver.CreateNetwork', { NetworkID: 'd'.repeat(64), IPv4Data: [{ Pool: '198.19.0.0/24' }] });
  assert.deepEqual(s.dk().driver!.networkMap(), { [NID]: 'red', ['d'.repeat(64)]: 'blue' });

  const bad = await call(s.sock, 'NetworkDriver.CreateNetwork', undefined, '{"NetworkID": ');
  assert.equal(bad.status, 400);
  assert.match(bad.body.Err, /not JSON/);
  const arr = await call(s.sock, 'IpamDriver.RequestPool', undefined, '[1,2]');
  assert.equal(arr.status, 400);
  assert.match(arr.body.Err, /must be a JSON object/);
  const big = await call(s.sock, 'NetworkDriver.CreateNetwork', undefined, JSON.stringify({ NetworkID: NID, Options: { pad: 'x'.repeat(MAX_REQUEST_BYTES) } }));
  assert.equal(big.status, 413);
  assert.match(big.body.Err, /larger than the limit of 65536 bytes/);
  const unk = await call(s.sock, 'NetworkDriver.AllocateNetwork', {});
  assert.equal(unk.status, 404);
  assert.match(unk.body.Err, /does not implement NetworkDriver\.AllocateNetwork/);
  assert.equal((await call(s.sock, 'Plugin.Activate')).status, 200, 'still serving after all that');
  const st = s.dk().status() as { requests: { malformed: number; oversize: number; unknown: number } };
  assert.deepEqual([st.requests.malformed, st.requests.oversize, st.requests.unknown], [2, 1, 1]);
});

test('not ready: creating calls answer an Err Docker shows; deletes and Activate still work', async (t) => {
  const s = await setup(t);
  await createNetwork(s);
  s.setReady(false);
  assert.equal((await call(s.sock, 'Plugin.Activate')).status, 200);
  await s.err('IpamDriver.RequestAddress', { PoolID: 'vxmesh/blue/198.19.0.0/24' }, /vxmesh agent on h1 is not ready \(datapath\)/);
  await s.err('NetworkDriver.CreateEndpoint', { NetworkID: NID, EndpointID: EID, Interface: { Address: '198.19.0.9/24' } }, /not ready/);
  await s.ok('NetworkDriver.DeleteNetwork', { NetworkID: NID });
  assert.equal(s.ep().ipam!.allocations('blue').size, 0);
});

test('agent restart: the network map and the endpoint are found again, the socket is re-created', async (t) => {
  const s = await setup(t);
  await createNetwork(s);
  const { address } = await createAndRun(s, EID);
  const before = s.ep().manager!.local()[0];
  await s.stop();
  assert.equal(fs.existsSync(s.sock), false, 'socket removed at stop');
  fs.writeFileSync(s.sock, ''); // a stale file left by a crash is replaced
  await s.start();
  const after = s.ep().manager!.local();
  assert.equal(after.length, 1);
  assert.equal(after[0].id, before.id);
  assert.equal(after[0].runtimePeer, true);
  assert.equal(s.ep().ipam!.allocations('blue').get(address.split('/')[0]), `blue/${before.id}`);
  assert.deepEqual(s.dk().driver!.networkMap(), { [NID]: 'blue' });
  // no Activate again (dockerd cached it): the next call just works
  const oi = await s.ok('NetworkDriver.EndpointOperInfo', { NetworkID: NID, EndpointID: EID });
  assert.equal(oi.Value.hostIf, before.hostIf);
  await s.ok('NetworkDriver.Leave', { NetworkID: NID, EndpointID: EID });
  await s.ok('NetworkDriver.DeleteEndpoint', { NetworkID: NID, EndpointID: EID });
  assert.equal(s.system.links.size, 0);
  assert.equal(s.ep().ipam!.allocations('blue').size, 0);
});

test('dual stack: one pool per family, both addresses adopted, both gateways in Join; an IPv4-only Docker network gets no IPv6 address', async (t) => {
  const s = await setup(t);
  const p4 = await s.ok('IpamDriver.RequestPool', { Options: { network: 'green' } });
  const p6 = await s.ok('IpamDriver.RequestPool', { Options: { network: 'green' }, V6: true });
  assert.deepEqual([p4.PoolID, p6.PoolID, p6.Data], ['vxmesh/green/198.19.2.0/24', 'vxmesh/green/2001:2:0:2::/64', { 'com.docker.network.gateway': '2001:2:0:2::1/64' }]);
  await s.ok('NetworkDriver.CreateNetwork', { NetworkID: NID, IPv4Data: [{ Pool: p4.Pool }], IPv6Data: [{ Pool: p6.Pool }] });
  const a4 = await s.ok('IpamDriver.RequestAddress', { PoolID: p4.PoolID });
  const a6 = await s.ok('IpamDriver.RequestAddress', { PoolID: p6.PoolID });
  assert.deepEqual([a4.Address, a6.Address], ['198.19.2.2/24', '2001:2:0:2::2/64']);
  await s.ok('NetworkDriver.CreateEndpoint', { NetworkID: NID, EndpointID: EID, Interface: { Address: a4.Address, AddressIPv6: a6.Address } });
  const j = await s.ok('NetworkDriver.Join', { NetworkID: NID, EndpointID: EID, SandboxKey: '/x' });
  assert.deepEqual([j.Gateway, j.GatewayIPv6], ['198.19.2.1', '2001:2:0:2::1']);
  const e = s.ep().manager!.local()[0];
  assert.deepEqual(e.addresses, ['198.19.2.2/24', '2001:2:0:2::2/64']);
  assert.deepEqual([...s.ep().ipam!.allocations('green').values()], [`green/${e.id}`, `green/${e.id}`]);
  // IPv4 only
  const b4 = await s.ok('IpamDriver.RequestAddress', { PoolID: p4.PoolID });
  await s.ok('NetworkDriver.CreateEndpoint', { NetworkID: NID, EndpointID: EID2, Interface: { Address: b4.Address } });
  const e2 = s.ep().manager!.local().find((x) => x.containerId === EID2)!;
  assert.deepEqual(e2.addresses, ['198.19.2.3/24']);
  const j2 = await s.ok('NetworkDriver.Join', { NetworkID: NID, EndpointID: EID2, SandboxKey: '/y' });
  assert.equal(j2.GatewayIPv6, undefined);
});

// ---------------------------------------------------------------- config

const yaml = (docker: string) => `node: a\nunderlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\n${docker}`;
const noLookup = { mtuLookup: () => null, hostname: 'h' };

function configErrors(t: string): { path: string; message: string }[] {
  try {
    parseConfig(t, noLookup);
  } catch (e) {
    return e instanceof ConfigErrorList ? e.errors.map((x) => ({ path: x.path ?? '', message: x.message })) : [{ path: (e as { path?: string }).path ?? '', message: (e as Error).message }];
  }
  assert.fail('accepted');
}

test('config docker.*: off when absent, on with the default socket when given; bad values name their field', () => {
  assert.equal(parseConfig(yaml(''), noLookup).docker, undefined);
  assert.deepEqual(parseConfig(yaml('docker: {}\n'), noLookup).docker, { enabled: true, socket: DEFAULT_DOCKER_SOCKET });
  assert.deepEqual(parseConfig(yaml('docker: {enabled: false, socket: /run/x/../docker/plugins/vx.sock}\n'), noLookup).docker, { enabled: false, socket: '/run/docker/plugins/vx.sock' });
  for (const [d, re] of [
    ['docker: {enabled: yes-please}', /expected true or false/],
    ['docker: {socket: relative.sock}', /absolute unix socket path/],
    ['docker: {socket: /run/docker/plugins/vxmesh}', /ending in \.sock/],
    [`docker: {socket: /${'x'.repeat(120)}.sock}`, /at most 107 bytes/],
    ['docker: {sockt: /a.sock}', /unknown key.*did you mean "socket"/],
    ['docker: 3', /expected a mapping/],
  ] as const) {
    const errs = configErrors(yaml(`${d}\n`));
    assert.equal(errs.length, 1, JSON.stringify(errs));
    assert.match(errs[0].path, /^docker/);
    assert.match(errs[0].message, re);
  }
});

test('--opt vni=N --subnet: the pool and gateway before the network exists, then a runtime network; run on it; network rm removes it', async (t) => {
  const rt = new FakeRuntime();
  const s = await setup(t, rt);
  const POOL = '198.18.248.0/24';
  const GW = 'com.docker.network.gateway';
  // dockerd: RequestPool, gateway RequestAddress, then CreateNetwork
  const pool = await s.ok('IpamDriver.RequestPool', { AddressSpace: 'vxmesh', Pool: POOL, Options: {}, V6: false });
  assert.deepEqual(pool, { PoolID: `vxmesh/*/${POOL}`, Pool: POOL, Data: {} });
  assert.deepEqual(await s.ok('IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '198.18.248.1', Options: { RequestAddressType: GW } }), { Address: '198.18.248.1/24', Data: {} });
  assert.deepEqual(await s.ok('IpamDriver.RequestAddress', { PoolID: pool.PoolID, Options: { RequestAddressType: GW } }), { Address: '198.18.248.1/24', Data: {} }, 'no --gateway: the first address');
  await s.err('IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '198.18.9.1', Options: { RequestAddressType: GW } }, /gateway 198\.18\.9\.1 is not inside 198\.18\.248\.0\/24/);
  await s.err('IpamDriver.RequestAddress', { PoolID: pool.PoolID, Options: {} }, /no vxmesh network has this subnet \(create the Docker network with --opt vni=N\)/);
  const create = (nid: string, generic: Record<string, string>) => ({ NetworkID: nid, Options: { 'com.docker.network.generic': generic }, IPv4Data: [{ AddressSpace: 'vxmesh', Pool: POOL, Gateway: '198.18.248.1/24' }] });
  // refusals: bad VNI text, mtu without vni, the agent refusing (nothing mapped)
  await s.err('NetworkDriver.CreateNetwork', create(NID, { vni: 'abc' }), /--opt vni: expected a VXLAN network identifier 1\.\.16777215, got "abc"/);
  await s.err('NetworkDriver.CreateNetwork', create(NID, { vni: '4242', mtu: 'big' }), /--opt mtu: expected a number of bytes, got "big"/);
  rt.failNext = 'cannot create vxmesh network docker-4242: --opt mtu: expected an integer 1280..1450, got 9000';
  await s.err('NetworkDriver.CreateNetwork', create(NID, { vni: '4242', mtu: '9000' }), /--opt mtu: expected an integer 1280\.\.1450, got 9000/);
  await s.err('NetworkDriver.CreateNetwork', { NetworkID: NID, Options: { 'com.docker.network.generic': { vni: '4242' } } }, /--subnet is needed to create vxmesh network vni 4242/);
  assert.deepEqual(s.dk().driver!.networkMap(), {});
  assert.deepEqual(rt.created, []);
  // created
  assert.deepEqual(await s.ok('NetworkDriver.CreateNetwork', create(NID, { vni: '4242', mtu: '1400' })), {});
  assert.deepEqual(rt.created, [{ name: 'docker-4242', vni: 4242, subnets: [POOL], gateways: ['198.18.248.1'], mtu: 1400, createdBy: `docker:${NID}` }]);
  assert.deepEqual(s.dk().driver!.networkMap(), { [NID]: 'docker-4242' });
  assert.deepEqual(await s.ok('NetworkDriver.CreateNetwork', create(NID, { vni: '4242', mtu: '1400' })), {}, 'a repeated CreateNetwork is answered, nothing made twice');
  assert.equal(rt.created.length, 1);
  // a second Docker network with the same VNI maps to it; a different MTU or name is refused
  const NID2 = 'b'.repeat(64);
  await s.err('NetworkDriver.CreateNetwork', create(NID2, { vni: '4242', mtu: '1300' }), /already exists with MTU 1400, not 1300/);
  await s.ok('NetworkDriver.CreateNetwork', create(NID2, { vni: '4242' }));
  // an address of the pool, an endpoint on it
  const a = await s.ok('IpamDriver.RequestAddress', { PoolID: pool.PoolID, Options: {} });
  assert.match(a.Address, /^198\.18\.248\.\d+\/24$/);
  const ep = await s.ok('NetworkDriver.CreateEndpoint', { NetworkID: NID, EndpointID: 'e'.repeat(64), Interface: { Address: a.Address } });
  assert.match(ep.Interface.MacAddress, /^02:42:c6:12:f8:/);
  const j = await s.ok('NetworkDriver.Join', { NetworkID: NID, EndpointID: 'e'.repeat(64), SandboxKey: '/var/run/docker/netns/x' });
  assert.equal(j.Gateway, '198.18.248.1');
  await s.ok('NetworkDriver.Leave', { NetworkID: NID, EndpointID: 'e'.repeat(64) });
  await s.ok('NetworkDriver.DeleteEndpoint', { NetworkID: NID, EndpointID: 'e'.repeat(64) });
  await s.ok('IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: a.Address });
  // network rm: the runtime network goes with the last Docker network on it
  await s.ok('NetworkDriver.DeleteNetwork', { NetworkID: NID });
  assert.deepEqual(rt.removed, [], 'another Docker network still uses it');
  await s.ok('NetworkDriver.DeleteNetwork', { NetworkID: NID2 });
  assert.deepEqual(rt.removed, ['docker-4242']);
  assert.deepEqual(s.dk().driver!.networkMap(), {});
  // dockerd releases the gateway and the pool after the network is gone: answered, no error
  assert.deepEqual(await s.ok('IpamDriver.ReleaseAddress', { PoolID: pool.PoolID, Address: '198.18.248.1/24' }), {});
  assert.deepEqual(await s.ok('IpamDriver.ReleasePool', { PoolID: pool.PoolID }), {});
  // a configured network is never removed by network rm
  await s.ok('NetworkDriver.CreateNetwork', { NetworkID: NID, Options: { 'com.docker.network.generic': { vni: '42' } } });
  await s.ok('NetworkDriver.DeleteNetwork', { NetworkID: NID });
  assert.deepEqual(rt.removed, ['docker-4242']);
  assert.ok(rt.config.networks.some((n) => n.name === 'blue'));
});

test('without runtime networks (not connected) a subnet of no network is still refused at RequestPool', async (t) => {
  const s = await setup(t);
  await s.err('IpamDriver.RequestPool', { AddressSpace: 'vxmesh', Pool: '198.18.248.0/24', Options: {}, V6: false }, /outside every vxmesh network's subnet/);
});

test('a CreateEndpoint waits for a network change in flight (a SIGHUP reload holding the agent\'s turn), and the other way round', async (t) => {
  const s = await setup(t);
  await createNetwork(s);
  // a reload in its turn (held open): Docker's requests wait for it
  let open!: () => void;
  const held = s.exclusive(() => new Promise<void>((r) => { open = r; }));
  let answered = false;
  const create = call(s.sock, 'NetworkDriver.CreateEndpoint', { NetworkID: NID, EndpointID: EID, Interface: { Address: '198.19.0.9/24' } }).then((r) => { answered = true; return r; });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(answered, false, 'CreateEndpoint waits for the reload');
  assert.equal(s.ep().manager!.local().length, 0, 'nothing attached while the reload runs');
  open();
  await held;
  const r = await create;
  assert.equal(r.body.Err, undefined, JSON.stringify(r.body));
  assert.equal(s.ep().manager!.local().length, 1);
  // and a reload asked for while a request runs comes after it
  const before = s.turns.n;
  await s.ok('NetworkDriver.DeleteEndpoint', { NetworkID: NID, EndpointID: EID });
  assert.ok(s.turns.n > before, 'DeleteEndpoint ran in the agent\'s turn');
});
