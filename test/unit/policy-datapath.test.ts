/**
 * Policy in the data path (memory twins, two hosts): the egress stage on the sending host and
 * the ingress stage on the receiving one call the network's filter; denied frames are counted
 * `policy_denied` on either side and never reach the wire or the TAP; a remote frame whose inner
 * source is not an endpoint of its sending host is dropped on arrival; without a filter nothing changes.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FakeClock } from '../../src/clock';
import type { Endpoint, NetworkConfig } from '../../src/config/types';
import { Datapath } from '../../src/dataplane/datapath';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { ipBytes } from '../../src/ipam/cidr';
import { CompiledPolicy } from '../../src/policy/compile';
import { parsePolicy } from '../../src/policy/document';
import { PolicyEnforcer } from '../../src/policy/enforcer';
import { frame4, tcp } from '../helpers/frames';

const PORT = 4789;
const ADDRS = ['198.18.0.1', '198.18.0.2', '198.18.0.3'];
const ep = (address: string): Endpoint => ({ address, port: PORT, family: 4 });
const BLUE = 42;
const MAC_WEB = 0x020000000101;
const MAC_DB = 0x020000000201;

function lab() {
  const clock = new FakeClock(0);
  const reactor = new MemoryReactor();
  const net = new MemoryUdpNetwork({ reactor, clock });
  const hosts = ADDRS.map((addr, h) => {
    const udp = net.attach(addr, PORT, 1);
    const config: NetworkConfig = { name: 'blue', vni: BLUE, bridge: 'br-blue', tap: 'vx-blue', mtu: 1450, encrypted: false };
    const tap = new MemoryTap({ name: config.tap, mac: Buffer.from([0x02, 0xee, 0, 0, h, 1]), reactor });
    const dp = new Datapath({
      networks: [{ config, tap }], udp, clock, underlay: { family: 4, mtu: 1500, port: PORT, address: addr },
      peers: ADDRS.map(ep), fdb: { ageingSeconds: 300, maxEntries: 1024 },
    });
    dp.start();
    const enforcer = new PolicyEnforcer({ clock, seed: h });
    return { addr, dp, tap, enforcer };
  });
  const endpoints = [
    { name: 'web', labels: { role: 'web' }, ips: [ipBytes('198.19.0.1')!], host: 'h0', hostAddr: ADDRS[0] },
    { name: 'db', labels: { role: 'db' }, ips: [ipBytes('198.19.0.2')!], host: 'h1', hostAddr: ADDRS[1] },
  ];
  const policy = parsePolicy('name: db\nnetwork: blue\nendpoints: {role: db}\ningress:\n  - from: [{endpoints: {role: web}}]\n    ports: [{protocol: TCP, port: 5432}]\n');
  for (const h of hosts) {
    h.enforcer.setCompiled(new CompiledPolicy({ policies: [policy], defaultDeny: false }, endpoints, { version: 1, seed: 1 }));
    assert.ok(h.dp.setPolicyFilter(BLUE, h.enforcer));
  }
  return { reactor, hosts, run: () => reactor.run() };
}

test('policy in the data path: allowed flows pass both hosts, denied ones are counted where they are stopped', () => {
  const { hosts: [A, B], run } = lab();
  // The db MAC is known behind B (as gossip would program it), the web MAC behind A.
  A.dp.fdbSetRemote(BLUE, MAC_DB, ep(ADDRS[1]));
  B.dp.fdbSetRemote(BLUE, MAC_WEB, ep(ADDRS[0]));
  A.tap.inject(frame4('198.19.0.1', '198.19.0.2', 6, tcp(40000, 5432), MAC_DB, MAC_WEB));
  run();
  const got = B.tap.takeWritten();
  assert.equal(got.length, 1, 'web → db TCP 5432 is delivered');
  B.tap.inject(frame4('198.19.0.2', '198.19.0.1', 6, tcp(5432, 40000), MAC_WEB, MAC_DB));
  run();
  assert.equal(A.tap.takeWritten().length, 1, 'the reply passes by conntrack');

  A.tap.inject(frame4('198.19.0.1', '198.19.0.2', 6, tcp(40000, 80), MAC_DB, MAC_WEB));
  run();
  assert.equal(B.tap.takeWritten().length, 0);
  const a = A.dp.network(BLUE)!.counters;
  assert.equal(a.txDropCount('policy_denied'), 1, 'denied on the sending host: it never reached the wire');
  assert.equal(A.enforcer.denials()[0].reason, 'ingress');
});

test('policy in the data path: a remote frame from a source that is not the sending host\'s endpoint is dropped on arrival', () => {
  const { hosts: [, B, C], run } = lab();
  // C sends a frame claiming web's address (web lives on A). C's own enforcer is removed: a
  // hostile or misconfigured host does not filter.
  C.dp.setPolicyFilter(BLUE, null);
  C.dp.fdbSetRemote(BLUE, MAC_DB, ep(ADDRS[1]));
  C.tap.inject(frame4('198.19.0.1', '198.19.0.2', 6, tcp(40000, 5432), MAC_DB, 0x020000000301));
  run();
  assert.equal(B.tap.takeWritten().length, 0);
  const b = B.dp.network(BLUE)!.counters;
  assert.equal(b.rxDropCount('policy_denied'), 1);
  assert.equal(B.enforcer.denials()[0].reason, 'spoofed');
  assert.equal(B.enforcer.denials()[0].fromHost, ADDRS[2]);
  // Without a filter the same frame is delivered (the stage is the only difference).
  B.dp.setPolicyFilter(BLUE, null);
  C.tap.inject(frame4('198.19.0.1', '198.19.0.2', 6, tcp(40000, 5432), MAC_DB, 0x020000000301));
  run();
  assert.equal(B.tap.takeWritten().length, 1);
});
