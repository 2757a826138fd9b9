/**
 * The probe engine: the data path's probe stage (dataplane/probe-seam.ts). Control-plane timer
 * (`tickMs`) on the injected clock; per peer it keeps a `PeerReach` (liveness.ts: small probe each
 * second, RTT, up/down) and a `PmtuSearch` (pmtu.ts); it answers other hosts' probes, and writes
 * ICMP too-big answers for frames its peers' paths cannot carry (icmp.ts).
 *
 * Peers probed: the static peers and every host a network floods to (gossip members serving it),
 * at most `maxPeers`. Each is probed on one network both hosts serve — the first plaintext one,
 * else the first encrypted one (probes then travel sealed in the session) — so admission and
 * session checks apply to probes exactly as to tenant frames. A peer that never answers (down, or
 * a kernel VXLAN peer, which drops probes unseen) keeps an unknown path MTU: no ICMP on a guess.
 *
 * Memory: one send slab of `TX_SLOTS` slots of (cipher headroom + largest probe + tailroom),
 * allocated at attach; replies are queued into the same table from the receive path (never at the
 * same time as a tick: one thread) and sent once per batch. Bounds: in-flight probes ≤ peers ×
 * (1 + parallel); replies ≤ `replyRatePerSecond` (token bucket; more: `rate_limited`); ICMP ≤
 * `icmpRatePerSecond`.
 *
 * Sizes: a path MTU is outer IP bytes. A probe of path size S carries S − IP header (20 / 40) − 8
 * (UDP) bytes of UDP payload; sealed, 32 of them are the cipher's. The largest Ethernet frame a
 * path carries is S − IP − 8 − 8 (VXLAN) (− 32 sealed), and the ICMP answer says that − 14.
 */
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';

import type { Clock, TimerHandle } from '../clock';
import { CIPHER_NO_SESSION, CIPHER_OK, CIPHER_QUEUED, type CipherBatch } from '../dataplane/cipher-seam';
import { ADDR_LEN } from '../dataplane/addr';
import type { Network } from '../dataplane/network';
import type { Peer } from '../dataplane/peers';
import type { ProbeHost, ProbeStage } from '../dataplane/probe-seam';
import type { TxBatch } from '../dataplane/seams';
import { ETH_HLEN } from '../dataplane/ethernet';
import { VXLAN_HLEN } from '../dataplane/vxlan';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { TOO_BIG_MAX, writeTooBig } from './icmp';
import { PeerReach, type ReachOptions, type ReachState } from './liveness';
import { PmtuSearch, type PmtuOptions, type PmtuPhase } from './pmtu';
import {
  PROBE_DROP_REASONS, PROBE_HLEN, PROBE_REPLY, PROBE_REQUEST, probeDropIndex, probeEchoLen, probeSeq, probeToken, probeType, writeProbe,
} from './wire';

export interface ProbeOptions {
  /** Timer period (default 100 ms). */
  tickMs?: number;
  /** A probe not answered within this is lost (default 1000 ms). */
  probeTimeoutMs?: number;
  reach?: ReachOptions;
  /** PMTU search settings (base defaults: 1280 over IPv6, 1200 over IPv4, RFC 8899 BASE_PLPMTU). */
  pmtu?: Partial<Omit<PmtuOptions, 'max'>>;
  /** Replies sent per second at most (default 2000, burst as many). */
  replyRatePerSecond?: number;
  /** ICMP too-big answers per second at most (default 100). */
  icmpRatePerSecond?: number;
  /** Most peers probed (default 4096). */
  maxPeers?: number;
  clock?: Clock;
  logger?: Logger;
}

/** Kinds of probe in flight. */
const K_REACH = 0;
const K_PMTU = 1;

interface Pending {
  pp: PeerProbe;
  kind: number;
  /** Outer size (PMTU probes) / 0. */
  size: number;
  /** Plaintext probe length (what the reply must echo). */
  plen: number;
  sentAt: number;
}

