/**
 * Issue 2, MTU: vxmesh never fragments. A frame whose VXLAN packet would exceed the underlay MTU is
 * dropped and counted as `oversize_frame`; outer packets carry DF; a tcpdump on the underlay sees
 * no IP fragment at all. A packet at exactly the overlay MTU passes (the control that shows the
 * measurement can see traffic).
 *
 * To get an oversize frame to the agent at all, a container is "misconfigured" with MTU 1500 on a
 * 1450 overlay, and the TAP's MTU is raised to 1500 as well (otherwise the bridge drops the frame
 * before the TAP); then 1451- and 1500-byte packets with DF reach the agent.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertReaches, buildTopology, labFor, netnsSkip, startAgents } from '../helpers/lab';

const skip = netnsSkip('tcpdump');
const VNI = 42;

test('mtu: oversize frames are dropped and counted, never fragmented; DF is set', { skip, timeout: 120_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const topo = await buildTopology(lab, { perHost: 1 });
  const [agent1, agent2] = await startAgents(lab, [{ name: 'blue', vni: VNI, bridge: 'br0' }]);
  const [a, b] = topo.all;
  const h1 = lab.hosts[0];
  const mtu = lab.overlayMtu; // 1450

  const frags = await lab.capture(h1.ns, 'ul0', 'ip[6:2] & 0x3fff != 0', { name: 'frags' });
  const outer = await lab.capture(h1.ns, 'ul0', `udp dst port 4789 and src host ${h1.address}`, { name: 'outer' });

  // Control: exactly the overlay MTU, DF, passes both ways.
  await assertReaches(t, lab, a, b, { size: mtu - 28, dontFragment: true });
  await assertReaches(t, lab, b, a, { size: mtu - 28, dontFragment: true });

  // Misconfigured container: MTU 1500 on both veth ends.
  await lab.setMtu(a.ns, 'eth0', 1500);
  await lab.setMtu(h1.ns, a.hostIf, 1500);
  const before = await agent1.network(VNI);

  // The bridge itself drops frames larger than its TAP port's MTU; raise the TAP's MTU too, so that
  // oversize frames reach the agent: 1451-byte and 1500-byte packets, DF set.
  const tap = await agent1.tapOf(VNI);
  await lab.setMtu(h1.ns, tap, 1500);
  for (const size of [mtu + 1, 1500]) {
    const big = await lab.ping(a, b.address, { count: 3, intervalS: 0.05, size: size - 28, dontFragment: true, waitS: 1 });
    assert.equal(big.received, 0, big.output);
  }
  await lab.waitFor('oversize_frame counted', async () => (await agent1.network(VNI)).txDrops.oversize_frame >= before.txDrops.oversize_frame + 6);

  const after = await agent1.network(VNI);
  assert.equal(after.txDrops.oversize_frame - before.txDrops.oversize_frame, 6);
  // Nothing of it went out: the peer saw nothing oversize (and the capture below no outer packet
  // above the underlay MTU, no fragment).
  assert.equal((await agent2.network(VNI)).rxDrops.oversize_frame, 0);

  const fragFile = await frags.stop();
  const outerFile = await outer.stop();
  assert.deepEqual(await lab.readPcap(fragFile), [], 'no IP fragments on the underlay');
  const sent = await lab.readPcap(outerFile, '', { verbose: true });
  assert.ok(sent.length >= 3, 'vxmesh sent VXLAN packets');
  for (const line of sent) assert.match(line.split(' | ')[0], /flags \[DF\]/, `outer packet without DF: ${line}`);
  // The largest outer packet is exactly the underlay MTU (1450-byte inner IP + 14 + 8 + 8 + 20).
  const lengths = sent.map((l) => Number(/length (\d+)\)/.exec(l)?.[1] ?? 0));
  assert.equal(Math.max(...lengths), lab.underlayMtu);
});
