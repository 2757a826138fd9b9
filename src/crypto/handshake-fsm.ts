/**
 * The handshake state machine: when this host initiates (and retries) a handshake with a peer,
 * and what it does with each handshake or cookie message it receives. The messages themselves
 * (Noise IKpsk2, mac1/mac2, cookie replies) are built and checked in handshake.ts.
 *
 * Initiator:  begin → initiation sent, retry timer (timers.retryDelayMs: 1, 2, 4, 5, 5… s plus
 *             jitter) → … → response consumed → new keypair made current (`established`: the
 *             session layer sends the queue or a keepalive); no response for `rekeyAttemptTimeMs`
 *             → given up (`gaveUp`: the queue is dropped).
 * Responder:  initiation (mac1 → load/cookie/rate gate → DH → not our own static key (else a
 *             cloned host key: reported, not answered) → known static key → newer timestamp)
 *             → response sent, new keypair kept as `next` until the initiator's first packet
 *             confirms it (session.ts, openBatch).
 * Simultaneous initiations: the host with the lower static public key keeps its own; the other
 * answers. Exactly one handshake completes.
 * No sockets and no timers of its own: sends go through the host, time through the injected Clock.
 */

import type { Clock } from '../clock';
import type { Logger } from '../log';
import {
  CookieChecker, type InitiatorState, RateLimiter, checkMac1, consumeCookieReply, consumeInitiation,
  consumeResponse, createInitiation, createResponse,
} from './handshake';
import type { CipherCounters } from './counters';
import type { Keypair, KeypairTable } from './keypairs';
import { type HostKey, encodeKey } from './keys';
import { MSG_COOKIE, MSG_INITIATION, MSG_RESPONSE, compareBytes, encodeTimestamp, equalBytes, mac1Key, readU32LE } from './noise';
import type { SessionPeer } from './peer';
import { COOKIE_USE_MS, type SessionTimers, handshakeGivenUp, retryDelayMs } from './timers';

/** What the state machine needs from the session layer. */
export interface HandshakeHost {
  /** The peer with this static key (base64), if known. */
  peerByKey(keyB64: string): SessionPeer | undefined;
  /** A known key answered from an endpoint we had none for: bind the peer to `from` (18-byte record). */
  bindSource(peer: SessionPeer, from: Uint8Array): void;
  /** Sends a handshake or cookie message to the 18-byte record `to`. */
  sendControl(pkt: Uint8Array, to: Uint8Array): void;
  /** Our initiation completed: `kp` is the peer's current keypair now. */
  established(peer: SessionPeer, kp: Keypair): void;
  /** Our initiation was retried for `rekeyAttemptTimeMs` without an answer. */
  gaveUp(peer: SessionPeer): void;
  /** An initiation from `from` (18-byte record) proved possession of our own static key: a cloned host key. */
  duplicateKey(from: Uint8Array): void;
}

export interface HandshakeFsmOptions {
  local: HostKey;
  psks: Uint8Array[];
  timers: SessionTimers;
  counters: CipherCounters;
  keypairs: KeypairTable;
  wallClock: () => number;
  random: (n: number) => Uint8Array;
  jitter: () => number;
  log: Logger;
}

export class HandshakeFsm {
  private readonly local: HostKey;
  private psks: Uint8Array[];
  private readonly myMac1Key: Uint8Array;
  private readonly timers: SessionTimers;
  private readonly counters: CipherCounters;
  private readonly keypairs: KeypairTable;
  private readonly wallClock: () => number;
  private readonly random: (n: number) => Uint8Array;
  private readonly jitter: () => number;
  private readonly log: Logger;
  /** Our pending initiations by their local index. */
  private readonly pending = new Map<number, SessionPeer>();
  private clock: Clock | null = null;
  private cookies: CookieChecker | null = null;
  private limiter: RateLimiter | null = null;
  private cookieLimiter: RateLimiter | null = null;
  private lastTs = 0;
  private loadWindowStart = 0;
  private loadCount = 0;

  constructor(private readonly host: HandshakeHost, opts: HandshakeFsmOptions) {
    this.local = opts.local;
    this.psks = opts.psks;
    this.myMac1Key = mac1Key(this.local.publicKey);
    this.timers = opts.timers;
    this.counters = opts.counters;
    this.keypairs = opts.keypairs;
    this.wallClock = opts.wallClock;
    this.random = opts.random;
    this.jitter = opts.jitter;
    this.log = opts.log;
  }

  /** Starts on `clock` (cookie secret rotation, rate limiters, load window). */
  start(clock: Clock): void {
    this.clock = clock;
    this.cookies = new CookieChecker(clock, this.local.publicKey, this.random);
    this.limiter = new RateLimiter(clock, this.timers.ratePerSec, this.timers.rateBurst);
    this.cookieLimiter = new RateLimiter(clock, this.timers.ratePerSec, this.timers.rateBurst);
    this.loadWindowStart = clock.now();
  }

  /** Replaces the PSKs (first = the one used as responder). */
  setPsks(psks: Uint8Array[]): void {
    this.psks = psks;
  }

  /** Forgets idle rate-limiter state. Housekeeping. */
  sweep(): void {
    this.limiter?.sweep();
    this.cookieLimiter?.sweep();
  }

