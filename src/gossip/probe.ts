/**
 * SWIM failure detection (memberlist probeNode): every probe interval the next member in the
 * randomized round-robin order is pinged. No ack within the probe timeout → `indirectChecks`
 * random members are asked to ping it for us (and to answer with a nack if they cannot reach it
 * either), and in parallel a ping is sent over the stream transport (memberlist's TCP fallback:
 * it gets through packet loss that eats UDP probes). No ack by the end of the probe interval →
 * the member is suspected.
 *
 * Lifeguard local health: a successful probe lowers our awareness score; a failed probe raises
 * it by the number of nacks we did NOT get (helpers that did not even answer suggest that we are
 * the slow/lossy side). Interval and timeout are multiplied by (score + 1).
 *
 * A probe whose end timer fires late by more than STALL_MS (this process was stopped or starved;
 * the event loop runs due timers before it reads the ack waiting in the socket) waits GRACE_MS
 * more, once, before its verdict (suspicion.ts explains the constants).
 */
import { TimerHandle } from '../clock';
import { BC_SUSPECT, CodecError, decodeStream, encodeBroadcast, encodeStream, IndirectPingMsg, LIMITS, PingMsg, PKT_ACK, PKT_INDIRECT_PING, PKT_NACK, PKT_PING, STREAM_ACK, STREAM_PING } from './codec';
import { ST_SUSPECT } from './record';
import { GRACE_MS, STALL_MS } from './suspicion';
import type { GossipNode } from './swim';

interface AckHandler {
  onAck(): void;
  onNack(): void;
}

export class Prober {
  private seq: number;
  private readonly handlers = new Map<number, AckHandler>();
  private index = 0;
  private timer: TimerHandle | null = null;
  /** Probes started / failed (target suspected). */
  probes = 0;
  failures = 0;
  /** Indirect ping requests sent (direct ack missing). */
  indirectRequests = 0;

  constructor(private readonly node: GossipNode) {
    this.seq = Math.floor(node.rng() * 0x7fffffff);
  }

