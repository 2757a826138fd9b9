// Gossip and crypto counters → vxmesh_gossip_* / vxmesh_crypto_* through the adapters: a real
// seeded gossip simulation (join, then a node killed), and the session layer's CipherCounters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Simulator } from '../../src/gossip/simulator';
import { PROFILES } from '../../src/gossip/config';
import { CipherCounters } from '../../src/crypto/session';
import { cryptoViewOf, gossipViewOf } from '../../src/metrics/adapters';
import { VxmeshMetrics } from '../../src/metrics/registry';
import { parseExposition, select, value } from './ops-expo';

test('gossip: members by state, probes, suspicions, messages, bytes and drops from a live simulation', async () => {
  const sim = await Simulator.create({ n: 5, seed: 42, tuning: PROFILES.test, bootstrap: 'join' });
  sim.runUntil(() => sim.converged(), 60_000);
  const n0 = sim.nodes[0];
  const m = new VxmeshMetrics({ defaultMetrics: false });
  m.attachGossip(() => gossipViewOf({ node: n0.node, ready: () => true }));

  let s = parseExposition(await m.metrics());
  assert.equal(value(s, 'vxmesh_gossip_members', { state: 'alive' }), 5);
  assert.equal(value(s, 'vxmesh_gossip_members', { state: 'dead' }), 0);
  assert.equal(value(s, 'vxmesh_gossip_joined'), 1);
  assert.ok(value(s, 'vxmesh_gossip_probes_total') > 0);
  assert.equal(value(s, 'vxmesh_gossip_probes_total'), n0.node.prober.probes);
  assert.equal(value(s, 'vxmesh_gossip_messages_total', { direction: 'in' }), n0.node.stats.packetsReceived);
  assert.equal(value(s, 'vxmesh_gossip_messages_total', { direction: 'out' }), n0.node.stats.packetsSent);
  const ts = n0.transport.stats;
  assert.equal(value(s, 'vxmesh_gossip_bytes_total', { direction: 'out' }), ts.packetBytesSent + ts.streamBytesSent);
  assert.ok(value(s, 'vxmesh_gossip_bytes_total', { direction: 'in' }) > 0);
  assert.deepEqual(select(s, 'vxmesh_gossip_rejected_packets_total').map((x) => x.labels.reason).sort(), Object.keys(n0.node.stats.drops).sort());

  sim.kill(4);
  sim.runUntil(() => n0.node.members().some((x) => x.name === sim.nodes[4].name && x.state === 'dead'), 120_000);
  s = parseExposition(await m.metrics());
  assert.equal(value(s, 'vxmesh_gossip_members', { state: 'alive' }), 4);
  assert.equal(value(s, 'vxmesh_gossip_members', { state: 'dead' }), 1);
  assert.ok(value(s, 'vxmesh_gossip_suspicions_total') >= 1);
  assert.equal(value(s, 'vxmesh_gossip_suspicions_total'), n0.node.stats.suspicionsStarted);
  assert.equal(value(s, 'vxmesh_gossip_probe_failures_total'), n0.node.prober.failures);
  m.stop();
});

test('crypto: handshake results and failure reasons from CipherCounters; sessions counted', async () => {
  const c = new CipherCounters();
  Object.assign(c, {
    hsInitiationSent: 7, hsResponseSent: 3, sessionsEstablished: 6, handshakeTimeouts: 2,
    hsInvalid: 1, hsBadMac: 2, hsUnknownPeer: 3, hsUnknownIndex: 4, hsReplayedInitiation: 5, hsRateLimited: 6, hsCookieSent: 1,
    rxBadTag: 11, rxReplay: 12, rxUnknownIndex: 13, rxExpired: 14, rxMalformed: 15, txNoSession: 16,
  });
  const ext = { sessions: { counters: c, status: () => ({ peers: [{ session: {} }, { session: null }, { session: {} }] }) } };
  const m = new VxmeshMetrics({ defaultMetrics: false });
  m.attachCrypto(() => cryptoViewOf(ext));
  const s = parseExposition(await m.metrics());
  const hs = (result: string) => value(s, 'vxmesh_crypto_handshakes_total', { result });
  assert.equal(hs('initiated'), 7);
  assert.equal(hs('responded'), 3);
  assert.equal(hs('completed'), 6);
  assert.equal(hs('timed_out'), 2);
  assert.equal(hs('failed'), 1 + 2 + 3 + 4 + 5);
  assert.equal(hs('rate_limited'), 7);
  const f = (reason: string) => value(s, 'vxmesh_crypto_failures_total', { reason });
  assert.equal(f('bad_tag'), 11);
  assert.equal(f('replay'), 12);
  assert.equal(f('unknown_index'), 13);
  assert.equal(f('expired'), 14);
  assert.equal(f('malformed'), 15);
  assert.equal(f('no_session'), 16);
  assert.equal(value(s, 'vxmesh_crypto_sessions'), 2);
  // Live: a counter moving shows at the next scrape.
  c.rxBadTag++;
  assert.equal(value(parseExposition(await m.metrics()), 'vxmesh_crypto_failures_total', { reason: 'bad_tag' }), 12);
  // No session manager yet → no crypto series.
  m.attachCrypto(() => cryptoViewOf({ sessions: null }));
  assert.equal(select(parseExposition(await m.metrics()), 'vxmesh_crypto_handshakes_total').length, 0);
  m.stop();
});