  /** A fresh random local index, unused by any keypair or pending initiation. */
  newIndex(): number {
    for (;;) {
      const r = this.random(4);
      const idx = (r[0] | (r[1] << 8) | (r[2] << 16) | (r[3] << 24)) >>> 0;
      if (!this.keypairs.has(idx) && !this.pending.has(idx)) return idx;
    }
  }

  // ---- initiator ---------------------------------------------------------------------------------

  /** Starts a handshake with `peer` unless one is in progress (idempotent). */
  begin(peer: SessionPeer): void {
    if (peer.hs || !peer.record || !this.clock) return;
    peer.hsStartedAt = this.clock.now();
    peer.hsAttempt = 0;
    this.sendInitiation(peer);
  }

  /** Abandons our pending initiation with `peer`, if any (its ephemeral key wiped). */
  clear(peer: SessionPeer): void {
    if (peer.hsTimer) peer.hsTimer.cancel();
    peer.hsTimer = null;
    if (peer.hs) {
      this.pending.delete(peer.hs.localIndex);
      peer.hs.ephPriv.fill(0);
    }
    peer.hs = null;
  }

  private sendInitiation(peer: SessionPeer): void {
    const clock = this.clock!;
    this.clear(peer);
    const idx = this.newIndex();
    const cookie = peer.cookie && clock.now() - peer.cookieAt < COOKIE_USE_MS ? peer.cookie : null;
    const r = createInitiation(this.local, peer.publicKey, idx, this.nextTimestamp(), this.random(32), cookie);
    if (!r) {
      this.counters.hsInvalid++;
      return;
    }
    peer.hs = r.state;
    this.pending.set(idx, peer);
    this.counters.hsInitiationSent++;
    this.host.sendControl(r.msg, peer.record!);
    const st = r.state;
    peer.hsTimer = clock.setTimer(retryDelayMs(this.timers, peer.hsAttempt, this.jitter()), () => this.onRetry(peer, st));
  }

  private onRetry(peer: SessionPeer, st: InitiatorState): void {
    if (peer.hs !== st) return;
    if (handshakeGivenUp(this.timers, peer.hsStartedAt, this.clock!.now())) {
      this.counters.handshakeTimeouts++;
      this.clear(peer);
      this.host.gaveUp(peer);
      return;
    }
    peer.hsAttempt++;
    this.sendInitiation(peer);
  }

  /** Strictly increasing 12-byte timestamps (µs of the wall clock). */
  private nextTimestamp(): Uint8Array {
    const us = Math.max(this.lastTs + 1, Math.floor(this.wallClock() * 1000));
    this.lastTs = us;
    return encodeTimestamp(us);
  }

  // ---- received messages -------------------------------------------------------------------------

  /**
   * Handles one handshake or cookie message from `from` (18-byte record). Never throws.
   * `mac1Verified`: the caller already checked mac1 (the batched gate, mac1-gate.ts).
   */
  handle(msg: Uint8Array, from: Uint8Array, mac1Verified = false): void {
    try {
      switch (msg[0]) {
        case MSG_INITIATION: this.onInitiation(msg, from, mac1Verified); break;
        case MSG_RESPONSE: this.onResponse(msg, from, mac1Verified); break;
        case MSG_COOKIE: this.onCookie(msg); break;
        default: this.counters.hsInvalid++;
      }
    } catch (e) {
      this.counters.hsInvalid++;
      this.log.debug({ err: (e as Error).message }, 'handshake message rejected');
    }
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
          this.host.sendControl(this.cookies!.createReply(msg, src), Buffer.from(from));
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

  private onInitiation(msg: Uint8Array, from: Uint8Array, mac1Verified: boolean): void {
    if (!mac1Verified && !checkMac1(msg, this.myMac1Key)) {
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
    if (equalBytes(init.peerStatic, this.local.publicKey)) {
      this.host.duplicateKey(from); // it holds our private key: answering would only make a session with ourselves
      return;
    }
    const peer = this.host.peerByKey(encodeKey(init.peerStatic));
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
      // Simultaneous initiation: the lower static public key keeps its own initiation.
      if (compareBytes(this.local.publicKey, peer.publicKey) < 0) {
        this.counters.hsTieBreakIgnored++;
        return;
      }
      this.clear(peer);
    }
    if (!peer.record) this.host.bindSource(peer, from); // known key, no endpoint yet: answer the source
    const idx = this.newIndex();
    const r = createResponse(init, idx, this.random(32), this.psks[0], null);
    if (!r) {
      this.counters.hsInvalid++;
      return;
    }
    const now = this.clock!.now();
    const kp = this.keypairs.create(peer, r.keys, idx, init.senderIndex, false, now);
    if (!kp) return;
    if (peer.next) this.keypairs.destroy(peer.next);
    peer.next = kp;
    peer.lastHandshakeAt = now;
    this.counters.hsResponseSent++;
    this.host.sendControl(r.msg, peer.record!);
  }

  private onResponse(msg: Uint8Array, from: Uint8Array, mac1Verified: boolean): void {
    if (!mac1Verified && !checkMac1(msg, this.myMac1Key)) {
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
    this.clear(peer);
    const now = this.clock!.now();
    const kp = this.keypairs.create(peer, r.keys, st.localIndex, r.senderIndex, true, now);
    if (!kp) return;
    if (peer.next) {
      this.keypairs.destroy(peer.next);
      peer.next = null;
    }
    this.keypairs.rotateIn(peer, kp, now);
    peer.lastHandshakeAt = now;
    this.host.established(peer, kp);
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
}