/** One peer's probing state. */
export class PeerProbe {
  net: Network;
  readonly reach: PeerReach;
  readonly pmtu: PmtuSearch;
  constructor(readonly peer: Peer, net: Network, reach: PeerReach, pmtu: PmtuSearch) {
    this.net = net;
    this.reach = reach;
    this.pmtu = pmtu;
  }
}

/** One peer as status, metrics and the reachability row see it. */
export interface ProbePeerView {
  endpoint: string;
  static: boolean;
  network: string;
  sealed: boolean;
  state: ReachState;
  rttMs: number | null;
  /** Path MTU, outer bytes (null: unknown). */
  pathMtu: number | null;
  /** Largest inner IP packet the path carries on the probed network (null: unknown). */
  innerMtu: number | null;
  phase: PmtuPhase;
  lastReplyAgoSeconds: number | null;
  /** The peer has answered a probe since it was first probed (a kernel VXLAN peer never does). */
  capable: boolean;
  sent: number;
  answered: number;
  lost: number;
  blackHoles: number;
}

/** Totals (vxmesh_probe_* series). */
export class ProbeCounters {
  readonly drops = new Float64Array(PROBE_DROP_REASONS.length);
  sent = 0;
  sendFailed = 0;
  answered = 0;
  lost = 0;
  requests = 0;
  replies = 0;
  icmpSent = 0;
  icmpRateLimited = 0;
  icmpNotAnswerable = 0;
}

const EMSGSIZE = osConstants.errno.EMSGSIZE;

/** Slots of the send table (probes of one tick / replies of one receive batch; more: sent in turns). */
const TX_SLOTS = 64;
/** Room before a probe in its slot (≥ cipher headroom) and after (≥ cipher tailroom). */
const SLOT_HEAD = 64;
const SLOT_TAIL = 64;

export class ProbeEngine implements ProbeStage {
  readonly counters = new ProbeCounters();
  private host: ProbeHost | null = null;
  private readonly clock: Clock | null;
  private readonly log: Logger;
  private timer: TimerHandle | null = null;
  private readonly peers = new Map<Peer, PeerProbe>();
  private readonly pending = new Map<number, Pending>();
  private readonly token: number;
  private seq = 1;
  private readonly tickMs: number;
  private readonly timeoutMs: number;
  private readonly maxPeers: number;
  private readonly replyRate: number;
  private readonly icmpRate: number;
  private replyTokens: number;
  private icmpTokens: number;
  private bucketsAt = 0;
  private readonly listeners: (() => void)[] = [];
  // send table
  private slab = Buffer.alloc(0);
  private slotSize = 0;
  private tx!: TxBatch;
  private seal!: CipherBatch;
  /** Per slot: sealed (needs the cipher), the pending seq (0: a reply). */
  private readonly slotSealed = new Uint8Array(TX_SLOTS);
  private readonly slotSeq = new Float64Array(TX_SLOTS);
  private readonly slotVni = new Uint32Array(TX_SLOTS);
  private readonly slotPeer: (Peer | null)[] = new Array<Peer | null>(TX_SLOTS).fill(null);
  private queued = 0;
  /** flush scratch: slot sendable; slots to send in order; sealed slot per seal descriptor. */
  private readonly okSlot = new Uint8Array(TX_SLOTS);
  private readonly sendIdx = new Uint8Array(TX_SLOTS);
  private readonly sealIdx = new Uint8Array(TX_SLOTS);
  // ICMP answer
  private readonly icmpBuf = Buffer.alloc(TOO_BIG_MAX);
  private readonly icmpTx: TxBatch = {
    slab: this.icmpBuf, offs: new Uint32Array(1), lens: new Uint32Array(1), addrs: Buffer.alloc(0), srcIdx: new Uint8Array(1), status: new Int32Array(1), count: 0,
  };

  constructor(private readonly opts: ProbeOptions = {}) {
    this.clock = opts.clock ?? null;
    this.log = (opts.logger ?? nullLogger).child({ component: 'probe' });
    this.token = randomBytes(4).readUInt32BE(0) || 1;
    this.tickMs = opts.tickMs ?? 100;
    this.timeoutMs = opts.probeTimeoutMs ?? 1000;
    this.maxPeers = opts.maxPeers ?? 4096;
    this.replyRate = opts.replyRatePerSecond ?? 2000;
    this.icmpRate = opts.icmpRatePerSecond ?? 100;
    this.replyTokens = this.replyRate;
    this.icmpTokens = this.icmpRate;
  }

