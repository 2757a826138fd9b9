/**
 * Convergence telemetry (src/observe/convergence.ts) over three gossip extensions on the memory
 * transport and a FakeClock: an endpoint that appears on host a is observed by b and c as
 * `learned − born` (their wall clocks), exactly, in the right bucket; a host whose clock is ahead
 * sees it larger by its offset, one behind gets 0 and counts `negative`; endpoints present at start
 * are not observed; the `born` section is bounded by its window; a malformed section is ignored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from '../../src/agent/agent';
import { FakeClock } from '../../src/clock';
import type { Config } from '../../src/config/types';
import { GossipExtension } from '../../src/gossip/extension';
import { sodiumReady } from '../../src/gossip/keyring';
import { MemoryNetwork } from '../../src/gossip/memory-transport';
import { seededRng } from '../../src/gossip/rng';
import { nullLogger } from '../../src/log';
import { ACK_SECTION, BORN_SECTION, CONVERGENCE_BUCKETS, ConvergenceObserver, parseAcks, parseBorn } from '../../src/observe/convergence';

const KEY = new Uint8Array(32).fill(4);
const VNI = 42;
const WALL0 = 1_790_000_000_000; // a Unix time in ms: wall clock = WALL0 + clock + offset

function config(name: string, addr: string, seed: string | null): Config {
  return {
    node: { name, keyFile: null },
    underlay: { address: addr, family: 4, port: 4789, mtu: 1500, sourcePorts: 1 },
    networks: [{ name: 'blue', vni: VNI, bridge: 'br0', tap: 'vx-blue', mtu: 1450, encrypted: false }],
    peers: [], fdb: { ageingSeconds: 300, maxEntries: 1000 },
    gossip: { port: 7946, address: addr, seeds: seed ? [{ address: seed, port: 7946, family: 4 }] : [], keyFile: null, profile: 'test' },
    api: { listen: { host: '127.0.0.1', port: 0 } }, log: { level: 'error' }, source: null,
  };
}

class Dp {
  network(vni: number) { return vni === VNI ? { config: { vni } } : undefined; }
  networks() { return []; }
  fdbSetRemote() { return true; }
  fdbDelete() { return true; }
  fdbRemoveByPeer() { return 0; }
  neighSet() { return true; }
  neighDelete() { return true; }
  setNetworkPeers() { return true; }
  localEndpoints() { return []; }
  localVersion() { return 0; }
}

/** A host's bridge as the observer sees it: MACs the test puts there. */
class Bridge {
  macs: string[] = [];
  v = 0;
  add(mac: string): void { this.macs.push(mac); this.v++; }
  view() { return { version: () => String(this.v), endpoints: () => this.macs.map((mac) => ({ vni: VNI, mac })) }; }
}

async function cluster(offsets: number[], opts: { windowMs?: number; maxStamps?: number; maxAcks?: number; atStart?: string[] } = {}) {
  await sodiumReady();
  const clock = new FakeClock(0);
  const net = new MemoryNetwork({ clock, rng: seededRng(21) });
  const hosts: { ext: GossipExtension; obs: ConvergenceObserver; bridge: Bridge; wall: () => number; firstSeen: Map<string, number> }[] = [];
  for (let i = 0; i < offsets.length; i++) {
    const addr = `198.18.0.${i + 1}`;
    const ext = new GossipExtension(config(String.fromCharCode(97 + i), addr, i === 0 ? null : '198.18.0.1'), nullLogger, { transport: net.attach(`${addr}:7946`), keys: [KEY], clock });
    await ext.start({ clock, datapath: new Dp(), extensions: [], api: null } as unknown as Agent);
    const bridge = new Bridge();
    if (i === 0) for (const m of opts.atStart ?? []) bridge.add(m);
    const wall = () => WALL0 + clock.now() + offsets[i];
    const obs = new ConvergenceObserver({
      gossip: ext, clock, wallNow: wall, networkOf: (vni) => (vni === VNI ? 'blue' : null), local: () => bridge.view(),
      windowMs: opts.windowMs, maxStamps: opts.maxStamps, maxAcks: opts.maxAcks, tickMs: 100,
    });
    // When did this host's gossip first carry each of a's endpoints (its wall clock)?
    const firstSeen = new Map<string, number>();
    ext.onMemberEvent((ev) => { if (ev.name === 'a') for (const e of ev.record.endpoints) if (!firstSeen.has(e.mac)) firstSeen.set(e.mac, wall()); });
    hosts.push({ ext, obs, bridge, wall, firstSeen });
  }
  clock.advance(3000); // joined
  for (const h of hosts) h.obs.start();
  const stop = async () => {
    for (const h of hosts) h.obs.stop();
    await Promise.all([...hosts.map((h) => h.ext.stop()), (async () => { for (let i = 0; i < 50; i++) { clock.advance(100); await Promise.resolve(); } })()]);
  };
  return { clock, hosts, stop };
}

