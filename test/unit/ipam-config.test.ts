/** Config fields of endpoints and IPAM: subnet/gateway/hostBlock/range/mode/parent/hostEndpoint, stateDir, api.socket. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/errors';
import { parseConfig } from '../../src/config/load';

const noLookup = { mtuLookup: () => null };
const cfg = (net: string, extra = '') => `underlay: {address: 198.18.0.1, mtu: 1500}\n${extra}networks:\n  - ${net}\n`;
const errs = (text: string): string[] => {
  try {
    parseConfig(text, noLookup);
  } catch (e) {
    const list = (e as { errors?: ConfigError[] }).errors ?? [e as ConfigError];
    return list.map((x) => x.message);
  }
  return [];
};

test('subnet, gateway, hostBlock and range are parsed, canonical, with defaults', () => {
  const c = parseConfig(cfg('{name: blue, vni: 42, bridge: br0, subnet: 198.19.0.0/16, gateway: 198.19.0.1, hostBlock: /26}', 'gossip: {seeds: [], keyFile: /k}\n'), noLookup);
  assert.deepEqual(c.networks[0].ipam, { subnets: ['198.19.0.0/16'], gateways: ['198.19.0.1'], hostBlocks: [26], ranges: [null] });
  const d = parseConfig(cfg('{name: blue, vni: 42, bridge: br0, subnet: ["2001:2:0:1::/64", 198.19.0.0/24], range: [198.19.0.128/25, "2001:2:0:1::100/120"]}'), noLookup);
  assert.deepEqual(d.networks[0].ipam, { subnets: ['198.19.0.0/24', '2001:2:0:1::/64'], gateways: [null, null], hostBlocks: [26, 112], ranges: ['198.19.0.128/25', '2001:2:0:1::100/120'] });
  assert.equal(d.stateDir, undefined, 'not given: the agent\'s --state-dir');
  assert.equal(d.api.socket, '/run/vxmesh/vxmesh.sock');
  const e = parseConfig(cfg('{name: blue, vni: 42, bridge: br0}', 'stateDir: /tmp/x\napi: {socket: /tmp/x/s.sock}\n'), noLookup);
  assert.equal(e.stateDir, '/tmp/x');
  assert.equal(e.api.socket, '/tmp/x/s.sock');
  assert.equal(e.networks[0].ipam, undefined);
});

test('modes: bridge and macvlan go to localNetworks (no VNI/TAP needed); overlay stays', () => {
  const c = parseConfig(cfg('{name: lan, mode: macvlan, parent: ul0, subnet: 198.19.9.0/24}\n  - {name: one, mode: bridge, bridge: br1, subnet: 198.19.8.0/24, hostEndpoint: true}\n  - {name: blue, vni: 42, bridge: br0}'), noLookup);
  assert.deepEqual(c.networks.map((n) => n.name), ['blue']);
  assert.deepEqual(c.localNetworks!.map((n) => [n.name, n.mode, n.parent ?? null, n.bridge, n.hostEndpoint ?? false]), [['lan', 'macvlan', 'ul0', '', false], ['one', 'bridge', null, 'br1', true]]);
  assert.deepEqual(c.localNetworks![1].ipam!.ranges, [null], 'bridge mode: the whole subnet is this host\'s');
});

test('bad endpoint fields are named errors', () => {
  assert.match(errs(cfg('{name: blue, vni: 42, bridge: br0, subnet: 198.19.0.5/16}')).join('\n'), /networks\[0\]\.subnet: host bits set: did you mean 198\.19\.0\.0\/16\?/);
  assert.match(errs(cfg('{name: blue, vni: 42, bridge: br0, subnet: 198.19.0.0/16, gateway: 198.20.0.1, range: 198.19.0.0/24}')).join('\n'), /gateway: expected an address inside 198\.19\.0\.0\/16/);
  assert.match(errs(cfg('{name: blue, vni: 42, bridge: br0, subnet: 198.19.0.0/16}')).join('\n'), /range: missing; without gossip each host needs its own range/);
  assert.match(errs(cfg('{name: blue, vni: 42, bridge: br0, subnet: 198.19.0.0/16, hostBlock: /8}', 'gossip: {seeds: [], keyFile: /k}\n')).join('\n'), /hostBlock: expected a prefix length \/16\.\.\/30/);
  assert.match(errs(cfg('{name: blue, vni: 42, bridge: br0, subnet: 198.19.0.0/16, range: 198.20.0.0/24}')).join('\n'), /range: expected a CIDR range inside/);
  assert.match(errs(cfg('{name: lan, mode: macvlan, subnet: 198.19.0.0/16}')).join('\n'), /parent: missing; mode macvlan needs/);
  assert.match(errs(cfg('{name: lan, mode: tunnel, bridge: b}')).join('\n'), /mode: expected one of overlay, bridge, macvlan/);
  assert.match(errs(cfg('{name: blue, vni: 42, bridge: br0, gateway: 198.19.0.1}')).join('\n'), /gateway: needs a subnet/);
  assert.match(errs(cfg('{name: blue, vni: 42, bridge: br0}', 'api: {socket: rel.sock}\n')).join('\n'), /api\.socket: expected an absolute unix socket path/);
});
