/**
 * Seeded in-process simulator: runs the real gossip code (GossipNode with its codec, keyring,
 * probes, suspicion, dissemination and push-pull) for thousands of nodes on one FakeClock over a
 * MemoryNetwork with loss, delay, partitions and slow nodes. Same seed → same run.
 *
 * Memory at scale: records are shared between nodes through one RecordInterner (decoded records
 * are immutable, keyed by their exact bytes) and names through one NameRegistry, so a node's view
 * costs ~30 bytes per member (member-table.ts).
 */
import { FakeClock } from '../clock';
import { RecordInterner } from './codec';
import { GossipTuning } from './config';
import { Keyring, sodiumReady } from './keyring';
import { allocateColumns, NameRegistry, RecordStore, TableColumns } from './member-table';
import { MemoryNetwork, MemoryTransport } from './memory-transport';
import { EndpointRecord, NodeRecord, ST_ALIVE } from './record';
import { Rng, seededRng } from './rng';
import { GossipNode, MemberEvent } from './swim';

export interface SimOptions {
  /** Number of nodes created at start. */
  n: number;
  seed: number;
  tuning: GossipTuning;
  loss?: number;
  delayMs?: number;
  jitterMs?: number;
  /** Cluster keys (first primary) given to every node; default: one fixed key. */
  keys?: Uint8Array[];
  /** `converged`: every node starts knowing all others (fast set-up for big N);
   *  `join`: every node starts alone and joins through node 0. Default converged. */
  bootstrap?: 'converged' | 'join';
  /** Endpoints announced per node (realistic record sizes). Default 2. */
  endpointsPerNode?: number;
}

export interface SimNode {
  index: number;
  name: string;
  address: string;
  node: GossipNode;
  transport: MemoryTransport;
  /** Currently running (not killed). */
  up: boolean;
}

export function simAddress(i: number, port = 7946): string {
  const v = i + 1;
  return `198.${18 + (v >> 16)}.${(v >> 8) & 255}.${v & 255}:${port}`;
}

export function simName(i: number): string {
  return `n${i}`;
}

class MapInterner implements RecordInterner {
  private readonly m = new Map<string, NodeRecord>();
  get(key: string): NodeRecord | undefined {
    return this.m.get(key);
  }
  set(key: string, r: NodeRecord): void {
    if (this.m.size > 1_000_000) this.m.clear();
    this.m.set(key, r);
  }
}

export class Simulator {
  readonly clock = new FakeClock(0);
  readonly rng: Rng;
  readonly net: MemoryNetwork;
  readonly registry = new NameRegistry();
  readonly interner = new MapInterner();
  readonly store = new RecordStore();
  readonly nodes: SimNode[] = [];
  private readonly keys: Uint8Array[];
  private columns: ((i: number) => TableColumns) | null = null;
  private observers: ((node: SimNode, ev: MemberEvent) => void)[] = [];

  private constructor(readonly opts: SimOptions) {
    this.rng = seededRng(opts.seed);
    this.net = new MemoryNetwork({ clock: this.clock, rng: seededRng(opts.seed ^ 0x5eed), loss: opts.loss ?? 0, delayMs: opts.delayMs ?? 0.5, jitterMs: opts.jitterMs ?? 0.5 });
    this.keys = opts.keys ?? [new Uint8Array(32).fill(7)];
  }

  static async create(opts: SimOptions): Promise<Simulator> {
    await sodiumReady();
    const sim = new Simulator(opts);
    if (opts.n >= 1000) {
      // Room for the initial nodes plus some joiners; beyond that tables grow by copying.
      const cap = opts.n + 64;
      for (let i = 0; i < cap; i++) sim.registry.id(simName(i));
      sim.columns = allocateColumns(opts.n, cap, cap);
    }
    for (let i = 0; i < opts.n; i++) sim.createNode(i, 0);
    if ((opts.bootstrap ?? 'converged') === 'converged') {
      const records = sim.nodes.map((s) => s.node.self);
      const ids = Int32Array.from(records, (r) => sim.registry.id(r.name));
      const handles = Int32Array.from(records, (r) => sim.store.put(r, records.length - 1));
      for (const s of sim.nodes) {
        // A random rotation of one order (the prober reshuffles after its first round).
        s.node.table.addMany(ids, records, handles, ST_ALIVE, 0, s.name, Math.floor(sim.rng() * records.length));
      }
      for (const s of sim.nodes) s.node.start();
    } else {
      for (const s of sim.nodes) s.node.start();
      for (const s of sim.nodes.slice(1)) s.node.join([sim.nodes[0].address]);
    }
    return sim;
  }

  /** Calls `fn` for every member event on every node. */
  observe(fn: (node: SimNode, ev: MemberEvent) => void): void {
    this.observers.push(fn);
  }

