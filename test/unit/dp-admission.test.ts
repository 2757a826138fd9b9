/**
 * Admission (src/dataplane/admission.ts): the known-host set, `acceptFrom` (known / any / CIDRs,
 * IPv4 and IPv6), replacement of the known set (a member that leaves is refused), CIDR parsing
 * with its error kinds, and lookups against a large set.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ADMIT_KNOWN, ADMIT_OPEN, ADMIT_REFUSED, AcceptTable, MAX_ACCEPT_CIDRS, cidrOrThrow, parseCidr,
} from '../../src/dataplane/admission';
import { ADDR_LEN, endpointToRecord } from '../../src/dataplane/addr';

const v4 = (address: string, port = 4789) => ({ address, port, family: 4 as const });
const v6 = (address: string, port = 4789) => ({ address, port, family: 6 as const });
/** A receive-batch-like buffer: `eps` as records at 18-byte strides, offset by one record. */
function records(...eps: ReturnType<typeof v4 | typeof v6>[]): Buffer {
  const b = Buffer.alloc((eps.length + 1) * ADDR_LEN, 0xaa);
  eps.forEach((ep, i) => endpointToRecord(ep).copy(b, (i + 1) * ADDR_LEN));
  return b;
}
const at = (i: number) => (i + 1) * ADDR_LEN;

describe('admission: known hosts', () => {
  it('admits known hosts whatever the source port, refuses others (default acceptFrom: known)', () => {
    const t = new AcceptTable();
    t.setKnownEndpoints([v4('198.18.0.2'), v4('198.18.0.3'), v6('2001:2::5')]);
    assert.equal(t.knownCount, 3);
    const b = records(v4('198.18.0.2', 40001), v4('198.18.0.3', 4789), v4('198.18.0.4'), v6('2001:2::5', 1), v6('2001:2::6'), v4('198.19.0.2'));
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => t.check(b, at(i))), [ADMIT_KNOWN, ADMIT_KNOWN, ADMIT_REFUSED, ADMIT_KNOWN, ADMIT_REFUSED, ADMIT_REFUSED]);
  });

  it('an empty table refuses everybody', () => {
    const t = new AcceptTable('known');
    const b = records(v4('198.18.0.2'), v6('::1'));
    assert.equal(t.check(b, at(0)), ADMIT_REFUSED);
    assert.equal(t.check(b, at(1)), ADMIT_REFUSED);
  });

  it('replacing the known set drops a host that left, adds one that joined', () => {
    const t = new AcceptTable();
    t.setKnownEndpoints([v4('198.18.0.2'), v4('198.18.0.3')]);
    const b = records(v4('198.18.0.2'), v4('198.18.0.3'), v4('198.18.0.9'));
    t.setKnownEndpoints([v4('198.18.0.3'), v4('198.18.0.9')]);
    assert.deepEqual([0, 1, 2].map((i) => t.check(b, at(i))), [ADMIT_REFUSED, ADMIT_KNOWN, ADMIT_KNOWN]);
    t.setKnownRecords([]);
    assert.equal(t.knownCount, 0);
    assert.equal(t.check(b, at(1)), ADMIT_REFUSED);
  });

  it('duplicates count once; records are read in place (the port bytes are ignored)', () => {
    const t = new AcceptTable();
    t.setKnownRecords([endpointToRecord(v4('198.18.0.2', 1)), endpointToRecord(v4('198.18.0.2', 2))]);
    assert.equal(t.knownCount, 1);
  });

  it('a large known set: every member found, 20,000 strangers refused', () => {
    const t = new AcceptTable();
    const eps = Array.from({ length: 5000 }, (_, i) => v4(`198.18.${i >> 8}.${i & 255}`));
    t.setKnownEndpoints(eps);
    assert.equal(t.knownCount, 5000);
    const b = Buffer.alloc(ADDR_LEN);
    for (let i = 0; i < 5000; i++) {
      endpointToRecord(eps[i]).copy(b, 0);
      assert.equal(t.check(b, 0), ADMIT_KNOWN);
    }
    for (let i = 0; i < 20000; i++) {
      endpointToRecord(v4(`198.19.${i >> 8}.${i & 255}`)).copy(b, 0);
      assert.equal(t.isKnown(b, 0), false);
    }
  });
});

