/**
 * IPAM for every network of one host: allocation inside this host's blocks (leased through the
 * lease channel, i.e. gossip) or inside its static `range`, persisted in `<stateDir>/ipam.json`.
 *
 *   allocate(network, owner, requested?)   serialized (parallel CNI ADDs queue here):
 *     1. requested addresses: inside the subnet, not reserved, not allocated here, not inside a
 *        block another host validly holds → taken as is;
 *     2. otherwise the lowest free address of a settled block we still win;
 *     3. no room: lease a new block (first free candidate from a per-node offset; an expired
 *        holder's block is reclaimed with gen + 1), announce it, wait `settleMs`, and use it only
 *        if we still win it (else try the next one);
 *     4. persist (atomic write) before answering.
 *   release(network, owner)   frees the owner's addresses (persisted); blocks stay leased.
 *   reconcile()               on every channel change: blocks we lost are dropped (counted in
 *                             `stats.blocksLost`; addresses already given out there stay with
 *                             their endpoints and are counted in `stats.conflictedAddresses`).
 */
import type { Clock } from '../clock';
import type { NetworkIpam } from '../config/types';
import { EndpointError, ERR_ADDRESS_OUTSIDE, ERR_ADDRESS_TAKEN, ERR_IPAM_EXHAUSTED, ERR_UNKNOWN_NETWORK, StateError } from '../errors';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { contains, formatCidr, parseCidr, parseIp, formatIp } from './cidr';
import type { LeaseChannel } from './channel';
import { BlockLease, Claim, validClaims, winner } from './leases';
import { Assigned, Subnet, candidateBlocks, firstFree, inSubnet, reserved, subnetsOf } from './pool';
import { StateStore, readVersioned } from './state-store';
import * as path from 'node:path';

export const STATE_FILE = 'ipam.json';
/** Default wait after announcing a new block before allocating from it (gossip reaches a small cluster well within it). */
export const DEFAULT_SETTLE_MS = 2000;
/** Default grace before a dead/left host's blocks may be reclaimed (below gossip's lan reapAfterMs of 15 min). */
export const DEFAULT_RECLAIM_AFTER_MS = 10 * 60_000;

export interface IpamNetwork {
  name: string;
  ipam: NetworkIpam;
}

export interface IpamOptions {
  node: string;
  networks: IpamNetwork[];
  store: StateStore;
  /** Null: no gossip, every network must have a static range per subnet. */
  channel: LeaseChannel | null;
  clock: Clock;
  /** Wall-clock ms for lease times (comparable between hosts); default Date.now. */
  wallNow?: () => number;
  settleMs?: number;
  reclaimAfterMs?: number;
  logger?: Logger;
}

interface OwnLease extends BlockLease {
  /** May be allocated from (restored from state, or settled after announcing). */
  settled: boolean;
}

interface NetState {
  name: string;
  subnets: Subnet[];
  blocks: OwnLease[];
  /** address → owner */
  allocations: Map<string, string>;
}

interface StateDoc {
  version: 1;
  node: string;
  networks: Record<string, { blocks: BlockLease[]; allocations: Record<string, string> }>;
}

export interface IpamStats {
  blocksLeased: number;
  blocksLost: number;
  blocksReclaimed: number;
  conflictedAddresses: number;
}

