/**
 * IPAM per mechanism: CIDR math against Node's parser, the atomic state store (corrupt file = a
 * named error, never a reset), static ranges, block leases over the in-memory lease channel with
 * an injected clock (conflict rule, loser moves on, reclaim after the grace period and not before),
 * requested addresses (outside, reserved, taken, inside another host's block), exhaustion,
 * persistence across a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeClock } from '../../src/clock';
import type { NetworkIpam } from '../../src/config/types';
import { EndpointError, StateError } from '../../src/errors';
import { canonicalIp, formatCidr, parseCidr, parseIp, formatIp, covers } from '../../src/ipam/cidr';
import { MemoryLeaseHub } from '../../src/ipam/channel';
import { Ipam } from '../../src/ipam/ipam';
import { beats, winner } from '../../src/ipam/leases';
import { FileStateStore, MemoryStateStore } from '../../src/ipam/state-store';

const net = (over: Partial<NetworkIpam> = {}): NetworkIpam => ({ subnets: ['198.19.0.0/24'], gateways: ['198.19.0.1'], hostBlocks: [26], ranges: [null], ...over });

/** Runs `p` to completion while advancing the fake clock. */
async function drive<T>(clock: FakeClock, p: Promise<T>, stepMs = 100): Promise<T> {
  let done = false;
  let val: T | undefined;
  let err: unknown;
  p.then((v) => { done = true; val = v; }, (e) => { done = true; err = e; });
  for (let i = 0; i < 10_000 && !done; i++) {
    await new Promise((r) => setImmediate(r));
    if (!done) clock.advance(stepMs);
  }
  if (err) throw err;
  return val as T;
}

test('CIDR: parse/format canonical (v4, v6 RFC 5952), containment, host bits', () => {
  for (const t of ['2001:2::1', '2001:0002:0000:0000:0000:0000:0000:0001', '::', '::1', '2001:2:0:0:1:0:0:1', 'fe80::1:2', '::ffff:198.18.0.1', '2001:db8:1:2:3:4:5:6']) {
    const p = parseIp(t)!;
    const back = formatIp(p.family, p.value);
    assert.equal(parseIp(back)!.value, p.value, t);
  }
  assert.equal(canonicalIp('2001:0002:0000:0000:0000:0000:0000:0001'), '2001:2::1');
  assert.equal(canonicalIp('2001:2:0:0:1:0:0:1'), '2001:2::1:0:0:1');
  assert.equal(canonicalIp('198.019.0.1'), null);
  assert.equal(canonicalIp('198.19.0.256'), null);
  assert.equal(parseCidr('198.19.0.5/24'), null, 'host bits set in a subnet');
  assert.equal(formatCidr(parseCidr('198.19.0.5/24', false)!), '198.19.0.0/24');
  assert.equal(parseCidr('198.19.0.0/33'), null);
  assert.ok(covers(parseCidr('198.19.0.0/16')!, parseCidr('198.19.4.0/26')!));
  assert.ok(!covers(parseCidr('198.19.0.0/24')!, parseCidr('198.19.0.0/16')!));
});

