/**
 * Same-host enforcement: the data path's hairpin stage (memory twins) — a frame between two local
 * endpoints is checked and written back to the TAP instead of going to a peer, denied ones are
 * `policy_denied`, a forged source is `spoofed`; super-frames are written back as their segments
 * (the addon's gsoSegment); the nftables ruleset of local-ports.ts; the extension turns the port
 * rules on and off with the network's policies (data path first on the way in, last on the way out).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FakeClock } from '../../src/clock';
import type { Agent } from '../../src/agent/agent';
import { parseConfig } from '../../src/config/load';
import type { Endpoint, NetworkConfig } from '../../src/config/types';
import { Datapath } from '../../src/dataplane/datapath';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { loadAddon } from '../../src/native/addon';
import { ipBytes } from '../../src/ipam/cidr';
import { CompiledPolicy } from '../../src/policy/compile';
import { parsePolicy } from '../../src/policy/document';
import { PC_HAIRPIN, PC_SPOOFED, PolicyEnforcer } from '../../src/policy/enforcer';
import { PolicyExtension, type PolicyEndpointRecord } from '../../src/policy/extension';
import { MemoryLocalPorts, rulesetFor } from '../../src/policy/local-ports';
import { frame4, tcp } from '../helpers/frames';

const PORT = 4789;
const BLUE = 42;
const MAC = { web: 0x020000000101, db: 0x020000000201, other: 0x020000000301, remote: 0x020000000401 };
const macText = (n: number) => n.toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
const DB_INGRESS = parsePolicy('name: db\nnetwork: blue\nendpoints: {role: db}\ningress:\n  - from: [{endpoints: {role: web}}]\n    ports: [{protocol: TCP, port: 5432}]\n');

function host(segment?: ConstructorParameters<typeof PolicyEnforcer>[0]['segment']) {
  const clock = new FakeClock(0);
  const reactor = new MemoryReactor();
  const net = new MemoryUdpNetwork({ reactor, clock });
  const ADDRS = ['198.18.0.1', '198.18.0.2'];
  const ep = (address: string): Endpoint => ({ address, port: PORT, family: 4 });
  const udp = net.attach(ADDRS[0], PORT, 1);
  const peerUdp = net.attach(ADDRS[1], PORT, 1);
  const config: NetworkConfig = { name: 'blue', vni: BLUE, bridge: 'br-blue', tap: 'vx-blue', mtu: 1450, encrypted: false };
  const tap = new MemoryTap({ name: config.tap, mac: Buffer.from([0x02, 0xee, 0, 0, 0, 1]), reactor });
  const dp = new Datapath({
    networks: [{ config, tap }], udp, clock, underlay: { family: 4, mtu: 1500, port: PORT, address: ADDRS[0] },
    peers: ADDRS.map(ep), fdb: { ageingSeconds: 300, maxEntries: 1024 },
  });
  dp.start();
  const endpoints = [
    { name: 'web', labels: { role: 'web' }, ips: [ipBytes('198.19.0.1')!], host: 'h1', hostAddr: ADDRS[0], mac: macText(MAC.web), port: 'vweb' },
    { name: 'db', labels: { role: 'db' }, ips: [ipBytes('198.19.0.2')!], host: 'h1', hostAddr: ADDRS[0], mac: macText(MAC.db), port: 'vdb' },
    { name: 'other', labels: { role: 'other' }, ips: [ipBytes('198.19.0.3')!], host: 'h1', hostAddr: ADDRS[0], mac: macText(MAC.other), port: 'voth' },
  ];
  const enforcer = new PolicyEnforcer({ clock, seed: 1, segment });
  enforcer.setCompiled(new CompiledPolicy({ policies: [DB_INGRESS], defaultDeny: false }, endpoints, { version: 1, seed: 1 }));
  enforcer.setLocal(endpoints.map((e, index) => ({ mac: e.mac, index })));
  assert.ok(dp.setPolicyFilter(BLUE, enforcer));
  let wire = 0;
  peerUdp.onReadable(() => {
    const b = { slab: Buffer.alloc(64 * 2048), slotSize: 2048, headroom: 0, slots: 64, lens: new Uint32Array(64), addrs: Buffer.alloc(64 * 18) };
    wire += peerUdp.recvBatch(b);
  });
  return { dp, tap, enforcer, run: () => reactor.run(), wire: () => wire };
}

test('same host: an allowed frame between two local endpoints is written back to the TAP, not sent to a peer', () => {
  const h = host();
  const f = frame4('198.19.0.1', '198.19.0.2', 6, tcp(40000, 5432), MAC.db, MAC.web);
  h.tap.inject(f);
  h.run();
  const w = h.tap.takeWritten();
  assert.equal(w.length, 1, 'written back to the TAP');
  assert.ok(w[0].equals(f), 'unchanged');
  assert.equal(h.wire(), 0, 'nothing on the wire');
  assert.equal(h.enforcer.counters[PC_HAIRPIN], 1);
  // the reply passes by conntrack
  h.tap.inject(frame4('198.19.0.2', '198.19.0.1', 6, tcp(5432, 40000), MAC.web, MAC.db));
  h.run();
  assert.equal(h.tap.takeWritten().length, 1);
});

test('same host: a denied local frame is policy_denied; a forged source is spoofed', () => {
  const h = host();
  h.tap.inject(frame4('198.19.0.3', '198.19.0.2', 6, tcp(40000, 5432), MAC.db, MAC.other));
  h.run();
  assert.equal(h.tap.takeWritten().length, 0);
  assert.equal(h.dp.network(BLUE)!.counters.txDropCount('policy_denied'), 1);
  assert.equal(h.enforcer.denials().at(-1)!.reason, 'ingress');
  // "other" claims web's address (allowed by db's policy): the address is not other's
  h.tap.inject(frame4('198.19.0.1', '198.19.0.2', 6, tcp(40001, 5432), MAC.db, MAC.other));
  h.run();
  assert.equal(h.tap.takeWritten().length, 0);
  assert.equal(h.enforcer.counters[PC_SPOOFED], 1);
  assert.equal(h.enforcer.denials().at(-1)!.reason, 'spoofed');
});

test('same host: frames to a remote MAC, and non-IP frames between local endpoints, are not hairpinned', () => {
  const h = host();
  h.tap.inject(frame4('198.19.0.1', '198.19.0.9', 6, tcp(40000, 80), MAC.remote, MAC.web));
  h.run();
  assert.equal(h.tap.takeWritten().length, 0);
  assert.equal(h.wire(), 1, 'flooded to the peer as before');
  const arp = frame4('198.19.0.1', '198.19.0.2', 6, tcp(1, 2), MAC.db, MAC.web);
  arp[12] = 0x08;
  arp[13] = 0x06;
  assert.equal(h.enforcer.localPair(arp, 0), false, 'ARP keeps crossing the bridge');
  h.enforcer.setLocal(null);
  assert.equal(h.enforcer.localPair(frame4('198.19.0.1', '198.19.0.2', 6, tcp(40000, 5432), MAC.db, MAC.web), 0), false, 'off');
});

test('same host: a TSO super-frame is written back as its segments (gsoSegment), the TAP write coalesces them', () => {
  let addon: ReturnType<typeof loadAddon>;
  try {
    addon = loadAddon();
  } catch {
    return; // the addon is built by npm install; the data-path tests above do not need it
  }
  const h = host((f, t, m, p, o, l) => addon.gsoSegment(f, t, m, p, o, l));
  const payload = 20_000;
  const f = frame4('198.19.0.1', '198.19.0.2', 6, [...tcp(40000, 5432), ...new Array(payload).fill(7)], MAC.db, MAC.web);
  // IPv4 total length of the super-frame
  const tot = f.length - 14;
  f[16] = tot >> 8;
  f[17] = tot & 255;
  const n = h.enforcer.hairpinQueue(f, 0, f.length, 1 /* TCPV4 */, 1400);
  assert.equal(n, 1);
  const tx = h.enforcer.hairpinTx!;
  assert.equal(tx.count, Math.ceil(payload / 1400));
  let bytes = 0;
  for (let i = 0; i < tx.count; i++) bytes += tx.lens[i] - 54;
  assert.equal(bytes, payload, 'every payload byte once');
  h.enforcer.hairpinDone(0);
  assert.equal(tx.count, 0);
});