  // ---- lifecycle --------------------------------------------------------------------------------

  attach(host: ProbeHost): void {
    this.host = host;
    this.slotSize = SLOT_HEAD + Math.max(PROBE_HLEN, host.mtu) + SLOT_TAIL;
    this.slab = Buffer.alloc(TX_SLOTS * this.slotSize);
    const u32 = () => new Uint32Array(TX_SLOTS);
    this.tx = { slab: this.slab, offs: u32(), lens: u32(), addrs: Buffer.alloc(TX_SLOTS * ADDR_LEN), srcIdx: new Uint8Array(TX_SLOTS), status: new Int32Array(TX_SLOTS), count: 0 };
    this.seal = {
      slab: this.slab, offs: u32(), lens: u32(), addrs: Buffer.alloc(TX_SLOTS * ADDR_LEN), vnis: u32(), outOffs: u32(), outLens: u32(),
      status: new Uint8Array(TX_SLOTS), senders: u32(), count: 0,
    };
    this.bucketsAt = this.now();
  }

  detach(): void {
    this.stop();
    for (const pp of this.peers.values()) pp.peer.pathFrameMax = pp.peer.pathFrameMaxSealed = 0;
    this.peers.clear();
    this.pending.clear();
    this.host = null;
  }

  start(): void {
    if (this.timer || !this.host) return;
    this.timer = this.clockOf().setInterval(this.tickMs, () => this.tick());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** Calls `fn` after a tick in which a peer's state or path MTU changed. */
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  private clockOf(): Clock {
    return this.clock ?? this.host!.clock;
  }

  private now(): number {
    return this.clockOf().now();
  }

  // ---- the timer ----------------------------------------------------------------------------

  /** One round: peers refreshed, timeouts, probes due sent. Never throws. */
  tick(): void {
    const h = this.host;
    if (!h) return;
    try {
      const now = this.now();
      let changed = this.refreshPeers(h, now);
      for (const [seq, p] of this.pending) {
        if (now - p.sentAt < this.timeoutMs) continue;
        this.pending.delete(seq);
        this.counters.lost++;
        if (p.kind === K_REACH) p.pp.reach.loss(now);
        else changed = this.pmtuResult(p.pp, p.size, false, now, false, p.sentAt) || changed;
      }
      for (const pp of this.peers.values()) {
        const before = pp.reach.state;
        pp.reach.age(now);
        if (pp.reach.due(now)) this.queueProbe(pp, K_REACH, 0, PROBE_HLEN, now);
        for (const size of pp.pmtu.due(now)) {
          const plen = size - this.ipHeader() - 8 - (this.sealed(pp) ? this.cipherOverhead() : 0);
          if (plen < PROBE_HLEN || plen > 0xffff) {
            pp.pmtu.loss(size, now, true);
            continue;
          }
          this.queueProbe(pp, K_PMTU, size, plen, now);
        }
        if (pp.reach.state !== before) changed = true;
      }
      this.flush();
      if (changed) for (const fn of this.listeners) fn();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'probe round failed');
    }
  }

  /** The peers to probe now: static ones and every network's flood list; new ones start, gone ones go. */
  private refreshPeers(h: ProbeHost, now: number): boolean {
    const want = new Map<Peer, Network>();
    const nets = h.networks();
    // plaintext networks first: a peer is probed on the first plaintext network it serves, else the first encrypted one
    for (const pass of [false, true]) {
      for (const net of nets) {
        if (net.config.encrypted !== pass || net.removed) continue;
        for (const p of h.staticPeers()) if (!want.has(p) && want.size < this.maxPeers) want.set(p, net);
        for (const p of net.floodPeers) if (!want.has(p) && want.size < this.maxPeers) want.set(p, net);
      }
    }
    let changed = false;
    for (const [peer, pp] of this.peers) {
      const net = want.get(peer);
      if (net === undefined) {
        peer.pathFrameMax = peer.pathFrameMaxSealed = 0;
        this.peers.delete(peer);
        changed = true;
      } else if (net !== pp.net) {
        pp.net = net;
      }
    }
    for (const [peer, net] of want) {
      if (this.peers.has(peer)) continue;
      const o = this.opts.pmtu ?? {};
      const pmtu = new PmtuSearch({ ...o, base: o.base ?? (h.family === 6 ? 1280 : 1200), max: h.mtu });
      this.peers.set(peer, new PeerProbe(peer, net, new PeerReach(now, this.opts.reach), pmtu));
      changed = true;
    }
    if (changed) for (const p of this.pending.keys()) if (!this.peers.has(this.pending.get(p)!.pp.peer)) this.pending.delete(p);
    return changed;
  }

