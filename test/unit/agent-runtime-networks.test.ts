/**
 * Runtime networks (src/agent/runtime-networks.ts) over the Agent with in-memory devices and a
 * recording fake of the system calls: create (validated like a config entry, set up the way a
 * reload adds a network, extensions told, persisted), the refusals (nothing made), restore at a
 * restart, kept across reloads (a config network with the same VNI wins and is reported), delete
 * (bridge, TAP, data path network, state entry), a corrupt state file.
 */

import { test } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as assert from 'node:assert/strict';
import { Agent, type AgentExtension } from '../../src/agent/agent';
import { RUNTIME_NETWORKS_FILE, RuntimeNetworkError, RuntimeNetworks } from '../../src/agent/runtime-networks';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/types';
import { MemoryReactor, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { FakeSystem } from '../helpers/fake-system';
import { FakeClock } from '../../src/clock';
import { ConfigError, StateError } from '../../src/errors';


const noLookup = { mtuLookup: () => null, hostname: 'h' };
function cfg(text: string): Config {
  const c = parseConfig(text, noLookup);
  return { ...c, api: { listen: { host: '127.0.0.1', port: 0 } } };
}

const FILE = cfg('node: a\nunderlay: {address: 198.18.0.1, sourcePorts: 2}\ngossip: {keyFile: /nonexistent/cluster.key}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0, subnet: 198.19.0.0/24}\n');

/** Records the configs extensions are handed at start and at every reload (as gossip's VNIs). */
class RecordingExt implements AgentExtension {
  readonly name = 'rec';
  vnis: number[][] = [];
  start(a: Agent) { this.vnis.push(a.config.networks.map((n) => n.vni)); }
  stop() {}
  reload(c: Config) { this.vnis.push(c.networks.map((n) => n.vni)); }
}

async function setup(t: { after(fn: () => void): void }, dir?: string) {
  const d = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'vxrt-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  const reactor = new MemoryReactor({ auto: true });
  const sys = new FakeSystem(new MemoryUdpNetwork({ reactor }), reactor);
  const rt = new RuntimeNetworks(d);
  const ext = new RecordingExt();
  const agent = await Agent.start(rt.withRuntimeNetworks(FILE).config, { system: sys, clock: new FakeClock(), api: false, stateDir: d, extensions: [ext] });
  rt.bind(agent);
  t.after(() => agent.stop());
  return { dir: d, sys, rt, ext, agent };
}

const req: { name: string; vni: number; subnets: string[]; gateways: (string | null)[]; createdBy: string } = { name: 'docker-4242', vni: 4242, subnets: ['198.19.8.0/24'], gateways: ['198.19.8.1'], createdBy: 'docker:n1' };

test('create: set up like a reload adds a network (bridge, TAP, data path), extensions told, persisted atomically', async (t) => {
  const { dir, sys, rt, ext, agent } = await setup(t);
  sys.calls.length = 0;
  const net = await rt.create({ ...req, mtu: 1400 });
  assert.deepEqual({ name: net.name, vni: net.vni, bridge: net.bridge, tap: net.tap, mtu: net.mtu, ipam: net.ipam }, {
    name: 'docker-4242', vni: 4242, bridge: 'vxb4242', tap: 'vxt4242', mtu: 1400,
    ipam: { subnets: ['198.19.8.0/24'], gateways: ['198.19.8.1'], hostBlocks: [26], ranges: [null] },
  });
  assert.deepEqual(sys.calls.slice(0, 7), ['bridgeCreate vxb4242', 'openTap vxt4242', 'setMtu vxt4242 1400', 'setMtu vxb4242 1400', 'bridgeAddPort vxb4242 vxt4242', 'setUp vxt4242 true', 'setUp vxb4242 true']);
  assert.deepEqual(agent.datapath.networks().map((n) => n.config.vni).sort(), [42, 4242]);
  assert.deepEqual(ext.vnis.at(-1), [42, 4242], 'extensions (gossip: the VNIs this host serves) get the network');
  assert.equal(agent.ready().ok, true);
  assert.equal(agent.lastReload.generation, 0, 'not recorded as a reload');
  const saved = JSON.parse(fs.readFileSync(path.join(dir, RUNTIME_NETWORKS_FILE), 'utf8'));
  assert.equal(saved.version, 1);
  assert.deepEqual(saved.networks.map((e: { spec: unknown; createdBy: string }) => [e.spec, e.createdBy]), [[
    { name: 'docker-4242', vni: 4242, bridge: 'vxb4242', tap: 'vxt4242', subnet: '198.19.8.0/24', mtu: 1400, gateway: '198.19.8.1' }, 'docker:n1']]);
  assert.equal(fs.readdirSync(dir).some((f) => f.endsWith('.tmp')), false, 'no temporary file left');
  assert.equal(rt.isRuntime('docker-4242'), true);
  assert.equal(rt.isRuntime('blue'), false);
});

test('refusals: bad VNI, VNI or subnet clashing with another network, bad MTU, bad gateway: a clear error and nothing made', async (t) => {
  const { dir, sys, rt, agent } = await setup(t);
  sys.calls.length = 0;
  const cases: Array<[Partial<typeof req> & { mtu?: number }, RegExp]> = [
    [{ vni: 0 }, /--opt vni: expected an integer 1\.\.16777215, got 0/],
    [{ vni: 16777216 }, /--opt vni: expected an integer 1\.\.16777215/],
    [{ vni: 42, name: 'docker-42' }, /--opt vni: 42 is already used by vxmesh network blue/],
    [{ subnets: ['198.19.0.128/25'], gateways: [null] }, /--subnet: 198\.19\.0\.128\/25 overlaps 198\.19\.0\.0\/24, the subnet of vxmesh network blue/],
    [{ mtu: 9000 }, /--opt mtu: expected an integer 1280\.\.1450|--opt mtu: expected an integer \d+\.\.1450/],
    [{ mtu: 100 }, /--opt mtu: expected an integer/],
    [{ gateways: ['198.18.5.1'] }, /--gateway: /],
    [{ name: 'blue', vni: 7 }, /--opt name: "blue" is already used by vxmesh network blue/],
    [{ name: 'Bad_Name' }, /--opt name: expected a network name/],
  ];
  for (const [over, re] of cases) {
    await assert.rejects(rt.create({ ...req, ...over }), (e: unknown) => {
      assert.ok(e instanceof RuntimeNetworkError, String(e));
      assert.match((e as Error).message, re);
      return true;
    });
  }
  assert.deepEqual(sys.calls, [], 'no system call made');
  assert.deepEqual(agent.config.networks.map((n) => n.name), ['blue']);
  assert.equal(fs.existsSync(path.join(dir, RUNTIME_NETWORKS_FILE)), false, 'nothing persisted');
  // a failure while setting it up: undone, not persisted
  sys.failOn = 'bridgeAddPort vxb4242';
  await assert.rejects(rt.create(req), /cannot create vxmesh network docker-4242 \(vni 4242\): .*injected failure/);
  sys.failOn = null;
  assert.equal(sys.links.has('vxb4242'), false, 'the bridge it made is gone');
  assert.equal(sys.links.has('vxt4242'), false, 'the TAP it made is gone');
  assert.deepEqual(agent.datapath.networks().map((n) => n.config.vni), [42]);
  assert.equal(fs.existsSync(path.join(dir, RUNTIME_NETWORKS_FILE)), false);
  assert.equal(rt.isRuntime('docker-4242'), false);
  // and it can be created afterwards
  await rt.create(req);
  assert.equal(sys.links.has('vxb4242'), true);
});

test('restore at a restart (before extensions start), kept across reloads; a config network with the same VNI wins and is reported', async (t) => {
  const first = await setup(t);
  await first.rt.create(req);
  await first.agent.stop();
  assert.equal(first.sys.links.has('vxb4242'), true, 'its bridge stays across a stop (as a config network\'s)');
  // restart: re-created from the state file before any extension starts
  const sys = first.sys;
  const rt = new RuntimeNetworks(first.dir);
  const ext = new RecordingExt();
  const agent = await Agent.start(rt.withRuntimeNetworks(FILE).config, { system: sys, clock: new FakeClock(), api: false, stateDir: first.dir, extensions: [ext] });
  t.after(() => agent.stop());
  rt.bind(agent);
  assert.deepEqual(ext.vnis[0], [42, 4242], 'the extensions start with it');
  assert.deepEqual(agent.datapath.networks().map((n) => n.config.vni).sort(), [42, 4242]);
  assert.equal(sys.links.get('vxt4242')?.master, 'vxb4242');
  // a reload of the unchanged file keeps it
  const r = await agent.applyConfig(rt.withRuntimeNetworks(FILE).config);
  assert.deepEqual(r.removed, []);
  assert.deepEqual(agent.config.networks.map((n) => n.name), ['blue', 'docker-4242']);
  // the file now has a network with VNI 4242: at a start (who uses it unknown) that is refused,
  // naming the creator; with no Docker network using it the config wins and the entry is dropped
  const withClash = cfg('node: a\nunderlay: {address: 198.18.0.1, sourcePorts: 2}\ngossip: {keyFile: /nonexistent/cluster.key}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0, subnet: 198.19.0.0/24}\n  - {name: green, vni: 4242, bridge: br2}\n');
  assert.throws(() => new RuntimeNetworks(first.dir).withRuntimeNetworks(withClash), (e: unknown) => e instanceof ConfigError &&
    /^cannot start: config network green clashes with runtime network docker-4242 \(vni 4242 is already runtime network docker-4242\), which is in use by Docker network n1/.test((e as Error).message));
  rt.setUsers(() => []);
  const m = rt.withRuntimeNetworks(withClash, 'reload');
  assert.deepEqual(m.dropped.map((d) => d.name), ['docker-4242']);
  assert.match(m.dropped[0].reason, /config network green clashes with runtime network docker-4242 \(vni 4242 is already runtime network docker-4242\)/);
  assert.equal(rt.isRuntime('docker-4242'), true, 'nothing dropped before the reload is accepted');
  await rt.reload(agent, withClash);
  assert.deepEqual(agent.config.networks.map((n) => `${n.name}/${n.vni}`), ['blue/42', 'green/4242']);
  assert.equal(sys.links.has('vxb4242'), false, 'the runtime network\'s bridge went with it');
  assert.equal(rt.isRuntime('docker-4242'), false);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(first.dir, RUNTIME_NETWORKS_FILE), 'utf8')).networks, []);
  assert.equal(await rt.remove('green'), false, 'a config network is never removed');
  assert.deepEqual(agent.config.networks.map((n) => n.name), ['blue', 'green']);
});

