/**
 * Packets waiting for a session (one queue per peer): copied out of the data path's slab when a
 * frame must be sealed for a peer with no usable keypair, sent once a handshake completes, dropped
 * (`no_session`) when too old or when the handshake is abandoned. Bounded (`queueMax` per peer);
 * a copy is made only on this slow path (no session), never on the sealing fast path.
 */

import { DATA_HEADER_LEN } from './noise';

/** Largest VXLAN packet a queue takes (a UDP payload). */
export const MAX_QUEUED_PACKET = 65535;

/** One waiting packet, laid out ready for sealing in place. */
export interface Queued {
  /** DATA_HEADER_LEN bytes of room + the plaintext VXLAN packet + 16 bytes for the tag. */
  readonly buf: Uint8Array;
  /** Plaintext VXLAN packet length. */
  readonly len: number;
  /** The packet's network (for the data path's per-network counters). */
  readonly vni: number;
  /** When it was queued (clock ms). */
  readonly at: number;
}

/** A peer's queue of packets waiting for a session. */
export class PendingQueue {
  private items: Queued[] = [];

  get length(): number {
    return this.items.length;
  }

  /** Copies the packet at `slab[off, off+len)`; false when the queue is full or the packet too large. */
  push(slab: Uint8Array, off: number, len: number, vni: number, now: number, max: number): boolean {
    if (this.items.length >= max || len > MAX_QUEUED_PACKET) return false;
    const buf = new Uint8Array(DATA_HEADER_LEN + len + 16);
    buf.set(slab.subarray(off, off + len), DATA_HEADER_LEN);
    this.items.push({ buf, len, vni, at: now });
    return true;
  }

  /** Removes and returns every waiting packet, oldest first. */
  takeAll(): Queued[] {
    const q = this.items;
    this.items = [];
    return q;
  }

  /** Drops packets older than `maxAgeMs` (all of them with Infinity); `onDrop(vni)` for each. */
  expire(now: number, maxAgeMs: number, onDrop: (vni: number) => void): void {
    if (this.items.length === 0) return;
    const keep: Queued[] = [];
    for (const item of this.items) {
      if (maxAgeMs === Infinity || now - item.at > maxAgeMs) onDrop(item.vni);
      else keep.push(item);
    }
    this.items = keep;
  }
}
