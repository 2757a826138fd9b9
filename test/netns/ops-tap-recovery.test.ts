/**
 * Issue 10 defect 8 (agent side), netns: a TAP deleted under a running agent (`ip link del`) is
 * noticed, the network is reported failed (GET /readyz names `network:blue`) and the TAP is
 * re-created and re-enslaved; ping between the two hosts' containers resumes, and the agent keeps
 * running. Done twice in a row, so the re-created TAP is itself recoverable.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, labFor, netnsSkip, startAgents } from '../helpers/lab';
import { httpGetJson } from '../../lab/vxmesh';

const skip = netnsSkip('ping');

test('a TAP deleted under the running agent is re-created and traffic resumes', { skip, timeout: 120_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const topo = await buildTopology(lab, { perHost: 1 });
  const [a1] = await startAgents(lab, [{ name: 'blue', vni: 42, bridge: 'br0' }]);
  const [c1, c2] = topo.all;
  const h1 = lab.hosts[0];
  assert.equal((await lab.ping(c1, c2.address, { count: 3, intervalS: 0.1 })).received, 3);

  for (let round = 1; round <= 2; round++) {
    const before = (JSON.parse((await lab.ip(h1.ns, '-j', 'link', 'show', 'dev', 'vx-blue')).stdout) as Array<{ ifindex: number }>)[0].ifindex;
    await lab.ip(h1.ns, 'link', 'del', 'vx-blue');
    const t0 = Date.now();
    // recovered: a new vx-blue on br0, and the containers talk again
    await lab.waitFor(`round ${round}: vx-blue re-created on br0`, async () => {
      if (!a1.running()) throw new Error(`agent exited:\n${a1.proc.output()}`);
      const r = await lab.ip(h1.ns, '-j', 'link', 'show', 'dev', 'vx-blue').catch(() => null);
      if (!r) return false;
      const l = (JSON.parse(r.stdout) as Array<{ ifindex: number; master?: string }>)[0];
      return l.ifindex !== before && l.master === 'br0';
    }, { timeoutMs: 15_000, intervalMs: 50 });
    await lab.waitFor(`round ${round}: ping resumes`, async () => (await lab.ping(c1, c2.address, { count: 2, intervalS: 0.1, waitS: 1 })).received === 2, { timeoutMs: 15_000, intervalMs: 100 });
    t.diagnostic(`round ${round}: traffic back ${Date.now() - t0} ms after the TAP was deleted`);
    const out = a1.proc.output();
    assert.match(out, /"msg":"network blue failed: [^"]*"/, 'the failure was logged');
    assert.ok((out.match(/network blue recovered: TAP vx-blue re-created/g) ?? []).length >= round, 'the recovery was logged');
    const ready = await httpGetJson(lab, h1.ns, `${a1.apiUrl}/readyz`) as { status: string; checks: Record<string, boolean> };
    assert.equal(ready.status, 'ok');
    assert.equal(ready.checks['network:blue'], true);
  }
  assert.ok(a1.running());
  const s = await a1.status();
  assert.equal(s.networks[0].failed, null);
});
