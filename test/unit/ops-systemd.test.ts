// sd_notify over a real unix datagram socket (NOTIFY_SOCKET), through the addon: message order
// READY → WATCHDOG… → RELOADING(+MONOTONIC_USEC) → READY → STOPPING; the watchdog only while healthy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeClock } from '../../src/clock';
import { SystemdNotifier, monotonicUsec } from '../../src/metrics/systemd';
import { NotifyReceiver } from './ops-notify-receiver';

test('notifier is a no-op without NOTIFY_SOCKET', () => {
  let calls = 0;
  const n = new SystemdNotifier({ env: {}, send: () => { calls++; return true; } });
  assert.equal(n.enabled, false);
  assert.equal(n.watchdogMs, null);
  assert.equal(n.ready(), false);
  assert.equal(n.startWatchdog(() => true), false);
  assert.equal(calls, 0);
});

test('WATCHDOG_USEC → interval/2; WATCHDOG_PID for another process disables it', () => {
  const send = () => true;
  const a = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000' }, send });
  assert.equal(a.watchdogMs, 30_000);
  assert.equal(a.watchdogIntervalMs, 15_000);
  const b = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }, pid: 4242, send });
  assert.equal(b.watchdogMs, null);
  const c = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242' }, pid: 4242, send });
  assert.equal(c.watchdogMs, 30_000);
  const d = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: 'junk' }, send });
  assert.equal(d.watchdogMs, null);
});

test('real NOTIFY_SOCKET: READY, WATCHDOG only while healthy, RELOADING+MONOTONIC_USEC, READY, STOPPING — in order', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-notify-'));
  const sock = path.join(dir, 'notify.sock');
  const rx = await NotifyReceiver.start(sock);
  t.after(() => { rx.close(); fs.rmSync(dir, { recursive: true, force: true }); });

  const clock = new FakeClock();
  const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '2000000' }, clock });
  assert.equal(n.watchdogIntervalMs, 1000);
  let healthy = true;
  assert.ok(n.startWatchdog(() => (healthy ? true : { ok: false, reason: 'udp socket closed' })));
  assert.ok(n.ready('running'));
  clock.advance(1000); // WATCHDOG=1
  clock.advance(1000); // WATCHDOG=1
  healthy = false;
  clock.advance(3000); // three rounds withheld
  healthy = true;
  clock.advance(1000); // WATCHDOG=1
  const before = monotonicUsec();
  assert.equal(await n.reload(async () => true), true);
  assert.equal(await n.reload(async () => { throw new Error('networks[0].vni: expected 1..16777215'); }), false);
  assert.ok(n.stopping());
  clock.advance(5000); // watchdog stopped: nothing more

  const msgs = await rx.waitFor(9, 5000);
  assert.deepEqual(msgs.map((m) => m.split('\n')[0]), [
    'READY=1', 'WATCHDOG=1', 'WATCHDOG=1', 'WATCHDOG=1',
    'RELOADING=1', 'READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1',
  ]);
  assert.equal(msgs[0], 'READY=1\nSTATUS=running');
  const mono = /MONOTONIC_USEC=(\d+)/.exec(msgs[4]);
  assert.ok(mono, msgs[4]);
  const usec = BigInt(mono![1]);
  assert.ok(usec >= before && usec <= monotonicUsec(), 'MONOTONIC_USEC is CLOCK_MONOTONIC now');
  assert.match(msgs[5], /STATUS=running; configuration reloaded/);
  assert.match(msgs[7], /STATUS=running; reload refused: networks\[0\]\.vni: expected 1\.\.16777215, previous configuration kept/);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(rx.messages.length, 9, 'nothing after STOPPING=1');
  assert.deepEqual(n.stats(), { ready: 3, watchdog: 3, watchdogSkipped: 3, reloading: 2, stopping: 1, errors: 0 });
});

test('a vanished socket is counted and logged once, never thrown', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-notify-'));
  try {
    const warnings: unknown[] = [];
    const logger = { warn: (o: unknown) => warnings.push(o) } as never;
    const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: path.join(dir, 'missing.sock') }, logger });
    assert.equal(n.ready(), false);
    assert.equal(n.status('x'), false);
    assert.equal(n.stats().errors, 2);
    assert.equal(warnings.length, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
