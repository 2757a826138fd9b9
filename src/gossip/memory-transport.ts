/**
 * In-memory twin of the gossip transport (memberlist's MockTransport, wireguard-go's bindtest):
 * a `MemoryNetwork` connects any number of `MemoryTransport`s in one process and delivers packets
 * through the injected Clock, so everything is deterministic under a FakeClock and a seed.
 *
 * Impairments: random packet loss, base delay + uniform jitter, partitions (group ids: traffic
 * between different groups is dropped, streams time out), slow nodes (extra delay on everything a
 * slow node sends or receives, modelling an overloaded host), and nodes that are down (packets
 * vanish, streams are refused). Streams model TCP over the same lossy links: every lost
 * segment of the handshake costs a retransmission timeout (1 s, doubling), every lost data
 * segment 200 ms (doubling), so under loss a stream is slow rather than lost.
 */
import { Clock } from '../clock';
import { Rng } from './rng';
import { Transport, TransportHandler, TransportStats, newTransportStats, streamError } from './transport';

export interface MemoryNetworkOptions {
  clock: Clock;
  rng: Rng;
  /** Probability that a packet is lost, 0..1. */
  loss?: number;
  /** One-way base delay, ms. */
  delayMs?: number;
  /** Uniform extra delay 0..jitterMs, ms. */
  jitterMs?: number;
}

export class MemoryNetwork {
  readonly clock: Clock;
  private readonly rng: Rng;
  loss: number;
  delayMs: number;
  jitterMs: number;
  private readonly nodes = new Map<string, MemoryTransport>();
  private readonly group = new Map<string, number>();
  private readonly slow = new Map<string, number>();
  private readonly blocked = new Set<string>();
  /** Called for every packet delivered (tests record traffic to replay it later). */
  onDeliver: ((from: string, to: string, data: Uint8Array) => void) | null = null;
  /** Packets dropped by loss, partition, or because the destination is down. */
  readonly dropped = { loss: 0, partition: 0, down: 0 };

  constructor(opts: MemoryNetworkOptions) {
    this.clock = opts.clock;
    this.rng = opts.rng;
    this.loss = opts.loss ?? 0;
    this.delayMs = opts.delayMs ?? 0.5;
    this.jitterMs = opts.jitterMs ?? 0.5;
  }

  /** Creates (or re-creates after a restart) the transport at `address`. */
  attach(address: string): MemoryTransport {
    const t = new MemoryTransport(this, address);
    this.nodes.set(address, t);
    return t;
  }

  /** @internal */
  detach(t: MemoryTransport): void {
    if (this.nodes.get(t.address) === t) this.nodes.delete(t.address);
  }

  /** Puts `addresses` in partition group `id` (default group is 0). */
  partition(addresses: Iterable<string>, id: number): void {
    for (const a of addresses) this.group.set(a, id);
  }

  /** Removes all partitions. */
  heal(): void {
    this.group.clear();
  }

  /** Marks a node slow: everything it sends or receives takes `extraMs` longer (0 = normal). */
  setSlow(address: string, extraMs: number): void {
    if (extraMs > 0) this.slow.set(address, extraMs);
    else this.slow.delete(address);
  }

  /** Blocks (or unblocks) packets and streams between `a` and `b`, both directions. */
  blockLink(a: string, b: string, blocked = true): void {
    for (const k of [`${a}|${b}`, `${b}|${a}`]) {
      if (blocked) this.blocked.add(k);
      else this.blocked.delete(k);
    }
  }

  /** Delivers `data` to `to` as if sent by `from` (replay/forgery tests), after the usual delay. */
  inject(from: string, to: string, data: Uint8Array): void {
    this.clock.setTimer(this.latency(from, to), () => {
      const dst = this.nodes.get(to);
      if (dst && !dst.closed) dst.deliverPacket(from, data);
    });
  }

  private reachable(a: string, b: string): boolean {
    if (this.blocked.size > 0 && this.blocked.has(`${a}|${b}`)) return false;
    return (this.group.get(a) ?? 0) === (this.group.get(b) ?? 0);
  }

  private latency(from: string, to: string): number {
    let d = this.delayMs + (this.jitterMs > 0 ? this.rng() * this.jitterMs : 0);
    const sf = this.slow.get(from);
    if (sf) d += sf * (0.5 + this.rng());
    const st = this.slow.get(to);
    if (st) d += st * (0.5 + this.rng());
    return d;
  }

