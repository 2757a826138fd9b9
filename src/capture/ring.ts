/**
 * Fixed-memory frame stores for capture, allocated once at construction and never per packet:
 *
 *   FrameRing   the last `capacity` frames (a drop ring): each `put` overwrites the oldest entry;
 *   FrameQueue  a bounded FIFO between the data path and a slow consumer (a live capture session):
 *               `put` refuses when full and counts the frame as missed; the consumer `take`s.
 *
 * Each entry keeps at most `snapLen` bytes of the frame (one bounded copy into the store's own
 * slab), its original length, a timestamp (clock ms), a direction, a kind (an inner Ethernet frame,
 * or a VXLAN datagram dropped before its inner frame was known), a reason index (drops) and, when
 * known, the peer's 18-byte underlay address record (addr.ts). Reading entries back (`entries`,
 * `take`) is control-plane work and allocates.
 */
import { ADDR_LEN } from '../dataplane/addr';

/** Direction of a frame: received from the underlay (rx) or read from a TAP (tx). */
export const DIR_RX = 0;
export const DIR_TX = 1;
/** Kind of the bytes kept: an inner Ethernet frame, or the UDP payload of a VXLAN datagram. */
export const KIND_FRAME = 0;
export const KIND_DATAGRAM = 1;

/** One entry read back from a store (control plane). */
export interface FrameEntry {
  /** Clock time (ms, the data path's clock) when the frame was recorded. */
  time: number;
  dir: number;
  kind: number;
  /** Drop reason index (RX_DROP_REASONS / TX_DROP_REASONS by `dir`); -1 for a forwarded frame. */
  reason: number;
  /** Bytes of the frame as it was (the copy holds at most snapLen of them). */
  origLen: number;
  data: Buffer;
  /** The peer's address record (a copy), or null when none was known. */
  addr: Buffer | null;
}

abstract class FrameStore {
  readonly capacity: number;
  readonly snapLen: number;
  protected readonly slab: Buffer;
  protected readonly capLen: Uint32Array;
  protected readonly origLen: Uint32Array;
  protected readonly time: Float64Array;
  protected readonly meta: Uint8Array; // dir | kind << 1 | hasAddr << 2
  protected readonly reason: Int16Array;
  protected readonly addrs: Buffer;

  constructor(capacity: number, snapLen: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capture store capacity must be a positive integer, got ${capacity}`);
    if (!Number.isInteger(snapLen) || snapLen < 0 || snapLen > 262_144) throw new RangeError(`snap length must be an integer in [0, 262144], got ${snapLen}`);
    this.capacity = capacity;
    this.snapLen = snapLen;
    this.slab = Buffer.alloc(capacity * snapLen);
    this.capLen = new Uint32Array(capacity);
    this.origLen = new Uint32Array(capacity);
    this.time = new Float64Array(capacity);
    this.meta = new Uint8Array(capacity);
    this.reason = new Int16Array(capacity);
    this.addrs = Buffer.alloc(capacity * ADDR_LEN);
  }

  /** Bytes this store holds (fixed at construction). */
  get bytes(): number {
    return this.slab.length + this.addrs.length + this.capacity * (4 + 4 + 8 + 1 + 2);
  }

  /** Writes entry `i` (a bounded copy: at most snapLen bytes of buf[off, off + len)). */
  protected write(i: number, now: number, dir: number, kind: number, reason: number, buf: Buffer | null, off: number, len: number,
    addr: Buffer | null, aOff: number): void {
    const cap = buf === null ? 0 : Math.min(len, this.snapLen, buf.length - off);
    if (cap > 32) {
      buf!.copy(this.slab, i * this.snapLen, off, off + cap); // Buffer#copy: no view allocated
    } else {
      const s = this.slab; // a short copy: a loop is cheaper than the native call
      const d = i * this.snapLen;
      for (let k = 0; k < cap; k++) s[d + k] = buf![off + k];
    }
    this.capLen[i] = cap > 0 ? cap : 0;
    this.origLen[i] = len;
    this.time[i] = now;
    this.reason[i] = reason;
    let m = (dir & 1) | ((kind & 1) << 1);
    if (addr !== null) {
      addr.copy(this.addrs, i * ADDR_LEN, aOff, aOff + ADDR_LEN);
      m |= 4;
    }
    this.meta[i] = m;
  }

  protected read(i: number): FrameEntry {
    const m = this.meta[i];
    const s = i * this.snapLen;
    return {
      time: this.time[i],
      dir: m & 1,
      kind: (m >> 1) & 1,
      reason: this.reason[i],
      origLen: this.origLen[i],
      data: Buffer.from(this.slab.subarray(s, s + this.capLen[i])),
      addr: (m & 4) !== 0 ? Buffer.from(this.addrs.subarray(i * ADDR_LEN, (i + 1) * ADDR_LEN)) : null,
    };
  }
}

/** The last `capacity` frames; the oldest is overwritten. */
export class FrameRing extends FrameStore {
  /** Frames recorded since construction (entries held: min(total, capacity)). */
  total = 0;
  private next = 0;

  put(now: number, dir: number, kind: number, reason: number, buf: Buffer | null, off: number, len: number,
    addr: Buffer | null, aOff: number): void {
    const i = this.next;
    this.write(i, now, dir, kind, reason, buf, off, len, addr, aOff);
    this.next = i + 1 === this.capacity ? 0 : i + 1;
    this.total++;
  }

  /** Entries held now. */
  get size(): number {
    return Math.min(this.total, this.capacity);
  }

  /** The newest `max` entries (all when omitted), oldest first. */
  entries(max = this.capacity): FrameEntry[] {
    const n = Math.min(this.size, Math.max(0, Math.floor(max)));
    const out: FrameEntry[] = [];
    for (let k = n; k > 0; k--) out.push(this.read((this.next - k + this.capacity) % this.capacity));
    return out;
  }
}

/** A bounded FIFO: `put` never waits; when full the frame is counted in `missed` and not kept. */
export class FrameQueue extends FrameStore {
  /** Frames refused because the queue was full. */
  missed = 0;
  /** Frames accepted since construction. */
  accepted = 0;
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  /** Keeps the frame, or counts it as missed (false) when the queue is full. */
  put(now: number, dir: number, kind: number, reason: number, buf: Buffer | null, off: number, len: number,
    addr: Buffer | null, aOff: number): boolean {
    if (this.count === this.capacity) {
      this.missed++;
      return false;
    }
    let i = this.head + this.count;
    if (i >= this.capacity) i -= this.capacity;
    this.write(i, now, dir, kind, reason, buf, off, len, addr, aOff);
    this.count++;
    this.accepted++;
    return true;
  }

  /** Removes and returns up to `max` entries, oldest first. */
  take(max: number): FrameEntry[] {
    const out: FrameEntry[] = [];
    while (this.count > 0 && out.length < max) {
      out.push(this.read(this.head));
      this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
      this.count--;
    }
    return out;
  }
}
