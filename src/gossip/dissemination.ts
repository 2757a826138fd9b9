/**
 * Epidemic dissemination of membership updates (memberlist gossip()): besides riding on every
 * probe packet, pending updates are pushed every `gossipIntervalMs` to `gossipNodes` random
 * members (including members dead for less than `gossipToTheDeadMs`, so a wrongly declared
 * member hears about it and refutes). Each update is retired after its retransmit limit
 * (broadcast-queue.ts), so a quiet cluster sends nothing here.
 */
import { TimerHandle } from '../clock';
import { PKT_GOSSIP } from './codec';
import type { GossipNode } from './swim';

export class Dissemination {
  private timer: TimerHandle | null = null;
  rounds = 0;

  constructor(private readonly node: GossipNode) {}

  start(): void {
    const n = this.node;
    const every = n.tuning.gossipIntervalMs;
    this.timer = n.clock.setTimer(n.rng() * every, () => {
      this.timer = n.clock.setInterval(every, () => this.round());
      this.round();
    });
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** One gossip round now (also used to push a leave message out at once). */
  round(): void {
    const n = this.node;
    if (!n.running || n.queue.length === 0) return;
    this.rounds++;
    const targets = n.randomMembers(n.tuning.gossipNodes, null, n.tuning.gossipToTheDeadMs);
    for (const slot of targets) {
      if (n.queue.length === 0) break;
      n.send(n.table.record(slot).gossip, { type: PKT_GOSSIP }, true);
    }
  }

  /** Sends pending updates immediately (graceful leave). */
  flush(): void {
    this.round();
  }
}
