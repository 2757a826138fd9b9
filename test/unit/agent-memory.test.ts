/**
 * The Agent over in-memory devices (MemoryTap / MemoryUdpNetwork) and a recording fake of the
 * system calls: start order and rollback, stop removing exactly what start made, extensions
 * (order, status, failure), status/ready JSON, applyConfig (added/removed/changed networks,
 * peers, log level, refusal), and two agents exchanging a frame end to end.
 */

import { test } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as assert from 'node:assert/strict';
import { Agent, type AgentExtension } from '../../src/agent/agent';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/types';
import { MemoryReactor, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { FakeSystem } from '../helpers/fake-system';
import { FakeClock } from '../../src/clock';
import { ConfigError, SystemError } from '../../src/errors';
import { createLogger, type Logger } from '../../src/log';


const noLookup = { mtuLookup: () => null, hostname: 'h' };
function cfg(text: string): Config {
  const c = parseConfig(text, noLookup);
  return { ...c, api: { listen: { host: '127.0.0.1', port: 0 } } }; // ephemeral port for tests
}
const A = (extra = '', nets = '  - {name: blue, vni: 42, bridge: br0}\n') =>
  cfg(`node: a\nunderlay: {address: 198.18.0.1, sourcePorts: 2}\nnetworks:\n${nets}${extra}`);

function env(macByte = 1) {
  const reactor = new MemoryReactor({ auto: true });
  const net = new MemoryUdpNetwork({ reactor });
  return { reactor, net, sys: new FakeSystem(net, reactor, macByte) };
}

function collectLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'debug', format: 'json', destination: { write: (s: string) => { lines.push(JSON.parse(s)); } } });
  return { logger, lines };
}

test('start: bridge, TAP, MTUs, enslave, up, in order; stop undoes that but keeps the bridge it created', async () => {
  const { sys } = env();
  sys.links.set('brx', { kind: 'bridge', mtu: 1500, up: true, master: null, persistent: true });
  sys.links.set('ptap', { kind: 'tap', mtu: 1500, up: false, master: null, persistent: true });
  const agent = await Agent.start(A('', '  - {name: blue, vni: 42, bridge: br0}\n  - {name: red, vni: 43, bridge: brx, tap: ptap, mtu: 1400}\n'),
    { system: sys, clock: new FakeClock(), api: false });
  assert.deepEqual(sys.calls, [
    'bridgeCreate br0', 'openTap vx-blue', 'setMtu vx-blue 1450', 'setMtu br0 1450', 'bridgeAddPort br0 vx-blue', 'setUp vx-blue true', 'setUp br0 true',
    'openTap ptap', 'setMtu ptap 1400', 'bridgeAddPort brx ptap', 'setUp ptap true',
    'openUdp 198.18.0.1:4789',
  ]);
  assert.deepEqual(agent.ready(), { ok: true, checks: { config: true, taps: true, udp: true, datapath: true, extensions: true, 'network:blue': true, 'network:red': true } });
  sys.calls.length = 0;
  await agent.stop();
  assert.deepEqual(sys.calls, [
    'bridgeDelPort brx ptap', 'closeTap ptap',
    'closeTap vx-blue',
  ]);
  assert.deepEqual([...sys.links.keys()].sort(), ['br0', 'brx', 'ptap']);
  assert.equal(sys.links.get('br0')!.up, true, 'the bridge it created stays up (its container ports stay attached)');
  assert.equal(sys.links.get('brx')!.up, true, 'existing bridge left up as it was');
  await agent.stop(); // idempotent
  assert.equal(sys.calls.length, 3);
});

