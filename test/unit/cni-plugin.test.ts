/**
 * The CNI plugin as a runtime drives it: environment + network config on stdin, against a real
 * control socket served by the endpoints extension over in-memory links, IPAM and state.
 * VERSION; ADD result per spec version (interfaces with sandbox, ips, routes); repeated ADD;
 * parallel ADDs get unique addresses; CHECK; DEL idempotent; error codes (1, 4, 6, 7, 11, 50);
 * a failed ADD releases its address; labels from args and CNI_ARGS; STATUS; GC.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Agent } from '../../src/agent/agent';
import { systemClock } from '../../src/clock';
import type { Config } from '../../src/config/types';
import { MemorySpoofGuard } from '../../src/endpoints/antispoof';
import { EndpointsExtension } from '../../src/endpoints/extension';
import { MemoryEndpointSystem } from '../../src/endpoints/system';
import { MemoryStateStore } from '../../src/ipam/state-store';
import { nullLogger } from '../../src/log';
import { runCni, SUPPORTED_VERSIONS } from '../../src/runtimes/cni/plugin';

function config(socket: string): Config {
  return {
    node: { name: 'h1', keyFile: null },
    underlay: { address: '198.18.0.1', family: 4, port: 4789, mtu: 1500, sourcePorts: 1 },
    networks: [{ name: 'blue', vni: 42, bridge: 'br0', tap: 'vx-blue', mtu: 1450, encrypted: false,
      ipam: { subnets: ['198.19.0.0/24'], gateways: ['198.19.0.1'], hostBlocks: [26], ranges: ['198.19.0.0/26'] } }],
    peers: [], fdb: { ageingSeconds: 300, maxEntries: 1000 }, gossip: null,
    api: { listen: { host: '127.0.0.1', port: 0 }, socket }, log: { level: 'error' }, source: null,
  };
}

async function setup(t: { after(fn: () => unknown): void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxm-cni-'));
  const socket = path.join(dir, 'vxmesh.sock');
  const system = new MemoryEndpointSystem();
  const store = new MemoryStateStore();
  let ready = true;
  const agent = { clock: systemClock, ready: () => ({ ok: ready, checks: { datapath: ready } }), api: null, state: { dir: null } } as unknown as Agent;
  const ext = new EndpointsExtension(config(socket), nullLogger, { store, system, guard: new MemorySpoofGuard(), gossip: null });
  await ext.start(agent);
  t.after(async () => {
    await ext.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const netns = (n: string) => {
    const p = path.join(dir, `ns-${n}`);
    fs.writeFileSync(p, '');
    return p;
  };
  const conf = (over: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'blue', type: 'vxmesh', network: 'blue', socket, ...over });
  const env = (cmd: string, id: string, ns: string, extra: Record<string, string> = {}) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: ns, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', ...extra });
  return { ext, system, store, socket, dir, netns, conf, env, setReady: (v: boolean) => { ready = v; } };
}

const parse = (r: { stdout: string }) => JSON.parse(r.stdout) as Record<string, any>;

test('VERSION lists the supported versions without an agent', async () => {
  const r = await runCni({ CNI_COMMAND: 'VERSION' }, '');
  assert.equal(r.code, 0);
  assert.deepEqual(parse(r).supportedVersions, SUPPORTED_VERSIONS);
  assert.ok(SUPPORTED_VERSIONS.includes('0.3.1') && SUPPORTED_VERSIONS.includes('0.4.0') && SUPPORTED_VERSIONS.includes('1.0.0'));
});

test('ADD/CHECK/DEL: spec result, repeated ADD, idempotent DEL, labels, legacy versions', async (t) => {
  const s = await setup(t);
  const ns = s.netns('a');
  const r = await runCni(s.env('ADD', 'c0ffee0000000001', ns, { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web-1' }), s.conf({ args: { labels: { app: 'web' } } }));
  assert.equal(r.code, 0, r.stdout);
  const res = parse(r);
  assert.equal(res.cniVersion, '1.0.0');
  assert.equal(res.interfaces[0].name, 'eth0');
  assert.equal(res.interfaces[0].sandbox, ns);
  assert.match(res.interfaces[0].mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  assert.deepEqual(res.ips, [{ address: '198.19.0.2/24', gateway: '198.19.0.1', interface: 0 }]);
  assert.deepEqual(res.routes, [{ dst: '0.0.0.0/0', gw: '198.19.0.1' }]);
  const st = s.ext.manager!.local()[0];
  assert.deepEqual(st.labels, { app: 'web', K8S_POD_NAME: 'web-1' });
  assert.equal(st.name, 'c0ffee000000');
  // repeated ADD: the same attachment
  assert.deepEqual(parse(await runCni(s.env('ADD', 'c0ffee0000000001', ns), s.conf())).ips, res.ips);
  assert.equal(s.ext.manager!.local().length, 1);
  assert.equal((await runCni(s.env('CHECK', 'c0ffee0000000001', ns), s.conf())).code, 0);
  // legacy configs get `version` in ips
  const r2 = parse(await runCni(s.env('ADD', 'c0ffee0000000002', s.netns('b')), s.conf({ cniVersion: '0.3.1' })));
  assert.equal(r2.cniVersion, '0.3.1');
  assert.equal(r2.ips[0].version, '4');
  // DEL, twice, and DEL of something never added
  for (let i = 0; i < 2; i++) assert.deepEqual(await runCni(s.env('DEL', 'c0ffee0000000001', ns), s.conf()), { code: 0, stdout: '' });
  assert.equal((await runCni(s.env('DEL', 'nope', '/nonexistent'), s.conf({ cniVersion: '0.4.0' }))).code, 0);
  assert.equal(s.ext.manager!.local().length, 1);
  assert.equal(s.ext.ipam!.allocations('blue').size, 1, 'DEL released the address');
  // CHECK of a deleted endpoint fails
  const c = await runCni(s.env('CHECK', 'c0ffee0000000001', ns), s.conf());
  assert.equal(c.code, 1);
});

test('parallel ADDs: every container gets its own address', async (t) => {
  const s = await setup(t);
  const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => runCni(s.env('ADD', `par${i}`, s.netns(`p${i}`)), s.conf())));
  for (const r of rs) assert.equal(r.code, 0, r.stdout);
  const ips = rs.map((r) => parse(r).ips[0].address);
  assert.equal(new Set(ips).size, 20);
});

test('errors: spec JSON with codes 1, 4, 6, 7, 11, 50; a failed ADD releases its address', async (t) => {
  const s = await setup(t);
  const ns = s.netns('e');
  const err = async (env: NodeJS.ProcessEnv, stdin: string) => {
    const r = await runCni(env, stdin);
    assert.equal(r.code, 1, r.stdout);
    return parse(r);
  };
  assert.equal((await err(s.env('ADD', 'x', ns), '{not json')).code, 6);
  assert.equal((await err(s.env('ADD', 'x', ns), s.conf({ cniVersion: '9.9.9' }))).code, 1);
  assert.equal((await err(s.env('ADD', 'x', ns), JSON.stringify({ cniVersion: '1.0.0', type: 'vxmesh' }))).code, 7);
  const unknown = await err(s.env('ADD', 'x', ns), s.conf({ network: 'red' }));
  assert.equal(unknown.code, 7);
  assert.match(unknown.msg, /unknown network "red"/);
  assert.equal((await err({ CNI_COMMAND: 'ADD', CNI_NETNS: ns, CNI_IFNAME: 'eth0' }, s.conf())).code, 4);
  assert.equal((await err(s.env('ADD', 'x', ns), s.conf({ socket: path.join(s.dir, 'absent.sock') }))).code, 11);
  assert.equal((await err({ CNI_COMMAND: 'STATUS' }, s.conf({ cniVersion: '1.1.0', socket: path.join(s.dir, 'absent.sock') }))).code, 50);
  assert.equal((await runCni({ CNI_COMMAND: 'STATUS' }, s.conf({ cniVersion: '1.1.0' }))).code, 0);
  s.setReady(false);
  const nr = await err(s.env('ADD', 'x', ns), s.conf());
  assert.equal(nr.code, 11);
  assert.match(nr.msg, /not ready/);
  s.setReady(true);
  // failure midway: nothing kept
  s.system.failNext = 'configure';
  const mid = await err(s.env('ADD', 'y', ns), s.conf());
  assert.equal(mid.code, 999);
  assert.equal(s.ext.ipam!.allocations('blue').size, 0, 'address released');
  assert.equal(s.system.links.size, 0, 'no stray link');
  assert.equal(s.ext.manager!.local().length, 0);
});

test('GC (1.1.0) removes attachments that are not valid any more', async (t) => {
  const s = await setup(t);
  for (const id of ['g1', 'g2', 'g3']) assert.equal((await runCni(s.env('ADD', id, s.netns(id)), s.conf())).code, 0);
  const r = await runCni({ CNI_COMMAND: 'GC' }, s.conf({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'g2', ifname: 'eth0' }] }));
  assert.equal(r.code, 0, r.stdout);
  assert.deepEqual(s.ext.manager!.local().map((e) => e.containerId), ['g2']);
  assert.equal(s.ext.ipam!.allocations('blue').size, 1);
  assert.equal((await runCni({ CNI_COMMAND: 'GC' }, s.conf())).code, 1, 'GC needs a 1.1.0 config');
});
