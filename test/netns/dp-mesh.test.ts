/**
 * Issue 2, netns integration: three hosts on one underlay, each with a bridge and two containers,
 * one vxmesh agent per host with static peers. Every container pair (15) exchanges ping and TCP
 * both ways through vxmesh, the data verified by sha256; the agents count what they carried and
 * drop nothing. The same over an IPv6 underlay (2001:2::/64, overlay MTU = underlay − 70).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertReaches, buildTopology, dropsByReason, labFor, netnsSkip, pairs, startAgents } from '../helpers/lab';

const skip = netnsSkip();
const VNI = 42;

test('mesh: 3 hosts × 2 containers, every pair pings and transfers TCP through vxmesh', { skip, timeout: 300_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 3 });
  const topo = await buildTopology(lab);
  const agents = await startAgents(lab, [{ name: 'blue', vni: VNI, bridge: 'br0' }]);

  // Each host's TAP joined the existing bridge with the overlay MTU.
  for (const a of agents) {
    const tap = await a.tapOf(VNI);
    const st = await lab.linkStats(a.host.ns, tap);
    assert.equal(st.mtu, lab.overlayMtu, `${a.host.name} ${tap} MTU`);
    assert.ok(st.up, `${a.host.name} ${tap} up`);
    const master = await lab.exec(a.host.ns, 'cat', [`/sys/class/net/${tap}/master/uevent`]);
    assert.match(master.stdout, /INTERFACE=br0/);
  }

  const all = pairs(topo.all);
  assert.equal(all.length, 15);
  for (const [a, b] of all) {
    await t.test(`${a.name} (${a.address}) <-> ${b.name} (${b.address})`, async (st) => {
      await assertReaches(st, lab, a, b);
      await assertReaches(st, lab, b, a);
      const x1 = await lab.tcpTransfer(a, b, { bytes: 512 * 1024 });
      assert.equal(x1.receivedBytes, x1.bytes);
      assert.equal(x1.receivedSha256, x1.sentSha256);
      const x2 = await lab.tcpTransfer(b, a, { bytes: 512 * 1024 });
      assert.equal(x2.receivedBytes, x2.bytes);
      assert.equal(x2.receivedSha256, x2.sentSha256);
    });
  }

  // Cross-host traffic went through the agents (no kernel VXLAN exists here), nothing was dropped.
  for (const a of agents) {
    assert.ok(a.running(), `agent ${a.host.name} still running`);
    const n = await a.network(VNI);
    assert.ok(n.rxDelivered > 100, `${a.host.name} delivered ${n.rxDelivered} frames from the underlay`);
    assert.ok(n.txPackets > 100, `${a.host.name} sent ${n.txPackets} VXLAN packets`);
    const drops = await dropsByReason(a);
    // Frames between the two containers of one host reach the TAP by flooding before the bridge has
    // learned; the agent drops those as local_dst, which is correct. Anything else is a bug.
    delete drops['tx:local_dst'];
    assert.deepEqual(drops, {}, `${a.host.name} drops`);
  }
});

test('mesh over an IPv6 underlay: ping at the full overlay MTU and TCP', { skip, timeout: 120_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2, family: 6 });
  const topo = await buildTopology(lab, { perHost: 1 });
  await startAgents(lab, [{ name: 'blue', vni: VNI, bridge: 'br0' }]);
  const [a, b] = topo.all;
  assert.equal(a.mtu, 1430);
  await assertReaches(t, lab, a, b, { size: a.mtu - 28, dontFragment: true });
  const x = await lab.tcpTransfer(a, b, { bytes: 2 << 20 });
  assert.equal(x.receivedSha256, x.sentSha256);
  assert.equal(x.receivedBytes, 2 << 20);
});