/**
 * a's endpoint appears on its bridge; `announceAfterMs` later it is in a's record (gossip's own
 * poll of the bridge, 1 s by default; 0: announced at once, as an attach does).
 */
function appear(clock: FakeClock, h: { ext: GossipExtension; bridge: Bridge }, mac: string, announceAfterMs = 1000): void {
  h.bridge.add(mac);
  if (announceAfterMs) clock.advance(announceAfterMs);
  h.ext.setAnnouncedEndpoints('test', h.bridge.macs.map((m) => ({ vni: VNI, mac: m, ips: [] })));
}

function bornOf(h: { ext: GossipExtension }, mac: string): number | undefined {
  const s = h.ext.sections(BORN_SECTION).find((x) => x.self);
  return s ? parseBorn(s.data)?.get(`${VNI}|${mac}`) : undefined;
}

test('an endpoint born on a is observed once by b and c as learned − born, in its bucket', async () => {
  const { clock, hosts, stop } = await cluster([0, 0, 0]);
  const [a, b, c] = hosts;
  clock.advance(50);
  appear(clock, a, '02:00:00:00:0a:01');
  clock.advance(5000);
  const born = bornOf(a, '02:00:00:00:0a:01');
  assert.ok(born !== undefined, 'a publishes the stamp');
  assert.ok(born! >= WALL0 + 3050 && born! <= WALL0 + 3150, `stamped within one tick of its appearance (${born! - WALL0})`);
  for (const h of [b, c]) {
    const hist = h.obs.histograms.get('blue');
    assert.ok(hist, 'a histogram for network blue');
    assert.equal(hist!.count, 1);
    const expect: number = (h.firstSeen.get('02:00:00:00:0a:01')! - born!) / 1000;
    assert.ok(expect >= 0.9 && expect < 2, `learned after gossip announced it (${expect})`);
    assert.equal(hist!.sum, expect, 'exactly learned − born');
    const bucket = CONVERGENCE_BUCKETS.findIndex((x) => expect <= x);
    assert.equal(hist!.counts[bucket], 1);
  }
  assert.equal(a.obs.histograms.size, 0, 'the origin does not observe its own endpoints');
  clock.advance(5000);
  assert.equal(b.obs.histograms.get('blue')!.count, 1, 'observed once, not per record update');
  // Announced at once (attach): a fast receiver may learn it before the origin's next tick stamps
  // it; that is within one tick and observed as at most one tick, never as clock skew.
  const before = b.obs.histograms.get('blue')!.sum;
  appear(clock, a, '02:00:00:00:0a:0f', 0);
  clock.advance(5000);
  const hb = b.obs.histograms.get('blue')!;
  assert.equal(hb.count, 2);
  assert.ok(hb.sum - before <= 0.1 + 1e-9, `at most one tick (${hb.sum - before})`);
  assert.equal(b.obs.negative + c.obs.negative, 0);
  await stop();
});

test('clock skew: a receiver ahead sees more by its offset; one behind observes 0 and counts negative', async () => {
  const { clock, hosts, stop } = await cluster([0, 2500, -60_000]);
  const [a, b, c] = hosts;
  appear(clock, a, '02:00:00:00:0a:02');
  clock.advance(5000);
  const born = bornOf(a, '02:00:00:00:0a:02')!;
  const bh = b.obs.histograms.get('blue')!;
  assert.equal(bh.sum, (b.firstSeen.get('02:00:00:00:0a:02')! - born) / 1000);
  assert.ok(bh.sum > 2.5, 'includes b\'s 2.5 s offset');
  const ch = c.obs.histograms.get('blue')!;
  assert.equal(ch.count, 1);
  assert.equal(ch.sum, 0);
  assert.equal(c.obs.negative, 1);
  assert.equal(b.obs.negative, 0);
  await stop();
});

