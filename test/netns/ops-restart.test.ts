/**
 * Issue 19 item 1, netns: bridges outlive the agent. Two hosts; h1's agent creates br0 itself (no
 * bridge exists before it starts) and two containers attach to it; h2 has one container. h1's agent
 * is then restarted 20 times, SIGTERM and kill -9 mixed. Asserted on every round: the containers'
 * veths are still ports of the same br0 (same ifindex), the agent reuses the bridge (log line), and
 * after the agent is ready again the remote container answers (ping h1c1 → h2c1, every echo of a
 * 3-echo burst). A ping stream between h1's two containers runs across all 20 restarts and loses
 * nothing: the bridge never went away. At the end `vxmesh cleanup` deletes br0 (state file read).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { labFor, netnsSkip } from '../helpers/lab';
import { parsePing, REPO_ROOT, type Lab } from '../../lab/netns';
import { agentConfig, startAgent, type LabAgent, type LabNetwork } from '../../lab/vxmesh';

const skip = netnsSkip('ping');
const BLUE: LabNetwork = { name: 'blue', vni: 42, bridge: 'br0' };
const ROUNDS = 20;

async function linkInfo(lab: Lab, ns: string, ifname: string): Promise<{ ifindex: number; master: string | null }> {
  const r = await lab.ip(ns, '-j', 'link', 'show', 'dev', ifname);
  const l = (JSON.parse(r.stdout) as Array<{ ifindex: number; master?: string }>)[0];
  return { ifindex: l.ifindex, master: l.master ?? null };
}

test('containers keep their bridge and traffic across 20 agent restarts (SIGTERM and kill -9 mixed)', { skip, timeout: 420_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const [h1, h2] = lab.hosts;
  const cfg1 = agentConfig(lab, h1, { networks: [BLUE] });
  const cfg2 = agentConfig(lab, h2, { networks: [BLUE] });
  let a1: LabAgent = await startAgent(lab, h1, cfg1);
  await startAgent(lab, h2, cfg2);
  assert.match(a1.proc.output(), /"msg":"bridge created"/, 'h1\'s agent created br0');
  const c1 = await lab.addContainer(h1, { bridge: 'br0', name: 'h1c1', address: '198.19.0.11/24' });
  const c2 = await lab.addContainer(h1, { bridge: 'br0', name: 'h1c2', address: '198.19.0.12/24' });
  const remote = await lab.addContainer(h2, { bridge: 'br0', name: 'h2c1', address: '198.19.0.21/24' });
  const warm = await lab.ping(c1, remote.address, { count: 3, intervalS: 0.1 });
  assert.equal(warm.received, 3, warm.output);
  const bridge = await linkInfo(lab, h1.ns, 'br0');

  // Local stream between the two h1 containers, spanning every restart.
  const stream = lab.spawn(c1.ns, 'ping', ['-n', '-q', '-i', '0.05', '-W', '1', c2.address], { name: 'ping local' });
  t.after(async () => { if (stream.running()) await lab.stop(stream, { signal: 'SIGINT' }); });

  const recovery: number[] = [];
  for (let i = 1; i <= ROUNDS; i++) {
    const kill = i % 3 === 0 || i % 5 === 0; // 9 of the 20 rounds
    const exit = await lab.stop(a1.proc, { signal: kill ? 'SIGKILL' : 'SIGTERM', timeoutMs: 10_000 });
    assert.deepEqual(exit, kill ? { code: null, signal: 'SIGKILL' } : { code: 0, signal: null }, a1.proc.output());
    for (const c of [c1, c2]) {
      assert.equal((await linkInfo(lab, h1.ns, c.hostIf)).master, 'br0', `round ${i}: ${c.name} still on br0 while the agent is down`);
    }
    assert.equal((await linkInfo(lab, h1.ns, 'br0')).ifindex, bridge.ifindex, `round ${i}: br0 still the same bridge`);
    a1 = await startAgent(lab, h1, cfg1);
    assert.match(a1.proc.output(), /bridge from an earlier run reused/, `round ${i}: the agent reused br0`);
    assert.equal((await linkInfo(lab, h1.ns, 'br0')).ifindex, bridge.ifindex, `round ${i}: br0 not re-created`);
    const t0 = Date.now();
    await lab.waitFor(`round ${i}: h1c1 → h2c1 answers after the restart`, async () => {
      const p = await lab.ping(c1, remote.address, { count: 3, intervalS: 0.1, waitS: 1 });
      return p.received === 3;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    recovery.push(Date.now() - t0);
  }
  assert.ok(stream.running(), stream.output());
  await lab.stop(stream, { signal: 'SIGINT' });
  const p = parsePing(stream.output());
  assert.ok(p.transmitted > 100, `local stream ran: ${stream.output()}`);
  assert.equal(p.received, p.transmitted, `local echoes lost across the restarts: ${p.transmitted - p.received} of ${p.transmitted}`);
  t.diagnostic(`remote ping recovered within ${Math.max(...recovery)} ms of ready (median ${recovery.sort((x, y) => x - y)[recovery.length >> 1]} ms); local stream ${p.received}/${p.transmitted}`);

  await lab.stop(a1.proc);
  const r = await lab.exec(h1.ns, process.execPath, [path.join(REPO_ROOT, 'bin', 'vxmesh'), 'cleanup', '--state-dir', path.join(lab.dir, `state-${h1.name}`)]);
  assert.match(r.stdout, /deleted bridge br0/);
  assert.equal(await lab.linkExists(h1.ns, 'br0'), false, 'cleanup deleted br0');
});
