// Service readiness: agent.ready(); gossipJoined (when seeds are set) is shown but never holds it back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from '../../src/agent/agent';
import type { GossipConfig } from '../../src/config/types';
import type { GossipApi } from '../../src/gossip/api';
import { gossipJoined, serviceReady } from '../../src/metrics/readiness';

/** A gossip API that sees `liveMembers` (ourselves included): joined once it sees another. */
function gossipSeeing(liveMembers: number): Pick<GossipApi, 'joinState'> {
  return { joinState: () => ({ state: liveMembers > 1 ? 'joined' : 'joining', seeds: [], attempts: 0, nextAttemptInMs: null, failures: {}, lastError: null }) };
}

function fakeAgent(gossip: GossipConfig | null, liveMembers: number | null, agentOk = true): Agent {
  return {
    config: { gossip },
    gossip: liveMembers === null ? null : gossipSeeing(liveMembers),
    ready: () => ({ ok: agentOk, checks: { config: true, taps: agentOk, udp: true } }),
  } as unknown as Agent;
}

const g = (seeds: string[]): GossipConfig => ({
  port: 7946, address: '198.18.0.2', seeds: seeds.map((a) => ({ address: a, port: 7946, family: 4 as const })), keyFile: null, profile: 'test',
});

test('no gossip, or gossip without seeds: the agent\'s own verdict, no extra check', () => {
  assert.deepEqual(serviceReady(fakeAgent(null, null)), { ok: true, checks: { config: true, taps: true, udp: true } });
  assert.deepEqual(serviceReady(fakeAgent(g([]), 1)).checks.gossipJoined, undefined);
  assert.equal(serviceReady(fakeAgent(null, null, false)).ok, false);
});

test('seeds set: ready without the join (never a reason for systemd to wait), gossipJoined shown as degraded', () => {
  const alone = serviceReady(fakeAgent(g(['198.18.0.1']), 1));
  assert.equal(alone.ok, true, 'READY=1 and /readyz 200 do not wait for the seed');
  assert.equal(alone.checks.gossipJoined, false);
  assert.deepEqual(alone.degraded, ['gossipJoined']);
  const joined = serviceReady(fakeAgent(g(['198.18.0.1']), 3));
  assert.equal(joined.ok, true);
  assert.equal(joined.checks.gossipJoined, true);
  assert.equal(joined.degraded, undefined);
  assert.equal(gossipJoined(fakeAgent(g(['198.18.0.1']), null)), false, 'gossip extension missing');
  assert.equal(serviceReady(fakeAgent(g(['198.18.0.1']), 3, false)).ok, false, 'joined but a TAP is down');
});

test('the join state comes from the gossip extension and is carried in the report', () => {
  const state = { state: 'joining' as const, seeds: ['198.18.0.1:7946'], attempts: 3, nextAttemptInMs: 4000, failures: { '198.18.0.1:7946': 'refused' as const }, lastError: 'seed 198.18.0.1:7946: refused' };
  const agent = {
    config: { gossip: g(['198.18.0.1']) },
    gossip: { joinState: () => state },
    ready: () => ({ ok: true, checks: { config: true } }),
  } as unknown as Agent;
  const r = serviceReady(agent);
  assert.equal(r.ok, true);
  assert.equal(r.checks.gossipJoined, false);
  assert.deepEqual(r.gossip, state);
  state.state = 'joined' as never;
  assert.equal(serviceReady(agent).checks.gossipJoined, true);
});

test('a node that is one of its own seeds is joined at once (the first node of a cluster)', () => {
  const first = serviceReady(fakeAgent(g(['198.18.0.2', '198.18.0.3']), 1));
  assert.equal(first.ok, true);
  assert.equal(first.checks.gossipJoined, true);
});
