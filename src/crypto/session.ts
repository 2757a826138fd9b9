/**
 * Sessions between this host and its peers, and the data path's `PacketCipher` (SessionManager).
 *
 * Outbound pipeline (sealBatch, one call per data-path batch):
 *   1. destination record → peer (by address; ports are ECMP source ports, see dataplane/addr.ts)
 *   2. peer's current keypair, usable (age < 180 s, counter < limit)? else queue a copy (bounded,
 *      `queueTimeoutMs`) and start a handshake → CIPHER_QUEUED, or CIPHER_NO_SESSION when full
 *   3. 16-byte data header written in front of the VXLAN header (type 4, receiver index, counter)
 *   4. ONE native AEAD call seals every descriptor in place (tag after the packet)
 *   5. rekey check (initiator, age ≥ 120 s or counter ≥ 2^60) → handshake in the background
 * Inbound pipeline (openBatch):
 *   1. handshake/cookie messages → staged for step 5 (CIPHER_CONSUMED)
 *   2. data: receiver index → keypair; expired / replayed (window check only) → CIPHER_FAILED
 *   3. ONE native AEAD call opens the rest in place
 *   4. replay window updated only for packets whose tag verified; a responder's new keypair is
 *      confirmed (made current) by its first authenticated packet (its queue flush is staged);
 *      empty body = keepalive (CIPHER_CONSUMED); else CIPHER_OK with the VXLAN packet at +16.
 *   5. staged control work, after every descriptor has its result: queue flushes of confirmed
 *      sessions, then the handshake messages in arrival order (replies, queue flushes,
 *      keepalives). Nothing sealed here touches the batch's descriptors or scratch.
 *
 * Timers run on the injected Clock (host.clock, or `opts.clock`): handshake retries (1, 2, 4, 5,
 * 5… s plus 0–333 ms jitter, given up after 90 s), keypair expiry, queue timeout.
 * Wire format, key schedule and timers: docs/wire-format.md.
 */

import sodium from 'libsodium-wrappers';

import type { Clock, TimerHandle } from '../clock';
import type { Endpoint } from '../config/types';
import { ADDR_LEN, endpointToRecord, peerKeyOf, recordToEndpoint, type PeerKey } from '../dataplane/addr';
import {
  CIPHER_CONSUMED, CIPHER_FAILED, CIPHER_NO_SESSION, CIPHER_OK, CIPHER_QUEUED,
  type CipherBatch, type CipherHost, type PacketCipher,
} from '../dataplane/cipher-seam';
import type { TxBatch } from '../dataplane/io';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { type AeadAlg, type AeadTable, createAeadTable } from './aead';
import {
  CookieChecker, type InitiatorState, RateLimiter, type SessionKeys, checkMac1, consumeCookieReply,
  consumeInitiation, consumeResponse, createInitiation, createResponse,
} from './handshake';
import { type HostKey, assertReady, decodeKey, encodeKey } from './keys';
import {
  DATA_HEADER_LEN, DATA_OVERHEAD, MSG_COOKIE, MSG_DATA, MSG_INITIATION, MSG_RESPONSE, compareBytes,
  encodeTimestamp, mac1Key, readCounter, readU32LE, writeCounter, writeU32LE,
} from './noise';
import { ReplayWindow } from './replay';

/** Protocol timers and limits (docs/wire-format.md §Timers). Defaults are WireGuard's where it has one. */
export interface SessionTimers {
  /** Initiator starts a new handshake when sending on a keypair this old. */
  rekeyAfterTimeMs: number;
  /** A keypair is never used (either direction) past this age. */
  rejectAfterTimeMs: number;
  /** A handshake is retried for this long, then abandoned (queued packets dropped). */
  rekeyAttemptTimeMs: number;
  /** First retry after this; doubled each attempt up to `retryMaxMs`; plus 0..`retryJitterMs`. */
  retryInitialMs: number;
  retryMaxMs: number;
  retryJitterMs: number;
  /** After a rotation the previous keypair is still accepted (receive only) for this long. */
  previousGraceMs: number;
  /** A packet waiting for a session is dropped (`no_session`) after this long. */
  queueTimeoutMs: number;
  /** At most this many packets wait per peer; more → dropped (`no_session`). */
  queueMax: number;
  /** Start a handshake when a keypair has sealed this many messages. */
  rekeyAfterMessages: number;
  /** Refuse a keypair past this many messages (both directions). */
  rejectAfterMessages: number;
  /** A data packet with an unknown index from a known peer address triggers a handshake at most this often. */
  unknownIndexHandshakeMs: number;
  /** Housekeeping period (expiry, queue timeouts). */
  tickMs: number;
  /** Handshake messages per second (all sources) above which mac2 (a cookie) is required. */
  loadThreshold: number;
  /** Per-source handshake token bucket. */
  ratePerSec: number;
  rateBurst: number;
}

export const DEFAULT_TIMERS: SessionTimers = {
  rekeyAfterTimeMs: 120_000,
  rejectAfterTimeMs: 180_000,
  rekeyAttemptTimeMs: 90_000,
  retryInitialMs: 1_000,
  retryMaxMs: 5_000,
  retryJitterMs: 333,
  previousGraceMs: 10_000,
  queueTimeoutMs: 3_000,
  queueMax: 64,
  rekeyAfterMessages: 2 ** 60,
  // WireGuard: 2^64 − 2^13 − 1. Counters here are exact JS integers (< 2^53); no key lives long
  // enough (180 s) to come near either bound.
  rejectAfterMessages: Number.MAX_SAFE_INTEGER,
  unknownIndexHandshakeMs: 1_000,
  tickMs: 250,
  loadThreshold: 200,
  ratePerSec: 20,
  rateBurst: 5,
};