test('bridge ownership: a restart reuses the bridge it created; removing its network (reload or while stopped) deletes it; the state file is atomic and checked', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxstate-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { sys } = env();
  const two = A('', '  - {name: blue, vni: 42, bridge: br0}\n  - {name: red, vni: 43, bridge: br1}\n');
  const a = await Agent.start(two, { system: sys, clock: new FakeClock(), api: false, stateDir: dir });
  const file = path.join(dir, 'bridges.json');
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')).bridges, [{ name: 'br0', network: 'blue', vni: 42 }, { name: 'br1', network: 'red', vni: 43 }]);
  assert.deepEqual(fs.readdirSync(dir), ['bridges.json'], 'no temporary file left');
  sys.links.set('veth-c1', { kind: 'other', mtu: 1450, up: true, master: 'br0', persistent: true }); // a container port
  await a.stop();

  // Restart (same state dir): br0 is reused as ours (MTU set again), never re-created; its port stays.
  sys.calls.length = 0;
  const b = await Agent.start(two, { system: sys, clock: new FakeClock(), api: false, stateDir: dir });
  assert.ok(!sys.calls.some((c) => c.startsWith('bridgeCreate')), sys.calls.join(', '));
  assert.ok(sys.calls.includes('setMtu br0 1450'), 'MTU of a bridge of ours is set');
  assert.equal(sys.links.get('veth-c1')!.master, 'br0');
  assert.equal((b.status().networks as Array<{ bridgeCreated: boolean }>)[0].bridgeCreated, true);

  // Reload without red: br1 deleted, state updated.
  await b.applyConfig(A('', '  - {name: blue, vni: 42, bridge: br0}\n'));
  assert.equal(sys.links.has('br1'), false);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')).bridges.map((x: { name: string }) => x.name), ['br0']);
  await b.stop();

  // While stopped, blue leaves the config: the next start deletes br0 (the port is released).
  const c = await Agent.start(A('', '  - {name: green, vni: 44, bridge: br2}\n'), { system: sys, clock: new FakeClock(), api: false, stateDir: dir });
  assert.equal(sys.links.has('br0'), false);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')).bridges.map((x: { name: string }) => x.name), ['br2']);
  await c.stop();

  // A bridge that existed before vxmesh is never recorded, hence never deleted.
  sys.links.set('brx', { kind: 'bridge', mtu: 1500, up: true, master: null, persistent: true });
  const d = await Agent.start(A('', '  - {name: blue, vni: 42, bridge: brx}\n'), { system: sys, clock: new FakeClock(), api: false, stateDir: dir });
  await d.applyConfig(A('', '  - {name: green, vni: 44, bridge: br2}\n'));
  assert.ok(sys.links.has('brx'));
  await d.stop();

  // A corrupt file is a named error, and is left as it is.
  fs.writeFileSync(file, '{"version": 1, "bridges": "br0"}');
  await assert.rejects(Agent.start(two, { system: sys, clock: new FakeClock(), api: false, stateDir: dir }),
    (e: unknown) => (e as { code?: string }).code === 'ERR_VXMESH_STATE' && /bridges\.json: "bridges" is not a list/.test((e as Error).message));
  assert.equal(fs.readFileSync(file, 'utf8'), '{"version": 1, "bridges": "br0"}');
});

test('a failure part-way undoes every earlier step and rethrows', async () => {
  const { sys } = env();
  sys.failOn = 'openTap vx-red';
  await assert.rejects(
    Agent.start(A('', '  - {name: blue, vni: 42, bridge: br0}\n  - {name: red, vni: 43, bridge: br1}\n'), { system: sys, clock: new FakeClock(), api: false }),
    (e: unknown) => e instanceof SystemError && /injected failure: openTap vx-red/.test(e.message),
  );
  assert.deepEqual([...sys.links.keys()], [], 'both bridges and the first TAP removed');
  assert.ok(sys.calls.includes('bridgeDelete br1'));
  assert.ok(sys.calls.includes('bridgeDelete br0'));

  const e2 = env();
  const stopped: string[] = [];
  const bad: AgentExtension = { name: 'bad', start() { throw new Error('boom'); }, stop() { stopped.push('bad'); } };
  const good: AgentExtension = { name: 'good', start() {}, stop() { stopped.push('good'); } };
  await assert.rejects(Agent.start(A(), { system: e2.sys, clock: new FakeClock(), api: false, extensions: [good, bad] }), /boom/);
  assert.deepEqual(stopped, ['good'], 'only started extensions are stopped');
  assert.deepEqual([...e2.sys.links.keys()], []);
});

