/**
 * Anti-replay sliding window (RFC 6479, as in WireGuard's replay/ and the Linux kernel's).
 *
 * A ring of RING_BLOCKS 64-bit blocks (each held as two 32-bit halves of a Uint32Array, so the
 * hot path does no BigInt arithmetic); the newest block is the one holding `last`. A counter is
 * accepted when it is newer than anything seen, or within WINDOW_SIZE of the newest and not yet
 * seen. Moving forward clears only the blocks the window slid over, so the cost is O(1) per packet
 * however large the jump. WINDOW_SIZE = (RING_BLOCKS − 1) × 64 = 8,128 packets.
 *
 * The data path calls `check()` before decrypting (cheap rejection, no state change) and
 * `accept()` only after the tag verified (the window never moves on an unauthenticated packet).
 *
 * Counters are JS numbers: exact up to 2^53, far more than a key may seal in its 180 s life
 * (2^53 packets would take 28 years at 10 Mpps); anything larger is rejected.
 */

export const BLOCK_BITS = 64;
export const RING_BLOCKS = 128;
export const WINDOW_SIZE = (RING_BLOCKS - 1) * BLOCK_BITS; // 8128

export class ReplayWindow {
  /** Block b occupies words [2b] (bits 0..31) and [2b + 1] (bits 32..63). */
  private readonly ring = new Uint32Array(RING_BLOCKS * 2);
  private last = 0;

  /** @param limit counters ≥ limit are always rejected (the key's message limit). */
  constructor(private readonly limit: number = Number.MAX_SAFE_INTEGER) {}

  /** Forgets everything (new key). */
  reset(): void {
    this.ring.fill(0);
    this.last = 0;
  }

  /** Newest counter accepted so far (0 before any). */
  get newest(): number {
    return this.last;
  }

  /** True if `counter` would be accepted now. Never changes state. */
  check(counter: number): boolean {
    if (!(counter >= 0) || counter >= this.limit || !Number.isSafeInteger(counter)) return false;
    if (counter > this.last) return true;
    if (this.last - counter > WINDOW_SIZE) return false;
    const block = Math.floor(counter / BLOCK_BITS) % RING_BLOCKS;
    const bit = counter % BLOCK_BITS;
    const word = this.ring[2 * block + (bit >>> 5)];
    return (word & (1 << (bit & 31))) === 0;
  }

  /**
   * Marks `counter` as seen if acceptable; returns whether it was accepted. Call only after the
   * packet authenticated.
   */
  accept(counter: number): boolean {
    if (!(counter >= 0) || counter >= this.limit || !Number.isSafeInteger(counter)) return false;
    const indexBlock = Math.floor(counter / BLOCK_BITS);
    if (counter > this.last) {
      const current = Math.floor(this.last / BLOCK_BITS);
      let diff = indexBlock - current;
      if (diff > RING_BLOCKS) diff = RING_BLOCKS;
      for (let i = current + 1; i <= current + diff; i++) {
        const b = i % RING_BLOCKS;
        this.ring[2 * b] = 0;
        this.ring[2 * b + 1] = 0;
      }
      this.last = counter;
    } else if (this.last - counter > WINDOW_SIZE) {
      return false;
    }
    const b = indexBlock % RING_BLOCKS;
    const bit = counter % BLOCK_BITS;
    const w = 2 * b + (bit >>> 5);
    const mask = 1 << (bit & 31);
    const old = this.ring[w];
    if (old & mask) return false;
    this.ring[w] = old | mask;
    return true;
  }

  /** A copy of the state, for tests asserting "window unchanged". */
  snapshot(): { last: number; ring: Uint32Array } {
    return { last: this.last, ring: this.ring.slice() };
  }
}
