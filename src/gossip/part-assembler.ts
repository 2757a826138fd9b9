/**
 * Reassembly of alive broadcasts that were cut into parts (codec.ts `splitAlive`): a record with
 * many endpoints is larger than one gossip datagram may be (`packetBudget`, no IP fragments), so
 * it travels as `alive part` broadcasts, each gossiped on its own like any other update.
 *
 * Per member at most one record is being assembled: the highest incarnation seen (a part of a
 * newer incarnation discards an older partial one; a part of an older one is stale). Memory is
 * bounded before anything is stored: at most `maxPending` partial records and `maxBytes` bytes in
 * all (oldest dropped first), and a partial record older than `ttlMs` is forgotten (push-pull, which
 * carries records whole over the stream transport, repairs what never completes).
 */

/** What `add` did with a part. */
/** 'dropped': the part does not fit the bounds (a partial record larger than `maxBytes`). */
export type PartOutcome = 'stored' | 'duplicate' | 'stale' | 'mismatch' | 'dropped' | 'complete';

interface Pending {
  incarnation: number;
  parts: (Uint8Array | undefined)[];
  got: number;
  bytes: number;
  at: number;
}

export interface PartAssemblerOptions {
  /** Most records being assembled at once (default 64). */
  maxPending?: number;
  /** Most bytes held in all partial records (default 8 MiB). */
  maxBytes?: number;
  /** ms after its first part that a partial record is forgotten (default 60 s). */
  ttlMs?: number;
}

export class PartAssembler {
  private readonly pending = new Map<string, Pending>();
  private bytes = 0;
  private readonly maxPending: number;
  private readonly maxBytes: number;
  private readonly ttlMs: number;
  /** The last record completed by `add` (valid right after it returned 'complete'). */
  completed: Uint8Array | null = null;
  /** Partial records dropped for lack of room or time. */
  evicted = 0;

  constructor(o: PartAssemblerOptions = {}) {
    this.maxPending = o.maxPending ?? 64;
    this.maxBytes = o.maxBytes ?? 8 * 1024 * 1024;
    this.ttlMs = o.ttlMs ?? 60_000;
  }

  get size(): number {
    return this.pending.size;
  }

  /** Bytes held in partial records. */
  get heldBytes(): number {
    return this.bytes;
  }

  /**
   * Adds part `part` of `parts` of member `name`'s alive broadcast at `incarnation` (`data` is
   * copied when stored). On 'complete', `completed` holds the whole broadcast.
   */
  add(name: string, incarnation: number, part: number, parts: number, data: Uint8Array, now: number): PartOutcome {
    this.expire(now);
    let p = this.pending.get(name);
    if (p && incarnation < p.incarnation) return 'stale';
    if (p && incarnation === p.incarnation && p.parts.length !== parts) return 'mismatch';
    if (!p || incarnation > p.incarnation) {
      if (p) this.forget(name, p);
      p = { incarnation, parts: new Array(parts), got: 0, bytes: 0, at: now };
      this.pending.set(name, p);
    }
    if (p.parts[part] !== undefined) return 'duplicate';
    p.parts[part] = data.slice();
    p.got++;
    p.bytes += data.length;
    this.bytes += data.length;
    if (p.got === parts) {
      const out = new Uint8Array(p.bytes);
      let off = 0;
      for (const d of p.parts) {
        out.set(d!, off);
        off += d!.length;
      }
      this.forget(name, p);
      this.completed = out;
      return 'complete';
    }
    this.bound(name);
    return this.pending.has(name) ? 'stored' : 'dropped';
  }

  /** Incarnation of the record being assembled for `name`, or -1. */
  pendingIncarnation(name: string): number {
    return this.pending.get(name)?.incarnation ?? -1;
  }

  /** Drops a member's partial record (it was replaced by a whole one, or reaped). */
  discard(name: string, upToIncarnation = Infinity): void {
    const p = this.pending.get(name);
    if (p && p.incarnation <= upToIncarnation) this.forget(name, p);
  }

  private forget(name: string, p: Pending): void {
    this.pending.delete(name);
    this.bytes -= p.bytes;
  }

  private expire(now: number): void {
    for (const [name, p] of this.pending) {
      if (now - p.at < this.ttlMs) break; // insertion order = age order
      this.forget(name, p);
      this.evicted++;
    }
  }

  /** Oldest partial records out until within bounds (never the one just added unless alone over). */
  private bound(keep: string): void {
    for (const [name, p] of this.pending) {
      if (this.pending.size <= this.maxPending && this.bytes <= this.maxBytes) return;
      if (name === keep && this.pending.size > 1) continue;
      this.forget(name, p);
      this.evicted++;
    }
  }
}
