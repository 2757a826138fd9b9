/**
 * Issue 6 with gossip (issue 3) in the lab: /readyz shows "gossip joined" as its own, non-blocking
 * check when seeds are set (a node that is its own seed is joined at once; one whose seed is down is
 * ready, degraded, and joins within seconds of the seed coming up), and the gossip metric families follow the
 * cluster — members by state, probes, messages and bytes, and a killed member seen as suspect/dead
 * with suspicions counted.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { labFor, netnsSkip, startAgents } from '../helpers/lab';
import { REPO_ROOT, type Lab } from '../../lab/netns';
import { parseExposition, sum, value, type Sample } from '../unit/ops-expo';

const skip = netnsSkip();

async function get(lab: Lab, ns: string, url: string): Promise<{ status: number; body: string }> {
  const script = 'fetch(process.argv[1],{signal:AbortSignal.timeout(5000)}).then(async r=>{process.stdout.write(JSON.stringify({status:r.status,body:await r.text()}))}).catch(e=>{process.stderr.write(String(e&&e.cause||e));process.exit(4)})';
  const r = await lab.exec(ns, process.execPath, ['-e', script, url], { timeoutMs: 15_000 });
  return JSON.parse(r.stdout);
}

test('readiness does not wait for the gossip join; gossip families follow members, probes and a failure', { skip, timeout: 240_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 3 });
  for (const h of lab.hosts) await lab.addBridge(h, 'br0');
  const key = await lab.exec(null, process.execPath, [path.join(REPO_ROOT, 'bin', 'vxmesh'), 'keygen', 'cluster']);
  const keyFile = lab.writeFile('cluster.key', key.stdout);
  const [h1, h2, h3] = lab.hosts;
  const gossip = { gossip: { port: 7946, seeds: [h1.address], keyFile, profile: 'test' } };
  const nets = [{ name: 'blue', vni: 42, bridge: 'br0' }];
  const scrape = async (ns: string): Promise<Sample[]> => parseExposition((await get(lab, ns, 'http://127.0.0.1:9469/metrics')).body);

  // h2 first: its seed (h1) is not up. It is ready (the data path forwards; systemd gets READY=1)
  // and says that the gossip join is what is missing, and why.
  const [a2] = await startAgents(lab, nets, { peers: [], extra: gossip }, [h2]);
  let r = await get(lab, h2.ns, 'http://127.0.0.1:9469/readyz');
  assert.equal(r.status, 200, r.body);
  const body = JSON.parse(r.body);
  assert.equal(body.checks.gossipJoined, false);
  assert.deepEqual(body.degraded, ['gossipJoined']);
  assert.equal(body.gossip.state, 'joining');
  assert.ok(body.gossip.failures[`${h1.address}:7946`], r.body);
  assert.equal(value(await scrape(h2.ns), 'vxmesh_ready'), 1);
  assert.equal(value(await scrape(h2.ns), 'vxmesh_gossip_joined'), 0);

  // h1 is its own seed: ready at once; then h2 joins through it.
  const [a1] = await startAgents(lab, nets, { peers: [], extra: gossip }, [h1]);
  r = await get(lab, h1.ns, 'http://127.0.0.1:9469/readyz');
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).checks.gossipJoined, true);
  // h2 retries 1 s, 2 s, 4 s … 10 s: it joins within ~12 s of h1 coming up (was a push-pull period).
  const up = Date.now();
  await lab.waitFor('h2 joined after h1 came up', async () => JSON.parse((await get(lab, h2.ns, 'http://127.0.0.1:9469/readyz')).body).checks.gossipJoined === true, { timeoutMs: 30_000, intervalMs: 500 });
  assert.ok(Date.now() - up < 20_000, `h2 joined ${Date.now() - up} ms after h1 was up`);

  const [a3] = await startAgents(lab, nets, { peers: [], extra: gossip }, [h3]);
  await lab.waitFor('3 alive members on h1', async () => value(await scrape(h1.ns), 'vxmesh_gossip_members', { state: 'alive' }) === 3, { timeoutMs: 60_000, intervalMs: 500 });
  let s = await scrape(h1.ns);
  assert.equal(value(s, 'vxmesh_gossip_joined'), 1);
  assert.equal(value(s, 'vxmesh_ready'), 1);
  assert.ok(value(s, 'vxmesh_gossip_probes_total') > 0);
  assert.ok(value(s, 'vxmesh_gossip_messages_total', { direction: 'in' }) > 0);
  assert.ok(value(s, 'vxmesh_gossip_messages_total', { direction: 'out' }) > 0);
  assert.ok(value(s, 'vxmesh_gossip_bytes_total', { direction: 'out' }) > 0);
  assert.equal(sum(s, 'vxmesh_gossip_rejected_packets_total', { reason: 'bad_key' }), 0);

  // kill -9 h3: h1 suspects it, then declares it dead.
  await lab.stop(a3.proc, { signal: 'SIGKILL' });
  await lab.waitFor('h3 suspect or dead on h1', async () => {
    const x = await scrape(h1.ns);
    return value(x, 'vxmesh_gossip_members', { state: 'suspect' }) + value(x, 'vxmesh_gossip_members', { state: 'dead' }) >= 1;
  }, { timeoutMs: 60_000, intervalMs: 500 });
  s = await scrape(h1.ns);
  assert.equal(value(s, 'vxmesh_gossip_members', { state: 'alive' }), 2);
  assert.ok(value(s, 'vxmesh_gossip_suspicions_total') >= 1 || value(s, 'vxmesh_gossip_probe_failures_total') >= 1);
  await a2.stop();
  await a1.stop();
});
