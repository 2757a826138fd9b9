/**
 * The data path's I/O seams (TAP, UDP, and their fast-path extensions: vnet TAP, TAP reader
 * thread, GSO transport), shaped around batches (wireguard-go's tun.Device / conn.Bind): one call moves a whole batch, lengths come back in a shared typed array, and frames sit in one
 * preallocated slab. Each seam has a real implementation (`native-io.ts`, over the addon) and an
 * in-memory twin (`memory-io.ts`) so the same data path runs deterministically in tests.
 *
 * Slab layout for receive: slot i starts at `i * slotSize` (GRO runs: the run area follows the
 * slots, see `RxRuns`). A TAP frame is read at
 * `i * slotSize + headroom` so that the VXLAN header (and, later, crypto header) can be written in
 * place in front of it; a UDP datagram is read at `i * slotSize` (VXLAN header first, inner frame at
 * +8, written to the TAP from there: no copy).
 *
 * Send descriptors are independent of slots: descriptor j sends `lens[j]` bytes from absolute slab
 * offset `offs[j]`; several descriptors may point at the same bytes (head-end replication).
 *
 * Send outcome (TAP writeBatch, UDP sendBatch / sendBatchGso): the return value n is the number of
 * descriptors CONSUMED from the front of the batch. For j < n, `status[j]` is 0 (written / sent)
 * or a positive errno: that one descriptor was skipped (EMSGSIZE over the path MTU with DF set,
 * ENETUNREACH, EHOSTUNREACH, EINVAL…) so that one bad destination does not stall the batch.
 * Descriptors [n, count) were not attempted (EAGAIN: the queue or socket buffer is full). The
 * caller counts every descriptor as sent or as a drop with its cause.
 *
 * Underlay addresses are 18-byte records: 16 bytes IPv6 address (IPv4 as ::ffff:a.b.c.d) then the
 * port, big-endian. See `addr.ts`.
 */

export const ADDR_LEN = 18;

/** A receive batch: caller-owned memory the implementation fills. */
export interface RxBatch {
  readonly slab: Buffer;
  readonly slotSize: number;
  /** Byte offset within each slot where received data starts (TAP: headroom; UDP: 0). */
  readonly headroom: number;
  /** Number of slots; `lens.length === slots`. */
  readonly slots: number;
  /** Filled with the length of each received packet. */
  readonly lens: Uint32Array;
  /** UDP only: filled with each sender's 18-byte address record (`slots * ADDR_LEN` bytes). */
  readonly addrs: Buffer;
}

/** A send batch of descriptors into a slab. */
export interface TxBatch {
  readonly slab: Buffer;
  readonly offs: Uint32Array;
  readonly lens: Uint32Array;
  /** UDP only: destination 18-byte address record per descriptor. */
  readonly addrs: Buffer;
  /** UDP only: index of the source socket per descriptor (ECMP source-port choice). */
  readonly srcIdx: Uint8Array;
  /**
   * Filled by the send: per consumed descriptor, 0 = written/sent, or the errno it was skipped
   * with (see the file comment). Length = the table's capacity.
   */
  readonly status: Int32Array;
  /** Number of valid descriptors. */
  count: number;
}

/** A TAP device (IFF_TAP | IFF_NO_PI), non-blocking. */
export interface TapDevice {
  readonly name: string;
  /** Reads up to `batch.slots` frames; returns how many (0 when nothing is ready). Never blocks. */
  readBatch(batch: RxBatch): number;
  /**
   * Writes descriptors [0, batch.count); returns how many were consumed, each with its outcome in
   * `batch.status` (0 written, else the errno it was skipped with); the rest: EAGAIN.
   */
  writeBatch(batch: TxBatch): number;
  /** Registers the one readability callback (level-triggered; called again while data remains). */
  onReadable(cb: () => void): void;
  /** Optional: one read per frame-at-a-time hop instead of two (NativeTap; the memory twin has none). */
  setLatencyReads?(on: boolean): void;
  /** Optional: busy-poll (see `BusyPollStats`) with this window in µs, 0 = off (NativeTap; the memory twin has none). */
  setBusyPoll?(windowUs: number): void;
  /**
   * Registers the poll-error handler (the device was removed underneath, EIO…): polling has
   * stopped when it is called. Optional; a device without it never reports poll errors.
   */
  onError?(cb: (err: Error) => void): void;
  /** Stops readability callbacks (the data path pauses a failed device). Optional. */
  pause?(): void;
  /** MAC address of the TAP device itself (6 bytes). */
  readonly mac: Buffer;
  /**
   * Frames the kernel dropped because the TAP's queue (txqueuelen) was full before they were read:
   * lost in front of the agent, invisible to its own counters (the device's tx_dropped). Optional;
   * null when unknown.
   */
  queueDrops?(): number | null;
  close(): void;
}

