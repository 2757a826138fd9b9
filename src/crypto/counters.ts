/** Counters of the session layer (read by src/metrics/adapters.ts and status; names are stable). */
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
  /** Initiations the kernel flood guard dropped (flood-guard.ts): source over its own rate / all over the total. */
  hsGuardPerSource = 0;
  hsGuardTotal = 0;
  hsUnknownPeer = 0;
  hsUnknownIndex = 0;
  hsReplayedInitiation = 0;
  hsInvalid = 0;
  hsTieBreakIgnored = 0;
  /** Handshake messages that reached Diffie-Hellman (the expensive step). */
  hsDh = 0;
  handshakeTimeouts = 0;
  sessionsEstablished = 0;
  /** Gossip records, static pins and handshakes seen presenting this host's own static public key. */
  duplicateHostKey = 0;
}
