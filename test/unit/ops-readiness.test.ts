// Service readiness: agent.ready() plus gossipJoined when seeds are set (a seed itself is joined).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from '../../src/agent/agent';
import type { GossipConfig } from '../../src/config/types';
import { gossipJoined, serviceReady } from '../../src/metrics/readiness';

function fakeAgent(gossip: GossipConfig | null, liveMembers: number | null, agentOk = true): Agent {
  const ext = liveMembers === null ? [] : [{ name: 'gossip', start() {}, stop() {}, node: { liveMembers } }];
  return {
    config: { gossip },
    extensions: ext,
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

test('seeds set: not ready until another member is alive', () => {
  const alone = serviceReady(fakeAgent(g(['198.18.0.1']), 1));
  assert.equal(alone.ok, false);
  assert.equal(alone.checks.gossipJoined, false);
  const joined = serviceReady(fakeAgent(g(['198.18.0.1']), 3));
  assert.equal(joined.ok, true);
  assert.equal(joined.checks.gossipJoined, true);
  assert.equal(gossipJoined(fakeAgent(g(['198.18.0.1']), null)), false, 'gossip extension missing');
  assert.equal(serviceReady(fakeAgent(g(['198.18.0.1']), 3, false)).ok, false, 'joined but a TAP is down');
});

test('a node that is one of its own seeds is joined at once (the first node of a cluster)', () => {
  const first = serviceReady(fakeAgent(g(['198.18.0.2', '198.18.0.3']), 1));
  assert.equal(first.ok, true);
  assert.equal(first.checks.gossipJoined, true);
});
