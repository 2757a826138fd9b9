/**
 * In-memory twins of the I/O seams in `seams.ts` (as wireguard-go's `tun/tuntest` and `conn/bindtest`):
 * the same `Datapath` runs over them deterministically in unit tests and simulations.
 *
 *   - `MemoryTap`: a TAP device whose "kernel side" is the test: `inject(frame)` queues a frame for
 *     `readBatch`, frames given to `writeBatch` are copied into `written`.
 *   - `MemoryUdpNetwork`: a hub of `MemoryUdp` endpoints attached by (address, port). `sendBatch`
 *     copies each datagram into the destination's receive queue; the source record carries the
 *     sender's address and the port of the source socket chosen by `srcIdx` (index 0 = the
 *     endpoint's own port, others = ephemeral ports), as the real transport does.
 *   - `MemoryReactor`: readiness. Devices with queued data are "readable"; `run()` calls their
 *     callbacks (level-triggered: again while data remains) until everything is quiet, in a fixed
 *     order, so a test is a deterministic sequence of steps. With `auto: true` the reactor runs
 *     itself on `setImmediate` whenever something is queued (for agent-level tests on real timers).
 *
 * UDP GRO (`MemoryUdp.gro = true`, as `NativeUdp` with GRO on): `recvBatchRuns` groups the queue the
 * way the kernel's UDP GRO coalesces a socket's input — consecutive datagrams from one source record,
 * all the first one's length but the last (which may be shorter and ends the group), at most 64 of
 * them and 64 KiB — into GRO buffers, at most 8 per call as the native receive area holds, and splits
 * them with the addon's own `groRunsSplit` (the split `udpRecv` uses, runs going on across buffers
 * of one sender as there), so runs come out as the same descriptors, byte for byte (needs the addon
 * built; `recvBatch` never does this).
 *
 * Faults (the gossip simulator can reuse the pattern): `lossRate` with a seeded PRNG, `delayMs`
 * (on the injected clock; delivered when the clock reaches it), `partition(a, b)` / `heal()`, and a
 * general `filter` hook. Queues are bounded (`queueLimit`, like a socket buffer): overflow is
 * dropped and counted in `overflows`. `failNextSends` / `failNextWrites` simulate EAGAIN; `skip` (on
 * a tap or a UDP endpoint) fails single descriptors with a chosen errno, as the real seams report
 * them (consumed, `status[j]` = errno). Device errors: `readError` / `recvError` make reads throw
 * (as a deleted TAP's read does), `emitError` reports a poll error the way the native devices do
 * (to the `onError` handler, thrown when there is none; polling stops until `resume`).
 */
import type { Clock } from '../clock';
import type { Endpoint } from '../config/types';
import { endpointToRecord, isV4Mapped, recordToEndpoint } from './addr';
import { loadAddon } from '../native/addon';
import type { RxBatch, RxRuns, TapDevice, TxBatch, UdpTransport } from './seams';
import { ADDR_LEN, GRO_RUN_AREA } from './seams';

/** Largest UDP GRO buffer, and most datagrams the kernel coalesces into one (UDP_GRO_CNT_MAX). */
const GRO_BUF = 65536;
const GRO_MAX_SEGS = 64;

/** Something the reactor can make readable. */
interface Readable {
  hasData(): boolean;
  fire(): void;
}

export class MemoryReactor {
  private readonly sources: Readable[] = [];
  private scheduled = false;
  /** Total callback invocations (diagnostics). */
  calls = 0;

  constructor(readonly opts: { auto?: boolean } = {}) {}

  /** @internal */
  add(src: Readable): void {
    this.sources.push(src);
  }

  /** @internal */
  remove(src: Readable): void {
    const i = this.sources.indexOf(src);
    if (i >= 0) this.sources.splice(i, 1);
  }

