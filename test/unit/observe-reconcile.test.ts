/**
 * Reconciliation of the FDB and neighbour tables with the gossip state (src/observe/reconcile.ts):
 * a real Datapath over the in-memory twins on host 198.18.0.1, its GossipExtension on the memory
 * gossip transport, and members b and c as plain GossipNodes announcing endpoints, on a FakeClock.
 * The tables are corrupted by hand (an entry deleted, pointed at the wrong host, a stale one added,
 * a neighbour entry with the wrong MAC); one run counts each by table and kind and repairs it; the
 * next run finds nothing. Local and contested MACs are never judged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from '../../src/agent/agent';
import { FakeClock } from '../../src/clock';
import type { Config, Endpoint, NetworkConfig } from '../../src/config/types';
import { Datapath } from '../../src/dataplane/datapath';
import { ETHERTYPE_IPV4, writeEthHeader } from '../../src/dataplane/ethernet';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { peerKeyOfEndpoint } from '../../src/dataplane/addr';
import { tuningFor } from '../../src/gossip/config';
import { GossipExtension } from '../../src/gossip/extension';
import { Keyring, sodiumReady } from '../../src/gossip/keyring';
import { MemoryNetwork } from '../../src/gossip/memory-transport';
import type { EndpointRecord } from '../../src/gossip/record';
import { seededRng } from '../../src/gossip/rng';
import { GossipNode } from '../../src/gossip/swim';
import { nullLogger } from '../../src/log';
import { Reconciler } from '../../src/observe/reconcile';

const KEY = new Uint8Array(32).fill(5);
const VNI = 42;
const ep = (address: string): Endpoint => ({ address, port: 4789, family: 4 });
const MAC_B = '02:00:00:00:0b:01';
const MAC_B2 = '02:00:00:00:0b:02';
const MAC_C = '02:00:00:00:0c:01';
const MAC_LOCAL = '02:00:00:00:01:01';
const MAC_BOTH = '02:00:00:00:0d:01';

function netCfg(): NetworkConfig {
  return { name: 'blue', vni: VNI, bridge: 'br0', tap: 'vx-blue', mtu: 1450, encrypted: false };
}

function config(): Config {
  return {
    node: { name: 'a', keyFile: null },
    underlay: { address: '198.18.0.1', family: 4, port: 4789, mtu: 1500, sourcePorts: 1 },
    networks: [netCfg()], peers: [], fdb: { ageingSeconds: 300, maxEntries: 1000 },
    gossip: { port: 7946, address: '198.18.0.1', seeds: [{ address: '198.18.0.2', port: 7946, family: 4 }], keyFile: null, profile: 'test' },
    api: { listen: { host: '127.0.0.1', port: 0 } }, log: { level: 'error' }, source: null,
  };
}

async function setup() {
  await sodiumReady();
  const clock = new FakeClock(0);
  const reactor = new MemoryReactor();
  const udpNet = new MemoryUdpNetwork({ reactor, clock });
  const tap = new MemoryTap({ name: 'vx-blue', mac: Buffer.from([2, 0xee, 0, 0, 0, 1]), reactor });
  const dp = new Datapath({
    networks: [{ config: netCfg(), tap }], udp: udpNet.attach('198.18.0.1', 4789, 1), clock,
    underlay: { family: 4, mtu: 1500, port: 4789, address: '198.18.0.1' }, peers: [], fdb: { ageingSeconds: 300, maxEntries: 1000 },
  });
  dp.start();
  // A container on this host's bridge (learned local) that member c also announces: never judged.
  const f = Buffer.alloc(60);
  writeEthHeader(f, 0, 0xffffffffffff, 0x020000000101, ETHERTYPE_IPV4);
  tap.inject(f);
  reactor.run();
  const net = new MemoryNetwork({ clock, rng: seededRng(3) });
  const host = (name: string, addr: string, endpoints: EndpointRecord[]): GossipNode => {
    const n = new GossipNode({
      name, transport: net.attach(`${addr}:7946`), keyring: new Keyring([KEY]), clock, tuning: tuningFor('test'),
      underlay: `${addr}:4789`, vnis: [VNI], endpoints, rng: seededRng(name.charCodeAt(0)), seeds: ['198.18.0.2:7946'],
    });
    n.start();
    if (addr !== '198.18.0.2') n.join(['198.18.0.2:7946']);
    return n;
  };
  const b = host('b', '198.18.0.2', [
    { vni: VNI, mac: MAC_B, ips: ['198.19.0.2'] }, { vni: VNI, mac: MAC_B2, ips: ['198.19.0.22'] }, { vni: VNI, mac: MAC_BOTH, ips: [] },
  ]);
  const c = host('c', '198.18.0.3', [
    { vni: VNI, mac: MAC_C, ips: ['198.19.0.3'] }, { vni: VNI, mac: MAC_LOCAL, ips: ['198.19.0.1'] }, { vni: VNI, mac: MAC_BOTH, ips: [] },
  ]);
  const agent = { clock, datapath: dp, extensions: [], api: null } as unknown as Agent;
  const ext = new GossipExtension(config(), nullLogger, { transport: net.attach('198.18.0.1:7946'), keys: [KEY], clock });
  await ext.start(agent);
  clock.advance(5000);
  const rec = new Reconciler({ target: () => dp, source: ext, underlay: ep('198.18.0.1'), clock, intervalMs: 30_000 });
  const stop = async () => {
    void b.shutdown();
    void c.shutdown();
    const s = ext.stop();
    clock.advance(2000);
    await s;
    dp.stop();
  };
  return { clock, dp, ext, rec, stop, tap };
}

const blue = (dp: Datapath) => dp.network(VNI)!;
const entry = (dp: Datapath, mac: string) => blue(dp).fdb.entries().find((e) => e.mac === mac);

test('reconcile: a consistent state has no mismatches; local and contested MACs are not judged', async () => {
  const { dp, rec, stop } = await setup();
  assert.equal(entry(dp, MAC_B)?.kind, 'static', 'gossip programmed b\'s MAC');
  assert.equal(entry(dp, MAC_LOCAL)?.kind, 'local');
  const found = rec.run();
  assert.deepEqual(found.fdb, { missing: 0, stale: 0, wrong_host: 0, wrong_mac: 0 });
  assert.deepEqual(found.neigh, { missing: 0, stale: 0, wrong_host: 0, wrong_mac: 0 });
  assert.equal(rec.runs, 1);
  assert.equal(entry(dp, MAC_LOCAL)?.kind, 'local', 'still local');
  await stop();
});

test('reconcile: deleted, misdirected and stale FDB entries and wrong/missing/stale neighbour entries are counted and repaired', async () => {
  const { dp, rec, stop } = await setup();
  const n = blue(dp);
  // FDB: b's entry deleted (missing); c's pointed at b (wrong host); one nobody announces (stale).
  assert.ok(n.fdb.delete(Number.parseInt(MAC_B.replace(/:/g, ''), 16)));
  n.fdb.delete(Number.parseInt(MAC_C.replace(/:/g, ''), 16));
  assert.ok(dp.fdbSetRemote(VNI, MAC_C, ep('198.18.0.2'), ep('198.18.0.2')));
  assert.ok(dp.fdbSetRemote(VNI, '02:00:00:00:0e:01', ep('198.18.0.9'), ep('198.18.0.9')));
  // Neighbours: b2's address gone (missing); c's address at the wrong MAC; a stale one.
  assert.equal(n.neigh.delete('198.19.0.22', peerKeyOfEndpoint(ep('198.18.0.2'))), 'deleted');
  assert.equal(n.neigh.delete('198.19.0.3', peerKeyOfEndpoint(ep('198.18.0.3'))), 'deleted');
  assert.ok(dp.neighSet(VNI, '198.19.0.3', MAC_B, ep('198.18.0.2')));
  assert.ok(dp.neighSet(VNI, '198.19.0.99', MAC_B, ep('198.18.0.2')));

  const found = rec.run();
  assert.deepEqual(found.fdb, { missing: 1, stale: 1, wrong_host: 1, wrong_mac: 0 });
  assert.deepEqual(found.neigh, { missing: 1, stale: 1, wrong_host: 0, wrong_mac: 1 });
  const peerOf = (mac: string) => (entry(dp, mac)?.peer as { label?: string } | null | undefined)?.label;
  assert.equal(entry(dp, MAC_B)?.kind, 'static');
  assert.equal(peerOf(MAC_B), '198.18.0.2:4789');
  assert.equal(peerOf(MAC_C), '198.18.0.3:4789', 'pointed back at its announcer');
  assert.equal(entry(dp, '02:00:00:00:0e:01'), undefined, 'stale entry deleted');
  const neigh = new Map(n.neigh.entries().map((e) => [e.ip, e.mac]));
  assert.equal(neigh.get('198.19.0.22'), MAC_B2);
  assert.equal(neigh.get('198.19.0.3'), MAC_C);
  assert.equal(neigh.has('198.19.0.99'), false);
  // Repaired entries carry their announcer as owner: gossip can still delete them.
  assert.equal(n.neigh.delete('198.19.0.3', peerKeyOfEndpoint(ep('198.18.0.3'))), 'deleted');
  assert.ok(dp.neighSet(VNI, '198.19.0.3', MAC_C, ep('198.18.0.3')));
  assert.ok(dp.fdbDelete(VNI, MAC_C, ep('198.18.0.3')), 'c owns its repaired FDB entry');
  assert.ok(dp.fdbSetRemote(VNI, MAC_C, ep('198.18.0.3'), ep('198.18.0.3')));

  assert.deepEqual(rec.run().fdb, { missing: 0, stale: 0, wrong_host: 0, wrong_mac: 0 }, 'nothing left to repair');
  assert.deepEqual(rec.mismatches.fdb, { missing: 1, stale: 1, wrong_host: 1, wrong_mac: 0 }, 'totals accumulate');
  assert.deepEqual(rec.mismatches.neigh, { missing: 1, stale: 1, wrong_host: 0, wrong_mac: 1 });
  await stop();
});

test('reconcile: runs every intervalMs on the injected clock; a learned (remote) entry for an announced MAC becomes static again', async () => {
  const { clock, dp, rec, stop } = await setup();
  const n = blue(dp);
  const peerB = entry(dp, MAC_B2)!.peer!;
  n.fdb.delete(Number.parseInt(MAC_B.replace(/:/g, ''), 16));
  // Learned from traffic (what the data path does on receive), pointing at the right host.
  n.fdb.learnRemote(0x0200, 0x00000b01, peerB);
  assert.equal(entry(dp, MAC_B)?.kind, 'remote');
  rec.start();
  clock.advance(29_000);
  assert.equal(rec.runs, 0);
  clock.advance(1_000);
  assert.equal(rec.runs, 1);
  assert.equal(rec.mismatches.fdb.missing, 1);
  assert.equal(entry(dp, MAC_B)?.kind, 'static');
  clock.advance(30_000);
  assert.equal(rec.runs, 2);
  assert.equal(rec.mismatches.fdb.missing, 1, 'repaired once, not again');
  rec.stop();
  clock.advance(60_000);
  assert.equal(rec.runs, 2, 'stopped');
  await stop();
});

test('the observe extension\'s metric families are documented in docs/metrics.md and render', async () => {
  const { Registry } = await import('prom-client');
  const { ObserveExtension } = await import('../../src/observe/extension');
  const fs = await import('node:fs');
  const path = await import('node:path');
  const registry = new Registry();
  const ext = new ObserveExtension(config(), nullLogger);
  ext.connect({ gossip: null, registry });
  const names = registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name);
  assert.equal(names.length, 8);
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'metrics.md'), 'utf8');
  for (const n of names) assert.ok(doc.includes('`' + n + '`'), `${n} is not documented`);
  const { rec, stop } = await setup();
  (ext as unknown as { reconciler: Reconciler }).reconciler = rec;
  rec.run();
  const text = await registry.metrics();
  assert.match(text, /vxmesh_reconcile_mismatches_total\{table="fdb",kind="wrong_host"\} 0/);
  assert.match(text, /vxmesh_reconcile_mismatches_total\{table="neigh",kind="wrong_mac"\} 0/);
  assert.doesNotMatch(text, /table="neigh",kind="wrong_host"/);
  assert.match(text, /vxmesh_reconcile_runs_total 1/);
  // the all-hosts histogram renders from the origin's observations
  const { ConvergenceObserver } = await import('../../src/observe/convergence');
  const obs = new ConvergenceObserver({ gossip: null as never, clock: null as never, networkOf: () => 'blue' });
  obs.allHistograms.set('blue', { network: 'blue', counts: [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], sum: 0.3, count: 1 });
  obs.incomplete = 2;
  (ext as unknown as { convergence: typeof obs }).convergence = obs;
  const text2 = await registry.metrics();
  assert.match(text2, /vxmesh_endpoint_convergence_all_seconds_bucket\{network="blue",le="0\.25"\} 0/);
  assert.match(text2, /vxmesh_endpoint_convergence_all_seconds_bucket\{network="blue",le="0\.5"\} 1/);
  assert.match(text2, /vxmesh_endpoint_convergence_all_seconds_count\{network="blue"\} 1/);
  assert.match(text2, /vxmesh_endpoint_convergence_all_incomplete_total 2/);
  await stop();
});
