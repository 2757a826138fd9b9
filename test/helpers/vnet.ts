/**
 * Shared fixtures of the fast-path unit tests: a scripted vnet TAP (the data path's
 * `VnetTapDevice` without a kernel) and an IPv4 TCP super-frame builder.
 */
import assert from 'node:assert/strict';
import type { RxBatch, TxBatch } from '../../src/dataplane/seams';
import { VNET_FRAME_MAX } from '../../src/dataplane/seams';

interface Queued { frame: Buffer; type: number; mss: number }

/** A scripted vnet TAP: `inject` queues a frame with its gso info; `fire` runs the readiness callback. */
export class VnetTwin {
  readonly vnetHdr = true;
  readonly mac: Buffer = Buffer.from([2, 0xee, 0, 0, 0, 1]);
  readonly queue: Queued[] = [];
  /** Frames written to the TAP (copies). */
  readonly written: Buffer[] = [];
  /** Calls of the plain (non-vnet) read, which the data path must not make on a vnet TAP. */
  plainReads = 0;
  private cb: (() => void) | null = null;

  constructor(readonly name = 'vx-twin', opts: { gsoWrites?: boolean; mac?: Buffer } = {}) {
    if (opts.gsoWrites === false) delete this.writeBatchGso;
    if (opts.mac) this.mac = opts.mac;
  }

  inject(frame: Buffer, type = 0, mss = 0): void { this.queue.push({ frame, type, mss }); }
  fire(): void { while (this.queue.length > 0 && this.cb) this.cb(); }
  readBatchVnet(b: RxBatch, gso: Uint16Array): number {
    assert.ok(b.slotSize - b.headroom >= VNET_FRAME_MAX, 'vnet slots hold a 64 KiB super-frame');
    let n = 0;
    while (n < b.slots && this.queue.length > 0) {
      const q = this.queue.shift()!;
      q.frame.copy(b.slab, n * b.slotSize + b.headroom);
      b.lens[n] = q.frame.length;
      gso[2 * n] = q.type;
      gso[2 * n + 1] = q.mss;
      n++;
    }
    return n;
  }
  readBatch(_b: RxBatch): number {
    this.plainReads++;
    return 0;
  }
  writeBatch(b: TxBatch): number {
    for (let j = 0; j < b.count; j++) {
      this.written.push(Buffer.from(b.slab.subarray(b.offs[j], b.offs[j] + b.lens[j])));
      this.writtenGso.push({ type: 0, mss: 0 });
    }
    this.writeCalls++;
    return b.count;
  }
  /** The gso info of each written frame (0/0: plain), beside `written`. */
  readonly writtenGso: { type: number; mss: number }[] = [];
  writeCalls = 0;
  gsoWriteCalls = 0;
  /** `GsoTapDevice.writeBatchGso` (GRO runs written as GSO frames); absent when constructed with `gsoWrites: false`. */
  writeBatchGso?: (b: TxBatch, gso: Uint16Array) => number = (b, gso) => {
    for (let j = 0; j < b.count; j++) {
      this.written.push(Buffer.from(b.slab.subarray(b.offs[j], b.offs[j] + b.lens[j])));
      this.writtenGso.push({ type: gso[2 * j], mss: gso[2 * j] === 0 ? 0 : gso[2 * j + 1] });
    }
    this.gsoWriteCalls++;
    return b.count;
  };
  onReadable(cb: () => void): void { this.cb = cb; }
  close(): void {}
}

/**
 * An IPv4 TCP super-frame 02:..:01 (198.19.0.1:40000) → 02:..:02 (198.19.0.2:5001), ACK|PSH, seq
 * 1000, with `payload` bytes: `fill(i)` each (default (i * 7) & 0xff).
 */
export function tcpSuperFrame(payload: number, fill: (i: number) => number = (i) => (i * 7) & 0xff): Buffer {
  const f = Buffer.alloc(14 + 20 + 20 + payload);
  f.writeUIntBE(0x020000000002, 0, 6);
  f.writeUIntBE(0x020000000001, 6, 6);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(40 + payload, 16);
  f.writeUInt16BE(0x1234, 18);
  f[22] = 64;
  f[23] = 6;
  f.writeUInt32BE(0xc6130001, 26);
  f.writeUInt32BE(0xc6130002, 30);
  f.writeUInt16BE(40000, 34);
  f.writeUInt16BE(5001, 36);
  f.writeUInt32BE(1000, 38);
  f.writeUInt32BE(1, 42);
  f[46] = 0x50;
  f[47] = 0x18; // ACK|PSH
  f.writeUInt16BE(65535, 48);
  for (let i = 0; i < payload; i++) f[54 + i] = fill(i);
  return f;
}