/** Keep-alive/timeout slack used by the receive-side rekey trigger (WireGuard: 10 s + 5 s). */
const RECV_REKEY_SLACK_MS = 15_000;

/** Counters of the session layer (exported by metrics; names are stable). */
export class CipherCounters {
  txSealed = 0;
  txQueued = 0;
  txQueueSent = 0;
  txNoSession = 0;
  txKeepalives = 0;
  rxOpened = 0;
  rxKeepalives = 0;
  rxBadTag = 0;
  rxReplay = 0;
  rxUnknownIndex = 0;
  rxExpired = 0;
  rxMalformed = 0;
  hsInitiationSent = 0;
  hsInitiationRecv = 0;
  hsResponseSent = 0;
  hsResponseRecv = 0;
  hsCookieSent = 0;
  hsCookieRecv = 0;
  hsBadMac = 0;
  hsRateLimited = 0;
  hsUnknownPeer = 0;
  hsUnknownIndex = 0;
  hsReplayedInitiation = 0;
  hsInvalid = 0;
  hsTieBreakIgnored = 0;
  /** Handshake messages that reached Diffie-Hellman (the expensive step). */
  hsDh = 0;
  handshakeTimeouts = 0;
  sessionsEstablished = 0;
}

/** One direction-pair of transport keys (a "keypair" in WireGuard's words). */
export interface Keypair {
  readonly peer: SessionPeer;
  readonly localIndex: number;
  readonly remoteIndex: number;
  readonly sendSlot: number;
  readonly recvSlot: number;
  readonly created: number;
  readonly isInitiator: boolean;
  sendCounter: number;
  readonly replay: ReplayWindow;
  /** Test hook: a hash of the send key (to prove keys differ); never the key itself. */
  readonly sendKeyId: string;
}

interface Queued {
  readonly buf: Uint8Array; // DATA_HEADER_LEN + packet + 16 bytes tag room
  readonly len: number;     // plaintext VXLAN packet length
  readonly vni: number;
  readonly at: number;
}

/** A peer host as the session layer knows it. */
export class SessionPeer {
  readonly keyB64: string;
  record: Buffer | null = null;
  addrKey: PeerKey | null = null;
  current: Keypair | null = null;
  previous: Keypair | null = null;
  previousUntil = 0;
  next: Keypair | null = null;
  /** Pending initiation (we are initiator). */
  hs: InitiatorState | null = null;
  hsStartedAt = 0;
  hsAttempt = 0;
  hsTimer: TimerHandle | null = null;
  lastTimestamp: Uint8Array | null = null;
  cookie: Uint8Array | null = null;
  cookieAt = 0;
  lastUnknownIndexHs = -Infinity;
  queue: Queued[] = [];
  lastHandshakeAt = -1;

  constructor(readonly publicKey: Uint8Array) {
    this.keyB64 = encodeKey(publicKey);
  }
}

export interface SessionManagerOptions {
  hostKey: HostKey;
  /**
   * Pre-shared keys mixed into every handshake (Noise psk2), first = the one this host uses as
   * responder; an initiator accepts a response under any of them (key rotation). Derived from
   * the cluster keyring with `pskFromClusterKey`; empty → one all-zero PSK.
   */
  psks?: Uint8Array[];
  /** Clock for timers; default: the data path's (given in attach). Required when used without a data path. */
  clock?: Clock;
  /** Wall clock in ms (handshake timestamps must grow across restarts); default Date.now. */
  wallClock?: () => number;
  /** CSPRNG; default libsodium randombytes_buf. */
  random?: (n: number) => Uint8Array;
  /** Uniform [0, 1) for retry jitter; default Math.random. */
  jitter?: () => number;
  timers?: Partial<SessionTimers>;
  alg?: AeadAlg;
  backend?: 'auto' | 'native' | 'node';
  /** Most keypairs alive at once (2 AEAD slots each; up to 3 keypairs per peer). Default 16384. */
  maxKeypairs?: number;
  logger?: Logger;
}

/** Derives the handshake PSK from a cluster key (keyed BLAKE2b, domain-separated). */
export function pskFromClusterKey(clusterKey: Uint8Array): Uint8Array {
  return sodium.crypto_generichash(32, new TextEncoder().encode('vxmesh psk v1'), clusterKey);
}

const MAX_PACKET = 65535;
/** Most segments native/aead.c cuts from one super-frame (VXM_TSO_MAX_SEGS). */
const TSO_MAX_SEGS = 256;

/**
 * The session layer: peers, handshakes, keypairs, and the data path's PacketCipher. Control
 * plane: `setPeer`/`removePeer` (from gossip records or static config), `start`/`stop`
 * (implicit with attach/detach when used by a Datapath), `status()`.
 */
export class SessionManager implements PacketCipher {
  readonly headroom = DATA_HEADER_LEN;
  readonly tailroom = DATA_OVERHEAD - DATA_HEADER_LEN;
  readonly counters = new CipherCounters();
  readonly timers: SessionTimers;

  private readonly local: HostKey;
  private psks: Uint8Array[];
  private readonly myMac1Key: Uint8Array;
  private readonly wallClock: () => number;
  private readonly random: (n: number) => Uint8Array;
  private readonly jitter: () => number;
  private readonly log: Logger;
  private readonly table: AeadTable;
  private readonly freeSlots: number[] = [];
  private clock: Clock | null;
  private host: CipherHost | null = null;
  private sendHook: ((pkt: Uint8Array, to: Buffer) => void) | null = null;
  private tickTimer: TimerHandle | null = null;
  private cookies: CookieChecker | null = null;
  private limiter: RateLimiter | null = null;
  private cookieLimiter: RateLimiter | null = null;
  private lastTs = 0;
  private loadWindowStart = 0;
  private loadCount = 0;

