// The meaning of every metric: known frames through two Datapaths over the in-memory twins →
// known values in /metrics text; the per-network identity delivered + Σ drops = received, exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/clock';
import type { Endpoint, NetworkConfig } from '../../src/config/types';
import { Datapath } from '../../src/dataplane/datapath';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork, type MemoryUdp } from '../../src/dataplane/memory-io';
import { RX_DROP_REASONS, TX_DROP_REASONS } from '../../src/dataplane/counters';
import { VxmeshMetrics } from '../../src/metrics/registry';
import { LoopMonitor } from '../../src/metrics/loop';
import type { CryptoMetricsView, GossipMetricsView } from '../../src/metrics/sources';
import { parseExposition, select, sum, value, type Sample } from './ops-expo';
import { run, toolsSkip } from './ops-tools';

const mac = (s: string): Buffer => Buffer.from(s.split(':').map((h) => parseInt(h, 16)));
const A1 = mac('02:aa:00:00:00:01');
const A2 = mac('02:aa:00:00:00:02');
const B1 = mac('02:bb:00:00:00:01');
const TAP_A = mac('02:00:00:00:0a:01');
const TAP_B = mac('02:00:00:00:0b:01');
const BCAST = mac('ff:ff:ff:ff:ff:ff');

/** An Ethernet frame of `len` bytes with a local-experimental EtherType (nothing to snoop). */
function frame(dst: Buffer, src: Buffer, len = 60): Buffer {
  const b = Buffer.alloc(len, 0x5a);
  if (len >= 14) {
    dst.copy(b, 0);
    src.copy(b, 6);
    b.writeUInt16BE(0x88b5, 12);
  }
  return b;
}

function vxlan(vni: number, inner: Buffer, flags = 0x08, reserved1 = 0): Buffer {
  const h = Buffer.alloc(8);
  h[0] = flags;
  h[1] = reserved1;
  h.writeUIntBE(vni, 4, 3);
  return Buffer.concat([h, inner]);
}

function arpRequest(src: Buffer, senderIp: string, targetIp: string): Buffer {
  const b = Buffer.alloc(60);
  BCAST.copy(b, 0);
  src.copy(b, 6);
  b.writeUInt16BE(0x0806, 12);
  b.writeUInt16BE(1, 14); // Ethernet
  b.writeUInt16BE(0x0800, 16); // IPv4
  b[18] = 6;
  b[19] = 4;
  b.writeUInt16BE(1, 20); // request
  src.copy(b, 22);
  Buffer.from(senderIp.split('.').map(Number)).copy(b, 28);
  Buffer.from(targetIp.split('.').map(Number)).copy(b, 38);
  return b;
}

const net = (name: string, vni: number): NetworkConfig => ({ name, vni, bridge: `br-${name}`, tap: `vx-${name}`, mtu: 1450, encrypted: false });
const ep = (address: string): Endpoint => ({ address, port: 4789, family: 4 });

interface Host {
  dp: Datapath;
  udp: MemoryUdp;
  taps: Record<string, MemoryTap>;
  metrics: VxmeshMetrics;
  scrape(): Promise<Sample[]>;
}

function testbed() {
  const clock = new FakeClock();
  const reactor = new MemoryReactor();
  const wire = new MemoryUdpNetwork({ reactor, clock });
  const host = (address: string, tapMac: Buffer, peer: string): Host => {
    const udp = wire.attach(address, 4789, 1);
    const taps = {
      blue: new MemoryTap({ name: 'vx-blue', mac: tapMac, reactor }),
      red: new MemoryTap({ name: 'vx-red', mac: tapMac, reactor }),
    };
    const dp = new Datapath({
      networks: [{ config: net('blue', 42), tap: taps.blue }, { config: net('red', 43), tap: taps.red }],
      udp, clock, underlay: { family: 4, mtu: 1500, port: 4789, address }, peers: [ep(peer)],
    });
    dp.start();
    const metrics = new VxmeshMetrics({ defaultMetrics: false, loop: new LoopMonitor({ clock }) });
    metrics.attachDatapath(dp);
    return { dp, udp, taps, metrics, scrape: async () => parseExposition(await metrics.metrics()) };
  };
  const a = host('198.18.0.1', TAP_A, '198.18.0.2');
  const b = host('198.18.0.2', TAP_B, '198.18.0.1');
  return { clock, reactor, a, b };
}

