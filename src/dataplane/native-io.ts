/**
 * The real I/O seams over the native addon: `NativeTap` (a TAP device, IFF_TAP | IFF_NO_PI) and
 * `NativeUdp` (the underlay UDP transport), implementing `TapDevice` / `UdpTransport` of `io.ts`.
 * One addon call moves a whole batch; lengths and address records come back in the caller's typed
 * arrays, frames in the caller's slab (see io.ts for the slab layout). Readiness comes from one
 * libuv poll per device (level-triggered: the callback runs again on the next loop turn while data
 * remains), so nothing ever blocks the event loop.
 *
 * Send semantics (both seams, see seams.ts): the return value is the number of descriptors
 * CONSUMED from the front of the batch — sent, or skipped because that one descriptor failed
 * (EMSGSIZE over the path MTU with DF set, ENETUNREACH, EIO…); `batch.status[j]` tells which (0, or
 * the errno). A short count means EAGAIN stopped the batch: descriptors [n, count) were not
 * attempted. Skipped descriptors are also counted in `stats` (`sendSkipped`, `sendMsgSize`,
 * `lastSendErrno`), never thrown: one bad destination must not stall a batch. `status` is zeroed
 * before each call, so an addon that does not fill it reports every consumed descriptor as sent.
 *
 * Statistics live in a BigUint64Array owned here and written by C (no per-packet crossing).
 */
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import type { AddressFamily } from '../config/types';
import { ERR_TAP_IO, ERR_TAP_OPEN, ERR_UDP_BIND, ERR_UDP_IO, ERR_NETDEV } from '../errors';
import { loadAddon, toSystemError, type NativeHandle, type VxmeshAddon } from '../native/addon';
import type { BusyPollStats, RxBatch, RxRuns, TapDevice, TapReaderRing, TxBatch, UdpTransport } from './seams';

/** The addon's send/write entry points with their trailing per-descriptor status array. */
interface StatusAddon {
  tapWrite(h: NativeHandle, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, count: number, status: Int32Array): number;
  tapWriteVnet(h: NativeHandle, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, count: number, maxMerge: number,
    status: Int32Array): number;
  udpSend(h: NativeHandle, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, addrs: Uint8Array, srcIdx: Uint8Array,
    count: number, status: Int32Array): number;
  udpSendGso(h: NativeHandle, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, addrs: Uint8Array, srcIdx: Uint8Array,
    gso: Uint16Array, prefixLen: number, count: number, status: Int32Array): number;
}

/**
 * Once per process, when the first device starts polling: Node turns on libuv's idle-time metrics,
 * which make every sleep of the loop two epoll_pwait calls (a zero-timeout one first); a hop of a
 * frame-at-a-time flow then pays one syscall more than it needs. Turned off unless
 * VXMESH_LOOP_IDLE_METRICS=1 (performance.eventLoopUtilization then stops counting idle time;
 * vxmesh does not use it — its loop metrics come from monitorEventLoopDelay).
 */
let loopMetricsDone = false;
function loopIdleMetricsOff(addon: VxmeshAddon): void {
  if (loopMetricsDone) return;
  loopMetricsDone = true;
  if (process.env.VXMESH_LOOP_IDLE_METRICS === '1' || typeof addon.loopIdleMetrics !== 'function') return;
  addon.loopIdleMetrics(false);
}

/**
 * Busy-poll (seams.ts `BusyPollStats`, native/busypoll.h): one group per process (event loop),
 * one window. `turnUs` caps the spinning of one loop turn, callbacks included, so that timers and
 * the other handles (gossip, API) run at least every millisecond under load.
 */
export const BUSY_POLL_TURN_US = 1000;
/** sched_yield() after an empty poll (native/busypoll.h); VXMESH_BUSY_POLL_YIELD=0 turns it off (A/B). */
const BUSY_POLL_YIELD = process.env.VXMESH_BUSY_POLL_YIELD !== '0';
let busyArr: BigUint64Array | null = null;
let busyWindowUs = 0;

