/** `vxmesh status` / `members` / `fdb`: API client errors and the readable tables. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { renderFdb } from '../../src/cli/commands/fdb';
import { apiGet, membersTable, renderStatus, table } from '../../src/cli/commands/status';

const now = new Date().toISOString();
const members = [
  { name: 'h1', state: 'alive', incarnation: 5, since: now, address: '198.18.0.1:7946', underlay: '198.18.0.1:4789', vnis: [42], endpoints: 2, self: true },
  { name: 'h2', state: 'dead', incarnation: 9, since: now, address: '198.18.0.2:7946', underlay: '198.18.0.2:4789', vnis: [42, 43], endpoints: 0, self: false },
];

test('tables align columns; members show state, since and self', () => {
  assert.equal(table(['A', 'BB'], [['xxx', 1], ['y', 22]]), 'A    BB\nxxx  1\ny    22');
  const t = membersTable(members);
  assert.match(t, /^NAME\s+STATE\s+SINCE/);
  assert.match(t, /h1 \(self\)\s+alive\s+0s ago\s+198\.18\.0\.1:7946/);
  assert.match(t, /h2\s+dead\s+.*42,43\s+0$/m);
  assert.equal(membersTable([]), '(no members)');
});

test('status rendering includes networks and the gossip members; fdb rendering lists entries', () => {
  const s = renderStatus({
    node: 'h1', uptimeSeconds: 3, ready: { ok: true }, underlay: { address: '198.18.0.1', port: 4789 },
    networks: [{ name: 'ov', vni: 42, bridge: 'br0', mtu: 1450, encrypted: false, fdbSize: 3 }],
    peers: [],
    extensions: { gossip: { members, liveMembers: 1, address: '198.18.0.1:7946', fdbEntries: 3 } },
  });
  assert.match(s, /node h1 .* ready/);
  assert.match(s, /ov\s+42\s+br0\s+1450\s+no\s+3/);
  assert.match(s, /members \(gossip on 198\.18\.0\.1:7946, 1 live, 3 FDB entries\)/);
  assert.match(renderStatus({ node: 'h', uptimeSeconds: 0, ready: false, underlay: { address: 'a', port: 1 }, networks: [], peers: [], extensions: {} }), /gossip: off/);
  const f = renderFdb({ networks: [{ network: 'ov', vni: 42, entries: [{ mac: '02:00:00:00:00:01', kind: 'static', peer: '198.18.0.2:4789', idleMs: 0, ips: ['198.19.0.2'] }] }] });
  assert.match(f, /ov\s+42\s+02:00:00:00:00:01\s+static\s+198\.18\.0\.2:4789\s+198\.19\.0\.2\s+-/);
  assert.equal(renderFdb({ networks: [] }), '(no entries)');
});

test('apiGet: JSON from the agent; clear errors for unreachable agents, 404s and bad --api', async (t) => {
  const srv = http.createServer((req, res) => {
    if (req.url === '/v1/members') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ members }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.after(() => srv.close());
  const addr = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
  assert.deepEqual(await apiGet(addr, '/v1/members'), { members });
  await assert.rejects(apiGet(addr, '/v1/fdb'), { code: 'ERR_VXMESH_API', message: /answered HTTP 404 for \/v1\/fdb: is --api pointing at a vxmesh agent/ });
  await assert.rejects(apiGet('127.0.0.1:1', '/v1/status'), { code: 'ERR_VXMESH_API', message: /cannot reach the agent/ });
  await assert.rejects(apiGet('nonsense', '/v1/status'), { code: 'ERR_VXMESH_USAGE' });
});