const BLUE = { network: 'blue', vni: 42 };
const RED = { network: 'red', vni: 43 };

/** delivered + Σ drops = received, for every network in a scrape. */
function assertIdentity(s: Sample[]): void {
  for (const rx of select(s, 'vxmesh_network_rx_packets_total')) {
    const l = { network: rx.labels.network, vni: rx.labels.vni };
    const delivered = value(s, 'vxmesh_network_rx_delivered_packets_total', l);
    const drops = sum(s, 'vxmesh_network_rx_dropped_packets_total', l);
    assert.equal(delivered + drops, rx.value, `identity for ${l.network}: ${delivered} + ${drops} ≠ ${rx.value}`);
  }
}

test('outbound and inbound packet/byte counters per network and per peer', async () => {
  const { reactor, a, b } = testbed();
  for (let i = 0; i < 10; i++) a.taps.blue.inject(frame(B1, A1, 60));
  reactor.run();
  assert.equal(b.taps.blue.takeWritten().length, 10);

  let sa = await a.scrape();
  assert.equal(value(sa, 'vxmesh_network_tx_frames_total', BLUE), 10);
  assert.equal(value(sa, 'vxmesh_network_tx_frame_bytes_total', BLUE), 600);
  assert.equal(value(sa, 'vxmesh_network_tx_packets_total', BLUE), 10, 'one peer: flooded once each');
  assert.equal(value(sa, 'vxmesh_network_tx_bytes_total', BLUE), 680, 'UDP payload = 8 + 60');
  assert.equal(value(sa, 'vxmesh_network_tx_flooded_frames_total', BLUE), 10, 'B1 unknown: flooded');
  assert.equal(value(sa, 'vxmesh_network_tx_frames_total', RED), 0);
  assert.equal(value(sa, 'vxmesh_peer_tx_packets_total', { peer: '198.18.0.2:4789' }), 10);
  assert.equal(value(sa, 'vxmesh_peer_tx_bytes_total', { peer: '198.18.0.2:4789' }), 680);
  assert.equal(value(sa, 'vxmesh_fdb_entries', { ...BLUE, kind: 'local' }), 1, 'A1 learned as local');
  assert.equal(value(sa, 'vxmesh_fdb_entries', { ...BLUE, kind: 'remote' }), 0);
  assert.equal(value(sa, 'vxmesh_networks'), 2);
  assert.equal(value(sa, 'vxmesh_peers'), 1);

  let sb = await b.scrape();
  assert.equal(value(sb, 'vxmesh_rx_datagrams_total'), 10);
  assert.equal(value(sb, 'vxmesh_network_rx_packets_total', BLUE), 10);
  assert.equal(value(sb, 'vxmesh_network_rx_bytes_total', BLUE), 680);
  assert.equal(value(sb, 'vxmesh_network_rx_delivered_packets_total', BLUE), 10);
  assert.equal(value(sb, 'vxmesh_network_rx_delivered_bytes_total', BLUE), 600);
  assert.equal(sum(sb, 'vxmesh_network_rx_dropped_packets_total', BLUE), 0);
  assert.equal(value(sb, 'vxmesh_peer_rx_packets_total', { peer: '198.18.0.1:4789' }), 10);
  assert.equal(value(sb, 'vxmesh_peer_rx_bytes_total', { peer: '198.18.0.1:4789' }), 680);
  assert.equal(value(sb, 'vxmesh_fdb_entries', { ...BLUE, kind: 'remote' }), 1, 'A1 learned as remote behind A');
  assertIdentity(sb);

  // The reply is unicast (A1 is known on B): not flooded.
  for (let i = 0; i < 5; i++) b.taps.blue.inject(frame(A1, B1, 100));
  reactor.run();
  sb = await b.scrape();
  assert.equal(value(sb, 'vxmesh_network_tx_packets_total', BLUE), 5);
  assert.equal(value(sb, 'vxmesh_network_tx_flooded_frames_total', BLUE), 0);
  sa = await a.scrape();
  assert.equal(value(sa, 'vxmesh_network_rx_delivered_packets_total', BLUE), 5);
  assert.equal(value(sa, 'vxmesh_network_rx_delivered_bytes_total', BLUE), 500);
  assert.equal(value(sa, 'vxmesh_peer_rx_packets_total', { peer: '198.18.0.2:4789' }), 5);
  assert.equal(value(sa, 'vxmesh_fdb_entries', { ...BLUE, kind: 'remote' }), 1);
});