  /** @internal called when data was queued somewhere. */
  kick(): void {
    if (!this.opts.auto || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.run();
    });
  }

  /**
   * Calls the callbacks of readable sources, round after round, until none has data (or
   * `maxRounds` rounds have run: a source whose callback never drains it cannot hang a test).
   * Returns the number of rounds run.
   */
  run(maxRounds = 10_000): number {
    let rounds = 0;
    while (rounds < maxRounds) {
      let any = false;
      for (const s of this.sources.slice()) {
        if (s.hasData()) {
          any = true;
          this.calls++;
          s.fire();
        }
      }
      if (!any) break;
      rounds++;
    }
    return rounds;
  }
}

/** A TAP twin. */
export class MemoryTap implements TapDevice {
  readonly name: string;
  readonly mac: Buffer;
  /** Frames the data path wrote (copies), oldest first. */
  readonly written: Buffer[] = [];
  /** Frames queued by `inject`, not yet read. */
  private readonly queue: Buffer[] = [];
  private cb: (() => void) | null = null;
  private closed = false;
  /** The next N `writeBatch` calls write nothing (EAGAIN). */
  failNextWrites = 0;
  /** Most frames one `writeBatch` writes (then EAGAIN for the rest); Infinity by default. */
  writeLimit = Infinity;
  /**
   * Per-descriptor fault: called with each frame about to be written; a positive errno skips it
   * (consumed, `status[j]` = errno, not written), 0 writes it. Null by default.
   */
  skip: ((frame: Buffer) => number) | null = null;
  readBatches = 0;
  writeBatches = 0;
  private readonly src: Readable;

  private readonly reactor: MemoryReactor;

