/**
 * The data path's capture hub (one per Datapath, held by its PathContext): what a drop and a
 * forwarded frame cost on the hot path, and nothing more.
 *
 *   stamp      once per batch, the time the batch's entries carry (no clock read per drop);
 *   drop       (both directions, the one call at each drop point of inside.ts / outside.ts): the
 *              drop counted in the network's rxDrops / txDrops and again in its PeerDropTable
 *              (counters.ts: one Map lookup by peer key, one increment), and the frame kept in the
 *              network's drop ring (ring.ts: one bounded copy of at most `snapLen` bytes, with
 *              reason, time, direction and the peer's address record). Drops before a network is
 *              known (truncated, unknown VNI, decrypt failures…) go to the global counters, table and ring.
 *   forwarded  only while a live session is open: the data path reads `live` once per batch and,
 *              when true, hands each forwarded frame here; each open session of that network
 *              queues a bounded copy or, when its queue is full, counts it as missed. The data path
 *              never waits for a consumer.
 *
 * All memory is allocated when a network is attached (its ring) or a session opened (its queue),
 * never per packet. Reading the rings and draining sessions is the capture extension's business
 * (extension.ts), on the control plane.
 */
import type { Clock } from '../clock';
import type { GlobalCounters, NetworkCounters, PeerDropTable } from '../dataplane/counters';
import { PEER_DROP_ROWS } from '../dataplane/counters';
import { DIR_RX, DIR_TX, FrameQueue, FrameRing, KIND_FRAME } from './ring';

/** Frames kept per drop ring (per network, plus one global ring), default. */
export const DROP_RING_FRAMES = 256;
/** Bytes kept of each dropped frame, default (headers and the start of the payload). */
export const DROP_SNAP_LEN = 256;
/** Live sessions open at once, at most (all networks together). */
export const MAX_LIVE_SESSIONS = 4;

/** What the hub needs of a network (the data path's Network). */
export interface CaptureNetwork {
  readonly config: { readonly vni: number; readonly name: string };
  readonly counters: NetworkCounters;
}

/** What the hub needs of a peer (the data path's Peer). */
export interface CapturePeer {
  readonly key: number | string;
  readonly label: string;
  /** 18-byte address record (address + VXLAN port). */
  readonly record: Buffer;
}

/** One live capture: the frames a network forwards (both directions), queued for a consumer. */
export class LiveSession {
  /** Set when the session ended (closed, count reached); no frame is queued after that. */
  closed = false;
  /** Frames still to capture before the session stops taking more (Infinity: until closed). */
  remaining: number;
  readonly queue: FrameQueue;

  constructor(readonly id: number, readonly vni: number, queueFrames: number, snapLen: number, count: number) {
    this.queue = new FrameQueue(queueFrames, snapLen);
    this.remaining = count > 0 ? count : Infinity;
  }
}

export interface CaptureHubOptions {
  ringFrames?: number;
  snapLen?: number;
}

export class CaptureHub {
  /** True while at least one live session is open: read once per batch by the data path. */
  live = false;
  readonly ringFrames: number;
  readonly snapLen: number;
  /** Drops before a network is known. */
  readonly global: FrameRing;
  private readonly rings = new Map<CaptureNetwork, FrameRing>();
  private sessions: LiveSession[] = [];
  private nextId = 1;
  /** The current batch's time (`stamp`); entries recorded in the batch carry it (no clock read per drop). */
  private now = 0;

  constructor(_clock: Clock, private readonly globalCounters: GlobalCounters, opts: CaptureHubOptions = {}) {
    this.ringFrames = opts.ringFrames ?? DROP_RING_FRAMES;
    this.snapLen = opts.snapLen ?? DROP_SNAP_LEN;
    this.global = new FrameRing(this.ringFrames, this.snapLen);
  }

  // ---- control plane --------------------------------------------------------------------------

  /** Allocates `net`'s drop ring (a network added to the data path). */
  attach(net: CaptureNetwork): void {
    if (!this.rings.has(net)) this.rings.set(net, new FrameRing(this.ringFrames, this.snapLen));
  }

  /** Frees `net`'s ring and ends its sessions (a network removed). */
  detach(net: CaptureNetwork): void {
    this.rings.delete(net);
    for (const s of this.sessions) if (s.vni === net.config.vni) this.close(s);
  }

