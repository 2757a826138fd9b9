/**
 * Issue 16 item 4: the reachability matrix. Three hosts with gossip; every agent probes the others
 * through the VXLAN port and spreads its row in its gossip record. Cutting h3's underlay link (its
 * switch port down) splits the cluster: h1's matrix shows h3 DOWN from h1 and from h2 (h2's row,
 * by gossip), vxmesh_partitions goes 1 → 2 on h1 and h2, and on h3; `vxmesh status --matrix`
 * prints it (exit 3). Healing the link brings every row back up and the gauge back to 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { labFor, netnsSkip, startAgents } from '../helpers/lab';
import { REPO_ROOT, type Lab, type LabHost } from '../../lab/netns';
import { httpGetJson, type LabAgent } from '../../lab/vxmesh';

const skip = netnsSkip();

interface Reach { node: string; partitions: number; components: string[][]; hosts: string[]; rows: { from: string; fresh: boolean; peers: { peer: string; up: boolean }[] }[] }

const reach = async (lab: Lab, a: LabAgent) => (await httpGetJson(lab, a.host.ns, `${a.apiUrl}/v1/reachability`)) as Reach;

async function partitionsGauge(lab: Lab, a: LabAgent): Promise<number> {
  const script = 'fetch(process.argv[1],{signal:AbortSignal.timeout(5000)}).then(r=>r.text()).then(t=>process.stdout.write(t))';
  const m = (await lab.exec(a.host.ns, process.execPath, ['-e', script, `${a.apiUrl}/metrics`], { timeoutMs: 15_000 })).stdout;
  const v = /^vxmesh_partitions (\S+)$/m.exec(m);
  return v ? Number(v[1]) : NaN;
}

async function matrixText(lab: Lab, h: LabHost): Promise<{ code: number; text: string }> {
  const r = await lab.exec(h.ns, process.execPath, [path.join(REPO_ROOT, 'bin', 'vxmesh'), 'status', '--matrix', '--api', '127.0.0.1:9469'], { check: false, timeoutMs: 20_000 });
  return { code: r.code ?? -1, text: r.stdout + r.stderr };
}

test('reachability: cut one underlay link, see the matrix and vxmesh_partitions change; heal it, see them recover', { skip, timeout: 300_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 3 });
  for (const h of lab.hosts) await lab.addBridge(h, 'br0');
  const key = await lab.exec(null, process.execPath, [path.join(REPO_ROOT, 'bin', 'vxmesh'), 'keygen', 'cluster']);
  const keyFile = lab.writeFile('cluster.key', key.stdout);
  const [h1, h2, h3] = lab.hosts;
  const gossip = { gossip: { port: 7946, seeds: [h1.address], keyFile, profile: 'test' } };
  const nets = [{ name: 'blue', vni: 42, bridge: 'br0' }];
  const agents = [
    ...(await startAgents(lab, nets, { peers: [], extra: gossip }, [h1])),
    ...(await startAgents(lab, nets, { peers: [], extra: gossip }, [h2, h3])),
  ];
  const [a1, a2, a3] = agents;
  const full = async (a: LabAgent) => {
    const r = await reach(lab, a);
    return r.partitions === 1 && r.rows.length === 3 && r.rows.every((row) => row.fresh && row.peers.length === 2 && row.peers.every((p) => p.up));
  };
  await lab.waitFor('every host sees the full matrix', async () => (await full(a1)) && (await full(a2)) && (await full(a3)), { timeoutMs: 90_000, intervalMs: 1000 });
  assert.equal(await partitionsGauge(lab, a1), 1);
  const healthy = await matrixText(lab, h1);
  assert.equal(healthy.code, 0, healthy.text);
  t.diagnostic(`healthy matrix on h1:\n${healthy.text}`);

  // cut h3's underlay link
  const t0 = Date.now();
  await lab.ip(lab.switchNs, 'link', 'set', `p${h3.index}`, 'down');
  await lab.waitFor('h1 and h2 see 2 partitions', async () => (await partitionsGauge(lab, a1)) === 2 && (await partitionsGauge(lab, a2)) === 2, { timeoutMs: 60_000, intervalMs: 500 });
  const tSplit = (Date.now() - t0) / 1000;
  const r1 = await reach(lab, a1);
  assert.deepEqual(r1.components, [[h1.name, h2.name], [h3.name]]);
  const row = (r: Reach, from: string) => new Map(r.rows.find((x) => x.from === from)?.peers.map((p) => [p.peer, p.up]) ?? []);
  assert.equal(row(r1, h1.name).get(h3.name), false, 'h1 → h3 down');
  assert.equal(row(r1, h1.name).get(h2.name), true, 'h1 → h2 up');
  await lab.waitFor('h2 row (by gossip) says h3 down on h1', async () => row(await reach(lab, a1), h2.name).get(h3.name) === false, { timeoutMs: 30_000, intervalMs: 500 });
  await lab.waitFor('h3 sees itself cut off', async () => (await partitionsGauge(lab, a3)) === 2, { timeoutMs: 60_000, intervalMs: 500 });
  const split = await matrixText(lab, h1);
  assert.equal(split.code, 3, split.text);
  assert.match(split.text, /partitions: 2 — SPLIT/);
  t.diagnostic(`partitioned matrix on h1 (${tSplit.toFixed(1)} s after the cut):\n${split.text}`);
  t.diagnostic(`partitioned matrix on h3:\n${(await matrixText(lab, h3)).text}`);

  // heal
  const t1 = Date.now();
  await lab.ip(lab.switchNs, 'link', 'set', `p${h3.index}`, 'up');
  await lab.waitFor('every host sees the full matrix again', async () => (await full(a1)) && (await full(a2)) && (await full(a3)), { timeoutMs: 120_000, intervalMs: 1000 });
  const tHeal = (Date.now() - t1) / 1000;
  for (const a of agents) assert.equal(await partitionsGauge(lab, a), 1);
  t.diagnostic(`timeline: split seen on h1 and h2 ${tSplit.toFixed(1)} s after the cut; full matrix on all 3 hosts ${tHeal.toFixed(1)} s after the heal`);
  const healed = await matrixText(lab, h1);
  assert.equal(healed.code, 0, healed.text);
});
