/**
 * The control API server: exact routes, JSON responses, 404 / 405 (with Allow) / 413 / 500,
 * HEAD served by GET, request bodies delivered, unroute, close, bind failure.
 */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { ApiServer, sendJson, sendText } from '../../src/api/server';

async function withServer(fn: (base: string, s: ApiServer) => Promise<void>, maxBodyBytes = 1024): Promise<void> {
  const s = new ApiServer({ host: '127.0.0.1', port: 0, maxBodyBytes });
  const addr = await s.listen();
  try {
    await fn(`http://127.0.0.1:${addr.port}`, s);
  } finally {
    await s.close();
  }
}

test('routes answer JSON; unknown path 404; wrong method 405 with Allow; HEAD uses GET', async () => {
  await withServer(async (base, s) => {
    s.route('GET', '/v1/x', (_req, res) => sendJson(res, 200, { hello: 'world' }));
    s.route('post', '/v1/echo', (_req, res, body) => sendJson(res, 201, { got: body.toString() }));
    s.route('GET', '/text', (_req, res) => sendText(res, 200, 'a 1\n', 'text/plain; version=0.0.4'));

    const r = await fetch(`${base}/v1/x?verbose=1`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /^application\/json/);
    assert.deepEqual(await r.json(), { hello: 'world' });

    const e = await fetch(`${base}/v1/echo`, { method: 'POST', body: 'ping' });
    assert.equal(e.status, 201);
    assert.deepEqual(await e.json(), { got: 'ping' });

    const t = await fetch(`${base}/text`);
    assert.equal(await t.text(), 'a 1\n');
    assert.equal(t.headers.get('content-type'), 'text/plain; version=0.0.4');

    const nf = await fetch(`${base}/nope`);
    assert.equal(nf.status, 404);
    assert.match((await nf.json() as { error: string }).error, /no such endpoint: \/nope/);

    const na = await fetch(`${base}/v1/x`, { method: 'DELETE' });
    assert.equal(na.status, 405);
    assert.equal(na.headers.get('allow'), 'GET, HEAD');
    await na.arrayBuffer();

    const h = await fetch(`${base}/v1/x`, { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(await h.text(), '');

    s.unroute('GET', '/v1/x');
    assert.equal((await fetch(`${base}/v1/x`)).status, 404);
  });
});

test('oversized bodies get 413; a throwing or rejecting handler gets 500 and the server keeps serving', async () => {
  await withServer(async (base, s) => {
    s.route('POST', '/in', (_req, res, body) => sendJson(res, 200, { n: body.length }));
    s.route('GET', '/throw', () => { throw new Error('boom'); });
    s.route('GET', '/reject', async () => { throw new Error('async boom'); });
    const big = await fetch(`${base}/in`, { method: 'POST', body: Buffer.alloc(4096) });
    assert.equal(big.status, 413);
    await big.arrayBuffer();
    const ok = await fetch(`${base}/in`, { method: 'POST', body: Buffer.alloc(1000) });
    assert.deepEqual(await ok.json(), { n: 1000 });
    const t = await fetch(`${base}/throw`);
    assert.equal(t.status, 500);
    assert.deepEqual(await t.json(), { error: 'internal error' });
    assert.equal((await fetch(`${base}/reject`)).status, 500);
    assert.equal((await fetch(`${base}/in`, { method: 'POST', body: 'x' })).status, 200);
  });
});

test('listen fails cleanly when the port is taken; close is idempotent', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const s = new ApiServer({ host: '127.0.0.1', port });
    await assert.rejects(s.listen(), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
    await s.close();
    assert.equal(s.address(), null);
  } finally {
    await new Promise<void>((r) => blocker.close(() => r()));
  }
});
