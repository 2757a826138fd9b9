/**
 * One gossip node: the SWIM membership state machine (memberlist state.go, split up). This file
 * owns the member table and the rules by which alive / suspect / dead messages change it:
 *
 *   - every message names an incarnation; a message older than what we know changes nothing
 *     (stale and replayed messages are counted and ignored);
 *   - `alive` with a higher incarnation replaces the record (and revives a dead/left member);
 *   - `suspect` starts a Lifeguard suspicion timer (suspicion.ts), re-gossiped once per new
 *     independent confirmation; the timer's expiry declares the member dead;
 *   - `dead` from the member itself means it left gracefully (state `left`, not `dead`);
 *   - any suspect/dead message about ourselves is refuted by re-announcing our record with a
 *     higher incarnation (and raises our awareness score: we may be the slow one);
 *   - dead and left members are reaped after `reapAfterMs`, leaving a tombstone so an old record
 *     replayed later does not resurrect them.
 *
 * The mechanisms live beside it: probe.ts (failure detection), dissemination.ts (piggyback and
 * gossip rounds), pushpull.ts (anti-entropy and join), awareness.ts, suspicion.ts,
 * broadcast-queue.ts. Packet path: transport → keyring.open → codec.decodePacket → primary
 * message (prober) → each broadcast (this file).
 */
import { Clock, TimerHandle } from '../clock';
import { Logger, LogLimiter, nullLogger } from '../log';
import { parseAddr } from './addr';
import { Awareness } from './awareness';
import { BroadcastQueue } from './broadcast-queue';
import {
  BC_ALIVE, BC_ALIVE_PART, BC_DEAD, BC_SUSPECT, BROADCAST_FRAMING, CodecError, CodecReason, decodeBroadcast, decodePacket,
  decodeStream, encodeAlive, encodeBroadcast, encodePacket, encodeStream, LIMITS, PKT_ACK, PKT_GOSSIP, PKT_INDIRECT_PING, PKT_NACK, PKT_PING,
  PrimaryMsg, RecordInterner, Broadcast, peekAlive, splitAlive, STREAM_ACK, STREAM_PING, STREAM_PUSH, STREAM_REQUEST,
} from './codec';
import { GossipTuning, suspicionMinMs } from './config';
import { Dissemination } from './dissemination';
import { ENVELOPE_OVERHEAD, Keyring } from './keyring';
import { MemberTable, NameRegistry, RecordStore, TableColumns } from './member-table';
import { Joiner, type JoinerOptions, type JoinState } from './join';
import { PartAssembler } from './part-assembler';
import { Prober } from './probe';
import { PushPull } from './pushpull';
import {
  EndpointRecord, MemberState, NodeRecord, PROTOCOL_VERSION, sameContent, ST_ALIVE, ST_DEAD, ST_LEFT, ST_SUSPECT, STATE_NAMES,
  withIncarnation,
} from './record';
import { Rng } from './rng';
import { GRACE_MS, STALL_MS, Suspicion } from './suspicion';
import { Transport } from './transport';

export type MemberEventType = 'join' | 'update' | 'suspect' | 'alive' | 'dead' | 'left' | 'reap';

/** A change in this node's view of another member. */
export interface MemberEvent {
  type: MemberEventType;
  name: string;
  /** The member's record after the change (before removal for `reap`). */
  record: NodeRecord;
  /** The record before the change when it was replaced (`join` after death, `update`, `alive`). */
  previous?: NodeRecord;
}

export interface MemberInfo {
  name: string;
  state: MemberState;
  incarnation: number;
  /** Clock time (ms, the node's Clock) of the last state change. */
  changedAt: number;
  record: NodeRecord;
}

/** Reasons a received packet or stream message (or part of one) was dropped. */
export type GossipDropReason = CodecReason | 'bad_key' | 'wrong_target' | 'late_ack' | 'stale' | 'unexpected';

export interface GossipStats {
  packetsReceived: number;
  packetsSent: number;
  streamsReceived: number;
  streamsInitiated: number;
  streamErrors: number;
  refutations: number;
  /** Our current record sent straight to a member that suspected us (or declared us dead) with an
   *  incarnation we had already refuted: it missed the refutation's gossip. */
  reassertions: number;
  suspicionsStarted: number;
  deathsDeclared: number;
  /** Updates received again (same incarnation): normal gossip redundancy, not a drop. */
  duplicates: number;
  /** Records cut into parts that were still incomplete after `partRepairMs` and fetched whole. */
  partRepairs: number;
  drops: Record<GossipDropReason, number>;
}

