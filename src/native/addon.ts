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
  /** stats[i]: received datagrams larger than a slot (dropped). */
  readonly STAT_RX_TRUNCATED: number;
  /** stats[i]: send batches cut short by EAGAIN. */
  readonly STAT_TX_EAGAIN: number;
  /** Minimum length of a stats BigUint64Array. */
  readonly STAT_COUNT: number;
  readonly UDP_MAX_SOURCES: number;
  readonly ADDR_LEN: number;
}

/** The raw addon surface. Every call is synchronous and non-blocking. */
export interface VxmeshAddon {
  readonly constants: AddonConstants;
  /** Opens TAP `name` (IFF_TAP|IFF_NO_PI|flags). Returns [handle, kernel name, created]. */
  tapOpen(name: string, flags: number, stats: BigUint64Array): [NativeHandle, string, boolean];
  /** TUNSETOFFLOAD (needs TAP_F_VNET_HDR). */
  tapSetOffload(h: NativeHandle, offloads: number): void;
  /** Reads up to `slots` frames into slab slots at `headroom`; returns the count (0 when none). */
  tapRead(h: NativeHandle, slab: Uint8Array, slotSize: number, headroom: number, slots: number, lens: Uint32Array): number;
  /** Writes descriptors [0, count); returns how many were consumed (written or skipped on error). */
  tapWrite(h: NativeHandle, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, count: number): number;
  /** Opens the UDP transport. Returns [handle, bound port, source ports]. */
  udpOpen(
    family: 4 | 6, address: string, port: number, sourcePorts: number, bufBytes: number, stats: BigUint64Array,
  ): [NativeHandle, number, number[]];
  udpRecv(
    h: NativeHandle, slab: Uint8Array, slotSize: number, headroom: number, slots: number, lens: Uint32Array,
    addrs: Uint8Array,
  ): number;
  udpSend(
    h: NativeHandle, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, addrs: Uint8Array, srcIdx: Uint8Array,
    count: number,
  ): number;
  /** Registers (or replaces) the readability callback and starts polling (level-triggered). */
  pollStart(h: NativeHandle, cb: (err?: Error) => void): void;
  /** Pauses readability callbacks. */
  pollStop(h: NativeHandle): void;
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
