/**
 * The policy seam: what a network's policy enforcer (src/policy/enforcer.ts) offers the data
 * path. src/policy implements it; the data path never imports src/policy. Called once per frame
 * on networks that have one, at "[policy egress]" (inside.ts, after decide) and "[policy ingress]"
 * (outside.ts, after the owner check); allocation-free.
 */
import type { TxBatch } from './seams';

export interface PolicyFilter {
  /** The batch's time (the data path's one clock read per batch), before its frames are filtered. */
  setNow(now: number): void;
  /**
   * True when the frame at b[off..off+len) may pass. `fromHost`: the underlay address (canonical
   * text) of the host that sent a remote frame — the authenticated peer on encrypted networks, ''
   * when unknown — or null for a frame read from this host's TAP.
   */
  filter(b: Uint8Array, off: number, len: number, fromHost: string | null): boolean;
  /**
   * Same-host enforcement ("[policy hairpin]", inside.ts): true when the frame read from the TAP
   * goes from one endpoint of this host to another (the port rules of src/policy/local-ports.ts
   * send such frames to the TAP instead of across the bridge).
   */
  localPair(b: Uint8Array, off: number): boolean;
  /** The verdict for such a frame (the source must be the endpoint that sent it). */
  filterLocal(b: Uint8Array, off: number, len: number): boolean;
  /**
   * Queues a passed same-host frame (`gsoType` ≠ 0: a TSO super-frame) for the write back to the
   * TAP: 1 queued, 0 no room (write `hairpinTx`, call `hairpinDone`, queue again), −1 lost (counted).
   */
  hairpinQueue(b: Uint8Array, off: number, len: number, gsoType: number, mss: number): number;
  /** The queued frames (plain frames in the filter's own memory), or null. */
  readonly hairpinTx: TxBatch | null;
  /** After writing `hairpinTx`: how many descriptors were not written. Resets the batch. */
  hairpinDone(failed: number): void;
}
