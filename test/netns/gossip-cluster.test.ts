/**
 * Gossip on real kernels: `bin/vxmesh agent` in five network-namespace hosts that know only one
 * seed and have no static peers. They converge; every container reaches every other; an agent
 * killed with SIGKILL is shown dead by the others within 30 s and its FDB entries disappear;
 * restarted, it rejoins and is reachable again; stopped with SIGTERM, it shows as `left`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { generateClusterKey } from '../../src/gossip/keyring';
import type { Lab, LabHost } from '../../lab/netns';
import { agentConfig, httpGetJson, startAgent, type LabAgent } from '../../lab/vxmesh';
import { assertReaches, buildTopology, labFor, netnsSkip, pairs } from '../helpers/lab';

const VNI = 42;

interface Member { name: string; state: string; underlay: string }
interface FdbView { networks: { vni: number; entries: { mac: string; kind: string; peer: string | null }[] }[] }

async function members(lab: Lab, a: LabAgent): Promise<Member[]> {
  return ((await httpGetJson(lab, a.host.ns, `${a.apiUrl}/v1/members`)) as { members: Member[] }).members;
}

async function fdb(lab: Lab, a: LabAgent): Promise<FdbView> {
  return (await httpGetJson(lab, a.host.ns, `${a.apiUrl}/v1/fdb`)) as FdbView;
}

async function stateIn(lab: Lab, a: LabAgent, name: string): Promise<string | undefined> {
  return (await members(lab, a)).find((m) => m.name === name)?.state;
}

test('five hosts from one seed: converge, full reachability, crash → dead + FDB dropped, restart → rejoin, SIGTERM → left', { skip: netnsSkip(), timeout: 480_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 5 });
  const topo = await buildTopology(lab, { perHost: 1 });
  const keyFile = lab.writeFile('cluster.key', `${await generateClusterKey()}\n`);
  const config = (h: LabHost): Record<string, unknown> => {
    const c = agentConfig(lab, h, {
      networks: [{ name: 'ov', vni: VNI, bridge: 'br0' }],
      extra: { gossip: { seeds: [lab.hosts[0].address], keyFile, profile: 'test' } },
    });
    delete c.peers; // no static peers anywhere
    return c;
  };
  const agents: LabAgent[] = [];
  for (const h of lab.hosts) agents.push(await startAgent(lab, h, config(h)));

  await lab.waitFor('all five agents see five alive members', async () => {
    for (const a of agents) {
      const ms = await members(lab, a);
      if (ms.filter((m) => m.state === 'alive').length !== 5) return false;
    }
    return true;
  }, { timeoutMs: 30_000, intervalMs: 250 });

  // Every container pair, both directions (first contact may need ARP flooding to the VNI's hosts).
  const all = topo.all;
  await lab.waitFor('first container pair reaches', async () => (await lab.ping(all[0], all[4].address, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 20_000, intervalMs: 200 });
  for (const [a, b] of pairs(all)) {
    await assertReaches(t, lab, a, b);
    await assertReaches(t, lab, b, a);
  }

  // ARP for a container known through gossip is answered on the host, not flooded (counted).
  const answered = async (): Promise<number> => {
    const st = await agents[0].status();
    const g = (st.extensions as Record<string, { neighAnswered: { count: number }[] }>).gossip;
    return g.neighAnswered.reduce((n, x) => n + x.count, 0);
  };
  const before = await answered();
  await lab.exec(all[0].ns, 'ip', ['neigh', 'flush', 'all']);
  await assertReaches(t, lab, all[0], all[2]);
  assert.ok((await answered()) > before, 'h1 answered the ARP request for h3c1 locally');

  // Host 5's container MAC is now announced by gossip and programmed as a static entry elsewhere.
  const victim = agents[4];
  const victimUnderlay = `${lab.hosts[4].address}:4789`;
  const c5 = all[4];
  await lab.waitFor('h1 has a gossip (static) FDB entry for h5c1', async () => {
    const v = await fdb(lab, agents[0]);
    return v.networks.some((n) => n.entries.some((e) => e.mac === c5.mac && e.kind === 'static' && e.peer === victimUnderlay));
  }, { timeoutMs: 20_000, intervalMs: 250 });

  // kill -9: dead everywhere within 30 s, entries behind it dropped.
  await lab.stop(victim.proc, { signal: 'SIGKILL', timeoutMs: 5000 });
  const killedAt = Date.now();
  await lab.waitFor('the others show h5 dead', async () => {
    for (const a of agents.slice(0, 4)) if ((await stateIn(lab, a, lab.hosts[4].name)) !== 'dead') return false;
    return true;
  }, { timeoutMs: 30_000, intervalMs: 250 });
  assert.ok(Date.now() - killedAt <= 30_000);
  for (const a of agents.slice(0, 4)) {
    const v = await fdb(lab, a);
    const behind = v.networks.flatMap((n) => n.entries).filter((e) => e.peer === victimUnderlay);
    assert.deepEqual(behind, [], `${a.host.name} still has entries behind h5`);
  }

  // Restart: rejoins, reachable again.
  agents[4] = await startAgent(lab, lab.hosts[4], config(lab.hosts[4]));
  await lab.waitFor('h5 alive again everywhere', async () => {
    for (const a of agents.slice(0, 4)) if ((await stateIn(lab, a, lab.hosts[4].name)) !== 'alive') return false;
    return (await members(lab, agents[4])).filter((m) => m.state === 'alive').length === 5;
  }, { timeoutMs: 30_000, intervalMs: 250 });
  await lab.waitFor('h1c1 reaches h5c1 after the restart', async () => (await lab.ping(all[0], c5.address, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 20_000, intervalMs: 200 });
  await assertReaches(t, lab, all[4], all[1]);

  // SIGTERM: a graceful leave, shown as left (not dead).
  const r = await agents[3].stop();
  assert.equal(r.code, 0, 'agent exits 0 on SIGTERM');
  await lab.waitFor('the others show h4 left', async () => {
    for (const a of [agents[0], agents[1], agents[2], agents[4]]) if ((await stateIn(lab, a, lab.hosts[3].name)) !== 'left') return false;
    return true;
  }, { timeoutMs: 15_000, intervalMs: 250 });
});
