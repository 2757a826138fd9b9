/**
 * FDB hash flooding: MACs chosen to collide under a fixed, public hash must not make lookups scan
 * the table (the hash is keyed per process), and however the MACs fall, no lookup or insert
 * examines more than the probe bound (beyond it: refused, counted).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/clock';
import { NetworkCounters, fdbRefusalIndex } from '../../src/dataplane/counters';
import { FDB_MAX_PROBE, Fdb, macHash } from '../../src/dataplane/fdb';

/** The FDB's hash before it was keyed (a fixed, unseeded, invertible mix): what an attacker can compute offline. */
function publicHash(hi: number, lo: number): number {
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 13);
}

/** `n` unicast MACs (02:00:xx…) whose `hash & mask` is `home`. */
function colliding(hash: (hi: number, lo: number) => number, mask: number, n: number, home = 0): number[] {
  const out: number[] = [];
  const hi = 0x0200;
  for (let lo = 1; out.length < n; lo++) if ((hash(hi, lo >>> 0) & mask) === home) out.push(hi * 0x100000000 + lo);
  return out;
}

describe('fdb: keyed hash and bounded probing', () => {
  it('MACs that all collide under the fixed public hash do not cluster: every lookup stays short', () => {
    const fdb = new Fdb<string>({ ageingSeconds: 300, maxEntries: 1024, maxLocalPerNetwork: 4096, initialCapacity: 1024, clock: new FakeClock(0) });
    // capacity 1024 → index of 2048 slots (mask 4095)
    const macs = colliding(publicHash, 4095, 600);
    for (const m of macs) fdb.setNow(0), fdb.learnLocal(Math.floor(m / 0x100000000), m >>> 0);
    assert.equal(fdb.size, macs.length);
    let worst = 0;
    for (const m of macs) worst = Math.max(worst, fdb.probeCount(m));
    const absent = colliding(publicHash, 4095, 601)[600];
    worst = Math.max(worst, fdb.probeCount(absent));
    assert.ok(worst <= 32, `a lookup examined ${worst} index slots`);
  });
});

describe('fdb: the probe bound holds even for MACs that collide under the table\'s own key', () => {
  it('inserts beyond FDB_MAX_PROBE from home are refused and counted; lookups stay within the bound', () => {
    const seed = Buffer.from('0123456789abcdef', 'hex');
    const k0 = seed.readUInt32LE(0);
    const k1 = seed.readUInt32LE(4);
    const counters = new NetworkCounters();
    const fdb = new Fdb<string>({ ageingSeconds: 300, maxEntries: 1024, maxLocalPerNetwork: 4096, initialCapacity: 1024, clock: new FakeClock(0), seed, counters });
    const macs = colliding((hi, lo) => macHash(k0, k1, hi, lo), 4095, 100);
    let learned = 0;
    for (const m of macs) if (fdb.learnLocal(Math.floor(m / 0x100000000), m >>> 0) >= 0) learned++;
    assert.equal(learned, FDB_MAX_PROBE, 'one home slot holds at most FDB_MAX_PROBE entries');
    assert.equal(fdb.size, FDB_MAX_PROBE);
    assert.equal(fdb.probeRefusals, 100 - FDB_MAX_PROBE);
    assert.equal(counters.fdbRefused[fdbRefusalIndex.probe_limit], 100 - FDB_MAX_PROBE);
    for (const m of macs) assert.ok(fdb.probeCount(m) <= FDB_MAX_PROBE);
    // the refused MACs are not there; the learned ones are, and remote learning is refused the same way
    assert.equal(fdb.lookup(Math.floor(macs[99] / 0x100000000), macs[99] >>> 0), -1);
    assert.ok(fdb.lookup(Math.floor(macs[0] / 0x100000000), macs[0] >>> 0) >= 0);
    assert.equal(fdb.learnRemote(Math.floor(macs[98] / 0x100000000), macs[98] >>> 0, 'peer'), -1);
    assert.equal(fdb.setStatic(macs[97], 'peer'), false);
    // a MAC with another home is unaffected
    const other = colliding((hi, lo) => macHash(k0, k1, hi, lo), 4095, 1, 1000)[0];
    assert.ok(fdb.learnLocal(Math.floor(other / 0x100000000), other >>> 0) >= 0);
    // deleting one of the cluster makes room for exactly one more
    assert.ok(fdb.delete(macs[3]));
    assert.ok(fdb.learnLocal(Math.floor(macs[50] / 0x100000000), macs[50] >>> 0) >= 0);
    assert.equal(fdb.learnLocal(Math.floor(macs[51] / 0x100000000), macs[51] >>> 0), -1);
  });

  it('growing the table keeps every entry within the bound (the index is rebuilt under the same key)', () => {
    const seed = Buffer.from('fedcba9876543210', 'hex');
    const fdb = new Fdb<string>({ ageingSeconds: 300, maxEntries: 4096, maxLocalPerNetwork: 4096, initialCapacity: 8, clock: new FakeClock(0), seed });
    for (let i = 1; i <= 4096; i++) fdb.learnLocal(0x0200, i);
    assert.equal(fdb.size + fdb.probeRefusals, 4096);
    assert.equal(fdb.probeRefusals, 0, 'random MACs are never refused');
    for (let i = 1; i <= 4096; i++) assert.ok(fdb.probeCount(0x0200 * 0x100000000 + i) <= FDB_MAX_PROBE);
  });

  it('two tables draw different keys: the same MACs land in different home slots', () => {
    const a = new Fdb<string>({ ageingSeconds: 300, maxEntries: 1024, maxLocalPerNetwork: 4096, initialCapacity: 1024, clock: new FakeClock(0) });
    const b = new Fdb<string>({ ageingSeconds: 300, maxEntries: 1024, maxLocalPerNetwork: 4096, initialCapacity: 1024, clock: new FakeClock(0) });
    const macs = colliding(publicHash, 4095, 300);
    for (const m of macs) {
      a.learnLocal(Math.floor(m / 0x100000000), m >>> 0);
      b.learnLocal(Math.floor(m / 0x100000000), m >>> 0);
    }
    let worstA = 0;
    let worstB = 0;
    for (const m of macs) {
      worstA = Math.max(worstA, a.probeCount(m));
      worstB = Math.max(worstB, b.probeCount(m));
    }
    assert.ok(worstA < 12 && worstB < 12, `worst probes ${worstA} / ${worstB}`);
  });
});
