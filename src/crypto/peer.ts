/**
 * What the session layer knows of one peer host: its static public key, the underlay endpoint its
 * sessions are bound to (pinned by config, or announced by which gossip member), its keypairs (current / previous / next), the state of
 * a handshake we initiated, and the packets waiting for a session.
 */

import type { TimerHandle } from '../clock';
import type { PeerKey } from '../dataplane/addr';
import type { InitiatorState } from './handshake';
import type { Keypair } from './keypairs';
import { encodeKey } from './keys';
import { PendingQueue } from './queue';

/** A peer host as the session layer knows it. */
export class SessionPeer {
  readonly keyB64: string;
  /** Nonzero id of this host while its key is known (`CipherBatch.senders`); never reused. */
  readonly id: number;
  /** 18-byte underlay record its sessions are bound to. */
  record: Buffer | null = null;
  addrKey: PeerKey | null = null;
  /** Pinned by static config (`peers[].publicKey`): gossip records neither move nor remove it. */
  pinned = false;
  /** The gossip member whose record announced this key (its owner there); null: not from gossip. */
  member: string | null = null;
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
  readonly queue = new PendingQueue();
  lastHandshakeAt = -1;

  constructor(readonly publicKey: Uint8Array, id: number) {
    this.keyB64 = encodeKey(publicKey);
    this.id = id;
  }
}