test('inbound drops: every reason counted once, global vs per network, identity exact', async () => {
  const { reactor, a, b } = testbed();
  const from = ep('198.18.0.1');
  const inject = (d: Buffer, n = 1) => { for (let i = 0; i < n; i++) b.udp.injectFrom(from, d); };
  // Dropped before the network is known (global).
  inject(Buffer.from([0x08, 0, 0, 0]), 3); // truncated
  inject(vxlan(42, frame(B1, A1), 0x00), 2); // no I flag
  inject(vxlan(42, frame(B1, A1), 0x08, 0x01)); // a reserved bit
  inject(vxlan(99, frame(B1, A1)), 4); // unknown VNI
  // Attributed to blue.
  inject(vxlan(42, frame(B1, A1, 10)), 2); // runt inner frame
  inject(vxlan(42, frame(B1, A1, 1500))); // > MTU 1450 + 14
  inject(vxlan(42, frame(B1, mac('01:00:5e:00:00:01'))), 2); // multicast source
  inject(vxlan(42, frame(B1, TAP_B))); // our own TAP's MAC as source
  inject(vxlan(42, frame(B1, A1, 80)), 3); // valid
  // Attributed to red: valid, but the TAP refuses the write (EAGAIN).
  b.taps.red.failNextWrites = 1;
  inject(vxlan(43, frame(B1, A2, 64)), 2);
  reactor.run();

  const s = await b.scrape();
  assert.equal(value(s, 'vxmesh_rx_datagrams_total'), 21);
  const global = (reason: string) => value(s, 'vxmesh_rx_dropped_datagrams_total', { reason });
  assert.equal(global('truncated'), 3);
  assert.equal(global('no_i_flag'), 2);
  assert.equal(global('reserved_bits'), 1);
  assert.equal(global('unknown_vni'), 4);
  const blue = (reason: string) => value(s, 'vxmesh_network_rx_dropped_packets_total', { ...BLUE, reason });
  assert.equal(blue('runt_frame'), 2);
  assert.equal(blue('oversize_frame'), 1);
  assert.equal(blue('bad_src_mac'), 2);
  assert.equal(blue('own_src_mac'), 1);
  assert.equal(value(s, 'vxmesh_network_rx_packets_total', BLUE), 9);
  assert.equal(value(s, 'vxmesh_network_rx_delivered_packets_total', BLUE), 3);
  assert.equal(value(s, 'vxmesh_network_rx_dropped_packets_total', { ...RED, reason: 'tap_write_failed' }), 2);
  assert.equal(value(s, 'vxmesh_network_rx_packets_total', RED), 2);
  assert.equal(value(s, 'vxmesh_network_rx_delivered_packets_total', RED), 0);
  // Every reason of the fixed set is exported for every network, 0 included: bounded, stable series.
  assert.deepEqual(select(s, 'vxmesh_network_rx_dropped_packets_total', BLUE).map((x) => x.labels.reason), [...RX_DROP_REASONS]);
  assert.deepEqual(select(s, 'vxmesh_rx_dropped_datagrams_total').map((x) => x.labels.reason), [...RX_DROP_REASONS]);
  assertIdentity(s);
  // Global identity: every datagram is either attributed to a network or dropped globally.
  assert.equal(sum(s, 'vxmesh_network_rx_packets_total') + sum(s, 'vxmesh_rx_dropped_datagrams_total'), value(s, 'vxmesh_rx_datagrams_total'));
  // Nothing malformed reached a TAP.
  assert.equal(b.taps.blue.takeWritten().length, 3);
  void a;
});