/** Sets the process's busy-poll window (µs, 0 = off) and joins (or leaves) the device to the group. */
function busyPoll(addon: VxmeshAddon, h: NativeHandle, windowUs: number): void {
  if (!Number.isInteger(windowUs) || windowUs < 0 || windowUs > 100_000) throw new RangeError(`busy-poll window must be an integer 0..100000 µs, got ${windowUs}`);
  if (busyArr === null && windowUs === 0) return; // never on: nothing to undo
  if (busyArr === null) busyArr = new BigUint64Array(addon.constants.BUSY_STAT_COUNT);
  addon.busyPollConfigure(windowUs, BUSY_POLL_TURN_US, busyArr, BUSY_POLL_YIELD);
  busyWindowUs = windowUs;
  addon.busyPollJoin(h, windowUs > 0);
}

/** The process's busy-poll figures, or null when no device ever busy-polled. */
export function busyPollStats(): BusyPollStats | null {
  const a = busyArr;
  if (a === null) return null;
  const k = loadAddon().constants;
  return {
    windowUs: busyWindowUs,
    spins: Number(a[k.BUSY_STAT_SPINS]),
    polls: Number(a[k.BUSY_STAT_POLLS]),
    hits: Number(a[k.BUSY_STAT_HITS]),
    callbacks: Number(a[k.BUSY_STAT_CALLBACKS]),
    spunUs: Math.round(Number(a[k.BUSY_STAT_SPIN_NS]) / 1000),
    capped: Number(a[k.BUSY_STAT_CAPPED]),
    yields: Number(a[k.BUSY_STAT_YIELDS]),
    contended: Number(a[k.BUSY_STAT_CONTENDED]),
    turnUs: BUSY_POLL_TURN_US,
  };
}

/** Zeroes the outcome of descriptors [0, count) before a send (a short or absent status array is left to the addon to refuse). */
function clearStatus(b: TxBatch): void {
  const s = b.status;
  if (s !== undefined) s.fill(0, 0, Math.min(b.count, s.length));
}

/** Read-only view of a device's native statistics. */
export class NativeIoStats {
  constructor(private readonly arr: BigUint64Array, private readonly k: VxmeshAddon['constants']) {}
  /** Descriptors skipped because their own send/write failed (not EAGAIN). */
  get sendSkipped(): number { return Number(this.arr[this.k.STAT_TX_SKIPPED]); }
  /** Of those, EMSGSIZE: larger than the path MTU (DF is always set, nothing is fragmented). */
  get sendMsgSize(): number { return Number(this.arr[this.k.STAT_TX_EMSGSIZE]); }
  /** errno of the last skipped descriptor (0 if none yet). */
  get lastSendErrno(): number { return Number(this.arr[this.k.STAT_TX_LAST_ERRNO]); }
  /** Send batches cut short by EAGAIN. */
  get sendEagain(): number { return Number(this.arr[this.k.STAT_TX_EAGAIN]); }
  /**
   * Datagrams (UDP) or frames (TAP) larger than a receive slot, delivered truncated to the slot (as
   * recvmmsg does; TAP: frames that fill their slot, see `readBatch`; vnet super-frames are dropped):
   * size slots larger than any valid packet so that a truncated one reads as oversize.
   */
  get recvTruncated(): number { return Number(this.arr[this.k.STAT_RX_TRUNCATED]); }
  /** vnet TAP: frames dropped for an unusable virtio header or checksum offsets. */
  get badVnet(): number { return Number(this.arr[this.k.STAT_BAD_GSO]); }
  /** vnet TAP write: frames merged into a preceding one. */
  get coalesced(): number { return Number(this.arr[this.k.STAT_COALESCED]); }
  /** vnet TAP write: GSO frames written. */
  get gsoWrites(): number { return Number(this.arr[this.k.STAT_GSO_WRITES]); }
  /** UDP: sendmsg calls with UDP_SEGMENT. */
  get gsoSends(): number { return Number(this.arr[this.k.STAT_GSO_SENDS]); }
  /** UDP: segments cut from TSO super-frames. */
  get segments(): number { return Number(this.arr[this.k.STAT_SEGMENTS]); }
  /** UDP: super-frames sent one datagram per segment (UDP GSO off or unavailable). */
  get gsoFallback(): number { return Number(this.arr[this.k.STAT_GSO_FALLBACK]); }
  /** UDP: super-frames dropped because they could not be segmented. */
  get badTso(): number { return Number(this.arr[this.k.STAT_BAD_TSO]); }
  /** UDP: received buffers that held several coalesced datagrams (UDP GRO). */
  get groBuffers(): number { return Number(this.arr[this.k.STAT_GRO_BUFS]); }
  /** UDP: GRO runs handed over as one descriptor (`recvBatchRuns`). */
  get groRuns(): number { return Number(this.arr[this.k.STAT_GRO_RUNS]); }
}

