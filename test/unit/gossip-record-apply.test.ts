/**
 * Record updates are applied to the data plane incrementally (src/gossip/extension.ts `sync`): a
 * member's update re-programs only the endpoints that changed. Before, every record change of a
 * member re-programmed all of its FDB and neighbour entries, so an update of an unrelated section
 * (the convergence acks, the reachability row, policy) silently re-installed entries — and
 * repaired drift the reconciler is there to count. A recording stand-in for the Datapath, plain
 * GossipNodes on the memory transport, a FakeClock. And when a MAC or address leaves this host's
 * bridge, the entries it held back (refused while local, or replaced by local learning) are
 * programmed again at once, not left to the reconciliation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from '../../src/agent/agent';
import { FakeClock } from '../../src/clock';
import type { Config, Endpoint } from '../../src/config/types';
import { tuningFor } from '../../src/gossip/config';
import { GossipExtension } from '../../src/gossip/extension';
import { Keyring, sodiumReady } from '../../src/gossip/keyring';
import { MemoryNetwork } from '../../src/gossip/memory-transport';
import type { EndpointRecord } from '../../src/gossip/record';
import { seededRng } from '../../src/gossip/rng';
import { GossipNode } from '../../src/gossip/swim';
import { nullLogger } from '../../src/log';

const KEY = new Uint8Array(32).fill(7);
const ep = (e: Endpoint | undefined): string => (e ? `${e.address}:${e.port}` : '-');

class RecordingDatapath {
  calls: string[] = [];
  floodCalls = 0;
  /** MACs fdbSetRemote refuses (a full table). */
  refuse = new Set<string>();
  network(vni: number) { return vni === 42 ? { config: { vni }, tap: { mac: Uint8Array.from([2, 0, 0, 0, 1, 0xff]) } } : undefined; }
  networks() { return [{ config: { name: 'n42', vni: 42 }, fdb: { entries: () => [] } }]; }
  fdbSetRemote(vni: number, mac: string, e: Endpoint, owner?: Endpoint) { this.calls.push(`set ${vni} ${mac} ${ep(e)} owner ${ep(owner)}`); return !this.refuse.has(mac); }
  fdbDelete(vni: number, mac: string, owner?: Endpoint) { this.calls.push(`del ${vni} ${mac} owner ${ep(owner)}`); return true; }
  fdbRemoveByPeer(e: Endpoint) { this.calls.push(`removeByPeer ${ep(e)}`); return 0; }
  neighSet(vni: number, ip: string, mac: string, owner?: Endpoint) { this.calls.push(`neigh ${vni} ${ip} ${mac} owner ${ep(owner)}`); return true; }
  neighDelete(vni: number, ip: string, owner?: Endpoint) { this.calls.push(`unneigh ${vni} ${ip} owner ${ep(owner)}`); return true; }
  setNetworkPeers() { this.floodCalls++; return true; }
  /** This host's bridge (tests change it and bump `version`). */
  local: { mac: string; ipv4: string[]; ipv6: string[] }[] = [];
  version = 0;
  localEndpoints(vni: number) { return vni === 42 ? this.local : []; }
  localVersion(vni: number) { return vni === 42 ? this.version : 0; }
}

function config(): Config {
  return {
    node: { name: 'self', keyFile: null },
    underlay: { address: '198.18.0.1', family: 4, port: 4789, mtu: 1500, sourcePorts: 1 },
    networks: [{ name: 'n42', vni: 42, bridge: 'br0', tap: 'vx-n42', mtu: 1450, encrypted: false }],
    peers: [],
    fdb: { ageingSeconds: 300, maxEntries: 1000 },
    gossip: { port: 7946, address: '198.18.0.1', seeds: [{ address: '198.18.0.2', port: 7946, family: 4 }], keyFile: null, profile: 'test' },
    api: { listen: { host: '127.0.0.1', port: 0 } },
    log: { level: 'error' },
    source: null,
  };
}

async function cluster(endpoints: EndpointRecord[], refuse: string[] = [], local: { mac: string; ipv4: string[]; ipv6: string[] }[] = []): Promise<{ clock: FakeClock; dp: RecordingDatapath; ext: GossipExtension; b: GossipNode }> {
  await sodiumReady();
  const clock = new FakeClock();
  const net = new MemoryNetwork({ clock, rng: seededRng(5) });
  const b = new GossipNode({
    name: 'b', transport: net.attach('198.18.0.2:7946'), keyring: new Keyring([KEY]), clock, tuning: tuningFor('test'),
    underlay: '198.18.0.2:4789', vnis: [42], endpoints, rng: seededRng(17), seeds: ['198.18.0.2:7946'],
  });
  b.start();
  const dp = new RecordingDatapath();
  for (const m of refuse) dp.refuse.add(m);
  dp.local = local;
  const agent = { clock, datapath: dp, extensions: [], api: null } as unknown as Agent;
  const ext = new GossipExtension(config(), nullLogger, { transport: net.attach('198.18.0.1:7946'), keys: [KEY], clock });
  await ext.start(agent);
  clock.advance(3000);
  assert.equal(ext.node!.member('b')?.state, 'alive');
  return { clock, dp, ext, b };
}

