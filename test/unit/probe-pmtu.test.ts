/**
 * The PMTU search state machine (src/probe/pmtu.ts), driven deterministically: a path that carries
 * sizes ≤ `path` answers each probe at once; larger ones time out after 1000 ms.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PmtuSearch } from '../../src/probe/pmtu';

/** Runs the search for `ms` against a path of `path()` bytes; returns the time it first reported `want` (or -1). */
function drive(s: PmtuSearch, start: number, ms: number, path: () => number, want?: number): { at: number; now: number; sent: number; seen: Set<number> } {
  const seen = new Set<number>();
  let now = start;
  let at = -1;
  let sent = 0;
  const inflight: { size: number; due: number }[] = [];
  for (; now <= start + ms; now += 100) {
    for (let i = inflight.length - 1; i >= 0; i--) {
      if (inflight[i].due <= now) {
        s.loss(inflight[i].size, now, false, inflight[i].due - 1000);
        inflight.splice(i, 1);
      }
    }
    for (const size of s.due(now)) {
      sent++;
      if (size <= path()) s.ack(size, now);
      else inflight.push({ size, due: now + 1000 });
    }
    seen.add(s.pmtu);
    if (want !== undefined && at < 0 && s.pmtu === want && s.phase === 'complete') at = now;
  }
  return { at, now, sent, seen };
}

test('pmtu: a path as large as the underlay MTU is found in one round', () => {
  const s = new PmtuSearch({ base: 1200, max: 1500 });
  const r = drive(s, 0, 1000, () => 1500, 1500);
  assert.equal(s.phase, 'complete');
  assert.equal(s.pmtu, 1500);
  assert.ok(r.at >= 0 && r.at <= 100, `found at ${r.at} ms`); // base, then the search round
});

test('pmtu: a smaller path is found exactly, in a few rounds (8 sizes per round, 3 losses per size)', () => {
  const s = new PmtuSearch({ base: 1200, max: 1500 });
  const r = drive(s, 0, 30_000, () => 1400, 1400);
  assert.equal(s.pmtu, 1400);
  assert.equal(s.phase, 'complete');
  assert.ok(r.at > 0 && r.at <= 12_000, `found at ${r.at} ms`);
});

test('pmtu: confirmation finds a black hole (the path shrinks) and the search finds the new size, never above the failed one', () => {
  let path = 1500;
  const s = new PmtuSearch({ base: 1200, max: 1500, confirmIntervalMs: 2000 });
  drive(s, 0, 1000, () => path);
  assert.equal(s.pmtu, 1500);
  path = 1350;
  // before the black hole is detected, the old value stands
  const r = drive(s, 1100, 30_000, () => path, 1350);
  assert.equal(s.pmtu, 1350);
  assert.equal(s.blackHoles, 1);
  assert.ok(r.at > 1100 && r.at - 1100 <= 20_000, `new path MTU after ${r.at - 1100} ms`);
  assert.ok(s.high <= 1499);
  assert.deepEqual([...r.seen].sort(), [0, 1350, 1500], 'only finished results are used (unknown while searching)');
});

test('pmtu: a path that grows again is found after the raise interval', () => {
  let path = 1300;
  const s = new PmtuSearch({ base: 1200, max: 1500, raiseIntervalMs: 10_000 });
  drive(s, 0, 20_000, () => path, 1300);
  assert.equal(s.pmtu, 1300);
  path = 1500;
  drive(s, 20_100, 15_000, () => path);
  assert.equal(s.pmtu, 1500);
});

test('pmtu: a peer that never answers is an error with an unknown path MTU; base is retried', () => {
  const s = new PmtuSearch({ base: 1200, max: 1500, errorRetryMs: 5000 });
  const r = drive(s, 0, 20_000, () => 0);
  assert.equal(s.phase, 'error');
  assert.equal(s.pmtu, 0);
  // 3 losses of base, then one base probe per 5 s (+ its 3 s of retries)
  assert.ok(r.sent >= 3 && r.sent <= 12, `sent ${r.sent}`);
  // and it comes back when the peer answers
  drive(s, 20_100, 10_000, () => 1500);
  assert.equal(s.pmtu, 1500);
});

test('pmtu: a local EMSGSIZE is a hard failure of that size at once', () => {
  const s = new PmtuSearch({ base: 1200, max: 1500 });
  s.ack(1200, 0); // base passes → search
  assert.equal(s.phase, 'search');
  const sizes = s.due(0);
  assert.ok(sizes.includes(1500));
  s.loss(1500, 0, true);
  assert.equal(s.high, 1499);
});

test('pmtu: a lost confirmation is retried at once, and one answer clears it (no false black hole)', () => {
  const s = new PmtuSearch({ base: 1200, max: 1500, confirmIntervalMs: 2000 });
  for (const size of s.due(0)) s.ack(size, 0);
  for (const size of s.due(0)) s.ack(size, 0);
  assert.equal(s.phase, 'complete');
  assert.deepEqual(s.due(2000), [1500]);
  s.loss(1500, 3000);
  assert.deepEqual(s.due(3000), [1500, 1500], 'retried at once, the 2 tries left together');
  s.ack(1500, 3010);
  s.loss(1500, 4000, false, 3000); // the other copy, sent with the one answered
  assert.equal(s.pmtu, 1500);
  assert.equal(s.blackHoles, 0);
  assert.deepEqual(s.due(4100), [], 'next confirmation only after the interval');
  assert.equal(s.pmtu, 1500);
});
