/**
 * Anti-entropy push-pull (memberlist pushPull / mergeState), over the stream transport.
 * Periodically (interval scaled with cluster size, config.ts) we exchange state with one random
 * member, so anything missed by gossip — a late joiner, a healed partition, a lost update — is
 * repaired. To keep big clusters cheap the exchange is digest-based:
 *
 *   1. request: our own full record + a digest (name, incarnation, state) of every member;
 *   2. reply:   full entries the peer knows better (or we lack) + the names it wants from us;
 *   3. push:    the full entries it asked for (only when it asked for any).
 *
 * Joining is the same exchange with the seeds. Every `reconnectIntervalMs` we also try one random
 * dead member (not a left one): after a partition heals, both sides meet again this way.
 * Merging follows memberlist: alive → alive message; left → dead-from-itself; dead or suspect →
 * suspect (a remote "dead" is only a reason to suspect; the member can still refute).
 */
import { TimerHandle } from '../clock';
import { decodeStream, DigestEntry, FullEntry, LIMITS, PushPullReply, PushPullRequest, STREAM_REPLY, STREAM_REQUEST, STREAM_PUSH, encodeStream, CodecError } from './codec';
import { pushPullIntervalFor } from './config';
import { ST_ALIVE, ST_DEAD, ST_LEFT, ST_SUSPECT } from './record';
import { streamError } from './transport';
import type { GossipNode } from './swim';

export class PushPull {
  private timer: TimerHandle | null = null;
  private reconnectTimer: TimerHandle | null = null;
  exchanges = 0;
  failures = 0;

  constructor(private readonly node: GossipNode) {}

  start(): void {
    const n = this.node;
    const first = n.rng() * pushPullIntervalFor(n.tuning, n.table.live);
    this.timer = n.clock.setTimer(first, () => this.tick());
    this.reconnectTimer = n.clock.setTimer(n.rng() * n.tuning.reconnectIntervalMs, () => this.reconnectTick());
  }

  stop(): void {
    this.timer?.cancel();
    this.reconnectTimer?.cancel();
  }

  private tick(): void {
    const n = this.node;
    if (!n.running) return;
    this.timer = n.clock.setTimer(pushPullIntervalFor(n.tuning, n.table.live), () => this.tick());
    if (n.leaving) return;
    if (n.table.live <= 1 && n.seeds.length > 0 && !n.joiner.active) {
      // Alone (seed was down when we started?): keep trying the seeds (the Joiner, join.ts, does
      // it on a faster schedule when started).
      this.join(n.seeds);
      return;
    }
    const [slot] = n.randomMembers(1, null);
    if (slot === undefined) return;
    this.exchange(n.table.record(slot).gossip, false);
  }

  private reconnectTick(): void {
    const n = this.node;
    if (!n.running) return;
    this.reconnectTimer = n.clock.setTimer(n.tuning.reconnectIntervalMs, () => this.reconnectTick());
    const t = n.table;
    if (n.leaving || t.byState[ST_DEAD] === 0) return;
    // Pick a random dead member (bounded tries).
    for (let tries = 0; tries < 16; tries++) {
      const s = Math.floor(n.rng() * t.count);
      if (t.state[s] === ST_DEAD) {
        this.exchange(t.record(s).gossip, false);
        return;
      }
    }
  }

  /** Push-pull with each seed (skipping our own address); `cb(answered)` when all finished. */
  join(seeds: string[], cb?: (answered: number) => void): void {
    const n = this.node;
    const targets = seeds.filter((s) => s !== n.transport.address);
    if (targets.length === 0) {
      n.clock.setTimer(0, () => cb?.(0));
      return;
    }
    let pending = targets.length;
    let ok = 0;
    for (const s of targets) {
      this.exchange(s, true, (err) => {
        if (!err) ok++;
        if (--pending === 0) cb?.(ok);
      });
    }
  }

  /** Our digest of every member. */
  private digest(): DigestEntry[] {
    const t = this.node.table;
    const out: DigestEntry[] = new Array(t.count);
    for (let s = 0; s < t.count; s++) out[s] = { name: t.record(s).name, incarnation: t.incarnation[s], state: t.state[s] };
    return out;
  }

