/**
 * Dual stack: a network with an IPv4 and an IPv6 subnet (gossip IPAM, hostBlock /26 and /112);
 * an endpoint attached on each of two hosts gets one address of each family, with the gateway's
 * default route per family, and they reach each other over IPv4 and IPv6.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateClusterKey } from '../../src/gossip/keyring';
import type { LabAgent } from '../../lab/vxmesh';
import { labFor, netnsSkip } from '../helpers/lab';
import { addEmptyNamespace, attachOk, endpointAgentConfig, startEndpointAgent } from '../helpers/endpoints';

const NET = { name: 'blue', vni: 42, bridge: 'br0', subnet: ['198.19.0.0/16', '2001:2:0:1::/64'], gateway: ['198.19.0.1', '2001:2:0:1::1'] };

test('dual stack: one address per family, default routes per family, IPv4 and IPv6 reach across hosts', { skip: netnsSkip(), timeout: 180_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const keyFile = lab.writeFile('cluster.key', `${await generateClusterKey()}\n`);
  const agents: LabAgent[] = [];
  for (const h of lab.hosts) agents.push(await startEndpointAgent(lab, h, endpointAgentConfig(lab, h, [NET], { keyFile })));
  await lab.waitFor('gossip converged', async () => ((await agents[0].status()).extensions as { gossip: { liveMembers: number } }).gossip.liveMembers === 2, { timeoutMs: 20_000, intervalMs: 200 });
  const a = await addEmptyNamespace(lab, 'a');
  const b = await addEmptyNamespace(lab, 'b');
  const ea = await attachOk(lab, lab.hosts[0], ['--network', 'blue', '--netns', a]);
  const eb = await attachOk(lab, lab.hosts[1], ['--network', 'blue', '--netns', b]);
  for (const e of [ea, eb]) {
    assert.equal(e.ips.length, 2);
    assert.match(e.ips[0], /^198\.19\.\d+\.\d+\/16$/);
    assert.match(e.ips[1], /^2001:2:0:1::[0-9a-f:]+\/64$/);
  }
  const routes6 = (await lab.exec(a, 'ip', ['-6', 'route', 'show', 'default'])).stdout;
  assert.match(routes6, /default via 2001:2:0:1::1 dev eth0/);
  const routes4 = (await lab.exec(a, 'ip', ['-4', 'route', 'show', 'default'])).stdout;
  assert.match(routes4, /default via 198\.19\.0\.1 dev eth0/);
  const v4 = eb.ips[0].split('/')[0];
  const v6 = eb.ips[1].split('/')[0];
  await lab.waitFor('IPv4 across hosts', async () => (await lab.ping(a, v4, { count: 1, waitS: 1 })).received > 0, { timeoutMs: 15_000, intervalMs: 300 });
  await lab.waitFor('IPv6 across hosts', async () => (await lab.ping(a, v6, { count: 1, waitS: 1 })).received > 0, { timeoutMs: 15_000, intervalMs: 300 });
});
