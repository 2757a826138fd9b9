/**
 * Issue 19 item 8: one meaning per label name — `peer` is the node name where gossip knows it (the
 * endpoint otherwise) on traffic series as on RTT, the underlay endpoint under `endpoint`; a
 * per-member state series that keeps a reaped dead member dead (so an alert naming it stays
 * firing) and forgets a member that left; peer liveness and oversized bridge ports exported.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VxmeshMetrics } from '../../src/metrics/registry';
import { NetworkCounters, PeerCounters, GlobalCounters } from '../../src/dataplane/counters';
import type { DatapathMetricsView, GossipMetricsView } from '../../src/metrics/sources';
import { parseExposition, select, value } from './ops-expo';

test('peer labels: node name where known, endpoint always; RTT uses the same name', async () => {
  const m = new VxmeshMetrics({ defaultMetrics: false });
  const b = new PeerCounters();
  b.rxPackets = 5;
  const c = new PeerCounters();
  c.rxPackets = 7;
  const dp: DatapathMetricsView = {
    counters: new GlobalCounters(),
    networks: () => [{ config: { name: 'blue', vni: 42 }, counters: new NetworkCounters() }],
    peers: () => [['198.18.0.2:4789', b], ['198.18.0.3:4789', c]],
    fdbEntries: () => [],
  };
  m.attachDatapath(dp);
  m.setPeerNames((ep) => (ep === '198.18.0.2:4789' ? 'host-b' : null));
  m.attachGossip({ membersByState: () => ({}), counters: () => ({ probes: 0, probesFailed: 0, suspicions: 0, messagesIn: 0, messagesOut: 0, rejected: {} }), rtts: () => [{ peer: 'host-b', seconds: 0.001 }], joined: () => true });
  m.attachWatch({
    peerViews: () => [
      { peer: 'host-b', endpoint: '198.18.0.2:4789', static: false, state: 'up', lastReceivedAgoSeconds: 1 },
      { peer: '198.18.0.3:4789', endpoint: '198.18.0.3:4789', static: true, state: 'down', lastReceivedAgoSeconds: null },
    ],
    oversizedPorts: (vni) => (vni === 42 ? [{ port: 'veth1', mtu: 1500 }] : []),
  });
  const s = parseExposition(await m.metrics());
  assert.equal(value(s, 'vxmesh_peer_rx_packets_total', { peer: 'host-b', endpoint: '198.18.0.2:4789' }), 5);
  assert.equal(value(s, 'vxmesh_peer_rx_packets_total', { peer: '198.18.0.3:4789', endpoint: '198.18.0.3:4789' }), 7);
  assert.equal(value(s, 'vxmesh_peer_rtt_seconds', { peer: 'host-b' }), 0.001, 'the same peer value as on the traffic series');
  assert.equal(value(s, 'vxmesh_peer_up', { peer: 'host-b', static: 'false' }), 1);
  assert.equal(value(s, 'vxmesh_peer_up', { peer: '198.18.0.3:4789', static: 'true' }), 0);
  assert.equal(value(s, 'vxmesh_peer_last_received_seconds', { peer: 'host-b' }), 1);
  assert.equal(select(s, 'vxmesh_peer_last_received_seconds', { peer: '198.18.0.3:4789' }).length, 0);
  assert.equal(value(s, 'vxmesh_network_oversized_ports', { network: 'blue', vni: 42 }), 1);
  for (const x of s.filter((y) => y.name.startsWith('vxmesh_peer_') && 'peer' in y.labels && 'endpoint' in y.labels)) {
    assert.match(x.labels.endpoint, /^198\.18\.0\.\d:4789$/, `endpoint label is always the underlay endpoint: ${JSON.stringify(x)}`);
  }
});

test('per-member state: one series per member and state; a reaped dead member stays dead, a member that left is forgotten', async () => {
  const m = new VxmeshMetrics({ defaultMetrics: false });
  let members = [{ peer: 'a', state: 'alive' }, { peer: 'b', state: 'alive' }, { peer: 'c', state: 'alive' }];
  const g: GossipMetricsView = {
    membersByState: () => ({}), counters: () => ({ probes: 0, probesFailed: 0, suspicions: 0, messagesIn: 0, messagesOut: 0, rejected: {} }),
    joined: () => true, memberStates: () => members,
  };
  m.attachGossip(g);
  let s = parseExposition(await m.metrics());
  assert.equal(value(s, 'vxmesh_gossip_member_state', { peer: 'b', state: 'alive' }), 1);
  assert.equal(value(s, 'vxmesh_gossip_member_state', { peer: 'b', state: 'dead' }), 0);
  assert.equal(select(s, 'vxmesh_gossip_member_state').length, 12, '3 members × 4 states');
  members = [{ peer: 'a', state: 'alive' }, { peer: 'b', state: 'dead' }, { peer: 'c', state: 'left' }];
  s = parseExposition(await m.metrics());
  assert.equal(value(s, 'vxmesh_gossip_member_state', { peer: 'b', state: 'dead' }), 1);
  members = [{ peer: 'a', state: 'alive' }]; // b and c reaped
  s = parseExposition(await m.metrics());
  assert.equal(value(s, 'vxmesh_gossip_member_state', { peer: 'b', state: 'dead' }), 1, 'reaped while dead: still dead');
  assert.equal(select(s, 'vxmesh_gossip_member_state', { peer: 'c' }).length, 0, 'left gracefully: forgotten');
  members = [{ peer: 'a', state: 'alive' }, { peer: 'b', state: 'alive' }];
  s = parseExposition(await m.metrics());
  assert.equal(value(s, 'vxmesh_gossip_member_state', { peer: 'b', state: 'alive' }), 1, 'back: alive again');
  assert.equal(value(s, 'vxmesh_gossip_member_state', { peer: 'b', state: 'dead' }), 0);
});
