/** The in-memory I/O twins: delivery, source ports per srcIdx, faults, bounds, readiness. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/clock';
import { endpointToRecord, recordToEndpoint } from '../../src/dataplane/addr';
import type { RxBatch, TxBatch } from '../../src/dataplane/seams';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';

function rx(slots = 8, slotSize = 256, headroom = 0): RxBatch {
  return { slab: Buffer.alloc(slots * slotSize), slotSize, headroom, slots, lens: new Uint32Array(slots), addrs: Buffer.alloc(slots * 18) };
}

function tx(datagrams: { data: Buffer; to: string; port?: number; src?: number }[]): TxBatch {
  const slab = Buffer.alloc(4096);
  const b: TxBatch = { slab, offs: new Uint32Array(16), lens: new Uint32Array(16), addrs: Buffer.alloc(16 * 18), srcIdx: new Uint8Array(16), status: new Int32Array(16), count: 0 };
  let off = 0;
  for (const d of datagrams) {
    d.data.copy(slab, off);
    b.offs[b.count] = off;
    b.lens[b.count] = d.data.length;
    endpointToRecord({ address: d.to, port: d.port ?? 4789, family: d.to.includes(':') ? 6 : 4 }).copy(b.addrs, b.count * 18);
    b.srcIdx[b.count] = d.src ?? 0;
    off += d.data.length;
    b.count++;
  }
  return b;
}

describe('MemoryUdpNetwork', () => {
  it('delivers synchronously with the source record of the chosen source socket', () => {
    const net = new MemoryUdpNetwork();
    const a = net.attach('198.18.0.1', 4789, 3);
    const b = net.attach('198.18.0.2', 4789, 1);
    assert.equal(a.sourceCount, 3);
    assert.equal(a.sendBatch(tx([{ data: Buffer.from('x0'), to: '198.18.0.2', src: 0 }, { data: Buffer.from('x2'), to: '198.18.0.2', src: 2 }])), 2);
    const r = rx();
    assert.equal(b.recvBatch(r), 2);
    assert.equal(r.slab.subarray(0, r.lens[0]).toString(), 'x0');
    assert.equal(r.slab.subarray(256, 256 + r.lens[1]).toString(), 'x2');
    const s0 = recordToEndpoint(r.addrs, 0);
    const s2 = recordToEndpoint(r.addrs, 18);
    assert.deepEqual(s0, { address: '198.18.0.1', port: 4789, family: 4 });
    assert.equal(s2.address, '198.18.0.1');
    assert.notEqual(s2.port, 4789);
    assert.deepEqual(a.sentBySource, [1, 0, 1]);
    // nowhere to go: counted, not thrown
    a.sendBatch(tx([{ data: Buffer.from('?'), to: '198.18.0.9' }]));
    assert.equal(net.unroutable, 1);
    assert.throws(() => a.sendBatch(tx([{ data: Buffer.from('?'), to: '198.18.0.2', src: 3 }])), RangeError);
  });

  it('works over IPv6 records', () => {
    const net = new MemoryUdpNetwork();
    const a = net.attach('2001:2::1', 4789);
    const b = net.attach('2001:2::2', 4789);
    assert.equal(a.family, 6);
    a.sendBatch(tx([{ data: Buffer.from('v6'), to: '2001:2::2' }]));
    const r = rx();
    assert.equal(b.recvBatch(r), 1);
    assert.equal(recordToEndpoint(r.addrs, 0).address, '2001:2::1');
  });

  it('loses a seeded, repeatable share, delays on the clock, partitions and heals', () => {
    const run = (seed: number) => {
      const net = new MemoryUdpNetwork({ lossRate: 0.3, seed });
      const a = net.attach('198.18.0.1', 4789);
      const b = net.attach('198.18.0.2', 4789);
      for (let i = 0; i < 100; i++) a.sendBatch(tx([{ data: Buffer.from([i]), to: '198.18.0.2' }]));
      const got: number[] = [];
      const r = rx(128, 16);
      const n = b.recvBatch(r);
      for (let i = 0; i < n; i++) got.push(r.slab[i * 16]);
      return { got, lost: net.lost };
    };
    const x = run(7);
    assert.deepEqual(run(7), x);
    assert.ok(x.lost > 10 && x.lost < 50, `lost ${x.lost}`);
    assert.equal(x.got.length + x.lost, 100);

    const clock = new FakeClock();
    const net = new MemoryUdpNetwork({ clock, delayMs: 50 });
    const a = net.attach('198.18.0.1', 4789);
    const b = net.attach('198.18.0.2', 4789);
    a.sendBatch(tx([{ data: Buffer.from('d'), to: '198.18.0.2' }]));
    assert.equal(b.pending, 0);
    clock.advance(49);
    assert.equal(b.pending, 0);
    clock.advance(1);
    assert.equal(b.pending, 1);

    net.delayMs = 0;
    net.partition(['198.18.0.1'], ['198.18.0.2']);
    a.sendBatch(tx([{ data: Buffer.from('p'), to: '198.18.0.2' }]));
    assert.equal(b.pending, 1);
    net.heal();
    net.filter = (d) => (d.data[0] === 0x66 ? 'drop' : 'deliver');
    a.sendBatch(tx([{ data: Buffer.from('f'), to: '198.18.0.2' }, { data: Buffer.from('g'), to: '198.18.0.2' }]));
    assert.equal(b.pending, 2);
  });

  it('bounds receive queues and truncates to the slot like recvmmsg', () => {
    const net = new MemoryUdpNetwork({ queueLimit: 3 });
    const a = net.attach('198.18.0.1', 4789);
    const b = net.attach('198.18.0.2', 4789);
    for (let i = 0; i < 5; i++) a.sendBatch(tx([{ data: Buffer.alloc(40, i), to: '198.18.0.2' }]));
    assert.equal(net.overflows, 2);
    const r = rx(8, 16);
    assert.equal(b.recvBatch(r), 3);
    assert.equal(r.lens[0], 16);
    a.failNextSends = 1;
    assert.equal(a.sendBatch(tx([{ data: Buffer.from('z'), to: '198.18.0.2' }])), 0);
  });
});

describe('MemoryTap and MemoryReactor', () => {
  it('reads injected frames at the headroom and captures written ones', () => {
    const tap = new MemoryTap({ name: 't0' });
    tap.inject(Buffer.from('frame-one'));
    tap.inject(Buffer.from('frame-two'));
    const r = rx(1, 64, 16);
    assert.equal(tap.readBatch(r), 1);
    assert.equal(r.slab.subarray(16, 16 + r.lens[0]).toString(), 'frame-one');
    assert.equal(tap.pending, 1);
    const b = tx([{ data: Buffer.from('out'), to: '198.18.0.1' }]);
    tap.writeLimit = 0;
    assert.equal(tap.writeBatch(b), 0);
    tap.writeLimit = Infinity;
    assert.equal(tap.writeBatch(b), 1);
    assert.deepEqual(tap.takeWritten(), [Buffer.from('out')]);
  });

  it('calls readiness level-triggered until drained, bounded in rounds', () => {
    const reactor = new MemoryReactor();
    const tap = new MemoryTap({ reactor });
    for (let i = 0; i < 5; i++) tap.inject(Buffer.from([i]));
    let calls = 0;
    tap.onReadable(() => {
      calls++;
      tap.readBatch(rx(2, 16));
    });
    reactor.run();
    assert.equal(calls, 3);
    assert.equal(tap.pending, 0);
    // a callback that never reads cannot hang the test
    tap.inject(Buffer.from([9]));
    tap.onReadable(() => {});
    assert.equal(reactor.run(50), 50);
  });

  it('auto mode runs on setImmediate', async () => {
    const reactor = new MemoryReactor({ auto: true });
    const tap = new MemoryTap({ reactor });
    let seen = 0;
    tap.onReadable(() => {
      seen += tap.readBatch(rx(4, 16));
    });
    tap.inject(Buffer.from([1]));
    assert.equal(seen, 0);
    await new Promise((r) => setImmediate(r));
    assert.equal(seen, 1);
    tap.close();
  });
});