test('what members announce when a receiver starts is not observed', async () => {
  const { clock, hosts, stop } = await cluster([0, 0]);
  const [a] = hosts;
  appear(clock, a, '02:00:00:00:0a:07');
  clock.advance(100);
  // a late receiver (c) starts now: it learns a's endpoint at start, which is no convergence.
  const late = new ConvergenceObserver({ gossip: hosts[1].ext, clock, wallNow: () => WALL0 + clock.now(), networkOf: () => 'blue' });
  hosts[1].obs.stop();
  late.start();
  clock.advance(5000);
  assert.equal(late.histograms.size, 0);
  late.stop();
  await stop();
});

test('endpoints present when the origin started are not stamped; the born section keeps only the window and at most maxStamps', async () => {
  const { clock, hosts, stop } = await cluster([0, 0], { atStart: ['02:00:00:00:0a:00'], windowMs: 10_000, maxStamps: 2 });
  const [a, b] = hosts;
  appear(clock, a, '02:00:00:00:0a:03'); // the old one is in the record now too
  clock.advance(3000);
  assert.equal(bornOf(a, '02:00:00:00:0a:00'), undefined, 'restored at start: not new');
  assert.equal(b.obs.histograms.get('blue')!.count, 1, 'only the new endpoint is observed');
  assert.ok(b.obs.unstamped === 0);
  for (const m of ['02:00:00:00:0a:04', '02:00:00:00:0a:05']) appear(clock, a, m, 200);
  clock.advance(200);
  const data = a.ext.sections(BORN_SECTION).find((x) => x.self)!.data;
  assert.equal(parseBorn(data)!.size, 2, 'bounded by maxStamps (newest kept)');
  assert.equal(bornOf(a, '02:00:00:00:0a:03'), undefined, 'the oldest went');
  clock.advance(11_000);
  assert.deepEqual(a.ext.sections(BORN_SECTION).filter((x) => x.self), [], 'past the window: the section is withdrawn');
  await stop();
});

test('a malformed or foreign born section is ignored; learns that never get a stamp expire as unstamped', async () => {
  assert.equal(parseBorn('nope'), null);
  assert.equal(parseBorn('{"v":2,"e":[]}'), null);
  assert.deepEqual([...parseBorn('{"v":1,"e":[[42,"02:AA:00:00:00:01",5],["x",1,2],[1,2]]}')!], [['42|02:aa:00:00:00:01', 5]]);
  const { clock, hosts, stop } = await cluster([0, 0], { windowMs: 4000 });
  const [a, b] = hosts;
  a.obs.stop(); // a publishes no stamps (an older agent)
  a.ext.setSection(BORN_SECTION, '{"v":1,"e":[[42,"02:00:00:00:0a:09",garbage');
  a.ext.setAnnouncedEndpoints('test', [{ vni: VNI, mac: '02:00:00:00:0a:09', ips: [] }]);
  clock.advance(3000);
  assert.equal(b.obs.histograms.size, 0);
  clock.advance(5000);
  assert.equal(b.obs.unstamped, 1);
  await stop();
});

// ---- by every host (vxmesh_endpoint_convergence_all_seconds, on the origin) ----------------

test('by every host: the origin observes once max(acknowledged learn times) − born, when every live member serving the network has acknowledged', async () => {
  const { clock, hosts, stop } = await cluster([0, 700, 300]);
  const [a, b, c] = hosts;
  appear(clock, a, '02:00:00:00:0b:01');
  clock.advance(5000);
  const born = bornOf(a, '02:00:00:00:0b:01')!;
  // each receiver's acknowledgement is in its own record, with its learn time (its wall clock)
  for (const h of [b, c]) {
    const own = h.ext.sections(ACK_SECTION).find((x) => x.self);
    assert.ok(own, 'the receiver publishes its acks');
    const ack = parseAcks(own!.data)!.get(`a|${VNI}|02:00:00:00:0b:01`)!;
    assert.deepEqual(ack, { origin: 'a', key: `${VNI}|02:00:00:00:0b:01`, born, learned: h.firstSeen.get('02:00:00:00:0b:01')! });
  }
  const all = a.obs.allHistograms.get('blue');
  assert.ok(all, 'the origin observed the all-hosts time');
  assert.equal(all!.count, 1);
  const expect = (Math.max(b.firstSeen.get('02:00:00:00:0b:01')!, c.firstSeen.get('02:00:00:00:0b:01')!) - born) / 1000;
  assert.ok(expect > 0.7, `the latest learner (b, 0.7 s ahead) decides (${expect})`);
  assert.equal(all!.sum, expect, 'exactly max(learned) − born');
  assert.equal(all!.counts[CONVERGENCE_BUCKETS.findIndex((x) => expect <= x)], 1);
  assert.equal(b.obs.allHistograms.size + c.obs.allHistograms.size, 0, 'only the origin observes it');
  clock.advance(10_000);
  assert.equal(a.obs.allHistograms.get('blue')!.count, 1, 'once');
  assert.equal(a.obs.incomplete, 0);
  await stop();
});