  private readonly peersByKey = new Map<string, SessionPeer>();
  private readonly peersByAddr = new Map<PeerKey, SessionPeer>();
  private readonly keypairs = new Map<number, Keypair>();
  private readonly pending = new Map<number, SessionPeer>();

  // per-batch scratch (grown on demand)
  private cap = 0;
  private dOffs = new Uint32Array(0);
  private dLens = new Uint32Array(0);
  private dSlots = new Uint32Array(0);
  private dStatus = new Uint8Array(0);
  private dIdx = new Uint32Array(0);
  private dKp: (Keypair | null)[] = [];
  private dCounter = new Float64Array(0);
  // control work found while opening a batch, run after it (descriptor indices; peers to flush)
  private stagedCtl = new Uint32Array(0);
  private stagedCtlCount = 0;
  private readonly stagedFlush: SessionPeer[] = [];
  // sealOne's own descriptor (queued packets, keepalives): never the batch scratch above
  private readonly oneOffs = new Uint32Array(1);
  private readonly oneLens = new Uint32Array(1);
  private readonly oneSlots = new Uint32Array(1);
  private readonly oneStatus = new Uint8Array(1);

  // control sends: a small slab reused per send
  private readonly ctl: TxBatch = {
    slab: Buffer.alloc(MAX_PACKET + 64), offs: new Uint32Array(1), lens: new Uint32Array(1),
    addrs: Buffer.alloc(ADDR_LEN), srcIdx: new Uint8Array(1), count: 0,
  };

  constructor(opts: SessionManagerOptions) {
    assertReady();
    this.local = opts.hostKey;
    this.psks = opts.psks && opts.psks.length ? opts.psks.map((p) => new Uint8Array(p)) : [new Uint8Array(32)];
    this.myMac1Key = mac1Key(this.local.publicKey);
    this.wallClock = opts.wallClock ?? Date.now;
    this.random = opts.random ?? ((n) => sodium.randombytes_buf(n));
    this.jitter = opts.jitter ?? Math.random;
    this.log = opts.logger ?? nullLogger;
    this.timers = { ...DEFAULT_TIMERS, ...(opts.timers ?? {}) };
    const maxKeypairs = opts.maxKeypairs ?? 16384; // EVP contexts are allocated per key, on demand
    this.table = createAeadTable(opts.alg ?? 'aes-256-gcm', maxKeypairs * 2, opts.backend ?? 'auto');
    for (let s = maxKeypairs * 2 - 1; s >= 0; s--) this.freeSlots.push(s);
    this.clock = opts.clock ?? null;
    if (this.clock) this.startClock(this.clock);
  }

  /** Replaces the PSKs (cluster keyring rotation); sessions in place keep their keys. */
  setPsks(psks: Uint8Array[]): void {
    this.psks = psks.length ? psks.map((p) => new Uint8Array(p)) : [new Uint8Array(32)];
  }

  /** Which AEAD backend is in use ('native' or 'node'). */
  get backend(): string {
    return this.table.backend;
  }

  get publicKey(): string {
    return encodeKey(this.local.publicKey);
  }

  // ---- wiring -------------------------------------------------------------------------------------

  attach(host: CipherHost): void {
    this.host = host;
    if (!this.clock) this.startClock(host.clock);
  }

  detach(): void {
    this.host = null;
  }

  /** Without a data path (tests): where control messages and queued packets go. */
  setSendHook(fn: ((pkt: Uint8Array, to: Buffer) => void) | null): void {
    this.sendHook = fn;
  }

  private startClock(clock: Clock): void {
    this.clock = clock;
    this.cookies = new CookieChecker(clock, this.local.publicKey, this.random);
    this.limiter = new RateLimiter(clock, this.timers.ratePerSec, this.timers.rateBurst);
    this.cookieLimiter = new RateLimiter(clock, this.timers.ratePerSec, this.timers.rateBurst);
    this.loadWindowStart = clock.now();
    this.tickTimer = clock.setInterval(this.timers.tickMs, () => this.tick());
  }

  /** Stops timers and forgets every session (keys wiped from the AEAD table). */
  stop(): void {
    this.tickTimer?.cancel();
    this.tickTimer = null;
    for (const p of [...this.peersByKey.values()]) this.dropPeerState(p);
  }

  // ---- peers (control plane) ----------------------------------------------------------------------

  /**
   * Adds or updates a peer: its static public key (base64 or bytes) and its underlay endpoint
   * (VXLAN port), as announced by gossip or given statically. Returns the peer.
   */
  setPeer(publicKey: string | Uint8Array, endpoint: Endpoint | null): SessionPeer {
    const pub = typeof publicKey === 'string' ? decodeKey(publicKey, 'peer public key') : publicKey;
    const k = encodeKey(pub);
    let p = this.peersByKey.get(k);
    if (!p) {
      p = new SessionPeer(pub);
      this.peersByKey.set(k, p);
    }
    if (endpoint) {
      const rec = endpointToRecord(endpoint);
      const ak = peerKeyOf(rec, 0);
      if (p.addrKey !== null && p.addrKey !== ak && this.peersByAddr.get(p.addrKey) === p) this.peersByAddr.delete(p.addrKey);
      p.record = rec;
      p.addrKey = ak;
      this.peersByAddr.set(ak, p);
    }
    return p;
  }