  private ipHeader(): number {
    return this.host?.family === 6 ? 40 : 20;
  }

  private sealed(pp: PeerProbe): boolean {
    return pp.net.config.encrypted;
  }

  private cipherOverhead(): number {
    const c = this.host?.cipher();
    return c ? c.headroom + c.tailroom : 32;
  }

  /** Feeds a PMTU probe's fate to the search; updates the peer's frame limits. True when the path MTU changed. */
  private pmtuResult(pp: PeerProbe, size: number, ok: boolean, now: number, hard: boolean, sentAt?: number): boolean {
    const before = pp.pmtu.pmtu;
    if (ok) pp.pmtu.ack(size, now);
    else pp.pmtu.loss(size, now, hard, sentAt);
    const after = pp.pmtu.pmtu;
    if (after === before) return false;
    this.applyLimits(pp);
    this.log.info({ peer: pp.peer.label, pathMtu: after === 0 ? null : after, was: before === 0 ? null : before, phase: pp.pmtu.phase }, 'path MTU changed');
    return true;
  }

  private applyLimits(pp: PeerProbe): void {
    const m = pp.pmtu.pmtu;
    const peer = pp.peer;
    if (m === 0) {
      peer.pathFrameMax = peer.pathFrameMaxSealed = 0;
      return;
    }
    const frame = m - this.ipHeader() - 8 - VXLAN_HLEN;
    peer.pathFrameMax = Math.max(1, frame);
    peer.pathFrameMaxSealed = Math.max(1, frame - this.cipherOverhead());
  }

  // ---- sending --------------------------------------------------------------------------------

  private queueProbe(pp: PeerProbe, kind: number, size: number, plen: number, now: number): void {
    if (this.queued === TX_SLOTS) this.flush();
    const seq = this.nextSeq();
    const k = this.queued++;
    const off = k * this.slotSize + SLOT_HEAD;
    writeProbe(this.slab, off, plen, pp.net.config.vni, PROBE_REQUEST, this.token, seq, 0);
    this.place(k, off, plen, pp.peer, this.sealed(pp), pp.net.config.vni, seq);
    this.pending.set(seq, { pp, kind, size, plen, sentAt: now });
    this.counters.sent++;
  }

  private nextSeq(): number {
    let s = this.seq;
    this.seq = (this.seq + 1) >>> 0 || 1;
    while (this.pending.has(s)) {
      s = this.seq;
      this.seq = (this.seq + 1) >>> 0 || 1;
    }
    return s;
  }

  private place(k: number, off: number, len: number, peer: Peer, sealed: boolean, vni: number, seq: number): void {
    this.tx.offs[k] = off;
    this.tx.lens[k] = len;
    this.tx.srcIdx[k] = 0;
    this.tx.addrs.set(peer.record, k * ADDR_LEN);
    this.slotVni[k] = vni;
    this.slotSealed[k] = sealed ? 1 : 0;
    this.slotSeq[k] = seq;
    this.slotPeer[k] = peer;
  }