test('extensions: started in order after the data path, stopped in reverse, status and ready reported', async () => {
  const { sys } = env();
  const order: string[] = [];
  const mk = (name: string, ready: boolean): AgentExtension => ({
    name,
    start(agent) { order.push(`start ${name} (datapath running: ${agent.datapath.isRunning})`); },
    stop() { order.push(`stop ${name}`); },
    status: () => ({ me: name }),
    ready: () => ready,
  });
  const agent = await Agent.start(A(), { system: sys, clock: new FakeClock(), extensions: [mk('x', true), mk('y', false)] });
  try {
    const st = agent.status();
    assert.deepEqual(st.extensions, { x: { me: 'x' }, y: { me: 'y' } });
    const r = agent.ready();
    assert.equal(r.ok, false);
    assert.equal(r.checks['ext:x'], true);
    assert.equal(r.checks['ext:y'], false);
    assert.equal(r.checks.api, true);
    // GET /v1/status over HTTP is the same JSON
    const addr = agent.api!.address()!;
    const res = await fetch(`http://127.0.0.1:${addr.port}/v1/status`);
    assert.equal(res.status, 200);
    const body = await res.json() as Record<string, unknown>;
    assert.equal(body.node, 'a');
    assert.deepEqual((body.networks as Array<Record<string, unknown>>).map((n) => [n.name, n.vni, n.tap, n.mtu, n.bridgeCreated, n.tapCreated]), [['blue', 42, 'vx-blue', 1450, true, true]]);
  } finally {
    await agent.stop();
  }
  assert.deepEqual(order, ['start x (datapath running: true)', 'start y (datapath running: true)', 'stop y', 'stop x']);
});