  /** Forgets a peer and its sessions. */
  removePeer(publicKey: string | Uint8Array): void {
    const k = typeof publicKey === 'string' ? publicKey.trim() : encodeKey(publicKey);
    const p = this.peersByKey.get(k);
    if (!p) return;
    this.dropPeerState(p);
    this.peersByKey.delete(k);
    if (p.addrKey !== null && this.peersByAddr.get(p.addrKey) === p) this.peersByAddr.delete(p.addrKey);
  }

  peer(publicKey: string): SessionPeer | undefined {
    return this.peersByKey.get(publicKey);
  }

  peerByEndpoint(ep: Endpoint): SessionPeer | undefined {
    return this.peersByAddr.get(peerKeyOf(endpointToRecord(ep), 0));
  }

  /** JSON-able summary for /v1/status. */
  status(): unknown {
    const now = this.clock ? this.clock.now() : 0;
    return {
      publicKey: this.publicKey,
      backend: this.table.backend,
      alg: this.table.alg,
      peers: [...this.peersByKey.values()].map((p) => ({
        publicKey: p.keyB64,
        endpoint: p.record ? recordToEndpoint(p.record, 0) : null,
        session: p.current ? { ageMs: Math.round(now - p.current.created), sent: p.current.sendCounter, initiator: p.current.isInitiator } : null,
        handshaking: p.hs !== null,
        queued: p.queue.length,
        lastHandshakeAgoMs: p.lastHandshakeAt >= 0 ? Math.round(now - p.lastHandshakeAt) : null,
      })),
      counters: { ...this.counters },
    };
  }

  // ---- PacketCipher: envelopes ------------------------------------------------------------------

  /** Types 1–4 with three zero bytes after: never valid VXLAN (its first byte always has 0x08). */
  isEnvelope(slab: Buffer, off: number, len: number): boolean {
    if (len < 4) return false;
    const t = slab[off];
    return t >= MSG_INITIATION && t <= MSG_DATA && slab[off + 1] === 0 && slab[off + 2] === 0 && slab[off + 3] === 0;
  }

  private grow(n: number): void {
    if (n <= this.cap) return;
    const c = Math.max(n, this.cap * 2, 64);
    this.dOffs = new Uint32Array(c);
    this.dLens = new Uint32Array(c);
    this.dSlots = new Uint32Array(c);
    this.dStatus = new Uint8Array(c);
    this.dIdx = new Uint32Array(c);
    this.dCounter = new Float64Array(c);
    this.dKp = new Array(c).fill(null);
    this.stagedCtl = new Uint32Array(c);
    this.cap = c;
  }

  // ---- PacketCipher: seal ----------------------------------------------------------------------

  sealBatch(b: CipherBatch): void {
    const now = this.clock!.now();
    this.grow(b.count);
    let m = 0;
    let lastPeer: SessionPeer | null = null;
    let lastKey: PeerKey | null = null;
    for (let j = 0; j < b.count; j++) {
      const ak = peerKeyOf(b.addrs, j * ADDR_LEN);
      let peer: SessionPeer | null;
      if (ak === lastKey) peer = lastPeer;
      else {
        peer = this.peersByAddr.get(ak) ?? null;
        lastKey = ak;
        lastPeer = peer;
      }
      if (!peer) {
        b.status[j] = CIPHER_NO_SESSION;
        this.counters.txNoSession++;
        continue;
      }
      const kp = this.usableSend(peer, now);
      if (!kp) {
        b.status[j] = this.enqueue(peer, b.slab, b.offs[j], b.lens[j], b.vnis[j], now);
        continue;
      }
      const off = b.offs[j] - DATA_HEADER_LEN;
      this.writeHeader(b.slab, off, kp);
      this.dOffs[m] = off;
      this.dLens[m] = b.lens[j];
      this.dSlots[m] = kp.sendSlot;
      this.dIdx[m] = j;
      m++;
      this.keepFreshSending(peer, kp, now);
    }
    if (m === 0) return;
    this.table.sealBatch(b.slab, this.dOffs, this.dLens, this.dSlots, m, this.dStatus);
    for (let i = 0; i < m; i++) {
      const j = this.dIdx[i];
      if (this.dStatus[i] === 1) {
        b.status[j] = CIPHER_OK;
        b.outOffs[j] = this.dOffs[i];
        b.outLens[j] = this.dLens[i] + DATA_OVERHEAD;
        this.counters.txSealed++;
      } else {
        b.status[j] = CIPHER_NO_SESSION;
        this.counters.txNoSession++;
      }
    }
  }

