/**
 * `vxmesh status` as an operator reads it (issue 16 item 6, issue 19 item 3): the failing readiness
 * check named as /readyz names it, gossip join shown as degraded (not "not ready", not "ready" while
 * /readyz says 503), drops by reason, crypto sessions with age and queue, exit 3 when not ready,
 * and `--config FILE` reading api.listen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { execFile } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Agent } from '../../src/agent/agent';
import { withFailing } from '../../src/agent/agent';
import { readyzHandler } from '../../src/api/health';
import { serviceReady } from '../../src/metrics/readiness';
import { apiAddressOf, renderStatus, type StatusJson } from '../../src/cli/commands/status';

const joining = { state: 'joining', seeds: ['198.18.0.1:7946'], attempts: 3, nextAttemptInMs: 4000, failures: { '198.18.0.1:7946': 'timeout' }, lastError: 'seed 198.18.0.1:7946: timeout' };

function agentWith(ok: Record<string, boolean>, join: typeof joining | null): Agent {
  return {
    config: { gossip: { port: 7946, address: '198.18.0.2', seeds: [{ address: '198.18.0.1', port: 7946, family: 4 }], keyFile: null, profile: 'test' } },
    gossip: join ? { joinState: () => join } : null,
    ready: () => ({ ok: Object.values(ok).every(Boolean), checks: ok }),
  } as unknown as Agent;
}

/** What GET /readyz answers for `agent` (the real handler over a captured response). */
function readyz(agent: Agent): { code: number; body: { status: string; failing: string[]; degraded?: string[] } } {
  let code = 0;
  let text = '';
  const res = { statusCode: 0, setHeader() {}, writeHead(c: number) { code = c; return res; }, end(b: string) { text = String(b); } } as unknown as http.ServerResponse;
  void readyzHandler(() => serviceReady(agent))({} as http.IncomingMessage, res, Buffer.alloc(0));
  return { code, body: JSON.parse(text) };
}

function doc(ready: StatusJson['ready'], extra: Partial<StatusJson> = {}): StatusJson {
  return { node: 'h2', uptimeSeconds: 9, ready, underlay: { address: '198.18.0.2', port: 4789 }, networks: [], peers: [], extensions: {}, ...extra };
}

test('status and /readyz agree: the failing check is named by both; a pending gossip join is degraded in both, never failing', () => {
  for (const [checks, join] of [
    [{ config: true, taps: true, udp: true, extensions: true }, joining],
    [{ config: true, taps: false, udp: true, extensions: true }, joining],
    [{ config: true, taps: true, udp: true, extensions: false }, null],
  ] as const) {
    const agent = agentWith({ ...checks }, join);
    const st: ReturnType<typeof withFailing> & { degraded?: string[] } = withFailing(serviceReady(agent));
    const rz = readyz(agent);
    assert.equal(rz.code, st.ok ? 200 : 503);
    assert.deepEqual(rz.body.failing, st.failing);
    assert.deepEqual(rz.body.degraded, st.degraded);
    const text = renderStatus(doc(st as StatusJson['ready']));
    if (st.ok) assert.match(text, /\bready\b/);
    else assert.match(text, new RegExp(`NOT READY \\(failing: ${st.failing.join(', ')}\\)`));
    if (join) {
      assert.match(text, /degraded: gossipJoined/);
      assert.match(text, /gossip join: joining, attempt 3, next in 4s: seed 198\.18\.0\.1:7946: timeout/);
      assert.ok(!st.failing.includes('gossipJoined'), 'gossip join never fails readiness');
    }
  }
});