test('local ports: the ruleset replaces the table in one transaction; nothing to enforce removes it', () => {
  const r = rulesetFor([{ network: 'blue', tap: 'vx-blue', ports: [{ port: 'vxa1', mac: '02:00:00:00:00:01' }, { port: 'vxb2', mac: '02:00:00:00:00:02' }, { port: 'bad name!', mac: '02:00:00:00:00:03' }] }]);
  const lines = r.trim().split('\n');
  assert.equal(lines[0], 'table netdev vxmesh-policy');
  assert.equal(lines[1], 'delete table netdev vxmesh-policy');
  assert.match(r, /chain p_vxa1 \{\n {4}type filter hook ingress device "vxa1" priority -500; policy accept;\n {4}ether daddr @l_blue meta protocol \{ ip, ip6 \} ether saddr 02:00:00:00:00:01 fwd to "vx-blue"/);
  assert.match(r, /fwd to ether daddr map \{ 02:00:00:00:00:01 : "vxa1", 02:00:00:00:00:02 : "vxb2" \}/);
  assert.ok(!r.includes('bad name'), 'a port name nft cannot take is left out');
  assert.equal(rulesetFor([]).trim(), 'table netdev vxmesh-policy\ndelete table netdev vxmesh-policy');
});

test('extension: a failed start-up clean-up with nothing to enforce is reported once, not retried, not a status error', async () => {
  const config = parseConfig('node: h1\nunderlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\n');
  const agent = { clock: new FakeClock(0), api: null, config, state: { dir: null }, datapath: { setPolicyFilter: () => true } } as unknown as Agent;
  const ports = new MemoryLocalPorts();
  ports.fail = new Error('nft: not found');
  const ext = new PolicyExtension(config, { endpoints: { list: () => [], onChange: () => () => {} }, localPorts: ports, seed: 1, stateDir: null });
  ext.start(agent);
  await ext.settled();
  ext.recompile();
  await ext.settled();
  assert.equal(ports.calls, 1);
  assert.equal((ext.status() as { sameHostRules: { error: string | null } }).sameHostRules.error, null);
  await ext.stop();
});

test('extension: port rules follow the policies (on with a policy, off without, off at stop)', async () => {
  const config = parseConfig('node: h1\nunderlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\n');
  const endpoints: PolicyEndpointRecord[] = [
    { host: 'h1', hostAddr: '198.18.0.1', network: 'blue', name: 'web', mac: '02:00:00:00:00:01', ips: ['198.19.0.1'], labels: { role: 'web' }, port: 'vxa1' },
    { host: 'h1', hostAddr: '198.18.0.1', network: 'blue', name: 'db', mac: '02:00:00:00:00:02', ips: ['198.19.0.2'], labels: { role: 'db' }, port: 'vxb2' },
    { host: 'h2', hostAddr: '198.18.0.2', network: 'blue', name: 'far', mac: '02:00:00:00:00:03', ips: ['198.19.0.3'], labels: { role: 'web' } },
  ];
  const filters = new Map<number, PolicyEnforcer | null>();
  const agent = { clock: new FakeClock(0), api: null, config, state: { dir: null },
    datapath: { setPolicyFilter: (vni: number, f: PolicyEnforcer | null) => (filters.set(vni, f), true) } } as unknown as Agent;
  const ports = new MemoryLocalPorts();
  const ext = new PolicyExtension(config, { endpoints: { list: () => endpoints, onChange: () => () => {} }, localPorts: ports, seed: 1, stateDir: null });
  ext.start(agent);
  await ext.settled();
  assert.deepEqual(ports.applied, [], 'no policy: the table is removed at start (one a crashed agent left)');
  assert.equal(ports.calls, 1);
  ext.recompile();
  await ext.settled();
  assert.equal(ports.calls, 1, 'after the start-up clean-up, nothing changed: nothing given');
  ext.apply('name: db\nnetwork: blue\nendpoints: {role: db}\ningress:\n  - from: [{endpoints: {role: web}}]\n');
  assert.deepEqual(filters.get(42)!.local, { on: true, endpoints: 2 }, 'the data path knows the local endpoints before the rules exist');
  await ext.settled();
  assert.deepEqual(ports.applied, [{ network: 'blue', tap: 'vx-blue', ports: [{ port: 'vxa1', mac: '02:00:00:00:00:01' }, { port: 'vxb2', mac: '02:00:00:00:00:02' }] }]);
  // a failure is retried on the next sync, shown in status meanwhile
  ext.delete('db');
  ports.fail = new Error('nft: boom');
  await ext.settled();
  assert.equal((ext.status() as { sameHostRules: { error: string } }).sameHostRules.error, 'nft: boom');
  ports.fail = null;
  ext.recompile();
  await ext.settled();
  assert.deepEqual(ports.applied, [], 'policy gone: the table goes');
  ext.apply('name: db\nnetwork: blue\nendpoints: {role: db}\ningress:\n  - from: [{endpoints: {role: web}}]\n');
  await ext.settled();
  assert.equal((ports.applied as unknown[]).length, 1);
  await ext.stop();
  assert.deepEqual(ports.applied, [], 'stop removes the rules');
});