  exchange(addr: string, join: boolean, cb?: (err: Error | null) => void): void {
    const n = this.node;
    this.exchanges++;
    n.stats.streamsInitiated++;
    const req: PushPullRequest = {
      type: STREAM_REQUEST,
      join,
      self: { state: n.leaving ? ST_LEFT : ST_ALIVE, record: n.self },
      digest: this.digest(),
    };
    const fail = (err: Error): void => {
      this.failures++;
      n.stats.streamErrors++;
      cb?.(err);
    };
    n.transport.request(addr, n.keyring.seal(encodeStream(req)), n.tuning.streamTimeoutMs, (err, data) => {
      if (!n.running) return;
      if (err || !data) return fail(err ?? new Error('no reply'));
      const plain = n.keyring.open(data, LIMITS.maxStream);
      if (!plain) {
        n.drop('bad_key');
        return fail(streamError(`the reply from ${addr} is not sealed with any cluster key we have`, 'EBADKEY'));
      }
      let msg;
      try {
        msg = decodeStream(plain, n.interner);
      } catch (e) {
        if (e instanceof CodecError) {
          n.drop(e.reason);
          return fail(e);
        }
        throw e;
      }
      if (msg.type !== STREAM_REPLY) {
        n.drop('unexpected');
        return fail(new Error('unexpected push-pull reply'));
      }
      this.merge(msg.entries);
      if (msg.want.length > 0) {
        const entries = this.entriesFor(msg.want);
        if (entries.length > 0) {
          n.transport.request(addr, n.keyring.seal(encodeStream({ type: STREAM_PUSH, entries })), n.tuning.streamTimeoutMs, () => {});
        }
      }
      cb?.(null);
    });
  }

  private entriesFor(names: string[]): FullEntry[] {
    const t = this.node.table;
    const out: FullEntry[] = [];
    for (const name of names) {
      const s = t.find(name);
      if (s >= 0) out.push({ state: t.state[s], record: t.record(s) });
    }
    return out;
  }

  /** Answers a push-pull request: merges the requester's own record, then compares digests. */
  onRequest(req: PushPullRequest): PushPullReply {
    const n = this.node;
    const t = n.table;
    this.merge([req.self]);
    const seen = new Uint8Array(t.count);
    const entries: FullEntry[] = [];
    const want: string[] = [];
    for (const d of req.digest) {
      const s = t.find(d.name);
      if (s < 0) {
        // Unknown to us: want it if it is alive/suspect and not older than a tombstone.
        const tomb = n.tombstone(d.name);
        if ((d.state === ST_ALIVE || d.state === ST_SUSPECT) && (tomb === undefined || d.incarnation > tomb)) want.push(d.name);
        continue;
      }
      if (s < seen.length) seen[s] = 1;
      const inc = t.incarnation[s];
      const st = t.state[s];
      if (inc > d.incarnation || (inc === d.incarnation && st > d.state)) entries.push({ state: st, record: t.record(s) });
      else if (d.incarnation > inc || (d.incarnation === inc && d.state > st)) want.push(d.name);
    }
    for (let s = 0; s < seen.length && s < t.count; s++) {
      if (seen[s]) continue;
      const st = t.state[s];
      // Members the requester lacks: only live ones are worth sending (unknown dead are ignored on merge).
      if (st === ST_ALIVE || st === ST_SUSPECT) entries.push({ state: st, record: t.record(s) });
    }
    if (entries.length > LIMITS.maxMembers) entries.length = LIMITS.maxMembers;
    if (want.length > LIMITS.maxMembers) want.length = LIMITS.maxMembers;
    return { type: STREAM_REPLY, entries, want };
  }

  /** Merges remote full entries into our view. */
  merge(entries: FullEntry[]): void {
    const n = this.node;
    const t = n.table;
    for (const e of entries) {
      const r = e.record;
      const s = t.find(r.name);
      const known = s >= 0 ? t.incarnation[s] : -1;
      switch (e.state) {
        case ST_ALIVE:
          if (r.incarnation > known || r.name === n.name) n.aliveNode(r);
          break;
        case ST_LEFT:
          if (s >= 0 && r.incarnation >= known) n.deadNode(r.name, r.incarnation, r.name);
          break;
        case ST_SUSPECT:
          // A newer record first (so we do not keep stale endpoints), then suspect it.
          if (r.incarnation > known && r.name !== n.name) n.aliveNode(r);
          if (r.incarnation >= known || r.name === n.name) n.suspectNode(r.name, r.incarnation, n.name);
          break;
        case ST_DEAD:
          // A remote "dead" is only a reason to suspect; unknown dead members are ignored.
          if (s >= 0 && (r.incarnation >= known || r.name === n.name)) n.suspectNode(r.name, r.incarnation, n.name);
          break;
      }
    }
  }
}