test('outbound drops by reason, flood accounting, local ARP answers', async () => {
  const { reactor, a, b } = testbed();
  a.taps.blue.inject(frame(B1, A1, 10)); // runt
  a.taps.blue.inject(frame(B1, A1, 1500)); // VXLAN packet would exceed the underlay MTU
  a.taps.blue.inject(frame(BCAST, A2, 60)); // learns A2 as local (flooded)
  a.taps.blue.inject(frame(A2, A1, 60)); // A2 is on this bridge: local_dst
  a.dp.setNetworkPeers(43, []); // red: no peer serves it
  a.taps.red.inject(frame(BCAST, A1, 60));
  a.dp.neighSet(42, '198.18.5.2', '02:bb:00:00:00:01');
  a.taps.blue.inject(arpRequest(A1, '198.18.5.1', '198.18.5.2')); // answered on the host
  reactor.run();
  const s = await a.scrape();
  const drop = (l: Record<string, string | number>, reason: string) => value(s, 'vxmesh_network_tx_dropped_frames_total', { ...l, reason });
  assert.equal(drop(BLUE, 'runt_frame'), 1);
  assert.equal(drop(BLUE, 'oversize_frame'), 1);
  assert.equal(drop(BLUE, 'local_dst'), 1);
  assert.equal(drop(RED, 'no_peers'), 1);
  assert.deepEqual(select(s, 'vxmesh_network_tx_dropped_frames_total', BLUE).map((x) => x.labels.reason), [...TX_DROP_REASONS]);
  assert.equal(value(s, 'vxmesh_network_tx_frames_total', BLUE), 5);
  assert.equal(value(s, 'vxmesh_network_tx_packets_total', BLUE), 1, 'only the broadcast left the host');
  assert.equal(value(s, 'vxmesh_network_tx_flooded_frames_total', BLUE), 1);
  assert.equal(value(s, 'vxmesh_network_neigh_answered_total', BLUE), 1);
  assert.equal(value(s, 'vxmesh_network_neigh_answered_total', RED), 0);
  assert.equal(value(s, 'vxmesh_fdb_entries', { ...BLUE, kind: 'local' }), 2);
  const reply = a.taps.blue.takeWritten();
  assert.equal(reply.length, 1, 'the ARP reply went back to the bridge');
  void b;
});

test('batch sizes: histogram of packets per I/O call, batches counted', async () => {
  const { reactor, a, b } = testbed();
  for (let i = 0; i < 10; i++) a.taps.blue.inject(frame(B1, A1));
  reactor.run();
  const s = await a.scrape();
  const bucket = (io: string, le: string) => value(s, 'vxmesh_io_batch_size_bucket', { io, le });
  assert.equal(bucket('tap_read', '8'), 0);
  assert.equal(bucket('tap_read', '16'), 1, 'ten frames read in one call');
  assert.equal(bucket('tap_read', '+Inf'), 1);
  assert.equal(value(s, 'vxmesh_io_batch_size_count', { io: 'tap_read' }), 1);
  assert.equal(value(s, 'vxmesh_io_batch_size_sum', { io: 'tap_read' }), 10);
  assert.equal(value(s, 'vxmesh_io_batch_size_sum', { io: 'udp_send' }), 10);
  assert.equal(value(s, 'vxmesh_io_batches_total', { io: 'tap' }), 1);
  const sb = await b.scrape();
  assert.equal(value(sb, 'vxmesh_io_batch_size_sum', { io: 'udp_recv' }), 10);
  assert.equal(value(sb, 'vxmesh_io_batch_size_sum', { io: 'tap_write' }), 10);
  assert.equal(value(sb, 'vxmesh_io_batches_total', { io: 'udp' }), value(sb, 'vxmesh_io_batch_size_count', { io: 'udp_recv' }));
  // Buckets are cumulative and end at the count.
  const les = select(s, 'vxmesh_io_batch_size_bucket', { io: 'tap_read' }).map((x) => x.value);
  for (let i = 1; i < les.length; i++) assert.ok(les[i] >= les[i - 1]);
});