  private endpoints(i: number): EndpointRecord[] {
    const out: EndpointRecord[] = [];
    const k = this.opts.endpointsPerNode ?? 2;
    for (let e = 0; e < k; e++) {
      const id = i * 16 + e;
      const mac = `02:00:${[(id >> 24) & 255, (id >> 16) & 255, (id >> 8) & 255, id & 255].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
      out.push({ vni: 100, mac, ips: [`198.19.${(id >> 8) & 255}.${id & 255}`] });
    }
    return out;
  }

  /** Creates node `i` (not started). A previous incarnation of it must be down. */
  private createNode(i: number, initialIncarnation: number, keys = this.keys): SimNode {
    const address = simAddress(i);
    const transport = this.net.attach(address);
    const node = new GossipNode({
      name: simName(i),
      transport,
      keyring: new Keyring(keys),
      clock: this.clock,
      tuning: this.opts.tuning,
      underlay: address.replace(/:7946$/, ':4789'),
      vnis: [100],
      endpoints: this.endpoints(i),
      publicKey: 'k'.repeat(44),
      rng: seededRng((this.opts.seed * 7919 + i * 104729 + initialIncarnation) >>> 0),
      registry: this.registry,
      interner: this.interner,
      recordStore: this.store,
      initialIncarnation,
      tableCapacity: this.opts.n + 16,
      tableColumns: this.columns && i < this.opts.n && initialIncarnation === 0 && !this.nodes[i] ? this.columns(i) : undefined,
      seeds: i === 0 ? [] : [simAddress(0)],
    });
    const sn: SimNode = { index: i, name: node.name, address, node, transport, up: true };
    node.on((ev) => {
      for (const fn of this.observers) fn(sn, ev);
    });
    this.nodes[i] = sn;
    return sn;
  }

  /** Adds a new node that joins through `seed` (default node 0). Returns it. */
  addNode(opts: { seed?: number; keys?: Uint8Array[]; initialIncarnation?: number } = {}): SimNode {
    const i = this.nodes.length;
    const sn = this.createNode(i, opts.initialIncarnation ?? 0, opts.keys);
    sn.node.start();
    sn.node.join([this.nodes[opts.seed ?? 0].address]);
    return sn;
  }

  /** Crash: the node stops at once, without a leave message (kill -9). */
  kill(i: number): void {
    const sn = this.nodes[i];
    if (!sn.up) return;
    sn.up = false;
    void sn.node.shutdown();
  }

  /** Graceful stop: leave, then shut down. */
  leave(i: number): void {
    const sn = this.nodes[i];
    if (!sn.up) return;
    sn.node.leave(() => {
      sn.up = false;
      void sn.node.shutdown();
    });
  }

  /** Restarts a killed node with a fresh process state (empty view) and rejoins via node `seed`. */
  restart(i: number, opts: { seed?: number; initialIncarnation?: number } = {}): SimNode {
    const old = this.nodes[i];
    if (old.up) this.kill(i);
    const sn = this.createNode(i, opts.initialIncarnation ?? 0);
    sn.node.start();
    const seed = opts.seed ?? (i === 0 ? 1 : 0);
    sn.node.join([this.nodes[seed].address]);
    return sn;
  }

  run(ms: number): void {
    this.clock.advance(ms);
  }

  /** Runs until `pred()` holds (checked every `stepMs`) or `maxMs` passed; returns elapsed ms or −1. */
  runUntil(pred: () => boolean, maxMs: number, stepMs = 100): number {
    const start = this.clock.now();
    while (this.clock.now() - start < maxMs) {
      if (pred()) return this.clock.now() - start;
      this.clock.advance(stepMs);
    }
    return pred() ? this.clock.now() - start : -1;
  }

  /** Running nodes. */
  up(): SimNode[] {
    return this.nodes.filter((s) => s.up);
  }

  /** How many running nodes (excluding `name` itself) see `name` in `state` (−1 = unknown). */
  countViews(name: string, state: number): number {
    let c = 0;
    for (const s of this.nodes) if (s.up && s.name !== name && s.node.stateOf(name) === state) c++;
    return c;
  }

  /** True when every running node sees every other running node alive. */
  converged(): boolean {
    const up = this.up();
    for (const a of up) {
      for (const b of up) {
        if (a !== b && a.node.stateOf(b.name) !== ST_ALIVE) return false;
      }
    }
    return true;
  }

  /** Bytes sent by all transports (packets + streams). */
  bytesSent(): number {
    let b = 0;
    for (const s of this.nodes) b += s.transport.stats.packetBytesSent + s.transport.stats.streamBytesSent;
    return b;
  }
}