test('remove: bridge, TAP, data path network and state entry go; a corrupt state file is a named StateError', async (t) => {
  const { dir, sys, rt, agent, ext } = await setup(t);
  await rt.create(req);
  sys.calls.length = 0;
  assert.equal(await rt.remove('docker-4242'), true);
  assert.ok(sys.calls.includes('closeTap vxt4242'));
  assert.ok(sys.calls.includes('bridgeDelete vxb4242'));
  assert.equal(sys.links.has('vxb4242') || sys.links.has('vxt4242'), false);
  assert.deepEqual(agent.datapath.networks().map((n) => n.config.vni), [42]);
  assert.deepEqual(ext.vnis.at(-1), [42]);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, RUNTIME_NETWORKS_FILE), 'utf8')).networks, []);
  assert.equal(await rt.remove('docker-4242'), false);
  assert.equal(await rt.remove('blue'), false);
  assert.deepEqual(agent.config.networks.map((n) => n.name), ['blue']);
  fs.writeFileSync(path.join(dir, RUNTIME_NETWORKS_FILE), '{"version":1,"networks":[{"spec":');
  assert.throws(() => new RuntimeNetworks(dir), (e: unknown) => e instanceof StateError && /runtime-networks\.json: not valid JSON/.test((e as Error).message));
  fs.writeFileSync(path.join(dir, RUNTIME_NETWORKS_FILE), '{"version":1,"networks":[{"spec":{}}]}');
  assert.throws(() => new RuntimeNetworks(dir), /networks\[0\] is not \{spec, createdBy, createdAt\}/);
});

