/**
 * Table drift on real kernels (src/gossip/extension.ts, src/observe/reconcile.ts): two netns hosts
 * with gossip, one container each. h1's gossip (static) FDB entry for h2's container is lost the
 * way it happens in the field: the container's MAC shows up for a moment on a port of h1's bridge
 * (a cloned container, a MAC moved and back). h1 learns it as local, which replaces the gossip
 * entry. Once that local entry ages out, gossip programs its entry again by itself (the MAC left
 * the bridge: reassertLeft), pointing at h2 — before, nothing did until the next reconciliation
 * (≤ 30 s) counted it missing and repaired it, and a MAC flap fired VxmeshTablesDrifted. The
 * reconciliation runs on both hosts and finds nothing on h2 (on h1 at most that one entry, if a run
 * fell in the second between the age-out and gossip's repair). Its repairs of real table entries
 * are checked in test/unit/observe-reconcile.test.ts (the real Datapath, corrupted by hand): no
 * drift from outside the agent is left to create here. Containers keep reaching each other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { generateClusterKey } from '../../src/gossip/keyring';
import type { Lab, LabHost } from '../../lab/netns';
import { agentConfig, httpGetJson, startAgent, type LabAgent } from '../../lab/vxmesh';
import { buildTopology, labFor, netnsSkip } from '../helpers/lab';

const VNI = 42;

interface FdbView { networks: { vni: number; entries: { mac: string; kind: string; peer: string | null }[] }[] }
interface Rec { runs: number; last: Record<'fdb' | 'neigh', Record<string, number>>; mismatches: Record<'fdb' | 'neigh', Record<string, number>> }

async function fdbEntry(lab: Lab, a: LabAgent, mac: string): Promise<{ kind: string; peer: string | null } | undefined> {
  const v = (await httpGetJson(lab, a.host.ns, `${a.apiUrl}/v1/fdb`)) as FdbView;
  return v.networks.find((n) => n.vni === VNI)?.entries.find((e) => e.mac === mac);
}

async function reconcile(a: LabAgent): Promise<Rec> {
  const st = await a.status();
  return (st.extensions as { observe: { reconcile: Rec } }).observe.reconcile;
}

async function metricsText(lab: Lab, a: LabAgent): Promise<string> {
  const script = 'fetch(process.argv[1]).then(r=>r.text()).then(t=>process.stdout.write(t))';
  return (await lab.exec(a.host.ns, process.execPath, ['-e', script, `${a.apiUrl}/metrics`], { timeoutMs: 15_000 })).stdout;
}

test('a gossip FDB entry lost to a MAC seen locally for a moment is put back by gossip once the local entry ages out; the reconciliation runs and finds no drift', { skip: netnsSkip(), timeout: 240_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const topo = await buildTopology(lab, { perHost: 1 });
  const keyFile = lab.writeFile('cluster.key', `${await generateClusterKey()}\n`);
  const config = (h: LabHost): Record<string, unknown> => {
    const c = agentConfig(lab, h, {
      networks: [{ name: 'ov', vni: VNI, bridge: 'br0' }],
      extra: { gossip: { seeds: [lab.hosts[0].address], keyFile, profile: 'test' }, fdb: { ageingSeconds: 3 } },
    });
    delete c.peers;
    return c;
  };
  const a1 = await startAgent(lab, lab.hosts[0], config(lab.hosts[0]));
  const a2 = await startAgent(lab, lab.hosts[1], config(lab.hosts[1]));
  const [c1, c2] = topo.all;
  const h2Underlay = `${lab.hosts[1].address}:4789`;
  // Both containers talk all along (their MACs stay learned with 3 s ageing).
  const pinger = lab.spawn(c2.ns, 'ping', ['-i', '0.2', '-W', '1', c1.address], { name: 'ping c2→c1' });
  await lab.waitFor('h1 has the gossip (static) entry for c2, pointing at h2', async () => {
    const e = await fdbEntry(lab, a1, c2.mac);
    return e?.kind === 'static' && e.peer === h2Underlay;
  }, { timeoutMs: 30_000, intervalMs: 250 });
  const before = await reconcile(a1);
  assert.equal(before.mismatches.fdb.missing + before.mismatches.fdb.wrong_host + before.mismatches.fdb.stale, 0, 'nothing to repair in a converged cluster');

  // c2's MAC on a port of h1's bridge for a moment (one ARP request), then the port is gone.
  const ns = lab.hosts[0].ns;
  await lab.exec(ns, 'ip', ['link', 'add', 'vxdup0', 'type', 'veth', 'peer', 'name', 'vxdup1']);
  await lab.exec(ns, 'ip', ['link', 'set', 'vxdup0', 'master', 'br0', 'up']);
  await lab.exec(ns, 'ip', ['link', 'set', 'vxdup1', 'address', c2.mac, 'up']);
  await lab.exec(ns, 'ip', ['addr', 'add', '198.19.0.250/32', 'dev', 'vxdup1']);
  await lab.waitFor('h1 learned c2\'s MAC as local (the gossip entry is gone)', async () => {
    await lab.exec(ns, 'ping', ['-c', '1', '-W', '1', '-I', 'vxdup1', '198.19.0.251'], { check: false });
    return (await fdbEntry(lab, a1, c2.mac))?.kind === 'local';
  }, { timeoutMs: 15_000, intervalMs: 200 });
  await lab.exec(ns, 'ip', ['link', 'del', 'vxdup0']);
  const corruptedAt = Date.now();
  await lab.waitFor('the local entry aged out: h1 has no gossip entry for c2 any more', async () => (await fdbEntry(lab, a1, c2.mac))?.kind !== 'local', { timeoutMs: 15_000, intervalMs: 250 });
  await lab.waitFor('gossip programmed its entry for c2 again by itself (pointing at h2)', async () => {
    const e = await fdbEntry(lab, a1, c2.mac);
    return e?.kind === 'static' && e.peer === h2Underlay;
  }, { timeoutMs: 15_000, intervalMs: 250 });
  t.diagnostic(`gossip's entry back ${((Date.now() - corruptedAt) / 1000).toFixed(1)} s after the port went (FDB ageing 3 s)`);

  // The reconciliation (every 30 s) runs on both hosts after that and has nothing to repair.
  const runs = (await reconcile(a1)).runs;
  let rec: Rec | null = null;
  await lab.waitFor('a reconciliation ran on h1 after gossip\'s repair', async () => {
    rec = await reconcile(a1);
    return rec.runs > runs;
  }, { timeoutMs: 45_000, intervalMs: 500 });
  t.diagnostic(`h1 reconcile: ${JSON.stringify(rec)}`);
  const r1 = rec as unknown as Rec;
  const fdbFound = r1.mismatches.fdb.missing + r1.mismatches.fdb.wrong_host + r1.mismatches.fdb.stale;
  assert.ok(fdbFound <= 1, `at most the one entry, had a run fallen between the age-out and gossip's repair: ${JSON.stringify(r1.mismatches)}`);
  assert.equal(r1.last.fdb.missing + r1.last.fdb.wrong_host + r1.last.fdb.stale, 0, 'the last run found the tables as gossip says');
  const e = await fdbEntry(lab, a1, c2.mac);
  assert.deepEqual(e && { kind: e.kind, peer: e.peer }, { kind: 'static', peer: h2Underlay }, 'still programmed from gossip');
  const text = await metricsText(lab, a1);
  assert.match(text, /vxmesh_reconcile_runs_total [1-9]/, 'runs counted in /metrics');
  assert.match(text, /vxmesh_reconcile_mismatches_total\{table="fdb",kind="missing"\} [01]\b/, 'mismatches rendered in /metrics');
  assert.equal((await reconcile(a2)).mismatches.fdb.missing, 0, 'h2 had nothing to repair');
  await lab.stop(pinger, { timeoutMs: 3000 });
  const r = await lab.ping(c1, c2.address, { count: 3, waitS: 1 });
  assert.ok(r.received >= 1, 'c1 reaches c2 after the repair');
  // Convergence telemetry on real clocks: each host learned the other's container through gossip.
  for (const a of [a1, a2]) {
    const conv = ((await a.status()).extensions as { observe: { convergence: { networks: { network: string; count: number; meanSeconds: number | null }[]; negative: number } } }).observe.convergence;
    t.diagnostic(`${a.host.name} convergence: ${JSON.stringify(conv)}`);
    assert.equal(conv.negative, 0, 'one machine, one clock: never negative');
  }
  const hist = /vxmesh_endpoint_convergence_seconds_count\{network="ov"\} (\d+)/.exec(await metricsText(lab, a2));
  assert.ok(hist && Number(hist[1]) >= 1, 'h2 observed the convergence of h1\'s container');
  // By every host, on the origin: the other host acknowledged its container (record section 'ack').
  for (const a of [a1, a2]) {
    let line = '';
    await lab.waitFor(`${a.host.name} observed the convergence of its container by every host`, async () => {
      const m2 = /vxmesh_endpoint_convergence_all_seconds_(sum|count)\{network="ov"\} \S+/g;
      const lines = (await metricsText(lab, a)).match(m2) ?? [];
      line = lines.join(' ');
      return lines.some((l) => /_count\{network="ov"\} [1-9]/.test(l));
    }, { timeoutMs: 20_000, intervalMs: 500 });
    const conv = ((await a.status()).extensions as { observe: { convergence: { allHosts: unknown; incomplete: number } } }).observe.convergence;
    t.diagnostic(`${a.host.name} convergence by every host: ${line}; status allHosts ${JSON.stringify(conv.allHosts)}, incomplete ${conv.incomplete}`);
  }
});