/** Options of `NativeTap.open`. */
export interface NativeTapOptions {
  /**
   * Fail with EBUSY if the device already exists (IFF_TUN_EXCL) instead of attaching to it.
   * Default false: a persistent device (`ip tuntap add mode tap`) is attached, `created` false.
   */
  exclusive?: boolean;
  /**
   * Fast path: IFF_VNET_HDR (+ TUNSETOFFLOAD checksum/TSO4/TSO6 unless `offload` is false). Reads
   * then go through `readBatchVnet` (frames up to 64 KiB: TCP super-frames with their MSS in the gso
   * array); `writeBatch` keeps its contract and coalesces runs of TCP segments into GSO frames.
   * Default false (phase-1 behaviour).
   */
  vnetHdr?: boolean;
  /** With vnetHdr: enable checksum + TSO offloads (default true). */
  offload?: boolean;
  /**
   * IFF_MULTI_QUEUE: each open() of the same name attaches one more queue (fd), e.g. one per worker
   * thread; the kernel spreads flows over the queues. All opens must agree on this flag (a
   * single-queue persistent device refuses it with EINVAL). Default false.
   */
  multiQueue?: boolean;
}

/** Slot payload needed by `readBatchVnet`: a TSO super-frame is at most 64 KiB + Ethernet header. */
export const VNET_MAX_FRAME = 65536 + 14;

/** A TAP device (IFF_TAP | IFF_NO_PI), non-blocking, O_CLOEXEC. */
export class NativeTap implements TapDevice {
  /** The kernel's name of the device. */
  readonly name: string;
  /** True when this call created the device (it disappears on close), false when attached to a persistent one. */
  readonly created: boolean;
  /** The TAP device's own MAC address (6 bytes). */
  readonly mac: Buffer;
  readonly stats: NativeIoStats;
  /** Opened with IFF_VNET_HDR (fast path): read with `readBatchVnet`. */
  readonly vnetHdr: boolean;
  private readonly addon: VxmeshAddon;
  private readonly h: NativeHandle;
  private readonly statsArr: BigUint64Array;
  private errorHandler: ((err: Error) => void) | null = null;
  private readableCb: (() => void) | null = null;
  private isClosed = false;
  private readerOn = false;

  private constructor(addon: VxmeshAddon, h: NativeHandle, name: string, created: boolean, mac: Buffer, stats: BigUint64Array,
    vnetHdr: boolean) {
    this.addon = addon;
    this.h = h;
    this.name = name;
    this.created = created;
    this.mac = mac;
    this.statsArr = stats;
    this.stats = new NativeIoStats(stats, addon.constants);
    this.vnetHdr = vnetHdr;
  }