export interface GossipNodeOptions {
  name: string;
  transport: Transport;
  keyring: Keyring;
  clock: Clock;
  tuning: GossipTuning;
  /** Underlay VXLAN endpoint "host:port". */
  underlay: string;
  vnis?: number[];
  endpoints?: EndpointRecord[];
  publicKey?: string;
  /** Seed addresses ("host:port"), tried while we know nobody else. */
  seeds?: string[];
  rng?: Rng;
  /** Shared name registry (simulator); default: one per node. */
  registry?: NameRegistry;
  /** Shared record interner (simulator); default: none. */
  interner?: RecordInterner;
  /** First incarnation; use wall-clock seconds in the agent so a restarted node outranks its old self. */
  initialIncarnation?: number;
  tableCapacity?: number;
  /** Preallocated member-table storage (simulator). */
  tableColumns?: TableColumns;
  /** Shared record store (simulator). */
  recordStore?: RecordStore;
  logger?: Logger;
  /** Join retry schedule (join.ts). */
  join?: JoinerOptions;
}

const NO_DROPS = (): Record<GossipDropReason, number> => ({
  truncated: 0, oversized: 0, bad_length: 0, bad_version: 0, bad_type: 0, bad_value: 0, trailing: 0,
  bad_key: 0, wrong_target: 0, late_ack: 0, stale: 0, unexpected: 0,
});

export class GossipNode {
  readonly name: string;
  readonly clock: Clock;
  readonly tuning: GossipTuning;
  readonly transport: Transport;
  readonly keyring: Keyring;
  readonly rng: Rng;
  readonly table: MemberTable;
  readonly queue: BroadcastQueue;
  readonly awareness: Awareness;
  readonly log: Logger;
  readonly interner?: RecordInterner;
  readonly stats: GossipStats;
  seeds: string[];
  /** Our own current record. */
  self: NodeRecord;
  leaving = false;
  running = false;

  private readonly suspicions = new Map<string, Suspicion>();
  /** When we last re-sent our record to a member that missed our refutation (`reassert`). */
  private readonly reasserted = new Map<string, number>();
  /** The broadcast being applied (its bytes are re-gossiped as is, copied only if queued). */
  private rawBuf: Uint8Array | null = null;
  private rawStart = 0;
  private rawEnd = 0;
  private readonly tombstones = new Map<string, { incarnation: number; at: number }>();
  private readonly listeners: ((ev: MemberEvent) => void)[] = [];
  private reapTimer: TimerHandle | null = null;
  readonly prober: Prober;
  readonly dissemination: Dissemination;
  readonly pushPull: PushPull;
  /** Joining (and staying joined) through the seeds on a fast schedule: `startJoining`. */
  readonly joiner: Joiner;
  /** Alive broadcasts arriving in parts (records larger than one packet). */
  readonly parts = new PartAssembler();
  /** Per member, how many `alive part` keys are queued (so a newer record retires the old parts). */
  private readonly queuedParts = new Map<string, number>();
  /** Set while applying a record reassembled from parts (its parts are already queued for relay). */
  private fromParts = false;
  /** Warnings about hosts whose packets no cluster key of ours opens (one per host per 30 s). */
  private readonly keyWarnings: LogLimiter;
  /**
   * Largest broadcast queued, bytes: one alone in a gossip-only packet, sealed, fills at most
   * `packetBudget` (envelope + version + type + count + framing). Larger records go in parts.
   */
  readonly maxBroadcast: number;
  /** Size of each part of a record cut into parts: leaves `PART_ROOM` so parts also ride on probes. */
  readonly partSize: number;