test('before the agent runs, a create is refused (try again)', async () => {
  const rt = new RuntimeNetworks(null);
  await assert.rejects(rt.create(req), /still starting: try again/);
});

const FILE_TEXT = 'node: a\nunderlay: {address: 198.18.0.1, sourcePorts: 2}\ngossip: {keyFile: /nonexistent/cluster.key}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0, subnet: 198.19.0.0/24}\n';
const withNet = (line: string) => cfg(`${FILE_TEXT}  - ${line}\n`);

test('a reload whose config network takes a runtime network\'s name is refused and changes nothing: state file, running config, runtime entry', async (t) => {
  const { dir, sys, rt, agent } = await setup(t);
  await rt.create(req);
  const file = path.join(dir, RUNTIME_NETWORKS_FILE);
  const saved = fs.readFileSync(file, 'utf8');
  const running = JSON.stringify(agent.config.networks);
  sys.calls.length = 0;
  // same name, another VNI and subnet
  await assert.rejects(rt.reload(agent, withNet('{name: docker-4242, vni: 4243, bridge: br3, subnet: 198.19.9.0/24}')), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match((e as Error).message, /reload refused: .*docker-4242/);
    return true;
  });
  assert.equal(fs.readFileSync(file, 'utf8'), saved, 'the state file is untouched');
  assert.equal(JSON.stringify(agent.config.networks), running, 'the running config is kept');
  assert.equal(rt.isRuntime('docker-4242'), true);
  assert.deepEqual(sys.calls, [], 'no system call made');
  assert.equal(agent.lastReload.result, 'refused');
  // and the next reload of the unchanged file keeps it
  await rt.reload(agent, FILE);
  assert.deepEqual(agent.config.networks.map((n) => n.name), ['blue', 'docker-4242']);
  assert.equal(fs.readFileSync(file, 'utf8'), saved);
});

