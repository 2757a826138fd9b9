/**
 * Issue 16 items 2-3: the capture stores and the per-peer drop table are bounded by construction —
 * a ring keeps the last N frames, each copy cut at the snap length; a queue refuses (and counts)
 * when full; a table gives rows to the first PEER_DROP_ROWS peers and counts the rest as `other`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameQueue, FrameRing, DIR_RX, DIR_TX, KIND_FRAME } from '../../src/capture/ring';
import { PEER_DROP_ROWS, PeerDropTable, RX_DROP_REASONS, rxDropIndex } from '../../src/dataplane/counters';
import { endpointToRecord } from '../../src/dataplane/addr';

const rec = endpointToRecord({ address: '198.18.0.7', port: 4789, family: 4 });

test('FrameRing: keeps the newest `capacity` frames, oldest first, each at most snapLen bytes; memory fixed', () => {
  const r = new FrameRing(4, 8);
  const bytes = r.bytes;
  for (let i = 0; i < 10; i++) {
    const f = Buffer.alloc(20, i);
    r.put(i * 10, i % 2 === 0 ? DIR_RX : DIR_TX, KIND_FRAME, i, f, 0, 20, i === 9 ? rec : null, 0);
  }
  assert.equal(r.total, 10);
  assert.equal(r.size, 4);
  const e = r.entries();
  assert.deepEqual(e.map((x) => x.reason), [6, 7, 8, 9]);
  assert.deepEqual(e.map((x) => x.time), [60, 70, 80, 90]);
  for (const x of e) {
    assert.equal(x.data.length, 8, 'cut at the snap length');
    assert.equal(x.origLen, 20);
  }
  assert.deepEqual([...e[3].data], new Array(8).fill(9));
  assert.equal(e[3].dir, DIR_TX);
  assert.deepEqual(e[3].addr, rec);
  assert.equal(e[2].addr, null);
  assert.deepEqual(r.entries(2).map((x) => x.reason), [8, 9], 'the newest K');
  assert.equal(r.bytes, bytes, 'no memory added by puts');
  // a frame shorter than the snap length, at an offset, and one without bytes
  r.put(100, DIR_RX, KIND_FRAME, 1, Buffer.from([9, 9, 1, 2, 3]), 2, 3, null, 0);
  r.put(101, DIR_RX, KIND_FRAME, 2, null, 0, 1500, null, 0);
  const [a, b] = r.entries(2);
  assert.deepEqual([...a.data], [1, 2, 3]);
  assert.equal(b.data.length, 0);
  assert.equal(b.origLen, 1500);
});

test('FrameQueue: a full queue refuses and counts the frame as missed; take drains in order', () => {
  const q = new FrameQueue(3, 64);
  for (let i = 0; i < 5; i++) q.put(i, DIR_RX, KIND_FRAME, -1, Buffer.alloc(10, i), 0, 10, null, 0);
  assert.equal(q.length, 3);
  assert.equal(q.missed, 2);
  assert.equal(q.accepted, 3);
  assert.deepEqual(q.take(2).map((e) => e.data[0]), [0, 1]);
  q.put(9, DIR_TX, KIND_FRAME, -1, Buffer.alloc(10, 9), 0, 10, null, 0);
  assert.deepEqual(q.take(10).map((e) => e.data[0]), [2, 9]);
  assert.equal(q.length, 0);
  assert.throws(() => new FrameQueue(0, 64), RangeError);
  assert.throws(() => new FrameRing(4, -1), RangeError);
});

test('PeerDropTable: the first PEER_DROP_ROWS peers get rows, later ones share `other`; rows never grow', () => {
  const t = new PeerDropTable();
  const R = RX_DROP_REASONS.length;
  for (let p = 0; p < PEER_DROP_ROWS + 10; p++) {
    const row = t.row(p, `198.18.1.${p}:4789`);
    t.countRx(row, rxDropIndex.oversize_frame, 1);
  }
  assert.equal(t.used, PEER_DROP_ROWS);
  assert.equal(t.row(5, 'x'), 5, 'a known peer keeps its row');
  assert.equal(t.rx[PEER_DROP_ROWS * R + rxDropIndex.oversize_frame], 10, 'the 10 beyond the rows are `other`');
  assert.equal(t.rx.length, (PEER_DROP_ROWS + 1) * R);
  let sum = 0;
  for (let r = 0; r <= PEER_DROP_ROWS; r++) sum += t.rx[r * R + rxDropIndex.oversize_frame];
  assert.equal(sum, PEER_DROP_ROWS + 10);
});
