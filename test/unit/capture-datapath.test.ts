/**
 * Issue 16 items 2-3, issue 19 item 4 on the in-memory data path: every drop is counted by peer
 * (Σ peers = the network's drops, per reason) and kept in its network's ring (or the global one
 * before the network is known) with the sender; the per-peer series name the busiest K and sum the
 * rest as `other`; a live session sees forwarded frames of its network in both directions, is
 * bounded (missed when full), and costs nothing when none is open; the watch's drop warnings name
 * the offending peer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIR_RX, DIR_TX, KIND_DATAGRAM, KIND_FRAME } from '../../src/capture/ring';
import { emitPeerDrops, namedRows } from '../../src/capture/metrics';
import { PEER_DROP_ROWS, RX_DROP_REASONS, TX_DROP_REASONS, rxDropIndex, txDropIndex, type NetworkCounters, type PeerDropTable } from '../../src/dataplane/counters';
import { recordToEndpoint, endpointToString } from '../../src/dataplane/addr';
import { AgentWatch } from '../../src/agent/watch';
import { createLogger } from '../../src/log';
import type { AgentSystem } from '../../src/agent/system';
import { BLUE, RED, cmac, ep, frame, lab, vx } from './dp-lab';

function peerIdentity(c: NetworkCounters): void {
  const t = c.peerDrops;
  RX_DROP_REASONS.forEach((r, i) => {
    let s = 0;
    for (let row = 0; row <= PEER_DROP_ROWS; row++) s += t.rx[row * RX_DROP_REASONS.length + i];
    assert.equal(s, c.rxDrops[i], `Σ peers rx ${r} = network rx ${r}`);
  });
  TX_DROP_REASONS.forEach((r, i) => {
    let s = 0;
    for (let row = 0; row <= PEER_DROP_ROWS; row++) s += t.tx[row * TX_DROP_REASONS.length + i];
    assert.equal(s, c.txDrops[i], `Σ peers tx ${r} = network tx ${r}`);
  });
}

const rowOf = (t: PeerDropTable, label: string) => t.labels.indexOf(label);
const epOf = (addr: Buffer | null) => (addr === null ? null : endpointToString(recordToEndpoint(addr, 0)));

describe('capture: drops by peer and in the rings', () => {
  it('oversize and runt from a known peer, unknown VNI from a stranger, a runt from the TAP: counted by peer, kept with reason and sender', () => {
    const { hosts, run } = lab({ hosts: 2 });
    const [A, B] = hosts;
    const big = frame(cmac(0, 1), cmac(1, 1), 1500);
    B.udp.injectFrom(ep(A.addr), vx(BLUE, big));
    B.udp.injectFrom(ep(A.addr), vx(BLUE, Buffer.alloc(10)));
    B.udp.injectFrom(ep('198.18.0.99', 40000), vx(999, frame(cmac(1, 2), cmac(9, 1))));
    B.tap(BLUE).inject(Buffer.alloc(8));
    run();
    const c = B.counters(BLUE);
    assert.equal(c.rxDropCount('oversize_frame'), 1);
    assert.equal(c.rxDropCount('runt_frame'), 1);
    assert.equal(c.txDropCount('runt_frame'), 1);
    const t = c.peerDrops;
    const row = rowOf(t, `${A.addr}:4789`);
    assert.ok(row >= 0, 'the sender has a row');
    assert.equal(t.rx[row * RX_DROP_REASONS.length + rxDropIndex.oversize_frame], 1);
    assert.equal(t.tx[PEER_DROP_ROWS * TX_DROP_REASONS.length + txDropIndex.runt_frame], 1, 'a TAP runt has no peer: other');
    peerIdentity(c);
    const ring = B.dp.capture.ring(B.dp.network(BLUE)!)!;
    const e = ring.entries();
    assert.deepEqual(e.map((x) => [x.dir, x.kind, x.reason]), [[DIR_RX, KIND_FRAME, rxDropIndex.oversize_frame], [DIR_RX, KIND_FRAME, rxDropIndex.runt_frame], [DIR_TX, KIND_FRAME, txDropIndex.runt_frame]]);
    assert.equal(e[0].origLen, big.length);
    assert.equal(e[0].data.length, B.dp.capture.snapLen, 'a bounded copy');
    assert.deepEqual(e[0].data, big.subarray(0, B.dp.capture.snapLen));
    assert.equal(epOf(e[0].addr), `${A.addr}:4789`);
    const g = B.dp.capture.global.entries();
    assert.equal(g.length, 1);
    assert.deepEqual([g[0].kind, g[0].reason, epOf(g[0].addr)], [KIND_DATAGRAM, rxDropIndex.unknown_vni, '198.18.0.99:40000']);
    assert.equal(B.dp.counters.peerDrops.rx[PEER_DROP_ROWS * RX_DROP_REASONS.length + rxDropIndex.unknown_vni], 1, 'a stranger: other');
  });

  it('a ring holds the last DROP_RING_FRAMES drops whatever the rate, and the identity holds', () => {
    const { hosts, run } = lab({ hosts: 2 });
    const [A, B] = hosts;
    const ring = B.dp.capture.ring(B.dp.network(BLUE)!)!;
    const bytes = ring.bytes;
    for (let i = 0; i < 1000; i++) B.udp.injectFrom(ep(A.addr), vx(BLUE, Buffer.alloc(10 + (i % 4))));
    run();
    assert.equal(ring.total, 1000);
    assert.equal(ring.size, ring.capacity);
    assert.equal(ring.bytes, bytes);
    assert.equal(ring.entries().at(-1)!.origLen, 10 + (999 % 4));
    peerIdentity(B.counters(BLUE));
  });

  it('per-peer series: the busiest K by name, the rest as peer="other"; zero cells not written', () => {
    const { hosts } = lab({ hosts: 2 });
    const [, B] = hosts;
    // 5 learned-looking senders are strangers (no peer): give B rows by dropping from known peers
    const t = B.counters(BLUE).peerDrops;
    for (let p = 0; p < 5; p++) for (let k = 0; k <= p; k++) t.countRx(t.row(1000 + p, `198.18.2.${p}:4789`), rxDropIndex.bad_src_mac, 1);
    assert.deepEqual([...namedRows(t, 2)].sort(), [3, 4]);
    const got: string[] = [];
    emitPeerDrops({ tables: () => [{ network: 'blue', vni: BLUE, table: t }], nodeName: (e) => (e === '198.18.2.4:4789' ? 'h9' : null) },
      (l, v) => got.push(`${l.peer} ${l.network} ${l.direction} ${l.reason} ${v}`), 2);
    assert.deepEqual(got.sort(), ['198.18.2.3:4789 blue rx bad_src_mac 4', 'h9 blue rx bad_src_mac 5', 'other blue rx bad_src_mac 6']);
  });
});

describe('capture: live sessions', () => {
  it('sees forwarded frames of its network both ways, only its network, bounded with missed counted; closed → nothing queued', () => {
    const { hosts, run } = lab({ hosts: 2 });
    const [A, B] = hosts;
    const hub = A.dp.capture;
    assert.equal(hub.live, false);
    const s = hub.open(BLUE, 3, 64, 0);
    assert.equal(hub.live, true);
    A.tap(BLUE).inject(frame(cmac(1, 1), cmac(0, 1)));      // A → B (flood: unknown destination)
    B.tap(BLUE).inject(frame(cmac(0, 1), cmac(1, 1)));      // B → A: delivered on A
    A.tap(RED).inject(frame(cmac(1, 1), cmac(0, 7)));       // another network: not captured
    run();
    const got = s.queue.take(10);
    assert.deepEqual(got.map((e) => e.dir), [DIR_TX, DIR_RX]);
    assert.equal(got[1].data.readUIntBE(6, 6), cmac(1, 1));
    for (let i = 0; i < 10; i++) A.tap(BLUE).inject(frame(cmac(1, 1), cmac(0, 1), 16 + i));
    run();
    assert.equal(s.queue.length, 3);
    assert.equal(s.queue.missed, 7, 'the data path never waits: frames beyond the queue are missed');
    assert.equal(A.counters(BLUE).txPackets, 11, 'every frame still forwarded');
    hub.close(s);
    assert.equal(hub.live, false);
    A.tap(BLUE).inject(frame(cmac(1, 1), cmac(0, 1)));
    run();
    assert.equal(s.queue.length, 3);
    assert.throws(() => { for (let i = 0; i < 5; i++) hub.open(BLUE, 1, 64, 0); }, /live captures are open already/);
  });

  it('--count: a session stops taking frames after K', () => {
    const { hosts, run } = lab({ hosts: 2 });
    const [A] = hosts;
    const s = A.dp.capture.open(BLUE, 100, 128, 2);
    for (let i = 0; i < 5; i++) A.tap(BLUE).inject(frame(cmac(1, 1), cmac(0, 1)));
    run();
    assert.equal(s.queue.length, 2);
    assert.equal(s.remaining, 0);
  });
});

describe('capture: drop warnings name the offending peer', () => {
  it('the watch\'s rate-limited warn names the sender by node name and a stranger by address; debug per peer; trace per flow', () => {
    const { hosts, run, clock } = lab({ hosts: 2 });
    const [A, B] = hosts;
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ level: 'trace', format: 'json', destination: { write: (s: string) => { lines.push(JSON.parse(s)); } } });
    const watch = new AgentWatch({ clock, logger, system: {} as AgentSystem, datapath: () => B.dp, networks: () => [], nodeName: (e) => (e === `${A.addr}:4789` ? 'h1' : null) }, { dropSummaryMs: 10_000 });
    for (let i = 0; i < 3; i++) B.udp.injectFrom(ep(A.addr), vx(BLUE, frame(cmac(0, 1), cmac(1, 1), 1500)));
    B.udp.injectFrom(ep('198.18.0.99', 40000), vx(999, frame(cmac(1, 2), cmac(9, 1))));
    run();
    clock.advance(10_000);
    watch.tick();
    const over = lines.find((l) => l.reason === 'oversize_frame' && l.level === 'warn')!;
    assert.ok(over, 'a warn for oversize_frame');
    assert.match(String(over.msg), /on network blue from h1 \(198\.18\.0\.1:4789\) ×3 in the last 10s/);
    assert.deepEqual(over.peers, [{ peer: 'h1', endpoint: '198.18.0.1:4789', dropped: 3 }]);
    const vni = lines.find((l) => l.reason === 'unknown_vni' && l.level === 'warn')!;
    assert.match(String(vni.msg), /from 198\.18\.0\.99:40000 in the last/);
    assert.ok(lines.some((l) => l.level === 'debug' && l.peer === 'h1' && /^drops by peer/.test(String(l.msg)) && (l.rx as Record<string, number>).oversize_frame === 3), 'debug: drops by peer');
    const flows = lines.filter((l) => l.level === 'trace' && l.msg === 'dropped frame');
    assert.equal(flows.length, 4);
    assert.match(String(flows.find((l) => l.reason === 'oversize_frame')!.flow), /02:00:00:00:01:01 > 02:00:00:00:00:01 198\.19\.0\.1 > 198\.19\.0\.2 udp 1000 > 2000/);
    // next window: nothing new → no record; rate limit keeps a new burst within the minute silent
    lines.length = 0;
    B.udp.injectFrom(ep(A.addr), vx(BLUE, frame(cmac(0, 1), cmac(1, 1), 1500)));
    run();
    clock.advance(10_000);
    watch.tick();
    assert.equal(lines.filter((l) => l.level === 'warn').length, 0, 'at most one warn per reason and network a minute');
    assert.equal(lines.filter((l) => l.level === 'trace' && l.msg === 'dropped frame').length, 1, 'only the window\'s new drops traced');
  });
});