  /**
   * Opens (creating it if missing) TAP device `name` (≤ 15 bytes). Throws SystemError
   * ERR_VXMESH_TAP_OPEN with the errno name (EPERM without CAP_NET_ADMIN, EBUSY when another
   * process holds a non-persistent device, EINVAL for a name that exists but is not a TAP or is
   * invalid, ENAMETOOLONG…).
   */
  static open(name: string, opts: NativeTapOptions = {}): NativeTap {
    const addon = loadAddon();
    const k = addon.constants;
    const stats = new BigUint64Array(k.STAT_COUNT);
    const flags = (opts.exclusive ? k.TAP_F_EXCL : 0) | (opts.vnetHdr ? k.TAP_F_VNET_HDR : 0)
      | (opts.multiQueue ? k.TAP_F_MULTI_QUEUE : 0);
    let h: NativeHandle;
    let kname: string;
    let created: boolean;
    try {
      [h, kname, created] = addon.tapOpen(name, flags, stats);
    } catch (err) {
      throw toSystemError(err, ERR_TAP_OPEN, `cannot open TAP ${JSON.stringify(name)}`);
    }
    if (opts.vnetHdr && opts.offload !== false) {
      try {
        addon.tapSetOffload(h, k.TUN_F_CSUM | k.TUN_F_TSO4 | k.TUN_F_TSO6);
      } catch (err) {
        addon.close(h);
        throw toSystemError(err, ERR_TAP_OPEN, `cannot enable offloads on TAP ${kname}`);
      }
    }
    let mac: Buffer;
    try {
      mac = addon.getMac(kname);
    } catch (err) {
      addon.close(h);
      throw toSystemError(err, ERR_NETDEV, `cannot read the MAC address of TAP ${kname}`);
    }
    return new NativeTap(addon, h, kname, created, mac, stats, !!opts.vnetHdr);
  }

  /** The raw statistics array (indices: addon constants STAT_*). */
  get rawStats(): BigUint64Array { return this.statsArr; }

  get closed(): boolean { return this.isClosed; }

  /**
   * Reads up to `batch.slots` frames at `batch.headroom` in each slot. Never blocks; 0 when nothing
   * is ready. A frame longer than a slot is cut by the kernel to the slot: a frame that fills its
   * slot exactly is counted in `stats.recvTruncated` — size slots above the largest valid frame.
   */
  readBatch(batch: RxBatch): number {
    const slots = this.readSlots(batch.slots);
    let n: number;
    try {
      n = this.addon.tapRead(this.h, batch.slab, batch.slotSize, batch.headroom, slots, batch.lens);
    } catch (err) {
      throw toSystemError(err, ERR_TAP_IO, `TAP ${this.name}`);
    }
    if (this.latencyReads) this.readDone(n, slots);
    return n;
  }

  /**
   * Latency reads (opt-in, the data path's TAPs): a TAP moves one frame per read(2), so a batch
   * always ends with one read that finds the queue empty (EAGAIN). While traffic is one frame at a
   * time (request/response), that last read is a whole syscall per hop for nothing: after a call
   * that read exactly one frame and then found the queue empty, the next call asks for one frame
   * only; the call after a one-frame call always drains again, so a burst that starts meanwhile
   * loses at most one batch's worth of batching (level-triggered readiness brings the rest at
   * once). Never changes what is read, only how many frames one call returns.
   */
  setLatencyReads(on: boolean): void {
    this.latencyReads = on;
    this.oneNext = false;
  }

  /**
   * Busy-poll (seams.ts `BusyPollStats`): after a readiness callback of any of the process's
   * busy-polled devices returned, this TAP is polled for `windowUs` µs more (0 = off). One window
   * per process: the last call sets it for every device. Not for a TAP read by its reader thread.
   */
  setBusyPoll(windowUs: number): void {
    if (!this.isClosed) busyPoll(this.addon, this.h, windowUs);
  }

  private latencyReads = false;
  /** The last call drained exactly one frame (then EAGAIN): ask for one. */
  private oneNext = false;

  private readSlots(slots: number): number {
    if (!this.oneNext) return slots;
    this.oneNext = false;
    return 1;
  }

  private readDone(n: number, slots: number): void {
    this.oneNext = slots > 1 && n === 1;
  }

  /**
   * Fast path (vnetHdr): reads up to `batch.slots` frames; `gso[2i]` = virtio gso_type (0 = plain
   * frame, checksum already complete; GSO_TCPV4 / GSO_TCPV6, maybe | GSO_ECN = a TCP super-frame of
   * `lens[i]` bytes to be cut into `gso[2i+1]`-byte (MSS) segments by `NativeUdp.sendBatchGso`).
   * Slots need `VNET_MAX_FRAME` bytes after the headroom.
   */
  readBatchVnet(batch: RxBatch, gso: Uint16Array): number {
    const slots = this.readSlots(batch.slots);
    let n: number;
    try {
      n = this.addon.tapReadVnet(this.h, batch.slab, batch.slotSize, batch.headroom, slots, batch.lens, gso);
    } catch (err) {
      throw toSystemError(err, ERR_TAP_IO, `TAP ${this.name}`);
    }
    if (this.latencyReads) this.readDone(n, slots);
    return n;
  }