test('state store: atomic replace, missing = empty, corrupt = StateError naming the file (left in place)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxm-state-'));
  try {
    const s = new FileStateStore(path.join(dir, 'sub'));
    assert.equal(s.read('ipam.json'), null);
    s.write('ipam.json', { version: 1, a: 1 });
    s.write('ipam.json', { version: 1, a: 2 });
    assert.deepEqual(s.read('ipam.json'), { version: 1, a: 2 });
    assert.deepEqual(fs.readdirSync(path.join(dir, 'sub')), ['ipam.json'], 'no temporary file left');
    fs.writeFileSync(path.join(dir, 'sub', 'ipam.json'), '{"version":1,"node":"h1","networks":{"blue":{"blo');
    assert.throws(() => Ipam.open({ node: 'h1', networks: [{ name: 'blue', ipam: net() }], store: s, channel: null, clock: new FakeClock() }), (e: unknown) => {
      assert.ok(e instanceof StateError);
      assert.equal(e.code, 'ERR_VXMESH_STATE');
      assert.match(e.message, /sub\/ipam\.json/);
      return true;
    });
    assert.match(fs.readFileSync(path.join(dir, 'sub', 'ipam.json'), 'utf8'), /"blo$/, 'not reset');
    fs.writeFileSync(path.join(dir, 'sub', 'ipam.json'), '{"version":7}');
    assert.throws(() => s.read('x') ?? Ipam.open({ node: 'h1', networks: [], store: s, channel: null, clock: new FakeClock() }), /unknown version 7/);
    fs.writeFileSync(path.join(dir, 'sub', 'ipam.json'), '{"version":1,"node":"h1","networks":{"blue":{"blocks":[{"block":"nope","at":1,"gen":0}],"allocations":{}}}}');
    assert.throws(() => Ipam.open({ node: 'h1', networks: [], store: s, channel: null, clock: new FakeClock() }), /bad entry/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('static range: allocations stay inside it, skip reserved, are idempotent per owner, persist, exhaust with a clear error', async () => {
  const store = new MemoryStateStore();
  const clock = new FakeClock();
  const open = () => Ipam.open({ node: 'h1', networks: [{ name: 'blue', ipam: net({ ranges: ['198.19.0.0/30'] }) }], store, channel: null, clock });
  const ipam = open();
  const a = await ipam.allocate('blue', 'blue/c1');
  assert.deepEqual(a, [{ address: '198.19.0.2', family: 4, prefix: 24, gateway: '198.19.0.1' }], '.0 network and .1 gateway are reserved');
  assert.deepEqual(await ipam.allocate('blue', 'blue/c1'), a, 'same owner → same address');
  const b = await ipam.allocate('blue', 'blue/c2');
  assert.equal(b[0].address, '198.19.0.3');
  await assert.rejects(ipam.allocate('blue', 'blue/c3'), (e: unknown) => e instanceof EndpointError && e.code === 'ERR_VXMESH_IPAM_EXHAUSTED' && !e.badInput && /range 198\.19\.0\.0\/30/.test(e.message));
  // requested addresses anywhere in the subnet
  assert.equal((await ipam.allocate('blue', 'blue/c4', ['198.19.0.200']))[0].address, '198.19.0.200');
  await assert.rejects(ipam.allocate('blue', 'blue/c5', ['198.19.0.200']), (e: unknown) => e instanceof EndpointError && e.code === 'ERR_VXMESH_IPAM_ADDRESS_TAKEN' && e.badInput);
  await assert.rejects(ipam.allocate('blue', 'blue/c5', ['198.19.1.1']), (e: unknown) => e instanceof EndpointError && e.code === 'ERR_VXMESH_IPAM_OUTSIDE_SUBNET' && e.badInput);
  await assert.rejects(ipam.allocate('blue', 'blue/c5', ['198.19.0.255']), /reserved/);
  await assert.rejects(ipam.allocate('red', 'red/c1'), (e: unknown) => e instanceof EndpointError && e.code === 'ERR_VXMESH_UNKNOWN_NETWORK');
  // restart: the same addresses come back
  const again = open();
  assert.deepEqual([...again.allocations('blue')].sort(), [['198.19.0.2', 'blue/c1'], ['198.19.0.200', 'blue/c4'], ['198.19.0.3', 'blue/c2']].sort());
  assert.deepEqual(await again.release('blue', 'blue/c1'), ['198.19.0.2']);
  assert.equal((await again.allocate('blue', 'blue/c9'))[0].address, '198.19.0.2', 'freed address reused');
});

test('dual stack: one address per subnet', async () => {
  const ipam = Ipam.open({ node: 'h1', networks: [{ name: 'blue', ipam: { subnets: ['198.19.0.0/24', '2001:2:0:1::/64'], gateways: [null, '2001:2:0:1::1'], hostBlocks: [26, 112], ranges: ['198.19.0.64/26', '2001:2:0:1::100/120'] } }], store: new MemoryStateStore(), channel: null, clock: new FakeClock() });
  const a = await ipam.allocate('blue', 'x');
  assert.deepEqual(a.map((x) => [x.address, x.prefix, x.gateway]), [['198.19.0.64', 24, null], ['2001:2:0:1::100', 64, '2001:2:0:1::1']]);
  const b = await ipam.allocate('blue', 'y', ['2001:2:0:1::abcd']);
  assert.deepEqual(b.map((x) => x.address), ['198.19.0.65', '2001:2:0:1::abcd']);
});

test('conflict rule: higher gen wins, then earlier lease, then lower node name', () => {
  const c = (node: string, at: number, gen = 0) => ({ network: 'n', block: 'b', node, at, gen });
  assert.ok(beats(c('b', 1), c('a', 2)));
  assert.ok(beats(c('a', 1), c('b', 1)));
  assert.ok(beats(c('z', 9, 1), c('a', 1, 0)));
  assert.equal(winner([c('c', 5), c('b', 5), c('a', 6)]).node, 'b');
});

test('gossip leases: two hosts leasing the same block at once both settle on the rule; the loser moves on', async () => {
  const clock = new FakeClock(1000);
  const hub = new MemoryLeaseHub(clock, 300);
  let wall = 1_000_000;
  const mk = (node: string, t: () => number) => Ipam.open({ node, networks: [{ name: 'blue', ipam: net() }], store: new MemoryStateStore(), channel: hub.channel(node), clock, wallNow: t, settleMs: 1000 });
  // same wall time: node name breaks the tie
  const a = mk('a', () => wall);
  const b = mk('b', () => wall);
  // force both to choose the same first block by removing the per-node offset: /24 of /26 = 4 blocks; give them 1 block each try
  const [ra, rb] = await Promise.all([drive(clock, a.allocate('blue', 'ca')), drive(clock, b.allocate('blue', 'cb'))]);
  const ba = a.blocks().map((x) => x.block);
  const bb = b.blocks().map((x) => x.block);
  assert.equal(ba.filter((x) => bb.includes(x)).length, 0, `disjoint blocks ${ba} / ${bb}`);
  assert.notEqual(ra[0].address, rb[0].address);
  wall++;
});

test('gossip leases: a forced collision resolves the same way on both hosts, the loser re-leases before allocating', async () => {
  const clock = new FakeClock(1000);
  const hub = new MemoryLeaseHub(clock, 200);
  // /25 in /26 blocks = 2 blocks; both nodes named so their offsets collide (same hash start is not guaranteed; use a 1-block subnet range + a second block)
  const n: NetworkIpam = { subnets: ['198.19.0.0/25'], gateways: [null], hostBlocks: [26], ranges: [null] };
  const a = Ipam.open({ node: 'a', networks: [{ name: 'blue', ipam: n }], store: new MemoryStateStore(), channel: hub.channel('a'), clock, wallNow: () => 5000, settleMs: 1000 });
  const b = Ipam.open({ node: 'b', networks: [{ name: 'blue', ipam: n }], store: new MemoryStateStore(), channel: hub.channel('b'), clock, wallNow: () => 5000, settleMs: 1000 });
  const r = await Promise.all([drive(clock, a.allocate('blue', 'ca')), drive(clock, b.allocate('blue', 'cb'))]);
  assert.notEqual(r[0][0].address, r[1][0].address);
  const ba = a.blocks().map((x) => x.block);
  const bb = b.blocks().map((x) => x.block);
  assert.equal(ba.length, 1);
  assert.equal(bb.length, 1);
  assert.notEqual(ba[0], bb[0]);
  // the subnet is now fully leased: a third host gets a clear exhaustion error
  const c = Ipam.open({ node: 'c', networks: [{ name: 'blue', ipam: n }], store: new MemoryStateStore(), channel: hub.channel('c'), clock, wallNow: () => 9000, settleMs: 1000 });
  await assert.rejects(drive(clock, c.allocate('blue', 'cc')), (e: unknown) => e instanceof EndpointError && e.code === 'ERR_VXMESH_IPAM_EXHAUSTED' && /exhausted/.test(e.message));
  // an address inside another host's block is refused
  const inA = ba[0].replace(/\/26$/, '').replace(/\.(\d+)$/, (_m, d) => `.${Number(d) + 10}`);
  await assert.rejects(b.allocate('blue', 'cx', [inA]), /held by host a/);
  // a dead host's block is not reclaimed within the grace period, and is after it (gen 1 out-ranks the old lease)
  hub.setLive('a', false);
  await assert.rejects(drive(clock, c.allocate('blue', 'cc')), /exhausted/);
  clock.advance(10 * 60_000);
  const rc = await drive(clock, c.allocate('blue', 'cc'));
  assert.equal(c.blocks()[0].block, ba[0]);
  assert.equal(c.blocks()[0].gen, 1);
  assert.equal(c.stats.blocksReclaimed, 1);
  assert.ok(rc[0].address.startsWith('198.19.0.'));
  // a comes back with its old lease: it loses the block (counted, its old address is flagged)
  hub.setLive('a', true);
  a.reconcile();
  assert.deepEqual(a.blocks(), []);
  assert.equal(a.stats.blocksLost, 1);
  assert.equal(a.stats.conflictedAddresses, 1);
});

test('gossip leases survive a restart (restored blocks are usable at once, no new lease)', async () => {
  const clock = new FakeClock(1000);
  const hub = new MemoryLeaseHub(clock, 0);
  const store = new MemoryStateStore();
  const open = () => Ipam.open({ node: 'a', networks: [{ name: 'blue', ipam: net() }], store, channel: hub.channel('a'), clock, settleMs: 1000 });
  const a = open();
  const first = await drive(clock, a.allocate('blue', 'c1'));
  const blocks = a.blocks();
  const b = open();
  assert.deepEqual(b.blocks(), blocks);
  const p = b.allocate('blue', 'c2');
  const second = await Promise.race([p, new Promise((r) => setImmediate(() => r('waiting')))]);
  assert.notEqual(second, 'waiting', 'no settle wait for a restored block');
  assert.notEqual((second as typeof first)[0].address, first[0].address);
  assert.equal((await b.allocate('blue', 'c1'))[0].address, first[0].address);
});
