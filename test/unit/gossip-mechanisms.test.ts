/** The small SWIM mechanisms in isolation: suspicion timer, awareness, broadcast queue, profiles. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/clock';
import { Awareness } from '../../src/gossip/awareness';
import { BroadcastQueue, retransmitLimit } from '../../src/gossip/broadcast-queue';
import { PROFILES, pushPullIntervalFor, suspicionMinMs, tuningFor } from '../../src/gossip/config';
import { Suspicion, suspicionTimeout } from '../../src/gossip/suspicion';

test('suspicion timeout shrinks from max to min as log(c+1)/log(k+1)', () => {
  assert.equal(suspicionTimeout(0, 3, 1000, 6000), 6000);
  assert.equal(suspicionTimeout(1, 3, 1000, 6000), Math.floor(6000 - 5000 * (Math.log(2) / Math.log(4))));
  assert.equal(suspicionTimeout(3, 3, 1000, 6000), 1000);
  assert.equal(suspicionTimeout(10, 3, 1000, 6000), 1000);
  assert.equal(suspicionTimeout(0, 0, 1000, 6000), 1000, 'k = 0: minimum at once');
});

test('suspicion fires at max without confirmations', () => {
  const clock = new FakeClock();
  let fired = -1;
  new Suspicion('a', 3, 1000, 6000, clock, (c) => { fired = c; });
  clock.advance(5999);
  assert.equal(fired, -1);
  clock.advance(1);
  assert.equal(fired, 0);
});

test('independent confirmations bring the deadline forward; repeats and the originator do not count', () => {
  const clock = new FakeClock();
  let firedAt = -1;
  const s = new Suspicion('a', 3, 1000, 6000, clock, () => { firedAt = clock.now(); });
  clock.advance(500);
  assert.equal(s.confirm('a'), false, 'originator');
  assert.equal(s.confirm('b'), true);
  assert.equal(s.confirm('b'), false, 'repeat');
  assert.equal(s.confirm('c'), true);
  assert.equal(s.confirm('d'), true);
  assert.equal(s.confirm('e'), false, 'beyond k');
  assert.equal(s.confirmationCount, 3);
  clock.advance(10_000);
  assert.equal(firedAt, 1000, 'k confirmations: the minimum, counted from the start');
});

test('a confirmation after the shrunk deadline already passed fires at once; cancel prevents firing', () => {
  const clock = new FakeClock();
  let fired = 0;
  const s = new Suspicion('a', 1, 1000, 6000, clock, () => fired++);
  clock.advance(3000);
  s.confirm('b');
  clock.advance(0);
  assert.equal(fired, 1);
  const s2 = new Suspicion('a', 1, 1000, 6000, clock, () => fired++);
  s2.cancel();
  clock.advance(10_000);
  assert.equal(fired, 1);
});

test('awareness scales timeouts by score + 1 and stays within [0, max − 1]', () => {
  const a = new Awareness(8);
  assert.equal(a.scaleTimeout(500), 500);
  a.applyDelta(3);
  assert.equal(a.getHealthScore(), 3);
  assert.equal(a.scaleTimeout(500), 2000);
  a.applyDelta(100);
  assert.equal(a.getHealthScore(), 7);
  a.applyDelta(-100);
  assert.equal(a.getHealthScore(), 0);
});

test('broadcast queue: retransmit limit λ·ceil(log10(N+1)), invalidation by member, fewest-sent first, byte budget', () => {
  let n = 99;
  const q = new BroadcastQueue(4, () => n);
  assert.equal(retransmitLimit(4, 99), 8);
  q.push('a', new Uint8Array(100));
  q.push('b', new Uint8Array(100));
  let doneA = 0;
  q.push('a', new Uint8Array(50), () => doneA++); // replaces the older update about a
  assert.equal(q.length, 2);
  // Budget fits one 100-byte update + framing only.
  const first = q.take(110, 2);
  assert.equal(first.length, 1);
  assert.equal(first[0].length, 50, 'newest first among equally-sent');
  const second = q.take(110, 2);
  assert.equal(second[0].length, 100, 'then the one sent fewer times');
  let sent = 2;
  while (q.length > 0) sent += q.take(1000, 2).length;
  assert.equal(sent, 16, 'each of 2 updates sent exactly 8 times');
  assert.equal(doneA, 1);
  // Too big for the budget: skipped, unless it may go alone.
  q.push('big', new Uint8Array(5000));
  assert.deepEqual(q.take(1400, 2), []);
  assert.equal(q.take(1400, 2, true).length, 1);
  n = 9;
  assert.equal(retransmitLimit(4, n), 4);
});

test('profiles: every field set, suspicion and push-pull formulas', () => {
  for (const p of Object.values(PROFILES)) {
    for (const [k, v] of Object.entries(p)) assert.ok(typeof v === 'number' && v > 0, `${k} = ${v}`);
    assert.ok(p.probeTimeoutMs < p.probeIntervalMs);
  }
  const lan = tuningFor('lan');
  assert.equal(suspicionMinMs(lan, 1000), lan.suspicionMult * 3 * lan.probeIntervalMs);
  assert.equal(suspicionMinMs(lan, 5), lan.suspicionMult * lan.probeIntervalMs, 'log10 floored at 1');
  assert.equal(pushPullIntervalFor(lan, 32), lan.pushPullIntervalMs);
  assert.equal(pushPullIntervalFor(lan, 10_000), lan.pushPullIntervalMs * 10);
  assert.equal(tuningFor('test', { probeIntervalMs: 7 }).probeIntervalMs, 7);
});
