/**
 * Typed loader for the native addon (`build/Release/vxmesh.node`, built by `npm install` through
 * node-gyp from `native/`). This is the only module that `require`s the addon; everything else uses
 * `loadAddon()` and the wrappers in `dataplane/native-io.ts`, `dataplane/netdev.ts` and
 * `native/sdnotify.ts`.
 *
 * Raw addon errors are plain `Error`s with `code` (errno name, e.g. 'EPERM'), `errno` (number),
 * `syscall` and the message "<syscall> failed: <strerror>"; `toSystemError()` turns one into the
 * project's `SystemError` with a stable vxmesh code. Argument errors (wrong types, a descriptor
 * outside the slab) are TypeError/RangeError with Node-style codes (ERR_INVALID_ARG_TYPE,
 * ERR_OUT_OF_RANGE); they signal a caller bug and are passed through unchanged.
 *
 * Per-descriptor send outcomes: tapWrite, tapWriteVnet, udpSend and udpSendGso take an optional
 * trailing `status: Int32Array` (length ≥ count). They return the number of descriptors CONSUMED;
 * for each j < returned, status[j] is 0 when descriptor j was sent/written, or the positive errno
 * that skipped it (EMSGSIZE over the path MTU, ENETUNREACH/EHOSTUNREACH no route, EINVAL bad
 * source index or unsegmentable super-frame, EAFNOSUPPORT address of the other family, EAGAIN a
 * super-frame cut short after some of its segments went out…). Descriptors [returned, count) were
 * not attempted (the socket or TAP was full: EAGAIN); send them again later or count them dropped.
 * ERRNO below maps the numbers to names.
 *
 * Device errors are never thrown from the loop: a poll error (uv_poll) or a reader-thread error
 * (the TAP was deleted under a running reader: readv fails, e.g. EBADFD) is passed to the
 * readiness callback as its `err` argument, once; the thread then stops, and readerStats()[2]
 * keeps its errno until the next readerStart. readerNext never throws for it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SystemError, VxmeshError, ERR_NATIVE_LOAD } from '../errors';

/** An opaque handle (napi external, type-tagged): a TAP fd or a UDP transport. */
export type NativeHandle = { readonly __vxmeshHandle: unique symbol };

/** Constants exported by the addon (flag bits and statistics slot indices). */
export interface AddonConstants {
  readonly TAP_F_VNET_HDR: number;
  readonly TAP_F_MULTI_QUEUE: number;
  readonly TAP_F_EXCL: number;
  readonly TUN_F_CSUM: number;
  readonly TUN_F_TSO4: number;
  readonly TUN_F_TSO6: number;
  readonly VNET_HDR_LEN: number;
  /** stats[i]: descriptors skipped for a per-descriptor error (EMSGSIZE, ENETUNREACH, EIO…). */
  readonly STAT_TX_SKIPPED: number;
  /** stats[i]: of those, EMSGSIZE (larger than the path MTU; DF is always set). */
  readonly STAT_TX_EMSGSIZE: number;
  /** stats[i]: errno of the last skipped descriptor. */
  readonly STAT_TX_LAST_ERRNO: number;
  /** stats[i]: received datagrams larger than a slot (delivered truncated to the slot). */
  readonly STAT_RX_TRUNCATED: number;
  /** stats[i]: send batches cut short by EAGAIN. */
  readonly STAT_TX_EAGAIN: number;
  /** TAP vnet: frames dropped for an unusable virtio header / checksum offsets. */
  readonly STAT_BAD_GSO: number;
  /** TAP vnet write: frames merged into a preceding one (coalesced). */
  readonly STAT_COALESCED: number;
  /** TAP vnet write: GSO frames written. */
  readonly STAT_GSO_WRITES: number;
  /** UDP: sendmsg calls carrying UDP_SEGMENT. */
  readonly STAT_GSO_SENDS: number;
  /** UDP: segments cut from TSO super-frames. */
  readonly STAT_SEGMENTS: number;
  /** UDP: super-frames sent one datagram per segment (no UDP GSO). */
  readonly STAT_GSO_FALLBACK: number;
  /** UDP: super-frames dropped because they could not be segmented. */
  readonly STAT_BAD_TSO: number;
  /** UDP: received buffers holding several coalesced datagrams (UDP GRO). */
  readonly STAT_GRO_BUFS: number;
  /** UDP: GRO runs handed over as one descriptor (udpRecv with run arrays). */
  readonly STAT_GRO_RUNS: number;
  /** Bytes of the run area udpRecv with run arrays needs in the slab (8 GRO buffers of GRO_BUF_SIZE). */
  readonly GRO_RUN_AREA: number;
  readonly GRO_BUF_SIZE: number;
  /** virtio gso_type values (gso info arrays) and the ECN bit. */
  readonly GSO_TCPV4: number;
  readonly GSO_TCPV6: number;
  readonly GSO_ECN: number;
  /** Minimum length of a stats BigUint64Array. */
  readonly STAT_COUNT: number;
  readonly UDP_MAX_SOURCES: number;
  readonly ADDR_LEN: number;
  /** Busy-poll group counters (native/busypoll.h): slots of the array given to busyPollConfigure. */
  readonly BUSY_STAT_SPINS: number;
  readonly BUSY_STAT_POLLS: number;
  readonly BUSY_STAT_HITS: number;
  readonly BUSY_STAT_CALLBACKS: number;
  readonly BUSY_STAT_SPIN_NS: number;
  readonly BUSY_STAT_CAPPED: number;
  readonly BUSY_STAT_YIELDS: number;
  readonly BUSY_STAT_CONTENDED: number;
  readonly BUSY_STAT_COUNT: number;
}

