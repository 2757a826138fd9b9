/**
 * The data path's `PacketCipher` (SessionManager): seals and opens batches with the peers'
 * keypairs, and the control-plane entry points for peers (setPeer/removePeer, status). The parts
 * it drives have their own files: handshake-fsm.ts (when to handshake, what a handshake message
 * does), keypairs.ts (keys in the AEAD table, rotation, expiry), queue.ts (packets waiting for a
 * session), timers.ts (protocol timers and the decisions made from them), peer.ts (one peer).
 *
 * Outbound pipeline (sealBatch, one call per data-path batch):
 *   1. destination record → peer (by address; ports are ECMP source ports, see dataplane/addr.ts)
 *   2. peer's current keypair, usable (age < 180 s, counter < limit)? else queue a copy (bounded,
 *      `queueTimeoutMs`) and start a handshake → CIPHER_QUEUED, or CIPHER_NO_SESSION when full
 *   3. 16-byte data header written in front of the VXLAN header (type 4, receiver index, counter)
 *   4. ONE native AEAD call seals every descriptor in place (tag after the packet)
 *   5. rekey check (initiator, age ≥ 120 s or counter ≥ 2^60) → handshake in the background
 * Inbound pipeline (openBatch):
 *   1. handshake/cookie messages → staged for step 5 (CIPHER_CONSUMED); initiations and responses
 *      have their mac1 checked for the whole batch in ONE native call (mac1-gate.ts): a bad mac1
 *      is counted (`hsBadMac`) and goes no further — no per-message JS, no DH
 *   2. data: receiver index → keypair; expired / replayed (window check only) → CIPHER_FAILED
 *   3. ONE native AEAD call opens the rest in place
 *   4. replay window updated only for packets whose tag verified; a responder's new keypair is
 *      confirmed (made current) by its first authenticated packet (its queue flush is staged);
 *      empty body = keepalive (CIPHER_CONSUMED); else CIPHER_OK with the VXLAN packet at +16 and
 *      `senders[i]` = the authenticated peer's id (`senderEndpoint(id)` → where its sessions are bound).
 *   5. staged control work, after every descriptor has its result: queue flushes of confirmed
 *      sessions, re-handshakes for unknown indices (step 2), then the handshake messages in
 *      arrival order (replies, queue flushes, keepalives). Nothing sent here touches the
 *      batch's descriptors or scratch.
 *
 * Timers run on the injected Clock (host.clock, or `opts.clock`): handshake retries, keypair
 * expiry, queue timeout (timers.ts). Wire format, key schedule and timers: docs/wire-format.md.
 */

import sodium from 'libsodium-wrappers';

import type { Clock, TimerHandle } from '../clock';
import type { Endpoint } from '../config/types';
import { ADDR_LEN, endpointToRecord, peerKeyOf, recordToEndpoint, type PeerKey } from '../dataplane/addr';
import {
  CIPHER_CONSUMED, CIPHER_FAILED, CIPHER_NO_SESSION, CIPHER_OK, CIPHER_QUEUED,
  type CipherBatch, type CipherHost, type PacketCipher,
} from '../dataplane/cipher-seam';
import { TX_DROP_REASONS, txDropForErrno, txDropIndex } from '../dataplane/counters';
import type { TxBatch } from '../dataplane/seams';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { type AeadAlg, type AeadTable, createAeadTable } from './aead';
import { CipherCounters } from './counters';
import { HandshakeFsm } from './handshake-fsm';
import { Mac1Gate } from './mac1-gate';
import { type Keypair, KeypairTable } from './keypairs';
import { type HostKey, assertReady, decodeKey, encodeKey } from './keys';
import { DATA_HEADER_LEN, DATA_OVERHEAD, MSG_COOKIE, MSG_DATA, MSG_INITIATION, mac1Key, readCounter, readU32LE, writeCounter, writeU32LE } from './noise';
import { SessionPeer } from './peer';
import { DEFAULT_TIMERS, type SessionTimers, canSend, expired, rekeyOnReceive, rekeyOnSend } from './timers';

