/**
 * Bad input and anti-spoofing on real kernels (two hosts, gossip IPAM).
 * Bad input: unknown network, missing netns, address outside the subnet, address taken (here and
 * on the other host), interface name already used, an exhausted subnet, the agent down — each a
 * clear message and exit code 2 (bad arguments) or 1, and nothing half-made: the host's links and
 * the IPAM allocations are exactly as before.
 * Anti-spoofing: an endpoint that forges another endpoint's MAC, or its IP, gets nothing through
 * (ping to the other host fails) and the drops are counted (`vxmesh endpoints` SPOOF DROPS);
 * with its own identity back it reaches again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateClusterKey } from '../../src/gossip/keyring';
import type { LabAgent } from '../../lab/vxmesh';
import { haveTool } from '../../lab/netns';
import { labFor, netnsSkip } from '../helpers/lab';
import { addEmptyNamespace, attachOk, endpointAgentConfig, links, startEndpointAgent, vx } from '../helpers/endpoints';

const NETS = [
  { name: 'blue', vni: 42, bridge: 'br0', subnet: '198.19.0.0/16', hostBlock: '/26' },
  { name: 'tiny', vni: 43, bridge: 'br1', subnet: '198.19.255.0/29', hostBlock: '/29' },
];

interface Listed { host: string; name: string; ips: string[]; mac: string; drops?: number; local: boolean }

test('bad input gets clear messages and exit codes and leaves nothing; forged MAC/IP gets nothing through, counted', { skip: netnsSkip() ?? (haveTool('nft') ? undefined : 'nft is not installed'), timeout: 300_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const keyFile = lab.writeFile('cluster.key', `${await generateClusterKey()}\n`);
  const agents: LabAgent[] = [];
  for (const h of lab.hosts) agents.push(await startEndpointAgent(lab, h, endpointAgentConfig(lab, h, NETS, { keyFile })));
  await lab.waitFor('gossip converged', async () => ((await agents[0].status()).extensions as { gossip: { liveMembers: number } }).gossip.liveMembers === 2, { timeoutMs: 20_000, intervalMs: 200 });
  const [h1, h2] = lab.hosts;
  const a = await addEmptyNamespace(lab, 'a');
  const b = await addEmptyNamespace(lab, 'b');
  const c = await addEmptyNamespace(lab, 'c');
  const ea = await attachOk(lab, h1, ['--network', 'blue', '--netns', a, '--name', 'a']);
  const eb = await attachOk(lab, h1, ['--network', 'blue', '--netns', b, '--name', 'b']);
  const ec = await attachOk(lab, h2, ['--network', 'blue', '--netns', c, '--name', 'c']);
  const ipOf = (e: { ips: string[] }) => e.ips[0].split('/')[0];
  await lab.waitFor('h1 knows c through gossip', async () => ((await vx(lab, h1, ['endpoints', '--json'])).json as { endpoints: Listed[] }).endpoints.length === 3, { timeoutMs: 15_000, intervalMs: 200 });

  // --- bad input ---
  const allocated = async () => ((await agents[0].status()).extensions as { endpoints: { ipam: { networks: { name: string; allocated: number }[] } } }).endpoints.ipam.networks.map((n) => `${n.name}:${n.allocated}`).join(',');
  const spare = await addEmptyNamespace(lab, 'spare');
  await lab.exec(spare, 'ip', ['link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p']);
  const linksBefore = (await links(lab, h1.ns)).sort();
  const allocBefore = await allocated();
  const cases: { args: string[]; code: number; msg: RegExp }[] = [
    { args: ['--network', 'red', '--netns', spare], code: 2, msg: /unknown network "red" \(this agent has: blue, tiny\)/ },
    { args: ['--network', 'blue', '--netns', `${lab.prefix}-nosuch`], code: 2, msg: /network namespace .*nosuch.* does not exist/ },
    { args: ['--network', 'blue', '--netns', spare, '--ip', '198.20.0.5'], code: 2, msg: /198\.20\.0\.5 is outside network blue's subnet 198\.19\.0\.0\/16/ },
    { args: ['--network', 'blue', '--netns', spare, '--ip', ipOf(ea)], code: 2, msg: /already taken on network blue \(endpoint a on this host\)/ },
    { args: ['--network', 'blue', '--netns', spare, '--ip', ipOf(ec)], code: 2, msg: /already taken on network blue \(endpoint c on host h2\)/ },
    { args: ['--network', 'blue', '--netns', spare, '--ifname', 'eth1'], code: 2, msg: /interface name eth1 is already used/ },
    { args: ['--network', 'blue', '--netns', spare, '--mac', '01:00:5e:00:00:01'], code: 2, msg: /bad MAC/ },
    { args: ['--network', 'blue'], code: 2, msg: /--netns is required/ },
  ];
  for (const k of cases) {
    const r = await vx(lab, h1, ['attach', ...k.args]);
    assert.equal(r.code, k.code, `${k.args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, k.msg);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.deepEqual((await links(lab, h1.ns)).sort(), linksBefore, 'no stray veth');
  assert.equal(await allocated(), allocBefore, 'no leaked address');
  // exhausted: tiny has 6 usable addresses in its one /29 block
  for (let i = 0; i < 6; i++) await attachOk(lab, h1, ['--network', 'tiny', '--netns', spare, '--ifname', `t${i}`]);
  const linksFull = (await links(lab, h1.ns)).sort();
  const ex = await vx(lab, h1, ['attach', '--network', 'tiny', '--netns', spare, '--ifname', 't6']);
  assert.equal(ex.code, 1, ex.stderr);
  assert.match(ex.stderr, /subnet 198\.19\.255\.0\/29 of network tiny is exhausted/);
  assert.deepEqual((await links(lab, h1.ns)).sort(), linksFull, 'no stray veth after exhaustion');
  assert.ok(!(await links(lab, spare)).includes('t6'));
  // agent down: a socket nobody serves
  const down = await lab.exec(h1.ns, process.execPath, [require.resolve('../../../bin/vxmesh'), 'attach', '--network', 'blue', '--netns', spare, '--socket', `${lab.dir}/nobody.sock`], { check: false });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot reach the agent on .*nobody\.sock \(ENOENT\)/);

  // --- anti-spoofing ---
  const reaches = async (ns: string, to: string, from?: string) => (await lab.ping(ns, to, { count: 2, intervalS: 0.2, waitS: 1, ...(from ? {} : {}) })).received > 0;
  assert.ok(await reaches(a, ipOf(ec)), 'a reaches c with its own identity');
  const dropsOf = async (name: string) => ((await vx(lab, h1, ['endpoints', '--json'])).json as { endpoints: Listed[] }).endpoints.find((e) => e.name === name && e.local)!.drops ?? 0;
  const d0 = await dropsOf('a');
  // forge b's MAC
  await lab.exec(a, 'ip', ['link', 'set', 'eth0', 'address', eb.mac]);
  await lab.exec(a, 'ip', ['neigh', 'flush', 'all']);
  assert.ok(!(await reaches(a, ipOf(ec))), 'nothing gets through with a forged MAC');
  const d1 = await dropsOf('a');
  assert.ok(d1 > d0, `MAC spoof drops counted (${d0} → ${d1})`);
  await lab.exec(a, 'ip', ['link', 'set', 'eth0', 'address', ea.mac]);
  // forge b's IP (own MAC): ping from b's address
  await lab.exec(a, 'ip', ['addr', 'flush', 'dev', 'eth0']);
  await lab.exec(a, 'ip', ['addr', 'add', eb.ips[0], 'dev', 'eth0']);
  await lab.exec(a, 'ip', ['neigh', 'flush', 'all']);
  assert.ok(!(await reaches(a, ipOf(ec))), 'nothing gets through with a forged IP');
  const d2 = await dropsOf('a');
  assert.ok(d2 > d1, `IP spoof drops counted (${d1} → ${d2})`);
  assert.ok(await reaches(b, ipOf(ec)), 'the real b is unaffected');
  await lab.exec(a, 'ip', ['addr', 'flush', 'dev', 'eth0']);
  await lab.exec(a, 'ip', ['addr', 'add', ea.ips[0], 'dev', 'eth0']);
  await lab.waitFor('a reaches c again with its own identity', () => reaches(a, ipOf(ec)), { timeoutMs: 10_000, intervalMs: 500 });
  const table = await vx(lab, h1, ['endpoints']);
  assert.match(table.stdout, /SPOOF DROPS/);
});
