/**
 * Same-host enforcement after a crash: the nft netdev table `vxmesh-policy` (src/policy/local-ports.ts)
 * is removed by a clean stop, but an agent killed with SIGKILL leaves it behind, still redirecting
 * frames between local endpoints to a TAP nobody reads. The next agent must replace it (policy still
 * there) or remove it (nothing to enforce) at start. Both, on a real kernel, with the table as a
 * crash leaves it — and with a hand-made table naming devices the agent never knew.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lab, LabHost } from '../../lab/netns';
import { NFT_POLICY_TABLE } from '../../src/policy/local-ports';
import { labFor, netnsSkip } from '../helpers/lab';
import { addEmptyNamespace, attachOk, endpointAgentConfig, startEndpointAgent, stateDirOf, vx } from '../helpers/endpoints';

const NET = { name: 'blue', vni: 42, bridge: 'br0', subnet: '198.19.0.0/16', range: '198.19.1.0/24' };

async function table(lab: Lab, h: LabHost): Promise<string | null> {
  const r = await lab.exec(h.ns, 'nft', ['list', 'table', 'netdev', NFT_POLICY_TABLE], { check: false, timeoutMs: 10_000 });
  return r.code === 0 ? r.stdout : null;
}

test('policy: a same-host table left by a crashed agent is replaced at start, or removed when nothing is enforced', { skip: netnsSkip('nft'), timeout: 240_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 1 });
  const [h] = lab.hosts;
  const cfg = endpointAgentConfig(lab, h, [NET], { peers: false });

  // 1. A table as a crash leaves it: an agent with a policy and two local endpoints, SIGKILLed.
  let agent = await startEndpointAgent(lab, h, cfg);
  const a = await attachOk(lab, h, ['--network', 'blue', '--netns', await addEmptyNamespace(lab, 'sa'), '--name', 'sa', '--label', 'role=web']);
  const b = await attachOk(lab, h, ['--network', 'blue', '--netns', await addEmptyNamespace(lab, 'sb'), '--name', 'sb', '--label', 'role=db']);
  const doc = lab.writeFile('db.yaml', 'name: db\nnetwork: blue\nendpoints: {role: db}\ningress:\n  - from: [{endpoints: {role: web}}]\n');
  const ap = await vx(lab, h, ['policy', 'apply', doc]);
  assert.equal(ap.code, 0, ap.stderr);
  await lab.waitFor('same-host table installed', async () => ((await table(lab, h)) ?? '').includes(a.mac), { timeoutMs: 20_000, intervalMs: 200 });
  await lab.stop(agent.proc, { signal: 'SIGKILL' });
  const left = await table(lab, h);
  assert.ok(left !== null && left.includes(b.mac), 'SIGKILL leaves the table (no stop ran)');

  // 2. Restart with the policy kept (state directory): the table is replaced by the current one.
  // Mark the stale one so that a replacement is visible: an extra chain on a device of its own.
  await lab.exec(h.ns, 'ip', ['link', 'add', 'stl0', 'type', 'veth', 'peer', 'name', 'stl1']);
  await lab.exec(h.ns, 'nft', ['add', 'chain', 'netdev', NFT_POLICY_TABLE, 'stale', '{ type filter hook ingress device "stl0" priority -500; policy accept; }']);
  assert.ok(((await table(lab, h)) ?? '').includes('chain stale'));
  agent = await startEndpointAgent(lab, h, cfg);
  await lab.waitFor('stale chain gone, current table in place', async () => {
    const tb = (await table(lab, h)) ?? '';
    return !tb.includes('chain stale') && tb.includes(a.mac) && tb.includes(b.mac);
  }, { timeoutMs: 20_000, intervalMs: 200 });

  // 3. Crash again, then start without any policy (the state file removed meanwhile): the table goes.
  await lab.stop(agent.proc, { signal: 'SIGKILL' });
  assert.ok((await table(lab, h)) !== null);
  fs.rmSync(path.join(stateDirOf(lab, h), 'policies.json'), { force: true });
  agent = await startEndpointAgent(lab, h, cfg);
  await lab.waitFor('stale table removed', async () => (await table(lab, h)) === null, { timeoutMs: 20_000, intervalMs: 200 });
  const st = (await agent.status()).extensions as { policy: { sameHostRules: { error: string | null } } };
  assert.equal(st.policy.sameHostRules.error, null);
  await agent.stop();
});