  /** The drop ring of `net` (null: the global one). */
  ring(net: CaptureNetwork | null): FrameRing | undefined {
    return net === null ? this.global : this.rings.get(net);
  }

  /** The per-sender table of drops before a network is known. */
  get globalTable(): PeerDropTable {
    return this.globalCounters.peerDrops;
  }

  /** Networks with a ring, in attach order. */
  networks(): CaptureNetwork[] {
    return [...this.rings.keys()];
  }

  /**
   * Opens a live session on network `vni`: a queue of `queueFrames` frames of at most `snapLen`
   * bytes each; it stops taking frames after `count` (0: until closed). Throws RangeError when
   * MAX_LIVE_SESSIONS are open.
   */
  open(vni: number, queueFrames: number, snapLen: number, count: number): LiveSession {
    if (this.sessions.length >= MAX_LIVE_SESSIONS) throw new RangeError(`${MAX_LIVE_SESSIONS} live captures are open already`);
    const s = new LiveSession(this.nextId++, vni, queueFrames, snapLen, count);
    this.sessions = [...this.sessions, s];
    this.live = true;
    return s;
  }

  close(s: LiveSession): void {
    s.closed = true;
    this.sessions = this.sessions.filter((x) => x !== s);
    this.live = this.sessions.length > 0;
  }

  /** Open sessions (status). */
  openSessions(): readonly LiveSession[] {
    return this.sessions;
  }

  // ---- hot path -------------------------------------------------------------------------------

  /** Sets the time of the batch being processed (the data path's per-batch clock read); returns it. */
  stamp(now: number): number {
    this.now = now;
    return now;
  }

  /**
   * `n` inbound datagrams dropped for `reason` (RX_DROP_REASONS index): counted in rxDrops and by peer (`peer` =
   * the sender the data path knows, else `other`) in `net`'s table (null: the global one), and the
   * bytes buf[off, off + len) (`kind`: KIND_FRAME or KIND_DATAGRAM; buf null: none) kept in its
   * ring with the peer's record, else the outer source record at addrs[aOff] (addrs null: none).
   */
  rxDrop(net: CaptureNetwork | null, reason: number, n: number, buf: Buffer | null, off: number, len: number, kind: number,
    addrs: Buffer | null, aOff: number, peer: CapturePeer | null): void {
    const counters = net === null ? this.globalCounters : net.counters;
    counters.rxDrops[reason] += n;
    const table = counters.peerDrops;
    table.countRx(peer === null ? PEER_DROP_ROWS : table.row(peer.key, peer.label), reason, n);
    const ring = net === null ? this.global : this.rings.get(net);
    if (ring === undefined) return;
    if (peer !== null) ring.put(this.now, DIR_RX, kind, reason, buf, off, len, peer.record, 0);
    else ring.put(this.now, DIR_RX, kind, reason, buf, off, len, addrs, aOff);
  }

  /** `n` outbound frames of `net` dropped for `reason` (TX_DROP_REASONS index), towards `peer` when known: counted in txDrops and by peer, kept in the ring. */
  txDrop(net: CaptureNetwork, reason: number, n: number, buf: Buffer | null, off: number, len: number, kind: number,
    peer: CapturePeer | null): void {
    const counters = net.counters;
    counters.txDrops[reason] += n;
    const table = counters.peerDrops;
    table.countTx(peer === null ? PEER_DROP_ROWS : table.row(peer.key, peer.label), reason, n);
    const ring = this.rings.get(net);
    if (ring !== undefined) ring.put(this.now, DIR_TX, kind, reason, buf, off, len, peer === null ? null : peer.record, 0);
  }

  /**
   * A frame `net` forwarded (dir DIR_RX: written to its TAP; DIR_TX: sent towards `peer`, null for
   * a flood): queued in each of its open sessions. Called only while `live` is true.
   */
  forwarded(net: CaptureNetwork, dir: number, buf: Buffer, off: number, len: number, peer: CapturePeer | null): void {
    const ss = this.sessions;
    const vni = net.config.vni;
    for (let i = 0; i < ss.length; i++) {
      const s = ss[i];
      if (s.vni !== vni || s.remaining === 0) continue;
      if (s.queue.put(this.now, dir, KIND_FRAME, -1, buf, off, len, peer === null ? null : peer.record, 0)) s.remaining--;
    }
  }
}

export { DIR_RX, DIR_TX };