  /**
   * Fast-path building block (the data path does not call it yet; encrypted networks use plain
   * TAPs today): seals a TSO super-frame for the peer at `addrs[addrOff]` as MSS-sized data
   * messages in `out` (see AeadTable.sealTso for the layout: UDP GSO-ready, stride in
   * `outLens[outLens.length - 1]`), each segment with the next counter of the current keypair.
   * `vxlanHeader` (8 bytes) goes inside every segment's ciphertext. Returns the number of
   * datagrams; 0 when there is no usable session (a handshake is started; the super-frame is
   * dropped and TCP retransmits) or the native backend lacks TSO sealing; < 0 as sealTso.
   */
  sealSuperFrame(
    addrs: Uint8Array, addrOff: number, vxlanHeader: Uint8Array, frame: Uint8Array, gsoType: number, mss: number,
    out: Uint8Array, outLens: Uint32Array,
  ): number {
    const now = this.clock!.now();
    const peer = this.peersByAddr.get(peerKeyOf(addrs, addrOff));
    if (!peer || !this.table.sealTso) {
      this.counters.txNoSession++;
      return 0;
    }
    const kp = this.usableSend(peer, now);
    if (!kp) {
      this.beginHandshake(peer);
      this.counters.txNoSession++;
      return 0;
    }
    const prefix = this.tsoPrefix;
    prefix[0] = MSG_DATA;
    writeU32LE(prefix, 4, kp.remoteIndex);
    writeCounter(prefix, 8, kp.sendCounter);
    prefix.set(vxlanHeader.subarray(0, 8), DATA_HEADER_LEN);
    const n = this.table.sealTso(kp.sendSlot, frame, gsoType, mss, prefix, out, outLens);
    if (n > 0) {
      kp.sendCounter += n;
      this.counters.txSealed += n;
      this.keepFreshSending(peer, kp, now);
    } else if (n === -3) {
      // sealing failed part-way: some counters may have been used; never hand them out again
      kp.sendCounter += TSO_MAX_SEGS;
    }
    return n;
  }

  private readonly tsoPrefix = new Uint8Array(DATA_HEADER_LEN + 8);

  private writeHeader(slab: Uint8Array, off: number, kp: Keypair): void {
    slab[off] = MSG_DATA;
    slab[off + 1] = 0;
    slab[off + 2] = 0;
    slab[off + 3] = 0;
    writeU32LE(slab, off + 4, kp.remoteIndex);
    writeCounter(slab, off + 8, kp.sendCounter++);
  }

  private usableSend(peer: SessionPeer, now: number): Keypair | null {
    const kp = peer.current;
    if (!kp) return null;
    if (now - kp.created >= this.timers.rejectAfterTimeMs || kp.sendCounter >= this.timers.rejectAfterMessages) return null;
    return kp;
  }

  private keepFreshSending(peer: SessionPeer, kp: Keypair, now: number): void {
    if (peer.hs) return;
    if (kp.sendCounter >= this.timers.rekeyAfterMessages || (kp.isInitiator && now - kp.created >= this.timers.rekeyAfterTimeMs)) {
      this.beginHandshake(peer);
    }
  }

  private enqueue(peer: SessionPeer, slab: Uint8Array, off: number, len: number, vni: number, now: number): number {
    this.beginHandshake(peer);
    if (peer.queue.length >= this.timers.queueMax || len > MAX_PACKET) {
      this.counters.txNoSession++;
      return CIPHER_NO_SESSION;
    }
    const buf = new Uint8Array(DATA_HEADER_LEN + len + 16);
    buf.set(slab.subarray(off, off + len), DATA_HEADER_LEN);
    peer.queue.push({ buf, len, vni, at: now });
    this.counters.txQueued++;
    return CIPHER_QUEUED;
  }

  // ---- PacketCipher: open ----------------------------------------------------------------------

  openBatch(b: CipherBatch): void {
    const now = this.clock!.now();
    this.grow(b.count);
    let m = 0;
    this.stagedCtlCount = 0;
    for (let j = 0; j < b.count; j++) {
      const off = b.offs[j];
      const len = b.lens[j];
      const t = b.slab[off];
      if (t !== MSG_DATA) {
        // handshake/cookie: handled after the batch (it may seal and send: queue flush, keepalive)
        b.status[j] = CIPHER_CONSUMED;
        this.stagedCtl[this.stagedCtlCount++] = j;
        continue;
      }
      b.status[j] = CIPHER_FAILED;
      if (len < DATA_OVERHEAD) {
        this.counters.rxMalformed++;
        continue;
      }
      const kp = this.keypairs.get(readU32LE(b.slab, off + 4));
      if (!kp) {
        this.counters.rxUnknownIndex++;
        this.onUnknownIndex(b.addrs, j * ADDR_LEN, now);
        continue;
      }
      if (!this.usableRecv(kp, now)) {
        this.counters.rxExpired++;
        continue;
      }
      const ctr = readCounter(b.slab, off + 8);
      if (!kp.replay.check(ctr)) {
        this.counters.rxReplay++;
        continue;
      }
      this.dOffs[m] = off;
      this.dLens[m] = len;
      this.dSlots[m] = kp.recvSlot;
      this.dIdx[m] = j;
      this.dKp[m] = kp;
      this.dCounter[m] = ctr;
      m++;
    }
    if (m > 0) this.openData(b, m, now);
    this.runStaged(b);
  }

  /** Steps 3–4 of the inbound pipeline for the `m` data descriptors collected by openBatch. */
  private openData(b: CipherBatch, m: number, now: number): void {
    this.table.openBatch(b.slab, this.dOffs, this.dLens, this.dSlots, m, this.dStatus);
    for (let i = 0; i < m; i++) {
      const j = this.dIdx[i];
      const kp = this.dKp[i]!;
      this.dKp[i] = null;
      if (this.dStatus[i] !== 1) {
        this.counters.rxBadTag++;
        continue;
      }
      if (!kp.replay.accept(this.dCounter[i])) { // duplicate within this batch
        this.counters.rxReplay++;
        continue;
      }
      this.onAuthenticated(kp, now);
      const body = this.dLens[i] - DATA_OVERHEAD;
      if (body === 0) {
        b.status[j] = CIPHER_CONSUMED;
        this.counters.rxKeepalives++;
        continue;
      }
      b.status[j] = CIPHER_OK;
      b.outOffs[j] = this.dOffs[i] + DATA_HEADER_LEN;
      b.outLens[j] = body;
      this.counters.rxOpened++;
    }
  }

