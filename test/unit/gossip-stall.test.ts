/**
 * A gossip member whose process stalls (SIGSTOP, a long GC, CPU starvation) must not turn the
 * stall into verdicts about others. On resume the event loop runs the timers that fell due before
 * it reads the packets that arrived meanwhile, so a probe's end timer or a suspicion timer used to
 * judge without the ack or refutation waiting in the socket (the chaos lab's slow-member scenario:
 * 2 agents stopped 2 s in every 10 s, 16 hosts, a healthy member declared dead). The stall is
 * modelled exactly so: while stalled, the member's timer callbacks and inbound packets are held;
 * on resume the held timers run first (late), then the packets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FakeClock, type Clock, type TimerHandle } from '../../src/clock';
import { tuningFor } from '../../src/gossip/config';
import { ST_DEAD } from '../../src/gossip/record';
import { Simulator, type SimNode } from '../../src/gossip/simulator';
import { GRACE_MS, STALL_MS, Suspicion } from '../../src/gossip/suspicion';

/** A clock over `real` whose callbacks are held while `stalled` and run (late) by `resume()`. */
class StallableClock implements Clock {
  stalled = false;
  private held: Array<() => void> = [];
  constructor(private readonly real: Clock) {}
  now(): number { return this.real.now(); }
  setTimer(ms: number, fn: () => void): TimerHandle {
    return this.real.setTimer(ms, () => (this.stalled ? this.held.push(fn) : fn()));
  }
  setInterval(ms: number, fn: () => void): TimerHandle {
    let pending = false;
    return this.real.setInterval(ms, () => {
      if (!this.stalled) return fn();
      if (!pending) {
        pending = true;
        this.held.push(() => { pending = false; fn(); });
      }
    });
  }
  /** Runs the held timer callbacks (the loop's timers phase after a stall). */
  resume(): void {
    this.stalled = false;
    const h = this.held;
    this.held = [];
    for (const fn of h) fn();
  }
}

test('a suspicion timer that fires late after a stall waits as long as it was late (≥ GRACE_MS, ≤ the minimum timeout) for the refutation', () => {
  const real = new FakeClock(0);
  const clock = new StallableClock(real);
  let fired = 0;
  const s = new Suspicion('a', 3, 1000, 6000, clock, () => fired++);
  clock.stalled = true;
  real.advance(6000 + 800); // due at 6000, the process is stopped until 6800: 800 ms late
  clock.resume(); // late timer: no verdict yet
  assert.equal(fired, 0, 'no death verdict before the packets that arrived during the stall are read');
  real.advance(700); // the suspect (stopped with us) refutes 700 ms after the resume
  assert.equal(fired, 0, 'the time we were stopped does not count');
  s.cancel();
  real.advance(5000);
  assert.equal(fired, 0);
  // without a refutation the verdict comes as late as the stall was
  new Suspicion('a', 3, 1000, 6000, clock, () => fired++);
  clock.stalled = true;
  real.advance(6000 + 800);
  clock.resume();
  real.advance(799);
  assert.equal(fired, 0);
  real.advance(1);
  assert.equal(fired, 1);
  // a stall longer than the minimum timeout: the wait is capped at the minimum (1000 ms)
  new Suspicion('a', 3, 1000, 6000, clock, () => fired++);
  clock.stalled = true;
  real.advance(6000 + 5000);
  clock.resume();
  real.advance(999);
  assert.equal(fired, 1);
  real.advance(1);
  assert.equal(fired, 2);
  // barely late (≤ STALL_MS): no wait
  new Suspicion('a', 3, 1000, 6000, clock, () => fired++);
  clock.stalled = true;
  real.advance(6000 + STALL_MS);
  clock.resume();
  assert.equal(fired, 3);
  void GRACE_MS;
});

test('a suspicion timer on time fires on time (no grace without a stall)', () => {
  const clock = new FakeClock(0);
  let firedAt = -1;
  new Suspicion('a', 3, 1000, 6000, clock, () => { firedAt = clock.now(); });
  clock.advance(7000);
  assert.equal(firedAt, 6000);
});

/** Holds `sn`'s timers and inbound packets while it is stalled; resume runs the timers first, then the packets. */
function stallable(sn: SimNode): { stall(): void; resume(): void } {
  const node = sn.node as unknown as { clock: Clock };
  const clock = new StallableClock(node.clock);
  node.clock = clock;
  const t = sn.transport as unknown as { deliverPacket(from: string, data: Uint8Array): void };
  const deliver = t.deliverPacket.bind(t);
  const inbox: Array<[string, Uint8Array]> = [];
  t.deliverPacket = (from, data) => (clock.stalled ? void inbox.push([from, data]) : deliver(from, data));
  return {
    stall: () => { clock.stalled = true; },
    resume: () => {
      clock.resume();
      for (const [f, d] of inbox.splice(0)) deliver(f, d);
    },
  };
}

test('a member stopped 2 s in every 10 s does not suspect healthy members on resume; nobody is declared dead', async () => {
  const tuning = tuningFor('test');
  const sim = await Simulator.create({ n: 6, seed: 9, tuning, bootstrap: 'join', keys: [new Uint8Array(32).fill(7)] });
  assert.ok(sim.runUntil(() => sim.converged(), 30_000) >= 0, 'cluster converges');
  sim.run(2000);
  const slow = sim.nodes.slice(1, 3).map(stallable);
  const failures0 = sim.nodes[1].node.prober.failures + sim.nodes[2].node.prober.failures;
  for (let round = 0; round < 12; round++) {
    for (const s of slow) s.stall();
    sim.run(2000);
    for (const s of slow) s.resume();
    sim.run(8000);
  }
  const failures = sim.nodes[1].node.prober.failures + sim.nodes[2].node.prober.failures - failures0;
  assert.equal(failures, 0, `the stalled members failed ${failures} probes of healthy members on resume`);
  for (const sn of sim.nodes) assert.equal(sn.node.stats.deathsDeclared, 0, `${sn.name} declared a death`);
  for (const sn of sim.nodes) assert.equal(sim.countViews(sn.name, ST_DEAD), 0);
});
