/**
 * Protocol timers and limits of the session layer (docs/wire-format.md §Timers) and the decisions
 * made from them: when a handshake is retried, when a keypair may still seal or open, when a
 * rekey starts. Pure functions of (keypair, now, timers): the clock itself is injected where the
 * timers run (session.ts housekeeping, handshake-fsm.ts retries), so tests advance a FakeClock.
 */

import type { Keypair } from './keypairs';

/** Protocol timers and limits. Defaults are WireGuard's where it has one. */
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
export const RECV_REKEY_SLACK_MS = 15_000;

/** A cookie from a cookie reply is used for mac2 this long (WireGuard: 120 s − 10 s of slack). */
export const COOKIE_USE_MS = 120_000 - 10_000;

/** Delay before the next initiation after attempt number `attempt` (0 = the first one). `jitter` in [0, 1). */
export function retryDelayMs(t: SessionTimers, attempt: number, jitter: number): number {
  return Math.min(t.retryInitialMs * 2 ** attempt, t.retryMaxMs) + jitter * t.retryJitterMs;
}

/** True when a handshake started at `startedAt` has been retried long enough: give up. */
export function handshakeGivenUp(t: SessionTimers, startedAt: number, now: number): boolean {
  return now - startedAt >= t.rekeyAttemptTimeMs;
}

/** True when `kp` may still seal (age and message count below the reject limits). */
export function canSend(t: SessionTimers, kp: Keypair, now: number): boolean {
  return now - kp.created < t.rejectAfterTimeMs && kp.sendCounter < t.rejectAfterMessages;
}

/** True when `kp` is past its reject age (both directions). */
export function expired(t: SessionTimers, kp: Keypair, now: number): boolean {
  return now - kp.created >= t.rejectAfterTimeMs;
}

/** Sending side: a new handshake is due (message count, or an initiator's keypair is old). */
export function rekeyOnSend(t: SessionTimers, kp: Keypair, now: number): boolean {
  return kp.sendCounter >= t.rekeyAfterMessages || (kp.isInitiator && now - kp.created >= t.rekeyAfterTimeMs);
}

/** Receiving side: an initiator whose current keypair is about to expire rekeys (peer idle in our direction). */
export function rekeyOnReceive(t: SessionTimers, kp: Keypair, now: number): boolean {
  return kp.isInitiator && now - kp.created >= t.rejectAfterTimeMs - RECV_REKEY_SLACK_MS;
}
