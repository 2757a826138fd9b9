/**
 * Conntrack: a flow and its reply find one entry; nebula's timeouts per protocol, refreshed by
 * traffic; a full probe window evicts (counted) the entry closest to expiry; removal keeps other
 * entries reachable; the original direction is recoverable for policy re-checks.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ipBytes } from '../../src/ipam/cidr';
import { Conntrack, PROBE_LIMIT, TCP_TIMEOUT_MS, UDP_TIMEOUT_MS, OTHER_TIMEOUT_MS } from '../../src/policy/conntrack';

const a = ipBytes('198.19.0.1')!;
const b = ipBytes('198.19.0.2')!;
const v6 = ipBytes('2001:2::5')!;

test('conntrack: forward and reply share an entry; lastForward tells them apart', () => {
  const ct = new Conntrack(1024, 1);
  assert.equal(ct.lookup(b, 0, 80, a, 0, 40000, 6, 0), -1);
  const s = ct.insert(b, 0, 40000, a, 0, 80, 6, 7, 0); // b initiated (b is the canonical second side)
  assert.equal(ct.lookup(b, 0, 40000, a, 0, 80, 6, 1), s);
  assert.equal(ct.lastForward, true);
  assert.equal(ct.lookup(a, 0, 80, b, 0, 40000, 6, 2), s);
  assert.equal(ct.lastForward, false);
  assert.equal(ct.lookup(a, 0, 80, b, 0, 40000, 17, 2), -1, 'another protocol is another flow');
  assert.equal(ct.lookup(a, 0, 81, b, 0, 40000, 6, 2), -1, 'another port is another flow');
  assert.equal(ct.version(s), 7);
  const src = new Uint8Array(16), dst = new Uint8Array(16);
  assert.deepEqual(ct.originalFlow(s, src, 0, dst, 0), [40000, 80, 6]);
  assert.deepEqual([...src], [...b]);
  assert.deepEqual([...dst], [...a]);
  const t = ct.insert(a, 0, 5, v6, 0, 6, 17, 1, 0);
  assert.deepEqual(ct.originalFlow(t, src, 0, dst, 0), [5, 6, 17]);
  assert.deepEqual([...src], [...a]);
  assert.equal(ct.stats.entries, 2);
});

test('conntrack: timeouts (TCP 12 min, UDP 3 min, other 10 min), refreshed by packets', () => {
  const ct = new Conntrack(1024, 2);
  for (const [proto, t] of [[6, TCP_TIMEOUT_MS], [17, UDP_TIMEOUT_MS], [1, OTHER_TIMEOUT_MS]]) {
    ct.insert(a, 0, 1, b, 0, 2, proto, 0, 0);
    assert.ok(ct.lookup(a, 0, 1, b, 0, 2, proto, t - 1) >= 0, `proto ${proto} alive before ${t} ms`);
    assert.ok(ct.lookup(b, 0, 2, a, 0, 1, proto, 2 * t - 2) >= 0, `proto ${proto} refreshed by the previous packet`);
    assert.equal(ct.lookup(a, 0, 1, b, 0, 2, proto, 3 * t), -1, `proto ${proto} expired`);
  }
  assert.equal(ct.stats.expired, 3);
  assert.equal(ct.stats.entries, 0);
});

test('conntrack: bounded — a full probe window evicts the entry closest to expiry, counted', () => {
  const ct = new Conntrack(64, 3);
  const ip = new Uint8Array(16);
  ip.set(a);
  for (let i = 0; i < 1000; i++) {
    ct.insert(ip, 0, i, b, 0, 80, 6, 0, i);
    assert.ok(ct.stats.entries <= ct.capacity);
  }
  assert.equal(ct.stats.inserts, 1000);
  assert.ok(ct.stats.evictions >= 1000 - ct.capacity, `evictions ${ct.stats.evictions}`);
  assert.equal(ct.stats.entries + ct.stats.evictions, 1000);
  // The newest flows survive (the oldest expire first).
  assert.ok(ct.lookup(ip, 0, 999, b, 0, 80, 6, 1000) >= 0);
  assert.ok(PROBE_LIMIT <= ct.capacity);
});

test('conntrack: removing entries keeps every other entry reachable', () => {
  const ct = new Conntrack(64, 4);
  const slots: number[] = [];
  for (let i = 0; i < 40; i++) slots.push(ct.insert(a, 0, i, b, 0, 80, 17, 0, 0));
  for (let i = 0; i < 40; i += 3) ct.remove(slots[i]);
  for (let i = 0; i < 40; i++) {
    const s = ct.lookup(a, 0, i, b, 0, 80, 17, 1);
    if (i % 3 === 0) assert.equal(s, -1, `removed ${i}`);
    else assert.equal(s, slots[i], `kept ${i}`);
  }
  let live = 0;
  ct.forEach(() => live++, 1);
  assert.equal(live, 40 - 14);
});
