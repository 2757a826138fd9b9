/**
 * Peers: the hosts on the underlay this data path sends to and hears from. One `Peer` object per
 * underlay address (see `addr.ts` on why ports are not keys), shared by every network. The table
 * keeps the static peers (serve every VNI), the peers gossip names per network, and peers learned
 * from traffic (bounded by `maxLearnedPeers`). Control-plane rate, except `find` and `learn`.
 *
 * Learned peers (senders a network's `acceptFrom` let in, issue 18) are bounded: at most
 * `maxLearned` of them; learning one more evicts the longest-idle one, chosen by a CLOCK hand over
 * the learned peers (a peer whose packet counters moved since the hand last passed gets a second
 * chance; amortised O(1), nothing done per packet), counted in `GlobalCounters.peerEvictions`.
 * An evicted peer leaves the table (and with it its counters and metric series); FDB entries that
 * still point at it keep forwarding to its address until they age out or its next frame re-learns
 * it, so eviction costs no FDB scan.
 */
import type { AddressFamily, Endpoint } from '../config/types';
import {
  canonicalEndpoint, endpointToRecord, endpointToString, peerKeyOf, peerKeyOfEndpoint, recordToEndpoint, type PeerKey,
} from './addr';
import { PeerCounters, type GlobalCounters } from './counters';
import type { Network } from './network';

/** A peer host on the underlay. */
export class Peer {
  readonly key: PeerKey;
  readonly endpoint: Endpoint;
  /** 18-byte destination record (address + VXLAN port). */
  readonly record: Buffer;
  readonly label: string;
  readonly counters = new PeerCounters();
  /** Listed in the static peer set. */
  isStatic = false;
  /** Learned from traffic, in the table's eviction ring. */
  learned = false;
  /** rx + tx packets when the eviction hand last passed (second chance when they moved). */
  mark = 0;
  /** Largest Ethernet frame the measured path to this peer carries, plaintext / sealed (0: not measured; src/probe). */
  pathFrameMax = 0;
  pathFrameMaxSealed = 0;

  constructor(ep: Endpoint) {
    this.endpoint = canonicalEndpoint(ep);
    this.record = endpointToRecord(this.endpoint);
    this.key = peerKeyOf(this.record, 0);
    this.label = endpointToString(this.endpoint);
  }
}

/** Underlay facts the peer table needs: its own address (never a peer) and the VXLAN port. */
export interface PeerUnderlay {
  family: AddressFamily;
  port: number;
  address?: string;
}

export class PeerTable {
  readonly byKey = new Map<PeerKey, Peer>();
  staticPeers: Peer[] = [];
  /** Learned peers, in no particular order; the CLOCK hand walks it. */
  private ring: Peer[] = [];
  private hand = 0;
  /** The last peer `find` returned (most datagrams in a batch come from the same one). */
  private last: Peer | null = null;
  /** Bumped whenever a peer object leaves the table or is replaced (caches of Peer objects check it). */
  generation = 0;

  constructor(private readonly underlay: PeerUnderlay, private readonly maxLearned: number,
    private readonly nets: ReadonlyMap<number, Network>, private readonly counters?: GlobalCounters) {}

  /** Learned peers now (≤ maxLearned). */
  get learnedCount(): number {
    return this.ring.length;
  }

  /** True when `ep` is this host's own underlay endpoint. */
  isSelf(ep: Endpoint): boolean {
    const a = this.underlay.address;
    if (!a) return false;
    try {
      return peerKeyOfEndpoint(ep) === peerKeyOfEndpoint({ address: a, port: 0, family: this.underlay.family }) && ep.port === this.underlay.port;
    } catch {
      return false;
    }
  }

  /** Unique peers for `endpoints`, self excluded, in order. */
  resolve(endpoints: readonly Endpoint[]): Peer[] {
    const list: Peer[] = [];
    const seen = new Set<PeerKey>();
    for (const ep of endpoints) {
      if (this.isSelf(ep)) continue;
      const p = this.peerFor(ep);
      if (seen.has(p.key)) continue;
      seen.add(p.key);
      list.push(p);
    }
    return list;
  }

  /** Replaces the static peers; FDB entries behind a peer no longer listed are dropped. */
  setStatic(endpoints: readonly Endpoint[]): void {
    const next = this.resolve(endpoints);
    const keep = new Set(next.map((p) => p.key));
    for (const old of this.staticPeers) {
      if (keep.has(old.key)) continue;
      old.isStatic = false;
      // entries learned behind a peer we no longer talk to would black-hole until they age
      for (const net of this.nets.values()) net.fdb.removeByPeer((p) => p === old);
    }
    for (const p of next) p.isStatic = true;
    this.staticPeers = next;
  }

