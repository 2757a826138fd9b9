/**
 * TAP reader threads (`tapThreads`): a vnet TAP's reads run on an addon thread that fills a ring
 * of `READER_SLABS` slabs while the JS thread processes earlier ones (`ReaderTapDevice`). This file
 * owns the ring's memory and the per-slab descriptor views, and drains ready batches into the
 * outbound pipeline (inside.ts, from its stage 2), oldest first.
 */
import type { CipherBatch } from './cipher-seam';
import type { PathContext } from './context';
import type { Inside } from './inside';
import type { Network } from './network';
import { sealOver, txOver, type OutboundSlabs } from './slabs';
import type { ReaderTapDevice, TapReaderRing, TxBatch } from './seams';

/** Slabs per TAP reader ring: the thread fills one while JS processes another. */
export const READER_SLABS = 3;

/** A network's reader ring and the per-slab views the pipeline sends from. */
export class ReaderRing {
  readonly ring: TapReaderRing;
  private readonly slabs: Buffer[] = [];
  private readonly lens: Uint32Array[] = [];
  private readonly gso: Uint16Array[] = [];
  /** Descriptor tables / seal batches over each slab, rebuilt when the outbound memory is reallocated. */
  private vtx: TxBatch[] = [];
  private vseal: CipherBatch[] = [];
  private forOut: OutboundSlabs | null = null;
  /** The thread's callback: batches are ready. */
  readonly again: () => void;

  constructor(private readonly ctx: PathContext, private readonly inside: Inside, private readonly tap: ReaderTapDevice,
    fallback: Network, slot: number) {
    const B = ctx.batchSize;
    this.ring = {
      slab: Buffer.alloc(READER_SLABS * B * slot), slotSize: slot, headroom: ctx.headroom, slots: B, nslabs: READER_SLABS,
      lens: new Uint32Array(READER_SLABS * B), gso: new Uint16Array(READER_SLABS * 2 * B),
    };
    for (let k = 0; k < READER_SLABS; k++) {
      this.slabs.push(this.ring.slab.subarray(k * B * slot, (k + 1) * B * slot));
      this.lens.push(this.ring.lens.subarray(k * B, (k + 1) * B));
      this.gso.push(this.ring.gso.subarray(2 * k * B, 2 * (k + 1) * B));
    }
    this.again = () => this.drain(ctx.tapOwner(tap) ?? fallback);
  }

  /** Reader thread batches ready: process up to 2 × burst, then yield (and come back) if more wait. */
  private drain(net: Network): void {
    const ctx = this.ctx;
    const tap = this.tap;
    const out = this.inside.out;
    if (this.forOut !== out) {
      for (let k = 0; k < READER_SLABS; k++) {
        this.vtx[k] = txOver(out, this.slabs[k]);
        this.vseal[k] = sealOver(out, this.slabs[k]);
      }
      this.forOut = out;
    }
    for (let round = 0; round < 2 * ctx.burst; round++) {
      let r: number;
      try {
        r = tap.readerNext();
      } catch (e) {
        // the thread stopped on a read error: the network is failed until its TAP is replaced
        const owner = ctx.tapOwner(tap);
        if (owner !== undefined) ctx.failNetwork(owner, e);
        return;
      }
      if (r < 0) return;
      const k = r >>> 16;
      const n = r & 0xffff;
      if (ctx.running && !net.removed && net.failed === null && net.tap === tap) {
        ctx.counters.tapBatches++;
        ctx.hist.tapRead.add(n);
        this.inside.vnetBatch(net, n, this.slabs[k], this.lens[k], this.gso[k], this.vtx[k], this.vseal[k]);
      }
      tap.readerRelease();
    }
    setImmediate(this.again); // more may be ready (the thread may be waiting for a free slab)
  }
}
