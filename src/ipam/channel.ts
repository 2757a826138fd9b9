/**
 * The lease channel seam: how a host announces its block leases and hears everyone else's.
 * `GossipLeaseChannel` (gossip-channel.ts) carries them in the gossip record; the in-memory twin
 * here connects hosts of one process with an optional propagation delay on a FakeClock, so the
 * simulator (test/sim/ipam-sim.test.ts) can lease concurrently, kill hosts and bring them back.
 */
import type { Clock } from '../clock';
import type { BlockLease, PeerLeases } from './leases';

export interface LeaseChannel {
  /** This host's node name. */
  readonly self: string;
  /** Replaces this host's announced leases. */
  publish(leases: BlockLease[]): void;
  /** Every other host's leases as last heard. */
  peers(): PeerLeases[];
  /** Called when what `peers()` returns may have changed. */
  onChange(cb: () => void): void;
}

interface HubNode {
  name: string;
  live: boolean;
  downSince: number;
  /** What others have heard (after the delay). */
  heard: BlockLease[];
  listeners: (() => void)[];
}

/** Connects MemoryLeaseChannels; `delayMs` is how long an announcement takes to reach others. */
export class MemoryLeaseHub {
  private readonly nodes = new Map<string, HubNode>();
  constructor(readonly clock: Clock, public delayMs = 0) {}

  channel(name: string): MemoryLeaseChannel {
    let n = this.nodes.get(name);
    if (!n) {
      n = { name, live: true, downSince: 0, heard: [], listeners: [] };
      this.nodes.set(name, n);
    }
    n.live = true;
    n.listeners = [];
    return new MemoryLeaseChannel(this, name);
  }

  /** Marks `name` dead (its leases stay visible, aging toward reclaim) or alive again. */
  setLive(name: string, live: boolean): void {
    const n = this.nodes.get(name);
    if (!n) return;
    n.live = live;
    if (!live) n.downSince = this.clock.now();
    this.notify(name);
  }

  /** @internal */
  publish(name: string, leases: BlockLease[]): void {
    const copy = leases.map((l) => ({ ...l }));
    const apply = () => {
      const n = this.nodes.get(name);
      if (!n) return;
      n.heard = copy;
      this.notify(name);
    };
    if (this.delayMs > 0) this.clock.setTimer(this.delayMs, apply);
    else apply();
  }

  /** @internal */
  peersOf(name: string): PeerLeases[] {
    const out: PeerLeases[] = [];
    for (const n of this.nodes.values()) {
      if (n.name === name) continue;
      out.push({ node: n.name, live: n.live, downForMs: n.live ? 0 : this.clock.now() - n.downSince, leases: n.heard });
    }
    return out;
  }

  /** @internal */
  listen(name: string, cb: () => void): void {
    this.nodes.get(name)?.listeners.push(cb);
  }

  private notify(except: string): void {
    for (const n of this.nodes.values()) if (n.name !== except && n.live) for (const cb of n.listeners) cb();
  }
}

export class MemoryLeaseChannel implements LeaseChannel {
  constructor(private readonly hub: MemoryLeaseHub, readonly self: string) {}
  publish(leases: BlockLease[]): void {
    this.hub.publish(this.self, leases);
  }
  peers(): PeerLeases[] {
    return this.hub.peersOf(this.self);
  }
  onChange(cb: () => void): void {
    this.hub.listen(this.self, cb);
  }
}