describe('admission: acceptFrom', () => {
  it('any: unknown senders are let in as OPEN, known ones stay KNOWN', () => {
    const t = new AcceptTable('any');
    t.setKnownEndpoints([v4('198.18.0.2')]);
    const b = records(v4('198.18.0.2'), v4('198.19.255.1'), v6('2001:2::1'));
    assert.deepEqual([0, 1, 2].map((i) => t.check(b, at(i))), [ADMIT_KNOWN, ADMIT_OPEN, ADMIT_OPEN]);
    assert.equal(t.open, true);
  });

  it('IPv4 CIDRs: prefix boundaries, single hosts, /0', () => {
    const t = new AcceptTable(['198.18.0.0/15', '203.0.113.7']);
    const b = records(v4('198.18.0.0'), v4('198.19.255.255'), v4('198.20.0.0'), v4('198.17.255.255'), v4('203.0.113.7'), v4('203.0.113.8'));
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => t.check(b, at(i))), [ADMIT_OPEN, ADMIT_OPEN, ADMIT_REFUSED, ADMIT_REFUSED, ADMIT_OPEN, ADMIT_REFUSED]);
    t.setAcceptFrom(['0.0.0.0/0']);
    assert.equal(t.check(b, at(2)), ADMIT_OPEN);
    // an IPv4 /0 is still IPv4 only
    assert.equal(t.check(records(v6('2001:2::1')), at(0)), ADMIT_REFUSED);
  });

  it('IPv6 CIDRs: /48 and /127 boundaries', () => {
    const t = new AcceptTable(['2001:2::/48', '2001:2:1::fffe/127']);
    const b = records(v6('2001:2::1'), v6('2001:2:0:ffff:ffff:ffff:ffff:ffff'), v6('2001:2:1::1'), v6('2001:2:1::fffe'), v6('2001:2:1::ffff'), v6('2001:2:1::fffd'));
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => t.check(b, at(i))), [ADMIT_OPEN, ADMIT_OPEN, ADMIT_REFUSED, ADMIT_OPEN, ADMIT_OPEN, ADMIT_REFUSED]);
  });

  it('known hosts are admitted under any policy; switching policy keeps them', () => {
    const t = new AcceptTable(['203.0.113.0/24']);
    t.setKnownEndpoints([v4('198.18.0.2')]);
    const b = records(v4('198.18.0.2'), v4('203.0.113.1'));
    assert.deepEqual([t.check(b, at(0)), t.check(b, at(1))], [ADMIT_KNOWN, ADMIT_OPEN]);
    t.setAcceptFrom('known');
    assert.deepEqual([t.check(b, at(0)), t.check(b, at(1))], [ADMIT_KNOWN, ADMIT_REFUSED]);
    assert.equal(t.open, false);
    t.setAcceptFrom([]);
    assert.deepEqual(t.acceptFrom, 'known');
    t.setAcceptFrom(['203.0.113.0/24']);
    assert.deepEqual(t.describe(), { acceptFrom: ['203.0.113.0/24'], knownHosts: 1 });
  });

  it('bad policies throw (the loader reports them as config errors first)', () => {
    const t = new AcceptTable();
    assert.throws(() => t.setAcceptFrom(['198.18.0.1/15']), /did you mean 198\.18\.0\.0\/15/);
    assert.throws(() => t.setAcceptFrom(['nope']), TypeError);
    assert.throws(() => t.setAcceptFrom('all' as never), TypeError);
    assert.throws(() => t.setAcceptFrom(Array.from({ length: MAX_ACCEPT_CIDRS + 1 }, () => '198.18.0.0/15')), RangeError);
  });
});

describe('admission: parseCidr', () => {
  it('canonical text, family and length', () => {
    assert.deepEqual(pick(cidrOrThrow('198.18.0.0/15')), { text: '198.18.0.0/15', family: 4, length: 15 });
    assert.deepEqual(pick(cidrOrThrow(' 198.18.0.9 ')), { text: '198.18.0.9/32', family: 4, length: 32 });
    assert.deepEqual(pick(cidrOrThrow('2001:0002:0000::/48')), { text: '2001:2::/48', family: 6, length: 48 });
    assert.deepEqual(pick(cidrOrThrow('::/0')), { text: '::/0', family: 6, length: 0 });
    assert.deepEqual(pick(cidrOrThrow('0.0.0.0/0')), { text: '0.0.0.0/0', family: 4, length: 0 });
  });

  it('error kinds: syntax, length, host bits (with the network meant)', () => {
    assert.deepEqual(parseCidr('198.18.0.1/15'), { error: 'host_bits', hint: '198.18.0.0/15' });
    assert.deepEqual(parseCidr('2001:2::1/48'), { error: 'host_bits', hint: '2001:2::/48' });
    assert.deepEqual(parseCidr('198.18.0.0/33'), { error: 'length' });
    assert.deepEqual(parseCidr('2001:2::/129'), { error: 'length' });
    assert.deepEqual(parseCidr('198.18.0.0/015'), { error: 'length' });
    assert.deepEqual(parseCidr('198.18.0.0/'), { error: 'length' });
    assert.deepEqual(parseCidr('198.18.0/16'), { error: 'syntax' });
    assert.deepEqual(parseCidr('::ffff:198.18.0.0/120'), { error: 'syntax' });
    assert.deepEqual(parseCidr(''), { error: 'syntax' });
  });
});