  /**
   * Fast path (vnetHdr): like `writeBatch` with an explicit bound on coalescing (`maxMerge` frames
   * per GSO frame, 1..64; 1 = write every frame on its own).
   */
  writeBatchVnet(batch: TxBatch, maxMerge = 64): number {
    try {
      clearStatus(batch);
      return (this.addon as StatusAddon).tapWriteVnet(this.h, batch.slab, batch.offs, batch.lens, batch.count, maxMerge, batch.status);
    } catch (err) {
      throw toSystemError(err, ERR_TAP_IO, `TAP ${this.name}`);
    }
  }

  /**
   * Fast path (vnetHdr): like `writeBatch`, but descriptor j with `gso[2j] !== 0` is a TCP GSO frame
   * of `gso[2j+1]`-byte segments whose checksum field holds the pseudo-header sum (a GRO run, see
   * seams.ts `RxRuns`), written with a NEEDS_CSUM virtio header; plain ones coalesce as in `writeBatch`.
   */
  writeBatchGso(batch: TxBatch, gso: Uint16Array): number {
    try {
      clearStatus(batch);
      return this.addon.tapWriteGso(this.h, batch.slab, batch.offs, batch.lens, gso, batch.count, 64, batch.status);
    } catch (err) {
      throw toSystemError(err, ERR_TAP_IO, `TAP ${this.name}`);
    }
  }

  /**
   * Writes descriptors [0, batch.count); returns how many were consumed (see the file comment). On a
   * vnetHdr TAP, runs of TCP segments (or of equal-sized UDP datagrams) of one flow are coalesced into GSO frames (invisible to callers).
   */
  writeBatch(batch: TxBatch): number {
    try {
      clearStatus(batch);
      return (this.addon as StatusAddon).tapWrite(this.h, batch.slab, batch.offs, batch.lens, batch.count, batch.status);
    } catch (err) {
      throw toSystemError(err, ERR_TAP_IO, `TAP ${this.name}`);
    }
  }

  /**
   * Registers the one readability callback (replacing an earlier one) and starts polling. If the
   * fd reports an error, polling stops and the error goes to the `onError` handler (or is thrown
   * as an uncaught exception when there is none).
   */
  onReadable(cb: () => void): void {
    try {
      loopIdleMetricsOff(this.addon);
      this.addon.pollStart(this.h, (err?: Error) => this.dispatch(err));
    } catch (err) {
      throw toSystemError(err, ERR_TAP_IO, `TAP ${this.name}`);
    }
    this.readableCb = cb;
  }

  /** Handler for a poll error (device removed underneath us…). */
  onError(cb: (err: Error) => void): void { this.errorHandler = cb; }

  /**
   * Moves the TAP's reads to an addon thread (`ReaderTapDevice`): frames are read into `ring`
   * (`nslabs` slabs of `slots` slots of `slotSize` bytes, frame at `headroom`) while the JS thread
   * processes earlier batches; `cb` runs on the loop when batches are ready (take them with
   * `readerNext`, give them back with `readerRelease`, oldest first). Replaces `onReadable`.
   */
  startReader(ring: TapReaderRing, cb: () => void): void {
    try {
      this.addon.readerStart(this.h, ring.slab, ring.slotSize, ring.headroom, ring.slots, ring.nslabs, ring.lens, ring.gso,
        (err?: Error) => this.dispatch(err));
    } catch (err) {
      throw toSystemError(err, ERR_TAP_IO, `TAP ${this.name}`);
    }
    this.readableCb = cb;
    this.readerOn = true;
  }