  /** @internal */
  sendPacket(from: MemoryTransport, to: string, data: Uint8Array): void {
    if (this.loss > 0 && this.rng() < this.loss) {
      this.dropped.loss++;
      return;
    }
    if (!this.reachable(from.address, to)) {
      this.dropped.partition++;
      return;
    }
    this.clock.setTimer(this.latency(from.address, to), () => {
      const dst = this.nodes.get(to);
      if (!dst || dst.closed) {
        this.dropped.down++;
        return;
      }
      this.onDeliver?.(from.address, to, data);
      dst.deliverPacket(from.address, data);
    });
  }

  /** Extra delay of one TCP segment under loss: retransmission timeouts until it gets through. */
  private retransmitDelay(rtoMs: number): number {
    let extra = 0;
    let rto = rtoMs;
    while (this.loss > 0 && this.rng() < this.loss && extra < 60_000) {
      extra += rto;
      rto *= 2;
    }
    return extra;
  }

  /** @internal */
  request(from: MemoryTransport, to: string, data: Uint8Array, timeoutMs: number, cb: (err: Error | null, reply?: Uint8Array) => void): void {
    let done = false;
    const finish = (err: Error | null, reply?: Uint8Array): void => {
      if (done) return;
      done = true;
      timer.cancel();
      if (!err && reply) {
        from.stats.streamBytesReceived += reply.length;
      }
      if (err) from.stats.streamErrors++;
      cb(err, reply);
    };
    const timer = this.clock.setTimer(timeoutMs, () => finish(streamError(`stream to ${to} timed out`, 'ETIMEDOUT')));
    if (!this.reachable(from.address, to)) return; // times out
    // SYN, SYN-ACK, then the request: two round trips' worth of one-way delays plus retransmissions.
    const connect = 2 * this.latency(from.address, to) + this.retransmitDelay(1000) + this.retransmitDelay(1000);
    this.clock.setTimer(connect + this.latency(from.address, to) + this.retransmitDelay(200), () => {
      const dst = this.nodes.get(to);
      if (!dst || dst.closed) {
        finish(streamError(`connect ${to}: connection refused`, 'ECONNREFUSED'));
        return;
      }
      dst.stats.streamBytesReceived += data.length;
      dst.deliverRequest(from.address, data, (reply) => {
        if (reply === null) {
          this.clock.setTimer(this.latency(to, from.address), () => finish(streamError(`stream to ${to} closed without reply`, 'ECLOSED')));
          return;
        }
        dst.stats.streamBytesSent += reply.length;
        if (!this.reachable(to, from.address)) return;
        this.clock.setTimer(this.latency(to, from.address) + this.retransmitDelay(200), () => finish(null, reply));
      });
    });
  }
}

export class MemoryTransport implements Transport {
  readonly stats: TransportStats = newTransportStats();
  private handler: TransportHandler | null = null;
  closed = false;

  constructor(private readonly net: MemoryNetwork, readonly address: string) {}

  listen(handler: TransportHandler): void {
    this.handler = handler;
  }

  sendPacket(to: string, data: Uint8Array): void {
    if (this.closed) return;
    this.stats.packetsSent++;
    this.stats.packetBytesSent += data.length;
    this.net.sendPacket(this, to, data);
  }

  request(to: string, data: Uint8Array, timeoutMs: number, cb: (err: Error | null, reply?: Uint8Array) => void): void {
    if (this.closed) {
      this.net.clock.setTimer(0, () => cb(new Error('transport closed')));
      return;
    }
    this.stats.streamsOpened++;
    this.stats.streamBytesSent += data.length;
    this.net.request(this, to, data, timeoutMs, (err, reply) => {
      if (this.closed) return;
      cb(err, reply);
    });
  }

  /** @internal */
  deliverPacket(from: string, data: Uint8Array): void {
    this.stats.packetsReceived++;
    this.stats.packetBytesReceived += data.length;
    this.handler?.onPacket(from, data);
  }

  /** @internal */
  deliverRequest(from: string, data: Uint8Array, reply: (d: Uint8Array | null) => void): void {
    if (!this.handler) {
      reply(null);
      return;
    }
    this.handler.onRequest(from, data, reply);
  }

  close(): void {
    this.closed = true;
    this.net.detach(this);
  }
}