function pick(c: { text: string; family: number; length: number }) {
  return { text: c.text, family: c.family, length: c.length };
}

// ---- the data path: admission before learning, live feed, acceptFrom, bounds ----------------------

import { FakeClock } from '../../src/clock';
import type { AcceptFrom, NetworkConfig } from '../../src/config/types';
import { Datapath } from '../../src/dataplane/datapath';
import { writeEthHeader, ETHERTYPE_IPV4 } from '../../src/dataplane/ethernet';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { writeVxlanHeader } from '../../src/dataplane/vxlan';

const BLUE = 42;
const RED = 43;
const GREEN = 44; // encrypted

function dpLab(opts: { blue?: AcceptFrom; maxLearnedPeers?: number; peers?: string[] } = {}) {
  const clock = new FakeClock(0);
  const reactor = new MemoryReactor();
  const net = new MemoryUdpNetwork({ reactor, clock });
  const udp = net.attach('198.18.0.1', 4789, 1);
  const cfg = (name: string, vni: number, acceptFrom?: AcceptFrom, encrypted = false): NetworkConfig =>
    ({ name, vni, bridge: `br-${name}`, tap: `vx-${name}`, mtu: 1450, encrypted, acceptFrom });
  const taps = new Map<number, MemoryTap>();
  const networks = [cfg('blue', BLUE, opts.blue), cfg('red', RED), cfg('green', GREEN, undefined, true)].map((config) => {
    const tap = new MemoryTap({ name: config.tap, mac: Buffer.from([2, 0xee, 0, 0, 0, config.vni]), reactor });
    taps.set(config.vni, tap);
    return { config, tap };
  });
  const dp = new Datapath({
    networks, udp, clock,
    underlay: { family: 4, mtu: 1500, port: 4789, address: '198.18.0.1' },
    peers: (opts.peers ?? ['198.18.0.2']).map((a) => v4(a)),
    fdb: { ageingSeconds: 300, maxEntries: 16384 },
    maxLearnedPeers: opts.maxLearnedPeers,
  });
  dp.start();
  let seq = 0;
  /** Plain VXLAN for `vni` from `from` (source port varies), inner source MAC `src`. */
  const send = (from: string, vni: number, src = 0x020000000000 + ++seq, sport = 40000 + (seq % 1000)) => {
    const d = Buffer.alloc(8 + 14 + 46);
    writeVxlanHeader(d, 0, vni);
    writeEthHeader(d, 8, 0xffffffffffff, src, ETHERTYPE_IPV4);
    udp.injectFrom(v4(from, sport), d);
  };
  const run = () => reactor.run();
  const counters = (vni: number) => dp.network(vni)!.counters;
  const delivered = (vni: number) => taps.get(vni)!.takeWritten().length;
  const peerLabels = () => dp.peerList().map((p) => p.label).sort();
  return { clock, dp, send, run, counters, delivered, peerLabels };
}