  /** Control work of the batch just opened, in arrival order: confirmed sessions' queues, then handshakes. */
  private runStaged(b: CipherBatch): void {
    const flush = this.stagedFlush;
    for (let i = 0; i < flush.length; i++) this.flushQueue(flush[i]);
    flush.length = 0;
    const n = this.stagedCtlCount;
    this.stagedCtlCount = 0;
    for (let i = 0; i < n; i++) {
      const j = this.stagedCtl[i];
      const off = b.offs[j];
      this.handleControl(b.slab.subarray(off, off + b.lens[j]), b.addrs.subarray(j * ADDR_LEN, (j + 1) * ADDR_LEN));
    }
  }

  private usableRecv(kp: Keypair, now: number): boolean {
    const p = kp.peer;
    if (now - kp.created >= this.timers.rejectAfterTimeMs) return false;
    if (kp === p.previous && now > p.previousUntil) return false;
    return kp === p.current || kp === p.previous || kp === p.next;
  }

  private onAuthenticated(kp: Keypair, now: number): void {
    const p = kp.peer;
    if (kp === p.next) {
      // key confirmation: the initiator used the new keypair, so we may send on it too
      this.rotateIn(p, kp, now);
      p.next = null;
      if (p.queue.length > 0) this.stagedFlush.push(p); // sent after the batch (runStaged)
    }
    if (kp === p.current && kp.isInitiator && !p.hs && now - kp.created >= this.timers.rejectAfterTimeMs - RECV_REKEY_SLACK_MS) {
      this.beginHandshake(p);
    }
  }

  private onUnknownIndex(addrs: Buffer, off: number, now: number): void {
    const p = this.peersByAddr.get(peerKeyOf(addrs, off));
    if (!p || p.hs || now - p.lastUnknownIndexHs < this.timers.unknownIndexHandshakeMs) return;
    // The peer uses a session we do not have (we restarted, or it expired here): re-handshake.
    p.lastUnknownIndexHs = now;
    this.beginHandshake(p);
  }

  // ---- handshake state machine -----------------------------------------------------------------

  /** Handles one handshake or cookie message from `from` (18-byte record). Never throws. */
  handleControl(msg: Uint8Array, from: Uint8Array): void {
    try {
      switch (msg[0]) {
        case MSG_INITIATION: this.onInitiation(msg, from); break;
        case MSG_RESPONSE: this.onResponse(msg, from); break;
        case MSG_COOKIE: this.onCookie(msg); break;
        default: this.counters.hsInvalid++;
      }
    } catch (e) {
      this.counters.hsInvalid++;
      this.log.debug({ err: (e as Error).message }, 'handshake message rejected');
    }
  }

  /** Starts a handshake with `peer` unless one is in progress (idempotent). */
  beginHandshake(peer: SessionPeer): void {
    if (peer.hs || !peer.record || !this.clock) return;
    peer.hsStartedAt = this.clock.now();
    peer.hsAttempt = 0;
    this.sendInitiation(peer);
  }

  private sendInitiation(peer: SessionPeer): void {
    const clock = this.clock!;
    this.clearPending(peer);
    const idx = this.newIndex();
    const cookie = peer.cookie && clock.now() - peer.cookieAt < 120_000 - 10_000 ? peer.cookie : null;
    const r = createInitiation(this.local, peer.publicKey, idx, this.nextTimestamp(), this.random(32), cookie);
    if (!r) {
      this.counters.hsInvalid++;
      return;
    }
    peer.hs = r.state;
    this.pending.set(idx, peer);
    this.counters.hsInitiationSent++;
    this.sendControl(r.msg, peer.record!);
    const base = Math.min(this.timers.retryInitialMs * 2 ** peer.hsAttempt, this.timers.retryMaxMs);
    const delay = base + this.jitter() * this.timers.retryJitterMs;
    const st = r.state;
    peer.hsTimer = clock.setTimer(delay, () => this.onRetry(peer, st));
  }

  private onRetry(peer: SessionPeer, st: InitiatorState): void {
    if (peer.hs !== st) return;
    const now = this.clock!.now();
    if (now - peer.hsStartedAt >= this.timers.rekeyAttemptTimeMs) {
      this.counters.handshakeTimeouts++;
      this.clearPending(peer);
      this.dropQueue(peer, Infinity);
      return;
    }
    peer.hsAttempt++;
    this.sendInitiation(peer);
  }

  private clearPending(peer: SessionPeer): void {
    if (peer.hsTimer) peer.hsTimer.cancel();
    peer.hsTimer = null;
    if (peer.hs) {
      this.pending.delete(peer.hs.localIndex);
      peer.hs.ephPriv.fill(0);
    }
    peer.hs = null;
  }

  /**
   * The cheap gate before any DH (mac1 checked by the caller): load, cookies, rate limit.
   * Initiations (`initiation` true) need a valid mac2 under load and get a cookie reply otherwise.
   * Responses are only considered when they name one of our pending initiations (a random 32-bit
   * index an off-path sender cannot know), so they skip the load rule and only take a token.
   */
  private admit(msg: Uint8Array, from: Uint8Array, initiation: boolean): boolean {
    const now = this.clock!.now();
    if (now - this.loadWindowStart >= 1000) {
      this.loadWindowStart = now;
      this.loadCount = 0;
    }
    this.loadCount++;
    const src = from.subarray(0, 16);
    const srcKey = Buffer.from(src).toString('latin1');
    const underLoad = initiation && (this.loadCount > this.timers.loadThreshold || !this.limiter!.peek(srcKey));
    if (underLoad) {
      if (!this.cookies!.checkMac2(msg, src)) {
        if (this.cookieLimiter!.take(srcKey)) {
          this.counters.hsCookieSent++;
          this.sendControl(this.cookies!.createReply(msg, src), Buffer.from(from));
        } else {
          this.counters.hsRateLimited++;
        }
        return false;
      }
    }
    if (!this.limiter!.take(srcKey)) {
      this.counters.hsRateLimited++;
      return false;
    }
    return true;
  }

