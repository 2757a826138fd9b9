// /healthz, /readyz and /metrics handlers on a bare ApiServer: status codes, bodies, failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { ApiServer } from '../../src/api/server';
import { healthzHandler, readyzHandler } from '../../src/api/health';
import { metricsHandler } from '../../src/api/metrics';

function get(port: number, p: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

test('health handlers: 200 with checks when ok, 503 naming the failing check, 503 when a check throws', async (t) => {
  const api = new ApiServer({ host: '127.0.0.1', port: 0 });
  let ready = false;
  let throwing = false;
  api.route('GET', '/healthz', healthzHandler(() => ({ ok: true, checks: { process: true, eventLoop: true } })));
  api.route('GET', '/readyz', readyzHandler(() => {
    if (throwing) throw new Error('status unavailable');
    return { ok: ready, checks: { taps: true, udp: true, 'ext:gossip': ready } };
  }));
  let fail = false;
  api.route('GET', '/metrics', metricsHandler({
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    metrics: async () => { if (fail) throw new Error('collect failed'); return 'vxmesh_up 1\n'; },
  }));
  const { port } = await api.listen();
  t.after(() => api.close());

  let r = await get(port, '/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { status: 'ok', checks: { process: true, eventLoop: true }, failing: [] });

  r = await get(port, '/readyz');
  assert.equal(r.status, 503);
  assert.deepEqual(JSON.parse(r.body), { status: 'fail', checks: { taps: true, udp: true, 'ext:gossip': false }, failing: ['ext:gossip'] });
  ready = true;
  assert.equal((await get(port, '/readyz')).status, 200);
  throwing = true;
  r = await get(port, '/readyz');
  assert.equal(r.status, 503);
  assert.deepEqual(JSON.parse(r.body).checks, { error: 'status unavailable' });

  r = await get(port, '/metrics');
  assert.equal(r.status, 200);
  assert.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(r.body, 'vxmesh_up 1\n');
  assert.equal((await get(port, '/metrics', 'HEAD')).status, 200);
  assert.equal((await get(port, '/metrics', 'POST')).status, 405);
  fail = true;
  assert.equal((await get(port, '/metrics')).status, 500, 'a failing collector answers 500, the agent stays up');
  fail = false;
  assert.equal((await get(port, '/metrics')).status, 200);
});
