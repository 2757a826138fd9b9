/**
 * What both directions of the data path share: the devices, the networks by VNI, the peers, the
 * cipher, the global counters and batch histograms, and the guarded I/O calls (an exception from a
 * device is logged, rate-limited, and counted by the caller as a drop: never thrown into the loop).
 * One per `Datapath`; nothing here is process-global.
 */
import type { Clock } from '../clock';
import type { AddressFamily } from '../config/types';
import type { Logger } from '../log';
import { LogLimiter } from '../log';
import type { PacketCipher } from './cipher-seam';
import { BatchHistogram, GlobalCounters } from './counters';
import type { Network } from './network';
import { PeerTable } from './peers';
import { isGsoUdp, type GsoUdpTransport, type TapDevice, type TxBatch, type UdpTransport } from './seams';
import { VXLAN_HLEN } from './vxlan';

export interface Underlay {
  family: AddressFamily;
  mtu: number;
  port: number;
  address?: string;
}

export class PathContext {
  readonly counters = new GlobalCounters();
  readonly hist = {
    tapRead: new BatchHistogram('tap_read'),
    tapWrite: new BatchHistogram('tap_write'),
    udpRecv: new BatchHistogram('udp_recv'),
    udpSend: new BatchHistogram('udp_send'),
  };
  readonly byVni = new Map<number, Network>();
  /** The same networks as an array (iterated per batch without allocating an iterator). */
  netList: Network[] = [];
  readonly peers: PeerTable;
  readonly gsoUdp: GsoUdpTransport | null;
  /** Source sockets the flow hash picks from (1..256). */
  readonly sourceCount: number;
  running = false;
  cipher: PacketCipher | null = null;
  private readonly warnings: LogLimiter;

  constructor(
    readonly udp: UdpTransport,
    readonly clock: Clock,
    log: Logger,
    readonly underlay: Underlay,
    readonly batchSize: number,
    readonly headroom: number,
    readonly burst: number,
    maxLearnedPeers: number,
  ) {
    this.warnings = new LogLimiter(log, { intervalMs: 10_000, burst: 1, clock });
    this.peers = new PeerTable(underlay, maxLearnedPeers, this.byVni, this.counters);
    this.gsoUdp = isGsoUdp(udp) ? udp : null;
    this.sourceCount = Math.max(1, Math.min(256, udp.sourceCount | 0));
  }

  /** The network currently owning `tap` (a TAP object may outlive its network, or be re-added). */
  tapOwner(tap: TapDevice): Network | undefined {
    const nets = this.netList;
    for (let i = 0; i < nets.length; i++) if (nets[i].tap === tap) return nets[i];
    return undefined;
  }

  /**
   * The guarded sends and writes return the descriptors consumed; `b.status` then says, for each of
   * them, 0 (sent / written) or the errno it was skipped with. Status is zeroed first, so a device
   * that does not fill it reports every consumed descriptor as sent.
   */
  safeSend(b: TxBatch): number {
    b.status.fill(0, 0, b.count);
    try {
      const n = this.udp.sendBatch(b);
      return n > 0 ? Math.min(n, b.count) : 0;
    } catch (e) {
      this.warn('udp_send', e, {});
      return 0;
    }
  }

  /** A vnet batch: super-frames are cut by the transport (descriptor gso info in `gso`). */
  safeSendGso(b: TxBatch, gso: Uint16Array): number {
    b.status.fill(0, 0, b.count);
    try {
      const n = this.gsoUdp !== null ? this.gsoUdp.sendBatchGso(b, gso, VXLAN_HLEN) : this.udp.sendBatch(b);
      return n > 0 ? Math.min(n, b.count) : 0;
    } catch (e) {
      this.warn('udp_send', e, {});
      return 0;
    }
  }

  safeTapWrite(net: Network, b: TxBatch): number {
    b.status.fill(0, 0, b.count);
    try {
      const n = net.tap.writeBatch(b);
      return n > 0 ? Math.min(n, b.count) : 0;
    } catch (e) {
      this.warn('tap_write', e, { tap: net.tap.name });
      return 0;
    }
  }

  /** I/O errors are counted as drops; logged at most once per 10 s per kind (with a suppressed count). */
  warn(kind: string, e: unknown, fields: Record<string, unknown>): void {
    const err = e as { message?: string; code?: string };
    this.warnings.log('warn', kind, { ...fields, kind, err: err?.message, code: err?.code }, 'data path I/O error');
  }
}
