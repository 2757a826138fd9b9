/**
 * Issue 10 defect 5 (gossip side): a member's record may describe only that member's endpoints.
 * The extension runs against a recording stand-in for the Datapath, with plain GossipNodes on the
 * memory transport as the other hosts and a FakeClock. Checked: a MAC (or IP) another member owns
 * is not taken over, a member dropping a MAC it never owned deletes nothing, a record claiming a MAC
 * or address local to this host is refused, a member claiming another's underlay is not programmed,
 * every install/delete names its owner, and a refused claim wins once the owner lets go.
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

const KEY = new Uint8Array(32).fill(9);
const ep = (e: Endpoint | undefined): string => (e ? `${e.address}:${e.port}` : '-');
const LOCAL_MAC = '02:00:00:00:01:01';
const TAP_MAC = [0x02, 0, 0, 0, 0x01, 0xff];

/** Records what the data plane is told, with each call's owner. */
class RecordingDatapath {
  calls: string[] = [];
  constructor(readonly vnis: number[]) {}
  network(vni: number) { return this.vnis.includes(vni) ? { config: { vni }, tap: { mac: Uint8Array.from(TAP_MAC) } } : undefined; }
  networks() { return this.vnis.map((vni) => ({ config: { name: `n${vni}`, vni }, fdb: { entries: () => [] } })); }
  fdbSetRemote(vni: number, mac: string, e: Endpoint, owner?: Endpoint) { this.calls.push(`set ${vni} ${mac} ${ep(e)} owner ${ep(owner)}`); return true; }
  fdbDelete(vni: number, mac: string, owner?: Endpoint) { this.calls.push(`del ${vni} ${mac} owner ${ep(owner)}`); return true; }
  fdbRemoveByPeer(e: Endpoint) { this.calls.push(`removeByPeer ${ep(e)}`); return 0; }
  neighSet(vni: number, ip: string, mac: string, owner?: Endpoint) { this.calls.push(`neigh ${vni} ${ip} ${mac} owner ${ep(owner)}`); return true; }
  neighDelete(vni: number, ip: string, owner?: Endpoint) { this.calls.push(`unneigh ${vni} ${ip} owner ${ep(owner)}`); return true; }
  setNetworkPeers() { return true; }
  localEndpoints(vni: number) { return vni === 42 ? [{ mac: LOCAL_MAC, ipv4: ['198.19.1.1'], ipv6: [] }] : []; }
  localVersion() { return 0; }
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

async function cluster(): Promise<{
  clock: FakeClock; dp: RecordingDatapath; ext: GossipExtension;
  host: (name: string, addr: string, endpoints: EndpointRecord[], underlay?: string) => GossipNode;
}> {
  await sodiumReady();
  const clock = new FakeClock();
  const net = new MemoryNetwork({ clock, rng: seededRng(11) });
  const host = (name: string, addr: string, endpoints: EndpointRecord[], underlay = `${addr}:4789`): GossipNode => {
    const n = new GossipNode({
      name, transport: net.attach(`${addr}:7946`), keyring: new Keyring([KEY]), clock, tuning: tuningFor('test'),
      underlay, vnis: [42], endpoints, rng: seededRng(addr.length * 7 + name.length), seeds: ['198.18.0.2:7946'],
    });
    n.start();
    if (addr !== '198.18.0.2') n.join(['198.18.0.2:7946']);
    return n;
  };
  const dp = new RecordingDatapath([42]);
  const agent = { clock, datapath: dp, extensions: [], api: null } as unknown as Agent;
  const ext = new GossipExtension(config(), nullLogger, { transport: net.attach('198.18.0.1:7946'), keys: [KEY], clock });
  await ext.start(agent);
  return { clock, dp, ext, host };
}

const A = '02:00:00:00:00:0a';

test('a MAC that member B owns is not taken over by member C, and C cannot delete it', async () => {
  const { clock, dp, ext, host } = await cluster();
  const b = host('b', '198.18.0.2', [{ vni: 42, mac: A, ips: ['198.19.0.10'] }]);
  clock.advance(3000);
  assert.ok(dp.calls.includes(`set 42 ${A} 198.18.0.2:4789 owner 198.18.0.2:4789`), dp.calls.join('\n'));
  assert.ok(dp.calls.includes(`neigh 42 198.19.0.10 ${A} owner 198.18.0.2:4789`));

  dp.calls = [];
  const c = host('c', '198.18.0.3', [{ vni: 42, mac: A, ips: ['198.19.0.10'] }, { vni: 42, mac: '02:00:00:00:00:0c', ips: ['198.19.0.10'] }]);
  clock.advance(3000);
  assert.equal(ext.node!.member('c')!.state, 'alive');
  assert.ok(!dp.calls.some((x) => x.startsWith(`set 42 ${A}`)), `C's claim on B's MAC must be refused:\n${dp.calls.join('\n')}`);
  assert.ok(!dp.calls.some((x) => x.startsWith('neigh 42 198.19.0.10')), 'nor B\'s address');
  assert.ok(dp.calls.includes('set 42 02:00:00:00:00:0c 198.18.0.3:4789 owner 198.18.0.3:4789'), 'C\'s own MAC is installed');
  const st = ext.status() as { refused: Record<string, number> };
  assert.ok(st.refused.mac_owned_by_other >= 1);
  assert.ok(st.refused.ip_owned_by_other >= 1);

  // C drops the MAC it claimed: B's entry must stay (a delete only removes what the member owns).
  dp.calls = [];
  c.updateLocal({ endpoints: [{ vni: 42, mac: '02:00:00:00:00:0c', ips: [] }] });
  clock.advance(3000);
  assert.ok(!dp.calls.some((x) => x.startsWith(`del 42 ${A}`)), `C deleted B's entry:\n${dp.calls.join('\n')}`);
  assert.ok(!dp.calls.some((x) => x.startsWith('unneigh 42 198.19.0.10')));

  // C dies: only what C owns goes.
  dp.calls = [];
  void c.shutdown();
  clock.advance(20_000);
  assert.equal(ext.node!.member('c')!.state, 'dead');
  assert.ok(dp.calls.includes('del 42 02:00:00:00:00:0c owner 198.18.0.3:4789'));
  assert.ok(!dp.calls.some((x) => x.includes(A)), dp.calls.join('\n'));
  void b.shutdown();
  const stopped = ext.stop();
  clock.advance(2000);
  await stopped;
});

test('a refused claim is installed once its owner lets go of the MAC (the endpoint moved)', async () => {
  const { clock, dp, host } = await cluster();
  const b = host('b', '198.18.0.2', [{ vni: 42, mac: A, ips: [] }]);
  clock.advance(3000);
  const c = host('c', '198.18.0.3', [{ vni: 42, mac: A, ips: [] }]);
  clock.advance(3000);
  assert.ok(!dp.calls.some((x) => x.startsWith(`set 42 ${A} 198.18.0.3`)));
  dp.calls = [];
  b.updateLocal({ endpoints: [] });
  clock.advance(3000);
  assert.ok(dp.calls.includes(`del 42 ${A} owner 198.18.0.2:4789`), dp.calls.join('\n'));
  assert.ok(dp.calls.includes(`set 42 ${A} 198.18.0.3:4789 owner 198.18.0.3:4789`), dp.calls.join('\n'));
  void b.shutdown();
  void c.shutdown();
});

test('a record claiming this host\'s local MAC, its TAP MAC or a local address is refused', async () => {
  const { clock, dp, ext, host } = await cluster();
  const tapMac = TAP_MAC.map((x) => x.toString(16).padStart(2, '0')).join(':');
  const b = host('b', '198.18.0.2', [
    { vni: 42, mac: LOCAL_MAC, ips: ['198.19.0.50'] },
    { vni: 42, mac: tapMac, ips: [] },
    { vni: 42, mac: '02:00:00:00:00:0b', ips: ['198.19.1.1'] },
  ]);
  clock.advance(3000);
  assert.equal(ext.node!.member('b')!.state, 'alive');
  assert.ok(!dp.calls.some((x) => x.includes(LOCAL_MAC)), dp.calls.join('\n'));
  assert.ok(!dp.calls.some((x) => x.includes(tapMac)), dp.calls.join('\n'));
  assert.ok(!dp.calls.some((x) => x.startsWith('neigh 42 198.19.1.1')), 'our container\'s address is not rebound');
  assert.ok(dp.calls.includes('set 42 02:00:00:00:00:0b 198.18.0.2:4789 owner 198.18.0.2:4789'));
  const st = ext.status() as { refused: Record<string, number> };
  assert.equal(st.refused.local_mac, 2);
  assert.equal(st.refused.local_ip, 1);
  void b.shutdown();
});

test('a member announcing another member\'s underlay (or ours) is not programmed', async () => {
  const { clock, dp, ext, host } = await cluster();
  const b = host('b', '198.18.0.2', [{ vni: 42, mac: A, ips: [] }]);
  clock.advance(3000);
  dp.calls = [];
  const c = host('c', '198.18.0.3', [{ vni: 42, mac: '02:00:00:00:00:0c', ips: [] }], '198.18.0.2:4789');
  const d = host('d', '198.18.0.4', [{ vni: 42, mac: '02:00:00:00:00:0d', ips: [] }], '198.18.0.1:4789');
  clock.advance(3000);
  assert.equal(ext.node!.member('c')!.state, 'alive');
  assert.equal(ext.node!.member('d')!.state, 'alive');
  assert.deepEqual(dp.calls.filter((x) => x.startsWith('set')), [], dp.calls.join('\n'));
  assert.equal((ext.status() as { refused: Record<string, number> }).refused.underlay_in_use >= 2, true);
  // c dies: b's entries (same underlay) stay.
  dp.calls = [];
  void c.shutdown();
  clock.advance(20_000);
  assert.ok(!dp.calls.some((x) => x.includes('198.18.0.2:4789')), dp.calls.join('\n'));
  for (const n of [b, d]) void n.shutdown();
});