  start(): void {
    const first = this.node.rng() * this.node.tuning.probeIntervalMs;
    this.timer = this.node.clock.setTimer(first, () => this.tick());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
    this.handlers.clear();
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  private tick(): void {
    const n = this.node;
    if (!n.running) return;
    this.timer = n.clock.setTimer(n.awareness.scaleTimeout(n.tuning.probeIntervalMs), () => this.tick());
    if (n.leaving) return;
    const t = n.table;
    for (let checked = 0; checked < t.count; checked++) {
      if (this.index >= t.count) {
        t.shuffle(n.rng);
        this.index = 0;
      }
      const slot = this.index++;
      if (t.isGone(slot) || t.record(slot).name === n.name) continue;
      this.probe(slot);
      return;
    }
  }

  /** Probes the member in `slot` now. */
  probe(slot: number): void {
    const n = this.node;
    const t = n.table;
    const target = t.record(slot);
    const name = target.name;
    const addr = target.gossip;
    const incarnation = t.incarnation[slot];
    const seq = this.nextSeq();
    const interval = n.awareness.scaleTimeout(n.tuning.probeIntervalMs);
    const timeout = n.awareness.scaleTimeout(n.tuning.probeTimeoutMs);
    let acked = false;
    let nacks = 0;
    let expectedNacks = 0;
    let streamAck = false;
    let indirectSent = false;
    const sentAt = n.clock.now();
    this.probes++;
    this.handlers.set(seq, {
      onAck: () => {
        if (acked) return;
        acked = true;
        // Only a direct ack (before any indirect request went out) measures the path to the member.
        if (!indirectSent) this.recordRtt(name, n.clock.now() - sentAt);
        this.handlers.delete(seq);
        indirectTimer.cancel();
        endTimer.cancel();
        n.awareness.applyDelta(-1);
      },
      onNack: () => {
        nacks++;
      },
    });
    // Lifeguard buddy system: a suspect member hears of it with our ping, so it refutes (or, if it
    // already did and we missed it, sends us its current record) without waiting for gossip.
    const buddy = t.state[slot] === ST_SUSPECT ? encodeBroadcast({ kind: BC_SUSPECT, name, incarnation, from: n.name }) : undefined;
    n.send(addr, { type: PKT_PING, seq, target: name, source: n.name }, false, buddy);
    const indirectTimer = n.clock.setTimer(timeout, () => {
      if (acked || !n.running) return;
      indirectSent = true;
      for (const h of n.randomMembers(n.tuning.indirectChecks, name)) {
        expectedNacks++;
        this.indirectRequests++;
        n.send(t.record(h).gossip, { type: PKT_INDIRECT_PING, seq, target: name, targetAddr: addr, nack: true });
      }
      this.streamPing(addr, name, interval - timeout, () => {
        streamAck = true;
      });
    });
    const verdict = (): void => {
      this.handlers.delete(seq);
      if (acked || !n.running) return;
      if (streamAck) return; // reachable over the stream path: UDP trouble, not a failure
      this.failures++;
      n.awareness.applyDelta(expectedNacks > 0 ? expectedNacks - nacks : 1);
      n.suspectNode(name, incarnation, n.name);
    };
    let endTimer = n.clock.setTimer(interval, () => {
      if (!acked && n.clock.now() - (sentAt + interval) > STALL_MS) {
        endTimer = n.clock.setTimer(GRACE_MS, verdict); // stalled: read the pending acks first
        return;
      }
      verdict();
    });
  }

  /**
   * Smoothed round-trip time per member from direct probe acks (milliseconds; TCP-style EWMA,
   * srtt += (sample − srtt) / 8), read by metrics as `vxmesh_peer_rtt_seconds`. Bounded by the
   * member table: entries of reaped members are removed with `forgetRtt`.
   */
  readonly rttMs = new Map<string, number>();

  private recordRtt(name: string, sample: number): void {
    if (!(sample >= 0) || !Number.isFinite(sample)) return;
    const prev = this.rttMs.get(name);
    this.rttMs.set(name, prev === undefined ? sample : prev + (sample - prev) / 8);
  }

  /** Drops the RTT estimate of a member that is gone. */
  forgetRtt(name: string): void {
    this.rttMs.delete(name);
  }

  /** Pings over the stream transport; calls `onAck` if the member answers within `timeoutMs`. */
  private streamPing(addr: string, target: string, timeoutMs: number, onAck: () => void): void {
    const n = this.node;
    if (timeoutMs <= 0) return;
    n.transport.request(addr, n.keyring.seal(encodeStream({ type: STREAM_PING, target })), timeoutMs, (err, data) => {
      if (err || !data || !n.running) return;
      const plain = n.keyring.open(data, LIMITS.maxPacket);
      if (!plain) return n.drop('bad_key');
      try {
        if (decodeStream(plain).type === STREAM_ACK) onAck();
      } catch (e) {
        if (e instanceof CodecError) return n.drop(e.reason);
        throw e;
      }
    });
  }

  onPing(from: string, m: PingMsg): void {
    const n = this.node;
    if (m.target !== n.name) return n.drop('wrong_target');
    n.send(from, { type: PKT_ACK, seq: m.seq });
  }

  /** Pings `m.target` on behalf of `from`; relays the ack, or a nack after the probe timeout. */
  onIndirectPing(from: string, m: IndirectPingMsg): void {
    const n = this.node;
    const seq = this.nextSeq();
    let done = false;
    this.handlers.set(seq, {
      onAck: () => {
        if (done) return;
        done = true;
        this.handlers.delete(seq);
        timer.cancel();
        n.send(from, { type: PKT_ACK, seq: m.seq });
      },
      onNack: () => {},
    });
    n.send(m.targetAddr, { type: PKT_PING, seq, target: m.target, source: n.name });
    const timer = n.clock.setTimer(n.tuning.probeTimeoutMs, () => {
      this.handlers.delete(seq);
      if (done || !n.running) return;
      done = true;
      if (m.nack) n.send(from, { type: PKT_NACK, seq: m.seq });
    });
  }

  onAck(seq: number): void {
    const h = this.handlers.get(seq);
    if (!h) return this.node.drop('late_ack');
    h.onAck();
  }

  onNack(seq: number): void {
    const h = this.handlers.get(seq);
    if (h) h.onNack();
  }
}
