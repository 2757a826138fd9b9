/** Stale and replayed messages change nothing: every packet of a busy period replayed later is ignored. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tuningFor } from '../../src/gossip/config';
import { Simulator } from '../../src/gossip/simulator';

const tuning = tuningFor('test');

function snapshot(sim: Simulator): string {
  const out: string[] = [];
  for (const s of sim.up()) {
    for (const m of s.node.members()) out.push(`${s.name}>${m.name}:${m.state}@${m.incarnation}:${JSON.stringify(m.record)}`);
  }
  return out.join('\n');
}

test('replaying every packet of a period with suspicions, refutations, updates, a leave and a crash changes no view', async () => {
  const sim = await Simulator.create({ n: 6, seed: 11, tuning, bootstrap: 'join' });
  assert.ok(sim.runUntil(() => sim.converged(), 30_000) >= 0);
  const captured: { from: string; to: string; data: Uint8Array }[] = [];
  sim.net.onDeliver = (from, to, data) => captured.push({ from, to, data });
  // A busy period: record updates, a crash (suspect → dead), a graceful leave.
  sim.nodes[0].node.updateLocal({ vnis: [100, 200] });
  sim.nodes[1].node.updateLocal({ endpoints: [] });
  sim.kill(5);
  assert.ok(sim.runUntil(() => sim.countViews(sim.nodes[5].name, 2) === 5, 60_000) >= 0);
  sim.leave(4);
  assert.ok(sim.runUntil(() => sim.countViews(sim.nodes[4].name, 3) === 4, 10_000) >= 0);
  sim.nodes[0].node.updateLocal({ vnis: [300] });
  sim.run(10_000);
  sim.net.onDeliver = null;
  assert.ok(captured.length > 100);
  const before = snapshot(sim);
  const stale0 = sim.up().reduce((n, s) => n + s.node.stats.drops.stale + s.node.stats.duplicates + s.node.stats.drops.late_ack, 0);
  // Replay everything, to its original destination and to every other live node.
  for (const c of captured) for (const s of sim.up()) sim.net.inject(c.from, s.address, c.data);
  sim.run(5_000);
  assert.equal(snapshot(sim), before);
  const stale1 = sim.up().reduce((n, s) => n + s.node.stats.drops.stale + s.node.stats.duplicates + s.node.stats.drops.late_ack, 0);
  assert.ok(stale1 > stale0, 'replays were recognised and counted');
  for (const s of sim.up()) assert.equal(s.node.member(s.name)!.incarnation, s.node.self.incarnation);
});

test('a reaped member stays reaped when its old announcements are replayed (tombstone)', async () => {
  const sim = await Simulator.create({ n: 4, seed: 12, tuning, bootstrap: 'join' });
  assert.ok(sim.runUntil(() => sim.converged(), 30_000) >= 0);
  const captured: { from: string; to: string; data: Uint8Array }[] = [];
  const victim = sim.nodes[3];
  sim.net.onDeliver = (from, to, data) => { if (from === victim.address) captured.push({ from, to, data }); };
  victim.node.updateLocal({ vnis: [7] }); // an alive announcement worth replaying
  sim.run(2_000);
  sim.net.onDeliver = null;
  sim.kill(3);
  assert.ok(sim.runUntil(() => sim.countViews(victim.name, -1) === 3, tuning.reapAfterMs + 60_000, 1000) >= 0, 'reaped');
  for (const c of captured) for (const s of sim.up()) sim.net.inject(c.from, s.address, c.data);
  sim.run(5_000);
  assert.equal(sim.countViews(victim.name, -1), 3, 'still unknown everywhere');
});