  constructor(opts: { name?: string; mac?: Buffer; reactor?: MemoryReactor } = {}) {
    this.reactor = opts.reactor ?? new MemoryReactor();
    this.name = opts.name ?? 'memtap';
    this.mac = opts.mac ?? Buffer.from([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
    this.src = { hasData: () => !this.closed && !this.paused && this.cb !== null && this.queue.length > 0, fire: () => this.cb?.() };
    this.reactor.add(this.src);
  }

  /** While set, `readBatch` throws it (a device error: the TAP was deleted underneath, EIO…). */
  readError: Error | null = null;
  private errCb: ((err: Error) => void) | null = null;
  private paused = false;

  /** Registers the poll-error handler (as `NativeTap.onError`). */
  onError(cb: (err: Error) => void): void {
    this.errCb = cb;
  }

  /** A poll error, as the native device reports it: polling stops; the handler gets it, else it is thrown. */
  emitError(err: Error): void {
    this.paused = true;
    if (this.errCb) this.errCb(err);
    else throw err;
  }

  /** Stops readability callbacks until `resume()`. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    if (this.queue.length) this.reactor.kick();
  }

  /** Queues a frame (copied) for the data path to read. */
  inject(frame: Uint8Array): void {
    if (this.closed) return;
    this.queue.push(Buffer.from(frame));
    this.reactor.kick();
  }

  /** Frames written since the last call, removed from `written`. */
  takeWritten(): Buffer[] {
    return this.written.splice(0, this.written.length);
  }

  get pending(): number {
    return this.queue.length;
  }

  readBatch(batch: RxBatch): number {
    if (this.readError !== null) throw this.readError;
    let n = 0;
    this.readBatches++;
    while (n < batch.slots && this.queue.length > 0) {
      const f = this.queue.shift()!;
      const room = batch.slotSize - batch.headroom;
      const len = Math.min(f.length, room); // a real read() truncates to the buffer too
      f.copy(batch.slab, n * batch.slotSize + batch.headroom, 0, len);
      batch.lens[n] = len;
      n++;
    }
    return n;
  }

  writeBatch(batch: TxBatch): number {
    this.writeBatches++;
    if (this.failNextWrites > 0) {
      this.failNextWrites--;
      return 0;
    }
    const n = Math.min(batch.count, this.writeLimit);
    for (let i = 0; i < n; i++) {
      const frame = Buffer.from(batch.slab.subarray(batch.offs[i], batch.offs[i] + batch.lens[i]));
      const errno = this.skip === null ? 0 : this.skip(frame);
      batch.status[i] = errno;
      if (errno === 0) this.written.push(frame);
    }
    return n;
  }

  onReadable(cb: () => void): void {
    this.cb = cb;
    if (this.queue.length) this.reactor.kick();
  }

  close(): void {
    this.closed = true;
    this.cb = null;
    this.queue.length = 0;
    this.reactor.remove(this.src);
  }
}

/** A datagram in flight or queued. */
export interface MemoryDatagram {
  data: Buffer;
  /** Source record (sender address, source-socket port). */
  from: Buffer;
  /** Destination record. */
  to: Buffer;
}

/** Decision of a `filter`: deliver, drop, or deliver after a delay (ms on the hub's clock). */
export type FilterVerdict = 'deliver' | 'drop' | number;

/** Small seeded PRNG (mulberry32), so loss patterns repeat. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface MemoryUdpNetworkOptions {
  reactor?: MemoryReactor;
  /** Needed for `delayMs` and delaying filters. */
  clock?: Clock;
  /** Probability a datagram is lost (seeded PRNG). Default 0. */
  lossRate?: number;
  /** Delay applied to every datagram (ms on `clock`). Default 0 (synchronous enqueue). */
  delayMs?: number;
  seed?: number;
  /** Receive queue bound per endpoint (datagrams); overflow is dropped. Default 4096. */
  queueLimit?: number;
}

/** The hub connecting `MemoryUdp` endpoints. */
export class MemoryUdpNetwork {
  readonly reactor: MemoryReactor;
  private readonly endpoints = new Map<string, MemoryUdp>();
  private readonly clock: Clock | undefined;
  private readonly random: () => number;
  private nextEphemeral = 49152;
  lossRate: number;
  delayMs: number;
  readonly queueLimit: number;
  /** Optional per-datagram decision, after the built-in partition and loss checks. */
  filter: ((d: MemoryDatagram) => FilterVerdict) | null = null;
  private readonly cut = new Set<string>();
  /** Datagrams delivered, lost (loss/partition/filter), sent to nowhere, dropped for a full queue. */
  delivered = 0;
  lost = 0;
  unroutable = 0;
  overflows = 0;
  /** Every datagram handed to `sendBatch`, when `capture` is set (tests inspect the wire). */
  capture: MemoryDatagram[] | null = null;

  constructor(opts: MemoryUdpNetworkOptions = {}) {
    this.reactor = opts.reactor ?? new MemoryReactor();
    this.clock = opts.clock;
    this.lossRate = opts.lossRate ?? 0;
    this.delayMs = opts.delayMs ?? 0;
    this.random = seededRandom(opts.seed ?? 1);
    this.queueLimit = opts.queueLimit ?? 4096;
  }

  /**
   * Attaches an endpoint receiving at `address:port` with `sourceCount` source sockets (index 0
   * sends from `port`, the others from distinct ephemeral ports).
   */
  attach(address: string, port: number, sourceCount = 1): MemoryUdp {
    const rec = endpointToRecord({ address, port, family: address.includes(':') ? 6 : 4 });
    const key = rec.toString('hex');
    if (this.endpoints.has(key)) throw new Error(`address in use: ${address}:${port}`);
    const ports = [port];
    for (let i = 1; i < sourceCount; i++) ports.push(this.nextEphemeral++);
    const ep = new MemoryUdp(this, rec, ports, this.reactor);
    this.endpoints.set(key, ep);
    for (let i = 1; i < ports.length; i++) this.endpoints.set(srcKey(rec, ports[i]), ep);
    return ep;
  }

  /** @internal */
  detach(ep: MemoryUdp): void {
    for (const [k, v] of this.endpoints) if (v === ep) this.endpoints.delete(k);
  }

