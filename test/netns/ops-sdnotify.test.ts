/**
 * Issue 6, the real agent process under a NOTIFY_SOCKET (a unix datagram socket, as systemd gives
 * a Type=notify service) in a lab host: READY=1 once serving, WATCHDOG=1 every WATCHDOG_USEC/2,
 * SIGHUP with a valid config (network added) → RELOADING=1 + MONOTONIC_USEC … READY=1, SIGHUP with
 * an invalid config → refused with a log line naming the field, READY=1 again and the running
 * config kept, SIGTERM → STOPPING=1 and exit 0. /metrics counts the reloads.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { labFor, netnsSkip } from '../helpers/lab';
import { toolsSkip } from '../unit/ops-tools';
import { agentConfig } from '../../lab/vxmesh';
import { REPO_ROOT, type Lab } from '../../lab/netns';
import { NotifyReceiver } from '../unit/ops-notify-receiver';

const skip = netnsSkip() ?? toolsSkip('python3');

async function metricsText(lab: Lab, ns: string, url: string): Promise<string> {
  const script = 'fetch(process.argv[1],{signal:AbortSignal.timeout(5000)}).then(async r=>{process.stdout.write(await r.text())}).catch(e=>{process.stderr.write(String(e));process.exit(4)})';
  const r = await lab.exec(ns, process.execPath, ['-e', script, url], { timeoutMs: 15_000 });
  return r.stdout;
}

function metric(text: string, line: RegExp): number {
  const m = line.exec(text);
  assert.ok(m, `${line} in /metrics`);
  return Number(m[1]);
}

test('agent process: READY, WATCHDOG, RELOADING/READY on SIGHUP (applied and refused), STOPPING', { skip, timeout: 120_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 1 });
  const h1 = lab.hosts[0];
  await lab.addBridge(h1, 'br0');
  const rx = await NotifyReceiver.start(path.join(lab.dir, 'notify.sock'));
  t.after(() => rx.close());

  const base = agentConfig(lab, h1, { networks: [{ name: 'blue', vni: 42, bridge: 'br0' }], peers: [] });
  const file = lab.writeFile('agent.yaml', stringify(base));
  const agent = lab.spawn(h1.ns, process.execPath, [path.join(REPO_ROOT, 'bin', 'vxmesh'), 'agent', '--config', file, '--state-dir', path.join(lab.dir, 'state')], {
    name: 'vxmesh',
    env: { ...process.env, NOTIFY_SOCKET: path.join(lab.dir, 'notify.sock'), WATCHDOG_USEC: '400000', VXMESH_LOG_FORMAT: 'json' },
  });
  const has = (prefix: string, n = 1) => rx.messages.filter((m) => m.startsWith(prefix)).length >= n;
  const wait = (what: string, cond: () => boolean) => lab.waitFor(what, () => {
    if (!agent.running()) throw new Error(`agent exited:\n${agent.output()}`);
    return cond();
  }, { timeoutMs: 30_000, intervalMs: 20 });

  await wait('READY=1', () => has('READY=1'));
  await wait('WATCHDOG=1 twice', () => has('WATCHDOG=1', 2));

  // A valid new config: network red added.
  fs.writeFileSync(file, stringify({ ...base, networks: [...(base.networks as object[]), { name: 'red', vni: 43, bridge: 'br1' }] }));
  process.kill(agent.pid, 'SIGHUP');
  await wait('READY=1 after the first reload', () => has('READY=1', 2));
  assert.ok(await lab.linkExists(h1.ns, 'br1'), 'the new network\'s bridge exists');

  // An invalid one: refused, the running config stays.
  fs.writeFileSync(file, stringify({ ...base, networks: [{ name: 'blue', vni: 0, bridge: 'br0' }] }));
  process.kill(agent.pid, 'SIGHUP');
  await wait('READY=1 after the refused reload', () => has('READY=1', 3));
  await wait('the refusal logged', () => /reload: new config is invalid, keeping the running config/.test(agent.output()));
  const refusal = agent.output().split('\n').find((l) => l.includes('new config is invalid'))!;
  const rec = JSON.parse(refusal);
  assert.equal(rec.level, 'error');
  assert.match(rec.msg, /networks\[0\]\.vni/);
  assert.ok(await lab.linkExists(h1.ns, 'br1'), 'still running the previous config');

  const text = await metricsText(lab, h1.ns, 'http://127.0.0.1:9469/metrics');
  assert.equal(metric(text, /^vxmesh_config_reloads_total\{result="ok"\} (\S+)$/m), 1);
  assert.equal(metric(text, /^vxmesh_config_reloads_total\{result="refused"\} (\S+)$/m), 1);
  assert.equal(metric(text, /^vxmesh_networks (\S+)$/m), 2);

  process.kill(agent.pid, 'SIGTERM');
  const exit = await Promise.race([agent.exited, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
  assert.deepEqual(exit, { code: 0, signal: null }, agent.output());
  await lab.waitFor('STOPPING=1', () => has('STOPPING=1'), { timeoutMs: 5000, intervalMs: 20 });
  assert.ok(await lab.linkExists(h1.ns, 'br1'), 'the bridge the agent created stays after a stop (removed by vxmesh cleanup)');

  const main = rx.messages.filter((m) => m !== 'WATCHDOG=1');
  assert.deepEqual(main.map((m) => m.split('\n')[0]), ['READY=1', 'RELOADING=1', 'READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1']);
  assert.match(main[1], /^RELOADING=1\nMONOTONIC_USEC=\d+/);
  assert.match(main[2], /STATUS=running; configuration reloaded/);
  assert.match(main[4], /STATUS=running; reload refused: .*networks\[0\]\.vni/);
  assert.equal(rx.messages[rx.messages.length - 1], 'STOPPING=1');
  // The watchdog ran between READY and STOPPING.
  const first = rx.messages.findIndex((m) => m.startsWith('READY=1'));
  assert.ok(rx.messages.slice(first).includes('WATCHDOG=1'));
});