export { CipherCounters } from './counters';
export type { Keypair } from './keypairs';
export { SessionPeer } from './peer';
export { DEFAULT_TIMERS, type SessionTimers } from './timers';

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

/**
 * Outcome of a gossip record for a peer (`gossipPeer`). Refusals keep the binding in place:
 *   own_key                  the record carries this host's own public key (see duplicateHostKeys)
 *   pinned_key               the key is pinned by static config to another endpoint
 *   pinned_address           the endpoint is pinned by static config to another key
 *   key_of_other_member      another gossip member announced this key first
 *   address_of_other_member  another gossip member's key is bound to this endpoint
 */
export type GossipPeerResult = 'ok' | 'own_key' | 'pinned_key' | 'pinned_address' | 'key_of_other_member' | 'address_of_other_member';

/** How another host was seen presenting this host's own static public key. */
export type DuplicateKeyVia = 'gossip' | 'static' | 'handshake';

/** Another host using this host's key, as status shows it. */
export interface DuplicateHostKey {
  /** The other host: its gossip member name when known, else its underlay address. */
  host: string;
  /** Its underlay address, when known. */
  address: string | null;
  via: DuplicateKeyVia[];
  /** Records, pins and handshakes that showed it. */
  detections: number;
  firstSeenAgoMs: number;
  lastSeenAgoMs: number;
}

interface DuplicateEntry {
  member: string | null;
  address: string | null;
  readonly via: Set<DuplicateKeyVia>;
  detections: number;
  readonly first: number;
  last: number;
  loggedAt: number;
}

/** A duplicate seen only through handshakes is forgotten after this long without one. */
const DUPLICATE_FORGET_MS = 10 * 60_000;
/** The error record about one duplicate is repeated at most this often. */
const DUPLICATE_LOG_MS = 10 * 60_000;

const MAX_PACKET = 65535;
/** Most segments native/aead.c cuts from one super-frame (VXM_TSO_MAX_SEGS). */
const TSO_MAX_SEGS = 256;