  private onInitiation(msg: Uint8Array, from: Uint8Array): void {
    if (!checkMac1(msg, this.myMac1Key)) {
      this.counters.hsBadMac++;
      return;
    }
    if (!this.admit(msg, from, true)) return;
    this.counters.hsDh++;
    const init = consumeInitiation(this.local, msg);
    if (!init) {
      this.counters.hsInvalid++;
      return;
    }
    const peer = this.peersByKey.get(encodeKey(init.peerStatic));
    if (!peer) {
      this.counters.hsUnknownPeer++;
      return;
    }
    if (peer.lastTimestamp && compareBytes(init.timestamp, peer.lastTimestamp) <= 0) {
      this.counters.hsReplayedInitiation++;
      return;
    }
    peer.lastTimestamp = init.timestamp;
    this.counters.hsInitiationRecv++;
    if (peer.hs) {
      // Simultaneous initiation: the host with the lower static public key keeps its own
      // initiation (and ignores the peer's); the other abandons its own and responds. Exactly
      // one handshake completes.
      if (compareBytes(this.local.publicKey, peer.publicKey) < 0) {
        this.counters.hsTieBreakIgnored++;
        return;
      }
      this.clearPending(peer);
    }
    if (!peer.record) {
      // known key, unknown endpoint (no gossip record yet): answer the source's VXLAN address
      peer.record = Buffer.from(from);
      peer.addrKey = peerKeyOf(peer.record, 0);
      this.peersByAddr.set(peer.addrKey, peer);
    }
    const idx = this.newIndex();
    const r = createResponse(init, idx, this.random(32), this.psks[0], null);
    if (!r) {
      this.counters.hsInvalid++;
      return;
    }
    const kp = this.newKeypair(peer, r.keys, idx, init.senderIndex, false);
    if (!kp) return;
    if (peer.next) this.destroyKeypair(peer.next);
    peer.next = kp;
    peer.lastHandshakeAt = this.clock!.now();
    this.counters.hsResponseSent++;
    this.sendControl(r.msg, peer.record);
  }

  private onResponse(msg: Uint8Array, from: Uint8Array): void {
    if (!checkMac1(msg, this.myMac1Key)) {
      this.counters.hsBadMac++;
      return;
    }
    const peer = this.pending.get(readU32LE(msg, 8));
    if (!peer || !peer.hs) {
      this.counters.hsUnknownIndex++;
      return;
    }
    if (!this.admit(msg, from, false)) return;
    this.counters.hsDh++;
    const st = peer.hs;
    const r = consumeResponse(this.local, st, msg, this.psks);
    if (!r) {
      this.counters.hsInvalid++;
      return;
    }
    this.counters.hsResponseRecv++;
    if (peer.hsTimer) peer.hsTimer.cancel();
    peer.hsTimer = null;
    this.pending.delete(st.localIndex);
    st.ephPriv.fill(0);
    peer.hs = null;
    const kp = this.newKeypair(peer, r.keys, st.localIndex, r.senderIndex, true);
    if (!kp) return;
    const now = this.clock!.now();
    if (peer.next) {
      this.destroyKeypair(peer.next);
      peer.next = null;
    }
    this.rotateIn(peer, kp, now);
    peer.lastHandshakeAt = now;
    if (peer.queue.length === 0) this.sendKeepalive(peer, kp);
    else this.flushQueue(peer);
  }

  private onCookie(msg: Uint8Array): void {
    const peer = this.pending.get(readU32LE(msg, 4));
    if (!peer || !peer.hs) {
      this.counters.hsUnknownIndex++;
      return;
    }
    const cookie = consumeCookieReply(msg, peer.publicKey, peer.hs.mac1);
    if (!cookie) {
      this.counters.hsInvalid++;
      return;
    }
    this.counters.hsCookieRecv++;
    peer.cookie = cookie;
    peer.cookieAt = this.clock!.now();
  }

  /** kp becomes current; the old current becomes previous (receive-only, for `previousGraceMs`). */
  private rotateIn(peer: SessionPeer, kp: Keypair, now: number): void {
    if (peer.previous) this.destroyKeypair(peer.previous);
    peer.previous = peer.current;
    peer.previousUntil = now + this.timers.previousGraceMs;
    peer.current = kp;
    this.counters.sessionsEstablished++;
  }

  private newKeypair(peer: SessionPeer, keys: SessionKeys, localIndex: number, remoteIndex: number, isInitiator: boolean): Keypair | null {
    if (this.freeSlots.length < 2) {
      // evict: previous keypairs first
      for (const p of this.peersByKey.values()) {
        if (p.previous) { this.destroyKeypair(p.previous); p.previous = null; }
        if (this.freeSlots.length >= 2) break;
      }
      if (this.freeSlots.length < 2) {
        this.log.warn({ peer: peer.keyB64 }, 'no AEAD slots left for a new session');
        return null;
      }
    }
    const sendSlot = this.freeSlots.pop()!;
    const recvSlot = this.freeSlots.pop()!;
    this.table.setKey(sendSlot, keys.send);
    this.table.setKey(recvSlot, keys.recv);
    const kp: Keypair = {
      peer, localIndex, remoteIndex, sendSlot, recvSlot, created: this.clock!.now(), isInitiator, sendCounter: 0,
      replay: new ReplayWindow(this.timers.rejectAfterMessages),
      sendKeyId: Buffer.from(sodium.crypto_generichash(8, keys.send, null)).toString('hex'),
    };
    keys.send.fill(0);
    keys.recv.fill(0);
    this.keypairs.set(localIndex, kp);
    return kp;
  }