test('a config network clashing with a runtime network Docker networks use (VNI, subnet) is refused, naming the Docker network; an unused one is taken over after the reload is accepted', async (t) => {
  const { dir, rt, agent } = await setup(t);
  await rt.create(req);
  const file = path.join(dir, RUNTIME_NETWORKS_FILE);
  const saved = fs.readFileSync(file, 'utf8');
  let users = ['3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a'];
  (rt as unknown as { setUsers(f: ((n: string) => string[]) | null): void }).setUsers((n) => (n === 'docker-4242' ? users : []));
  for (const [line, re] of [
    ['{name: green, vni: 4242, bridge: br2}', /vni 4242 is already runtime network docker-4242/],
    ['{name: green, vni: 44, bridge: br2, subnet: 198.19.8.128/25}', /198\.19\.8\.128\/25 overlaps 198\.19\.8\.0\/24, the subnet of runtime network docker-4242/],
  ] as const) {
    await assert.rejects(rt.reload(agent, withNet(line)), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match((e as Error).message, re);
      assert.match((e as Error).message, /in use by Docker network 3f2a1b0c9d8e/);
      return true;
    });
    assert.equal(fs.readFileSync(file, 'utf8'), saved, 'the state file is untouched');
    assert.deepEqual(agent.config.networks.map((n) => n.name), ['blue', 'docker-4242']);
  }
  // once no Docker network uses it, the config network wins: the entry goes after the reload is accepted
  users = [];
  await rt.reload(agent, withNet('{name: green, vni: 4242, bridge: br2}'));
  assert.deepEqual(agent.config.networks.map((n) => `${n.name}/${n.vni}`), ['blue/42', 'green/4242']);
  assert.equal(rt.isRuntime('docker-4242'), false);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')).networks, []);
});