  /** The oldest ready batch as `(k << 16) | n` (slab k, n frames), or -1. Throws the thread's read error once. */
  readerNext(): number {
    try {
      return this.addon.readerNext(this.h);
    } catch (err) {
      throw toSystemError(err, ERR_TAP_IO, `TAP ${this.name}`);
    }
  }

  /** Gives the oldest batch's slab back to the reader thread. */
  readerRelease(): void { this.addon.readerRelease(this.h); }

  /** Stops the reader thread (idempotent; `close` does it too). */
  stopReader(): void {
    if (!this.isClosed) this.addon.readerStop(this.h);
    this.readerOn = false;
  }

  /** The kernel's tx_dropped of this TAP (frames lost because its queue was full), or null if unreadable. */
  queueDrops(): number | null {
    try {
      const v = Number(fs.readFileSync(`/sys/class/net/${this.name}/statistics/tx_dropped`, 'latin1').trim());
      return Number.isSafeInteger(v) && v >= 0 ? v : null;
    } catch {
      return null;
    }
  }

  /** Reader thread figures: wake-ups from poll and waits for a free slab (zeros without one). */
  readerStats(): { wakeups: number; fullWaits: number } {
    if (this.isClosed) return { wakeups: 0, fullWaits: 0 };
    const [wakeups, fullWaits] = this.addon.readerStats(this.h);
    return { wakeups, fullWaits };
  }

  /** Whether reads run on the reader thread. */
  get reading(): boolean { return this.readerOn; }

  /** Stops readability callbacks until `resume()` (backpressure). */
  pause(): void { if (!this.isClosed) this.addon.pollStop(this.h); }

  resume(): void {
    if (!this.isClosed && this.readableCb && !this.readerOn) this.addon.pollStart(this.h, (err?: Error) => this.dispatch(err));
  }

  /** Whether an active poll keeps the process alive (default true). */
  setRef(ref: boolean): void { if (!this.isClosed) this.addon.pollRef(this.h, ref); }

  private dispatch(err?: Error): void {
    if (err) {
      const e = toSystemError(err, ERR_TAP_IO, `TAP ${this.name}`) as Error;
      if (this.errorHandler) this.errorHandler(e);
      else throw e;
      return;
    }
    if (this.readableCb) this.readableCb();
  }

  /** Stops polling and closes the fd (a device we created disappears). Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.readableCb = null;
    this.addon.close(this.h);
  }
}

/** Options of `NativeUdp.open`. */
export interface NativeUdpOptions {
  /** Local address to bind and send from (IPv4 or IPv6 literal; '0.0.0.0' / '::' allowed). */
  address: string;
  /** Port to bind (the VXLAN port); 0 = ephemeral (tests). */
  port: number;
  /** Address family; default: that of `address`. */
  family?: AddressFamily;
  /**
   * Number of source sockets for ECMP entropy (RFC 7348 §5), 1..64. With N > 1, N extra sockets are
   * bound to `address` on random ports in 49152–65535 and `srcIdx` picks one per descriptor; with
   * N = 1 everything is sent from the main socket (source port = `port`). Default 1.
   */
  sourcePorts?: number;
  /** SO_RCVBUF / SO_SNDBUF request in bytes (forced when privileged). Default 8 MiB. */
  bufferBytes?: number;
  /** Fast path: enable UDP GRO receive at open (see `setGro`). Default false. */
  gro?: boolean;
}

/** The underlay UDP transport: one main socket (polled, received from) and N source sockets. */
export class NativeUdp implements UdpTransport {
  readonly family: AddressFamily;
  readonly address: string;
  /** The bound port of the main socket (useful when opened with port 0). */
  readonly port: number;
  readonly sourceCount: number;
  /** Local port of each source socket (srcIdx → port); `[port]` when sourcePorts is 1. */
  readonly sourcePorts: readonly number[];
  readonly stats: NativeIoStats;
  private readonly addon: VxmeshAddon;
  private readonly h: NativeHandle;
  private readonly statsArr: BigUint64Array;
  private errorHandler: ((err: Error) => void) | null = null;
  private readableCb: (() => void) | null = null;
  private isClosed = false;
  private gsoOn: boolean;
  private groOn = false;