const copyPsks = (psks: Uint8Array[] | undefined): Uint8Array[] =>
  psks && psks.length ? psks.map((p) => new Uint8Array(p)) : [new Uint8Array(32)];

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
  private readonly log: Logger;
  private readonly table: AeadTable;
  private readonly keypairs: KeypairTable;
  private readonly fsm: HandshakeFsm;
  private clock: Clock | null;
  private host: CipherHost | null = null;
  private sendHook: ((pkt: Uint8Array, to: Buffer) => void) | null = null;
  private tickTimer: TimerHandle | null = null;

  private readonly peersByKey = new Map<string, SessionPeer>();
  private readonly peersByAddr = new Map<PeerKey, SessionPeer>();
  private readonly peersById = new Map<number, SessionPeer>();
  /** Other hosts seen with our own static key, by address (or `member:NAME` when no address is known). */
  private readonly duplicates = new Map<string, DuplicateEntry>();
  private lastPeerId = 0;

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
  // initiations/responses of the batch for the mac1 gate (offsets, lengths, verdicts)
  private macOffs = new Uint32Array(0);
  private macLens = new Uint32Array(0);
  private macOk = new Uint8Array(0);
  private macCount = 0;
  private readonly mac1: Mac1Gate;
  private readonly stagedFlush: SessionPeer[] = [];
  private readonly stagedBegin: SessionPeer[] = [];
  // sealOne's own descriptor (queued packets, keepalives): never the batch scratch above
  private readonly oneOffs = new Uint32Array(1);
  private readonly oneLens = new Uint32Array(1);
  private readonly oneSlots = new Uint32Array(1);
  private readonly oneStatus = new Uint8Array(1);
  private readonly tsoPrefix = new Uint8Array(DATA_HEADER_LEN + 8);

  // control sends: a small slab reused per send
  private readonly ctl: TxBatch = {
    slab: Buffer.alloc(MAX_PACKET + 64), offs: new Uint32Array(1), lens: new Uint32Array(1),
    addrs: Buffer.alloc(ADDR_LEN), srcIdx: new Uint8Array(1), status: new Int32Array(1), count: 0,
  };

  constructor(opts: SessionManagerOptions) {
    assertReady();
    this.local = opts.hostKey;
    this.log = opts.logger ?? nullLogger;
    this.timers = { ...DEFAULT_TIMERS, ...(opts.timers ?? {}) };
    const maxKeypairs = opts.maxKeypairs ?? 16384; // EVP contexts are allocated per key, on demand
    this.table = createAeadTable(opts.alg ?? 'aes-256-gcm', maxKeypairs * 2, opts.backend ?? 'auto');
    this.keypairs = new KeypairTable(this.table, maxKeypairs, this.timers, this.counters, this.log, () => this.peersByKey.values());
    this.fsm = new HandshakeFsm({
      peerByKey: (k) => this.peersByKey.get(k),
      bindSource: (peer, from) => this.bindSource(peer, from),
      sendControl: (pkt, to) => this.sendControl(pkt, to),
      established: (peer, kp) => {
        if (peer.queue.length === 0) this.sendKeepalive(peer, kp);
        else this.flushQueue(peer);
      },
      gaveUp: (peer) => this.dropQueue(peer, Infinity),
      duplicateKey: (from) => this.noteDuplicateKey('handshake', null, recordToEndpoint(Buffer.from(from), 0).address),
    }, {
      local: this.local, psks: copyPsks(opts.psks), timers: this.timers, counters: this.counters, keypairs: this.keypairs,
      wallClock: opts.wallClock ?? Date.now, random: opts.random ?? ((n) => sodium.randombytes_buf(n)),
      jitter: opts.jitter ?? Math.random, log: this.log,
    });
    this.mac1 = new Mac1Gate(mac1Key(this.local.publicKey), opts.backend === 'node' ? 'js' : 'auto');
    this.clock = opts.clock ?? null;
    if (this.clock) this.startClock(this.clock);
  }

  /** Where the mac1 of received handshake messages is checked: one native call per batch, or JS. */
  get mac1Backend(): 'native' | 'js' {
    return this.mac1.backend;
  }

  /** Replaces the PSKs (cluster keyring rotation); sessions in place keep their keys. */
  setPsks(psks: Uint8Array[]): void {
    this.fsm.setPsks(copyPsks(psks));
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
    this.fsm.start(clock);
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
      p = new SessionPeer(pub, this.newPeerId());
      this.peersByKey.set(k, p);
      this.peersById.set(p.id, p);
    }
    if (endpoint) this.bindRecord(p, endpointToRecord(endpoint));
    return p;
  }

  /**
   * Pins a peer from static config (`peers: [{address, publicKey}]`): this key lives at this
   * endpoint, whatever gossip says. A peer that held the endpoint under another key loses it (and
   * its sessions). Returns the peer; null for this host's own key (a cloned key: reported, see
   * duplicateHostKeys).
   */
  pinPeer(publicKey: string | Uint8Array, endpoint: Endpoint): SessionPeer | null {
    const pub = typeof publicKey === 'string' ? decodeKey(publicKey, 'peer public key') : publicKey;
    if (encodeKey(pub) === this.publicKey) {
      this.noteDuplicateKey('static', null, endpoint.address);
      return null;
    }
    const rec = endpointToRecord(endpoint);
    const holder = this.peersByAddr.get(peerKeyOf(rec, 0));
    const p = this.setPeer(pub, null);
    if (holder !== undefined && holder !== p) this.unbind(holder);
    this.bindRecord(p, rec);
    p.pinned = true;
    return p;
  }

  /** Ends a static pin: the peer stays while a gossip member still announces it, else it is forgotten. */
  unpinPeer(publicKey: string): void {
    if (publicKey.trim() === this.publicKey) {
      for (const [k, d] of this.duplicates) if (d.via.delete('static') && d.via.size === 0) this.duplicates.delete(k);
      return;
    }
    const p = this.peersByKey.get(publicKey.trim());
    if (!p) return;
    p.pinned = false;
    if (p.member === null) this.removePeer(p.keyB64);
  }

  /**
   * A gossip record of `member` announces `publicKey` at `endpoint`. A record describes its own
   * member only: it cannot move a pinned key, bind a key to a pinned endpoint, or take a key or an
   * endpoint another member announced (refused, nothing changes); a member's new key at its own
   * endpoint replaces its old one.
   */
  gossipPeer(member: string, publicKey: string | Uint8Array, endpoint: Endpoint | null): GossipPeerResult {
    const pub = typeof publicKey === 'string' ? decodeKey(publicKey, 'peer public key') : publicKey;
    const k = encodeKey(pub);
    if (k === this.publicKey) {
      this.noteDuplicateKey('gossip', member, endpoint ? endpoint.address : null);
      return 'own_key';
    }
    const p = this.peersByKey.get(k);
    if (p !== undefined && p.member !== null && p.member !== member) return 'key_of_other_member';
    const rec = endpoint ? endpointToRecord(endpoint) : null;
    const ak = rec ? peerKeyOf(rec, 0) : null;
    if (p !== undefined && p.pinned) {
      if (ak !== null && ak !== p.addrKey) return 'pinned_key';
      p.member = member;
      return 'ok';
    }
    const holder = ak !== null ? this.peersByAddr.get(ak) : undefined;
    if (holder !== undefined && holder !== p) {
      if (holder.pinned) return 'pinned_address';
      if (holder.member !== null && holder.member !== member) return 'address_of_other_member';
      this.removePeer(holder.keyB64); // this member's previous key (or an unowned binding) at its endpoint
    }
    const peer = p ?? this.setPeer(pub, null);
    peer.member = member;
    if (rec) this.bindRecord(peer, rec);
    return 'ok';
  }

  /** A gossip member is gone (dead, left, reaped) or stopped announcing `publicKey`: forgotten unless pinned or another member's. */
  removeGossipPeer(member: string, publicKey: string): void {
    if (publicKey.trim() === this.publicKey) {
      for (const [k, d] of this.duplicates) {
        if (d.member !== member) continue;
        d.member = null;
        if (d.via.delete('gossip') && d.via.size === 0) this.duplicates.delete(k);
      }
      return;
    }
    const p = this.peersByKey.get(publicKey.trim());
    if (!p || p.member !== member) return;
    p.member = null;
    if (!p.pinned) this.removePeer(p.keyB64);
  }

  /**
   * Another host presents this host's own static public key (a cloned machine image, or two agents
   * sharing `node.keyFile`): nothing can pass between them, so say so loudly. Counted
   * (`counters.duplicateHostKey`), listed in status (`duplicateHostKeys`), logged at error level on
   * first sight and then at most every 10 minutes per host.
   */
  private noteDuplicateKey(via: DuplicateKeyVia, member: string | null, address: string | null): void {
    const now = this.clock ? this.clock.now() : 0;
    this.counters.duplicateHostKey++;
    let key = address ?? `member:${member}`;
    let d = this.duplicates.get(key);
    if (d === undefined && address !== null && member !== null) {
      // seen before by name only: now we know its address
      const byName = this.duplicates.get(`member:${member}`);
      if (byName !== undefined) {
        this.duplicates.delete(`member:${member}`);
        this.duplicates.set(key, byName);
        d = byName;
      }
    }
    if (d === undefined && address === null && member !== null) {
      for (const [k, e] of this.duplicates) if (e.member === member) { d = e; key = k; break; }
    }
    const fresh = d === undefined;
    if (d === undefined) {
      d = { member, address, via: new Set(), detections: 0, first: now, last: now, loggedAt: -Infinity };
      this.duplicates.set(key, d);
    }
    if (member !== null) d.member = member;
    if (address !== null) d.address = address;
    d.via.add(via);
    d.detections++;
    d.last = now;
    if (fresh || now - d.loggedAt >= DUPLICATE_LOG_MS) {
      d.loggedAt = now;
      const host = d.member !== null ? (d.address !== null ? `${d.member} (${d.address})` : d.member) : d.address!;
      this.log.error({ host, member: d.member, address: d.address, via, publicKey: this.publicKey },
        `host ${host} uses the same host key as this host (cloned image or shared node.keyFile?)`);
    }
  }

  /** Other hosts seen presenting this host's own static public key (status; metrics count them). */
  duplicateHostKeys(): DuplicateHostKey[] {
    const now = this.clock ? this.clock.now() : 0;
    return [...this.duplicates.values()].map((d) => ({
      host: d.member ?? d.address ?? '?', address: d.address, via: [...d.via].sort(), detections: d.detections,
      firstSeenAgoMs: Math.round(now - d.first), lastSeenAgoMs: Math.round(now - d.last),
    }));
  }

  /** `p` loses its endpoint (another key was pinned there) and with it its sessions. */
  private unbind(p: SessionPeer): void {
    if (p.addrKey !== null && this.peersByAddr.get(p.addrKey) === p) this.peersByAddr.delete(p.addrKey);
    p.record = null;
    p.addrKey = null;
    this.dropPeerState(p);
  }

  /** Ids count up from 1 and skip 0 and ids in use on wrap (2^32 − 1 peers later). */
  private newPeerId(): number {
    do this.lastPeerId = this.lastPeerId >= 0xffffffff ? 1 : this.lastPeerId + 1;
    while (this.peersById.has(this.lastPeerId));
    return this.lastPeerId;
  }

  /** Binds `p`'s sessions to the underlay record `rec` (its address key; the old one released). */
  private bindRecord(p: SessionPeer, rec: Buffer): void {
    const ak = peerKeyOf(rec, 0);
    if (p.addrKey !== null && p.addrKey !== ak && this.peersByAddr.get(p.addrKey) === p) this.peersByAddr.delete(p.addrKey);
    p.record = rec;
    p.addrKey = ak;
    this.peersByAddr.set(ak, p);
  }

  /**
   * A known key initiated from an endpoint we had none for (no gossip record yet): answer its
   * source. An endpoint bound to another key keeps that binding (the reply still goes out).
   */
  private bindSource(p: SessionPeer, from: Uint8Array): void {
    const rec = Buffer.from(from);
    const holder = this.peersByAddr.get(peerKeyOf(rec, 0));
    if (holder === undefined || holder === p) this.bindRecord(p, rec);
    else p.record = rec;
  }

  /** Forgets a peer and its sessions. */
  removePeer(publicKey: string | Uint8Array): void {
    const k = typeof publicKey === 'string' ? publicKey.trim() : encodeKey(publicKey);
    const p = this.peersByKey.get(k);
    if (!p) return;
    this.dropPeerState(p);
    this.peersByKey.delete(k);
    this.peersById.delete(p.id);
    if (p.addrKey !== null && this.peersByAddr.get(p.addrKey) === p) this.peersByAddr.delete(p.addrKey);
  }

  peer(publicKey: string): SessionPeer | undefined {
    return this.peersByKey.get(publicKey);
  }

  peerByEndpoint(ep: Endpoint): SessionPeer | undefined {
    return this.peersByAddr.get(peerKeyOf(endpointToRecord(ep), 0));
  }

  /** PacketCipher: the underlay endpoint (VXLAN port) the sessions of sending host `id` are bound to; null when unknown. */
  senderEndpoint(id: number): Endpoint | null {
    const p = this.peersById.get(id);
    return p !== undefined && p.record !== null ? recordToEndpoint(p.record, 0) : null;
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
      duplicateHostKeys: this.duplicateHostKeys(),
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
    this.macOffs = new Uint32Array(c);
    this.macLens = new Uint32Array(c);
    this.macOk = new Uint8Array(c);
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
   * The fast path of an encrypted network (a vnet TAP: `underlay.offload` with the native AEAD;
   * the data path calls it for every TCP super-frame read from the TAP): seals a TSO super-frame
   * for the peer at `addrs[addrOff]` as MSS-sized data messages in `out` (see AeadTable.sealTso
   * for the layout: UDP GSO-ready, stride in
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
      this.fsm.begin(peer);
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
    return kp !== null && canSend(this.timers, kp, now) ? kp : null;
  }

  private keepFreshSending(peer: SessionPeer, kp: Keypair, now: number): void {
    if (!peer.hs && rekeyOnSend(this.timers, kp, now)) this.fsm.begin(peer);
  }

  private enqueue(peer: SessionPeer, slab: Uint8Array, off: number, len: number, vni: number, now: number): number {
    this.fsm.begin(peer);
    if (!peer.queue.push(slab, off, len, vni, now, this.timers.queueMax)) {
      this.counters.txNoSession++;
      return CIPHER_NO_SESSION;
    }
    this.counters.txQueued++;
    return CIPHER_QUEUED;
  }

  // ---- PacketCipher: open ----------------------------------------------------------------------

  openBatch(b: CipherBatch): void {
    const now = this.clock!.now();
    this.grow(b.count);
    let m = 0;
    this.stagedCtlCount = 0;
    this.macCount = 0;
    for (let j = 0; j < b.count; j++) {
      const off = b.offs[j];
      const len = b.lens[j];
      const t = b.slab[off];
      if (t !== MSG_DATA) {
        // handshake/cookie: handled after the batch (it may seal and send: queue flush, keepalive)
        b.status[j] = CIPHER_CONSUMED;
        this.stagedCtl[this.stagedCtlCount++] = j;
        if (t !== MSG_COOKIE) {
          this.macOffs[this.macCount] = off;
          this.macLens[this.macCount] = len;
          this.macCount++;
        }
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
    if (this.macCount > 0) this.mac1.check(b.slab, this.macOffs, this.macLens, this.macCount, this.macOk);
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
      b.senders[j] = kp.peer.id; // the host whose key authenticated it, whatever the outer source
      this.counters.rxOpened++;
    }
  }

  /**
   * Control work of the batch just opened: confirmed sessions' queues, handshakes with peers that
   * used an index we do not know, then the handshake messages in arrival order.
   */
  private runStaged(b: CipherBatch): void {
    const flush = this.stagedFlush;
    for (let i = 0; i < flush.length; i++) this.flushQueue(flush[i]);
    flush.length = 0;
    const begin = this.stagedBegin;
    for (let i = 0; i < begin.length; i++) this.fsm.begin(begin[i]);
    begin.length = 0;
    const n = this.stagedCtlCount;
    this.stagedCtlCount = 0;
    let k = 0; // the next verdict of the mac1 gate (initiations and responses, in batch order)
    for (let i = 0; i < n; i++) {
      const j = this.stagedCtl[i];
      const off = b.offs[j];
      const isCookie = b.slab[off] === MSG_COOKIE;
      if (!isCookie && this.macOk[k++] !== 1) {
        this.counters.hsBadMac++; // forged or not for us: dropped here, before any per-message work
        continue;
      }
      this.fsm.handle(b.slab.subarray(off, off + b.lens[j]), b.addrs.subarray(j * ADDR_LEN, (j + 1) * ADDR_LEN), !isCookie);
    }
    this.macCount = 0;
  }

  private usableRecv(kp: Keypair, now: number): boolean {
    const p = kp.peer;
    if (expired(this.timers, kp, now)) return false;
    if (kp === p.previous && now > p.previousUntil) return false;
    return kp === p.current || kp === p.previous || kp === p.next;
  }

  private onAuthenticated(kp: Keypair, now: number): void {
    const p = kp.peer;
    if (kp === p.next) {
      // key confirmation: the initiator used the new keypair, so we may send on it too
      this.keypairs.rotateIn(p, kp, now);
      p.next = null;
      if (p.queue.length > 0) this.stagedFlush.push(p); // sent after the batch (runStaged)
    }
    if (kp === p.current && !p.hs && rekeyOnReceive(this.timers, kp, now)) this.fsm.begin(p);
  }

  private onUnknownIndex(addrs: Buffer, off: number, now: number): void {
    const p = this.peersByAddr.get(peerKeyOf(addrs, off));
    if (!p || p.hs || now - p.lastUnknownIndexHs < this.timers.unknownIndexHandshakeMs) return;
    // The peer uses a session we do not have (we restarted, or it expired here): re-handshake,
    // after the batch (runStaged).
    p.lastUnknownIndexHs = now;
    this.stagedBegin.push(p);
  }

  // ---- handshakes (handshake-fsm.ts) -----------------------------------------------------------

  /** Handles one handshake or cookie message from `from` (18-byte record). Never throws. */
  handleControl(msg: Uint8Array, from: Uint8Array): void {
    this.fsm.handle(msg, from);
  }

  /** Starts a handshake with `peer` unless one is in progress (idempotent). */
  beginHandshake(peer: SessionPeer): void {
    this.fsm.begin(peer);
  }

  /** Abandons our pending initiation with `peer` (queued packets stay queued). */
  abandonHandshake(peer: SessionPeer): void {
    this.fsm.clear(peer);
  }

  // ---- sending our own datagrams -----------------------------------------------------------------

  /**
   * Sends one datagram of ours. Returns the index of the outbound drop reason when the transport
   * skipped it (an errno in its status) or did not take it (EAGAIN: `send_failed`), else −1.
   */
  private sendControl(pkt: Uint8Array, to: Uint8Array): number {
    if (this.sendHook) {
      this.sendHook(pkt, Buffer.from(to));
      return -1;
    }
    if (!this.host) return txDropIndex.send_failed;
    const b = this.ctl;
    b.slab.set(pkt, 0);
    b.offs[0] = 0;
    b.lens[0] = pkt.length;
    b.addrs.set(to.subarray(0, ADDR_LEN), 0);
    b.srcIdx[0] = 0;
    b.count = 1;
    b.status[0] = 0;
    if (this.host.sendBatch(b) < 1) return txDropIndex.send_failed;
    return b.status[0] !== 0 ? txDropForErrno(b.status[0]) : -1;
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
    for (const item of peer.queue.takeAll()) {
      const kp = this.usableSend(peer, now);
      if (!kp || now - item.at > this.timers.queueTimeoutMs || !this.sealOne(item.buf, item.len, kp)) {
        this.counters.txNoSession++;
        this.host?.countTxDrop(item.vni, 'no_session', 1);
        continue;
      }
      this.counters.txSealed++;
      const drop = this.sendControl(item.buf, peer.record!);
      if (drop >= 0) {
        // the transport skipped it: a counted drop with its cause, not a packet sent
        this.host?.countTxDrop(item.vni, TX_DROP_REASONS[drop], 1);
        continue;
      }
      this.counters.txQueueSent++;
      this.host?.countTx(item.vni, 1, item.buf.length);
    }
  }

  private readonly onQueueDrop = (vni: number): void => {
    this.counters.txNoSession++;
    this.host?.countTxDrop(vni, 'no_session', 1);
  };

  private dropQueue(peer: SessionPeer, olderThan: number): void {
    peer.queue.expire(this.clock ? this.clock.now() : 0, olderThan, this.onQueueDrop);
  }

  private dropPeerState(p: SessionPeer): void {
    this.fsm.clear(p);
    this.keypairs.forget(p);
    this.dropQueue(p, Infinity);
  }

  // ---- housekeeping ------------------------------------------------------------------------------

  /** Expires keypairs and queued packets; sweeps rate-limiter state. Runs every `tickMs`. */
  tick(): void {
    const now = this.clock!.now();
    for (const p of this.peersByKey.values()) {
      this.keypairs.expire(p, now);
      if (p.queue.length) {
        this.dropQueue(p, this.timers.queueTimeoutMs);
        if (p.queue.length && !p.hs) this.fsm.begin(p);
      }
    }
    this.fsm.sweep();
    for (const [k, d] of this.duplicates) {
      if (d.via.size === 1 && d.via.has('handshake') && now - d.last >= DUPLICATE_FORGET_MS) this.duplicates.delete(k);
    }
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
