/**
 * Busy-poll in the control plane (native side: native-busypoll.test.ts): `underlay.busyPollUs` is
 * parsed and validated by the loader (default, bounds, the field named in the ConfigError, a
 * restart-only change), VXMESH_BUSY_POLL_US overrides it (a bad value is a ConfigError naming the
 * variable), the Datapath refuses a bad window, hands the window to devices that offer
 * `setBusyPoll` (TAPs read on the loop and the UDP transport), and over the in-memory twins
 * (which have none) busy-poll is a no-op: frames flow as without it; the figures reach
 * `vxmesh status` and the metrics, and neither shows busy-poll while it is off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffConfig } from '../../src/config/diff';
import { ConfigErrorList, DEFAULT_BUSY_POLL_US, effectiveBusyPollUs, parseConfig } from '../../src/config/load';
import { Datapath } from '../../src/dataplane/datapath';
import { ConfigError } from '../../src/errors';
import { FakeClock } from '../../src/clock';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { BLUE, cmac, frame, lab, netCfg } from './dp-lab';
import { renderStatus, type StatusJson } from '../../src/cli/commands/status';
import { VxmeshMetrics } from '../../src/metrics/registry';
import { LoopMonitor } from '../../src/metrics/loop';
import type { DatapathMetricsView } from '../../src/metrics/sources';
import { parseExposition, select, value } from './ops-expo';

const noLookup = { mtuLookup: () => null, hostname: 'h' };
const text = (extra = '') => `node: a\nunderlay:\n  address: 198.18.0.1\n${extra}networks:\n  - {name: blue, vni: 42, bridge: br0}\n`;

function configErrors(fn: () => unknown): ConfigError[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigErrorList) return e.errors;
    if (e instanceof ConfigError) return [e];
    throw e;
  }
  return [];
}

test('underlay.busyPollUs: default, 0..1000 µs, the field named on a bad value, restart-only', () => {
  assert.equal(parseConfig(text(), noLookup).underlay.busyPollUs, DEFAULT_BUSY_POLL_US);
  assert.equal(parseConfig(text('  busyPollUs: 0\n'), noLookup).underlay.busyPollUs, 0);
  assert.equal(parseConfig(text('  busyPollUs: 1000\n'), noLookup).underlay.busyPollUs, 1000);
  for (const bad of ['-1', '1001', '2.5', '"50"', 'true']) {
    const errs = configErrors(() => parseConfig(text(`  busyPollUs: ${bad}\n`), noLookup));
    assert.equal(errs.length, 1, `busyPollUs: ${bad} is refused`);
    assert.equal(errs[0].path, 'underlay.busyPollUs');
    assert.match(errs[0].message, /0\.\.1000 \(µs\)/);
  }
  const d = diffConfig(parseConfig(text(), noLookup), parseConfig(text('  busyPollUs: 0\n'), noLookup));
  assert.ok(d.refused.some((r) => r.startsWith('underlay changed')), JSON.stringify(d.refused));
});

test('VXMESH_BUSY_POLL_US overrides the config; a bad value is a ConfigError naming the variable', () => {
  assert.equal(effectiveBusyPollUs({ busyPollUs: 20 }, {}), 20);
  assert.equal(effectiveBusyPollUs({}, {}), DEFAULT_BUSY_POLL_US);
  assert.equal(effectiveBusyPollUs({ busyPollUs: 20 }, { VXMESH_BUSY_POLL_US: '0' }), 0);
  assert.equal(effectiveBusyPollUs({ busyPollUs: 20 }, { VXMESH_BUSY_POLL_US: '100' }), 100);
  assert.equal(effectiveBusyPollUs({ busyPollUs: 20 }, { VXMESH_BUSY_POLL_US: '' }), 20);
  for (const bad of ['-5', 'off', '1e3', '5000', '50us']) {
    const errs = configErrors(() => effectiveBusyPollUs({}, { VXMESH_BUSY_POLL_US: bad }));
    assert.equal(errs.length, 1, `VXMESH_BUSY_POLL_US=${bad} is refused`);
    assert.equal(errs[0].path, 'VXMESH_BUSY_POLL_US');
    assert.equal(errs[0].code, 'ERR_VXMESH_CONFIG');
  }
});

test('Datapath: a bad busyPollUs is refused; devices with setBusyPoll get the window (the UDP transport and TAPs read on the loop)', () => {
  const reactor = new MemoryReactor();
  const clock = new FakeClock(0);
  const net = new MemoryUdpNetwork({ reactor, clock });
  let host = 0;
  const mk = (busyPollUs: number) => {
    const address = `198.18.0.${++host}`;
    const udp = net.attach(address, 4789, 1);
    const tap = new MemoryTap({ name: 'vx-blue', mac: Buffer.from([2, 0xee, 0, 0, 0, host]), reactor });
    return { udp, tap, make: () => new Datapath({ networks: [{ config: netCfg('blue', BLUE), tap }], udp, clock, underlay: { family: 4, mtu: 1500, port: 4789, address }, busyPollUs }) };
  };
  for (const bad of [-1, 1.5, 100_001]) assert.throws(() => mk(bad).make(), /busyPollUs/);
  const { udp, tap, make } = mk(7);
  const got: string[] = [];
  (udp as unknown as { setBusyPoll(us: number): void }).setBusyPoll = (us) => got.push(`udp ${us}`);
  (tap as unknown as { setBusyPoll(us: number): void }).setBusyPoll = (us) => got.push(`tap ${us}`);
  const dp = make();
  dp.start();
  dp.stop();
  dp.start(); // registered once
  assert.deepEqual(got.sort(), ['tap 7', 'udp 7']);
  assert.equal(dp.busyPollStats(), null, 'a transport without busyPollStats: null');
});

test('over the in-memory twins busy-poll is a no-op: frames flow, no figures', () => {
  const { hosts, run } = lab({ hosts: 2, extra: { busyPollUs: 50 } });
  const [A, B] = hosts;
  A.tap(BLUE).inject(frame(0xffffffffffff, cmac(0, 1)));
  run();
  assert.equal(B.tap(BLUE).takeWritten().length, 1);
  B.tap(BLUE).inject(frame(cmac(0, 1), cmac(1, 1)));
  run();
  assert.equal(A.tap(BLUE).takeWritten().length, 1);
  assert.equal(A.dp.busyPollUs, 50);
  assert.equal(A.dp.busyPollStats(), null);
});

const figures = { windowUs: 50, spins: 10, polls: 400, hits: 7, callbacks: 8, spunUs: 2500, capped: 1, yields: 390, contended: 2, turnUs: 1000 };

test('status and metrics show the busy-poll figures, and nothing while it is off', async () => {
  const doc = (busyPoll: StatusJson['busyPoll']): StatusJson => ({
    node: 'h1', uptimeSeconds: 1, ready: { ok: true }, underlay: { address: '198.18.0.1', port: 4789 }, networks: [], peers: [], extensions: {}, busyPoll,
  });
  assert.match(renderStatus(doc(figures)), /busy-poll 50 µs: 10 windows, 7 of 400 polls found a packet \(8 batches without a wake-up\), 0\.003 s spun, 1 cut at the 1 ms turn cap, 2 backed off \(CPU shared with a busy task\)/);
  assert.doesNotMatch(renderStatus(doc(null)), /busy-poll/);

  let on = true;
  const { hosts } = lab({ hosts: 1 });
  const dp = hosts[0].dp;
  const view: DatapathMetricsView = Object.assign(Object.create(dp) as Datapath, { busyPollStats: () => (on ? figures : null) });
  const m = new VxmeshMetrics({ defaultMetrics: false, loop: new LoopMonitor({ clock: new FakeClock() }) });
  m.attachDatapath(() => view);
  let s = parseExposition(await m.metrics());
  assert.equal(value(s, 'vxmesh_busy_poll_window_seconds', {}), 50e-6);
  assert.equal(value(s, 'vxmesh_busy_poll_windows_total', {}), 10);
  assert.equal(value(s, 'vxmesh_busy_poll_polls_total', {}), 400);
  assert.equal(value(s, 'vxmesh_busy_poll_hits_total', {}), 7);
  assert.equal(value(s, 'vxmesh_busy_poll_seconds_total', {}), 0.0025);
  assert.equal(value(s, 'vxmesh_busy_poll_capped_total', {}), 1);
  assert.equal(value(s, 'vxmesh_busy_poll_backoffs_total', {}), 2);
  on = false;
  s = parseExposition(await m.metrics());
  assert.equal(select(s, 'vxmesh_busy_poll_windows_total').length, 0, 'no samples while off');
});