  private constructor(addon: VxmeshAddon, h: NativeHandle, family: AddressFamily, address: string, port: number,
    sourcePorts: number[], stats: BigUint64Array) {
    this.addon = addon;
    this.h = h;
    this.family = family;
    this.address = address;
    this.port = port;
    this.sourcePorts = Object.freeze(sourcePorts.slice());
    this.sourceCount = sourcePorts.length;
    this.statsArr = stats;
    this.stats = new NativeIoStats(stats, addon.constants);
    this.gsoOn = addon.udpSetGso(h, true);
  }

  /**
   * Opens and binds the transport (DF always set; large socket buffers). Throws SystemError
   * ERR_VXMESH_UDP_BIND with the errno name (EADDRINUSE, EADDRNOTAVAIL, EACCES…); EINVAL with
   * syscall 'inet_pton' for an address that does not match the family.
   */
  static open(opts: NativeUdpOptions): NativeUdp {
    const addon = loadAddon();
    const ipFam = isIP(opts.address);
    const family: AddressFamily = opts.family ?? (ipFam === 6 ? 6 : 4);
    const sourcePorts = opts.sourcePorts ?? 1;
    const stats = new BigUint64Array(addon.constants.STAT_COUNT);
    try {
      const [h, port, srcPorts] = addon.udpOpen(family, opts.address, opts.port, sourcePorts,
        opts.bufferBytes ?? 8 * 1024 * 1024, stats);
      const u = new NativeUdp(addon, h, family, opts.address, port, srcPorts, stats);
      if (opts.gro) {
        try {
          u.setGro(true);
        } catch (err) {
          u.close();
          throw err;
        }
      }
      return u;
    } catch (err) {
      const where = family === 6 ? `[${opts.address}]:${opts.port}` : `${opts.address}:${opts.port}`;
      throw toSystemError(err, ERR_UDP_BIND, `cannot open UDP socket on ${where}`);
    }
  }

  get rawStats(): BigUint64Array { return this.statsArr; }

  get closed(): boolean { return this.isClosed; }

  /**
   * recvmmsg on the main socket into slots at `batch.headroom`; fills lens and 18-byte sender
   * records. A datagram larger than a slot is delivered truncated (len = slotSize − headroom) and
   * counted in `stats.recvTruncated`.
   */
  recvBatch(batch: RxBatch): number {
    try {
      return this.addon.udpRecv(this.h, batch.slab, batch.slotSize, batch.headroom, batch.slots, batch.lens, batch.addrs);
    } catch (err) {
      throw toSystemError(err, ERR_UDP_IO, `UDP ${this.address}:${this.port}`);
    }
  }

  /**
   * Like `recvBatch`, with GRO runs (seams.ts `RxRuns`): a UDP GRO buffer's run of one inner TCP flow
   * comes back as ONE descriptor in the run area (`runs.superOff`, `GRO_RUN_AREA` bytes of the slab
   * after the slots); `runs` is filled for every descriptor.
   */
  recvBatchRuns(batch: RxBatch, runs: RxRuns): number {
    try {
      return this.addon.udpRecv(this.h, batch.slab, batch.slotSize, batch.headroom, batch.slots, batch.lens, batch.addrs,
        runs.offs, runs.gso, runs.segs, runs.wire, runs.superOff, runs.maxFrame);
    } catch (err) {
      throw toSystemError(err, ERR_UDP_IO, `UDP ${this.address}:${this.port}`);
    }
  }

  /** Whether `recvBatchRuns` can form runs (UDP GRO is on). */
  get groRuns(): boolean { return this.groOn; }

  /**
   * sendmmsg of descriptors [0, batch.count) to their address records, from source socket
   * `batch.srcIdx[j]` (runs of equal srcIdx are one syscall). Returns descriptors consumed (see the
   * file comment). A record of the other family, or srcIdx ≥ sourceCount, is skipped and counted.
   */
  sendBatch(batch: TxBatch): number {
    try {
      clearStatus(batch);
      return (this.addon as StatusAddon).udpSend(this.h, batch.slab, batch.offs, batch.lens, batch.addrs, batch.srcIdx, batch.count,
        batch.status);
    } catch (err) {
      throw toSystemError(err, ERR_UDP_IO, `UDP ${this.address}:${this.port}`);
    }
  }