export class Ipam {
  readonly stats: IpamStats = { blocksLeased: 0, blocksLost: 0, blocksReclaimed: 0, conflictedAddresses: 0 };
  private readonly nets = new Map<string, NetState>();
  private readonly wallNow: () => number;
  private readonly settleMs: number;
  private readonly graceMs: number;
  private readonly log: Logger;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly o: IpamOptions) {
    this.wallNow = o.wallNow ?? Date.now;
    this.settleMs = o.settleMs ?? DEFAULT_SETTLE_MS;
    this.graceMs = o.reclaimAfterMs ?? DEFAULT_RECLAIM_AFTER_MS;
    this.log = (o.logger ?? nullLogger).child({ component: 'ipam' });
  }

  /** Reads the state (StateError when it cannot), announces our blocks, follows the channel. */
  static open(o: IpamOptions): Ipam {
    const ipam = new Ipam(o);
    ipam.load();
    if (o.channel) {
      o.channel.onChange(() => ipam.reconcile());
      ipam.publish();
      ipam.reconcile();
    }
    return ipam;
  }

  private load(): void {
    const file = path.join(this.o.store.where, STATE_FILE);
    const doc = readVersioned<StateDoc>(this.o.store, STATE_FILE, (d) => {
      if (typeof d.networks !== 'object' || d.networks === null || Array.isArray(d.networks)) return 'networks is not an object';
      for (const [k, v] of Object.entries(d.networks as Record<string, unknown>)) {
        const n = v as { blocks?: unknown; allocations?: unknown };
        if (!n || !Array.isArray(n.blocks) || typeof n.allocations !== 'object' || n.allocations === null) return `networks.${k} lacks blocks/allocations`;
        for (const b of n.blocks as BlockLease[]) {
          if (!b || typeof b.block !== 'string' || !parseCidr(b.block) || typeof b.at !== 'number' || typeof b.gen !== 'number') return `networks.${k}.blocks has a bad entry`;
        }
        for (const [ip, owner] of Object.entries(n.allocations as Record<string, unknown>)) {
          if (!parseIp(ip) || typeof owner !== 'string') return `networks.${k}.allocations has a bad entry ${JSON.stringify(ip)}`;
        }
      }
      return null;
    });
    for (const n of this.o.networks) {
      const st: NetState = { name: n.name, subnets: subnetsOf(n.ipam), blocks: [], allocations: new Map() };
      const saved = doc?.networks[n.name];
      if (saved) {
        for (const b of saved.blocks) {
          const c = parseCidr(b.block)!;
          if (st.subnets.some((s) => s.cidr.family === c.family && c.prefix >= s.cidr.prefix && contains(s.cidr, c.family, c.base))) {
            st.blocks.push({ network: n.name, block: formatCidr(c), at: b.at, gen: b.gen, settled: true });
          }
        }
        for (const [ip, owner] of Object.entries(saved.allocations)) {
          if (st.subnets.some((s) => inSubnet(s, ip) !== null)) st.allocations.set(ip, owner);
        }
      }
      this.nets.set(n.name, st);
    }
    if (doc && doc.node !== this.o.node) {
      throw new StateError(file, `it belongs to node "${doc.node}", this is "${this.o.node}"`);
    }
  }

  private persist(): void {
    const doc: StateDoc = { version: 1, node: this.o.node, networks: {} };
    for (const n of this.nets.values()) {
      doc.networks[n.name] = {
        blocks: n.blocks.map(({ network, block, at, gen }) => ({ network, block, at, gen })),
        allocations: Object.fromEntries([...n.allocations].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
      };
    }
    this.o.store.write(STATE_FILE, doc);
  }

  private publish(): void {
    this.o.channel?.publish([...this.nets.values()].flatMap((n) => n.blocks.map(({ network, block, at, gen }) => ({ network, block, at, gen }))));
  }

  private net(name: string): NetState {
    const n = this.nets.get(name);
    if (!n) throw new EndpointError(ERR_UNKNOWN_NETWORK, `network "${name}" has no IPAM (no subnet configured)`, true);
    return n;
  }

  /**
   * Networks added or removed while running (a reload, a runtime network): a new one's subnets
   * become allocatable (no-op when known); a removed one's blocks are given up (announced) and its
   * allocations forgotten.
   */
  setNetworks(networks: IpamNetwork[]): void {
    const names = new Set(networks.map((n) => n.name));
    let removed = false;
    for (const name of [...this.nets.keys()]) {
      if (names.has(name)) continue;
      this.nets.delete(name);
      removed = true;
    }
    for (const n of networks) {
      if (!this.nets.has(n.name)) this.nets.set(n.name, { name: n.name, subnets: subnetsOf(n.ipam), blocks: [], allocations: new Map() });
    }
    if (removed) {
      this.persist();
      this.publish();
    }
  }

  has(network: string): boolean {
    return this.nets.has(network);
  }

  /** Serializes `fn` after every earlier allocate/release. */
  private serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const p = this.queue.catch(() => undefined).then(fn);
    this.queue = p;
    return p;
  }

  /**
   * Addresses for `owner` (one per subnet), or the `requested` ones (canonical address text,
   * at most one per family; families not requested are allocated). Idempotent per owner: an
   * owner that already has addresses gets them back.
   */
  allocate(network: string, owner: string, requested: string[] = []): Promise<Assigned[]> {
    return this.serial(() => this.allocateNow(network, owner, requested, null));
  }

  /**
   * One address for `owner` in the subnet `subnet` only (its canonical text), or the `requested`
   * one there; the network's other subnets are left alone (a runtime that asks per address family,
   * like Docker's IPAM driver). Idempotent per owner like `allocate`.
   */
  allocateIn(network: string, owner: string, subnet: string, requested: string[] = []): Promise<Assigned[]> {
    return this.serial(() => {
      const s = this.net(network).subnets.find((x) => x.text === subnet);
      if (!s) throw new EndpointError(ERR_ADDRESS_OUTSIDE, `${subnet} is not a subnet of network ${network}`, true);
      return this.allocateNow(network, owner, requested, s);
    });
  }

  /** Gives every address of `from` on `network` to `to` (persisted); returns them. */
  transfer(network: string, from: string, to: string): Promise<string[]> {
    return this.serial(() => {
      const n = this.nets.get(network);
      if (!n) return [];
      const moved = [...n.allocations].filter(([, o]) => o === from).map(([ip]) => ip);
      for (const ip of moved) n.allocations.set(ip, to);
      if (moved.length) {
        try {
          this.persist();
        } catch (e) {
          for (const ip of moved) n.allocations.set(ip, from);
          throw e;
        }
      }
      return moved;
    });
  }

  private async allocateNow(network: string, owner: string, requested: string[], only: Subnet | null): Promise<Assigned[]> {
    const n = this.net(network);
    const mine = [...n.allocations].filter(([, o]) => o === owner).map(([ip]) => ip);
    if (mine.length > 0) return this.describe(n, mine);
    const want = new Map<Subnet, string>();
    for (const r of requested) {
      const s = n.subnets.find((x) => inSubnet(x, r) !== null && (only === null || x === only));
      if (!s) throw new EndpointError(ERR_ADDRESS_OUTSIDE, `address ${r} is outside network ${network}'s subnet${n.subnets.length > 1 ? 's' : ''} ${n.subnets.map((x) => x.text).join(', ')}`, true);
      if (want.has(s)) throw new EndpointError(ERR_ADDRESS_OUTSIDE, `two addresses given for subnet ${s.text}`, true);
      const v = inSubnet(s, r)!;
      const text = formatIp(s.cidr.family, v);
      if (reserved(s, v)) throw new EndpointError(ERR_ADDRESS_TAKEN, `address ${text} is reserved in ${s.text} (network address, broadcast or gateway)`, true);
      if (n.allocations.has(text)) throw new EndpointError(ERR_ADDRESS_TAKEN, `address ${text} is already taken on network ${network} (by ${n.allocations.get(text)})`, true);
      const holder = this.holderOf(n, s, v);
      if (holder) throw new EndpointError(ERR_ADDRESS_TAKEN, `address ${text} is inside block ${holder.block} held by host ${holder.node}`, true);
      want.set(s, text);
    }
    const got: string[] = [];
    try {
      for (const s of n.subnets) {
        if (only !== null && s !== only) continue;
        const ip = want.get(s) ?? (await this.pick(n, s));
        n.allocations.set(ip, owner);
        got.push(ip);
      }
      this.persist();
    } catch (e) {
      for (const ip of got) n.allocations.delete(ip);
      throw e;
    }
    return this.describe(n, got);
  }

  private describe(n: NetState, ips: string[]): Assigned[] {
    const out: Assigned[] = [];
    for (const s of n.subnets) {
      const ip = ips.find((x) => inSubnet(s, x) !== null);
      if (ip) out.push({ address: ip, family: s.cidr.family, prefix: s.cidr.prefix, gateway: s.gatewayText });
    }
    return out;
  }

  /** Another host's valid claim on the block holding `v` (gossip mode), or null. */
  private holderOf(n: NetState, s: Subnet, v: bigint): Claim | null {
    if (!this.o.channel) return null;
    const { valid } = validClaims(this.o.channel.peers(), n.name, this.graceMs);
    for (const c of valid) {
      const b = parseCidr(c.block);
      if (!b || !contains(b, s.cidr.family, v)) continue;
      const own = n.blocks.find((x) => x.block === c.block);
      if (own && winner([{ ...own, node: this.o.node }, c]).node === this.o.node) continue;
      return c;
    }
    return null;
  }

  private taken(n: NetState): Set<string> {
    return new Set(n.allocations.keys());
  }

  /** The next free address in subnet `s` (steps 2–3 of the file comment). */
  private async pick(n: NetState, s: Subnet): Promise<string> {
    const taken = this.taken(n);
    if (!this.o.channel) {
      const r = s.range ?? s.cidr;
      const ip = firstFree(s, r, taken);
      if (!ip) throw new EndpointError(ERR_IPAM_EXHAUSTED, `no free address left in ${s.range ? `this host's range ${formatCidr(r)}` : `subnet ${s.text}`} of network ${n.name}`, false);
      return ip;
    }
    this.reconcile();
    for (const b of n.blocks) {
      const c = parseCidr(b.block)!;
      if (!b.settled || c.family !== s.cidr.family || !contains(s.cidr, c.family, c.base)) continue;
      const ip = firstFree(s, c, taken);
      if (ip) return ip;
    }
    for (let attempt = 0; attempt < 8; attempt++) {
      const lease = this.leaseNew(n, s);
      if (!lease) break;
      await this.settle();
      this.reconcile();
      if (!n.blocks.includes(lease)) continue; // lost it while settling: try the next one
      lease.settled = true;
      this.persist();
      const ip = firstFree(s, parseCidr(lease.block)!, this.taken(n));
      if (ip) return ip;
    }
    throw new EndpointError(ERR_IPAM_EXHAUSTED, `subnet ${s.text} of network ${n.name} is exhausted: no free /${s.hostBlock} block to lease and no free address in this host's blocks`, false);
  }

  private settle(): Promise<void> {
    return new Promise((resolve) => this.o.clock.setTimer(this.settleMs, resolve));
  }

  /** Takes the first block nobody validly holds (reclaiming expired ones); null when none. */
  private leaseNew(n: NetState, s: Subnet): OwnLease | null {
    const { valid, expired } = validClaims(this.o.channel!.peers(), n.name, this.graceMs);
    const held = new Set(valid.map((c) => c.block));
    for (const b of n.blocks) held.add(b.block);
    for (const c of candidateBlocks(s, this.o.node)) {
      const text = formatCidr(c);
      if (held.has(text)) continue;
      const old = expired.filter((e) => e.block === text);
      const gen = old.length ? Math.max(...old.map((e) => e.gen)) + 1 : 0;
      const lease: OwnLease = { network: n.name, block: text, at: this.wallNow(), gen, settled: false };
      n.blocks.push(lease);
      this.stats.blocksLeased++;
      if (old.length) {
        this.stats.blocksReclaimed++;
        this.log.info({ network: n.name, block: text, from: old.map((e) => e.node), gen }, 'block reclaimed from a host down longer than the grace period');
      } else {
        this.log.info({ network: n.name, block: text }, 'block leased');
      }
      this.persist();
      this.publish();
      return lease;
    }
    return null;
  }

  /** Drops the blocks another host wins (the same decision on every host). */
  reconcile(): void {
    if (!this.o.channel) return;
    const peers = this.o.channel.peers();
    let changed = false;
    for (const n of this.nets.values()) {
      const { valid } = validClaims(peers, n.name, this.graceMs);
      for (const b of [...n.blocks]) {
        const rivals = valid.filter((c) => c.block === b.block);
        if (rivals.length === 0) continue;
        const w = winner([{ ...b, node: this.o.node }, ...rivals]);
        if (w.node === this.o.node) continue;
        n.blocks.splice(n.blocks.indexOf(b), 1);
        this.stats.blocksLost++;
        const c = parseCidr(b.block)!;
        const inUse = [...n.allocations.keys()].filter((ip) => { const p = parseIp(ip)!; return contains(c, p.family, p.value); });
        this.stats.conflictedAddresses += inUse.length;
        this.log.warn({ network: n.name, block: b.block, winner: w.node, addressesInUse: inUse }, 'block lost to another host; allocating elsewhere');
        changed = true;
      }
    }
    if (changed) {
      this.persist();
      this.publish();
    }
  }

  /** Frees `owner`'s addresses on `network`; returns them. */
  release(network: string, owner: string): Promise<string[]> {
    return this.serial(() => {
      const n = this.nets.get(network);
      if (!n) return [];
      const freed = [...n.allocations].filter(([, o]) => o === owner).map(([ip]) => ip);
      for (const ip of freed) n.allocations.delete(ip);
      if (freed.length) this.persist();
      return freed;
    });
  }

  /** Owner of every allocated address of `network`. */
  allocations(network: string): Map<string, string> {
    return new Map(this.nets.get(network)?.allocations ?? []);
  }

  /** The blocks this host holds. */
  blocks(): BlockLease[] {
    return [...this.nets.values()].flatMap((n) => n.blocks.map(({ network, block, at, gen }) => ({ network, block, at, gen })));
  }

  subnets(network: string): Subnet[] {
    return this.nets.get(network)?.subnets ?? [];
  }

  status(): unknown {
    return {
      mode: this.o.channel ? 'gossip' : 'static',
      stats: this.stats,
      networks: [...this.nets.values()].map((n) => ({
        name: n.name,
        subnets: n.subnets.map((s) => ({ subnet: s.text, gateway: s.gatewayText, hostBlock: s.hostBlock, range: s.range ? formatCidr(s.range) : null })),
        blocks: n.blocks.map((b) => b.block),
        allocated: n.allocations.size,
      })),
    };
  }
}
