/**
 * The handshake protocol: message construction and consumption (Noise IKpsk2, see noise.ts and
 * docs/wire-format.md §Handshake), mac1/mac2, cookie replies and the per-source rate limiter.
 * No sockets and no timers of its own: time comes from an injected Clock, randomness from an
 * injected function, so the state machine in handshake-fsm.ts runs on a FakeClock in tests.
 *
 * Checks on an incoming handshake message, in order (the cheap ones first; no Diffie-Hellman
 * before mac1 verifies and the rate limit allows it):
 *   1. exact length for its type, reserved bytes zero
 *   2. mac1 = MAC(HASH("mac1----" ‖ our static public key), message up to mac1)
 *   3. under load (global rate over `loadThreshold`/s, or this source over its bucket): a valid
 *      mac2 (MAC(cookie, message up to mac2)) is required, else a cookie reply is sent instead;
 *      with a valid mac2 the per-source token bucket still applies
 *   4. only then the DHs, the AEADs, the static key lookup and the timestamp check.
 */

import sodium from 'libsodium-wrappers';

import type { Clock } from '../clock';
import type { HostKey } from './keys';
import {
  COOKIE_LEN, INITIATION_LEN, MSG_COOKIE, MSG_INITIATION, MSG_RESPONSE, RESPONSE_LEN, TIMESTAMP_LEN,
  aeadOpen, aeadSeal, cookieKey, dh, equalBytes, hash, initialState, kdf, mac, mac1Key, readU32LE,
  writeU32LE, xaeadOpen, xaeadSeal,
} from './noise';

const EMPTY = new Uint8Array(0);

/** What an initiator remembers between sending an initiation and consuming the response. */
export interface InitiatorState {
  readonly localIndex: number;
  readonly peerStatic: Uint8Array;
  readonly ephPriv: Uint8Array;
  readonly ck: Uint8Array;
  readonly h: Uint8Array;
  /** mac1 of the initiation (the AD of a cookie reply to it). */
  readonly mac1: Uint8Array;
}

/** Transport keys of a completed handshake, from this side's point of view. */
export interface SessionKeys {
  readonly send: Uint8Array;
  readonly recv: Uint8Array;
}

/** Builds an initiation (148 bytes) to `peerStatic`. `cookie` (16 bytes) fills mac2 when given. */
export function createInitiation(
  local: HostKey, peerStatic: Uint8Array, localIndex: number, timestamp: Uint8Array, ephPriv: Uint8Array,
  cookie: Uint8Array | null,
): { msg: Uint8Array; state: InitiatorState } | null {
  let { ck, h } = initialState();
  h = hash(h, peerStatic);
  const ephPub = sodium.crypto_scalarmult_base(ephPriv);
  [ck] = kdf(1, ck, ephPub);
  h = hash(h, ephPub);
  const es = dh(ephPriv, peerStatic);
  if (!es) return null;
  let k: Uint8Array;
  [ck, k] = kdf(2, ck, es);
  const encStatic = aeadSeal(k, local.publicKey, h);
  h = hash(h, encStatic);
  const ss = dh(local.privateKey, peerStatic);
  if (!ss) return null;
  [ck, k] = kdf(2, ck, ss);
  const encTs = aeadSeal(k, timestamp, h);
  h = hash(h, encTs);
  const msg = new Uint8Array(INITIATION_LEN);
  msg[0] = MSG_INITIATION;
  writeU32LE(msg, 4, localIndex);
  msg.set(ephPub, 8);
  msg.set(encStatic, 40);
  msg.set(encTs, 88);
  const m1 = addMacs(msg, peerStatic, cookie);
  return { msg, state: { localIndex, peerStatic, ephPriv, ck, h, mac1: m1 } };
}

/** A consumed (authenticated, decrypted) initiation. */
export interface ConsumedInitiation {
  readonly senderIndex: number;
  readonly peerStatic: Uint8Array;
  readonly timestamp: Uint8Array;
  readonly ephPub: Uint8Array;
  readonly ck: Uint8Array;
  readonly h: Uint8Array;
}