test('status shows drops by reason (zeros left out) and crypto sessions with age, sent and queue', () => {
  const text = renderStatus(doc({ ok: true, checks: {} }, {
    networks: [
      { name: 'ov', vni: 42, bridge: 'br0', mtu: 1418, encrypted: true, fdbSize: 3, tapQueueDrops: 7,
        counters: { rxDrops: { unknown_vtep: 0, decrypt_failed: 4, oversize_frame: 1 }, txDrops: { no_session: 2, no_peers: 0 } } },
      { name: 'quiet', vni: 43, bridge: 'br1', mtu: 1450, encrypted: false, fdbSize: 0, counters: { rxDrops: { truncated: 0 }, txDrops: {} } },
    ],
    counters: { rxDrops: { unknown_vni: 12, truncated: 0 } },
    peers: [{ peer: 'h3', endpoint: '198.18.0.3:4789', static: false, state: 'up', rxPackets: 1, txPackets: 1 }],
    extensions: { crypto: { alg: 'chacha20poly1305', peers: [
      { endpoint: { address: '198.18.0.3', port: 4789 }, session: { ageMs: 95_000, sent: 120, initiator: true }, handshaking: false, queued: 0, lastHandshakeAgoMs: 95_000 },
      { endpoint: { address: '198.18.0.4', port: 4789 }, session: null, handshaking: true, queued: 17, lastHandshakeAgoMs: null },
    ] } },
  }));
  assert.match(text, /drops \(since start, by reason\)/);
  assert.match(text, /\(any network\) rx: 12 unknown_vni$/m);
  assert.match(text, /^ {2}ov {2}rx: 4 decrypt_failed, 1 oversize_frame; tx: 2 no_session; tap queue: 7$/m);
  assert.doesNotMatch(text, /quiet {2}rx/);
  assert.match(text, /crypto sessions \(chacha20poly1305\)/);
  assert.match(text, /^h3\s+95s\s+120\s+0\s+-\s+95s ago$/m, 'named by its node name, session age, sent, queue');
  assert.match(text, /^198\.18\.0\.4:4789\s+none\s+0\s+17\s+in progress\s+never$/m);
  assert.match(renderStatus(doc({ ok: true })), /drops: none/);
});

test('--config FILE: api.listen from the config (wildcards reached on loopback); --api and --config together is a usage error', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-status-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, listen: string | null): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, `node: h1\nunderlay: {address: 198.18.0.1, mtu: 1500}\nnetworks: [{name: ov, vni: 42, bridge: br0}]\n${listen ? `api: {listen: "${listen}"}\n` : ''}`);
    return f;
  };
  assert.equal(apiAddressOf({ config: file('a.yaml', '127.0.0.1:9555') }), '127.0.0.1:9555');
  assert.equal(apiAddressOf({ config: file('b.yaml', '0.0.0.0:9556') }), '127.0.0.1:9556');
  assert.equal(apiAddressOf({ config: file('c.yaml', '[::]:9557') }), '[::1]:9557');
  assert.equal(apiAddressOf({ config: file('d.yaml', null) }), '127.0.0.1:9469', 'the default api.listen');
  assert.equal(apiAddressOf({ api: '10.0.0.1:1' }), '10.0.0.1:1');
  assert.throws(() => apiAddressOf({ api: '127.0.0.1:1', config: file('e.yaml', null) }), { code: 'ERR_VXMESH_USAGE' });
  assert.throws(() => apiAddressOf({ config: path.join(dir, 'missing.yaml') }), { code: 'ERR_VXMESH_CONFIG', message: /--config .*missing\.yaml: cannot read config file/ });
});

test('vxmesh status --config FILE exits 3 when the agent answers not ready, 0 when ready (degraded still 0)', async (t) => {
  let ready: StatusJson['ready'] = { ok: false, checks: { taps: false }, failing: ['taps'] };
  const srv = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(doc(ready)));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.after(() => srv.close());
  const port = (srv.address() as AddressInfo).port;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-status-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'agent.yaml');
  fs.writeFileSync(cfg, `node: h1\nunderlay: {address: 198.18.0.1, mtu: 1500}\nnetworks: []\napi: {listen: "127.0.0.1:${port}"}\n`);
  const bin = path.join(__dirname, '..', '..', '..', 'bin', 'vxmesh');
  const run = () => new Promise<{ code: number | null; stdout: string }>((resolve) => {
    execFile(process.execPath, [bin, 'status', '--config', cfg], (e, stdout) => resolve({ code: e ? (e as { code?: number }).code ?? null : 0, stdout }));
  });
  const down = await run();
  assert.equal(down.code, 3);
  assert.match(down.stdout, /NOT READY \(failing: taps\)/);
  ready = { ok: true, checks: { taps: true, gossipJoined: false }, failing: [], degraded: ['gossipJoined'] };
  const up = await run();
  assert.equal(up.code, 0);
  assert.match(up.stdout, /ready {2}degraded: gossipJoined/);
});

test('status shows the reconciliation and convergence summaries of the observe extension', () => {
  const text = renderStatus(doc({ ok: true }, { extensions: { observe: {
    reconcile: { runs: 4, lastRunAgoMs: 12_000, mismatches: { fdb: { missing: 1, stale: 0, wrong_host: 2 }, neigh: { missing: 0, stale: 0, wrong_mac: 0 } } },
    convergence: { negative: 0, networks: [{ network: 'ov', count: 9, meanSeconds: 1.25 }] },
  } } }));
  assert.match(text, /reconciliation with gossip: 4 runs, last 12s ago; repaired 1 fdb missing, 2 fdb wrong_host/);
  assert.match(text, /convergence ov: 9 endpoints learned, mean 1\.25s/);
});
