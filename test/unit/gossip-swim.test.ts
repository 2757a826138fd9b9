/**
 * Each SWIM mechanism on a small cluster: the real GossipNode over the in-memory transport, time
 * moved by a FakeClock (test profile). Assertions are about states and events, never wall time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BC_SUSPECT, encodeBroadcast, encodePacket, PKT_GOSSIP } from '../../src/gossip/codec';
import { suspicionMinMs, tuningFor } from '../../src/gossip/config';
import { Keyring } from '../../src/gossip/keyring';
import { ST_ALIVE, ST_DEAD, ST_LEFT } from '../../src/gossip/record';
import { Simulator } from '../../src/gossip/simulator';
import { MemberEvent } from '../../src/gossip/swim';

const tuning = tuningFor('test');
const KEY = new Uint8Array(32).fill(7);

async function cluster(n: number, seed = 1, bootstrap: 'join' | 'converged' = 'join'): Promise<Simulator> {
  const sim = await Simulator.create({ n, seed, tuning, bootstrap, keys: [KEY] });
  if (bootstrap === 'join') assert.ok(sim.runUntil(() => sim.converged(), 30_000) >= 0, 'cluster converges');
  return sim;
}

test('members that know one seed find each other (join via push-pull + gossip)', async () => {
  const sim = await cluster(5);
  for (const s of sim.nodes) assert.equal(s.node.liveMembers, 5);
});

test('healthy cluster: probes succeed, nobody is suspected, awareness stays 0', async () => {
  const sim = await cluster(5, 2);
  sim.run(20_000);
  for (const s of sim.nodes) {
    assert.ok(s.node.prober.probes > 50);
    assert.equal(s.node.prober.failures, 0);
    assert.equal(s.node.stats.suspicionsStarted, 0);
    assert.equal(s.node.awareness.getHealthScore(), 0);
  }
});

test('indirect probes: a member unreachable from one node only is never suspected', async () => {
  const sim = await cluster(5, 3);
  const [a, , c] = sim.nodes;
  sim.net.blockLink(a.address, c.address);
  sim.run(30_000);
  assert.ok(a.node.prober.indirectRequests > 0, 'a asked helpers');
  assert.equal(a.node.prober.failures, 0);
  assert.ok(sim.converged());
  assert.equal(c.node.stats.refutations, 0);
});

test('a crashed member is suspected first, then declared dead by everyone; not before the minimum suspicion timeout', async () => {
  const sim = await cluster(5, 4);
  const events: { at: number; who: string; ev: MemberEvent }[] = [];
  sim.observe((sn, ev) => events.push({ at: sim.clock.now(), who: sn.name, ev }));
  const t0 = sim.clock.now();
  sim.kill(2);
  const victim = sim.nodes[2].name;
  assert.ok(sim.runUntil(() => sim.countViews(victim, ST_DEAD) === 4, 60_000) >= 0);
  const suspects = events.filter((e) => e.ev.name === victim && e.ev.type === 'suspect');
  const deads = events.filter((e) => e.ev.name === victim && e.ev.type === 'dead');
  assert.ok(suspects.length > 0);
  assert.equal(deads.length, 4);
  const firstSuspect = Math.min(...suspects.map((e) => e.at));
  const firstDead = Math.min(...deads.map((e) => e.at));
  assert.ok(firstSuspect > t0);
  assert.ok(firstDead - firstSuspect >= suspicionMinMs(tuning, 5) - 1, 'dead only after the suspicion timeout');
  // Nobody else was touched.
  for (const s of sim.up()) for (const o of sim.up()) if (s !== o) assert.equal(s.node.stateOf(o.name), ST_ALIVE);
});

test('refutation: a suspicion about a live member makes it re-announce with a higher incarnation', async () => {
  const sim = await cluster(4, 5);
  const b = sim.nodes[1];
  const before = b.node.self.incarnation;
  let suspected = 0;
  sim.observe((_sn, ev) => { if (ev.type === 'suspect' && ev.name === b.name) suspected++; });
  // A (forged but correctly keyed) suspicion of b, gossiped to c.
  const pkt = encodePacket({ type: PKT_GOSSIP }, [encodeBroadcast({ kind: BC_SUSPECT, name: b.name, incarnation: before, from: sim.nodes[0].name })]);
  sim.net.inject(sim.nodes[0].address, sim.nodes[2].address, new Keyring([KEY]).seal(pkt));
  sim.run(20);
  assert.ok(suspected >= 1, 'the suspicion landed');
  assert.ok(sim.runUntil(() => sim.countViews(b.name, ST_ALIVE) === 3 && b.node.self.incarnation > before, 10_000) >= 0);
  assert.ok(b.node.stats.refutations >= 1);
  for (const s of sim.nodes) if (s !== b) assert.equal(s.node.member(b.name)!.incarnation, b.node.self.incarnation);
  sim.run(30_000);
  assert.equal(sim.countViews(b.name, ST_DEAD), 0, 'never declared dead');
});

test('Lifeguard: an isolated node raises its awareness score (its probes miss their nacks) and slows down', async () => {
  const sim = await cluster(5, 6);
  const a = sim.nodes[0];
  sim.net.partition([a.address], 1);
  sim.run(5_000);
  assert.ok(a.node.awareness.getHealthScore() >= 3, `score ${a.node.awareness.getHealthScore()}`);
  const probesBefore = a.node.prober.probes;
  sim.run(10_000);
  const slowRate = a.node.prober.probes - probesBefore;
  assert.ok(slowRate < 10_000 / tuning.probeIntervalMs / 2, `probes in 10 s while unhealthy: ${slowRate}`);
  sim.net.heal();
  assert.ok(sim.runUntil(() => a.node.awareness.getHealthScore() === 0 && sim.converged(), 120_000) >= 0);
});

test('graceful leave shows as left (not dead) everywhere; dead and left members are reaped after reapAfterMs', async () => {
  const sim = await cluster(5, 7);
  const leaver = sim.nodes[3];
  sim.leave(3);
  assert.ok(sim.runUntil(() => sim.countViews(leaver.name, ST_LEFT) === 4, 10_000) >= 0);
  assert.equal(sim.countViews(leaver.name, ST_DEAD), 0);
  sim.kill(4);
  const dead = sim.nodes[4].name;
  assert.ok(sim.runUntil(() => sim.countViews(dead, ST_DEAD) === 3, 60_000) >= 0);
  assert.ok(sim.runUntil(() => sim.countViews(dead, -1) === 3 && sim.countViews(leaver.name, -1) === 3, tuning.reapAfterMs + 60_000, 1000) >= 0);
  assert.equal(sim.nodes[0].node.member(dead), null);
  assert.ok(sim.nodes[0].node.tombstone(dead) !== undefined);
});

test('rejoin after restart: a crashed member restarted with a fresh state is alive again everywhere', async () => {
  const sim = await cluster(5, 8);
  sim.kill(2);
  const name = sim.nodes[2].name;
  assert.ok(sim.runUntil(() => sim.countViews(name, ST_DEAD) === 4, 60_000) >= 0);
  const r = sim.restart(2); // incarnation 0 again: it must out-rank its own death by refuting it
  assert.ok(sim.runUntil(() => sim.converged(), 30_000) >= 0);
  assert.ok(r.node.self.incarnation > 0);
  assert.equal(r.node.liveMembers, 5);
});

test('record updates (endpoints) spread; a node with the wrong key never lands', async () => {
  const sim = await cluster(4, 9);
  const a = sim.nodes[0];
  a.node.updateLocal({ endpoints: [{ vni: 100, mac: '02:aa:00:00:00:01', ips: ['198.19.9.9'] }] });
  assert.ok(sim.runUntil(() => sim.nodes.every((s) => s.node.member(a.name)!.record.endpoints[0]?.mac === '02:aa:00:00:00:01'), 10_000) >= 0);
  const intruder = sim.addNode({ keys: [new Uint8Array(32).fill(9)] });
  sim.run(20_000);
  assert.equal(sim.countViews(intruder.name, -1), 4, 'nobody knows the intruder');
  assert.equal(intruder.node.liveMembers, 1);
  const badKey = sim.nodes.slice(0, 4).reduce((n, s) => n + s.node.stats.drops.bad_key, 0);
  assert.ok(badKey > 0, 'its packets were counted as bad_key');
});