test('a removed network\'s series disappear at the next scrape', async () => {
  const { a } = testbed();
  assert.equal(select(await a.scrape(), 'vxmesh_network_rx_packets_total', RED).length, 1);
  a.dp.removeNetwork(43);
  const s = await a.scrape();
  assert.equal(select(s, 'vxmesh_network_rx_packets_total', RED).length, 0);
  assert.equal(select(s, 'vxmesh_network_tx_dropped_frames_total', RED).length, 0);
  assert.equal(select(s, 'vxmesh_fdb_entries', RED).length, 0);
  assert.equal(value(s, 'vxmesh_networks'), 1);
});

test('gossip and crypto views map to their families; absent sources export nothing', async () => {
  const m = new VxmeshMetrics({ defaultMetrics: false });
  let s = parseExposition(await m.metrics());
  assert.equal(select(s, 'vxmesh_gossip_members').length, 0);
  assert.equal(select(s, 'vxmesh_peer_rtt_seconds').length, 0);
  assert.equal(select(s, 'vxmesh_crypto_handshakes_total').length, 0);
  assert.equal(select(s, 'vxmesh_network_rx_packets_total').length, 0);

  const gossip: GossipMetricsView = {
    membersByState: () => ({ alive: 4, suspect: 1, dead: 1, left: 0 }),
    counters: () => ({ probes: 120, probesFailed: 3, indirectProbes: 5, suspicions: 2, messagesIn: 400, messagesOut: 390, bytesIn: 40_000, bytesOut: 39_000, pushPulls: 7, rejected: { wrong_key: 9, malformed: 1 } }),
    rtts: () => [{ peer: 'host-b', seconds: 0.0012 }, { peer: 'host-c', seconds: 0.0034 }],
    joined: () => true,
  };
  const crypto: CryptoMetricsView = {
    counters: () => ({ handshakes: { initiated: 6, completed: 5, failed: 1 }, failures: { auth: 3, replay: 2 } }),
    sessions: () => 5,
  };
  m.attachGossip(() => gossip);
  m.attachCrypto(crypto);
  m.recordReload(true, 1_700_000_000);
  m.recordReload(false);
  m.setReady(() => true);
  m.setInfo({ version: '1.2.3', node: 'host-a' });
  s = parseExposition(await m.metrics());
  assert.equal(value(s, 'vxmesh_gossip_members', { state: 'alive' }), 4);
  assert.equal(value(s, 'vxmesh_gossip_members', { state: 'suspect' }), 1);
  assert.equal(value(s, 'vxmesh_gossip_members', { state: 'dead' }), 1);
  assert.equal(value(s, 'vxmesh_gossip_members', { state: 'left' }), 0);
  assert.equal(value(s, 'vxmesh_gossip_joined'), 1);
  assert.equal(value(s, 'vxmesh_gossip_probes_total'), 120);
  assert.equal(value(s, 'vxmesh_gossip_probe_failures_total'), 3);
  assert.equal(value(s, 'vxmesh_gossip_indirect_probes_total'), 5);
  assert.equal(value(s, 'vxmesh_gossip_suspicions_total'), 2);
  assert.equal(value(s, 'vxmesh_gossip_push_pulls_total'), 7);
  assert.equal(value(s, 'vxmesh_gossip_messages_total', { direction: 'in' }), 400);
  assert.equal(value(s, 'vxmesh_gossip_messages_total', { direction: 'out' }), 390);
  assert.equal(value(s, 'vxmesh_gossip_bytes_total', { direction: 'in' }), 40_000);
  assert.equal(value(s, 'vxmesh_gossip_rejected_packets_total', { reason: 'wrong_key' }), 9);
  assert.equal(value(s, 'vxmesh_peer_rtt_seconds', { peer: 'host-c' }), 0.0034);
  assert.equal(value(s, 'vxmesh_crypto_handshakes_total', { result: 'failed' }), 1);
  assert.equal(value(s, 'vxmesh_crypto_failures_total', { reason: 'replay' }), 2);
  assert.equal(value(s, 'vxmesh_crypto_sessions'), 5);
  assert.equal(value(s, 'vxmesh_config_reloads_total', { result: 'ok' }), 1);
  assert.equal(value(s, 'vxmesh_config_reloads_total', { result: 'refused' }), 1);
  assert.equal(value(s, 'vxmesh_config_last_reload_success_timestamp_seconds'), 1_700_000_000);
  assert.equal(value(s, 'vxmesh_ready'), 1);
  assert.equal(value(s, 'vxmesh_info', { version: '1.2.3', node: 'host-a' }), 1);
  m.stop();
});

