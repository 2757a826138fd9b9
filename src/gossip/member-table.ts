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

/**
 * Reference-counted record storage: a table row holds a small integer handle instead of a
 * pointer, so 10^8 rows (simulator) put no pressure on the garbage collector. One store per
 * agent; the simulator shares one between all nodes (identical record objects → one handle).
 */
export class RecordStore {
  readonly recs: (NodeRecord | null)[] = [];
  private readonly refs: number[] = [];
  private readonly free: number[] = [];
  private readonly index = new Map<NodeRecord, number>();

  /** Handle for `r`, with `n` more references. */
  put(r: NodeRecord, n = 1): number {
    let h = this.index.get(r);
    if (h === undefined) {
      h = this.free.length > 0 ? this.free.pop()! : this.recs.length;
      this.recs[h] = r;
      this.refs[h] = 0;
      this.index.set(r, h);
    }
    this.refs[h] += n;
    return h;
  }

  release(h: number): void {
    if (--this.refs[h] > 0) return;
    const r = this.recs[h];
    if (r) this.index.delete(r);
    this.recs[h] = null;
    this.free.push(h);
  }

  /** Distinct records held. */
  get size(): number {
    return this.index.size;
  }
}

/** Column storage for one table: equal-length ids/state/incarnation/changedAt, any-length slotOf. */
export interface TableColumns {
  ids: Int32Array;
  rec: Int32Array;
  state: Uint8Array;
  incarnation: Uint32Array;
  changedAt: Float64Array;
  slotOf: Int32Array;
}

/** Carves `n` tables' columns of capacity `cap` (and slotOf of `names`) out of five buffers. */
export function allocateColumns(n: number, cap: number, names: number): (i: number) => TableColumns {
  const ids = new Int32Array(n * cap);
  const rec = new Int32Array(n * cap);
  const state = new Uint8Array(n * cap);
  const incarnation = new Uint32Array(n * cap);
  const changedAt = new Float64Array(n * cap);
  const slotOf = new Int32Array(n * names);
  return (i) => ({
    ids: ids.subarray(i * cap, (i + 1) * cap),
    rec: rec.subarray(i * cap, (i + 1) * cap),
    state: state.subarray(i * cap, (i + 1) * cap),
    incarnation: incarnation.subarray(i * cap, (i + 1) * cap),
    changedAt: changedAt.subarray(i * cap, (i + 1) * cap),
    slotOf: slotOf.subarray(i * names, (i + 1) * names),
  });
}

export class MemberTable {
  count = 0;
  private cap: number;
  ids: Int32Array;
  /** Record handle per slot (see RecordStore). */
  rec: Int32Array;
  state: Uint8Array;
  incarnation: Uint32Array;
  changedAt: Float64Array;
  readonly store: RecordStore;
  /** global id → slot + 1 (0 = absent). */
  private slotOf: Int32Array;
  /** Members per state. */
  readonly byState = new Int32Array(4);

  /**
   * @param columns preallocated column storage (the simulator carves every node's columns out of
   *   a few big buffers instead of 50,000 small allocations); grown by copying when exceeded.
   */
  constructor(readonly registry: NameRegistry, initialCapacity = 16, columns?: TableColumns, store?: RecordStore) {
    this.store = store ?? new RecordStore();
    this.cap = columns ? columns.ids.length : initialCapacity;
    this.ids = columns?.ids ?? new Int32Array(this.cap);
    this.rec = columns?.rec ?? new Int32Array(this.cap);
    this.state = columns?.state ?? new Uint8Array(this.cap);
    this.incarnation = columns?.incarnation ?? new Uint32Array(this.cap);
    this.changedAt = columns?.changedAt ?? new Float64Array(this.cap);
    this.slotOf = columns?.slotOf ?? new Int32Array(Math.max(16, registry.size));
  }

  /** The record in `slot`. */
  record(slot: number): NodeRecord {
    return this.store.recs[this.rec[slot]]!;
  }

  setRecord(slot: number, r: NodeRecord): void {
    const h = this.store.put(r);
    this.store.release(this.rec[slot]);
    this.rec[slot] = h;
  }

  /** Slot of `name`, or −1. */
  find(name: string): number {
    const id = this.registry.lookup(name);
    if (id < 0 || id >= this.slotOf.length) return -1;
    return this.slotOf[id] - 1;
  }

  name(slot: number): string {
    return this.registry.names[this.ids[slot]];
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
    this.rec[slot] = this.store.put(record);
    this.slotOf[id] = slot + 1;
    this.byState[state]++;
    return slot;
  }

  /**
   * Bulk add for simulator set-up: `ids[i]` must be `registry.id(records[i].name)` and
   * `handles[i]` a store handle of `records[i]` whose references the caller already took
   * (`store.put(r, n)`); no member may already be present. Skips per-row lookups (10,000 × 10,000 rows in seconds, not minutes).
   */
  addMany(ids: Int32Array, records: NodeRecord[], handles: Int32Array, state: number, now: number, skipName?: string, rotate = 0): void {
    let max = 0;
    for (let i = 0; i < ids.length; i++) if (ids[i] > max) max = ids[i];
    if (max >= this.slotOf.length) {
      const s = new Int32Array(max + 1);
      s.set(this.slotOf);
      this.slotOf = s;
    }
    while (this.cap < this.count + ids.length) this.grow();
    const n = ids.length;
    for (let j = 0; j < n; j++) {
      const i = (j + rotate) % n;
      const r = records[i];
      if (r.name === skipName) continue;
      const slot = this.count++;
      this.ids[slot] = ids[i];
      this.state[slot] = state;
      this.incarnation[slot] = r.incarnation;
      this.changedAt[slot] = now;
      this.rec[slot] = handles[i];
      this.slotOf[ids[i]] = slot + 1;
      this.byState[state]++;
    }
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
    this.store.release(this.rec[slot]);
    if (slot !== last) this.move(last, slot);
    this.count = last;
  }

  swap(i: number, j: number): void {
    if (i === j) return;
    const id = this.ids[i]; this.ids[i] = this.ids[j]; this.ids[j] = id;
    const st = this.state[i]; this.state[i] = this.state[j]; this.state[j] = st;
    const inc = this.incarnation[i]; this.incarnation[i] = this.incarnation[j]; this.incarnation[j] = inc;
    const ch = this.changedAt[i]; this.changedAt[i] = this.changedAt[j]; this.changedAt[j] = ch;
    const r = this.rec[i]; this.rec[i] = this.rec[j]; this.rec[j] = r;
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
    this.rec[to] = this.rec[from];
    this.slotOf[this.ids[to]] = to + 1;
  }

  private grow(): void {
    this.cap *= 2;
    const ids = new Int32Array(this.cap); ids.set(this.ids); this.ids = ids;
    const rec = new Int32Array(this.cap); rec.set(this.rec); this.rec = rec;
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