/** The underlay UDP endpoint: one receive socket on the VXLAN port, N source sockets for sending. */
export interface UdpTransport {
  readonly family: 4 | 6;
  /** Number of source sockets available as `srcIdx` values. */
  readonly sourceCount: number;
  /** Receives up to `batch.slots` datagrams (recvmmsg); returns how many. Never blocks. */
  recvBatch(batch: RxBatch): number;
  /**
   * Sends descriptors [0, batch.count) (sendmmsg, grouped by srcIdx); returns how many were
   * consumed, each with its outcome in `batch.status` (0 sent, else the errno it was skipped
   * with); the rest were not attempted (EAGAIN).
   */
  sendBatch(batch: TxBatch): number;
  onReadable(cb: () => void): void;
  /** Registers the poll-error handler (polling has stopped when it is called). Optional. */
  onError?(cb: (err: Error) => void): void;
  /** Stops readability callbacks (the data path pauses a failed transport). Optional. */
  pause?(): void;
  /** Optional: busy-poll with this window in µs, 0 = off (NativeUdp; the memory twin has none). */
  setBusyPoll?(windowUs: number): void;
  /** Optional: the busy-poll figures of the process (NativeUdp), null when it never busy-polled. */
  busyPollStats?(): BusyPollStats | null;
  close(): void;
}

/**
 * Busy-poll of the data path (native/busypoll.h, issue 15 §3): after a device's readiness
 * callback returned, the loop thread keeps polling the data path's devices (TAPs read on the loop,
 * the UDP transport) with a zero timeout for up to `windowUs` µs since the last batch, and runs
 * the ready one's callback directly instead of sleeping in epoll until the kernel wakes it. A
 * window starts only after a packet; an idle agent does not spin. One window per process (event
 * loop). The counters are totals since the process started.
 */
export interface BusyPollStats {
  /** µs, 0 = off. */
  readonly windowUs: number;
  /** Windows started (a data-path callback returned with busy-poll on). */
  readonly spins: number;
  /** Zero-timeout polls. */
  readonly polls: number;
  /** Polls that found a device ready: batches handled without a loop wake-up. */
  readonly hits: number;
  /** Callbacks run from the spin (a hit may find several devices ready). */
  readonly callbacks: number;
  /** µs spent polling and yielding (callbacks and other tasks' turns excluded): what the spin cost in CPU. */
  readonly spunUs: number;
  /** sched_yield() calls after a poll that found nothing (the CPU offered to other tasks). */
  readonly yields: number;
  /** Yields that lost the CPU for > 200 µs (a CPU-bound task shares it): window ended, no spinning for 50 ms after. */
  readonly contended: number;
  /** Windows cut short by the cap per loop turn (`turnUs`: timers and other handles run at least that often). */
  readonly capped: number;
  /** The cap of one loop turn's spinning, µs (callbacks included). */
  readonly turnUs: number;
}

/**
 * The memory of a TAP reader thread's ring (`NativeTap.startReader`, `underlay.tapThreads`):
 * `nslabs` slabs of `slots` slots of `slotSize` bytes (frame at `headroom`); slab k is bytes
 * [k·slots·slotSize, (k+1)·slots·slotSize), its lengths at lens[k·slots…], its virtio gso type/MSS
 * pairs at gso[2·k·slots…] (vnet TAPs).
 */
export interface TapReaderRing {
  readonly slab: Buffer;
  readonly slotSize: number;
  readonly headroom: number;
  readonly slots: number;
  readonly nslabs: number;
  readonly lens: Uint32Array;
  readonly gso: Uint16Array;
}

// ---- fast-path seams ----------------------------------------------------------------------------

/**
 * A TAP opened with IFF_VNET_HDR (`NativeTap` with `vnetHdr: true`): frames come with their virtio
 * gso type and MSS (`gso[2i]`, `gso[2i+1]`; type 0 = a plain frame whose checksum is complete) and
 * may be TCP super-frames of up to `VNET_FRAME_MAX` bytes; slots need that much after the headroom.
 * `writeBatch` keeps its contract (the device coalesces TCP segment runs itself).
 */
export interface VnetTapDevice extends TapDevice {
  readonly vnetHdr: boolean;
  readBatchVnet(batch: RxBatch, gso: Uint16Array): number;
}

/**
 * A TAP whose reads can run on an addon thread (`NativeTap`): batches are read into a ring of
 * slabs while the data path processes earlier ones; taken and released oldest first.
 */