const MAC1 = '02:00:00:00:00:0a';
const MAC2 = '02:00:00:00:00:0b';
const MAC3 = '02:00:00:00:00:0c';
const OWNER = '198.18.0.2:4789 owner 198.18.0.2:4789';

test('a record update that changes only a section issues no FDB or neighbour operation, and no flood-list update', async () => {
  const { clock, dp, ext, b } = await cluster([{ vni: 42, mac: MAC1, ips: ['198.19.0.10'] }, { vni: 42, mac: MAC2, ips: ['198.19.0.11', '2001:2::11'] }]);
  assert.ok(dp.calls.includes(`set 42 ${MAC1} ${OWNER}`), dp.calls.join('\n'));
  assert.ok(dp.calls.includes(`neigh 42 2001:2::11 ${MAC2} owner 198.18.0.2:4789`), dp.calls.join('\n'));
  for (const [name, data] of [['ack', '{"v":1,"a":[]}'], ['reach', 'row 1'], ['born', '{}'], ['ack', '{"v":1,"a":[["self",42,"02:00:00:00:01:01",1,2]]}'], ['policy', 'x']]) {
    dp.calls = [];
    dp.floodCalls = 0;
    const inc = ext.node!.member('b')!.incarnation;
    b.updateLocal({ sections: [{ name, data }] });
    clock.advance(3000);
    assert.ok(ext.node!.member('b')!.incarnation > inc, `the ${name} update arrived`);
    assert.deepEqual(dp.calls, [], `section ${name} changed: no FDB/neighbour operation`);
    assert.equal(dp.floodCalls, 0, `section ${name} changed: flood lists untouched`);
  }
  void b.shutdown();
});

test('an endpoint change issues exactly its own operations', async () => {
  const { clock, dp, ext, b } = await cluster([{ vni: 42, mac: MAC1, ips: ['198.19.0.10'] }, { vni: 42, mac: MAC2, ips: ['198.19.0.11'] }]);
  const update = (endpoints: EndpointRecord[]): void => {
    dp.calls = [];
    const inc = ext.node!.member('b')!.incarnation;
    b.updateLocal({ endpoints, sections: [{ name: 'ack', data: String(inc) }] });
    clock.advance(3000);
    assert.ok(ext.node!.member('b')!.incarnation > inc);
  };
  // A new endpoint: its MAC and address, nothing of the others.
  update([{ vni: 42, mac: MAC1, ips: ['198.19.0.10'] }, { vni: 42, mac: MAC2, ips: ['198.19.0.11'] }, { vni: 42, mac: MAC3, ips: ['198.19.0.12'] }]);
  assert.deepEqual(dp.calls.sort(), [`neigh 42 198.19.0.12 ${MAC3} owner 198.18.0.2:4789`, `set 42 ${MAC3} ${OWNER}`]);
  // An address added to one endpoint, another address dropped from the same.
  update([{ vni: 42, mac: MAC1, ips: ['198.19.0.10'] }, { vni: 42, mac: MAC2, ips: ['198.19.0.21'] }, { vni: 42, mac: MAC3, ips: ['198.19.0.12'] }]);
  assert.deepEqual(dp.calls.sort(), [
    `neigh 42 198.19.0.21 ${MAC2} owner 198.18.0.2:4789`, `set 42 ${MAC2} ${OWNER}`, 'unneigh 42 198.19.0.11 owner 198.18.0.2:4789',
  ]);
  // An endpoint gone: its entries deleted, the rest untouched.
  update([{ vni: 42, mac: MAC2, ips: ['198.19.0.21'] }, { vni: 42, mac: MAC3, ips: ['198.19.0.12'] }]);
  assert.deepEqual(dp.calls.sort(), [`del 42 ${MAC1} owner 198.18.0.2:4789`, 'unneigh 42 198.19.0.10 owner 198.18.0.2:4789']);
  // A section-only change after all of that: still nothing.
  update([{ vni: 42, mac: MAC2, ips: ['198.19.0.21'] }, { vni: 42, mac: MAC3, ips: ['198.19.0.12'] }]);
  assert.deepEqual(dp.calls, []);
  void b.shutdown();
});