  /** Seals what needs it, sends the table (one send), accounts each descriptor. */
  flush(): void {
    const n = this.queued;
    this.queued = 0;
    const h = this.host;
    if (n === 0 || !h) return;
    const now = this.now();
    // seal: descriptors of encrypted networks, in place; the cipher may queue them (no session yet)
    let sealedCount = 0;
    for (let k = 0; k < n; k++) if (this.slotSealed[k] === 1) sealedCount++;
    const ok = this.okSlot;
    ok.fill(1, 0, n);
    if (sealedCount > 0) {
      const c = h.cipher();
      const sb = this.seal;
      const map = this.sealIdx;
      sb.count = 0;
      for (let k = 0; k < n; k++) {
        if (this.slotSealed[k] !== 1) continue;
        const j = sb.count++;
        sb.offs[j] = this.tx.offs[k];
        sb.lens[j] = this.tx.lens[k];
        this.tx.addrs.copy(sb.addrs, j * ADDR_LEN, k * ADDR_LEN, (k + 1) * ADDR_LEN);
        sb.vnis[j] = this.slotVni[k];
        map[j] = k;
      }
      sb.status.fill(CIPHER_NO_SESSION, 0, sb.count);
      if (c) {
        try {
          c.sealBatch(sb);
        } catch (e) {
          this.log.warn({ err: (e as Error).message }, 'probe seal failed');
        }
      }
      for (let j = 0; j < sb.count; j++) {
        const k = map[j];
        const st = sb.status[j];
        if (st === CIPHER_OK) {
          this.tx.offs[k] = sb.outOffs[j];
          this.tx.lens[k] = sb.outLens[j];
        } else {
          ok[k] = 0;
          if (st !== CIPHER_QUEUED) this.sendFailed(k, now, false);
        }
      }
    }
    // compact the descriptors to send
    const idx = this.sendIdx;
    let count = 0;
    for (let k = 0; k < n; k++) if (ok[k] === 1) idx[count++] = k;
    const tx = this.tx;
    for (let j = 0; j < count; j++) {
      const k = idx[j];
      if (k === j) continue;
      tx.offs[j] = tx.offs[k];
      tx.lens[j] = tx.lens[k];
      tx.addrs.copyWithin(j * ADDR_LEN, k * ADDR_LEN, (k + 1) * ADDR_LEN);
    }
    tx.count = count;
    if (tx.count === 0) return;
    const consumed = h.send(tx);
    for (let j = 0; j < tx.count; j++) {
      const k = idx[j];
      // not in the peer's tx counters (tenant traffic: VxmeshPeerSilent compares them with rx, and a
      // kernel VXLAN peer never answers probes); answers received do count as rx (liveness)
      if (j < consumed && tx.status[j] === 0) {
        if (this.slotSeq[k] === 0) this.counters.replies++;
      } else {
        this.sendFailed(k, now, j < consumed && tx.status[j] === EMSGSIZE);
      }
      this.slotPeer[k] = null;
    }
    tx.count = 0;
  }

  /** Descriptor `k` was not sent: a reply counts `reply_failed`; a probe is lost now (EMSGSIZE: a hard PMTU loss). */
  private sendFailed(k: number, now: number, emsgsize: boolean): void {
    const seq = this.slotSeq[k];
    if (seq === 0) {
      this.counters.drops[probeDropIndex.reply_failed]++;
      return;
    }
    this.counters.sendFailed++;
    const p = this.pending.get(seq);
    if (!p) return;
    this.pending.delete(seq);
    if (p.kind === K_PMTU) {
      if (this.pmtuResult(p.pp, p.size, false, now, emsgsize, p.sentAt)) for (const fn of this.listeners) fn();
    } else {
      p.pp.reach.loss(now);
    }
  }

  // ---- receiving (outside.ts stage 2b) -------------------------------------------------------

  drop(reason: number): void {
    this.counters.drops[reason]++;
  }

  input(slab: Buffer, off: number, len: number, net: Network, peer: Peer): void {
    if (probeType(slab, off) === PROBE_REQUEST) this.request(slab, off, len, net, peer);
    else this.reply(slab, off, peer);
  }

