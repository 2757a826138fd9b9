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
import { CaptureHub } from '../capture/drops';
import { BatchHistogram, GlobalCounters } from './counters';
import type { DeviceFailure, Network } from './network';
import type { ProbeStage } from './probe-seam';
import { PeerTable } from './peers';
import { isGsoUdp, type GsoUdpTransport, type TapDevice, type TxBatch, type UdpTransport } from './seams';
import { VXLAN_HLEN } from './vxlan';

export interface Underlay {
  family: AddressFamily;
  mtu: number;
  port: number;
  address?: string;
}

/** What `Datapath.onFailure` listeners hear: a network's TAP failed (vni set), or the transport (vni null). */
export interface FailureEvent {
  readonly vni: number | null;
  readonly network: string | null;
  readonly reason: string;
  readonly since: number;
}

/** Stops a device's readability callbacks when it can (`pause()`: native devices and the twins). */
export function pauseDevice(dev: object): void {
  const d = dev as { pause?: () => void };
  if (typeof d.pause === 'function') {
    try {
      d.pause();
    } catch {
      // a device that cannot pause any more (closed) sends no callbacks either
    }
  }
}

function describeError(e: unknown): string {
  const err = e as { message?: string; code?: string } | null;
  if (err && typeof err.message === 'string') return err.code ? `${err.code}: ${err.message}` : err.message;
  return String(e);
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
  /** Drop rings, per-peer drop counts and live capture sessions (src/capture/drops.ts). */
  readonly capture: CaptureHub;
  /** The same networks as an array (iterated per batch without allocating an iterator). */
  netList: Network[] = [];
  readonly peers: PeerTable;
  readonly gsoUdp: GsoUdpTransport | null;
  /** Source sockets the flow hash picks from (1..256). */
  readonly sourceCount: number;
  running = false;
  cipher: PacketCipher | null = null;
  /** The data-path probe stage (probe-seam.ts), or null. */
  probe: ProbeStage | null = null;
  /** Set when the UDP transport failed (poll or receive error). */
  transportFailed: DeviceFailure | null = null;
  /** Failure listeners (`Datapath.onFailure`). */
  readonly failureListeners: ((f: FailureEvent) => void)[] = [];
  private readonly warnings: LogLimiter;
  private readonly log: Logger;

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
    this.log = log;
    this.capture = new CaptureHub(clock, this.counters);
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

  /**
   * A network's TAP failed (poll error, read error, reader thread error): the network is marked
   * failed (once), its TAP no longer polled, the failure logged and reported. Never throws.
   */
  failNetwork(net: Network, e: unknown): void {
    if (net.failed !== null || net.removed) return;
    const f = { reason: describeError(e), since: this.clock.now() };
    net.failed = f;
    pauseDevice(net.tap);
    this.log.error({ network: net.config.name, vni: net.config.vni, tap: net.tap.name, err: f.reason }, 'TAP failed: the network forwards nothing until its TAP is re-created');
    this.report({ vni: net.config.vni, network: net.config.name, ...f });
  }

  /** The UDP transport failed (poll or receive error): marked (once), no longer polled, logged, reported. */
  failTransport(e: unknown): void {
    if (this.transportFailed !== null) return;
    const f = { reason: describeError(e), since: this.clock.now() };
    this.transportFailed = f;
    pauseDevice(this.udp);
    this.log.error({ err: f.reason }, 'UDP transport failed: nothing is received');
    this.report({ vni: null, network: null, ...f });
  }

  private report(ev: FailureEvent): void {
    for (const cb of this.failureListeners) {
      try {
        cb(ev);
      } catch (err) {
        this.warn('failure_listener', err, {});
      }
    }
  }

  /** I/O errors are counted as drops; logged at most once per 10 s per kind (with a suppressed count). */
  warn(kind: string, e: unknown, fields: Record<string, unknown>): void {
    const err = e as { message?: string; code?: string };
    this.warnings.log('warn', kind, { ...fields, kind, err: err?.message, code: err?.code }, 'data path I/O error');
  }
}
