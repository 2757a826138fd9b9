/**
 * Issue 19 item 7: the CLI's edges, as an operator hits them (bin/vxmesh spawned; small HTTP
 * servers in this process stand for "something else on --api" and for an agent's answers):
 * no stack trace for any bad answer or argument, a bad --api is a usage error (exit 2), a 404 is
 * reported with the server's own words and never blamed on gossip, `status` exits 3 naming the
 * failing checks, `members` says plainly that gossip is off, `keygen cluster --out` (0600, never
 * overwrites) and `keygen show`.
 */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'vxmesh');

function vxmesh(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NOTIFY_SOCKET: '', VXMESH_DEBUG: '' } }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A server answering every request with `answer(path)`; closed after the test. */
async function server(t: { after(fn: () => Promise<void> | void): void }, answer: (p: string) => { status: number; type: string; body: string }): Promise<string> {
  const srv = http.createServer((req, res) => {
    const a = answer(req.url ?? '/');
    res.writeHead(a.status, { 'content-type': a.type });
    res.end(a.body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => srv.close(() => r())));
  return `127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

const noStack = (s: string) => assert.doesNotMatch(s, /^\s+at .+\(.*:\d+:\d+\)$/m, `a stack trace was printed:\n${s}`);

test('--api: out-of-range port and malformed addresses are usage errors (exit 2)', async () => {
  for (const api of ['127.0.0.1:99999', '127.0.0.1:0', 'localhost', ':9469', 'http://127.0.0.1:9469']) {
    for (const cmd of ['status', 'members', 'fdb', 'reload']) {
      const r = await vxmesh(cmd, '--api', api);
      assert.equal(r.code, 2, `${cmd} --api ${api}: ${r.stderr}`);
      assert.match(r.stderr, /--api/);
      noStack(r.stderr);
    }
  }
});

test('--api at another HTTP server: HTML, a 404, a 500, JSON of the wrong shape: one clear line each, exit 1, no stack', async (t) => {
  const html = await server(t, () => ({ status: 200, type: 'text/html', body: '<html>hello</html>' }));
  const notFound = await server(t, () => ({ status: 404, type: 'text/html', body: '<h1>Not Found</h1>' }));
  const failing = await server(t, () => ({ status: 500, type: 'text/plain', body: 'oops' }));
  const wrong = await server(t, () => ({ status: 200, type: 'application/json', body: '{"hello": "world"}' }));
  for (const cmd of ['status', 'members', 'fdb']) {
    const a = await vxmesh(cmd, '--api', html);
    assert.equal(a.code, 1, a.stderr);
    assert.match(a.stderr, /not a vxmesh agent's JSON/);
    const b = await vxmesh(cmd, '--api', notFound);
    assert.equal(b.code, 1, b.stderr);
    assert.match(b.stderr, /answered HTTP 404/);
    assert.doesNotMatch(b.stderr, /gossip/i, 'a 404 is not blamed on gossip');
    const c = await vxmesh(cmd, '--api', failing);
    assert.equal(c.code, 1, c.stderr);
    assert.match(c.stderr, /HTTP 500/);
    const d = await vxmesh(cmd, '--api', wrong);
    assert.equal(d.code, 1, d.stderr);
    assert.match(d.stderr, /not what this CLI expects/);
    for (const r of [a, b, c, d]) noStack(r.stderr);
  }
  const closed = await vxmesh('status', '--api', '127.0.0.1:9');
  assert.equal(closed.code, 1);
  assert.match(closed.stderr, /cannot reach the agent at 127\.0\.0\.1:9/);
});

test('a 404 with the agent\'s own error text is reported in its words', async (t) => {
  const api = await server(t, () => ({ status: 404, type: 'application/json', body: '{"error": "no such endpoint: /v1/fdb"}' }));
  const r = await vxmesh('fdb', '--api', api);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /answered HTTP 404 for \/v1\/fdb: no such endpoint: \/v1\/fdb/);
});

const statusDoc = (ready: boolean) => JSON.stringify({
  node: 'h1', pid: 1, uptimeSeconds: 5,
  ready: { ok: ready, checks: { config: true, taps: true, 'network:blue': ready }, failing: ready ? [] : ['network:blue'] },
  reload: { generation: 2, result: 'refused', message: 'reload refused: underlay changed (needs a restart)', at: new Date().toISOString() },
  underlay: { address: '198.18.0.1', port: 4789 },
  networks: [{ name: 'blue', vni: 42, bridge: 'br0', mtu: 1450, encrypted: false, fdbSize: 3, failed: ready ? null : 'TAP vx-blue vanished; re-creating', oversizedPorts: [{ port: 'veth1', mtu: 1500 }] }],
  peers: [{ peer: 'h2', endpoint: '198.18.0.2:4789', static: true, state: 'down', lastReceived: null, rxPackets: 0, txPackets: 4 }],
  extensions: {},
});

test('status: exit 0 when ready, 3 when not, naming the failing check; the last reload, failed networks, oversized ports and peer state are shown', async (t) => {
  const up = await server(t, (p) => ({ status: 200, type: 'application/json', body: p === '/v1/status' ? statusDoc(true) : '{}' }));
  const down = await server(t, (p) => ({ status: 200, type: 'application/json', body: p === '/v1/status' ? statusDoc(false) : '{}' }));
  const a = await vxmesh('status', '--api', up);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /  ready$/m);
  assert.match(a.stdout, /last reload #2 .*refused — reload refused: underlay changed/);
  assert.match(a.stdout, /warning: br0 port veth1 has MTU 1500 > network MTU 1450/);
  assert.match(a.stdout, /h2 +198\.18\.0\.2:4789 +yes +down +never/);
  assert.match(a.stdout, /gossip: off/);
  const b = await vxmesh('status', '--api', down);
  assert.equal(b.code, 3, b.stderr);
  assert.match(b.stdout, /NOT READY \(failing: network:blue\)/);
  assert.match(b.stdout, /FAILED: TAP vx-blue vanished/);
  const j = await vxmesh('status', '--json', '--api', down);
  assert.equal(j.code, 3);
  assert.deepEqual(JSON.parse(j.stdout).ready.failing, ['network:blue']);
});

test('members without gossip says so plainly (exit 0)', async (t) => {
  const api = await server(t, () => ({ status: 200, type: 'application/json', body: '{"gossip": "off", "members": []}' }));
  const r = await vxmesh('members', '--api', api);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^gossip is off on this agent/);
});

test('keygen cluster --out FILE: mode 0600, never overwrites; keygen show FILE', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxkey-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'cluster.key');
  const a = await vxmesh('keygen', 'cluster', '--out', file);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const key = fs.readFileSync(file, 'utf8');
  assert.match(key, /^[A-Za-z0-9+/]{43}=\n$/);
  const again = await vxmesh('keygen', 'cluster', '--out', file);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /exists; refusing to overwrite/);
  assert.equal(fs.readFileSync(file, 'utf8'), key, 'existing key untouched');
  noStack(again.stderr);

  const host = path.join(dir, 'host.key');
  const h = await vxmesh('keygen', 'host', '--out', host);
  assert.equal(h.code, 0, h.stderr);
  const pub = /public key: (\S+)/.exec(h.stdout)![1];
  const s = await vxmesh('keygen', 'show', host);
  assert.equal(s.code, 0, s.stderr);
  assert.ok(s.stdout.includes(`: ${pub}`), s.stdout);
  assert.equal(s.stderr, '', 'a 0600 file gives no warning');
  fs.chmodSync(host, 0o644);
  assert.match((await vxmesh('keygen', 'show', host)).stderr, /mode 0644; a key file should be 0600/);
  fs.appendFileSync(file, (await vxmesh('keygen', 'cluster')).stdout);
  assert.match((await vxmesh('keygen', 'show', file)).stdout, /cluster keyring \(gossip\.keyFile\) with 2 keys/);
  const bad = path.join(dir, 'bad');
  fs.writeFileSync(bad, 'not a key\n');
  const b = await vxmesh('keygen', 'show', bad);
  assert.equal(b.code, 1);
  assert.match(b.stderr, /is not a vxmesh key file/);
  noStack(b.stderr);
  assert.equal((await vxmesh('keygen', 'show')).code, 2);
  assert.equal((await vxmesh('keygen', 'show', path.join(dir, 'missing'))).code, 1);
});

test('check-config --json prints JSON also when the config is invalid (exit 2)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxcc-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'bad.yaml');
  fs.writeFileSync(file, 'underlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: abc, bridge: br0}\n');
  const r = await vxmesh('check-config', '--json', file);
  assert.equal(r.code, 2, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.valid, false);
  assert.equal(j.file, file);
  assert.ok(j.errors.some((e: string) => /networks\[0\]\.vni/.test(e)), r.stdout);
  const ok = path.join(dir, 'ok.yaml');
  fs.writeFileSync(ok, 'underlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\n');
  const g = await vxmesh('check-config', '--json', ok);
  assert.equal(g.code, 0, g.stderr);
  assert.equal(JSON.parse(g.stdout).networks[0].vni, 42);
});