  constructor(o: GossipNodeOptions) {
    this.name = o.name;
    this.clock = o.clock;
    this.tuning = o.tuning;
    this.transport = o.transport;
    this.keyring = o.keyring;
    this.rng = o.rng ?? Math.random;
    this.log = o.logger ?? nullLogger;
    this.interner = o.interner;
    this.seeds = o.seeds ?? [];
    this.stats = {
      packetsReceived: 0, packetsSent: 0, streamsReceived: 0, streamsInitiated: 0, streamErrors: 0,
      refutations: 0, reassertions: 0, suspicionsStarted: 0, deathsDeclared: 0, duplicates: 0, partRepairs: 0, drops: NO_DROPS(),
    };
    this.self = {
      name: o.name,
      incarnation: o.initialIncarnation ?? 0,
      protocol: PROTOCOL_VERSION,
      gossip: o.transport.address,
      underlay: o.underlay,
      vnis: [...(o.vnis ?? [])].sort((a, b) => a - b),
      endpoints: o.endpoints ?? [],
      publicKey: o.publicKey ?? '',
    };
    this.maxBroadcast = this.tuning.packetBudget - ENVELOPE_OVERHEAD - 3 - BROADCAST_FRAMING;
    this.partSize = Math.max(256, this.maxBroadcast - PART_ROOM);
    this.aliveBroadcasts(this.self); // validates our own record early (throws RangeError)
    this.table = new MemberTable(o.registry ?? new NameRegistry(), o.tableCapacity ?? 16, o.tableColumns, o.recordStore);
    this.table.add(this.self, ST_ALIVE, this.clock.now());
    this.queue = new BroadcastQueue(this.tuning.retransmitMult, () => this.table.live);
    this.awareness = new Awareness(this.tuning.awarenessMaxMultiplier);
    this.prober = new Prober(this);
    this.dissemination = new Dissemination(this);
    this.pushPull = new PushPull(this);
    this.joiner = new Joiner(this, o.join);
    this.keyWarnings = new LogLimiter(this.log, { clock: this.clock, intervalMs: 30_000, maxKeys: 256 });
  }

  /** Subscribes to member events. */
  on(fn: (ev: MemberEvent) => void): void {
    this.listeners.push(fn);
  }

  private emit(type: MemberEventType, record: NodeRecord, previous?: NodeRecord): void {
    if (this.listeners.length === 0) return;
    const ev: MemberEvent = { type, name: record.name, record, previous };
    for (const fn of this.listeners) fn(ev);
  }

  /** Starts receiving and the periodic probe / gossip / push-pull / reap timers (randomly phased). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.transport.listen({
      onPacket: (from, data) => this.onPacket(from, data),
      onRequest: (from, data, reply) => this.onRequest(from, data, reply),
    });
    this.prober.start();
    this.dissemination.start();
    this.pushPull.start();
    const reapEvery = Math.max(1000, Math.min(this.tuning.reapAfterMs / 4, 30_000));
    this.reapTimer = this.clock.setTimer(this.rng() * reapEvery, () => this.reapTick(reapEvery));
  }

  /**
   * Joins through `seeds` (default: `this.seeds`) now and keeps retrying on the Joiner's schedule
   * (1 s, 2 s, 4 s … 10 s, with jitter) while alone; while joined, re-contacts seeds that are not
   * live members. `joinState()` says where it stands.
   */
  startJoining(): void {
    this.joiner.start();
  }

  joinState(): JoinState {
    return this.joiner.state();
  }

  /** Joins via the seeds once: a push-pull exchange with each; `cb` gets how many answered. */
  join(seeds: string[], cb?: (contacted: number) => void): void {
    this.pushPull.join(seeds, cb);
  }

  /**
   * Graceful leave: marks ourselves `left`, gossips it for `leavePropagateMs`, then calls `cb`.
   * The caller then calls `shutdown()`. Others show us as `left`, not `dead`.
   */
  leave(cb?: () => void): void {
    if (this.leaving) {
      cb?.();
      return;
    }
    this.leaving = true;
    this.deadNode(this.name, this.self.incarnation, this.name);
    this.dissemination.flush();
    this.clock.setTimer(this.tuning.leavePropagateMs, () => cb?.());
  }

