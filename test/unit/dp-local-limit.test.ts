/**
 * A local container cannot freeze announcements: the MACs learned from this host's bridge are
 * bounded per network (fdb.maxLocalPerNetwork, default 512); beyond it a new source MAC is not
 * learned (its frames still go out) and the refusal is counted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/clock';
import { NetworkCounters, fdbRefusalIndex } from '../../src/dataplane/counters';
import { Fdb } from '../../src/dataplane/fdb';
import { BLUE, cmac, frame, lab } from './dp-lab';

describe('fdb: locally learned MACs are bounded per network', () => {
  it('700 spoofed source MACs: 512 learned (the default), 188 refused and counted, every frame still sent', () => {
    const { hosts, run } = lab({ hosts: 2 });
    const [A] = hosts;
    for (let i = 0; i < 700; i++) A.tap(BLUE).inject(frame(0xffffffffffff, cmac(0, 1) + 4096 * i));
    run();
    assert.equal(A.dp.localEndpoints(BLUE).length, 512);
    assert.equal(A.counters(BLUE).fdbRefused[fdbRefusalIndex.local_limit], 188);
    assert.equal(A.counters(BLUE).txPackets, 700, 'frames of unlearned MACs are forwarded');
    // refreshing a learned one is not a new entry
    A.tap(BLUE).inject(frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(A.counters(BLUE).fdbRefused[fdbRefusalIndex.local_limit], 188);
  });

  it('the bound is configurable, and expired local entries make room again', () => {
    const clock = new FakeClock(0);
    const counters = new NetworkCounters();
    const fdb = new Fdb<string>({ ageingSeconds: 10, maxEntries: 1024, maxLocalPerNetwork: 8, clock, counters });
    fdb.setNow(0);
    let learned = 0;
    for (let i = 1; i <= 20; i++) if (fdb.learnLocal(0x0200, i) >= 0) learned++;
    assert.equal(learned, 8);
    assert.equal(counters.fdbRefused[fdbRefusalIndex.local_limit], 12);
    // remote learning is not limited by it
    assert.ok(fdb.learnRemote(0x0200, 1000, 'P') >= 0);
    // a remote MAC that moves here counts against the bound too
    assert.equal(fdb.learnLocal(0x0200, 1000), -1);
    // after the ageing time the old ones leave room
    clock.advance(11_000);
    fdb.setNow(11_000);
    for (let i = 21; i <= 28; i++) assert.ok(fdb.learnLocal(0x0200, i) >= 0);
    assert.equal(fdb.learnLocal(0x0200, 29), -1);
    assert.equal(fdb.localEntries(11_000).length, 8);
  });
});