  /** Answers a request: a PROBE_HLEN reply echoing token, seq and the length received, on the same network. */
  private request(slab: Buffer, off: number, len: number, net: Network, peer: Peer): void {
    this.counters.requests++;
    this.refill();
    if (this.replyTokens < 1 || !this.host) {
      this.counters.drops[probeDropIndex.rate_limited]++;
      return;
    }
    this.replyTokens--;
    if (this.queued === TX_SLOTS) this.flush();
    const k = this.queued++;
    const o = k * this.slotSize + SLOT_HEAD;
    writeProbe(this.slab, o, PROBE_HLEN, net.config.vni, PROBE_REPLY, probeToken(slab, off), probeSeq(slab, off), len);
    this.place(k, o, PROBE_HLEN, peer, net.config.encrypted, net.config.vni, 0);
  }

  /** A reply to one of ours: from the peer probed, with our token, echoing the length we sent. */
  private reply(slab: Buffer, off: number, peer: Peer): void {
    const seq = probeSeq(slab, off);
    const p = probeToken(slab, off) === this.token ? this.pending.get(seq) : undefined;
    if (p === undefined || p.pp.peer !== peer || probeEchoLen(slab, off) !== p.plen) {
      this.counters.drops[probeDropIndex.unexpected_reply]++;
      return;
    }
    this.pending.delete(seq);
    this.counters.answered++;
    const now = this.now();
    const pp = p.pp;
    if (p.kind === K_REACH) {
      const before = pp.reach.state;
      pp.reach.answer(now - p.sentAt, now);
      if (pp.reach.state !== before) for (const fn of this.listeners) fn();
    } else {
      const before = pp.reach.state;
      pp.reach.alive(now);
      const changed = this.pmtuResult(pp, p.size, true, now, false);
      if (changed || pp.reach.state !== before) for (const fn of this.listeners) fn();
    }
  }

  private refill(): void {
    const now = this.now();
    const dt = Math.max(0, now - this.bucketsAt) / 1000;
    this.bucketsAt = now;
    this.replyTokens = Math.min(this.replyRate, this.replyTokens + dt * this.replyRate);
    this.icmpTokens = Math.min(this.icmpRate, this.icmpTokens + dt * this.icmpRate);
  }

  // ---- ICMP too big (inside.ts stage 5a) -----------------------------------------------------

  tooBig(net: Network, slab: Buffer, off: number, len: number, limit: number): void {
    const h = this.host;
    if (!h) return;
    this.refill();
    if (this.icmpTokens < 1) {
      this.counters.icmpRateLimited++;
      return;
    }
    const n = writeTooBig(slab, off, len, limit - ETH_HLEN, this.icmpBuf);
    if (n === 0) {
      this.counters.icmpNotAnswerable++;
      return;
    }
    this.icmpTokens--;
    const b = this.icmpTx;
    b.offs[0] = 0;
    b.lens[0] = n;
    b.count = 1;
    if (h.tapWrite(net, b) === 1 && b.status[0] === 0) this.counters.icmpSent++;
    b.count = 0;
  }

  // ---- views ----------------------------------------------------------------------------------

  /** Every peer probed, for status, metrics and the reachability row. */
  peerViews(): ProbePeerView[] {
    const now = this.host ? this.now() : 0;
    const out: ProbePeerView[] = [];
    for (const pp of this.peers.values()) {
      const m = pp.pmtu.pmtu;
      const sealed = this.sealed(pp);
      out.push({
        endpoint: pp.peer.label,
        static: pp.peer.isStatic,
        network: pp.net.config.name,
        sealed,
        state: pp.reach.state,
        rttMs: pp.reach.srttMs === null ? null : Math.round(pp.reach.srttMs * 1000) / 1000,
        pathMtu: m === 0 ? null : m,
        innerMtu: m === 0 ? null : (sealed ? pp.peer.pathFrameMaxSealed : pp.peer.pathFrameMax) - ETH_HLEN,
        phase: pp.pmtu.phase,
        lastReplyAgoSeconds: pp.reach.lastReplyAt === null ? null : Math.round((now - pp.reach.lastReplyAt) / 100) / 10,
        capable: pp.reach.lastReplyAt !== null,
        sent: pp.reach.sent,
        answered: pp.reach.answered,
        lost: pp.reach.lost,
        blackHoles: pp.pmtu.blackHoles,
      });
    }
    return out.sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
  }
}
