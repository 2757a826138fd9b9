/**
 * `api.metricsListen` (issue 18): a second listener that serves GET /metrics and nothing else, so
 * metrics can be exposed off the host without exposing status, members or the FDB (which
 * `api.listen` serves without authentication). Config: default none, an address that overlaps
 * `api.listen` is refused, a change needs a restart. A port already taken fails the start with
 * ERR_VXMESH_API_LISTEN naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { Agent, type AgentSystem, type OpenedTap } from '../../src/agent/agent';
import { diffConfig } from '../../src/config/diff';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/types';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { ConfigError } from '../../src/errors';
import { OpsExtension } from '../../src/metrics/extension';

function memorySystem(): AgentSystem {
  const reactor = new MemoryReactor({ auto: true });
  const wire = new MemoryUdpNetwork({ reactor });
  const links = new Set<string>();
  const up = new Set<string>();
  const master = new Map<string, string>();
  return {
    linkExists: (n) => links.has(n),
    bridgeCreate: (n) => { links.add(n); },
    bridgeDelete: (n) => { links.delete(n); },
    bridgeAddPort: (b, i) => { master.set(i, b); },
    bridgeDelPort: (_b, i) => { master.delete(i); },
    setMtu: () => {},
    setUp: (n, u) => { if (u) up.add(n); else up.delete(n); },
    isUp: (n) => up.has(n),
    masterOf: (i) => master.get(i) ?? null,
    openTap: (n) => {
      links.add(n);
      const tap = new MemoryTap({ name: n, reactor }) as MemoryTap & { created: boolean };
      tap.created = true;
      return tap as OpenedTap;
    },
    openUdp: (o) => wire.attach(o.address, o.port, o.sourcePorts),
  };
}

const text = (api: string) => `node: host-a
underlay: { address: 198.18.0.1, port: 4789 }
networks:
  - { name: blue, vni: 42, bridge: br0 }
api: ${api}
`;
const parse = (t: string): Config => parseConfig(t, { mtuLookup: () => 1500, hostname: 'host-a' });

function get(port: number, p: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method, timeout: 5000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${p} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

test('api.metricsListen: default none; validated; overlapping api.listen refused; restart-only', () => {
  assert.equal(parse(text('{ listen: 127.0.0.1:9469 }')).api.metricsListen, null);
  assert.deepEqual(parse(text('{ metricsListen: "0.0.0.0:9470" }')).api.metricsListen, { host: '0.0.0.0', port: 9470 });
  assert.deepEqual(parse(text('{ metricsListen: "[::]:9470" }')).api.metricsListen, { host: '::', port: 9470 });
  const bad = (t: string, re: RegExp) => {
    assert.throws(() => parse(t), (e: unknown) => e instanceof ConfigError && e.path === 'api.metricsListen' && re.test(e.message));
  };
  bad(text('{ metricsListen: 9470 }'), /expected host:port/);
  bad(text('{ metricsListen: "0.0.0.0:9469" }'), /overlaps api\.listen \(same port\)/);
  bad(text('{ listen: "127.0.0.1:9469", metricsListen: "127.0.0.1:9469" }'), /overlaps api\.listen/);
  assert.throws(() => parse(text('{ metricListen: "0.0.0.0:9470" }')), /did you mean "metricsListen"/);
  const d = diffConfig(parse(text('{ listen: 127.0.0.1:9469 }')), parse(text('{ metricsListen: "127.0.0.1:9470" }')));
  assert.ok(d.refused.some((r) => r.startsWith('api.metricsListen changed')), JSON.stringify(d.refused));
});

test('the metrics listener serves /metrics and nothing else; status stays on api.listen', async (t) => {
  const c = parse(text('{ listen: "127.0.0.1:9469", metricsListen: "127.0.0.1:9470" }'));
  c.api.listen.port = 0;
  c.api.metricsListen!.port = 0;
  const ops = new OpsExtension({ version: '1.2.3', defaultMetrics: false });
  const agent = await Agent.start(c, { system: memorySystem(), extensions: [ops] });
  t.after(() => agent.stop());
  const mport = ops.metricsServer!.address()!.port;
  const aport = agent.api!.address()!.port;
  assert.notEqual(mport, aport);

  const m = await get(mport, '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.body, /^vxmesh_info\{version="1\.2\.3",node="host-a"\} 1$/m);
  for (const p of ['/v1/status', '/v1/members', '/v1/fdb', '/healthz', '/readyz', '/']) {
    const r = await get(mport, p);
    assert.equal(r.status, 404, `${p} must not be served on metricsListen`);
    assert.doesNotMatch(r.body, /198\.18\.0\.1|blue/);
  }
  assert.equal((await get(mport, '/metrics', 'POST')).status, 405);
  assert.equal((await get(aport, '/v1/status')).status, 200);
  assert.equal((await get(aport, '/metrics')).status, 200);
  const st = (agent.status() as { extensions: { ops: { metricsListen: string } } }).extensions.ops;
  assert.equal(st.metricsListen, `127.0.0.1:${mport}`);

  await agent.stop();
  await assert.rejects(get(mport, '/metrics'), /ECONNREFUSED/);
});

test('a taken metricsListen port fails the start with ERR_VXMESH_API_LISTEN and leaves nothing behind', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const c = parse(text(`{ listen: "127.0.0.1:9469", metricsListen: "127.0.0.1:${port}" }`));
  c.api.listen.port = 0;
  const ops = new OpsExtension({ defaultMetrics: false });
  await assert.rejects(Agent.start(c, { system: memorySystem(), extensions: [ops] }), (e: unknown) => {
    const err = e as { code?: string; message: string };
    return err.code === 'ERR_VXMESH_API_LISTEN' && /api\.metricsListen 127\.0\.0\.1:\d+: EADDRINUSE/.test(err.message);
  });
  assert.equal(ops.metricsServer, null);
});