  private destroyKeypair(kp: Keypair): void {
    if (this.keypairs.get(kp.localIndex) === kp) this.keypairs.delete(kp.localIndex);
    this.table.clearKey(kp.sendSlot);
    this.table.clearKey(kp.recvSlot);
    this.freeSlots.push(kp.sendSlot, kp.recvSlot);
  }

  private newIndex(): number {
    for (;;) {
      const r = this.random(4);
      const idx = (r[0] | (r[1] << 8) | (r[2] << 16) | (r[3] << 24)) >>> 0;
      if (!this.keypairs.has(idx) && !this.pending.has(idx)) return idx;
    }
  }

  /** Strictly increasing 12-byte timestamps (µs of the wall clock). */
  private nextTimestamp(): Uint8Array {
    const us = Math.max(this.lastTs + 1, Math.floor(this.wallClock() * 1000));
    this.lastTs = us;
    return encodeTimestamp(us);
  }

  // ---- sending our own datagrams -----------------------------------------------------------------

  private sendControl(pkt: Uint8Array, to: Uint8Array): void {
    if (this.sendHook) {
      this.sendHook(pkt, Buffer.from(to));
      return;
    }
    if (!this.host) return;
    const b = this.ctl;
    b.slab.set(pkt, 0);
    b.offs[0] = 0;
    b.lens[0] = pkt.length;
    b.addrs.set(to.subarray(0, ADDR_LEN), 0);
    b.srcIdx[0] = 0;
    b.count = 1;
    this.host.sendBatch(b);
  }

  private sendKeepalive(peer: SessionPeer, kp: Keypair): void {
    const buf = new Uint8Array(DATA_OVERHEAD);
    if (!this.sealOne(buf, 0, kp)) return;
    this.counters.txKeepalives++;
    this.sendControl(buf, peer.record!);
  }

  /** Seals one message at `buf[DATA_HEADER_LEN..]` (its own descriptor: safe inside a batch call). */
  private sealOne(buf: Uint8Array, len: number, kp: Keypair): boolean {
    this.writeHeader(buf, 0, kp);
    this.oneOffs[0] = 0;
    this.oneLens[0] = len;
    this.oneSlots[0] = kp.sendSlot;
    return this.table.sealBatch(buf, this.oneOffs, this.oneLens, this.oneSlots, 1, this.oneStatus) === 1;
  }

  private flushQueue(peer: SessionPeer): void {
    const now = this.clock!.now();
    const q = peer.queue;
    peer.queue = [];
    for (const item of q) {
      const kp = this.usableSend(peer, now);
      if (!kp || now - item.at > this.timers.queueTimeoutMs || !this.sealOne(item.buf, item.len, kp)) {
        this.counters.txNoSession++;
        this.host?.countTxDrop(item.vni, 'no_session', 1);
        continue;
      }
      this.counters.txQueueSent++;
      this.counters.txSealed++;
      this.sendControl(item.buf, peer.record!);
      this.host?.countTx(item.vni, 1, item.buf.length);
    }
  }

  private dropQueue(peer: SessionPeer, olderThan: number): void {
    const now = this.clock ? this.clock.now() : 0;
    const keep: Queued[] = [];
    for (const item of peer.queue) {
      if (olderThan === Infinity || now - item.at > olderThan) {
        this.counters.txNoSession++;
        this.host?.countTxDrop(item.vni, 'no_session', 1);
      } else keep.push(item);
    }
    peer.queue = keep;
  }

  private dropPeerState(p: SessionPeer): void {
    this.clearPending(p);
    for (const kp of [p.current, p.previous, p.next]) if (kp) this.destroyKeypair(kp);
    p.current = p.previous = p.next = null;
    this.dropQueue(p, Infinity);
  }

  // ---- housekeeping ------------------------------------------------------------------------------

  /** Expires keypairs and queued packets; sweeps rate-limiter state. Runs every `tickMs`. */
  tick(): void {
    const now = this.clock!.now();
    const reject = this.timers.rejectAfterTimeMs;
    for (const p of this.peersByKey.values()) {
      if (p.current && now - p.current.created >= reject) { this.destroyKeypair(p.current); p.current = null; }
      if (p.next && now - p.next.created >= reject) { this.destroyKeypair(p.next); p.next = null; }
      if (p.previous && (now > p.previousUntil || now - p.previous.created >= reject)) {
        this.destroyKeypair(p.previous);
        p.previous = null;
      }
      if (p.queue.length) {
        this.dropQueue(p, this.timers.queueTimeoutMs);
        if (p.queue.length && !p.hs) this.beginHandshake(p);
      }
    }
    this.limiter?.sweep();
    this.cookieLimiter?.sweep();
  }

  /** Test/status: the keypairs of a peer. */
  keypairsOf(p: SessionPeer): { current: Keypair | null; previous: Keypair | null; next: Keypair | null } {
    return { current: p.current, previous: p.previous, next: p.next };
  }

  /** Number of keypairs alive (all peers). */
  get keypairCount(): number {
    return this.keypairs.size;
  }
}
