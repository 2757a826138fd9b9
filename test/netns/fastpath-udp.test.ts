/**
 * Issue 5, fast path for small UDP datagrams: runs of datagrams of one flow that arrive together
 * are written to the receiving TAP as one UDP_L4 GSO frame (the kernel cuts it back into the same
 * datagrams). End to end through two vxmesh hosts: 3,000 datagrams in bursts from one connected
 * socket; every byte of every datagram that arrives is checked, nothing is duplicated, the
 * receiver really wrote coalesced frames, and nothing is dropped by the agents.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { agentConfig, startAgent, type LabAgent } from '../../lab/vxmesh';
import { assertReaches, buildTopology, dropsByReason, labFor, netnsSkip } from '../helpers/lab';

const skip = netnsSkip();
const VNI = 42;
const COUNT = 3000;
const TOOL = path.join(__dirname, '..', 'helpers', 'udp-burst.js');

test('fast path: bursts of UDP datagrams arrive intact and are written to the TAP as UDP GSO frames', { skip, timeout: 120_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const topo = await buildTopology(lab, { perHost: 1 });
  const agents: LabAgent[] = [];
  for (const h of lab.hosts) agents.push(await startAgent(lab, h, agentConfig(lab, h, { networks: [{ name: 'blue', vni: VNI, bridge: 'br0' }], logLevel: 'warn' })));
  const [a, b] = topo.all;
  await assertReaches(t, lab, a, b);

  for (const size of [64, 1000]) {
    const port = 6000 + size;
    const sink = lab.spawn(b.ns, process.execPath, [TOOL, 'sink', b.address, String(port), String(COUNT), '60000'], { name: `udp-sink-${size}` });
    await lab.waitForOutput(sink, 'listening', 10_000);
    const src = await lab.exec(a.ns, process.execPath, [TOOL, 'source', b.address, String(port), String(COUNT), String(size), '32'], { timeoutMs: 60_000 });
    assert.equal(JSON.parse(src.stdout.trim().split('\n').pop()!).sent, COUNT);
    await sink.exited;
    const got = JSON.parse(sink.stdout().trim().split('\n').filter((l) => l.startsWith('{')).pop()!);
    t.diagnostic(`${size} B: ${JSON.stringify(got)}`);
    assert.equal(got.bad, 0, `${size} B: every datagram that arrived is intact`);
    assert.equal(got.duplicates, 0, `${size} B: no datagram arrived twice`);
    // Loss is possible on a loaded machine (kernel queues), but not of most of the load.
    assert.ok(got.received >= COUNT * 0.9, `${size} B: ${got.received} of ${COUNT} arrived`);
  }

  const st = (await agents[1].status()) as unknown as { networks: Array<{ vni: number; tapWrites: { gsoWrites: number; coalesced: number } | null }> };
  const w = st.networks.find((n) => n.vni === VNI)!.tapWrites;
  t.diagnostic(`receiver TAP writes: ${JSON.stringify(w)}`);
  assert.ok(w !== null && w.gsoWrites > 0 && w.coalesced > 0, 'the receiver wrote coalesced (UDP GSO) frames');
  for (const ag of agents) {
    const drops = await dropsByReason(ag);
    delete drops['tx:local_dst'];
    assert.deepEqual(drops, {}, `${ag.host.name} drops`);
  }
});
