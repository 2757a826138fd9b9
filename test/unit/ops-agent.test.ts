// The ops extension and AgentService on a real Agent over in-memory devices: /metrics, /healthz,
// /readyz over HTTP; sd_notify on a real unix socket (READY only once ready, WATCHDOG while healthy,
// RELOADING/READY around an accepted and a refused reload, STOPPING); reloads counted. The agent,
// the service and the notifier run on an injected FakeClock, so the protocol's timing (watchdog
// interval, readiness poll, nothing after STOPPING) is asserted by advancing time, not by sleeping;
// only socket and HTTP delivery is awaited (bounded).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeClock } from '../../src/clock';
import { Agent, type AgentExtension, type AgentSystem, type OpenedTap } from '../../src/agent/agent';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/types';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { OpsExtension } from '../../src/metrics/extension';
import { AgentService } from '../../src/metrics/service';
import { SystemdNotifier } from '../../src/metrics/systemd';
import { NotifyReceiver } from './ops-notify-receiver';
import { parseExposition, value } from './ops-expo';
import { run, toolsSkip } from './ops-tools';

/** The agent's system calls over in-memory links and devices. */
function memorySystem(): AgentSystem {
  const reactor = new MemoryReactor({ auto: true });
  const wire = new MemoryUdpNetwork({ reactor });
  const links = new Set<string>();
  const up = new Set<string>();
  const master = new Map<string, string>();
  return {
    linkExists: (n) => links.has(n),
    bridgeCreate: (n) => { links.add(n); },
    bridgeDelete: (n) => { links.delete(n); },
    bridgeAddPort: (b, i) => { master.set(i, b); },
    bridgeDelPort: (_b, i) => { master.delete(i); },
    setMtu: () => {},
    setUp: (n, u) => { if (u) up.add(n); else up.delete(n); },
    isUp: (n) => up.has(n),
    masterOf: (i) => master.get(i) ?? null,
    openTap: (n) => {
      links.add(n);
      const tap = new MemoryTap({ name: n, reactor }) as MemoryTap & { created: boolean };
      tap.created = true;
      return tap as OpenedTap;
    },
    openUdp: (o) => wire.attach(o.address, o.port, o.sourcePorts),
  };
}

const BASE = `
node: host-a
underlay: { address: 198.18.0.1, port: 4789 }
networks:
  - { name: blue, vni: 42, bridge: br0 }
peers: [198.18.0.2]
api: { listen: 127.0.0.1:9469 }
`;

function config(text: string): Config {
  const c = parseConfig(text, { mtuLookup: () => 1500, hostname: 'host-a' });
  c.api.listen.port = 0; // an ephemeral port for the test
  return c;
}