describe('admission in the data path', () => {
  it('a stranger\'s plain VXLAN is dropped as unknown_vtep before anything is learned; a static peer gets in', () => {
    const l = dpLab();
    for (let i = 0; i < 50; i++) l.send('198.18.0.9', BLUE);
    l.send('198.18.0.2', BLUE);
    l.run();
    const c = l.counters(BLUE);
    assert.equal(c.rxPackets, 51);
    assert.equal(c.rxDropCount('unknown_vtep'), 50);
    assert.equal(c.rxDelivered, 1);
    assert.equal(l.delivered(BLUE), 1);
    assert.equal(c.rxDelivered + c.totalRxDrops(), c.rxPackets);
    // no peer, no per-peer counters, no FDB entry for the stranger
    assert.deepEqual(l.peerLabels(), ['198.18.0.2:4789']);
    assert.equal(l.dp.network(BLUE)!.fdb.size, 1);
    assert.equal(l.dp.peerCounters().get('198.18.0.2:4789')!.rxPackets, 1);
  });

  it('gossip feed: a member serving the VNI is admitted on it only; once it dies or leaves it is refused', () => {
    const l = dpLab({ peers: [] });
    l.dp.setNetworkPeers(BLUE, [v4('198.18.0.5')]);
    l.dp.setNetworkPeers(RED, []);
    l.send('198.18.0.5', BLUE);
    l.send('198.18.0.5', RED);
    l.run();
    assert.equal(l.counters(BLUE).rxDelivered, 1);
    assert.equal(l.counters(RED).rxDropCount('unknown_vtep'), 1);
    // the member is gone (the gossip extension recomputes the lists on dead/left)
    l.dp.setNetworkPeers(BLUE, []);
    l.send('198.18.0.5', BLUE);
    l.run();
    assert.equal(l.counters(BLUE).rxDelivered, 1);
    assert.equal(l.counters(BLUE).rxDropCount('unknown_vtep'), 1);
    // back to the static peers (none here)
    l.dp.setNetworkPeers(BLUE, null);
    l.send('198.18.0.5', BLUE);
    l.run();
    assert.equal(l.counters(BLUE).rxDropCount('unknown_vtep'), 2);
  });

  it('removing a static peer refuses it from then on', () => {
    const l = dpLab({ peers: ['198.18.0.2', '198.18.0.3'] });
    l.dp.setStaticPeers([v4('198.18.0.3')]);
    l.send('198.18.0.2', BLUE);
    l.send('198.18.0.3', BLUE);
    l.run();
    assert.equal(l.counters(BLUE).rxDropCount('unknown_vtep'), 1);
    assert.equal(l.counters(BLUE).rxDelivered, 1);
  });

  it('acceptFrom CIDRs let a kernel VTEP in (learned as a peer), others stay out; setAcceptFrom applies live', () => {
    const l = dpLab({ blue: ['198.18.4.0/24'] });
    l.send('198.18.4.7', BLUE);
    l.send('198.18.5.7', BLUE);
    l.send('198.18.4.7', RED); // RED is `known`
    l.run();
    assert.equal(l.counters(BLUE).rxDelivered, 1);
    assert.equal(l.counters(BLUE).rxDropCount('unknown_vtep'), 1);
    assert.equal(l.counters(RED).rxDropCount('unknown_vtep'), 1);
    assert.deepEqual(l.peerLabels(), ['198.18.0.2:4789', '198.18.4.7:4789']);
    assert.equal(l.dp.setAcceptFrom(BLUE, 'known'), true);
    l.send('198.18.4.7', BLUE);
    l.run();
    assert.equal(l.counters(BLUE).rxDropCount('unknown_vtep'), 2);
    l.dp.setAcceptFrom(BLUE, 'any');
    l.send('198.18.5.7', BLUE);
    l.run();
    assert.equal(l.counters(BLUE).rxDelivered, 2);
    assert.equal(l.dp.setAcceptFrom(999, 'any'), false);
  });

  it('encrypted networks keep their own rule: plaintext is plaintext_on_encrypted, even from a peer', () => {
    const l = dpLab();
    l.send('198.18.0.2', GREEN);
    l.send('198.18.0.9', GREEN);
    l.run();
    assert.equal(l.counters(GREEN).rxDropCount('plaintext_on_encrypted'), 2);
    assert.equal(l.counters(GREEN).rxDropCount('unknown_vtep'), 0);
  });

  it('learned peers are bounded: 2,000 senders leave at most maxLearnedPeers, evictions counted, an active peer survives', () => {
    const l = dpLab({ blue: 'any', maxLearnedPeers: 16 });
    l.send('198.18.9.1', BLUE, 0x02aa00000001);
    l.run();
    for (let i = 0; i < 2000; i++) {
      l.send(`198.19.${i >> 8}.${i & 255}`, BLUE);
      l.send('198.18.9.1', BLUE, 0x02aa00000001); // keeps talking
      if (i % 32 === 31) l.run();
    }
    l.run();
    const labels = l.peerLabels();
    assert.ok(labels.length <= 1 + 16, `${labels.length} peers`);
    assert.ok(labels.includes('198.18.9.1:4789'), 'the active learned peer was kept');
    assert.ok(labels.includes('198.18.0.2:4789'), 'static peers are never evicted');
    assert.equal(l.dp.counters.peerEvictions, 2001 - 16);
    assert.equal(l.counters(BLUE).rxDelivered, 4001);
    assert.equal(l.dp.peerCounters().size, labels.length);
  });

  it('maxLearnedPeers defaults to config.underlay.maxLearnedPeers, else 1024', () => {
    const l = dpLab({ blue: 'any' });
    for (let i = 0; i < 1100; i++) l.send(`198.19.${i >> 8}.${i & 255}`, BLUE);
    l.run();
    assert.equal(l.dp.peerList().length, 1 + 1024);
    assert.equal(l.dp.counters.peerEvictions, 1100 - 1024);
  });

  it('a learned peer that becomes a gossip member is never evicted', () => {
    const l = dpLab({ blue: 'any', maxLearnedPeers: 2 });
    l.send('198.18.7.1', BLUE);
    l.run();
    l.dp.setNetworkPeers(BLUE, [v4('198.18.0.2'), v4('198.18.7.1')]);
    for (let i = 0; i < 50; i++) l.send(`198.19.0.${i}`, BLUE);
    l.run();
    assert.ok(l.peerLabels().includes('198.18.7.1:4789'));
    assert.ok(l.dp.peerList().length <= 2 + 2);
  });
});
