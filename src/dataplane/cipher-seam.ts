/**
 * The cipher seam: what an encryption implementation (src/crypto) offers the data path and what the
 * data path offers it. src/crypto imports this file, never the data path itself.
 */
import type { Clock } from '../clock';
import type { Endpoint } from '../config/types';
import type { TxDropReason } from './counters';
import type { TxBatch } from './seams';

/** Per-descriptor results of `PacketCipher.sealBatch` / `openBatch`. */
export const CIPHER_OK = 0;
/** seal: no session with the peer and the packet was not queued → dropped, counted `no_session`. */
export const CIPHER_NO_SESSION = 1;
/** seal: the cipher copied the packet and will send it (via `CipherHost.sendBatch`) or drop it later. */
export const CIPHER_QUEUED = 2;
/** open: a control message (handshake, cookie…) the cipher consumed; not a data packet. */
export const CIPHER_CONSUMED = 3;
/** open: authentication, replay or session failure → dropped, counted `decrypt_failed` (global). */
export const CIPHER_FAILED = 4;

/**
 * Descriptors handed to the cipher, in one slab. All arrays have at least `count` entries.
 *   seal: `offs/lens` = plaintext VXLAN packet (8-byte header + inner frame); at least
 *         `cipher.headroom` bytes before `offs[i]` and `cipher.tailroom` bytes after the packet are
 *         free for the cipher to write into. Descriptors never share bytes (flooded copies are
 *         made before sealing). `addrs` = destination record; `vnis` = the network.
 *   open: `offs/lens` = a received datagram for which `isEnvelope` was true; `addrs` = source
 *         record; `vnis` unused. The plaintext VXLAN packet must end up inside [offs, offs+lens).
 * The cipher sets `status[i]` and, for CIPHER_OK, `outOffs[i]`/`outLens[i]` (the sealed datagram,
 * or the opened VXLAN packet); open, CIPHER_OK: `senders[i]` = a nonzero id of the host whose
 * session authenticated the datagram (the same id for as long as that host's key is known; see
 * `PacketCipher.senderEndpoint`). The data path learns inner MACs against that host, not against
 * the outer source address, which anyone can forge. The bytes belong to the data path once the call returns: a cipher
 * that queues a packet copies it.
 */
export interface CipherBatch {
  readonly slab: Buffer;
  readonly offs: Uint32Array;
  readonly lens: Uint32Array;
  readonly addrs: Buffer;
  readonly vnis: Uint32Array;
  readonly outOffs: Uint32Array;
  readonly outLens: Uint32Array;
  readonly status: Uint8Array;
  /** open: the authenticated sending host's id per CIPHER_OK descriptor (nonzero); seal: unused. */
  readonly senders: Uint32Array;
  count: number;
}

/** What the data path offers a cipher (given once, in `attach`). */
export interface CipherHost {
  readonly clock: Clock;
  /**
   * Sends datagrams the cipher built (handshakes, cookie replies, packets it had queued); returns
   * how many descriptors were consumed, `batch.status[j]` telling for each whether it was sent (0)
   * or skipped (errno); the rest were not attempted (EAGAIN). See seams.ts.
   */
  sendBatch(batch: TxBatch): number;
  /** Accounts data packets of network `vni` that the cipher sent later (queued ones). */
  countTx(vni: number, packets: number, bytes: number): void;
  /** Accounts data packets of network `vni` that the cipher dropped later (e.g. queue timeout → 'no_session'). */
  countTxDrop(vni: number, reason: TxDropReason, packets: number): void;
}

/**
 * The encryption hook (implemented by `src/crypto`). Used only for networks with `encrypted: true`
 * (outbound) and for datagrams the cipher recognises as its own (inbound); plain networks stay
 * kernel-compatible VXLAN. With no cipher set, encrypted networks send nothing (`no_session`) and
 * plaintext received for them is dropped (`plaintext_on_encrypted`): fail closed.
 * All calls are synchronous and happen on the data path's thread, once per batch.
 */
export interface PacketCipher {
  /** Bytes the cipher writes before the VXLAN header when sealing (≤ data path headroom − 8). */
  readonly headroom: number;
  /** Bytes the cipher appends after the packet when sealing (tag; ≤ 64). */
  readonly tailroom: number;
  /** True when the datagram is a cipher message (data or control), not plaintext VXLAN. Cheap: first bytes only. */
  isEnvelope(slab: Buffer, off: number, len: number): boolean;
  /** Seals every descriptor in place (see CipherBatch). */
  sealBatch(batch: CipherBatch): void;
  /** Opens every descriptor in place (see CipherBatch). */
  openBatch(batch: CipherBatch): void;
  /**
   * Fast path (vnet TAP on an encrypted network): seals one TCP super-frame for the peer whose
   * 18-byte record is at `addrs[addrOff]`. The cipher cuts `frame` (Ethernet frame, virtio
   * `gsoType`, `mss`) into exactly the segments the plaintext path cuts, each behind a copy of the
   * 8-byte `vxlanHeader`, and seals each as one datagram with consecutive counters. Datagram i is
   * at `out[i * stride]`, `outLens[i]` bytes, where `stride = outLens[outLens.length - 1]` (all but
   * the last are exactly `stride` bytes: UDP-GSO layout). Returns the number of datagrams; 0 when
   * there is no usable session (nothing queued: the data path counts `no_session`, TCP
   * retransmits); < 0 when the frame cannot be cut (−1) or `out` is too small (−2) or sealing
   * failed (−3). `frame` is only read. Networks with a vnet TAP need a cipher that has it.
   */
  sealSuperFrame?(addrs: Uint8Array, addrOff: number, vxlanHeader: Uint8Array, frame: Uint8Array, gsoType: number, mss: number,
    out: Uint8Array, outLens: Uint32Array): number;
  /**
   * The underlay endpoint the session of sending host `id` (a `CipherBatch.senders` value) is bound
   * to, or null when the id is unknown (forgotten host). Control-plane rate: the data path asks once
   * per new id and caches the answer until the cipher is replaced; it asks again for an id whose
   * endpoint it has not seen before (a host that moved keeps its id).
   */
  senderEndpoint?(id: number): Endpoint | null;
  /** Called by `setCipher`: the cipher keeps `host` to send its own datagrams. */
  attach?(host: CipherHost): void;
  /** Called when the cipher is replaced or the data path stops. */
  detach?(): void;
}
