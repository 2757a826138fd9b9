/**
 * Issue 10 defect 6: a host with many local endpoints (e.g. ~700 spoofed source MACs) must keep
 * announcing. A record larger than one datagram is cut into `alive part` broadcasts and
 * reassembled; no gossip datagram is ever larger than the packet budget (no IP fragments).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from '../../src/agent/agent';
import { FakeClock } from '../../src/clock';
import type { Config, Endpoint } from '../../src/config/types';
import {
  BC_ALIVE, BC_ALIVE_PART, CodecError, decodeBroadcast, encodeAlive, encodeBroadcast, LIMITS, splitAlive,
} from '../../src/gossip/codec';
import { tuningFor } from '../../src/gossip/config';
import { GossipExtension } from '../../src/gossip/extension';
import { Keyring, sodiumReady } from '../../src/gossip/keyring';
import { MemoryNetwork } from '../../src/gossip/memory-transport';
import { PartAssembler } from '../../src/gossip/part-assembler';
import type { EndpointRecord, NodeRecord } from '../../src/gossip/record';
import { seededRng } from '../../src/gossip/rng';
import { GossipNode } from '../../src/gossip/swim';
import { nullLogger } from '../../src/log';

const KEY = new Uint8Array(32).fill(7);

function endpoints(n: number, vni = 42): EndpointRecord[] {
  const out: EndpointRecord[] = [];
  for (let i = 0; i < n; i++) {
    const mac = `02:00:00:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
    out.push({ vni, mac, ips: [`10.${(i >> 8) & 0xff}.${i & 0xff}.1`, `fd00::${(i + 1).toString(16)}`] });
  }
  return out;
}

function record(n: number): NodeRecord {
  return {
    name: 'big', incarnation: 7, protocol: 1, gossip: '198.18.0.9:7946', underlay: '198.18.0.9:4789',
    vnis: [42], endpoints: endpoints(n), publicKey: '',
  };
}

test('codec: a record too large for a datagram is cut into parts that reassemble to the same record', () => {
  assert.throws(() => encodeBroadcast({ kind: BC_ALIVE, record: record(2100) }), RangeError, 'as one broadcast it cannot be sent at all');
  const r = record(2000);
  const full = encodeAlive(r);
  assert.ok(full.length > 60_000, `2,000 endpoints: ${full.length} bytes, sent alone that is ~45 IP fragments`);
  const parts = splitAlive(r.name, r.incarnation, full, 1354);
  assert.ok(parts.length > 40);
  for (const p of parts) assert.ok(p.length <= 1354, `part of ${p.length} bytes`);
  const asm = new PartAssembler();
  // out of order, with duplicates
  const order = parts.map((_, i) => i).reverse();
  let outcome = '';
  for (const i of [order[0], ...order]) {
    const bc = decodeBroadcast(parts[i], 0, parts[i].length);
    assert.equal(bc.kind, BC_ALIVE_PART);
    if (bc.kind !== BC_ALIVE_PART) return;
    outcome = asm.add(bc.name, bc.incarnation, bc.part, bc.parts, bc.data, 0);
  }
  assert.equal(outcome, 'complete');
  const whole = decodeBroadcast(asm.completed!, 0, asm.completed!.length);
  assert.equal(whole.kind, BC_ALIVE);
  if (whole.kind === BC_ALIVE) assert.deepEqual(whole.record, r);
  assert.equal(asm.size, 0);
  assert.equal(asm.heldBytes, 0);
  // a small record stays whole
  assert.equal(splitAlive('s', 1, encodeAlive(record(3)), 1354).length, 1);
});

test('codec: malformed parts are counted drops, never a crash', () => {
  const ok = encodeBroadcast({ kind: BC_ALIVE_PART, name: 'x', incarnation: 1, part: 0, parts: 2, data: new Uint8Array([1, 2]) });
  const reason = (b: Uint8Array): string => {
    try {
      decodeBroadcast(b, 0, b.length);
      return 'ok';
    } catch (e) {
      return e instanceof CodecError ? e.reason : 'crash';
    }
  };
  assert.equal(reason(ok), 'ok');
  assert.equal(reason(encodeBroadcast({ kind: BC_ALIVE_PART, name: 'x', incarnation: 1, part: 2, parts: 2, data: new Uint8Array([1]) })), 'bad_value');
  assert.equal(reason(encodeBroadcast({ kind: BC_ALIVE_PART, name: 'x', incarnation: 1, part: 0, parts: 1, data: new Uint8Array([1]) })), 'bad_value');
  assert.equal(reason(encodeBroadcast({ kind: BC_ALIVE_PART, name: 'x', incarnation: 1, part: 0, parts: LIMITS.maxParts + 1, data: new Uint8Array([1]) })), 'bad_value');
  assert.equal(reason(ok.subarray(0, ok.length - 2)), 'bad_length');
  for (let cut = 1; cut < ok.length - 2; cut++) assert.notEqual(reason(ok.subarray(0, cut)), 'crash');
});

test('part assembler: newer incarnation replaces, older is stale, bounded by count, bytes and age', () => {
  const a = new PartAssembler({ maxPending: 2, maxBytes: 100, ttlMs: 1000 });
  const d = new Uint8Array(10);
  assert.equal(a.add('m', 5, 0, 3, d, 0), 'stored');
  assert.equal(a.add('m', 5, 0, 3, d, 0), 'duplicate');
  assert.equal(a.add('m', 4, 1, 3, d, 0), 'stale');
  assert.equal(a.add('m', 5, 1, 4, d, 0), 'mismatch');
  assert.equal(a.add('m', 6, 1, 2, d, 0), 'stored');
  assert.equal(a.heldBytes, 10);
  assert.equal(a.add('n', 1, 0, 2, d, 10), 'stored');
  assert.equal(a.add('o', 1, 0, 2, d, 20), 'stored');
  assert.equal(a.size, 2, 'the oldest partial record was dropped');
  assert.equal(a.evicted, 1);
  assert.equal(a.add('p', 1, 0, 2, new Uint8Array(90), 30), 'stored');
  assert.equal(a.size as number, 2, 'bytes bound: the oldest partial record made room');
  assert.equal(a.heldBytes, 100);
  assert.equal(a.add('p', 1, 1, 3, new Uint8Array(200), 30), 'mismatch');
  assert.equal(a.add('r', 1, 0, 3, new Uint8Array(200), 30), 'dropped', 'a part larger than every bound is not kept');
  assert.equal(a.add('q', 1, 0, 2, d, 5000), 'stored');
  assert.equal(a.size, 1, 'expired by age');
});

const ep = (e: Endpoint): string => `${e.address}:${e.port}`;

class LocalDatapath {
  local: { mac: string; ipv4: string[]; ipv6: string[] }[] = [];
  version = 0;
  network(vni: number) { return vni === 42 ? { config: { vni } } : undefined; }
  networks() { return [{ config: { name: 'n42', vni: 42 }, fdb: { entries: () => [] } }]; }
  fdbSetRemote() { return true; }
  fdbDelete() { return true; }
  fdbRemoveByPeer() { return 0; }
  neighSet() { return true; }
  neighDelete() { return true; }
  setNetworkPeers(_vni: number, _eps: Endpoint[] | null) { void ep; return true; }
  localEndpoints(vni: number) { return vni === 42 ? this.local : []; }
  localVersion(vni: number) { return vni === 42 ? this.version : 0; }
}

function config(): Config {
  return {
    node: { name: 'self', keyFile: null },
    underlay: { address: '198.18.0.1', family: 4, port: 4789, mtu: 1500, sourcePorts: 1 },
    networks: [{ name: 'n42', vni: 42, bridge: 'br0', tap: 'vx-n42', mtu: 1450, encrypted: false }],
    peers: [],
    fdb: { ageingSeconds: 300, maxEntries: 20000 },
    gossip: { port: 7946, address: '198.18.0.1', seeds: [{ address: '198.18.0.2', port: 7946, family: 4 }], keyFile: null, profile: 'test' },
    api: { listen: { host: '127.0.0.1', port: 0 } },
    log: { level: 'error' },
    source: null,
  };
}

test('2,000 local endpoints are all announced over gossip datagrams, none larger than the packet budget', async () => {
  await sodiumReady();
  const clock = new FakeClock();
  const net = new MemoryNetwork({ clock, rng: seededRng(5) });
  // Push-pull (which carries whole records over the stream transport) only for the join and the
  // part repair (a record still incomplete 5 s after its first part), so the record travels in
  // datagrams, parts and all.
  const tuning = { ...tuningFor('test'), pushPullIntervalMs: 1e9, reconnectIntervalMs: 1e9, partRepairMs: 5000 };
  let largest = 0;
  let datagrams = 0;
  net.onDeliver = (_from, _to, data) => {
    datagrams++;
    if (data.length > largest) largest = data.length;
  };
  const others = ['198.18.0.2', '198.18.0.3', '198.18.0.4'].map((addr, i) => {
    const n = new GossipNode({
      name: `r${i}`, transport: net.attach(`${addr}:7946`), keyring: new Keyring([KEY]), clock, tuning,
      underlay: `${addr}:4789`, vnis: [42], rng: seededRng(100 + i),
    });
    n.start();
    if (i > 0) n.join(['198.18.0.2:7946']);
    return n;
  });
  clock.advance(1000);
  const dp = new LocalDatapath();
  const agent = { clock, datapath: dp, extensions: [], api: null } as unknown as Agent;
  const ext = new GossipExtension(config(), nullLogger, { transport: net.attach('198.18.0.1:7946'), keys: [KEY], tuning, clock });
  await ext.start(agent);
  clock.advance(2000);
  for (const o of others) assert.equal(o.liveMembers, 4);

  // 2,000 containers (or spoofed source MACs) on our bridge, each with an IPv4 and an IPv6 address.
  dp.local = endpoints(2000).map((e) => ({ mac: e.mac, ipv4: [e.ips[0]], ipv6: [e.ips[1]] }));
  dp.version++;
  clock.advance(15_000);
  for (const o of others) {
    const r = o.member('self')!.record;
    assert.equal(r.endpoints.length, 2000, `${o.name} has all 2,000 endpoints`);
    assert.equal(r.incarnation, ext.node!.self.incarnation);
    assert.ok(o.stats.partRepairs <= 1);
  }
  assert.ok(largest <= tuning.packetBudget, `largest gossip datagram ${largest} bytes > ${tuning.packetBudget}`);
  assert.ok(datagrams > 100);

  // Again after a change (one endpoint gone), now with 20% packet loss: what the parts miss, the
  // repair fetches; the new record replaces the old one everywhere.
  net.loss = 0.2;
  dp.local = dp.local.slice(1);
  dp.version++;
  clock.advance(60_000);
  for (const o of others) assert.equal(o.member('self')!.record.endpoints.length, 1999);
  net.loss = 0;
  clock.advance(30_000);
  for (const o of others) {
    assert.equal(o.member('self')!.record.incarnation, ext.node!.self.incarnation);
    assert.equal(o.member('self')!.record.endpoints.length, 1999);
    assert.equal(o.parts.heldBytes, 0, 'nothing left half-assembled');
  }
  assert.ok(largest <= tuning.packetBudget, `largest gossip datagram ${largest} bytes`);

  const stopped = ext.stop();
  clock.advance(2000);
  await stopped;
  for (const o of others) void o.shutdown();
});
