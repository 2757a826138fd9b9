/** Reachability rows (codec, validation) and the partition count (src/probe/reachability.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRow, encodeRow, partition, type ReachCell, type ReachRow } from '../../src/probe/reachability';

const up: ReachCell = { up: true, rttMs: 0.4, pmtu: 1500 };
const down: ReachCell = { up: false, rttMs: null, pmtu: null };
function row(from: string, fresh: boolean, peers: Record<string, ReachCell>): ReachRow {
  return { from, fresh, seq: 1, peers: new Map(Object.entries(peers)) };
}

test('reachability: a row round-trips through its wire text', () => {
  const text = encodeRow(7, new Map([['h2', up], ['h3', down]]));
  const r = decodeRow('h1', text, true);
  assert.ok(typeof r !== 'string');
  assert.equal(r.seq, 7);
  assert.deepEqual(r.peers.get('h2'), up);
  assert.deepEqual(r.peers.get('h3'), down);
});

test('reachability: malformed rows are refused whole with a reason; a row cannot speak about its own sender', () => {
  assert.equal(decodeRow('h1', 'nope', true), 'not_json');
  assert.equal(decodeRow('h1', '{"v":2,"seq":1,"p":[]}', true), 'bad_version');
  assert.equal(decodeRow('h1', '{"v":1,"seq":-1,"p":[]}', true), 'bad_field');
  assert.equal(decodeRow('h1', '{"v":1,"seq":1,"p":[["h2",2,null,null]]}', true), 'bad_field');
  assert.equal(decodeRow('h1', '{"v":1,"seq":1,"p":[["h2",1,-3,null]]}', true), 'bad_field');
  assert.equal(decodeRow('h1', '{"v":1,"seq":1,"p":[["h2",1,null,12]]}', true), 'bad_field');
  assert.equal(decodeRow('h1', '{"v":1,"seq":1,"p":[["h 2",1,null,null]]}', true), 'bad_field');
  assert.equal(decodeRow('h1', '{"v":1,"seq":1,"p":[["h2",1,null,null],["h2",0,null,null]]}', true), 'bad_field');
  assert.equal(decodeRow('h1', '[]', true), 'bad_field');
  assert.equal(decodeRow('h1', 'x'.repeat(300 * 1024), true), 'too_large');
  const many = JSON.stringify({ v: 1, seq: 1, p: Array.from({ length: 5000 }, (_, i) => [`h${i}`, 1, null, null]) });
  assert.equal(decodeRow('h1', many, true), 'too_many_peers');
  const self = decodeRow('h1', '{"v":1,"seq":1,"p":[["h1",0,null,null],["h2",1,1.5,1400]]}', true);
  assert.ok(typeof self !== 'string');
  assert.equal(self.peers.has('h1'), false);
});

test('partitions: a full mesh is one component', () => {
  const p = partition([row('h1', true, { h2: up, h3: up }), row('h2', true, { h1: up, h3: up }), row('h3', true, { h1: up, h2: up })]);
  assert.deepEqual(p.components, [['h1', 'h2', 'h3']]);
});

test('partitions: a cut host is its own component, seen from the rest (its stale row says all is well: fresh rows win)', () => {
  const rows = [
    row('h1', true, { h2: up, h3: down }),
    row('h2', true, { h1: up, h3: down }),
    row('h3', false, { h1: up, h2: up }), // last row heard from h3, before the cut; its member is dead now
  ];
  assert.deepEqual(partition(rows).components, [['h1', 'h2'], ['h3']]);
});

test('partitions: seen from the cut host, the others (stale rows only) stay together', () => {
  const rows = [row('h3', true, { h1: down, h2: down }), row('h1', false, { h2: up, h3: up }), row('h2', false, { h1: up, h3: up })];
  assert.deepEqual(partition(rows).components, [['h1', 'h2'], ['h3']]);
});

test('partitions: one direction down is no edge (every claim must be up); a chain is still one component', () => {
  assert.equal(partition([row('a', true, { b: up }), row('b', true, { a: down })]).components.length, 2);
  assert.equal(partition([row('a', true, { b: up, c: down }), row('b', true, { a: up, c: up }), row('c', true, { a: down, b: up })]).components.length, 1);
});

test('partitions: peers without a row of their own (static peers, kernel VXLAN) count by what others say of them', () => {
  assert.deepEqual(partition([row('h1', true, { '198.18.0.9:4789': down, h2: up })]).components, [['h1', 'h2'], ['198.18.0.9:4789']]);
  assert.equal(partition([row('h1', true, {})]).components.length, 1);
});