/** Decrypts an initiation addressed to `local` (mac checks done by the caller). Null if forged. */
export function consumeInitiation(local: HostKey, msg: Uint8Array): ConsumedInitiation | null {
  if (msg.length !== INITIATION_LEN || msg[0] !== MSG_INITIATION) return null;
  let { ck, h } = initialState();
  h = hash(h, local.publicKey);
  const ephPub = msg.slice(8, 40);
  [ck] = kdf(1, ck, ephPub);
  h = hash(h, ephPub);
  const es = dh(local.privateKey, ephPub);
  if (!es) return null;
  let k: Uint8Array;
  [ck, k] = kdf(2, ck, es);
  const encStatic = msg.subarray(40, 88);
  const peerStatic = aeadOpen(k, encStatic, h);
  if (!peerStatic || peerStatic.length !== 32) return null;
  h = hash(h, encStatic);
  const ss = dh(local.privateKey, peerStatic);
  if (!ss) return null;
  [ck, k] = kdf(2, ck, ss);
  const encTs = msg.subarray(88, 116);
  const timestamp = aeadOpen(k, encTs, h);
  if (!timestamp || timestamp.length !== TIMESTAMP_LEN) return null;
  h = hash(h, encTs);
  return { senderIndex: readU32LE(msg, 4), peerStatic, timestamp, ephPub, ck, h };
}

/** Builds the response (92 bytes) to a consumed initiation; returns it with the responder's keys. */
export function createResponse(
  init: ConsumedInitiation, localIndex: number, ephPriv: Uint8Array, psk: Uint8Array, cookie: Uint8Array | null,
): { msg: Uint8Array; keys: SessionKeys } | null {
  let ck = init.ck;
  let h = init.h;
  const ephPub = sodium.crypto_scalarmult_base(ephPriv);
  [ck] = kdf(1, ck, ephPub);
  h = hash(h, ephPub);
  const ee = dh(ephPriv, init.ephPub);
  const se = dh(ephPriv, init.peerStatic);
  if (!ee || !se) return null;
  [ck] = kdf(1, ck, ee);
  [ck] = kdf(1, ck, se);
  const [ck2, tau, k] = kdf(3, ck, psk);
  h = hash(h, tau);
  const encEmpty = aeadSeal(k, EMPTY, h);
  h = hash(h, encEmpty);
  const msg = new Uint8Array(RESPONSE_LEN);
  msg[0] = MSG_RESPONSE;
  writeU32LE(msg, 4, localIndex);
  writeU32LE(msg, 8, init.senderIndex);
  msg.set(ephPub, 12);
  msg.set(encEmpty, 44);
  addMacs(msg, init.peerStatic, cookie);
  const [t1, t2] = kdf(2, ck2, EMPTY);
  return { msg, keys: { send: t2, recv: t1 } };
}

/**
 * Consumes a response to our initiation `st` (mac checks done by the caller). Tries each PSK of
 * the keyring (the responder used its primary one). Null if forged.
 */
export function consumeResponse(
  local: HostKey, st: InitiatorState, msg: Uint8Array, psks: readonly Uint8Array[],
): { keys: SessionKeys; senderIndex: number } | null {
  if (msg.length !== RESPONSE_LEN || msg[0] !== MSG_RESPONSE || readU32LE(msg, 8) !== st.localIndex) return null;
  const ephPub = msg.slice(12, 44);
  let [ck] = kdf(1, st.ck, ephPub);
  const h = hash(st.h, ephPub);
  const ee = dh(st.ephPriv, ephPub);
  const se = dh(local.privateKey, ephPub);
  if (!ee || !se) return null;
  [ck] = kdf(1, ck, ee);
  [ck] = kdf(1, ck, se);
  const encEmpty = msg.subarray(44, 60);
  for (const psk of psks) {
    const [ck2, tau, k] = kdf(3, ck, psk);
    const h2 = hash(h, tau);
    if (aeadOpen(k, encEmpty, h2) === null) continue;
    const [t1, t2] = kdf(2, ck2, EMPTY);
    return { keys: { send: t1, recv: t2 }, senderIndex: readU32LE(msg, 4) };
  }
  return null;
}

/** Fills mac1 (and mac2 when a cookie is given, else zeros) of a handshake message; returns mac1. */
export function addMacs(msg: Uint8Array, receiverStatic: Uint8Array, cookie: Uint8Array | null): Uint8Array {
  const n = msg.length;
  const m1 = mac(mac1Key(receiverStatic), msg.subarray(0, n - 32));
  msg.set(m1, n - 32);
  if (cookie) msg.set(mac(cookie, msg.subarray(0, n - 16)), n - 16);
  else msg.fill(0, n - 16, n);
  return m1;
}

