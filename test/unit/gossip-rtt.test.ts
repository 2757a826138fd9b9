/**
 * Per-peer RTT from gossip probes (metrics: vxmesh_peer_rtt_seconds): the smoothed round trip of
 * direct probe acks follows the simulated one-way delay, and a reaped member's estimate is gone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tuningFor } from '../../src/gossip/config';
import { ST_DEAD } from '../../src/gossip/record';
import { Simulator } from '../../src/gossip/simulator';

const tuning = tuningFor('test');
const KEY = new Uint8Array(32).fill(9);

test('probe acks give each node a smoothed RTT per live member close to twice the one-way delay', async () => {
  const sim = await Simulator.create({ n: 4, seed: 11, tuning, bootstrap: 'join', keys: [KEY], delayMs: 5, jitterMs: 0 });
  assert.ok(sim.runUntil(() => sim.converged(), 30_000) >= 0, 'cluster converges');
  sim.run(20_000);
  for (const s of sim.nodes) {
    const rtts = [...s.node.rtts()];
    const peers = rtts.map((r) => r.peer).sort();
    const others = sim.nodes.filter((o) => o !== s).map((o) => o.name).sort();
    assert.deepEqual(peers, others, `${s.name} has an RTT for every other member`);
    for (const r of rtts) {
      assert.ok(Math.abs(r.seconds - 0.010) < 0.002, `${s.name} → ${r.peer}: ${r.seconds}s ≈ 2 × 5 ms`);
    }
  }
});

test('a dead member has no RTT exported, and its estimate is dropped when it is reaped', async () => {
  const sim = await Simulator.create({ n: 4, seed: 12, tuning, bootstrap: 'join', keys: [KEY], delayMs: 1, jitterMs: 0 });
  assert.ok(sim.runUntil(() => sim.converged(), 30_000) >= 0);
  sim.run(10_000);
  const victim = sim.nodes[3].name;
  const a = sim.nodes[0].node;
  assert.ok([...a.rtts()].some((r) => r.peer === victim), 'measured before the crash');
  sim.kill(3);
  assert.ok(sim.runUntil(() => sim.countViews(victim, ST_DEAD) === 3, 120_000) >= 0, 'declared dead');
  assert.ok(![...a.rtts()].some((r) => r.peer === victim), 'not exported once dead');
  assert.ok(sim.runUntil(() => a.member(victim) === null, tuning.reapAfterMs * 4 + 60_000) >= 0, 'reaped');
  assert.equal(a.prober.rttMs.has(victim), false, 'estimate forgotten');
});
