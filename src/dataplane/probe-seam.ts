/**
 * The probe seam: what the data-path probe engine (src/probe/engine.ts) offers the data path's
 * stages, and what the data path offers it (given once, in `attach`). The data path imports only
 * this file and the probe wire codec (src/probe/wire.ts, no imports of its own), never the engine.
 *   outside.ts  stage 2b `probe`: a datagram that is a probe (wire.ts `isProbe`) is validated
 *               (format, VNI, admission or session) and handed to `input`; never reaches tenant
 *               processing; `flush` once per receive batch that had probes;
 *   inside.ts   stage 4b `pathMtu`: a unicast frame larger than its peer's measured path carries
 *               (`Peer.pathFrameMax` / `pathFrameMaxSealed`) is dropped as `path_mtu` and handed
 *               to `tooBig`, which answers the sender with ICMP (rate-limited).
 */
import type { Clock } from '../clock';
import type { PacketCipher } from './cipher-seam';
import type { Network } from './network';
import type { Peer } from './peers';
import type { TxBatch } from './seams';

export interface ProbeStage {
  /**
   * A valid probe (`len` bytes at `slab[off]`, plaintext) for network `net` from `peer` (the
   * admitted host, or on encrypted networks the host whose session authenticated it).
   */
  input(slab: Buffer, off: number, len: number, net: Network, peer: Peer): void;
  /** Counts a dropped probe (index into wire.ts PROBE_DROP_REASONS). */
  drop(reason: number): void;
  /** End of a receive batch that had probes: sends the replies queued (one send). */
  flush(): void;
  /** The frame at `slab[off]` (`len` bytes) exceeds `limit`, the largest frame its peer's path carries. */
  tooBig(net: Network, slab: Buffer, off: number, len: number, limit: number): void;
  /** Called by `Datapath.setProbe`. */
  attach?(host: ProbeHost): void;
  /** Called when the probe stage is replaced or cleared. */
  detach?(): void;
}

/** What the data path offers the probe engine. */
export interface ProbeHost {
  readonly clock: Clock;
  readonly family: 4 | 6;
  /** The underlay MTU (`underlay.mtu`): the largest path MTU probed. */
  readonly mtu: number;
  /** The networks now (config, who serves them). */
  networks(): readonly Network[];
  /** The static peers (serve every network). */
  staticPeers(): readonly Peer[];
  cipher(): PacketCipher | null;
  /** Guarded UDP send (see seams.ts for the outcome contract). */
  send(b: TxBatch): number;
  /** Guarded TAP write of network `net`. */
  tapWrite(net: Network, b: TxBatch): number;
}
