/**
 * Replay window against WireGuard's counter cases (wireguard-go replay/replay_test.go, ported
 * from the Linux kernel): in order, reordered within the window, duplicates, below the window,
 * the window sliding, big jumps, the message limit; plus check() never changing state.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { ReplayWindow, WINDOW_SIZE } from '../../src/crypto/replay';
import { seededRandom } from '../../src/dataplane/memory-io';

// WireGuard tests with RejectAfterMessages = 2^64 − 2^4 − 1; JS counters are exact to 2^53, so the
// same cases run with a limit of 2^50 − 2^4 − 1 (the limit arithmetic is what is being tested).
const LIMIT = 2 ** 50 - 2 ** 4 - 1;

test('window size is at least 8,128 packets', () => {
  assert.equal(WINDOW_SIZE, 8128);
});

test("WireGuard's 34 ordered cases", () => {
  const f = new ReplayWindow(LIMIT);
  const T_LIM = WINDOW_SIZE + 1;
  const cases: [number, boolean][] = [
    [0, true], [1, true], [1, false], [9, true], [8, true], [7, true], [7, false],
    [T_LIM, true], [T_LIM - 1, true], [T_LIM - 1, false], [T_LIM - 2, true], [2, true], [2, false],
    [T_LIM + 16, true], [3, false], [T_LIM + 16, false], [T_LIM * 4, true],
    [T_LIM * 4 - (T_LIM - 1), true], [10, false], [T_LIM * 4 - T_LIM, false],
    [T_LIM * 4 - (T_LIM + 1), false], [T_LIM * 4 - (T_LIM - 2), true], [T_LIM * 4 + 1 - T_LIM, false],
    [0, false], [LIMIT, false], [LIMIT - 1, true], [LIMIT, false], [LIMIT - 1, false], [LIMIT - 2, true],
    [LIMIT + 1, false], [LIMIT + 2, false], [LIMIT - 2, false], [LIMIT - 3, true], [0, false],
  ];
  cases.forEach(([n, want], i) => {
    const checked = f.check(n);
    assert.equal(checked, want, `case ${i + 1}: check(${n})`);
    assert.equal(f.accept(n), want, `case ${i + 1}: accept(${n})`);
  });
});

function bulk(seq: number[], tail: [number, boolean][]): void {
  const f = new ReplayWindow(LIMIT);
  for (const n of seq) assert.equal(f.accept(n), true, `accept(${n})`);
  for (const [n, want] of tail) assert.equal(f.accept(n), want, `accept(${n})`);
}
const range = (from: number, to: number, step = 1): number[] => {
  const r: number[] = [];
  for (let i = from; step > 0 ? i <= to : i >= to; i += step) r.push(i);
  return r;
};

test('bulk 1: in order across the whole window, then 0 once', () => bulk(range(1, WINDOW_SIZE), [[0, true], [0, false]]));
test('bulk 2: window slid by one, 1 still inside, 0 outside', () => bulk(range(2, WINDOW_SIZE + 1), [[1, true], [0, false]]));
test('bulk 3: reverse order over the window', () => bulk(range(WINDOW_SIZE + 1, 1, -1), []));
test('bulk 4: reverse order, then below the window', () => bulk(range(WINDOW_SIZE + 2, 2, -1), [[0, false]]));
test('bulk 5: reverse, slide by one', () => bulk(range(WINDOW_SIZE, 1, -1), [[WINDOW_SIZE + 1, true], [0, false]]));
test('bulk 6: reverse, 0, then slide', () => bulk(range(WINDOW_SIZE, 1, -1), [[0, true], [WINDOW_SIZE + 1, true]]));

test('check() never changes state; accept() is idempotent-false for duplicates', () => {
  const f = new ReplayWindow();
  for (const n of [5, 100, 3, 9000, 8999]) f.accept(n);
  const before = f.snapshot();
  for (const n of [0, 1, 5, 100, 872, 873, 9000, 9001, 1e9, -1, 1.5, NaN, 2 ** 53]) f.check(n);
  assert.deepEqual(f.snapshot(), before);
  assert.equal(f.accept(9000), false);
  assert.equal(f.accept(-1), false);
  assert.equal(f.accept(1.5), false);
  assert.equal(f.accept(2 ** 53), false, 'beyond exact integers: rejected');
});

test('big jump clears the whole ring: old bits do not alias into the new window', () => {
  const f = new ReplayWindow();
  for (let i = 0; i < 200; i++) f.accept(i);
  const jump = 64 * 128 * 1000 + 5; // same ring positions as small counters
  assert.equal(f.accept(jump), true);
  for (let i = jump - WINDOW_SIZE; i < jump; i += 37) assert.equal(f.accept(i), true, `accept(${i})`);
  assert.equal(f.accept(jump - WINDOW_SIZE - 1), false);
});

test('randomised against a reference set (seeded)', () => {
  const r = seededRandom(12345);
  const rnd = (): number => Math.floor(r() * 0x7fffffff);
  const f = new ReplayWindow();
  const seen = new Set<number>();
  let newest = 0;
  for (let k = 0; k < 50000; k++) {
    const base = newest + (rnd() % 200) - 150;
    const n = Math.max(0, rnd() % 50 === 0 ? newest + (rnd() % 20000) : base);
    const want = !seen.has(n) && (n > newest || newest - n <= WINDOW_SIZE);
    assert.equal(f.accept(n), want, `step ${k}: ${n} (newest ${newest})`);
    if (want) { seen.add(n); newest = Math.max(newest, n); }
  }
});
