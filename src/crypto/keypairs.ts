/**
 * Keypairs (one pair of transport keys per completed handshake, WireGuard's word) and the AEAD
 * table slots that hold their keys. A peer has up to three: `current` (seals and opens), `previous`
 * (opens only, for `previousGraceMs` after a rotation) and `next` (a responder's keypair, waiting
 * for the initiator's first packet to confirm it). Keys live only in the AEAD table (native or
 * node backend); the JS copies are wiped once installed. The table is bounded: when it is full,
 * previous keypairs are evicted first, then new sessions are refused.
 */

import sodium from 'libsodium-wrappers';

import type { Logger } from '../log';
import type { AeadTable } from './aead';
import type { CipherCounters } from './counters';
import type { SessionKeys } from './handshake';
import type { SessionPeer } from './peer';
import { ReplayWindow } from './replay';
import type { SessionTimers } from './timers';

/** One direction-pair of transport keys. */
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

/** Every live keypair by its local (receiver) index, and the AEAD slots they use. */
export class KeypairTable {
  private readonly byIndex = new Map<number, Keypair>();
  private readonly freeSlots: number[] = [];

  constructor(
    private readonly aead: AeadTable,
    maxKeypairs: number,
    private readonly timers: SessionTimers,
    private readonly counters: CipherCounters,
    private readonly log: Logger,
    /** Every peer, to evict previous keypairs from when the table is full. */
    private readonly peers: () => Iterable<SessionPeer>,
  ) {
    for (let s = maxKeypairs * 2 - 1; s >= 0; s--) this.freeSlots.push(s);
  }

  /** The keypair that receives under `localIndex`, if any. */
  get(localIndex: number): Keypair | undefined {
    return this.byIndex.get(localIndex);
  }

  has(localIndex: number): boolean {
    return this.byIndex.has(localIndex);
  }

  get size(): number {
    return this.byIndex.size;
  }

  /** Installs the keys of a completed handshake (wiping `keys`); null when no slots are left. */
  create(peer: SessionPeer, keys: SessionKeys, localIndex: number, remoteIndex: number, isInitiator: boolean, now: number): Keypair | null {
    if (this.freeSlots.length < 2) {
      // evict: previous keypairs first
      for (const p of this.peers()) {
        if (p.previous) { this.destroy(p.previous); p.previous = null; }
        if (this.freeSlots.length >= 2) break;
      }
      if (this.freeSlots.length < 2) {
        this.log.warn({ peer: peer.keyB64 }, 'no AEAD slots left for a new session');
        return null;
      }
    }
    const sendSlot = this.freeSlots.pop()!;
    const recvSlot = this.freeSlots.pop()!;
    this.aead.setKey(sendSlot, keys.send);
    this.aead.setKey(recvSlot, keys.recv);
    const kp: Keypair = {
      peer, localIndex, remoteIndex, sendSlot, recvSlot, created: now, isInitiator, sendCounter: 0,
      replay: new ReplayWindow(this.timers.rejectAfterMessages),
      sendKeyId: Buffer.from(sodium.crypto_generichash(8, keys.send, null)).toString('hex'),
    };
    keys.send.fill(0);
    keys.recv.fill(0);
    this.byIndex.set(localIndex, kp);
    return kp;
  }

  /** Wipes a keypair's keys and frees its slots. */
  destroy(kp: Keypair): void {
    if (this.byIndex.get(kp.localIndex) === kp) this.byIndex.delete(kp.localIndex);
    this.aead.clearKey(kp.sendSlot);
    this.aead.clearKey(kp.recvSlot);
    this.freeSlots.push(kp.sendSlot, kp.recvSlot);
  }

  /** `kp` becomes current; the old current becomes previous (receive-only, for `previousGraceMs`). */
  rotateIn(peer: SessionPeer, kp: Keypair, now: number): void {
    if (peer.previous) this.destroy(peer.previous);
    peer.previous = peer.current;
    peer.previousUntil = now + this.timers.previousGraceMs;
    peer.current = kp;
    this.counters.sessionsEstablished++;
  }

  /** Destroys `peer`'s keypairs past their age (previous: also past its grace). Housekeeping. */
  expire(peer: SessionPeer, now: number): void {
    const reject = this.timers.rejectAfterTimeMs;
    if (peer.current && now - peer.current.created >= reject) { this.destroy(peer.current); peer.current = null; }
    if (peer.next && now - peer.next.created >= reject) { this.destroy(peer.next); peer.next = null; }
    if (peer.previous && (now > peer.previousUntil || now - peer.previous.created >= reject)) {
      this.destroy(peer.previous);
      peer.previous = null;
    }
  }

  /** Destroys all of `peer`'s keypairs. */
  forget(peer: SessionPeer): void {
    for (const kp of [peer.current, peer.previous, peer.next]) if (kp) this.destroy(kp);
    peer.current = peer.previous = peer.next = null;
  }
}