  /** Cuts traffic (both ways) between every address in `a` and every address in `b`. */
  partition(a: string[], b: string[]): void {
    for (const x of a) for (const y of b) {
      this.cut.add(`${canon(x)}|${canon(y)}`);
      this.cut.add(`${canon(y)}|${canon(x)}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Endpoint at `address:port`, if attached. */
  endpoint(address: string, port: number): MemoryUdp | undefined {
    return this.endpoints.get(endpointToRecord({ address, port, family: address.includes(':') ? 6 : 4 }).toString('hex'));
  }

  /** @internal */
  route(d: MemoryDatagram): void {
    if (this.capture) this.capture.push(d);
    const dst = this.endpoints.get(d.to.toString('hex'));
    if (!dst) {
      this.unroutable++;
      return;
    }
    if (this.cut.size && this.cut.has(`${addrText(d.from)}|${addrText(d.to)}`)) {
      this.lost++;
      return;
    }
    if (this.lossRate > 0 && this.random() < this.lossRate) {
      this.lost++;
      return;
    }
    let delay = this.delayMs;
    if (this.filter) {
      const v = this.filter(d);
      if (v === 'drop') {
        this.lost++;
        return;
      }
      if (typeof v === 'number') delay += v;
    }
    if (delay > 0) {
      if (!this.clock) throw new Error('MemoryUdpNetwork: a delay needs a clock');
      this.clock.setTimer(delay, () => dst.enqueue(d));
    } else {
      dst.enqueue(d);
    }
  }
}

function srcKey(rec: Buffer, port: number): string {
  const r = Buffer.from(rec);
  r[16] = port >>> 8;
  r[17] = port & 0xff;
  return r.toString('hex');
}

function canon(address: string): string {
  return recordToEndpoint(endpointToRecord({ address, port: 0, family: address.includes(':') ? 6 : 4 }), 0).address;
}

function addrText(rec: Buffer): string {
  return recordToEndpoint(rec, 0).address;
}

/** A UDP transport twin attached to a `MemoryUdpNetwork`. */
export class MemoryUdp implements UdpTransport {
  readonly family: 4 | 6;
  readonly sourceCount: number;
  /** Own record (receive address). */
  readonly record: Buffer;
  private readonly queue: MemoryDatagram[] = [];
  private cb: (() => void) | null = null;
  private closed = false;
  private readonly src: Readable;
  /** The next N `sendBatch` calls send nothing (EAGAIN). */
  failNextSends = 0;
  /**
   * Per-descriptor fault: called with each datagram and its destination record; a positive errno
   * skips it (consumed, `status[j]` = errno, not sent: EMSGSIZE, EHOSTUNREACH…), 0 sends it.
   */
  skip: ((data: Buffer, to: Buffer) => number) | null = null;
  sendBatches = 0;
  recvBatches = 0;
  /** Datagrams sent per source index. */
  readonly sentBySource: number[];
  /** UDP GRO on: `recvBatchRuns` forms runs (see the file comment). Default false. */
  gro = false;
  /** GRO buffers formed by `recvBatchRuns` that held several datagrams (as NativeIoStats.groBuffers). */
  groBuffers = 0;
  /** The addon's counters of `groRunsSplit` (truncations, runs), allocated with the first GRO receive. */
  groStats: BigUint64Array | null = null;
  /** The twin's GRO buffers (as native vx_gro): n filled, state = [buffer, offset] of the next datagram to hand out, run area bytes used in this call. */
  private groArea: { bufs: Buffer; lens: Uint32Array; segs: Uint16Array; addrs: Buffer; n: number; state: Uint32Array } | null = null;

  constructor(
    private readonly net: MemoryUdpNetwork,
    record: Buffer,
    readonly sourcePorts: readonly number[],
    private readonly reactor: MemoryReactor,
  ) {
    this.record = record;
    this.family = isV4Mapped(record, 0) ? 4 : 6;
    this.sourceCount = sourcePorts.length;
    this.sentBySource = sourcePorts.map(() => 0);
    this.src = { hasData: () => !this.closed && !this.paused && this.cb !== null && (this.queue.length > 0 || this.groPending), fire: () => this.cb?.() };
    reactor.add(this.src);
  }

  /** While set, `recvBatch` throws it (a socket error). */
  recvError: Error | null = null;
  private errCb: ((err: Error) => void) | null = null;
  private paused = false;

  /** Registers the poll-error handler (as `NativeUdp.onError`). */
  onError(cb: (err: Error) => void): void {
    this.errCb = cb;
  }

  /** A poll error, as the native transport reports it: polling stops; the handler gets it, else it is thrown. */
  emitError(err: Error): void {
    this.paused = true;
    if (this.errCb) this.errCb(err);
    else throw err;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    if (this.queue.length) this.reactor.kick();
  }

  get endpoint(): Endpoint {
    return recordToEndpoint(this.record, 0);
  }

  get pending(): number {
    return this.queue.length;
  }

  /** @internal */
  enqueue(d: MemoryDatagram): void {
    if (this.closed) return;
    if (this.queue.length >= this.net.queueLimit) {
      this.net.overflows++;
      return;
    }
    this.net.delivered++;
    this.queue.push(d);
    this.reactor.kick();
  }

  /** Queues raw bytes as if sent from `from` (tests: malformed input from anywhere). */
  injectFrom(from: Endpoint, data: Uint8Array): void {
    this.enqueue({ data: Buffer.from(data), from: endpointToRecord(from), to: this.record });
  }

  recvBatch(batch: RxBatch): number {
    if (this.recvError !== null) throw this.recvError;
    this.recvBatches++;
    let n = 0;
    while (n < batch.slots && this.queue.length > 0) {
      const d = this.queue.shift()!;
      const room = batch.slotSize - batch.headroom;
      const len = Math.min(d.data.length, room); // recvmmsg truncates (MSG_TRUNC) to the buffer
      d.data.copy(batch.slab, n * batch.slotSize + batch.headroom, 0, len);
      batch.lens[n] = len;
      d.from.copy(batch.addrs, n * ADDR_LEN);
      n++;
    }
    return n;
  }

  /** Whether `recvBatchRuns` forms runs (`gro`). */
  get groRuns(): boolean {
    return this.gro;
  }

  /**
   * As `recvBatch`, with GRO runs (seams.ts `RxRuns`): datagrams grouped into GRO buffers (file
   * comment), each split by the addon's `groRunsSplit`; a buffer is taken only while all of its
   * datagrams fit the slots left. Without `gro`, every datagram is its own descriptor.
   */
  recvBatchRuns(batch: RxBatch, runs: RxRuns): number {
    if (this.recvError !== null) throw this.recvError;
    this.recvBatches++;
    let n = 0;
    if (!this.gro) {
      n = this.recvBatch(batch);
      this.recvBatches--;
      for (let i = 0; i < n; i++) this.plainRun(batch, runs, i);
      return n;
    }
    const addon = loadAddon();
    if (this.groStats === null) this.groStats = new BigUint64Array(addon.constants.STAT_COUNT);
    if (this.groArea === null) {
      this.groArea = { bufs: Buffer.alloc(GRO_RUN_AREA), lens: new Uint32Array(8), segs: new Uint16Array(8), addrs: Buffer.alloc(8 * ADDR_LEN), n: 0,
        state: new Uint32Array(3) };
    }
    const a = this.groArea;
    a.state[2] = 0; // the run area is free again: the caller is done with the previous call's runs
    // as native recv_gro: hand out what the GRO buffers still hold, then (slots left) fill up to 8 more
    // from the queue, as one recvmmsg of the native receive area does, and split again; stop while
    // some are left (slots or the run area full)
    for (let round = 0; round < 2 + this.queue.length && n < batch.slots; round++) {
      if (a.state[0] < a.n) {
        n = addon.groRunsSplit(a.bufs, a.lens, a.segs, a.addrs, a.n, batch.slab, batch.slotSize, batch.headroom, batch.slots, n,
          batch.lens, batch.addrs, runs.offs, runs.gso, runs.segs, runs.wire, runs.superOff, runs.maxFrame, this.groStats, a.state);
        if (a.state[0] < a.n) break;
        continue;
      }
      if (this.queue.length === 0) break;
      a.n = 0;
      a.state[0] = a.state[1] = 0; // state[2] (run area used) goes on within the call
      while (a.n < GRO_RUN_AREA / GRO_BUF && this.queue.length > 0) {
        // one GRO buffer: consecutive datagrams of one source, all the first one's length but a shorter last
        const first = this.queue[0];
        const seg = first.data.length;
        let k = 1;
        let bytes = seg;
        while (k < this.queue.length && k < GRO_MAX_SEGS && seg > 0) {
          const d = this.queue[k];
          if (d.data.length === 0 || d.data.length > seg || bytes + d.data.length > GRO_BUF || !d.from.equals(first.from)) break;
          bytes += d.data.length;
          k++;
          if (d.data.length < seg) break;
        }
        let at = 0; // a lone datagram over 64 KiB (injectFrom) is cut to the buffer, as the kernel would
        for (let j = 0; j < k; j++) {
          const d = this.queue.shift()!;
          at += d.data.copy(a.bufs, a.n * GRO_BUF + at, 0, Math.min(d.data.length, GRO_BUF - at));
        }
        if (k > 1) this.groBuffers++;
        a.lens[a.n] = at;
        a.segs[a.n] = k > 1 ? seg : 0;
        first.from.copy(a.addrs, a.n * ADDR_LEN);
        a.n++;
      }
    }
    return n;
  }

  /** Datagrams read into the twin's GRO buffers and not yet handed out by `recvBatchRuns`. */
  get groPending(): boolean {
    return this.groArea !== null && this.groArea.state[0] < this.groArea.n;
  }

  /** Descriptor i as a single datagram at its slot (the `RxRuns` defaults). */
  private plainRun(batch: RxBatch, runs: RxRuns, i: number): void {
    runs.offs[i] = i * batch.slotSize + batch.headroom;
    runs.gso[2 * i] = 0;
    runs.gso[2 * i + 1] = 0;
    runs.segs[i] = 1;
    runs.wire[i] = batch.lens[i];
  }

  sendBatch(batch: TxBatch): number {
    this.sendBatches++;
    if (this.closed) return 0;
    if (this.failNextSends > 0) {
      this.failNextSends--;
      return 0;
    }
    for (let i = 0; i < batch.count; i++) {
      const idx = batch.srcIdx[i];
      if (idx >= this.sourceCount) throw new RangeError(`srcIdx ${idx} ≥ sourceCount ${this.sourceCount}`);
      const from = Buffer.from(this.record);
      from[16] = this.sourcePorts[idx] >>> 8;
      from[17] = this.sourcePorts[idx] & 0xff;
      const to = Buffer.from(batch.addrs.subarray(i * ADDR_LEN, (i + 1) * ADDR_LEN));
      const data = Buffer.from(batch.slab.subarray(batch.offs[i], batch.offs[i] + batch.lens[i]));
      const errno = this.skip === null ? 0 : this.skip(data, to);
      batch.status[i] = errno;
      if (errno !== 0) continue;
      this.sentBySource[idx]++;
      this.net.route({ data, from, to });
    }
    return batch.count;
  }

  onReadable(cb: () => void): void {
    this.cb = cb;
    if (this.queue.length) this.reactor.kick();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cb = null;
    this.queue.length = 0;
    this.reactor.remove(this.src);
    this.net.detach(this);
  }
}