test('by every host: one member that never acknowledges (an older agent) holds it back: incomplete once the window passes; after it leaves, the others suffice', async () => {
  const { clock, hosts, stop } = await cluster([0, 0, 0], { windowMs: 20_000 });
  const [a, b, c] = hosts;
  c.obs.stop(); // c learns endpoints but publishes no acks
  appear(clock, a, '02:00:00:00:0b:02');
  clock.advance(5000);
  assert.ok(parseAcks(b.ext.sections(ACK_SECTION).find((x) => x.self)!.data)!.size === 1, 'b acknowledged');
  assert.equal(a.obs.allHistograms.size, 0, 'c has not acknowledged: not observed');
  // an ack for a's endpoint in a record other than c's own does not speak for c; a forged one with
  // another born stamp (a reappearance) does not count either
  c.ext.setSection(ACK_SECTION, JSON.stringify({ v: 1, a: [['a', VNI, '02:00:00:00:0b:02', 1, WALL0]] }));
  clock.advance(2000);
  assert.equal(a.obs.allHistograms.size, 0, 'a wrong born stamp is no acknowledgement');
  clock.advance(20_000);
  assert.equal(a.obs.incomplete, 1, 'left the window unacknowledged by c');
  assert.deepEqual(b.ext.sections(ACK_SECTION).filter((x) => x.self), [], 'acks expire with the window');
  // c leaves: the next endpoint needs b only
  await Promise.all([c.ext.stop(), (async () => { for (let i = 0; i < 50; i++) { clock.advance(100); await Promise.resolve(); } })()]);
  assert.notEqual(a.ext.memberInfos().find((m) => m.name === 'c')?.state, 'alive', 'c left');
  appear(clock, a, '02:00:00:00:0b:03');
  clock.advance(5000);
  const all = a.obs.allHistograms.get('blue')!;
  assert.equal(all.count, 1);
  assert.equal(all.sum, (b.firstSeen.get('02:00:00:00:0b:03')! - bornOf(a, '02:00:00:00:0b:03')!) / 1000);
  await stop();
});

test('acks: a malformed ack section is ignored; the acks a host publishes are bounded by maxAcks (newest kept)', async () => {
  assert.equal(parseAcks('nope'), null);
  assert.equal(parseAcks('{"v":2,"a":[]}'), null);
  assert.deepEqual([...parseAcks('{"v":1,"a":[["a",42,"02:AA:00:00:00:01",5,7],["a",42,"x",5],[1,42,"m",1,2],["a",42,"m",null,2]]}')!],
    [['a|42|02:aa:00:00:00:01', { origin: 'a', key: '42|02:aa:00:00:00:01', born: 5, learned: 7 }]]);
  const { clock, hosts, stop } = await cluster([0, 0], { maxAcks: 2 });
  const [a, b] = hosts;
  for (const m of ['02:00:00:00:0b:04', '02:00:00:00:0b:05', '02:00:00:00:0b:06']) {
    appear(clock, a, m, 200);
    clock.advance(3000);
  }
  const acks = parseAcks(b.ext.sections(ACK_SECTION).find((x) => x.self)!.data)!;
  assert.deepEqual([...acks.values()].map((x) => x.key), [`${VNI}|02:00:00:00:0b:05`, `${VNI}|02:00:00:00:0b:06`]);
  assert.equal(a.obs.allHistograms.get('blue')!.count, 3, 'each acknowledged while it was published');
  await stop();
});
