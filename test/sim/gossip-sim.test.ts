/**
 * Simulation: the real gossip code for hundreds of nodes in one process (seeded, FakeClock).
 * 200 nodes under 10% loss converge; a partition heals; a record under a wrong key never lands.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BC_ALIVE, encodeBroadcast, encodePacket, PKT_GOSSIP } from '../../src/gossip/codec';
import { tuningFor } from '../../src/gossip/config';
import { Keyring } from '../../src/gossip/keyring';
import { ST_ALIVE, ST_DEAD, ST_SUSPECT } from '../../src/gossip/record';
import { Simulator, SimNode } from '../../src/gossip/simulator';

/** Every running node knows every other running node as alive or suspect (never dead/unknown). */
function allKnown(sim: Simulator): boolean {
  const up = sim.up();
  for (const a of up) {
    for (const b of up) {
      if (a === b) continue;
      const st = a.node.stateOf(b.name);
      if (st !== ST_ALIVE && st !== ST_SUSPECT) return false;
    }
  }
  return true;
}

test('200 nodes joining through one seed converge under 10% packet loss, with no false dead verdicts', async () => {
  const sim = await Simulator.create({ n: 200, seed: 21, tuning: tuningFor('lan'), loss: 0.1, bootstrap: 'join' });
  let dead = 0;
  sim.observe((_s, ev) => { if (ev.type === 'dead') dead++; });
  const t = sim.runUntil(() => allKnown(sim), 120_000, 1000);
  assert.ok(t >= 0, 'everyone knows everyone');
  sim.run(30_000);
  assert.ok(allKnown(sim), 'and stays so');
  assert.equal(dead, 0, 'no member was declared dead');
});

test('a partition: each side declares the other dead, and after healing everyone is alive again', async () => {
  const sim = await Simulator.create({ n: 60, seed: 22, tuning: tuningFor('test'), bootstrap: 'converged' });
  sim.run(2_000);
  const left = sim.nodes.slice(0, 30);
  const right = sim.nodes.slice(30);
  sim.net.partition(right.map((s) => s.address), 1);
  const sideDead = (a: SimNode[], b: SimNode[]): boolean => a.every((x) => b.every((y) => x.node.stateOf(y.name) === ST_DEAD));
  assert.ok(sim.runUntil(() => sideDead(left, right) && sideDead(right, left), 120_000, 500) >= 0, 'both sides see the other dead');
  assert.ok(sim.converged() === false);
  sim.net.heal();
  assert.ok(sim.runUntil(() => sim.converged(), 300_000, 1000) >= 0, 'healed: all alive everywhere');
});

test('a record under a wrong key never lands; the right key still works', async () => {
  const key = new Uint8Array(32).fill(7);
  const sim = await Simulator.create({ n: 30, seed: 23, tuning: tuningFor('test'), bootstrap: 'converged', keys: [key] });
  sim.run(1_000);
  const forged = { ...sim.nodes[0].node.self, name: 'mallory', gossip: '198.18.200.1:7946', incarnation: 1 };
  const pkt = encodePacket({ type: PKT_GOSSIP }, [encodeBroadcast({ kind: BC_ALIVE, record: forged })]);
  const wrong = new Keyring([new Uint8Array(32).fill(8)]);
  for (const s of sim.nodes) sim.net.inject('198.18.200.1:7946', s.address, wrong.seal(pkt));
  // And a whole node with the wrong key joining through a seed.
  const intruder = sim.addNode({ keys: [new Uint8Array(32).fill(9)] });
  sim.run(20_000);
  assert.equal(sim.countViews('mallory', -1), sim.up().length, 'nobody knows the forged member');
  assert.equal(sim.countViews(intruder.name, -1), sim.up().length - 1, 'nobody knows the intruder');
  const badKey = sim.nodes.reduce((n, s) => n + s.node.stats.drops.bad_key, 0);
  assert.ok(badKey >= 30);
  // Control: the same forged packet under the right key does land.
  const right = new Keyring([key]);
  sim.net.inject('198.18.200.1:7946', sim.nodes[1].address, right.seal(pkt));
  sim.run(200);
  assert.ok(sim.countViews('mallory', -1) < sim.up().length, 'the control record landed');
});