test('event-loop delay: windowed figures, and a blocked loop reads as stalled', async () => {
  const loop = new LoopMonitor({ windowMs: 60_000, resolutionMs: 10, stallMs: 100 });
  loop.start();
  try {
    assert.equal(loop.stalled().stalled, false);
    // The sampler's first tick only sets its reference point: let a few ticks pass first.
    await new Promise((r) => setTimeout(r, 50));
    const until = Date.now() + 300;
    while (Date.now() < until) { /* block the loop for 300 ms */ }
    await new Promise((r) => setTimeout(r, 30)); // let the sampling timer record the delay
    const v = loop.stalled();
    assert.equal(v.stalled, true, `max delay ${v.maxDelayMs} ms`);
    assert.ok(v.maxDelayMs >= 200);
    loop.rotate();
    const s = loop.stats();
    assert.ok(s.max >= 0.2 && s.max >= s.p99 && s.p99 >= s.p50, JSON.stringify(s));
    const m = new VxmeshMetrics({ defaultMetrics: false, loop });
    const samples = parseExposition(await m.metrics());
    assert.equal(value(samples, 'vxmesh_event_loop_delay_seconds', { stat: 'max' }), s.max);
    assert.deepEqual(select(samples, 'vxmesh_event_loop_delay_seconds').map((x) => x.labels.stat), ['p50', 'p90', 'p99', 'max', 'mean']);
  } finally {
    loop.stop();
  }
});

test('promtool check metrics accepts the full exposition (default process metrics included)', { skip: toolsSkip('promtool') }, async () => {
  const { reactor, a } = testbed();
  for (let i = 0; i < 3; i++) a.taps.blue.inject(frame(B1, A1));
  reactor.run();
  const m = new VxmeshMetrics({ defaultMetrics: true });
  m.attachDatapath(a.dp);
  m.start();
  try {
    const text = await m.metrics();
    assert.match(text, /^process_cpu_seconds_total /m);
    assert.match(text, /^nodejs_heap_size_used_bytes /m);
    const r = run('promtool', ['check', 'metrics'], { input: text });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  } finally {
    m.stop();
  }
});

test('TAP queue drops: the kernel counter of each TAP that can tell, absent for one that cannot', async () => {
  const { a } = testbed();
  let dropped = 7;
  (a.taps.blue as unknown as { queueDrops(): number | null }).queueDrops = () => dropped;
  (a.taps.red as unknown as { queueDrops(): number | null }).queueDrops = () => null; // sysfs unreadable
  let s = await a.scrape();
  assert.equal(value(s, 'vxmesh_network_tap_queue_dropped_frames_total', BLUE), 7);
  assert.deepEqual(select(s, 'vxmesh_network_tap_queue_dropped_frames_total', RED), []);
  dropped = 9;
  s = await a.scrape();
  assert.equal(value(s, 'vxmesh_network_tap_queue_dropped_frames_total', BLUE), 9);
});
