/** FDB: learning, ageing on a fake clock, eviction, static entries, index integrity under churn. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/clock';
import { NetworkCounters } from '../../src/dataplane/counters';
import { FDB_LOCAL, FDB_REMOTE, FDB_STATIC, Fdb } from '../../src/dataplane/fdb';

const TWO32 = 0x100000000;
const hi = (m: number) => Math.floor(m / TWO32);
const lo = (m: number) => m >>> 0;
const MAC = (i: number) => 0x020000000000 + i;

function make(opts: { ageingSeconds?: number; maxEntries?: number; initialCapacity?: number } = {}) {
  const clock = new FakeClock(1000);
  const counters = new NetworkCounters();
  const fdb = new Fdb<string>({ ageingSeconds: opts.ageingSeconds ?? 300, maxEntries: opts.maxEntries ?? 16384, clock, counters, initialCapacity: opts.initialCapacity });
  return { clock, counters, fdb };
}

describe('fdb learning', () => {
  it('learns local and remote entries and looks them up', () => {
    const { fdb, clock } = make();
    const now = clock.now();
    const a = (fdb.setNow(now), fdb.learnLocal(hi(MAC(1)), lo(MAC(1))));
    const b = (fdb.setNow(now), fdb.learnRemote(hi(MAC(2)), lo(MAC(2)), 'peerB'));
    assert.equal(fdb.size, 2);
    assert.equal((fdb.setNow(now), fdb.lookup(hi(MAC(1)), lo(MAC(1)))), a);
    assert.equal(fdb.kindAt(a), FDB_LOCAL);
    assert.equal(fdb.kindAt(b), FDB_REMOTE);
    assert.equal(fdb.peerAt(b), 'peerB');
    assert.equal((fdb.setNow(now), fdb.lookup(hi(MAC(3)), lo(MAC(3)))), -1);
    // high 16 bits matter
    assert.equal((fdb.setNow(now), fdb.lookup(hi(MAC(1)) ^ 1, lo(MAC(1)))), -1);
  });

  it('remote learning follows a moved MAC but never overrides local or static entries', () => {
    const { fdb, clock } = make();
    const now = clock.now();
    const s = (fdb.setNow(now), fdb.learnRemote(hi(MAC(2)), lo(MAC(2)), 'A'));
    (fdb.setNow(now), fdb.learnRemote(hi(MAC(2)), lo(MAC(2)), 'B'));
    assert.equal(fdb.peerAt(s), 'B');
    const l = (fdb.setNow(now), fdb.learnLocal(hi(MAC(3)), lo(MAC(3))));
    (fdb.setNow(now), fdb.learnRemote(hi(MAC(3)), lo(MAC(3)), 'A'));
    assert.equal(fdb.kindAt(l), FDB_LOCAL);
    assert.ok(fdb.setStatic(MAC(4), 'G'));
    (fdb.setNow(now), fdb.learnRemote(hi(MAC(4)), lo(MAC(4)), 'A'));
    assert.equal(fdb.peerAt(fdb.slotOf(MAC(4))), 'G');
    assert.equal(fdb.kindAt(fdb.slotOf(MAC(4))), FDB_STATIC);
    // local learning overrides remote and static
    (fdb.setNow(now), fdb.learnLocal(hi(MAC(2)), lo(MAC(2))));
    (fdb.setNow(now), fdb.learnLocal(hi(MAC(4)), lo(MAC(4))));
    assert.equal(fdb.kindAt(fdb.slotOf(MAC(2))), FDB_LOCAL);
    assert.equal(fdb.kindAt(fdb.slotOf(MAC(4))), FDB_LOCAL);
    assert.equal(fdb.peerAt(fdb.slotOf(MAC(4))), null);
  });

  it('snoops up to 4 IPv4 and 4 IPv6 addresses per local MAC (most recent kept)', () => {
    const { fdb, clock } = make();
    const s = (fdb.setNow(clock.now()), fdb.learnLocal(hi(MAC(1)), lo(MAC(1))));
    const v0 = fdb.localVersion;
    fdb.noteIPv4(s, 0xc6130001);
    fdb.noteIPv4(s, 0xc6130001);
    assert.equal(fdb.localVersion, v0 + 1);
    for (let i = 2; i <= 6; i++) fdb.noteIPv4(s, 0xc6130000 + i);
    fdb.noteIPv4(s, 0); // ignored
    const v6 = Buffer.alloc(16);
    v6[0] = 0xfd;
    v6[15] = 1;
    fdb.noteIPv6(s, v6, 0);
    fdb.noteIPv6(s, Buffer.alloc(16), 0); // :: ignored
    const [e] = fdb.localEntries();
    assert.deepEqual(e.ipv4.sort(), ['198.19.0.3', '198.19.0.4', '198.19.0.5', '198.19.0.6']);
    assert.deepEqual(e.ipv6, ['fd00::1']);
    assert.equal(e.mac, '02:00:00:00:00:01');
  });
});

describe('fdb ageing', () => {
  it('expires entries after ageingSeconds via lookup and via the sweep timer', () => {
    const { fdb, clock } = make({ ageingSeconds: 300 });
    fdb.start();
    (fdb.setNow(clock.now()), fdb.learnRemote(hi(MAC(1)), lo(MAC(1)), 'A'));
    (fdb.setNow(clock.now()), fdb.learnLocal(hi(MAC(2)), lo(MAC(2))));
    assert.ok(fdb.setStatic(MAC(3), 'S'));
    clock.advance(299_000);
    assert.ok((fdb.setNow(clock.now()), fdb.lookup(hi(MAC(1)), lo(MAC(1)))) >= 0);
    // refresh MAC 2 only
    (fdb.setNow(clock.now()), fdb.learnLocal(hi(MAC(2)), lo(MAC(2))));
    clock.advance(1_000);
    // lookup-time expiry, before any sweep
    assert.equal((fdb.setNow(clock.now()), fdb.lookup(hi(MAC(1)), lo(MAC(1)))), -1);
    assert.equal(fdb.size, 2);
    clock.advance(330_000);
    // the sweep (every 30 s) removed MAC 2, static stays
    assert.equal(fdb.size, 1);
    assert.ok((fdb.setNow(clock.now()), fdb.lookup(hi(MAC(3)), lo(MAC(3)))) >= 0);
    fdb.stop();
    assert.equal(clock.pending, 0);
  });

  it('sweep stops at the first live entry (entries kept in last-seen order)', () => {
    const { fdb, clock } = make({ ageingSeconds: 10 });
    for (let i = 0; i < 100; i++) {
      (fdb.setNow(clock.now()), fdb.learnRemote(hi(MAC(i)), lo(MAC(i)), 'A'));
      clock.advance(100);
    }
    // refresh the first 10 late
    for (let i = 0; i < 10; i++) (fdb.setNow(clock.now()), fdb.learnRemote(hi(MAC(i)), lo(MAC(i)), 'A'));
    clock.advance(5_000);
    const removed = fdb.sweep(clock.now());
    assert.equal(removed, 41); // MACs 10..50 were last seen ≥ 10 s ago (t ≤ 6000)
    assert.equal(fdb.size, 59);
    for (let i = 0; i < 10; i++) assert.ok((fdb.setNow(clock.now()), fdb.lookup(hi(MAC(i)), lo(MAC(i)))) >= 0);
  });
});

describe('fdb bound', () => {
  it('evicts the least recently seen entry beyond maxEntries and counts it', () => {
    const { fdb, clock, counters } = make({ maxEntries: 4, initialCapacity: 1 });
    for (let i = 0; i < 4; i++) {
      (fdb.setNow(clock.now()), fdb.learnRemote(hi(MAC(i)), lo(MAC(i)), 'A'));
      clock.advance(1);
    }
    (fdb.setNow(clock.now()), fdb.learnRemote(hi(MAC(0)), lo(MAC(0)), 'A')); // MAC 1 is now the oldest
    (fdb.setNow(clock.now()), fdb.learnLocal(hi(MAC(9)), lo(MAC(9))));
    assert.equal(fdb.size, 4);
    assert.equal(fdb.capacity, 4);
    assert.equal(counters.fdbEvictions, 1);
    assert.equal(fdb.evictions, 1);
    assert.equal((fdb.setNow(clock.now()), fdb.lookup(hi(MAC(1)), lo(MAC(1)))), -1);
    assert.ok((fdb.setNow(clock.now()), fdb.lookup(hi(MAC(0)), lo(MAC(0)))) >= 0);
  });

  it('an expired head is aged out, not counted as an eviction', () => {
    const { fdb, clock, counters } = make({ maxEntries: 2, ageingSeconds: 1 });
    (fdb.setNow(clock.now()), fdb.learnRemote(hi(MAC(1)), lo(MAC(1)), 'A'));
    (fdb.setNow(clock.now()), fdb.learnRemote(hi(MAC(2)), lo(MAC(2)), 'A'));
    clock.advance(2_000);
    (fdb.setNow(clock.now()), fdb.learnRemote(hi(MAC(3)), lo(MAC(3)), 'A'));
    assert.equal(counters.fdbEvictions, 0);
  });

  it('static entries are never evicted; a table full of them refuses more', () => {
    const { fdb } = make({ maxEntries: 2 });
    assert.ok(fdb.setStatic(MAC(1), 'S'));
    assert.ok(fdb.setStatic(MAC(2), 'S'));
    assert.equal(fdb.setStatic(MAC(3), 'S'), false);
    assert.equal((fdb.setNow(0), fdb.learnRemote(hi(MAC(4)), lo(MAC(4)), 'A')), -1);
    assert.equal(fdb.size, 2);
  });

  it('keeps the index consistent under random churn (against a Map model)', () => {
    const { fdb, clock } = make({ maxEntries: 512, ageingSeconds: 1e6, initialCapacity: 8 });
    const model = new Map<number, string>();
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let step = 0; step < 20_000; step++) {
      // MACs with colliding low bits and varied high bits
      const mac = (Math.floor(rnd() * 4) * 0x0100 + 2) * TWO32 + Math.floor(rnd() * 600) * 4096;
      const r = rnd();
      if (r < 0.5) {
        if (model.size < 512 || model.has(mac)) {
          (fdb.setNow(clock.now()), fdb.learnRemote(hi(mac), lo(mac), 'P'));
          model.set(mac, 'P');
        }
      } else if (r < 0.8) {
        assert.equal(fdb.delete(mac), model.delete(mac));
      } else {
        assert.equal((fdb.setNow(clock.now()), fdb.lookup(hi(mac), lo(mac))) >= 0, model.has(mac));
      }
    }
    assert.equal(fdb.size, model.size);
    for (const mac of model.keys()) assert.ok(fdb.slotOf(mac) >= 0);
  });

  it('removeByPeer drops remote and static entries of that peer only', () => {
    const { fdb, clock } = make();
    (fdb.setNow(clock.now()), fdb.learnRemote(hi(MAC(1)), lo(MAC(1)), 'A'));
    (fdb.setNow(clock.now()), fdb.learnRemote(hi(MAC(2)), lo(MAC(2)), 'B'));
    fdb.setStatic(MAC(3), 'A');
    (fdb.setNow(clock.now()), fdb.learnLocal(hi(MAC(4)), lo(MAC(4))));
    assert.equal(fdb.removeByPeer((p) => p === 'A'), 2);
    assert.deepEqual(fdb.entries().map((e) => e.mac).sort(), ['02:00:00:00:00:02', '02:00:00:00:00:04']);
  });
});