export interface ReaderTapDevice extends VnetTapDevice {
  startReader(ring: TapReaderRing, cb: () => void): void;
  /** `(k << 16) | n`, or -1 when no batch is ready. */
  readerNext(): number;
  readerRelease(): void;
}

/**
 * A transport that can cut TSO super-frames (`NativeUdp.sendBatchGso`): descriptor j with
 * `gso[2j] !== 0` is a `prefixLen`-byte prefix + super-frame sent as MSS-sized segments.
 */
export interface GsoUdpTransport extends UdpTransport {
  sendBatchGso(batch: TxBatch, gso: Uint16Array, prefixLen?: number): number;
}

/**
 * GRO runs (the receive side's super-frames, `GroRunTransport.recvBatchRuns`): per received
 * descriptor i, where it is and how many datagrams it stands for. A descriptor is either one
 * datagram at its slot (`offs[i] = i * slotSize + headroom`, `gso[2i] = 0`, `segs[i] = 1`,
 * `wire[i] = lens[i]`) or a run of `segs[i]` ≥ 2 consecutive datagrams of one UDP GRO buffer
 * merged by the transport: plaintext VXLAN with one 8-byte header (I flag only, one VNI), from one
 * outer source, carrying consecutive TCP segments of one inner flow (same Ethernet header, IP and
 * TCP fields, contiguous sequence numbers, ACK only, PSH only on the last, every segment but the
 * last `gso[2i+1]` payload bytes, valid checksums — the rules of the TAP write's coalescer), each
 * inner segment at most `maxFrame` bytes. Its bytes: the VXLAN header, then one TCP frame whose
 * IP length(s) cover every payload, the last segment's flags, and the pseudo-header sum in the
 * TCP checksum field (CHECKSUM_PARTIAL: written as GSO type `gso[2i]` with `writeBatchGso`);
 * `wire[i]` = the total length of the datagrams it replaces (what per-datagram counting saw).
 * Runs live in the run area: `GRO_RUN_AREA` bytes of the slab from `superOff` (after the slots).
 */
export interface RxRuns {
  readonly offs: Uint32Array;
  readonly gso: Uint16Array;
  readonly segs: Uint16Array;
  readonly wire: Uint32Array;
  readonly superOff: number;
  /** Largest inner segment (Ethernet frame) a run may hold, so that every segment passes the size check; set by the data path. */
  maxFrame: number;
}

/** Bytes of the run area (8 GRO buffers of 64 KiB; = the addon's GRO_RUN_AREA). */
export const GRO_RUN_AREA = 8 * 65536;

/** A transport that can hand GRO runs over as one descriptor (`NativeUdp` with GRO on; `MemoryUdp` with `gro`). */
export interface GroRunTransport extends UdpTransport {
  /** True while runs can be formed (UDP GRO on). */
  readonly groRuns: boolean;
  /** As `recvBatch`, filling `runs` for every descriptor (see `RxRuns`). */
  recvBatchRuns(batch: RxBatch, runs: RxRuns): number;
}

/** A vnet TAP that writes GSO frames given with their gso info (`NativeTap.writeBatchGso`). */
export interface GsoTapDevice extends VnetTapDevice {
  /** As `writeBatch`; descriptor j with `gso[2j] !== 0` is a TCP GSO frame of `gso[2j+1]`-byte segments (see `RxRuns`). */
  writeBatchGso(batch: TxBatch, gso: Uint16Array): number;
}

/** True for a transport that hands GRO runs over (and has GRO on). */
export function isGroRunUdp(udp: UdpTransport): udp is GroRunTransport {
  const u = udp as Partial<GroRunTransport>;
  return typeof u.recvBatchRuns === 'function' && u.groRuns === true;
}

/** True for a TAP that writes GSO frames (`writeBatchGso`). */
export function isGsoTap(tap: TapDevice): tap is GsoTapDevice {
  return isVnetTap(tap) && typeof (tap as Partial<GsoTapDevice>).writeBatchGso === 'function';
}

/** Largest frame a vnet TAP hands over (64 KiB TSO super-frame + Ethernet header; = native-io VNET_MAX_FRAME). */
export const VNET_FRAME_MAX = 65536 + 14;

/** True for a TAP that reads TSO super-frames (`readBatchVnet`). */
export function isVnetTap(tap: TapDevice): tap is VnetTapDevice {
  const t = tap as Partial<VnetTapDevice>;
  return t.vnetHdr === true && typeof t.readBatchVnet === 'function';
}

/** True for a transport that cuts TSO super-frames (`sendBatchGso`). */
export function isGsoUdp(udp: UdpTransport): udp is GsoUdpTransport {
  return typeof (udp as Partial<GsoUdpTransport>).sendBatchGso === 'function';
}
