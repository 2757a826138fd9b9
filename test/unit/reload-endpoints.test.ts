/**
 * Issue 19 item 2 (rest): a reload that changes a network's MTU (or turns encryption on or off,
 * which moves it) sets the new MTU on both ends of every endpoint this host attached; networks
 * added at reload become attachable, and new attaches get the new MTU; endpoint settings that are
 * safe in place (hostEndpoint, a local network's MTU) no longer tear the network down, and those
 * that are not (ipam, mode, parent) are refused with a reason instead of being silently ignored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Agent } from '../../src/agent/agent';
import { systemClock } from '../../src/clock';
import { diffConfig } from '../../src/config/diff';
import type { Config, NetworkConfig } from '../../src/config/types';
import { MemorySpoofGuard } from '../../src/endpoints/antispoof';
import { EndpointsExtension } from '../../src/endpoints/extension';
import { MemoryEndpointSystem } from '../../src/endpoints/system';
import { MemoryStateStore } from '../../src/ipam/state-store';
import { nullLogger } from '../../src/log';

const IPAM = { subnets: ['198.19.0.0/24'], gateways: ['198.19.0.1'], hostBlocks: [26], ranges: ['198.19.0.0/26'] };

function blue(over: Partial<NetworkConfig> = {}): NetworkConfig {
  return { name: 'blue', vni: 42, bridge: 'br0', tap: 'vx-blue', mtu: 1450, encrypted: false, ipam: IPAM, ...over };
}

function config(socket: string, networks: NetworkConfig[], localNetworks: NetworkConfig[] = []): Config {
  return {
    node: { name: 'h1', keyFile: null },
    underlay: { address: '198.18.0.1', family: 4, port: 4789, mtu: 1500, sourcePorts: 1 },
    networks, localNetworks, peers: [], fdb: { ageingSeconds: 300, maxEntries: 1000 }, gossip: null,
    api: { listen: { host: '127.0.0.1', port: 0 }, socket }, log: { level: 'error' }, source: null,
  };
}

test('diff: MTU and hostEndpoint are endpoint changes; hostEndpoint alone does not re-create the network; ipam, mode and parent are refused', () => {
  const base = config('/x', [blue()], [blue({ name: 'lan', vni: 0, bridge: 'br-lan', mode: 'bridge', ipam: undefined })]);
  const enc = diffConfig(base, config('/x', [blue({ encrypted: true, mtu: 1418 })], base.localNetworks));
  assert.deepEqual(enc.refused, []);
  assert.deepEqual(enc.changed.map((c) => c.after.name), ['blue'], 'the data path network is re-created (TAP MTU)');
  assert.deepEqual(enc.endpointsChanged.map((n) => n.name), ['blue'], 'and the endpoints get the MTU');
  const host = diffConfig(base, config('/x', [blue({ hostEndpoint: true })], base.localNetworks));
  assert.deepEqual(host.changed, [], 'hostEndpoint alone: no teardown');
  assert.deepEqual(host.endpointsChanged.map((n) => n.name), ['blue']);
  const lan = diffConfig(base, config('/x', [blue()], [{ ...base.localNetworks![0], mtu: 1400 }]));
  assert.deepEqual(lan.refused, []);
  assert.deepEqual(lan.endpointsChanged.map((n) => n.name), ['lan'], 'a local network\'s MTU change was not seen at all before');
  const ipam = diffConfig(base, config('/x', [blue({ ipam: { ...IPAM, ranges: ['198.19.0.64/26'] } })], base.localNetworks));
  assert.match(ipam.refused.join('\n'), /networks\[blue\]\.ipam changed .*restart the agent/);
  const mode = diffConfig(base, config('/x', [blue()], [{ ...base.localNetworks![0], mode: 'macvlan', parent: 'eth0' }]));
  assert.match(mode.refused.join('\n'), /networks\[lan\]\.mode changed/);
  assert.match(mode.refused.join('\n'), /networks\[lan\]\.parent changed/);
});

test('reload: a new MTU (encryption turned on) is set on both ends of every attached endpoint; new attaches and networks added at reload follow', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxm-reload-ep-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'vxmesh.sock');
  const system = new MemoryEndpointSystem();
  const agent = { clock: systemClock, ready: () => ({ ok: true, checks: {} }), api: null, state: { dir: null } } as unknown as Agent;
  const ext = new EndpointsExtension(config(socket, [blue()]), nullLogger, { store: new MemoryStateStore(), system, guard: new MemorySpoofGuard(), gossip: null });
  await ext.start(agent);
  t.after(() => ext.stop());
  const netns = (n: string) => {
    const p = path.join(dir, `ns-${n}`);
    fs.writeFileSync(p, '');
    return p;
  };
  const a = await ext.manager!.attach({ network: 'blue', netns: netns('a') });
  const b = await ext.manager!.attach({ network: 'blue', netns: netns('b') });
  for (const v of [a, b]) {
    assert.equal(system.mtuOf(null, v.hostIf!), 1450);
    assert.equal(system.mtuOf(path.join(dir, `ns-${v === a ? 'a' : 'b'}`), v.ifname), 1450);
  }

  await ext.reload(config(socket, [blue({ encrypted: true, mtu: 1418 }), blue({ name: 'red', vni: 43, bridge: 'br1', tap: 'vx-red', mtu: 1450, ipam: undefined })]));
  for (const [v, ns] of [[a, 'a'], [b, 'b']] as const) {
    assert.equal(system.mtuOf(null, v.hostIf!), 1418, `${v.name}: bridge port`);
    assert.equal(system.mtuOf(path.join(dir, `ns-${ns}`), v.ifname), 1418, `${v.name}: container interface`);
  }
  const c = await ext.manager!.attach({ network: 'blue', netns: netns('c') });
  assert.equal(c.mtu, 1418);
  assert.equal(system.mtuOf(null, c.hostIf!), 1418, 'a new attach gets the new MTU');
  const r = await ext.manager!.attach({ network: 'red', netns: netns('r'), ip: ['198.19.1.5/24'] });
  assert.equal(r.network, 'red', 'a network added at reload is attachable');

  // Back off: the MTU goes up again on the endpoints; an interface that is gone is skipped.
  await system.deleteLink(null, b.hostIf!);
  await ext.reload(config(socket, [blue(), blue({ name: 'red', vni: 43, bridge: 'br1', tap: 'vx-red', mtu: 1450, ipam: undefined })]));
  assert.equal(system.mtuOf(null, a.hostIf!), 1450);
  assert.equal(system.mtuOf(path.join(dir, 'ns-c'), c.ifname), 1450);
});
