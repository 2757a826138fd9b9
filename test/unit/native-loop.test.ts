/**
 * loopIdleMetrics (native/handle_glue.c): Node runs its loop with libuv's UV_METRICS_IDLE_TIME,
 * which makes every sleep of the loop two epoll_pwait calls; the data path turns it off
 * (src/dataplane/native-io.ts). The flag reads back, and eventLoopUtilization() shows it: with it
 * on the loop's idle time grows while the loop sleeps, with it off it does not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { loadAddon } from '../../src/native/addon';
import { nativeSkipReason } from './native-helpers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('loopIdleMetrics: Node sets it; off stops idle-time accounting, on restores it', { skip: nativeSkipReason() }, async () => {
  const addon = loadAddon();
  const was = addon.loopIdleMetrics(false);
  assert.equal(was, true, 'Node configures its loop with UV_METRICS_IDLE_TIME');
  try {
    assert.equal(addon.loopIdleMetrics(false), false, 'reads back off');
    const a = performance.eventLoopUtilization();
    await sleep(200);
    const off = performance.eventLoopUtilization(a);
    assert.ok(off.idle < 20, `idle time not counted while off: ${off.idle.toFixed(1)} ms`);
    assert.equal(addon.loopIdleMetrics(true), false);
    const b = performance.eventLoopUtilization();
    await sleep(200);
    const on = performance.eventLoopUtilization(b);
    assert.ok(on.idle > 100, `idle time counted again: ${on.idle.toFixed(1)} ms of 200`);
  } finally {
    addon.loopIdleMetrics(true);
  }
});