/** One device feature as `ethtool -k` lists it: [kernel name, active, requested, changeable (not fixed)]. */
export type NativeFeature = [name: string, active: boolean, requested: boolean, changeable: boolean];

/** Linux errno values that appear in send status arrays (x86-64 / generic). */
export const ERRNO = {
  EIO: 5, EAGAIN: 11, ENOMEM: 12, EINVAL: 22, ENOBUFS: 105, EMSGSIZE: 90, EAFNOSUPPORT: 97,
  EADDRNOTAVAIL: 99, ENETDOWN: 100, ENETUNREACH: 101, ECONNREFUSED: 111, EHOSTDOWN: 112, EHOSTUNREACH: 113,
  EPERM: 1, EBADFD: 77,
} as const;

/** The raw addon surface. Every call is synchronous and non-blocking. */
export interface VxmeshAddon {
  readonly constants: AddonConstants;
  /** Opens TAP `name` (IFF_TAP|IFF_NO_PI|flags). Returns [handle, kernel name, created]. */
  tapOpen(name: string, flags: number, stats: BigUint64Array): [NativeHandle, string, boolean];
  /** TUNSETOFFLOAD (needs TAP_F_VNET_HDR). */
  tapSetOffload(h: NativeHandle, offloads: number): void;
  /** Reads up to `slots` frames into slab slots at `headroom`; returns the count (0 when none). */
  tapRead(h: NativeHandle, slab: Uint8Array, slotSize: number, headroom: number, slots: number, lens: Uint32Array): number;
  /**
   * Writes descriptors [0, count); returns how many were consumed (written or skipped on error).
   * status[j] (j < returned): 0 written, else the errno that skipped it (see the module comment).
   */
  tapWrite(h: NativeHandle, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, count: number, status?: Int32Array): number;
  /**
   * Phase 2, TAP opened with TAP_F_VNET_HDR: reads frames (virtio header consumed, partial checksums
   * of non-GSO frames completed in place); gso[2i] = gso_type (0 plain, GSO_TCPV4/GSO_TCPV6 maybe
   * | GSO_ECN), gso[2i+1] = MSS. A super-frame can be 64 KiB: slots must be large enough.
   */
  tapReadVnet(
    h: NativeHandle, slab: Uint8Array, slotSize: number, headroom: number, slots: number, lens: Uint32Array, gso: Uint16Array,
  ): number;
  /**
   * Phase 2: writes plain frames to a vnet TAP, coalescing TCP runs (≤ maxMerge frames, 1 = never).
   * Returns descriptors consumed; status as tapWrite (a refused merged run gives each of its frames the errno).
   */
  tapWriteVnet(
    h: NativeHandle, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, count: number, maxMerge: number, status?: Int32Array,
  ): number;
  /** Opens the UDP transport. Returns [handle, bound port, source ports]. */
  udpOpen(
    family: 4 | 6, address: string, port: number, sourcePorts: number, bufBytes: number, stats: BigUint64Array,
  ): [NativeHandle, number, number[]];
  /**
   * recvmmsg into slots; with the run arrays (native/udp.h vx_rx_runs), a UDP GRO buffer's run of one
   * inner TCP flow is ONE descriptor at slab[runOffs[i]] inside the run area at superOff (GRO_RUN_AREA
   * bytes), with its gso type/size (runGso), datagrams merged (runSegs) and their total bytes (runWire).
   */
  udpRecv(
    h: NativeHandle, slab: Uint8Array, slotSize: number, headroom: number, slots: number, lens: Uint32Array,
    addrs: Uint8Array, runOffs?: Uint32Array, runGso?: Uint16Array, runSegs?: Uint16Array, runWire?: Uint32Array,
    superOff?: number, maxFrame?: number,
  ): number;
  /**
   * udpRecv's split of `nbufs` (≤ 8) UDP GRO buffers with runs, without a socket (the in-memory twin):
   * buffer b is bufs[b * GRO_BUF_SIZE, + blens[b]), cut at bsegs[b] (0 = one datagram), from sender
   * record baddrs[b * 18]. Descriptors from `done` on; returns the new count. `state` = [buffer, offset]
   * where the split starts, updated to where it stopped ([nbufs, 0]: all handed out), as udpRecv
   * resumes its own buffers on the next call.
   */
  groRunsSplit(
    bufs: Uint8Array, blens: Uint32Array, bsegs: Uint16Array, baddrs: Uint8Array, nbufs: number, slab: Uint8Array, slotSize: number,
    headroom: number, slots: number, done: number, lens: Uint32Array, addrs: Uint8Array, runOffs: Uint32Array, runGso: Uint16Array,
    runSegs: Uint16Array, runWire: Uint32Array, superOff: number, maxFrame: number, stats: BigUint64Array, state: Uint32Array,
  ): number;
  /**
   * Writes to a vnet TAP: descriptor j with gso[2j] = 0 a plain frame (coalesced as by tapWriteVnet),
   * else a TCP GSO frame of gso[2j+1]-byte segments (checksum field = pseudo-header sum). Returns consumed.
   */
  tapWriteGso(
    h: NativeHandle, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, gso: Uint16Array, count: number, maxMerge: number,
    status?: Int32Array,
  ): number;
  /** sendmmsg of descriptors [0, count); returns descriptors consumed; status as tapWrite. */
  udpSend(
    h: NativeHandle, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, addrs: Uint8Array, srcIdx: Uint8Array,
    count: number, status?: Int32Array,
  ): number;
  /**
   * Phase 2: like udpSend, but descriptor j whose gso[2j] is non-zero is a TSO super-frame behind a
   * prefixLen-byte prefix (the VXLAN header): it is cut into gso[2j+1]-byte (MSS) segments, each
   * behind a copy of the prefix, and sent with UDP_SEGMENT (or one datagram per segment).
   * Returns descriptors consumed; status as udpSend (EINVAL: a super-frame that cannot be segmented).
   */
  udpSendGso(
    h: NativeHandle, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, addrs: Uint8Array, srcIdx: Uint8Array,
    gso: Uint16Array, prefixLen: number, count: number, status?: Int32Array,
  ): number;
  /** Enables/disables UDP GRO receive (recv still hands out one datagram per slot); returns the state. */
  udpSetGro(h: NativeHandle, enabled: boolean): boolean;
  /** Enables/disables UDP_SEGMENT use; returns whether it is in use (false when the kernel lacks it). */
  udpSetGso(h: NativeHandle, enabled: boolean): boolean;
  /**
   * The segmentation of udpSendGso on its own (tests, benchmarks): returns the segment count, -1 when
   * the frame cannot be segmented, -2 when out/segLens are too small. Segment i is at out[i * stride],
   * segLens[i] bytes; stride is stored in segLens[segLens.length - 1].
   */
  gsoSegment(frame: Uint8Array, gsoType: number, mss: number, prefix: Uint8Array, out: Uint8Array, segLens: Uint32Array): number;
  /**
   * The coalescing of tapWriteVnet on its own: output frame i (10-byte virtio header + frame) is at
   * out[info[3i]], info[3i+1] bytes, made of info[3i+2] inputs. Returns the number of output frames.
   */
  groCoalesce(
    slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, count: number, maxMerge: number, out: Uint8Array, info: Uint32Array,
  ): number;
  /** Registers (or replaces) the readability callback and starts polling (level-triggered). */
  pollStart(h: NativeHandle, cb: (err?: Error) => void): void;
  /** Sets libuv's UV_METRICS_IDLE_TIME on the loop (see native/handle_glue.c); the previous state, null when unsupported. */
  loopIdleMetrics(on: boolean): boolean | null;
  /** Pauses readability callbacks. */
  pollStop(h: NativeHandle): void;
  /**
   * Busy-poll of this event loop's group (native/busypoll.h): after a member's callback returned,
   * poll the members' fds with a zero timeout for up to `windowUs` µs since the last batch found
   * (0 = off), at most `turnUs` µs per loop turn, running ready members' callbacks directly.
   * Counters go to `stats` (BUSY_STAT_COUNT slots; kept from an earlier call when omitted).
   * `yieldCpu` (default true): sched_yield() after a poll that found nothing.
   */
  busyPollConfigure(windowUs: number, turnUs: number, stats?: BigUint64Array, yieldCpu?: boolean): void;
  /** Puts the device in (true) or takes it out of (false) the loop's busy-poll group. */
  busyPollJoin(h: NativeHandle, on: boolean): void;
  /**
   * Starts the TAP reader thread: it reads batches (tapRead/tapReadVnet semantics) into slab k of
   * `nslabs` (bytes [k·slots·slotSize, (k+1)·slots·slotSize)), lens[k·slots…], gso[2·k·slots…] and
   * calls `cb` on the loop when batches are ready. The TAP is no longer polled by the loop. When the
   * thread stops on a read error (the TAP was deleted…), `cb(err)` is called once (after the
   * batches published before it) with the errno error (`syscall` 'readv'); nothing is thrown.
   */
  readerStart(
    h: NativeHandle, slab: Uint8Array, slotSize: number, headroom: number, slots: number, nslabs: number, lens: Uint32Array,
    gso: Uint16Array, cb: (err?: Error) => void,
  ): void;
  /** The oldest published batch as (k << 16 | n), or -1 (the thread's errors go to the callback). */
  readerNext(h: NativeHandle): number;
  /** Gives the oldest published batch's slab back to the thread. */
  readerRelease(h: NativeHandle): void;
  /** Stops and joins the reader thread (idempotent). */
  readerStop(h: NativeHandle): void;
  /** [thread wake-ups from poll, waits for a free slab, errno the thread stopped on (0 = running / none)]. */
  readerStats(h: NativeHandle): [number, number, number];
  /** Whether the active poll keeps the event loop alive (default true). */
  pollRef(h: NativeHandle, ref: boolean): void;
  /** Stops polling and closes the fd(s); idempotent. */
  close(h: NativeHandle): void;
  isClosed(h: NativeHandle): boolean;
  bridgeAdd(name: string): number;
  bridgeDel(name: string): number;
  bridgePort(bridge: string, ifname: string, add: boolean): number;
  setMtu(name: string, mtu: number): number;
  getMtu(name: string): number;
  getFlags(name: string): number;
  setUp(name: string, up: boolean): number;
  getMac(name: string): Buffer;
  ifIndex(name: string): number;
  /** The device's features (ETHTOOL_GSTRINGS + ETHTOOL_GFEATURES), in kernel order ('' = an unused bit). */
  ethtoolFeatures(name: string): NativeFeature[];
  /**
   * One ETHTOOL_SFEATURES request turning features[k] (kernel names) on[k]; returns the kernel's
   * ETHTOOL_F_* flags (0 done, 1 one of them is fixed, 2 recorded but not all in effect).
   */
  ethtoolSetFeatures(name: string, features: string[], on: boolean[]): number;
  /** One datagram to an AF_UNIX SOCK_DGRAM socket ('@' = abstract namespace); returns bytes sent. */
  notify(socketPath: string, message: string): number;
}

