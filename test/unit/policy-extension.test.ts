/**
 * The policy extension over real HTTP: apply on the control router (bad documents → 400 naming
 * the field), list/get/trace/denials on the read API, state that survives a restart, two hosts
 * converging through a sync twin (newest version wins, deletions included), and the data path
 * getting a filter exactly for networks that have something to enforce.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import { FakeClock } from '../../src/clock';
import type { Agent } from '../../src/agent/agent';
import { ApiServer } from '../../src/api/server';
import { parseConfig } from '../../src/config/load';
import { PolicyExtension, type PolicyEndpointRecord, type PolicySyncChannel } from '../../src/policy/extension';

function request(port: number, method: string, p: string, body?: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, agent: false }, (res) => {
      let d = '';
      res.setEncoding('utf8').on('data', (c: string) => (d += c)).on('end', () => resolve({ status: res.statusCode!, json: d ? JSON.parse(d) : null }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

class SyncHub {
  readonly data = new Map<string, string>();
  readonly listeners = new Set<() => void>();
  channel(node: string): PolicySyncChannel {
    return {
      publish: (d) => {
        if (d === null) this.data.delete(node);
        else this.data.set(node, d);
        for (const l of this.listeners) l();
      },
      received: () => [...this.data].filter(([n]) => n !== node).map(([n, data]) => ({ node: n, data })),
      onChange: (cb) => {
        this.listeners.add(cb);
        return () => this.listeners.delete(cb);
      },
    };
  }
}

const ENDPOINTS: PolicyEndpointRecord[] = [
  { host: 'h1', hostAddr: '198.18.0.1', network: 'blue', name: 'web', mac: '02:00:00:00:00:01', ips: ['198.19.0.1'], labels: { role: 'web' } },
  { host: 'h2', hostAddr: '198.18.0.2', network: 'blue', name: 'db', mac: '02:00:00:00:00:02', ips: ['198.19.0.2'], labels: { role: 'db' } },
];
const DOC = 'name: db\nnetwork: blue\nendpoints: {role: db}\ningress:\n  - from: [{endpoints: {role: web}}]\n    ports: [{protocol: TCP, port: 5432}]\n';

async function host(t: { after(fn: () => unknown): void }, node: string, stateDir: string | null, hub?: SyncHub) {
  const config = parseConfig(`node: ${node}\nunderlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\n  - {name: red, vni: 43, bridge: br1, defaultPolicy: deny}\n`);
  const api = new ApiServer({ host: '127.0.0.1', port: 0 });
  const ctl = new ApiServer({ host: '127.0.0.1', port: 0 });
  const apiPort = (await api.listen()).port;
  const ctlPort = (await ctl.listen()).port;
  const filters = new Map<number, unknown>();
  const agent = {
    clock: new FakeClock(0), api, config, state: { dir: stateDir },
    datapath: { setPolicyFilter: (vni: number, f: unknown) => (filters.set(vni, f), true) },
  } as unknown as Agent;
  const ext = new PolicyExtension(config, { endpoints: { list: () => ENDPOINTS, onChange: () => () => {} }, sync: hub?.channel(node), control: ctl, seed: 1 });
  let started = false;
  t.after(async () => {
    if (started) ext.stop();
    await api.close();
    await ctl.close();
  });
  ext.start(agent);
  started = true;
  return { ext, apiPort, ctlPort, filters };
}

test('policy extension: apply, list, get, trace, delete; state survives a restart', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-policy-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const h = await host(t, 'h1', dir);
  assert.equal(h.filters.get(42), null, 'no policy on blue: no filter');
  assert.ok(h.filters.get(43), 'red has defaultPolicy deny: filtered');

  const bad = await request(h.ctlPort, 'POST', '/v1/policies', JSON.stringify({ document: DOC.replace('network: blue', 'network: bleu') }));
  assert.equal(bad.status, 400);
  assert.match(bad.json.error, /network: unknown network "bleu" \(did you mean "blue"\?\)/);
  assert.equal((await request(h.apiPort, 'POST', '/v1/policies', DOC)).status, 405, 'no apply on the unauthenticated api.listen (GET only)');

  const ok = await request(h.ctlPort, 'POST', '/v1/policies', JSON.stringify({ document: DOC }));
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.deepEqual({ name: ok.json.name, network: ok.json.network, version: ok.json.version }, { name: 'db', network: 'blue', version: 1 });
  assert.ok(h.filters.get(42), 'blue now has a filter');
  const list = await request(h.apiPort, 'GET', '/v1/policies');
  assert.deepEqual(list.json.policies.map((p: { name: string }) => p.name), ['db']);
  const got = await request(h.apiPort, 'GET', '/v1/policy?name=db');
  assert.equal(got.json.document.network, 'blue');
  const tr = await request(h.apiPort, 'GET', '/v1/policy/trace?network=blue&from=web&to=db&port=5432&protocol=TCP');
  assert.equal(tr.json.allowed, true);
  assert.match(tr.json.lines[2], /isolated by db; allowed by db ingress\[0\]/);
  const tr2 = await request(h.apiPort, 'GET', '/v1/policy/trace?network=blue&from=198.19.0.9&to=h2/db&port=80&protocol=TCP');
  assert.equal(tr2.json.allowed, false);
  assert.equal((await request(h.apiPort, 'GET', '/v1/policy/trace?network=blue&from=nobody&to=db&port=80')).status, 400);
  assert.ok(JSON.parse(fs.readFileSync(path.join(dir, 'policies.json'), 'utf8')).policies.length === 1, 'persisted');

  // A restarted agent finds its policies again.
  const h2 = await host(t, 'h1', dir);
  assert.deepEqual(h2.ext.list().map((p) => p.name), ['db']);
  assert.ok(h2.filters.get(42));

  assert.equal((await request(h.ctlPort, 'DELETE', '/v1/policy?name=db')).status, 200);
  assert.equal((await request(h.ctlPort, 'DELETE', '/v1/policy?name=db')).status, 404);
  assert.equal(h.filters.get(42), null, 'no policy left: the filter is removed');
});

test('policy extension: two hosts converge (newest version wins, deletions spread); a corrupt state file is a named error', async (t) => {
  const hub = new SyncHub();
  const a = await host(t, 'h1', null, hub);
  const b = await host(t, 'h2', null, hub);
  a.ext.apply(DOC);
  assert.deepEqual(b.ext.list().map((p) => `${p.name}@${p.version}`), ['db@1']);
  b.ext.apply(DOC.replace('port: 5432', 'port: 5433'));
  const portOf = (x: PolicyExtension) => (x.store.get('db')!.policy!.ingress[0].ports![0].port);
  assert.equal(portOf(a.ext), 5433, 'the newer version (from h2) wins on h1 too');
  assert.equal(portOf(b.ext), 5433);
  a.ext.delete('db');
  assert.deepEqual(b.ext.list(), [], 'the deletion spread');
  assert.equal(b.filters.get(42), null);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-policy-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'policies.json'), '{"policies": [{"name": 1}]}');
  await assert.rejects(host(t, 'h3', dir), (e: Error & { code?: string }) => e.code === 'ERR_VXMESH_STATE' && e.message.includes('policies.json'));
});