function get(port: number, p: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    // agent: false — a fresh connection per request: a pooled keep-alive socket can be closed by the
    // server just as the next request is written on it (ECONNRESET under load).
    const req = http.get({ host: '127.0.0.1', port, path: p, timeout: 5000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${p} timed out`)));
    req.on('error', reject);
  });
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('agent as a service: endpoints, readiness-gated READY=1, watchdog, reloads, STOPPING', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-ops-agent-'));
  const sock = path.join(dir, 'notify.sock');
  const rx = await NotifyReceiver.start(sock);
  t.after(() => { rx.close(); fs.rmSync(dir, { recursive: true, force: true }); });

  // A stand-in for gossip: not ready until "joined".
  let joined = false;
  const seedWait: AgentExtension = { name: 'gossip', start() {}, stop() {}, ready: () => joined };
  const ops = new OpsExtension({ version: '9.9.9' });
  const clock = new FakeClock(1_000_000);
  const agent = await Agent.start(config(BASE), { system: memorySystem(), extensions: [seedWait, ops], clock });
  let stopped = false;
  t.after(async () => { if (!stopped) await agent.stop(); });
  const port = agent.api!.address()!.port;

  // WATCHDOG_USEC 100 ms: WATCHDOG=1 every 50 ms of (fake) time; readiness polled every 20 ms.
  const notifier = new SystemdNotifier({ env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '100000' }, clock });
  const service = new AgentService({ notifier, readyPollMs: 20, clock });
  service.started(agent);

  // Not ready: /readyz says which check fails, READY=1 is withheld, the watchdog already runs.
  let r = await get(port, '/readyz');
  assert.equal(r.status, 503);
  const notReady = JSON.parse(r.body);
  assert.equal(notReady.status, 'fail');
  assert.equal(notReady.checks['ext:gossip'], false);
  assert.equal(notReady.checks.taps, true);
  assert.equal(notReady.checks.udp, true);
  clock.advance(100); // two watchdog rounds and five readiness polls, all not ready
  assert.equal(notifier.stats().watchdog, 2);
  await rx.waitFor(2, 5000);
  assert.equal(rx.messages.filter((m: string) => m !== 'WATCHDOG=1').length, 0, JSON.stringify(rx.messages));
  assert.equal(service.isAnnounced, false);
  assert.equal(notifier.stats().ready, 0);
  let s = parseExposition((await get(port, '/metrics')).body);
  assert.equal(value(s, 'vxmesh_ready'), 0);

  joined = true;
  clock.advance(19);
  assert.equal(notifier.stats().ready, 0, 'READY=1 waits for the next readiness poll');
  clock.advance(1);
  assert.equal(notifier.stats().ready, 1, 'READY=1 at the first poll that finds the agent ready');
  assert.equal(service.isAnnounced, true);
  await until('READY=1', () => rx.messages.some((m) => m.startsWith('READY=1')));
  r = await get(port, '/readyz');
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).status, 'ok');

  r = await get(port, '/healthz');
  assert.equal(r.status, 200);
  const health = JSON.parse(r.body);
  assert.equal(health.checks.process, true);
  assert.equal(health.checks.eventLoop, true);

  r = await get(port, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/plain; version=0\.0\.4/);
  s = parseExposition(r.body);
  assert.equal(value(s, 'vxmesh_ready'), 1);
  assert.equal(value(s, 'vxmesh_info', { version: '9.9.9', node: 'host-a' }), 1);
  assert.equal(value(s, 'vxmesh_networks'), 1);
  assert.equal(value(s, 'vxmesh_network_rx_packets_total', { network: 'blue', vni: 42 }), 0);
  if (!toolsSkip('promtool')) {
    const check = run('promtool', ['check', 'metrics'], { input: r.body });
    assert.equal(check.status, 0, check.stdout + check.stderr);
  } else {
    t.skip(toolsSkip('promtool'));
  }

  // Reload accepted: a network added.
  const ok = await service.reload(() => agent.applyConfig(config(BASE.replace('networks:\n', 'networks:\n  - { name: red, vni: 43, bridge: br1 }\n'))));
  assert.equal(ok, true);
  s = parseExposition((await get(port, '/metrics')).body);
  assert.equal(value(s, 'vxmesh_networks'), 2);
  assert.equal(value(s, 'vxmesh_network_rx_packets_total', { network: 'red', vni: 43 }), 0);
  assert.equal(value(s, 'vxmesh_config_reloads_total', { result: 'ok' }), 1);
  assert.ok(value(s, 'vxmesh_config_last_reload_success_timestamp_seconds') > 1.7e9);

  // Reload refused: the underlay port cannot change live; the running config stays.
  const refused = await service.reload(() => agent.applyConfig(config(BASE.replace('port: 4789', 'port: 4790'))));
  assert.equal(refused, false);
  s = parseExposition((await get(port, '/metrics')).body);
  assert.equal(value(s, 'vxmesh_networks'), 2);
  assert.equal(value(s, 'vxmesh_config_reloads_total', { result: 'refused' }), 1);
  assert.equal(agent.config.underlay.port, 4789);

  service.stopping();
  await agent.stop();
  stopped = true;
  const atStop = notifier.stats();
  clock.advance(300); // six watchdog intervals: nothing may follow STOPPING
  assert.deepEqual(notifier.stats(), atStop, 'nothing sent after STOPPING=1');
  assert.equal(clock.pending, 0, 'no timer of the agent, service or notifier left running');
  // Datagrams on a unix socket arrive in order: once STOPPING=1 is in, everything sent is.
  await until('STOPPING=1 received', () => rx.messages.includes('STOPPING=1'));
  assert.equal(rx.messages.length, atStop.ready + atStop.reloading + atStop.watchdog + atStop.stopping, JSON.stringify(rx.messages));

  const main = rx.messages.filter((m) => m !== 'WATCHDOG=1').map((m) => m.split('\n')[0]);
  assert.deepEqual(main, ['READY=1', 'RELOADING=1', 'READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1']);
  const texts = rx.messages.filter((m) => m !== 'WATCHDOG=1');
  assert.match(texts[0], /STATUS=running: 1 network$/);
  assert.match(texts[1], /^RELOADING=1\nMONOTONIC_USEC=\d+/);
  assert.match(texts[2], /STATUS=running; configuration reloaded/);
  assert.match(texts[4], /STATUS=running; reload refused: .*underlay.*previous configuration kept/);
  assert.equal(rx.messages[rx.messages.length - 1], 'STOPPING=1');
  assert.equal(rx.messages.filter((m) => m === 'WATCHDOG=1').length, atStop.watchdog);
  assert.ok(atStop.watchdog >= 2);
});

test('watchdog pings stop while the data path is unhealthy, resume when it recovers', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-ops-agent-'));
  const sock = path.join(dir, 'notify.sock');
  const rx = await NotifyReceiver.start(sock);
  t.after(() => { rx.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  const ops = new OpsExtension({ defaultMetrics: false });
  const clock = new FakeClock(1_000_000);
  const agent = await Agent.start(config(BASE), { system: memorySystem(), extensions: [ops], clock });
  t.after(() => agent.stop());
  const notifier = new SystemdNotifier({ env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '100000' }, clock });
  const service = new AgentService({ notifier, clock });
  service.started(agent);
  clock.advance(50);
  assert.deepEqual({ ready: notifier.stats().ready, watchdog: notifier.stats().watchdog }, { ready: 1, watchdog: 1 });
  await until('READY and a WATCHDOG', () => rx.messages.includes('READY=1\nSTATUS=running: 1 network') && rx.messages.includes('WATCHDOG=1'));
  assert.deepEqual(ops.datapathHealthy(), { ok: true });

  agent.datapath.stop(); // the data path dies under the agent
  assert.deepEqual(ops.datapathHealthy(), { ok: false, reason: 'data path not running' });
  const before = notifier.stats();
  clock.advance(250); // five watchdog rounds
  assert.equal(notifier.stats().watchdogSkipped, before.watchdogSkipped + 5, 'five rounds withheld');
  assert.equal(notifier.stats().watchdog, before.watchdog, 'no WATCHDOG=1 while unhealthy');

  agent.datapath.start();
  clock.advance(50);
  assert.equal(notifier.stats().watchdog, before.watchdog + 1, 'watchdog resumed at the next round');
  await until('the resumed WATCHDOG=1 received', () => rx.messages.filter((m) => m === 'WATCHDOG=1').length === before.watchdog + 1);
  service.stopping();
});