  /**
   * Fast path: like `sendBatch`, but descriptor j with `gso[2j] !== 0` is a TSO super-frame (as read
   * by `NativeTap.readBatchVnet`) behind a `prefixLen`-byte prefix (the VXLAN header, default 8): it
   * is cut into MSS-sized frames (`gso[2j+1]`), each behind a copy of the prefix with correct
   * IPv4/TCP/IPv6 checksums, and sent with UDP GSO (UDP_SEGMENT) when available, else one datagram
   * per segment. Plain descriptors (`gso[2j] === 0`) go as in `sendBatch`. Returns descriptors consumed.
   */
  sendBatchGso(batch: TxBatch, gso: Uint16Array, prefixLen = 8): number {
    try {
      clearStatus(batch);
      return (this.addon as StatusAddon).udpSendGso(this.h, batch.slab, batch.offs, batch.lens, batch.addrs, batch.srcIdx, gso,
        prefixLen, batch.count, batch.status);
    } catch (err) {
      throw toSystemError(err, ERR_UDP_IO, `UDP ${this.address}:${this.port}`);
    }
  }

  /** Whether `sendBatchGso` uses UDP_SEGMENT (probed at open, changed by `setGso`). */
  get gso(): boolean { return this.gsoOn; }

  /** Whether UDP GRO receive is on (see `setGro`). */
  get gro(): boolean { return this.groOn; }

  /**
   * Fast path: UDP GRO receive (UDP_GRO). The kernel may hand over several datagrams of one sender
   * coalesced in one buffer (notably the UDP GSO sends of a peer over veth); `recvBatch` splits
   * them back, one datagram per slot, so its contract is unchanged. Throws when the kernel refuses.
   */
  setGro(enabled: boolean): boolean {
    try {
      this.groOn = this.addon.udpSetGro(this.h, enabled);
    } catch (err) {
      throw toSystemError(err, ERR_UDP_IO, `UDP ${this.address}:${this.port}`);
    }
    return this.groOn;
  }

  /** Busy-poll of the transport (as `NativeTap.setBusyPoll`; one window per process). */
  setBusyPoll(windowUs: number): void {
    if (!this.isClosed) busyPoll(this.addon, this.h, windowUs);
  }

  /** The process's busy-poll figures (all devices), or null when none ever busy-polled. */
  busyPollStats(): BusyPollStats | null {
    return busyPollStats();
  }

  /** Turns UDP GSO use on/off (off = the sendmmsg fallback); returns whether it is on. */
  setGso(enabled: boolean): boolean {
    this.gsoOn = this.addon.udpSetGso(this.h, enabled);
    return this.gsoOn;
  }

  onReadable(cb: () => void): void {
    try {
      loopIdleMetricsOff(this.addon);
      this.addon.pollStart(this.h, (err?: Error) => this.dispatch(err));
    } catch (err) {
      throw toSystemError(err, ERR_UDP_IO, `UDP ${this.address}:${this.port}`);
    }
    this.readableCb = cb;
  }

  onError(cb: (err: Error) => void): void { this.errorHandler = cb; }

  pause(): void { if (!this.isClosed) this.addon.pollStop(this.h); }

  resume(): void {
    if (!this.isClosed && this.readableCb) this.addon.pollStart(this.h, (err?: Error) => this.dispatch(err));
  }

  setRef(ref: boolean): void { if (!this.isClosed) this.addon.pollRef(this.h, ref); }

  private dispatch(err?: Error): void {
    if (err) {
      const e = toSystemError(err, ERR_UDP_IO, `UDP ${this.address}:${this.port}`) as Error;
      if (this.errorHandler) this.errorHandler(e);
      else throw e;
      return;
    }
    if (this.readableCb) this.readableCb();
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.readableCb = null;
    this.addon.close(this.h);
  }
}
