/**
 * Piggyback dissemination queue (memberlist queue.go TransmitLimitedQueue). Each update about a
 * member is queued pre-encoded, at most one per member (a newer update replaces the older one),
 * and is sent at most `retransmitLimit(N) = retransmitMult × ceil(log10(N + 1))` times. Packing
 * prefers updates sent the fewest times, newest first, and fills a byte budget.
 */

interface Item {
  key: string;
  data: Uint8Array;
  transmits: number;
  /** Multiplier of the retransmit limit for this update. */
  mult: number;
  id: number;
  onDone?: () => void;
}

export function retransmitLimit(retransmitMult: number, n: number): number {
  return retransmitMult * Math.max(1, Math.ceil(Math.log10(n + 1)));
}

export class BroadcastQueue {
  private readonly items = new Map<string, Item>();
  private seq = 0;
  private sorted: Item[] | null = null;

  /** @param numNodes current cluster size estimate (for the retransmit limit) */
  constructor(private readonly retransmitMult: number, private readonly numNodes: () => number) {}

  get length(): number {
    return this.items.size;
  }

  /**
   * Queues `data` about member `key`, replacing any older update about it. `onDone` runs when it
   * is retired or replaced. `mult` multiplies its retransmit limit (the parts of a record cut into
   * parts: each must reach everyone for the record to complete).
   */
  push(key: string, data: Uint8Array, onDone?: () => void, mult = 1): void {
    const old = this.items.get(key);
    if (old) {
      this.items.delete(key);
      old.onDone?.();
    }
    this.items.set(key, { key, data, transmits: 0, mult, id: this.seq++, onDone });
    this.sorted = null;
  }

  /** Retires the update queued under `key`, if any. */
  remove(key: string): void {
    const it = this.items.get(key);
    if (!it) return;
    this.items.delete(key);
    this.sorted = null;
    it.onDone?.();
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  /** Takes updates totalling at most `budget` bytes (each costing `overhead` extra). If
   *  `oversizeAlone` and nothing fits, the first update is returned alone even if larger. */
  take(budget: number, overhead: number, oversizeAlone = false): Uint8Array[] {
    if (this.items.size === 0) return [];
    if (!this.sorted) {
      this.sorted = [...this.items.values()];
    }
    // Fewest transmits first, then newest first.
    this.sorted.sort((a, b) => a.transmits - b.transmits || b.id - a.id);
    const limit = retransmitLimit(this.retransmitMult, this.numNodes());
    const out: Uint8Array[] = [];
    let used = 0;
    let retired = false;
    for (const it of this.sorted) {
      if (used + it.data.length + overhead > budget) continue;
      used += it.data.length + overhead;
      out.push(it.data);
      if (++it.transmits >= limit * it.mult) {
        this.retire(it);
        retired = true;
      }
      if (budget - used < overhead + 4) break;
    }
    if (out.length === 0 && oversizeAlone && this.sorted.length > 0) {
      const it = this.sorted[0];
      out.push(it.data);
      if (++it.transmits >= limit * it.mult) {
        this.retire(it);
        retired = true;
      }
    }
    if (retired) this.sorted = this.sorted.filter((x) => this.items.get(x.key) === x);
    return out;
  }

  private retire(it: Item): void {
    if (this.items.get(it.key) === it) this.items.delete(it.key);
    it.onDone?.();
  }

  /** Drops everything (shutdown). */
  reset(): void {
    for (const it of this.items.values()) it.onDone?.();
    this.items.clear();
    this.sorted = null;
  }
}
