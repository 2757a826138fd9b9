/**
 * Attach/detach end to end on real kernels: two hosts with gossip IPAM (`subnet` 198.19.0.0/16,
 * `hostBlock` /26), two endpoints per host attached with `vxmesh attach` over each agent's
 * control socket: addresses unique, every endpoint pings every other (ARP answered from gossip
 * before any frame crossed), `vxmesh endpoints` lists all four with their hosts; after restarting
 * every agent the addresses are unchanged and the mesh still pings; `vxmesh detach` removes the
 * veth pair and releases the address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateClusterKey } from '../../src/gossip/keyring';
import { httpGetJson, type LabAgent } from '../../lab/vxmesh';
import { labFor, netnsSkip } from '../helpers/lab';
import { addEmptyNamespace, attachOk, endpointAgentConfig, links, startEndpointAgent, vx, type AttachedJson } from '../helpers/endpoints';

const NET = { name: 'blue', vni: 42, bridge: 'br0', subnet: '198.19.0.0/16', hostBlock: '/26' };

test('2 hosts × 2 endpoints through gossip IPAM: unique, ping mesh, listed, unchanged after restarts, detach cleans up', { skip: netnsSkip(), timeout: 300_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const keyFile = lab.writeFile('cluster.key', `${await generateClusterKey()}\n`);
  const cfg = lab.hosts.map((h) => endpointAgentConfig(lab, h, [NET], { keyFile }));
  let agents: LabAgent[] = [];
  for (const [i, h] of lab.hosts.entries()) agents.push(await startEndpointAgent(lab, h, cfg[i]));
  await lab.waitFor('gossip converged', async () => {
    const s = await agents[0].status();
    return (s.extensions as { gossip: { liveMembers: number } }).gossip.liveMembers === 2;
  }, { timeoutMs: 20_000, intervalMs: 200 });

  const eps: (AttachedJson & { ns: string })[] = [];
  for (const h of lab.hosts) {
    for (let j = 1; j <= 2; j++) {
      const ns = await addEmptyNamespace(lab, `h${h.index}e${j}`);
      const e = await attachOk(lab, h, ['--network', 'blue', '--netns', ns, '--label', `app=web${j}`]);
      eps.push({ ...e, ns });
    }
  }
  // announced through gossip: h1's data path has h2's endpoint MACs as static (gossip) FDB entries
  // (with their addresses for ARP/ND suppression: unit gossip-sections) before any frame left them
  await lab.waitFor('h1 knows h2\'s endpoints from gossip before their first frame', async () => {
    const v = (await httpGetJson(lab, lab.hosts[0].ns, `${agents[0].apiUrl}/v1/fdb`)) as { networks: { entries: { mac: string; kind: string; ips: string[] }[] }[] };
    const entries = v.networks.flatMap((n) => n.entries);
    return eps.filter((e) => e.host === 'h2').every((e) => entries.some((x) => x.mac === e.mac && x.kind === 'static'));
  }, { timeoutMs: 10_000, intervalMs: 200 });
  const ips = eps.map((e) => e.ips[0].split('/')[0]);
  assert.equal(new Set(ips).size, 4, `unique addresses: ${ips}`);
  for (const e of eps) assert.match(e.ips[0], /^198\.19\.\d+\.\d+\/16$/);
  for (const e of eps) {
    const mtu = JSON.parse((await lab.exec(e.ns, 'ip', ['-j', 'link', 'show', 'eth0'])).stdout)[0].mtu;
    assert.equal(mtu, 1450, 'network MTU');
  }

  const mesh = async (what: string) => {
    for (const a of eps) {
      for (const b of eps) {
        if (a === b) continue;
        const to = b.ips[0].split('/')[0];
        const r = await lab.ping(a.ns, to, { count: 2, intervalS: 0.2, waitS: 2 });
        assert.ok(r.received >= 1, `${what}: ${a.name}@${a.host} → ${b.name}@${b.host} (${to}): ${r.output}`);
      }
    }
  };
  await mesh('after attach');

  const listed = await vx(lab, lab.hosts[0], ['endpoints', '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const all = (listed.json as { endpoints: { host: string; ips: string[]; labels: Record<string, string>; name: string }[] }).endpoints;
  assert.deepEqual(all.map((e) => e.ips[0]).sort(), [...ips].sort());
  assert.deepEqual([...new Set(all.map((e) => e.host))].sort(), ['h1', 'h2']);
  assert.ok(all.every((e) => /^web[12]$/.test(e.labels.app)));
  const table = await vx(lab, lab.hosts[1], ['endpoints']);
  assert.match(table.stdout, /HOST\s+NETWORK\s+NAME/);

  // restart every agent: same addresses, still reachable
  for (const a of agents) await a.stop();
  agents = [];
  for (const [i, h] of lab.hosts.entries()) agents.push(await startEndpointAgent(lab, h, cfg[i]));
  await lab.waitFor('gossip converged again and endpoints re-announced', async () => {
    const r = await vx(lab, lab.hosts[0], ['endpoints', '--json']);
    return r.code === 0 && (r.json as { endpoints: unknown[] }).endpoints.length === 4;
  }, { timeoutMs: 30_000, intervalMs: 300 });
  const again = ((await vx(lab, lab.hosts[1], ['endpoints', '--json'])).json as { endpoints: { ips: string[] }[] }).endpoints;
  assert.deepEqual(again.map((e) => e.ips[0]).sort(), [...ips].sort(), 'addresses unchanged after restarting every agent');
  for (const e of eps) {
    const addr = JSON.parse((await lab.exec(e.ns, 'ip', ['-j', 'addr', 'show', 'eth0'])).stdout)[0].addr_info.filter((x: { family: string }) => x.family === 'inet').map((x: { local: string; prefixlen: number }) => `${x.local}/${x.prefixlen}`);
    assert.deepEqual(addr, e.ips);
  }
  await mesh('after restarting every agent');

  // detach: veth pair gone, address released (the next attach may take it again)
  const gone = eps[0];
  const hostLinksBefore = await links(lab, lab.hosts[0].ns);
  const d = await vx(lab, lab.hosts[0], ['detach', '--network', 'blue', '--netns', gone.ns, '--json']);
  assert.equal(d.code, 0, d.stderr);
  assert.ok(!(await links(lab, gone.ns)).includes('eth0'));
  const hostLinksAfter = await links(lab, lab.hosts[0].ns);
  assert.equal(hostLinksAfter.length, hostLinksBefore.length - 1, 'host end removed');
  const ipamSt = (await agents[0].status()).extensions as { endpoints: { ipam: { networks: { allocated: number }[] } } };
  assert.equal(ipamSt.endpoints.ipam.networks[0].allocated, 1);
  const d2 = await vx(lab, lab.hosts[0], ['detach', '--network', 'blue', '--netns', gone.ns]);
  assert.equal(d2.code, 2, 'detaching twice: no such endpoint');
  assert.match(d2.stderr, /no endpoint of network blue/);
  const re = await attachOk(lab, lab.hosts[0], ['--network', 'blue', '--netns', gone.ns]);
  assert.equal(re.ips[0], gone.ips[0], 'the released address is handed out again');
});
