/**
 * Issue 6, a real Prometheus: two lab hosts run vxmesh agents; Debian's `prometheus` runs on
 * loopback inside host 1's namespace (temp config and storage in the lab's scratch dir, our alert
 * rules loaded), scrapes host 1's agent every second, and the test queries `vxmesh_` series through
 * its HTTP API: target up, the traffic the containers exchanged, the per-network identity, the
 * alert rules loaded and healthy. `promtool check metrics` accepts the agent's /metrics.
 * Bounded waits only; Prometheus and the agents are stopped by PID; the lab removes everything.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildTopology, labFor, netnsSkip, startAgents } from '../helpers/lab';
import { toolsSkip } from '../unit/ops-tools';
import { httpGetJson } from '../../lab/vxmesh';
import { REPO_ROOT, type Lab } from '../../lab/netns';

const skip = netnsSkip() ?? toolsSkip('prometheus', 'promtool');
const VNI = 42;
const PROM = '127.0.0.1:9090';

interface PromVector {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

async function query(lab: Lab, ns: string, q: string): Promise<PromVector['data']['result']> {
  const r = (await httpGetJson(lab, ns, `http://${PROM}/api/v1/query?query=${encodeURIComponent(q)}`)) as PromVector;
  assert.equal(r.status, 'success');
  return r.data.result;
}

async function httpGetText(lab: Lab, ns: string, url: string): Promise<string> {
  const script = 'fetch(process.argv[1],{signal:AbortSignal.timeout(5000)}).then(async r=>{const t=await r.text();if(!r.ok){process.stderr.write(r.status+" "+t);process.exit(3)}process.stdout.write(t)}).catch(e=>{process.stderr.write(String(e&&e.cause||e));process.exit(4)})';
  const r = await lab.exec(ns, process.execPath, ['-e', script, url], { check: false, timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`GET ${url}: ${r.stderr}`);
  return r.stdout;
}

test('Prometheus in a lab host scrapes a vxmesh agent; vxmesh_ series queried through its API', { skip, timeout: 180_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const topo = await buildTopology(lab, { perHost: 1 });
  const [a1] = await startAgents(lab, [{ name: 'blue', vni: VNI, bridge: 'br0' }]);
  const h1 = a1.host;
  const [c1] = topo.containers[0];
  const [c2] = topo.containers[1];
  const ping = await lab.ping(c1, c2.address, { count: 5, intervalS: 0.2 });
  assert.equal(ping.received, 5, ping.output);

  // /metrics straight from the agent: valid for promtool, the identity exact in one scrape.
  const text = await httpGetText(lab, h1.ns, `${a1.apiUrl}/metrics`);
  const check = await lab.exec(null, 'promtool', ['check', 'metrics'], { input: text, check: false });
  assert.equal(check.code, 0, check.stdout + check.stderr);
  const sample = (name: string, extra = '') => {
    const m = new RegExp(`^${name}\\{network="blue",vni="42"${extra}\\} (\\S+)$`, 'm').exec(text);
    assert.ok(m, `${name} in /metrics`);
    return Number(m[1]);
  };
  const rx = sample('vxmesh_network_rx_packets_total');
  const delivered = sample('vxmesh_network_rx_delivered_packets_total');
  let drops = 0;
  for (const m of text.matchAll(/^vxmesh_network_rx_dropped_packets_total\{network="blue",vni="42",reason="[a-z_]+"\} (\S+)$/gm)) drops += Number(m[1]);
  assert.ok(delivered >= 5, `${delivered} delivered (5 echo replies at least)`);
  assert.equal(delivered + drops, rx);

  // Prometheus on loopback inside h1's namespace, rules from deploy/ loaded.
  const rules = path.join(lab.dir, 'vxmesh-alerts.yml');
  fs.copyFileSync(path.join(REPO_ROOT, 'deploy', 'prometheus', 'vxmesh-alerts.yml'), rules);
  const storage = path.join(lab.dir, 'prom-data');
  fs.mkdirSync(storage);
  const config = lab.writeFile('prometheus.yml', [
    'global: { scrape_interval: 1s, evaluation_interval: 1s }',
    `rule_files: [${JSON.stringify(rules)}]`,
    'scrape_configs:',
    '  - job_name: vxmesh',
    '    scrape_timeout: 900ms',
    `    static_configs: [{ targets: [${JSON.stringify(a1.apiUrl.replace('http://', ''))}] }]`,
    '',
  ].join('\n'));
  const prom = lab.spawn(h1.ns, 'prometheus', [
    `--config.file=${config}`, `--storage.tsdb.path=${storage}`, `--web.listen-address=${PROM}`,
    '--log.level=warn', '--storage.tsdb.retention.time=1h',
  ], { name: 'prometheus', logFile: path.join(lab.dir, 'prometheus.log') });
  t.after(async () => { await lab.stop(prom, { timeoutMs: 5000 }); });

  await lab.waitFor('the vxmesh target to be up in Prometheus', async () => {
    if (!prom.running()) throw new Error(`prometheus exited:\n${prom.output()}`);
    try {
      const up = await query(lab, h1.ns, 'up{job="vxmesh"}');
      return up.length === 1 && up[0].value[1] === '1';
    } catch {
      return false;
    }
  }, { timeoutMs: 60_000, intervalMs: 500 });

  const info = await query(lab, h1.ns, 'vxmesh_info');
  assert.equal(info.length, 1);
  assert.equal(info[0].metric.node, 'h1');
  const families = await query(lab, h1.ns, 'count by (__name__) ({__name__=~"vxmesh_.+"})');
  assert.ok(families.length >= 25, `${families.length} vxmesh_ families stored`);
  const ready = await query(lab, h1.ns, 'vxmesh_ready');
  assert.equal(ready[0].value[1], '1');

  // The pings seen by Prometheus: delivered frames of network blue, the peer's packets.
  const delivered2 = await lab.waitFor('delivered frames scraped', async () => {
    const r = await query(lab, h1.ns, 'vxmesh_network_rx_delivered_packets_total{network="blue",vni="42"}');
    return r.length === 1 && Number(r[0].value[1]) >= 5 ? Number(r[0].value[1]) : 0;
  }, { timeoutMs: 30_000, intervalMs: 500 });
  assert.ok(delivered2 >= delivered);
  const peer = await query(lab, h1.ns, `vxmesh_peer_rx_packets_total{peer="${topo.hosts[1].address}:4789"}`);
  assert.equal(peer.length, 1);
  assert.ok(Number(peer[0].value[1]) >= 5);
  // delivered + drops = received, evaluated by Prometheus on the same scrape.
  const identity = await query(lab, h1.ns,
    'vxmesh_network_rx_packets_total - on (instance, network, vni) (vxmesh_network_rx_delivered_packets_total + on (instance, network, vni) sum by (instance, network, vni) (vxmesh_network_rx_dropped_packets_total))');
  assert.equal(identity.length, 1);
  assert.equal(identity[0].value[1], '0');

  // Our alert rules are loaded and evaluate without errors against real series.
  const ruleCount = (fs.readFileSync(path.join(REPO_ROOT, 'deploy', 'prometheus', 'vxmesh-alerts.yml'), 'utf8').match(/^\s+- alert: /gm) ?? []).length;
  await lab.waitFor('alert rules evaluated', async () => {
    const r = (await httpGetJson(lab, h1.ns, `http://${PROM}/api/v1/rules`)) as { data: { groups: { name: string; rules: { health: string; lastEvaluation: string }[] }[] } };
    // the main group and the feature groups at the end of the file (vxmesh-capture, ...)
    const rules = r.data.groups.filter((x) => x.name === 'vxmesh' || x.name.startsWith('vxmesh-')).flatMap((x) => x.rules);
    return rules.length === ruleCount && rules.every((x) => x.health === 'ok' && !x.lastEvaluation.startsWith('0001'));
  }, { timeoutMs: 30_000, intervalMs: 500 });
  const firing = (await httpGetJson(lab, h1.ns, `http://${PROM}/api/v1/alerts`)) as { data: { alerts: { labels: { alertname: string }; state: string }[] } };
  const active = firing.data.alerts.filter((x) => ['VxmeshAgentDown', 'VxmeshNotReady', 'VxmeshHighInboundDropRate'].includes(x.labels.alertname));
  assert.deepEqual(active, [], 'a healthy agent trips none of these');

  await lab.stop(prom, { timeoutMs: 5000 });
  assert.equal(prom.running(), false);
});