  /** Stops timers and the transport. No leave message (that is `leave`). */
  shutdown(): void | Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.prober.stop();
    this.dissemination.stop();
    this.pushPull.stop();
    this.joiner.stop();
    this.reapTimer?.cancel();
    for (const s of this.suspicions.values()) s.cancel();
    this.suspicions.clear();
    this.queue.reset();
    return this.transport.close();
  }

  /** Changes what we announce (VNIs, endpoints, public key): bumps our incarnation and gossips it. */
  updateLocal(change: Partial<Pick<NodeRecord, 'vnis' | 'endpoints' | 'publicKey' | 'underlay' | 'sections'>>): void {
    const next: NodeRecord = {
      ...this.self,
      ...change,
      vnis: change.vnis ? [...change.vnis].sort((a, b) => a - b) : this.self.vnis,
      incarnation: this.self.incarnation + 1,
    };
    if (sameContent(next, this.self)) return;
    const bcs = this.aliveBroadcasts(next); // throws RangeError on an unencodable record
    this.setSelf(next, bcs);
  }

  private setSelf(r: NodeRecord, bcs = this.aliveBroadcasts(r)): void {
    this.self = r;
    const slot = this.table.find(this.name);
    this.table.setRecord(slot, r);
    this.table.incarnation[slot] = r.incarnation;
    this.queueAliveBroadcasts(this.name, bcs);
  }

  /** Record `r` as the broadcasts that carry it: one, or parts when larger than `maxBroadcast`. */
  aliveBroadcasts(r: NodeRecord, raw?: Uint8Array): Uint8Array[] {
    const full = raw ?? encodeAlive(r);
    return full.length <= this.maxBroadcast ? [full] : splitAlive(r.name, r.incarnation, full, this.partSize);
  }

  /** Queues the broadcasts of member `name`'s record, retiring its older alive or parts. */
  private queueAliveBroadcasts(name: string, bcs: Uint8Array[]): void {
    const old = this.queuedParts.get(name) ?? 0;
    for (let i = bcs.length === 1 ? 0 : bcs.length; i < old; i++) this.queue.remove(partKey(name, i));
    if (bcs.length === 1) {
      this.queuedParts.delete(name);
      this.queue.push(name, bcs[0]);
      return;
    }
    this.queue.remove(name);
    for (let i = 0; i < bcs.length; i++) this.queue.push(partKey(name, i), bcs[i], undefined, PART_TRANSMIT_MULT);
    this.queuedParts.set(name, bcs.length);
  }

  /** Queues record `a` for gossip (the received bytes when it was just received whole). */
  private queueAlive(a: NodeRecord): void {
    if (this.fromParts) return; // its parts are queued as they arrived
    const raw = this.rawBuf ? this.rawBuf.slice(this.rawStart, this.rawEnd) : undefined;
    try {
      this.queueAliveBroadcasts(a.name, this.aliveBroadcasts(a, raw));
    } catch {
      this.drop('oversized'); // cannot be re-gossiped within the packet budget; push-pull still carries it
    }
  }

  // -------------------------------------------------------------------------------------------
  // Views

  /** Number of alive + suspect members (including ourselves). */
  get liveMembers(): number {
    return this.table.live;
  }

  member(name: string): MemberInfo | null {
    const s = this.table.find(name);
    return s < 0 ? null : this.info(s);
  }

  members(): MemberInfo[] {
    const out: MemberInfo[] = [];
    for (let s = 0; s < this.table.count; s++) out.push(this.info(s));
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private info(s: number): MemberInfo {
    const t = this.table;
    return { name: t.name(s), state: STATE_NAMES[t.state[s]], incarnation: t.incarnation[s], changedAt: t.changedAt[s], record: t.record(s) };
  }

  /**
   * Smoothed round-trip time to each alive or suspect member, from direct probe acks (metrics:
   * `vxmesh_peer_rtt_seconds`). Members never acked directly have no entry.
   */
  *rtts(): Iterable<{ peer: string; seconds: number }> {
    for (const [name, ms] of this.prober.rttMs) {
      const st = this.stateOf(name);
      if (st === ST_ALIVE || st === ST_SUSPECT) yield { peer: name, seconds: ms / 1000 };
    }
  }

  /** State code of `name` in our view, or −1 when unknown. */
  stateOf(name: string): number {
    const s = this.table.find(name);
    return s < 0 ? -1 : this.table.state[s];
  }

  drop(reason: GossipDropReason): void {
    this.stats.drops[reason]++;
  }

  // -------------------------------------------------------------------------------------------
  // Sending

  /** Seals and sends `msg` to `to`, piggybacking queued updates up to the packet budget. */
  send(to: string, msg: PrimaryMsg, oversizeAlone = false, first?: Uint8Array): void {
    const budget = this.tuning.packetBudget - ENVELOPE_OVERHEAD - primarySize(msg) - 1 - (first ? first.length + BROADCAST_FRAMING : 0);
    const bcs = this.queue.take(budget, 2, oversizeAlone);
    if (first) bcs.unshift(first);
    this.sendRaw(to, msg, bcs);
  }

  sendRaw(to: string, msg: PrimaryMsg, bcs: Uint8Array[]): void {
    const plain = encodePacket(msg, bcs);
    this.stats.packetsSent++;
    this.transport.sendPacket(to, this.keyring.seal(plain));
  }

  /** Up to `k` distinct random members other than us and `exclude`; alive/suspect, plus members
   *  dead for less than `deadWithinMs` when given. */
  randomMembers(k: number, exclude: string | null, deadWithinMs = -1): number[] {
    const t = this.table;
    const out: number[] = [];
    const n = t.count;
    const now = this.clock.now();
    for (let tries = 0; tries < 3 * n && out.length < k; tries++) {
      const s = Math.floor(this.rng() * n);
      const st = t.state[s];
      if (st === ST_DEAD || st === ST_LEFT) {
        if (deadWithinMs < 0 || now - t.changedAt[s] > deadWithinMs) continue;
      }
      const name = t.record(s).name;
      if (name === this.name || name === exclude || out.includes(s)) continue;
      out.push(s);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Receiving

  private onPacket(from: string, data: Uint8Array): void {
    if (!this.running) return;
    this.stats.packetsReceived++;
    if (data.length > LIMITS.maxPacket + ENVELOPE_OVERHEAD) return this.drop('oversized');
    const plain = this.keyring.open(data, LIMITS.maxPacket);
    if (!plain) return this.unknownKey(from);
    let pkt;
    try {
      pkt = decodePacket(plain);
    } catch (e) {
      if (e instanceof CodecError) return this.drop(e.reason);
      throw e;
    }
    const m = pkt.msg;
    switch (m.type) {
      case PKT_PING: this.prober.onPing(from, m); break;
      case PKT_INDIRECT_PING: this.prober.onIndirectPing(from, m); break;
      case PKT_ACK: this.prober.onAck(m.seq); break;
      case PKT_NACK: this.prober.onNack(m.seq); break;
      default: break;
    }
    const t = this.table;
    for (let i = 0; i < pkt.bcStarts.length; i++) {
      const start = pkt.bcStarts[i];
      const end = pkt.bcEnds[i];
      if (plain[start] === BC_ALIVE) {
        // Fast path: most alive messages are duplicates; recognise them without decoding.
        const peek = peekAlive(plain, start, end);
        if (peek && peek.name !== this.name) {
          const s = t.find(peek.name);
          if (s >= 0 && peek.incarnation <= t.incarnation[s]) {
            if (peek.incarnation === t.incarnation[s]) this.stats.duplicates++;
            else this.drop('stale');
            continue;
          }
        }
      }
      let bc;
      try {
        bc = decodeBroadcast(plain, start, end, this.interner);
      } catch (e) {
        if (e instanceof CodecError) {
          this.drop(e.reason);
          continue;
        }
        throw e;
      }
      if (bc.kind === BC_ALIVE_PART) {
        this.onAlivePart(bc.name, bc.incarnation, bc.part, bc.parts, bc.data, plain.subarray(start, end));
        continue;
      }
      this.rawBuf = plain;
      this.rawStart = start;
      this.rawEnd = end;
      if (bc.kind === BC_ALIVE) this.aliveNode(bc.record);
      else if (bc.kind === BC_SUSPECT) this.suspectNode(bc.name, bc.incarnation, bc.from);
      else this.deadNode(bc.name, bc.incarnation, bc.from);
      this.rawBuf = null;
    }
  }

  /**
   * One part of a record too large for a packet: stale parts are dropped at once; a new part is
   * queued for relay (gossiped on like any update) and, once all parts are in, the reassembled
   * record is applied as an `alive` message.
   */
  private onAlivePart(name: string, incarnation: number, part: number, parts: number, data: Uint8Array, raw: Uint8Array): void {
    const t = this.table;
    const s = t.find(name);
    if (s >= 0 ? incarnation <= t.incarnation[s] : (this.tombstones.get(name)?.incarnation ?? -1) >= incarnation) {
      if (s >= 0 && incarnation === t.incarnation[s]) this.stats.duplicates++;
      else this.drop('stale');
      return;
    }
    const started = this.parts.pendingIncarnation(name) !== incarnation;
    const outcome = this.parts.add(name, incarnation, part, parts, data, this.clock.now());
    if (started && outcome === 'stored') this.scheduleRepair(name, incarnation);
    if (outcome === 'duplicate') {
      this.stats.duplicates++;
      return;
    }
    if (outcome === 'stale') return this.drop('stale');
    if (outcome === 'mismatch') return this.drop('bad_value');
    if (outcome === 'dropped') return this.drop('oversized');
    if (name !== this.name && raw.length <= this.maxBroadcast) {
      this.queue.push(partKey(name, part), raw.slice(), undefined, PART_TRANSMIT_MULT);
      if (parts > (this.queuedParts.get(name) ?? 0)) this.queuedParts.set(name, parts);
    }
    if (outcome !== 'complete') return;
    const full = this.parts.completed!;
    this.parts.completed = null;
    let bc;
    try {
      bc = decodeBroadcast(full, 0, full.length, this.interner);
    } catch (e) {
      if (e instanceof CodecError) return this.drop(e.reason);
      throw e;
    }
    if (bc.kind !== BC_ALIVE || bc.record.name !== name || bc.record.incarnation !== incarnation) return this.drop('bad_value');
    this.fromParts = true;
    try {
      this.aliveNode(bc.record);
    } finally {
      this.fromParts = false;
    }
  }

  /**
   * A record still incomplete `partRepairMs` after its first part is fetched whole: push-pull
   * with the member itself when we know its address, else with a random live member; repeated
   * every `partRepairMs` while it stays incomplete (the partial record expires after a minute).
   */
  private scheduleRepair(name: string, incarnation: number): void {
    this.clock.setTimer(this.tuning.partRepairMs, () => {
      if (!this.running || this.parts.pendingIncarnation(name) !== incarnation) return;
      this.stats.partRepairs++;
      this.scheduleRepair(name, incarnation); // again while still incomplete (the exchange may fail)
      const s = this.table.find(name);
      const st = s >= 0 ? this.table.state[s] : -1;
      if (s >= 0 && (st === ST_ALIVE || st === ST_SUSPECT)) {
        this.pushPull.exchange(this.table.record(s).gossip, false);
        return;
      }
      const [slot] = this.randomMembers(1, null);
      if (slot !== undefined) this.pushPull.exchange(this.table.record(slot).gossip, false);
    });
  }

  /**
   * A packet or stream message from `from` that no cluster key of ours opens: counted (`bad_key`)
   * and logged at warn, at most once per host per 30 s (with how many were suppressed), naming
   * the member when its gossip address is known.
   */
  private unknownKey(from: string): void {
    this.drop('bad_key');
    const host = parseAddr(from)?.host ?? from;
    const t = this.table;
    let member: string | undefined;
    for (let s = 0; s < t.count && member === undefined; s++) {
      if (t.record(s).gossip === from) member = t.record(s).name;
    }
    this.keyWarnings.log('warn', host, member ? { from, member } : { from }, `host ${host}${member ? ` (${member})` : ''} uses a cluster key we do not know: its gossip is dropped (check gossip.keyFile on both hosts)`);
  }

  /** The bytes of the broadcast being applied, or a fresh encoding of `b`. */
  private rawOr(b: Broadcast): Uint8Array {
    return this.rawBuf ? this.rawBuf.slice(this.rawStart, this.rawEnd) : encodeBroadcast(b);
  }

  private onRequest(from: string, data: Uint8Array, reply: (d: Uint8Array | null) => void): void {
    if (!this.running) return reply(null);
    this.stats.streamsReceived++;
    if (data.length > LIMITS.maxStream + ENVELOPE_OVERHEAD) {
      this.drop('oversized');
      return reply(null);
    }
    const plain = this.keyring.open(data, LIMITS.maxStream);
    if (!plain) {
      this.unknownKey(from);
      return reply(null);
    }
    let msg;
    try {
      msg = decodeStream(plain, this.interner);
    } catch (e) {
      if (e instanceof CodecError) {
        this.drop(e.reason);
        return reply(null);
      }
      throw e;
    }
    if (msg.type === STREAM_PING) {
      if (msg.target !== this.name) {
        this.drop('wrong_target');
        return reply(null);
      }
      reply(this.keyring.seal(encodeStream({ type: STREAM_ACK })));
    } else if (msg.type === STREAM_REQUEST) {
      reply(this.keyring.seal(encodeStream(this.pushPull.onRequest(msg))));
    } else if (msg.type === STREAM_PUSH) {
      this.pushPull.merge(msg.entries);
      reply(this.keyring.seal(encodeStream({ type: STREAM_PUSH, entries: [] })));
    } else {
      this.drop('unexpected');
      reply(null);
    }
  }

  // -------------------------------------------------------------------------------------------
  // State transitions

  /** Applies an `alive` record (from gossip or push-pull). `raw` = its encoded broadcast, re-gossiped as is. */
  aliveNode(a: NodeRecord): void {
    if (a.name === this.name) {
      if (this.leaving) return;
      if (a.incarnation < this.self.incarnation || (a.incarnation === this.self.incarnation && sameContent(a, this.self))) return;
      // Someone announces a newer or different "us": out-rank it.
      this.refute(a.incarnation);
      return;
    }
    const t = this.table;
    const now = this.clock.now();
    let slot = t.find(a.name);
    if (slot < 0) {
      const tomb = this.tombstones.get(a.name);
      if (tomb && a.incarnation <= tomb.incarnation) return this.drop('stale');
      if (tomb) this.tombstones.delete(a.name);
      slot = t.add(a, ST_ALIVE, now);
      // Insert at a random probe position (a new member must not wait a whole round).
      t.swap(slot, Math.floor(this.rng() * t.count));
      this.parts.discard(a.name, a.incarnation);
      this.queueAlive(a);
      this.emit('join', a);
      return;
    }
    if (a.incarnation <= t.incarnation[slot]) {
      if (a.incarnation === t.incarnation[slot]) this.stats.duplicates++;
      else this.drop('stale');
      return;
    }
    const prev = t.record(slot);
    const prevState = t.state[slot];
    t.setRecord(slot, a);
    t.incarnation[slot] = a.incarnation;
    this.cancelSuspicion(a.name);
    t.setState(slot, ST_ALIVE, now);
    this.parts.discard(a.name, a.incarnation);
    this.queueAlive(a);
    if (prevState === ST_DEAD || prevState === ST_LEFT) this.emit('join', a, prev);
    else if (prevState === ST_SUSPECT) this.emit('alive', a, prev);
    else if (!sameContent(prev, a)) this.emit('update', a, prev);
  }

  /** Applies a `suspect` message. */
  suspectNode(name: string, incarnation: number, from: string): void {
    const t = this.table;
    const slot = t.find(name);
    if (slot < 0) return;
    if (incarnation < t.incarnation[slot]) {
      if (name === this.name) this.reassert(from);
      return this.drop('stale');
    }
    const sus = this.suspicions.get(name);
    if (sus) {
      if (sus.confirm(from)) this.queue.push(name, this.rawOr({ kind: BC_SUSPECT, name, incarnation, from }));
      return;
    }
    if (t.state[slot] !== ST_ALIVE) return;
    if (name === this.name) {
      this.refute(incarnation);
      this.awareness.applyDelta(1);
      this.reassert(from); // the suspecter gets the refutation straight away, not only by gossip
      return;
    }
    this.queue.push(name, this.rawOr({ kind: BC_SUSPECT, name, incarnation, from }));
    t.incarnation[slot] = incarnation;
    t.setState(slot, ST_SUSPECT, this.clock.now());
    this.stats.suspicionsStarted++;
    const n = t.live;
    let k = this.tuning.suspicionConfirmations;
    if (n - 2 < k) k = Math.max(0, n - 2);
    const min = suspicionMinMs(this.tuning, n);
    const max = this.tuning.suspicionMaxTimeoutMult * min;
    this.suspicions.set(name, new Suspicion(from, k, min, max, this.clock, () => {
      this.suspicions.delete(name);
      const s = t.find(name);
      if (s >= 0 && t.state[s] === ST_SUSPECT && t.incarnation[s] === incarnation) this.lastCall(name, incarnation, t.record(s).gossip);
    }));
    this.emit('suspect', t.record(slot));
  }

  /** Applies a `dead` message (`from === name`: the member left gracefully). */
  deadNode(name: string, incarnation: number, from: string): void {
    const t = this.table;
    const slot = t.find(name);
    if (slot < 0) return;
    if (incarnation < t.incarnation[slot]) {
      if (name === this.name) this.reassert(from);
      return this.drop('stale');
    }
    if (t.isGone(slot)) return;
    if (name === this.name && !this.leaving) {
      this.refute(incarnation);
      this.reassert(from);
      return;
    }
    this.cancelSuspicion(name);
    this.queue.push(name, this.rawOr({ kind: BC_DEAD, name, incarnation, from }));
    t.incarnation[slot] = incarnation;
    const left = from === name;
    t.setState(slot, left ? ST_LEFT : ST_DEAD, this.clock.now());
    this.emit(left ? 'left' : 'dead', t.record(slot));
  }

  /**
   * The suspicion timer of `name` expired: before the verdict, the suspect is told once more
   * (suspect from us, straight to it) and gets a probe timeout to answer. A live member answers with
   * its current record (`reassert`), which cancels the verdict: it refuted long ago and only we
   * missed it (gossip reaches a member a few times at most), or it never heard of the suspicion.
   * A dead member costs one packet and the probe timeout more before it is declared dead. A verdict
   * timer that fires late after a stall waits GRACE_MS more for the answer in the socket (suspicion.ts).
   */
  private lastCall(name: string, incarnation: number, addr: string): void {
    const t = this.table;
    const still = (): boolean => {
      const s = t.find(name);
      return this.running && s >= 0 && t.state[s] === ST_SUSPECT && t.incarnation[s] === incarnation;
    };
    this.sendRaw(addr, { type: PKT_GOSSIP }, [encodeBroadcast({ kind: BC_SUSPECT, name, incarnation, from: this.name })]);
    const wait = this.awareness.scaleTimeout(this.tuning.probeTimeoutMs);
    const due = this.clock.now() + wait;
    const verdict = (): void => {
      if (!still()) return;
      this.stats.deathsDeclared++;
      this.deadNode(name, incarnation, this.name);
    };
    this.clock.setTimer(wait, () => {
      if (still() && this.clock.now() - due > STALL_MS) this.clock.setTimer(GRACE_MS, verdict);
      else verdict();
    });
  }

  /**
   * Member `from` suspects us (or declared us dead): right after our refutation, or with an
   * incarnation we already refuted, so it missed the refutation, which reaches a member only by gossip, a few transmits to random members
   * (λ·ceil(log10(N+1)): 4 in a cluster of 6, so with 10% loss one member misses all of them in a
   * few % of refutations), and its suspicion timer would declare us dead although we answer its
   * probes. Our current record goes straight to it. The suspecter's probes carry its suspicion to
   * us (the Lifeguard buddy system, probe.ts), so this happens at every probe of us while it
   * suspects us; at most once per member per probe interval (replayed messages cannot make us send
   * more), never while leaving.
   */
  private reassert(from: string): void {
    if (this.leaving || from === this.name) return;
    const t = this.table;
    const s = t.find(from);
    if (s < 0 || t.isGone(s)) return;
    const now = this.clock.now();
    const last = this.reasserted.get(from);
    if (last !== undefined && now - last < this.tuning.probeIntervalMs) return;
    if (this.reasserted.size >= 2 * t.count + 16) this.reasserted.clear();
    this.reasserted.set(from, now);
    this.stats.reassertions++;
    const to = t.record(s).gossip;
    for (const bc of this.aliveBroadcasts(this.self)) this.sendRaw(to, { type: PKT_GOSSIP }, [bc]);
  }

  private refute(incarnation: number): void {
    this.stats.refutations++;
    this.setSelf(withIncarnation(this.self, Math.max(this.self.incarnation, incarnation) + 1));
  }

  private cancelSuspicion(name: string): void {
    const s = this.suspicions.get(name);
    if (s) {
      s.cancel();
      this.suspicions.delete(name);
    }
  }

  /** The incarnation below which a reaped member's records are rejected, or undefined. */
  tombstone(name: string): number | undefined {
    return this.tombstones.get(name)?.incarnation;
  }

  private reapTick(every: number): void {
    if (!this.running) return;
    this.reapTimer = this.clock.setTimer(every, () => this.reapTick(every));
    this.reap();
  }

  /** Removes members dead or left for longer than `reapAfterMs`; keeps tombstones. */
  reap(): void {
    const t = this.table;
    const now = this.clock.now();
    if (t.byState[ST_DEAD] + t.byState[ST_LEFT] > 0) {
      for (let s = t.count - 1; s >= 0; s--) {
        if (!t.isGone(s) || now - t.changedAt[s] < this.tuning.reapAfterMs) continue;
        const rec = t.record(s);
        this.tombstones.delete(rec.name);
        this.tombstones.set(rec.name, { incarnation: t.incarnation[s], at: now });
        t.remove(s);
        this.prober.forgetRtt(rec.name);
        this.parts.discard(rec.name);
        this.emit('reap', rec);
      }
    }
    for (const [name, tomb] of this.tombstones) {
      if (this.tombstones.size <= this.tuning.maxTombstones && now - tomb.at < this.tuning.tombstoneMs) break;
      this.tombstones.delete(name);
    }
  }
}

/** Bytes a part leaves free under `maxBroadcast` for a probe's own message (ping with its two names). */
const PART_ROOM = 160;

/**
 * Parts are sent this many times more often than other updates: a record completes only when every
 * one of its parts reached a node, so each part needs a lower miss rate (what remains, the part
 * repair fetches).
 */
const PART_TRANSMIT_MULT = 2;

/** Queue key of part `i` of a member's record (distinct from the member's own key, its name). */
function partKey(name: string, i: number): string {
  return `${name}\u0000${i}`;
}

function primarySize(m: PrimaryMsg): number {
  switch (m.type) {
    case PKT_PING: return 2 + 4 + 2 + m.target.length * 3 + 2 + m.source.length * 3;
    case PKT_INDIRECT_PING: return 2 + 4 + 2 + m.target.length * 3 + 19 + 1;
    case PKT_ACK:
    case PKT_NACK: return 6;
    default: return 2;
  }
}
