/**
 * The membership table: one row per known member, stored column-wise in typed arrays so that a
 * simulator can hold 10,000 nodes × 10,000 members in one process (about 30 bytes per row).
 * Names are mapped to small integers by a `NameRegistry` (shared by all nodes of a simulation,
 * one per agent otherwise); rows are addressed by slot and removed by swap-with-last.
 *
 * Slot order doubles as the probe order: the prober walks slots round-robin and the table is
 * reshuffled at the end of every round (SWIM's randomized round-robin probe target selection).
 */
import { NodeRecord, ST_ALIVE, ST_DEAD, ST_LEFT, ST_SUSPECT } from './record';
import { Rng } from './rng';

export class NameRegistry {
  private readonly ids = new Map<string, number>();
  readonly names: string[] = [];

  id(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.length;
      this.ids.set(name, id);
      this.names.push(name);
    }
    return id;
  }

  lookup(name: string): number {
    return this.ids.get(name) ?? -1;
  }

  get size(): number {
    return this.names.length;
  }
}

export class MemberTable {
  count = 0;
  private cap: number;
  ids: Int32Array;
  state: Uint8Array;
  incarnation: Uint32Array;
  changedAt: Float64Array;
  records: NodeRecord[] = [];
  /** global id → slot + 1 (0 = absent). */
  private slotOf: Int32Array;
  /** Members per state. */
  readonly byState = new Int32Array(4);

  constructor(readonly registry: NameRegistry, initialCapacity = 16) {
    this.cap = initialCapacity;
    this.ids = new Int32Array(this.cap);
    this.state = new Uint8Array(this.cap);
    this.incarnation = new Uint32Array(this.cap);
    this.changedAt = new Float64Array(this.cap);
    this.slotOf = new Int32Array(Math.max(16, registry.size));
  }

  /** Slot of `name`, or −1. */
  find(name: string): number {
    const id = this.registry.lookup(name);
    if (id < 0 || id >= this.slotOf.length) return -1;
    return this.slotOf[id] - 1;
  }

  name(slot: number): string {
    return this.records[slot].name;
  }

  /** Alive + suspect members (the "live" cluster size used in formulas). */
  get live(): number {
    return this.byState[ST_ALIVE] + this.byState[ST_SUSPECT];
  }

  add(record: NodeRecord, state: number, now: number): number {
    const id = this.registry.id(record.name);
    if (id >= this.slotOf.length) {
      let n = this.slotOf.length * 2;
      while (n <= id) n *= 2;
      const s = new Int32Array(n);
      s.set(this.slotOf);
      this.slotOf = s;
    }
    if (this.count === this.cap) this.grow();
    const slot = this.count++;
    this.ids[slot] = id;
    this.state[slot] = state;
    this.incarnation[slot] = record.incarnation;
    this.changedAt[slot] = now;
    this.records[slot] = record;
    this.slotOf[id] = slot + 1;
    this.byState[state]++;
    return slot;
  }

  setState(slot: number, state: number, now: number): void {
    const old = this.state[slot];
    if (old === state) return;
    this.byState[old]--;
    this.byState[state]++;
    this.state[slot] = state;
    this.changedAt[slot] = now;
  }

  remove(slot: number): void {
    const last = this.count - 1;
    this.byState[this.state[slot]]--;
    this.slotOf[this.ids[slot]] = 0;
    if (slot !== last) this.move(last, slot);
    this.records.length = last;
    this.count = last;
  }

  swap(i: number, j: number): void {
    if (i === j) return;
    const id = this.ids[i]; this.ids[i] = this.ids[j]; this.ids[j] = id;
    const st = this.state[i]; this.state[i] = this.state[j]; this.state[j] = st;
    const inc = this.incarnation[i]; this.incarnation[i] = this.incarnation[j]; this.incarnation[j] = inc;
    const ch = this.changedAt[i]; this.changedAt[i] = this.changedAt[j]; this.changedAt[j] = ch;
    const r = this.records[i]; this.records[i] = this.records[j]; this.records[j] = r;
    this.slotOf[this.ids[i]] = i + 1;
    this.slotOf[this.ids[j]] = j + 1;
  }

  shuffle(rng: Rng): void {
    for (let i = this.count - 1; i > 0; i--) this.swap(i, Math.floor(rng() * (i + 1)));
  }

  private move(from: number, to: number): void {
    this.ids[to] = this.ids[from];
    this.state[to] = this.state[from];
    this.incarnation[to] = this.incarnation[from];
    this.changedAt[to] = this.changedAt[from];
    this.records[to] = this.records[from];
    this.slotOf[this.ids[to]] = to + 1;
  }

  private grow(): void {
    this.cap *= 2;
    const ids = new Int32Array(this.cap); ids.set(this.ids); this.ids = ids;
    const st = new Uint8Array(this.cap); st.set(this.state); this.state = st;
    const inc = new Uint32Array(this.cap); inc.set(this.incarnation); this.incarnation = inc;
    const ch = new Float64Array(this.cap); ch.set(this.changedAt); this.changedAt = ch;
  }

  /** Dead or left. */
  isGone(slot: number): boolean {
    const s = this.state[slot];
    return s === ST_DEAD || s === ST_LEFT;
  }
}