test('two agents on an in-memory underlay carry a frame end to end; status counts it', async () => {
  const { sys, net, reactor } = env(1);
  const sysB = new FakeSystem(net, reactor, 2);
  const a = await Agent.start(A('peers: [198.18.0.2]\n'), { system: sys, clock: new FakeClock(), api: false });
  const b = await Agent.start(cfg('node: b\nunderlay: {address: 198.18.0.2}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\npeers: [198.18.0.1]\n'),
    { system: sysB, clock: new FakeClock(), api: false });
  try {
    const frame = Buffer.alloc(60);
    frame.fill(0xff, 0, 6); // broadcast
    Buffer.from([0x02, 0xaa, 0, 0, 0, 1]).copy(frame, 6);
    frame.writeUInt16BE(0x0800, 12);
    frame.fill(7, 14);
    sys.taps.get('vx-blue')!.inject(frame);
    reactor.run();
    const got = sysB.taps.get('vx-blue')!.takeWritten();
    assert.equal(got.length, 1);
    assert.deepEqual(got[0], frame);
    const sb = b.status() as { networks: Array<{ counters: { rxDelivered: number }; fdbSize: number }>; peers: Array<{ peer: string; rxPackets: number }> };
    assert.equal(sb.networks[0].counters.rxDelivered, 1);
    assert.equal(sb.networks[0].fdbSize, 1, 'the sender MAC was learned');
    assert.equal(sb.peers.find((p) => p.peer.startsWith('198.18.0.1'))?.rxPackets, 1);
    JSON.stringify(a.status()); // JSON-able
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('applyConfig: networks added/removed/changed without touching the others; peers and log level; refusals change nothing', async () => {
  const { sys } = env();
  const { logger, lines } = collectLogger();
  logger.level = 'info';
  const reloads: Config[] = [];
  const ext: AgentExtension = { name: 'x', start() {}, stop() {}, reload(c) { reloads.push(c); } };
  const agent = await Agent.start(A('', '  - {name: blue, vni: 42, bridge: br0}\n  - {name: red, vni: 43, bridge: br1}\n'),
    { system: sys, clock: new FakeClock(), api: false, logger, extensions: [ext] });
  try {
    const blueTap = sys.taps.get('vx-blue');
    sys.calls.length = 0;
    const r = await agent.applyConfig(A('peers: [198.18.0.5]\nlog: {level: debug}\n',
      '  - {name: blue, vni: 42, bridge: br0}\n  - {name: red, vni: 43, bridge: br1, mtu: 1300}\n  - {name: green, vni: 44, bridge: br2}\n'));
    assert.deepEqual(r, { added: ['green'], removed: [], changed: ['red'], acceptFromChanged: [], peersChanged: true, logLevelChanged: true, gossipChanged: false, endpointsChanged: ['red'] });
    assert.ok(!sys.calls.some((c) => c.includes('vx-blue') || c.includes('br0')), `blue untouched: ${sys.calls.join(', ')}`);
    assert.equal(sys.taps.get('vx-blue'), blueTap);
    assert.equal(sys.links.get('vx-red')!.mtu, 1300);
    assert.equal(sys.links.get('vx-green')!.master, 'br2');
    assert.deepEqual(agent.datapath.networks().map((n) => n.config.vni).sort(), [42, 43, 44]);
    assert.deepEqual(agent.datapath.peerList().filter((p) => p.static).map((p) => p.label), ['198.18.0.5:4789']);
    assert.equal(logger.level, 'debug');
    assert.equal(reloads.length, 1);
    assert.equal(reloads[0].networks.length, 3);

    // Removal
    await agent.applyConfig(A('peers: [198.18.0.5]\nlog: {level: debug}\n'));
    assert.deepEqual(agent.datapath.networks().map((n) => n.config.vni), [42]);
    assert.equal(sys.links.has('br1') || sys.links.has('br2') || sys.links.has('vx-red'), false);

    // Refused: underlay change; nothing changes.
    sys.calls.length = 0;
    const before = JSON.stringify(agent.config);
    await assert.rejects(agent.applyConfig(cfg('node: a\nunderlay: {address: 198.18.0.9}\nnetworks: []\n')),
      (e: unknown) => e instanceof ConfigError && /reload refused: underlay changed/.test(e.message));
    assert.deepEqual(sys.calls, []);
    assert.equal(JSON.stringify(agent.config), before);

    // A network whose setup fails: the rest applies, the failure is reported, config reflects reality.
    sys.failOn = 'bridgeCreate br3';
    await assert.rejects(agent.applyConfig(A('peers: [198.18.0.5]\nlog: {level: debug}\n', '  - {name: blue, vni: 42, bridge: br0}\n  - {name: pink, vni: 45, bridge: br3}\n')),
      /reload partly applied; failed: pink \(vni 45\)/);
    assert.deepEqual(agent.config.networks.map((n) => n.name), ['blue']);
    assert.ok(lines.some((l) => l.msg === 'network added' || l.msg === 'network removed'));
  } finally {
    await agent.stop();
  }
  assert.deepEqual([...sys.links.keys()], ['br0'], 'only the bridge of the network still configured stays');
});

test('a TAP deleted under the running agent, or failing with a poll error: the network is failed (named readiness check, status), re-created with backoff, and traffic resumes', async () => {
  const { sys, net, reactor } = env(1);
  const sysB = new FakeSystem(net, reactor, 2);
  const clock = new FakeClock();
  const { logger, lines } = collectLogger();
  const a = await Agent.start(A('peers: [198.18.0.2]\n'), { system: sys, clock, api: false, logger });
  const b = await Agent.start(cfg('node: b\nunderlay: {address: 198.18.0.2}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\npeers: [198.18.0.1]\n'),
    { system: sysB, clock: new FakeClock(), api: false });
  const frame = Buffer.alloc(60);
  frame.fill(0xff, 0, 6);
  Buffer.from([0x02, 0xaa, 0, 0, 0, 1]).copy(frame, 6);
  frame.writeUInt16BE(0x0800, 12);
  const send = () => {
    sys.taps.get('vx-blue')!.inject(frame);
    reactor.run();
    return sysB.taps.get('vx-blue')!.takeWritten().length;
  };
  try {
    assert.equal(send(), 1);
    const first = sys.taps.get('vx-blue')!;
    // 1. Deleted underneath (ip link del): the next watch round notices; opening fails twice (backoff), then works.
    sys.links.delete('vx-blue');
    sys.failOn = 'openTap vx-blue';
    clock.advance(1000);
    let r = a.ready();
    assert.equal(r.ok, false);
    assert.equal(r.checks['network:blue'], false);
    const st = a.status() as { ready: { failing: string[] }; networks: Array<{ failed: string | null }> };
    assert.deepEqual(st.ready.failing, ['network:blue']);
    assert.match(String(st.networks[0].failed), /^TAP vx-blue was deleted; re-creating the TAP \(attempt 1 failed: injected failure: openTap vx-blue; next in 1s\)/);
    assert.ok(lines.some((l) => l.level === 'error' && /network blue failed: TAP vx-blue was deleted/.test(String(l.msg))));
    clock.advance(1000); // attempt 2 fails, next in 2 s
    clock.advance(1000); // not due yet
    assert.equal(a.networkFailure(42)?.attempts, 2);
    sys.failOn = null;
    clock.advance(1000); // attempt 3 succeeds
    r = a.ready();
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(a.networkFailure(42), null);
    assert.notEqual(sys.taps.get('vx-blue'), first, 'a new TAP');
    assert.equal(sys.links.get('vx-blue')?.master, 'br0', 're-enslaved');
    assert.ok(lines.some((l) => l.level === 'info' && /network blue recovered: TAP vx-blue re-created/.test(String(l.msg)) && l.attempts === 3));
    assert.equal(send(), 1, 'traffic resumes on the new TAP');

    // 2. A poll error on the TAP (the data path marks the network failed): re-created at the next round.
    sys.taps.get('vx-blue')!.emitError(Object.assign(new Error('poll: EBADFD'), { code: 'EBADFD' }));
    clock.advance(1000);
    assert.equal(a.networkFailure(42), null, 'recovered in the same round');
    assert.ok(lines.some((l) => l.level === 'error' && /network blue failed: .*EBADFD/.test(String(l.msg))));
    assert.equal(send(), 1);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('turning encryption on or off by reload says what MTU containers now need', async () => {
  const { sys } = env();
  const { logger, lines } = collectLogger();
  const agent = await Agent.start(A(), { system: sys, clock: new FakeClock(), api: false, logger });
  try {
    assert.ok(lines.some((l) => l.msg === 'network blue: containers on br0 need MTU 1450 or less on their interfaces'));
    await agent.applyConfig(A('', '  - {name: blue, vni: 42, bridge: br0, encrypted: true}\n'));
    const on = lines.find((l) => /encryption turned on/.test(String(l.msg)));
    assert.ok(on, lines.map((l) => l.msg).join('\n'));
    assert.equal(on.level, 'warn');
    assert.match(String(on.msg), /^network blue: encryption turned on, its MTU is now (\d+) \(was 1450\): containers on br0 need MTU \1 or less — endpoints vxmesh attached \(vxmesh attach, CNI, Docker\) get it on both ends now; set it on any other container interface on the bridge, or its large packets are lost/);
    assert.ok((on.mtu as number) < 1450);
    await agent.applyConfig(A());
    assert.ok(lines.some((l) => /^network blue: encryption turned off, its MTU is now 1450 \(was \d+\): containers on br0 need MTU 1450 or less — endpoints vxmesh attached .* get it on both ends now; .* \(they may raise theirs\)/.test(String(l.msg))));
  } finally {
    await agent.stop();
  }
});

test('not ready while an extension is still starting (the API already answers then)', async () => {
  const { sys } = env();
  const seen: ReturnType<Agent['ready']>[] = [];
  const slow = { name: 'slow', start: async (a: Agent) => { await new Promise((r) => setImmediate(r)); seen.push(a.ready()); }, stop: () => {} };
  const agent = await Agent.start(A('', '  - {name: blue, vni: 42, bridge: br0}\n'), { system: sys, clock: new FakeClock(), api: false, extensions: [slow] });
  assert.equal(seen.length, 1);
  assert.equal(seen[0].ok, false, 'ready before the extension finished starting');
  assert.equal(seen[0].checks.extensions, false);
  assert.equal(agent.ready().ok, true);
  await agent.stop();
});