test('a config entry identical to a runtime network adopts it: nothing torn down, no longer a runtime network', async (t) => {
  const { dir, sys, rt, agent } = await setup(t);
  await rt.create(req);
  (rt as unknown as { setUsers(f: ((n: string) => string[]) | null): void }).setUsers(() => ['a'.repeat(64)]);
  sys.calls.length = 0;
  await rt.reload(agent, withNet('{name: docker-4242, vni: 4242, bridge: vxb4242, tap: vxt4242, subnet: 198.19.8.0/24, gateway: 198.19.8.1}'));
  assert.deepEqual(sys.calls, [], 'the network is not touched');
  assert.deepEqual(agent.config.networks.map((n) => n.name), ['blue', 'docker-4242']);
  assert.equal(rt.isRuntime('docker-4242'), false, 'the config owns it now');
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, RUNTIME_NETWORKS_FILE), 'utf8')).networks, []);
  assert.equal(await rt.remove('docker-4242'), false, 'the last Docker network leaving no longer removes it');
});

test('a reload and a runtime network create are serialized: neither undoes the other, in either order', async (t) => {
  const { dir, rt, agent, ext } = await setup(t);
  // a reload (adding green) queued first, then a create: the create must not take green out again
  const r1 = rt.reload(agent, withNet('{name: green, vni: 44, bridge: br2, subnet: 198.19.2.0/24}'));
  const c1 = rt.create(req);
  await Promise.all([r1, c1]);
  assert.deepEqual(agent.config.networks.map((n) => n.name), ['blue', 'green', 'docker-4242']);
  assert.deepEqual(agent.datapath.networks().map((n) => n.config.vni).sort((a, b) => a - b), [42, 44, 4242]);
  // a create held in flight (an extension's reload not done yet), then SIGHUP: the reload keeps it
  let open!: () => void;
  const gate = new Promise<void>((r) => { open = r; });
  const reload = ext.reload.bind(ext);
  ext.reload = async (c: Config) => { reload(c); await gate; };
  const c2 = rt.create({ ...req, name: 'docker-4343', vni: 4343, subnets: ['198.19.9.0/24'], gateways: ['198.19.9.1'] });
  await new Promise((r) => setImmediate(r));
  const r2 = rt.reload(agent, withNet('{name: green, vni: 44, bridge: br2, subnet: 198.19.2.0/24}'));
  await new Promise((r) => setImmediate(r));
  open();
  await Promise.all([c2, r2]);
  assert.deepEqual(agent.config.networks.map((n) => n.name), ['blue', 'green', 'docker-4242', 'docker-4343']);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, RUNTIME_NETWORKS_FILE), 'utf8')).networks.map((e: { spec: { name: string } }) => e.spec.name), ['docker-4242', 'docker-4343']);
  assert.equal(agent.lastReload.generation, 2, 'both reloads recorded, the creates not');
});

test('a persisted entry invalid on its own (MTU above the underlay\'s) stops the start with an error naming the file; never dropped', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxrt-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, RUNTIME_NETWORKS_FILE);
  const text = JSON.stringify({ version: 1, networks: [{ spec: { name: 'docker-4242', vni: 4242, bridge: 'vxb4242', tap: 'vxt4242', subnet: '198.19.8.0/24', mtu: 9000 }, createdBy: 'docker:n1', createdAt: '2026-01-01T00:00:00.000Z' }] });
  fs.writeFileSync(file, text);
  assert.throws(() => new RuntimeNetworks(dir).withRuntimeNetworks(FILE), (e: unknown) => e instanceof ConfigError &&
    (e as Error).message.includes(`${file}: runtime network docker-4242: --opt mtu: `) && /fix or remove its entry/.test((e as Error).message));
  assert.equal(fs.readFileSync(file, 'utf8'), text, 'the state file is untouched');
});
