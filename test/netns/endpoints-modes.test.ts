/**
 * The network modes on real kernels, two hosts with gossip IPAM:
 *   mode bridge  — one host, no VXLAN: the agent creates the bridge, endpoints on it reach each
 *                  other, the network never reaches the data path (no TAP); `hostEndpoint: true`
 *                  gives the host an address there, and the host reaches its containers;
 *   mode macvlan — endpoints are macvlans of the underlay interface (parent ul0) with their own
 *                  MAC on the LAN: containers on two hosts reach each other without the overlay;
 *   overlay + `vxmesh attach --host` — the host itself gets an overlay address and reaches a
 *                  container on the other host; `vxmesh detach --host` removes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateClusterKey } from '../../src/gossip/keyring';
import type { LabAgent } from '../../lab/vxmesh';
import { labFor, netnsSkip } from '../helpers/lab';
import { addEmptyNamespace, attachOk, endpointAgentConfig, links, startEndpointAgent, vx } from '../helpers/endpoints';

test('modes: bridge (+ hostEndpoint), macvlan on the underlay, overlay host endpoint', { skip: netnsSkip(), timeout: 300_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const keyFile = lab.writeFile('cluster.key', `${await generateClusterKey()}\n`);
  const agents: LabAgent[] = [];
  for (const h of lab.hosts) {
    const nets = [
      { name: 'blue', vni: 42, bridge: 'br0', subnet: '198.19.0.0/16', hostBlock: '/26' },
      { name: 'lan', mode: 'macvlan', parent: 'ul0', subnet: '198.18.1.0/24', hostBlock: '/28' },
      ...(h.index === 1 ? [{ name: 'local', mode: 'bridge', bridge: 'brl', subnet: '198.19.200.0/24', hostEndpoint: true }] : []),
    ];
    agents.push(await startEndpointAgent(lab, h, endpointAgentConfig(lab, h, nets, { keyFile })));
  }
  await lab.waitFor('gossip converged', async () => ((await agents[0].status()).extensions as { gossip: { liveMembers: number } }).gossip.liveMembers === 2, { timeoutMs: 20_000, intervalMs: 200 });
  const [h1, h2] = lab.hosts;
  const ipOf = (e: { ips: string[] }) => e.ips[0].split('/')[0];

  // --- mode bridge ---
  const st = await agents[0].status();
  assert.deepEqual(st.networks.map((n) => n.name), ['blue'], 'bridge/macvlan networks never reach the data path');
  assert.ok((await links(lab, h1.ns)).includes('brl'), 'bridge created');
  assert.ok(!(await links(lab, h1.ns)).some((l) => l === 'vx-local'), 'no TAP');
  const l1 = await addEmptyNamespace(lab, 'l1');
  const l2 = await addEmptyNamespace(lab, 'l2');
  const el1 = await attachOk(lab, h1, ['--network', 'local', '--netns', l1]);
  const el2 = await attachOk(lab, h1, ['--network', 'local', '--netns', l2]);
  assert.ok((await lab.ping(l1, ipOf(el2), { count: 2 })).received > 0, 'bridge-mode endpoints reach each other');
  // hostEndpoint: the host has an address on brl's network and reaches its containers
  const hostAddrs = JSON.parse((await lab.exec(h1.ns, 'ip', ['-j', '-4', 'addr', 'show'])).stdout) as { ifname: string; addr_info: { local: string }[] }[];
  const hostLocal = hostAddrs.flatMap((i) => i.addr_info.map((a) => a.local)).filter((a) => a.startsWith('198.19.200.'));
  assert.equal(hostLocal.length, 1, `host endpoint address on local: ${JSON.stringify(hostAddrs.map((i) => i.ifname))}`);
  assert.ok((await lab.ping(h1.ns, ipOf(el1), { count: 2 })).received > 0, 'the host reaches a bridge-mode container');
  const unknownOnH2 = await vx(lab, h2, ['attach', '--network', 'local', '--netns', l1, '--ifname', 'x1']);
  assert.equal(unknownOnH2.code, 2, 'a bridge network is one host\'s only');

  // --- mode macvlan ---
  const m1 = await addEmptyNamespace(lab, 'm1');
  const m2 = await addEmptyNamespace(lab, 'm2');
  const em1 = await attachOk(lab, h1, ['--network', 'lan', '--netns', m1]);
  const em2 = await attachOk(lab, h2, ['--network', 'lan', '--netns', m2]);
  assert.notEqual(ipOf(em1), ipOf(em2));
  const kind = JSON.parse((await lab.exec(m1, 'ip', ['-j', '-d', 'link', 'show', 'eth0'])).stdout)[0].linkinfo.info_kind;
  assert.equal(kind, 'macvlan');
  const mac = JSON.parse((await lab.exec(m1, 'ip', ['-j', 'link', 'show', 'eth0'])).stdout)[0].address;
  assert.equal(mac, em1.mac, 'its own MAC on the LAN');
  assert.ok((await lab.ping(m1, ipOf(em2), { count: 2, waitS: 2 })).received > 0, 'macvlan endpoints on two hosts reach each other over the LAN');
  const dm = await vx(lab, h1, ['detach', '--network', 'lan', '--netns', m1]);
  assert.equal(dm.code, 0, dm.stderr);
  assert.ok(!(await links(lab, m1)).includes('eth0'), 'macvlan removed');

  // --- overlay host endpoint ---
  const c2 = await addEmptyNamespace(lab, 'c2');
  const ec2 = await attachOk(lab, h2, ['--network', 'blue', '--netns', c2]);
  const he = await attachOk(lab, h1, ['--network', 'blue', '--host']);
  assert.equal(he.ifname, 'vxh-blue');
  assert.ok((await links(lab, h1.ns)).includes('vxh-blue'));
  await lab.waitFor('the host reaches a container on the other host through the overlay', async () => (await lab.ping(h1.ns, ipOf(ec2), { count: 1, waitS: 1 })).received > 0, { timeoutMs: 15_000, intervalMs: 300 });
  const dh = await vx(lab, h1, ['detach', '--network', 'blue', '--host']);
  assert.equal(dh.code, 0, dh.stderr);
  assert.ok(!(await links(lab, h1.ns)).includes('vxh-blue'));
});