/** The shape of a raw errno error thrown by the addon. */
export interface NativeErrnoError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

let cached: VxmeshAddon | null = null;

/** Candidate locations of the built addon, nearest first (works from src/ via ts and from dist/). */
function candidates(): string[] {
  const out: string[] = [];
  if (process.env.VXMESH_ADDON) out.push(path.resolve(process.env.VXMESH_ADDON));
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    out.push(path.join(dir, 'build', 'Release', 'vxmesh.node'));
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return out;
}

/** Loads the addon once. Throws VxmeshError(ERR_VXMESH_NATIVE_LOAD) when it is missing or broken. */
export function loadAddon(): VxmeshAddon {
  if (cached) return cached;
  const tried = candidates();
  const file = tried.find((p) => fs.existsSync(p));
  if (!file) {
    throw new VxmeshError(
      ERR_NATIVE_LOAD,
      `native addon not found (tried ${tried.join(', ')}); build it with \`npm install\` (runs node-gyp rebuild)`,
      { tried },
    );
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    cached = require(file) as VxmeshAddon;
  } catch (err) {
    throw new VxmeshError(ERR_NATIVE_LOAD, `cannot load native addon ${file}: ${(err as Error).message}`, { file });
  }
  return cached;
}

/** True when `err` is a raw errno error from the addon. */
export function isErrnoError(err: unknown): err is NativeErrnoError {
  return err instanceof Error && typeof (err as NativeErrnoError).errno === 'number'
    && typeof (err as NativeErrnoError).syscall === 'string';
}

/**
 * Wraps a raw errno error into `SystemError(code, "<what>: <syscall> failed: <strerror>")`, keeping
 * the errno name and syscall; other errors are returned unchanged.
 */
export function toSystemError(err: unknown, code: string, what: string): unknown {
  if (!isErrnoError(err)) return err;
  const e = new SystemError(code, `${what}: ${err.message}`, err.syscall, err.code);
  (e as { cause?: unknown }).cause = err;
  return e;
}
