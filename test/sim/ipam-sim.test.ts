/**
 * Simulator: 3 hosts lease blocks and allocate concurrently over the in-memory lease channel with
 * a propagation delay on one FakeClock. Host names are chosen so all three start at the same
 * candidate block (a guaranteed collision). Checked: every address unique, blocks disjoint once
 * settled, the conflict exercised (a block lost and re-leased), and the same after every host
 * "restarts" from its state store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/clock';
import type { NetworkIpam } from '../../src/config/types';
import { MemoryLeaseHub } from '../../src/ipam/channel';
import { Ipam } from '../../src/ipam/ipam';
import { blockStart } from '../../src/ipam/pool';
import { MemoryStateStore } from '../../src/ipam/state-store';

const IPAM: NetworkIpam = { subnets: ['198.19.0.0/24'], gateways: ['198.19.0.1'], hostBlocks: [28], ranges: [null] };

function collidingNames(n: number, cap: bigint): string[] {
  const want = blockStart('host-0', cap);
  const out = ['host-0'];
  for (let i = 1; out.length < n; i++) if (blockStart(`host-${i}`, cap) === want) out.push(`host-${i}`);
  return out;
}

async function settleAll(clock: FakeClock, ps: Promise<unknown>[]): Promise<void> {
  let pending = ps.length;
  const errs: unknown[] = [];
  for (const p of ps) p.then(() => pending--, (e) => { pending--; errs.push(e); });
  for (let i = 0; i < 20_000 && pending > 0; i++) {
    await new Promise((r) => setImmediate(r));
    clock.advance(50);
  }
  if (errs.length) throw errs[0];
  assert.equal(pending, 0, 'all allocations finished');
}

for (const delay of [0, 150, 600]) {
  test(`3 hosts × 10 endpoints leasing at once (propagation delay ${delay} ms): unique addresses, disjoint blocks, same after restart`, async () => {
    const clock = new FakeClock(10_000);
    const hub = new MemoryLeaseHub(clock, delay);
    const names = collidingNames(3, 16n);
    const stores = names.map(() => new MemoryStateStore());
    const open = (i: number) => Ipam.open({ node: names[i], networks: [{ name: 'blue', ipam: IPAM }], store: stores[i], channel: hub.channel(names[i]), clock, wallNow: () => 1_700_000_000_000 + clock.now(), settleMs: 1000 });
    let hosts = names.map((_, i) => open(i));
    const ps: Promise<unknown>[] = [];
    for (let k = 0; k < 10; k++) hosts.forEach((h, i) => ps.push(h.allocate('blue', `${names[i]}/c${k}`)));
    await settleAll(clock, ps);
    clock.advance(5000);
    const all = () => hosts.flatMap((h) => [...h.allocations('blue').keys()]);
    assert.equal(all().length, 30);
    assert.equal(new Set(all()).size, 30, `duplicates: ${all().sort().join(' ')}`);
    const blocks = hosts.flatMap((h) => h.blocks().map((b) => b.block));
    assert.equal(new Set(blocks).size, blocks.length, `blocks overlap: ${blocks.join(' ')}`);
    const lost = hosts.reduce((n, h) => n + h.stats.blocksLost, 0);
    if (delay > 0) assert.ok(lost >= 1, 'the collision was exercised');
    assert.equal(hosts.reduce((n, h) => n + h.stats.conflictedAddresses, 0), 0, 'no address handed out from a block that was later lost');
    const before = hosts.map((h) => [...h.allocations('blue')].sort());
    // every host restarts from its state
    hosts = names.map((_, i) => open(i));
    clock.advance(5000);
    assert.deepEqual(hosts.map((h) => [...h.allocations('blue')].sort()), before);
    for (let i = 0; i < 3; i++) assert.deepEqual((await hosts[i].allocate('blue', `${names[i]}/c3`)).map((a) => a.address), [before[i].find(([, o]) => o === `${names[i]}/c3`)![0]]);
  });
}