test('an endpoint the table refused is tried again at the member\'s next update; an installed one is not', async () => {
  // The table refuses MAC2 at first (full).
  const { clock, dp, ext, b } = await cluster([{ vni: 42, mac: MAC1, ips: ['198.19.0.10'] }, { vni: 42, mac: MAC2, ips: ['198.19.0.11'] }], [MAC2]);
  assert.ok(dp.calls.includes(`set 42 ${MAC2} ${OWNER}`));
  dp.calls = [];
  dp.refuse.clear();
  const inc = ext.node!.member('b')!.incarnation;
  b.updateLocal({ sections: [{ name: 'ack', data: 'x' }] });
  clock.advance(3000);
  assert.ok(ext.node!.member('b')!.incarnation > inc);
  assert.deepEqual(dp.calls.sort(), [`neigh 42 198.19.0.11 ${MAC2} owner 198.18.0.2:4789`, `set 42 ${MAC2} ${OWNER}`]);
  dp.calls = [];
  b.updateLocal({ sections: [{ name: 'ack', data: 'y' }] });
  clock.advance(3000);
  assert.deepEqual(dp.calls, [], 'installed now: left alone');
  void b.shutdown();
});

/** Sets this host's bridge and lets the extension's poll (every 1 s) see it. */
function bridge(clock: FakeClock, dp: RecordingDatapath, local: { mac: string; ipv4: string[]; ipv6: string[] }[]): void {
  dp.local = local;
  dp.version++;
  clock.advance(1500);
}

test('a MAC seen on this host\'s bridge for a moment: once it leaves, gossip programs its entry again (local learning had replaced it)', async () => {
  const { clock, dp, b } = await cluster([{ vni: 42, mac: MAC1, ips: ['198.19.0.10'] }, { vni: 42, mac: MAC2, ips: ['198.19.0.11'] }]);
  assert.ok(dp.calls.includes(`set 42 ${MAC1} ${OWNER}`));
  // MAC1 shows up on our bridge (the data path replaces the static entry with a local one).
  bridge(clock, dp, [{ mac: MAC1, ipv4: ['198.19.0.250'], ipv6: [] }]);
  dp.calls = [];
  // It goes (aged out): b's record did not change, yet its entry must come back.
  bridge(clock, dp, []);
  assert.deepEqual(dp.calls.sort(), [`neigh 42 198.19.0.10 ${MAC1} owner 198.18.0.2:4789`, `set 42 ${MAC1} ${OWNER}`]);
  // Another local change that names none of b's endpoints: nothing.
  bridge(clock, dp, [{ mac: '02:00:00:00:01:01', ipv4: ['198.19.1.1'], ipv6: [] }]);
  dp.calls = [];
  bridge(clock, dp, []);
  assert.deepEqual(dp.calls, []);
  void b.shutdown();
});

test('a claim refused because the MAC (or address) was local here is installed once it leaves the bridge', async () => {
  const { clock, dp, ext, b } = await cluster(
    [{ vni: 42, mac: MAC1, ips: ['198.19.0.10'] }, { vni: 42, mac: MAC2, ips: ['198.19.0.11'] }],
    [], [{ mac: MAC1, ipv4: [], ipv6: [] }, { mac: '02:00:00:00:01:02', ipv4: ['198.19.0.11'], ipv6: [] }],
  );
  assert.ok(!dp.calls.some((x) => x.startsWith(`set 42 ${MAC1}`)), dp.calls.join('\n'));
  assert.ok(!dp.calls.some((x) => x.startsWith('neigh 42 198.19.0.11')), dp.calls.join('\n'));
  assert.ok((ext.status() as { refused: Record<string, number> }).refused.local_mac >= 1);
  // The local MAC goes: b's MAC1 is installed (its address with it). MAC2, not fully installed
  // (its address is local), is tried again with it: its address is still refused.
  dp.calls = [];
  bridge(clock, dp, [{ mac: '02:00:00:00:01:02', ipv4: ['198.19.0.11'], ipv6: [] }]);
  assert.deepEqual(dp.calls.sort(), [`neigh 42 198.19.0.10 ${MAC1} owner 198.18.0.2:4789`, `set 42 ${MAC1} ${OWNER}`, `set 42 ${MAC2} ${OWNER}`]);
  // The local container with b's address goes: MAC2's address is programmed.
  dp.calls = [];
  bridge(clock, dp, []);
  assert.ok(dp.calls.includes(`neigh 42 198.19.0.11 ${MAC2} owner 198.18.0.2:4789`), dp.calls.join('\n'));
  // Everything installed now: a section update touches nothing.
  dp.calls = [];
  b.updateLocal({ sections: [{ name: 'ack', data: 'z' }] });
  clock.advance(3000);
  assert.deepEqual(dp.calls, []);
  void b.shutdown();
});