  /**
   * The peer object for `ep` (one per address). An existing peer at the same address but another
   * port is replaced: its FDB entries and list memberships are dropped.
   */
  peerFor(ep: Endpoint): Peer {
    const fresh = new Peer(ep);
    const old = this.byKey.get(fresh.key);
    if (old && old.endpoint.port === fresh.endpoint.port) return old;
    if (old) {
      for (const net of this.nets.values()) {
        net.fdb.removeByPeer((p) => p === old);
        if (net.override) net.override = net.override.filter((p) => p !== old);
      }
      this.staticPeers = this.staticPeers.filter((p) => p !== old);
      if (old.learned) this.unring(old);
      if (this.last === old) this.last = null;
      this.generation++;
    }
    this.byKey.set(fresh.key, fresh);
    return fresh;
  }

  /** Known peer for the source record at `addrs[off]`, or null. Allocation-free for IPv4 and for repeats. */
  find(addrs: Buffer, off: number): Peer | null {
    const last = this.last;
    if (last !== null) {
      const r = last.record;
      let k = 0;
      while (k < 16 && r[k] === addrs[off + k]) k++;
      if (k === 16) return last;
    }
    const p = this.byKey.get(peerKeyOf(addrs, off));
    if (p === undefined) return null;
    this.last = p;
    return p;
  }

  /**
   * The peer at `ep`'s address (any port: an existing one is never replaced), else a new learned
   * one as `learn` makes it (null when none can be). Control-plane rate (allocates).
   */
  forAddress(ep: Endpoint): Peer | null {
    const p = this.byKey.get(peerKeyOfEndpoint(ep));
    if (p !== undefined) return p;
    if (this.isSelf({ ...ep, port: this.underlay.port })) return null;
    return this.learn(endpointToRecord(ep), 0);
  }

  /**
   * A new peer learned from traffic (sent to at our VXLAN port). At `maxLearned` learned peers the
   * longest-idle one is evicted first (counted); null only when none can be (maxLearned 0).
   */
  learn(addrs: Buffer, off: number): Peer | null {
    if (this.ring.length >= this.maxLearned && !this.evictIdle()) return null;
    const ep = recordToEndpoint(addrs, off);
    ep.port = this.underlay.port;
    const p = new Peer(ep);
    p.learned = true;
    this.byKey.set(p.key, p);
    this.ring.push(p);
    this.last = p;
    return p;
  }

  /**
   * CLOCK eviction: walks the ring from the hand; a peer whose packets moved since the last pass is
   * spared once, a static or listed peer leaves the ring (it is no longer only learned), the first
   * idle one is evicted. At most two passes.
   */
  private evictIdle(): boolean {
    const ring = this.ring;
    for (let step = 2 * ring.length + 1; step > 0 && ring.length > 0; step--) {
      if (this.hand >= ring.length) this.hand = 0;
      const p = ring[this.hand];
      if (p.isStatic || this.isListed(p)) {
        this.unringAt(this.hand);
        if (ring.length < this.maxLearned) return true;
        continue;
      }
      const act = p.counters.rxPackets + p.counters.txPackets;
      if (act !== p.mark && step > ring.length) {
        p.mark = act;
        this.hand++;
        continue;
      }
      this.unringAt(this.hand);
      if (this.byKey.get(p.key) === p) this.byKey.delete(p.key);
      if (this.last === p) this.last = null;
      this.generation++;
      if (this.counters) this.counters.peerEvictions++;
      return true;
    }
    return ring.length < this.maxLearned;
  }

  /** A known host of some network (in its flood list: static or gossip): never evicted. */
  private isListed(p: Peer): boolean {
    for (const net of this.nets.values()) if (net.accept.isKnown(p.record, 0)) return true;
    return false;
  }

  private unring(p: Peer): void {
    const i = this.ring.indexOf(p);
    if (i >= 0) this.unringAt(i);
  }

  /** Swap-removes ring[i]. */
  private unringAt(i: number): void {
    const ring = this.ring;
    ring[i].learned = false;
    ring[i] = ring[ring.length - 1];
    ring.pop();
  }

  /** Forgets learned peers nothing refers to any more (`used`: static, gossip and FDB peers). */
  forgetUnused(used: Set<Peer>): void {
    for (const [k, p] of this.byKey) {
      if (!used.has(p)) {
        this.byKey.delete(k);
        if (this.last === p) this.last = null;
        this.generation++;
      }
    }
    const kept = this.ring.filter((p) => this.byKey.get(p.key) === p);
    for (const p of this.ring) p.learned = false;
    for (const p of kept) p.learned = true;
    this.ring = kept;
    this.hand = 0;
  }
}
