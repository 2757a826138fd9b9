/** Codec: round trips of every message, and strict rejection of malformed input (counted reasons, no crash). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BC_ALIVE, BC_DEAD, BC_SUSPECT, CodecError, decodeBroadcast, decodePacket, decodeStream, encodeBroadcast, encodePacket,
  encodeStream, LIMITS, PKT_ACK, PKT_GOSSIP, PKT_INDIRECT_PING, PKT_NACK, PKT_PING, STREAM_ACK, STREAM_PING, STREAM_PUSH,
  STREAM_REPLY, STREAM_REQUEST, StreamMsg, Writer, peekAlive,
} from '../../src/gossip/codec';
import { NodeRecord, ST_ALIVE, ST_DEAD, ST_LEFT, ST_SUSPECT } from '../../src/gossip/record';
import { parseAddr, formatAddr } from '../../src/gossip/addr';
import { seededRng } from '../../src/gossip/rng';

const rec: NodeRecord = {
  name: 'host-a',
  incarnation: 1_764_300_000,
  protocol: 1,
  gossip: '198.18.0.1:7946',
  underlay: '[2001:2::1]:4789',
  vnis: [42, 100, 16777215],
  endpoints: [
    { vni: 42, mac: '02:00:00:00:00:01', ips: ['198.19.0.1', '2001:2::a'] },
    { vni: 100, mac: 'aa:bb:cc:dd:ee:ff', ips: [] },
  ],
  publicKey: 'x'.repeat(44),
};

test('records round-trip through alive broadcasts (IPv4 and IPv6 addresses, all fields)', () => {
  const b = encodeBroadcast({ kind: BC_ALIVE, record: rec });
  const d = decodeBroadcast(b, 0, b.length);
  assert.equal(d.kind, BC_ALIVE);
  assert.deepEqual(d.kind === BC_ALIVE && d.record, rec);
  assert.deepEqual(peekAlive(b, 0, b.length), { name: 'host-a', incarnation: rec.incarnation });
});

test('suspect and dead broadcasts round-trip', () => {
  for (const kind of [BC_SUSPECT, BC_DEAD] as const) {
    const b = encodeBroadcast({ kind, name: 'n1', incarnation: 7, from: 'n2' });
    assert.deepEqual(decodeBroadcast(b, 0, b.length), { kind, name: 'n1', incarnation: 7, from: 'n2' });
  }
});

test('packets round-trip with piggybacked broadcasts', () => {
  const bcs = [encodeBroadcast({ kind: BC_ALIVE, record: rec }), encodeBroadcast({ kind: BC_DEAD, name: 'z', incarnation: 3, from: 'z' })];
  const msgs = [
    { type: PKT_PING, seq: 0xfffffffe, target: 'host-b', source: 'host-a' },
    { type: PKT_INDIRECT_PING, seq: 5, target: 'host-c', targetAddr: '198.18.0.3:7946', nack: true },
    { type: PKT_ACK, seq: 9 },
    { type: PKT_NACK, seq: 10 },
    { type: PKT_GOSSIP },
  ] as const;
  for (const m of msgs) {
    const p = encodePacket(m, bcs);
    const d = decodePacket(p);
    assert.deepEqual(d.msg, m);
    assert.equal(d.bcStarts.length, 2);
    const first = decodeBroadcast(p, d.bcStarts[0], d.bcEnds[0]);
    assert.deepEqual(first.kind === BC_ALIVE && first.record, rec);
  }
});

test('stream messages round-trip', () => {
  const req: StreamMsg = {
    type: STREAM_REQUEST, join: true, self: { state: ST_ALIVE, record: rec },
    digest: [{ name: 'a', incarnation: 1, state: ST_SUSPECT }, { name: 'b', incarnation: 2, state: ST_LEFT }],
  };
  assert.deepEqual(decodeStream(encodeStream(req)), req);
  const reply: StreamMsg = { type: STREAM_REPLY, entries: [{ state: ST_DEAD, record: rec }], want: ['a', 'b'] };
  assert.deepEqual(decodeStream(encodeStream(reply)), reply);
  const push: StreamMsg = { type: STREAM_PUSH, entries: [{ state: ST_ALIVE, record: rec }] };
  assert.deepEqual(decodeStream(encodeStream(push)), push);
  assert.deepEqual(decodeStream(encodeStream({ type: STREAM_PING, target: 'q' })), { type: STREAM_PING, target: 'q' });
  assert.deepEqual(decodeStream(encodeStream({ type: STREAM_ACK })), { type: STREAM_ACK });
});

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CodecError, `expected CodecError, got ${(e as Error).stack}`);
    return e.reason;
  }
  return 'accepted';
}

test('every truncation of a valid packet and stream message is rejected with a CodecError', () => {
  const p = encodePacket({ type: PKT_PING, seq: 1, target: 'b', source: 'a' }, [encodeBroadcast({ kind: BC_ALIVE, record: rec })]);
  for (let n = 0; n < p.length; n++) assert.notEqual(reason(() => decodePacket(p.subarray(0, n))), 'accepted', `prefix ${n}`);
  const s = encodeStream({ type: STREAM_REPLY, entries: [{ state: ST_ALIVE, record: rec }], want: ['x'] });
  for (let n = 0; n < s.length; n++) assert.notEqual(reason(() => decodeStream(s.subarray(0, n))), 'accepted', `prefix ${n}`);
});

test('wrong version, unknown types, trailing bytes and bad values are rejected with their reason', () => {
  const p = encodePacket({ type: PKT_ACK, seq: 1 }, []);
  const v = Uint8Array.from(p);
  v[0] = 99;
  assert.equal(reason(() => decodePacket(v)), 'bad_version');
  const t = Uint8Array.from(p);
  t[1] = 77;
  assert.equal(reason(() => decodePacket(t)), 'bad_type');
  assert.equal(reason(() => decodePacket(Uint8Array.from([...p, 0]))), 'trailing');
  const bc = encodeBroadcast({ kind: BC_SUSPECT, name: 'a', incarnation: 1, from: 'b' });
  const badKind = Uint8Array.from(bc);
  badKind[0] = 200;
  assert.equal(reason(() => decodeBroadcast(badKind, 0, badKind.length)), 'bad_type');
  // A push whose entry has state 9.
  const push = encodeStream({ type: STREAM_PUSH, entries: [{ state: ST_ALIVE, record: rec }] });
  const badState = Uint8Array.from(push);
  badState[3] = 9; // version, type, count(1), state
  assert.equal(reason(() => decodeStream(badState)), 'bad_value');
});

test('absurd lengths and counts are rejected before allocating', () => {
  // A reply announcing 4 billion entries in a 10-byte message.
  const w = new Writer();
  w.u8(1); w.u8(STREAM_REPLY); w.varuint(0xffffffff);
  assert.equal(reason(() => decodeStream(w.take())), 'bad_length');
  // A count below the limit but larger than the bytes present could carry.
  const w2 = new Writer();
  w2.u8(1); w2.u8(STREAM_PUSH); w2.varuint(1000); w2.u8(0);
  assert.equal(reason(() => decodeStream(w2.take())), 'bad_length');
  // A string length of 2^31.
  const w3 = new Writer();
  w3.u8(1); w3.u8(PKT_PING); w3.u32(1); w3.varuint(0x80000000);
  assert.equal(reason(() => decodePacket(w3.take())), 'bad_length');
  // A varuint that never ends.
  assert.equal(reason(() => decodeStream(Uint8Array.from([1, STREAM_PUSH, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))), 'bad_value');
  // Oversized inputs are refused on size alone.
  assert.equal(reason(() => decodePacket(new Uint8Array(LIMITS.maxPacket + 1))), 'oversized');
  // A broadcast length running past the packet.
  const w4 = new Writer();
  w4.u8(1); w4.u8(PKT_GOSSIP); w4.u8(1); w4.u16(60000); w4.u8(5);
  assert.equal(reason(() => decodePacket(w4.take())), 'truncated');
});

test('random garbage never throws anything but CodecError (seeded fuzz)', () => {
  const rng = seededRng(42);
  const valid = encodePacket({ type: PKT_PING, seq: 1, target: 'b', source: 'a' }, [encodeBroadcast({ kind: BC_ALIVE, record: rec })]);
  const validStream = encodeStream({ type: STREAM_REQUEST, join: false, self: { state: 0, record: rec }, digest: [{ name: 'a', incarnation: 1, state: 0 }] });
  let rejected = 0;
  for (let i = 0; i < 3000; i++) {
    const base = i % 2 ? valid : validStream;
    const b = Uint8Array.from(base);
    const flips = 1 + Math.floor(rng() * 4);
    for (let f = 0; f < flips; f++) b[Math.floor(rng() * b.length)] = Math.floor(rng() * 256);
    const r = reason(() => {
      if (i % 2) {
        const d = decodePacket(b);
        for (let k = 0; k < d.bcStarts.length; k++) decodeBroadcast(b, d.bcStarts[k], d.bcEnds[k]);
      } else decodeStream(b);
    });
    if (r !== 'accepted') rejected++;
  }
  assert.ok(rejected > 0);
});

test('addresses parse strictly and format canonically', () => {
  assert.deepEqual(parseAddr('198.18.0.1:7946'), { host: '198.18.0.1', port: 7946, family: 4 });
  assert.deepEqual(parseAddr('198.18.0.1', 7946), { host: '198.18.0.1', port: 7946, family: 4 });
  assert.deepEqual(parseAddr('[2001:2:0::1]:80'), { host: '2001:2::1', port: 80, family: 6 });
  assert.equal(parseAddr('198.18.0.1:0'), null);
  assert.equal(parseAddr('198.18.0.1:70000'), null);
  assert.equal(parseAddr('example.com:1'), null);
  assert.equal(parseAddr('198.18.0.1'), null);
  assert.equal(formatAddr('2001:2::1', 9), '[2001:2::1]:9');
});
