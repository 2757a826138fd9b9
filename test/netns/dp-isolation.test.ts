/**
 * Issue 2, isolation: two networks (VNI 42 on br0, VNI 43 on br1) on the same two hosts and the
 * same agents, with overlapping address plans. Inside each network traffic passes; across networks
 * nothing does — not ARP broadcasts, not unicast to a MAC that is known in the other network.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertReaches, labFor, netnsSkip, startAgents } from '../helpers/lab';

const skip = netnsSkip('tcpdump');

test('isolation: two VNIs on the same hosts cannot reach each other', { skip, timeout: 120_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const [h1, h2] = lab.hosts;
  for (const h of lab.hosts) {
    await lab.addBridge(h, 'br0');
    await lab.addBridge(h, 'br1');
  }
  // Same subnet in both networks: only the VNI separates them.
  const blue1 = await lab.addContainer(h1, { bridge: 'br0', name: 'blue1', address: '198.19.0.11/24' });
  const blue2 = await lab.addContainer(h2, { bridge: 'br0', name: 'blue2', address: '198.19.0.21/24' });
  const red1 = await lab.addContainer(h1, { bridge: 'br1', name: 'red1', address: '198.19.0.12/24' });
  const red2 = await lab.addContainer(h2, { bridge: 'br1', name: 'red2', address: '198.19.0.22/24' });
  const [agent1, agent2] = await startAgents(lab, [
    { name: 'blue', vni: 42, bridge: 'br0' },
    { name: 'red', vni: 43, bridge: 'br1' },
  ]);

  // Within a network: passes (so each agent knows both MACs of its own network).
  for (const [x, y] of [[blue1, blue2], [red1, red2]] as const) await assertReaches(t, lab, x, y);

  const onRed2 = await lab.capture(h2.ns, 'br1', `ether src ${blue1.mac} or ether dst ${blue1.mac}`, { name: 'red-br1' });
  const onBlue2 = await lab.capture(h2.ns, 'br0', `ether src ${red1.mac} or ether dst ${red1.mac}`, { name: 'blue-br0' });

  // Across networks, by ARP (broadcast): nothing.
  const x1 = await lab.ping(blue1, red2.address, { count: 3, intervalS: 0.05, waitS: 1 });
  assert.equal(x1.received, 0, x1.output);
  const x2 = await lab.ping(red1, blue2.address, { count: 3, intervalS: 0.05, waitS: 1 });
  assert.equal(x2.received, 0, x2.output);

  // Across networks by unicast to a MAC the other network's FDB knows: still nothing.
  await lab.ip(blue1.ns, 'neigh', 'replace', red2.address, 'lladdr', red2.mac, 'dev', 'eth0', 'nud', 'permanent');
  await lab.ip(red1.ns, 'neigh', 'replace', blue2.address, 'lladdr', blue2.mac, 'dev', 'eth0', 'nud', 'permanent');
  const u1 = await lab.ping(blue1, red2.address, { count: 3, intervalS: 0.05, waitS: 1 });
  assert.equal(u1.received, 0, u1.output);
  const u2 = await lab.ping(red1, blue2.address, { count: 3, intervalS: 0.05, waitS: 1 });
  assert.equal(u2.received, 0, u2.output);

  assert.deepEqual(await lab.readPcap(await onRed2.stop()), [], 'a blue frame appeared on the red bridge');
  assert.deepEqual(await lab.readPcap(await onBlue2.stop()), [], 'a red frame appeared on the blue bridge');

  // Both networks still work afterwards, and both agents are up.
  for (const [x, y] of [[blue2, blue1], [red2, red1]] as const) await assertReaches(t, lab, x, y);
  assert.ok(agent1.running() && agent2.running());
});