/** Structural check + mac1 of an incoming initiation/response addressed to us. */
export function checkMac1(msg: Uint8Array, ourMac1Key: Uint8Array): boolean {
  const t = msg[0];
  const want = t === MSG_INITIATION ? INITIATION_LEN : t === MSG_RESPONSE ? RESPONSE_LEN : -1;
  if (msg.length !== want || msg[1] !== 0 || msg[2] !== 0 || msg[3] !== 0) return false;
  const n = msg.length;
  return equalBytes(mac(ourMac1Key, msg.subarray(0, n - 32)), msg.subarray(n - 32, n - 16));
}

/**
 * Responder side of cookies (WireGuard §5.4.7): a secret rotated every `rotateMs`; the cookie
 * for a source is MAC(secret, source address) — bound to the address only, because a host sends
 * from several ECMP source ports.
 */
export class CookieChecker {
  private secret: Uint8Array;
  private secretAt: number;
  private readonly encKey: Uint8Array;

  constructor(
    private readonly clock: Clock, localPublic: Uint8Array, private readonly random: (n: number) => Uint8Array,
    private readonly rotateMs = 120_000,
  ) {
    this.secret = random(32);
    this.secretAt = clock.now();
    this.encKey = cookieKey(localPublic);
  }

  private currentSecret(): Uint8Array {
    if (this.clock.now() - this.secretAt >= this.rotateMs) {
      this.secret = this.random(32);
      this.secretAt = this.clock.now();
    }
    return this.secret;
  }

  cookieFor(sourceAddr: Uint8Array): Uint8Array {
    return mac(this.currentSecret(), sourceAddr);
  }

  /** True when mac2 of `msg` was made with the current cookie for `sourceAddr`. */
  checkMac2(msg: Uint8Array, sourceAddr: Uint8Array): boolean {
    const n = msg.length;
    return equalBytes(mac(this.cookieFor(sourceAddr), msg.subarray(0, n - 16)), msg.subarray(n - 16, n));
  }

  /** Cookie reply (64 bytes) to handshake message `msg` from `sourceAddr`. */
  createReply(msg: Uint8Array, sourceAddr: Uint8Array): Uint8Array {
    const n = msg.length;
    const senderIndex = readU32LE(msg, 4);
    const nonce = this.random(24);
    const sealed = xaeadSeal(this.encKey, nonce, this.cookieFor(sourceAddr), msg.subarray(n - 32, n - 16));
    const out = new Uint8Array(COOKIE_LEN);
    out[0] = MSG_COOKIE;
    writeU32LE(out, 4, senderIndex);
    out.set(nonce, 8);
    out.set(sealed, 32);
    return out;
  }
}

/** Initiator side: decrypts a cookie reply from `peerStatic` to our message whose mac1 was `mac1`. */
export function consumeCookieReply(reply: Uint8Array, peerStatic: Uint8Array, sentMac1: Uint8Array): Uint8Array | null {
  if (reply.length !== COOKIE_LEN || reply[0] !== MSG_COOKIE || reply[1] || reply[2] || reply[3]) return null;
  const cookie = xaeadOpen(cookieKey(peerStatic), reply.subarray(8, 32), reply.subarray(32, 64), sentMac1);
  return cookie && cookie.length === 16 ? cookie : null;
}

/**
 * Token buckets per source address (as WireGuard's ratelimiter): `ratePerSec` handshake messages
 * per second with bursts of `burst`. Idle entries are swept by `sweep()`; at most `maxEntries`
 * sources are tracked (beyond that, unknown sources share one bucket, so a spoofing flood cannot
 * grow memory).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly shared = { tokens: 0, at: 0 };

  constructor(
    private readonly clock: Clock, private readonly ratePerSec = 20, private readonly burst = 5,
    private readonly maxEntries = 4096,
  ) {
    this.shared.tokens = burst;
    this.shared.at = clock.now();
  }

  private bucket(key: string): { tokens: number; at: number } {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxEntries) return this.shared;
      b = { tokens: this.burst, at: this.clock.now() };
      this.buckets.set(key, b);
    }
    const now = this.clock.now();
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.ratePerSec);
    b.at = now;
    return b;
  }

  /** True if a token is available for `key` (does not take it). */
  peek(key: string): boolean {
    return this.bucket(key).tokens >= 1;
  }

  /** Takes a token; false when the source is over its rate. */
  take(key: string): boolean {
    const b = this.bucket(key);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets sources whose bucket is full again (idle for burst/rate seconds). */
  sweep(): void {
    const now = this.clock.now();
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.ratePerSec >= this.burst) this.buckets.delete(k);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}

