/**
 * The gossip agent extension in process: a recording stand-in for the Datapath, the memory
 * transport and a FakeClock, with plain GossipNodes as the other hosts. Checks what the data
 * plane is told: remote MACs and neighbours programmed from records (only for VNIs served here),
 * per-VNI flood lists with only the hosts serving that VNI, diffs on record updates, everything
 * behind a dead host dropped, and our own endpoints announced when the bridges change.
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
import { seededRng } from '../../src/gossip/rng';
import { GossipNode } from '../../src/gossip/swim';
import { nullLogger } from '../../src/log';

const KEY = new Uint8Array(32).fill(5);
const ep = (e: Endpoint): string => `${e.address}:${e.port}`;

class RecordingDatapath {
  calls: string[] = [];
  floods = new Map<number, string[]>();
  local: { mac: string; ipv4: string[]; ipv6: string[] }[] = [];
  version = 0;
  constructor(readonly vnis: number[]) {}
  network(vni: number) { return this.vnis.includes(vni) ? { config: { vni } } : undefined; }
  networks() { return this.vnis.map((vni) => ({ config: { name: `n${vni}`, vni }, fdb: { entries: () => [] } })); }
  fdbSetRemote(vni: number, mac: string, e: Endpoint) { this.calls.push(`set ${vni} ${mac} ${ep(e)}`); return true; }
  fdbDelete(vni: number, mac: string) { this.calls.push(`del ${vni} ${mac}`); return true; }
  fdbRemoveByPeer(e: Endpoint) { this.calls.push(`removeByPeer ${ep(e)}`); return 0; }
  neighSet(vni: number, ip: string, mac: string) { this.calls.push(`neigh ${vni} ${ip} ${mac}`); return true; }
  neighDelete(vni: number, ip: string) { this.calls.push(`unneigh ${vni} ${ip}`); return true; }
  setNetworkPeers(vni: number, eps: Endpoint[] | null) { this.floods.set(vni, (eps ?? []).map(ep).sort()); return true; }
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

test('the data plane follows membership: FDB, neighbours, flood lists per VNI, updates, death, own endpoints', async () => {
  await sodiumReady();
  const clock = new FakeClock();
  const net = new MemoryNetwork({ clock, rng: seededRng(3) });
  const remote = (name: string, addr: string, vnis: number[], mac: string, ip: string): GossipNode => {
    const n = new GossipNode({
      name, transport: net.attach(`${addr}:7946`), keyring: new Keyring([KEY]), clock, tuning: tuningFor('test'),
      underlay: `${addr}:4789`, vnis, endpoints: [{ vni: vnis[0], mac, ips: [ip] }], rng: seededRng(addr.length + name.length),
    });
    n.start();
    return n;
  };
  const r1 = remote('r1', '198.18.0.2', [42], '02:00:00:00:00:0a', '198.19.0.10');
  const r2 = remote('r2', '198.18.0.3', [43], '02:00:00:00:00:0b', '198.19.0.11');
  r2.join(['198.18.0.2:7946']);
  clock.advance(1000);

  const dp = new RecordingDatapath([42]);
  const agent = { clock, datapath: dp, extensions: [], api: null } as unknown as Agent;
  const ext = new GossipExtension(config(), nullLogger, { transport: net.attach('198.18.0.1:7946'), keys: [KEY] });
  await ext.start(agent);
  clock.advance(3000);

  assert.equal(ext.node!.liveMembers, 3);
  assert.ok(dp.calls.includes('set 42 02:00:00:00:00:0a 198.18.0.2:4789'));
  assert.ok(dp.calls.includes('neigh 42 198.19.0.10 02:00:00:00:00:0a'));
  assert.ok(!dp.calls.some((c) => c.includes('02:00:00:00:00:0b')), 'VNI 43 is not served here: nothing programmed');
  assert.deepEqual(dp.floods.get(42), ['198.18.0.2:4789'], 'BUM for VNI 42 goes only to the host serving it');

  // r1 moves from endpoint a to c: a's entry and neighbour are removed, c's added.
  dp.calls = [];
  r1.updateLocal({ endpoints: [{ vni: 42, mac: '02:00:00:00:00:0c', ips: ['198.19.0.12'] }] });
  clock.advance(2000);
  assert.ok(dp.calls.includes('set 42 02:00:00:00:00:0c 198.18.0.2:4789'));
  assert.ok(dp.calls.includes('del 42 02:00:00:00:00:0a'));
  assert.ok(dp.calls.includes('unneigh 42 198.19.0.10'));

  // Our bridge learns a container: announced to the others.
  dp.local = [{ mac: '02:00:00:00:00:01', ipv4: ['198.19.0.1'], ipv6: [] }];
  dp.version++;
  clock.advance(3000);
  assert.deepEqual(r2.member('self')!.record.endpoints, [{ vni: 42, mac: '02:00:00:00:00:01', ips: ['198.19.0.1'] }]);

  // r1 crashes: dead, everything behind it dropped, flood list emptied.
  dp.calls = [];
  void r1.shutdown();
  clock.advance(20_000);
  assert.equal(ext.node!.member('r1')!.state, 'dead');
  assert.ok(dp.calls.includes('removeByPeer 198.18.0.2:4789'));
  assert.ok(dp.calls.includes('unneigh 42 198.19.0.12'));
  assert.deepEqual(dp.floods.get(42), []);
  const st = ext.status() as { members: { name: string; state: string }[] };
  assert.deepEqual(st.members.map((m) => `${m.name}:${m.state}`), ['r1:dead', 'r2:alive', 'self:alive']);

  // Stop = graceful leave: r2 sees us as left.
  const stopped = ext.stop();
  clock.advance(2000);
  await stopped;
  clock.advance(1000);
  assert.equal(r2.member('self')!.state, 'left');
  void r2.shutdown();
});
