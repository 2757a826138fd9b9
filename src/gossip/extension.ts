/**
 * The gossip agent extension: runs a GossipNode on the real UDP/TCP transport and feeds the data
 * plane from membership.
 *
 *   start: cluster keyring (gossip.keyFile) → bind gossip.address:port → announce our record
 *          (name, underlay VXLAN endpoint, VNIs served, local endpoints from the bridges, the
 *          crypto extension's public key) → join the seeds → serve GET /v1/members, /v1/fdb.
 *   member alive/updated → FDB: remote MAC → that host (fdbSetRemote); ARP/ND suppression
 *          entries (neighSet); per-VNI flood lists = hosts serving that VNI (setNetworkPeers).
 *          Incremental: a record update re-programs only the endpoints that changed (added, or
 *          their addresses changed) and releases those that went; an endpoint already installed
 *          as announced is not touched again, so an update of another part of the record (a
 *          section: 'reach', 'ack', 'born', policy …) issues no FDB / neighbour operation, and
 *          flood lists are recomputed only when the member's state, underlay or VNIs changed.
 *          An endpoint not fully installed (refused, contested, table full) is tried again at
 *          the member's next update (and contested ones when their owner lets go).
 *          Ownership: a member's record describes only that member's endpoints. A MAC or IP that
 *          is local here, or that another member already announced, is refused (counted in
 *          status `refused`, rate-limited warn); a member announcing our underlay or another
 *          live member's is not programmed at all. Entries are installed and deleted with their
 *          owner (the member's underlay), and a member's deletes only remove what it owns; a
 *          refused claim is retried when the owner lets go of the entry.
 *   member dead/left/reaped → the entries it owns dropped (fdbDelete / fdbRemoveByPeer of its
 *          underlay), neighbours deleted, flood lists recomputed.
 *   local endpoints change (Datapath.localVersion, polled) → our record is re-announced (cut into
 *          parts by the node when larger than one datagram; bounded to what a record can carry);
 *          a MAC or address that left the bridge gets other members' entries naming it applied
 *          again (refused while it was local here, or replaced by local learning: reassertLeft).
 *   stop:  graceful leave (others show us `left`), then shutdown.
 */
import * as fs from 'node:fs';
import type { Agent, AgentExtension } from '../agent/agent';
import { sendJson } from '../api/server';
import type { Clock, TimerHandle } from '../clock';
import type { Config, Endpoint } from '../config/types';
import type { GossipMetricsView } from '../metrics/sources';
import { ConfigError } from '../errors';
import { type Logger, LogLimiter } from '../log';
import { formatAddr, parseAddr } from './addr';
import { GossipTuning, tuningFor } from './config';
import { Keyring, parseKeyFile, sodiumReady } from './keyring';
import { LIMITS } from './codec';
import { EndpointRecord, MemberState, NodeRecord, RecordSection } from './record';
import type { GossipApi } from './api';
import type { JoinState } from './join';
import { GossipNode, MemberEvent, MemberInfo } from './swim';
import { gossipMetricsView } from './metrics-view';
import { Transport } from './transport';
import { UdpGossipTransport } from './udp-transport';

export interface GossipExtensionOptions {
  /** Clock for rate-limited logs before start (default: the agent's, else the system clock). */
  clock?: Clock;
  /** Transport override (tests: a MemoryTransport); default UDP+TCP on gossip.address:port. */
  transport?: Transport;
  /** Cluster keys override (first primary); default: read gossip.keyFile. */
  keys?: Uint8Array[];
  tuning?: Partial<GossipTuning>;
  /** ms between checks of the bridges' endpoints for changes; default 1000. */
  endpointPollMs?: number;
}

interface Programmed {
  underlay: Endpoint;
  /** "vni|mac" → mac: entries this member owns (installed for it) */
  macs: Map<string, { vni: number; mac: string }>;
  /** "vni|ip" → ip: neighbour entries this member owns */
  ips: Map<string, { vni: number; ip: string }>;
  /**
   * "vni|mac" → the endpoint as last applied: its VNI, MAC and addresses (`ips`, and `sig`, the
   * same as one comparable string) and whether every operation for it succeeded (`done`). A done
   * endpoint announced again unchanged is not re-programmed.
   */
  applied: Map<string, { vni: number; mac: string; ips: readonly string[]; sig: string; done: boolean }>;
}

/** The addresses of an endpoint as one comparable string. */
const ipsSig = (ips: readonly string[]): string => ips.join(',');

/** Why part of a member's record was not installed (status `refused`). */
export type RefusedReason = 'local_mac' | 'local_ip' | 'mac_owned_by_other' | 'ip_owned_by_other' | 'underlay_in_use';

/**
 * The part of the Datapath this extension drives. Each entry is installed and removed with its
 * `owner` (the underlay endpoint of the member that announced it), so the data path can refuse a
 * change to an entry somebody else owns.
 */
export interface GossipDatapath {
  network(vni: number): { tap?: { mac?: Uint8Array } } | undefined;
  networks(): { config: { name: string; vni: number }; fdb: { entries(): { mac: string; kind: string; peer: unknown; idleMs: number; ipv4: string[]; ipv6: string[] }[] } }[];
  fdbSetRemote(vni: number, mac: string, endpoint: Endpoint, owner: Endpoint): boolean;
  fdbDelete(vni: number, mac: string, owner: Endpoint): boolean;
  fdbRemoveByPeer(endpoint: Endpoint): number;
  neighSet(vni: number, ip: string, mac: string, owner: Endpoint): boolean;
  neighDelete(vni: number, ip: string, owner: Endpoint): boolean;
  setNetworkPeers(vni: number, endpoints: readonly Endpoint[] | null): boolean;
  localEndpoints(vni: number): { mac: string; ipv4: string[]; ipv6: string[] }[];
  localVersion(vni: number): number;
  neighAnswered?(): unknown;
}

/** Bytes an endpoint takes in a record (codec.ts writeRecordBody). */
function endpointBytes(ips: readonly string[]): number {
  let n = 3 + 6 + 1;
  for (const ip of ips) n += ip.includes(':') ? 17 : 5;
  return n;
}
/** Room for endpoints in a record: maxRecord less the fixed fields at their largest. */
const ENDPOINT_BYTES_MAX = LIMITS.maxRecord - 2 * 1024 - 3 * LIMITS.maxVnis;

/** Parses a record's "host:port" underlay into an Endpoint. */
export function underlayEndpoint(text: string): Endpoint | null {
  const p = parseAddr(text);
  return p ? { address: p.host, port: p.port, family: p.family } : null;
}

export function readKeyring(file: string): Uint8Array[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('gossip.keyFile', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseKeyFile(text, file);
}

export class GossipExtension implements AgentExtension, GossipApi {
  readonly name = 'gossip';
  node: GossipNode | null = null;
  private agent: Agent | null = null;
  private config: Config;
  private readonly log: Logger;
  private readonly programmed = new Map<string, Programmed>();
  private pollTimer: TimerHandle | null = null;
  private floodTimer: TimerHandle | null = null;
  private lastLocal = '';
  /** MACs and addresses on this host's bridges at the last change, per VNI (reassertLeft). */
  private bridgeSeen = new Map<number, Set<string>>();
  private clock!: Clock;
  /** Record sections published by other extensions (setSection), by name. */
  private readonly localSections = new Map<string, string>();
  /** Endpoints other extensions announce (setAnnouncedEndpoints), by source. */
  private readonly announced = new Map<string, EndpointRecord[]>();
  private readonly changeListeners = new Set<() => void>();
  private readonly eventListeners = new Set<(ev: MemberEvent) => void>();
  /** Our public key as the crypto extension announced it (setPublicKey). */
  private publicKey = '';
  private announceDirty = false;
  /** "vni|mac" / "vni|ip" → the member that owns the entry here. */
  private readonly macOwner = new Map<string, string>();
  private readonly ipOwner = new Map<string, string>();
  /** Members with a claim refused because another member owned the entry (retried on release). */
  private readonly contested = new Set<string>();
  private syncing = false;
  readonly refused: Record<RefusedReason, number> = { local_mac: 0, local_ip: 0, mac_owned_by_other: 0, ip_owned_by_other: 0, underlay_in_use: 0 };
  /** Local endpoints left out of our record because it would exceed the codec's limits. */
  endpointsNotAnnounced = 0;
  private readonly limited: LogLimiter;

  constructor(config: Config, logger: Logger, private readonly opts: GossipExtensionOptions = {}) {
    if (!config.gossip) throw new ConfigError('gossip', 'gossip section missing');
    this.config = config;
    this.log = logger.child({ component: 'gossip' });
    this.limited = new LogLimiter(this.log, { clock: opts.clock });
  }

  private get dp(): GossipDatapath | null {
    return this.agent?.datapath ?? null;
  }

  async start(agent: Agent): Promise<void> {
    this.agent = agent;
    this.clock = agent.clock;
    const g = this.config.gossip!;
    await sodiumReady();
    const keys = this.opts.keys ?? (g.keyFile ? readKeyring(g.keyFile) : null);
    if (!keys) throw new ConfigError('gossip.keyFile', 'a cluster key is required (every gossip packet is encrypted); create one with `vxmesh keygen cluster`');
    const tuning = tuningFor(g.profile, this.opts.tuning);
    const transport = this.opts.transport ?? (await UdpGossipTransport.bind({ host: g.address, port: g.port, streamTimeoutMs: tuning.streamTimeoutMs }));
    const seeds = g.seeds.map((s) => formatAddr(s.address, s.port));
    const node = new GossipNode({
      name: this.config.node.name,
      transport,
      keyring: new Keyring(keys),
      clock: agent.clock,
      tuning,
      underlay: formatAddr(this.config.underlay.address, this.config.underlay.port),
      vnis: this.config.networks.map((n) => n.vni),
      endpoints: this.localEndpoints(),
      publicKey: this.publicKey,
      seeds,
      // Wall-clock seconds: a restarted agent out-ranks every record of its previous life.
      initialIncarnation: Math.floor(Date.now() / 1000),
      logger: this.log,
    });
    this.node = node;
    node.on((ev) => this.onEvent(ev));
    node.start();
    if (this.localSections.size > 0) node.updateLocal({ sections: this.sectionList() });
    this.log.info({ address: transport.address, seeds, profile: g.profile }, 'gossip started');
    node.startJoining(); // now, then 1 s, 2 s, 4 s … 10 s while alone (join.ts); logs its failures
    agent.api?.route('GET', '/v1/members', (_req, res) => sendJson(res, 200, { members: this.members() }));
    agent.api?.route('GET', '/v1/fdb', (_req, res) => sendJson(res, 200, { networks: this.fdb() }));
    const every = this.opts.endpointPollMs ?? 1000;
    this.pollTimer = agent.clock.setInterval(every, () => this.pollLocal());
  }

  // --- API for other extensions (endpoints, IPAM): record sections and announced endpoints ---

  /**
   * Publishes (or with null removes) this node's record section `name` ([a-z0-9-]{1,32}, data at
   * most 64 KiB): re-announced at once (new incarnation). Before start it is kept and announced
   * at start. Throws RangeError when the record would not encode (too large).
   */
  setSection(name: string, data: string | null): void {
    if (!/^[a-z0-9-]{1,32}$/.test(name)) throw new RangeError(`bad section name "${name}"`);
    if (data === null) this.localSections.delete(name);
    else this.localSections.set(name, data);
    this.node?.updateLocal({ sections: this.sectionList() });
  }

  /** Section `name` of every member we know (ourselves included), with its state. */
  sections(name: string): { node: string; state: MemberState; changedAt: number; self: boolean; data: string }[] {
    const node = this.node;
    if (!node) return [];
    const out: { node: string; state: MemberState; changedAt: number; self: boolean; data: string }[] = [];
    for (const m of node.members()) {
      const s = m.record.sections?.find((x) => x.name === name);
      if (s) out.push({ node: m.name, state: m.state, changedAt: m.changedAt, self: m.name === node.name, data: s.data });
    }
    return out;
  }

  /**
   * Endpoints announced with those learned on the bridges, so that every host's FDB and ARP/ND
   * suppression know them before their first frame. `source` names the caller (replaces its list).
   */
  setAnnouncedEndpoints(source: string, eps: EndpointRecord[]): void {
    if (eps.length === 0) this.announced.delete(source);
    else this.announced.set(source, eps.map((e) => ({ vni: e.vni, mac: e.mac.toLowerCase(), ips: [...e.ips] })));
    this.announceDirty = true;
    this.pollLocal();
  }

  /** Every member we know, ourselves included (GossipApi). */
  memberInfos(): MemberInfo[] {
    return this.node ? this.node.members() : [];
  }

  /** Member events, optionally replaying a `join` per live member already known (GossipApi). */
  onMemberEvent(fn: (ev: MemberEvent) => void, opts: { replay?: boolean } = {}): () => void {
    this.eventListeners.add(fn);
    if (opts.replay && this.node) {
      for (const m of this.node.members()) {
        if (m.name !== this.node.name && (m.state === 'alive' || m.state === 'suspect')) fn({ type: 'join', name: m.name, record: m.record });
      }
    }
    return () => this.eventListeners.delete(fn);
  }

  /** Announces this host's public key in its record (before start: at start). */
  setPublicKey(key: string): void {
    this.publicKey = key;
    if (!this.node || this.node.self.publicKey === key) return;
    try {
      this.node.updateLocal({ publicKey: key });
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cannot announce the public key');
    }
  }

  /** Calls `cb` after any member change (join, update, state change, reap); returns an unsubscribe. */
  onMembersChange(cb: () => void): () => void {
    this.changeListeners.add(cb);
    return () => this.changeListeners.delete(cb);
  }

  /** This node's name in gossip. */
  get nodeName(): string {
    return this.config.node.name;
  }

  private sectionList(): RecordSection[] {
    return [...this.localSections].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([name, data]) => ({ name, data }));
  }

  /** The endpoints on this host's bridges, per VNI served (Datapath.localEndpoints). */
  private bridgeEndpoints(): Map<number, { mac: string; ipv4: string[]; ipv6: string[] }[]> {
    const out = new Map<number, { mac: string; ipv4: string[]; ipv6: string[] }[]>();
    const dp = this.dp;
    for (const n of dp ? this.config.networks : []) out.set(n.vni, dp!.localEndpoints(n.vni));
    return out;
  }

  /** Our bridges' endpoints plus the announced ones (only networks we serve; bounded by the codec limits). */
  private localEndpoints(bridge = this.bridgeEndpoints()): EndpointRecord[] {
    const out: EndpointRecord[] = [];
    const byKey = new Map<string, EndpointRecord>();
    const add = (vni: number, mac: string, ips: string[]): void => {
      const k = `${vni}|${mac}`;
      const prev = byKey.get(k);
      if (prev) prev.ips = [...new Set([...prev.ips, ...ips])].slice(0, LIMITS.maxIpsPerEndpoint);
      else byKey.set(k, { vni, mac, ips: ips.slice(0, LIMITS.maxIpsPerEndpoint) });
    };
    for (const list of this.announced.values()) for (const e of list) add(e.vni, e.mac, e.ips);
    for (const [vni, list] of bridge) for (const e of list) add(vni, e.mac, [...e.ipv4, ...e.ipv6]);
    // Bounded to what one record can carry (beside its sections), counted and warned when cut.
    let room = ENDPOINT_BYTES_MAX;
    for (const [name, data] of this.localSections) room -= 8 + Buffer.byteLength(name) + Buffer.byteLength(data);
    let bytes = 0;
    let left = 0;
    for (const e of byKey.values()) {
      const size = endpointBytes(e.ips);
      if (out.length >= LIMITS.maxEndpoints || bytes + size > room) {
        left++;
        continue;
      }
      bytes += size;
      out.push(e);
    }
    if (left > 0) {
      this.limited.log('warn', 'endpoints-not-announced', { announced: out.length, left }, 'more local endpoints than one record can carry: some are not announced');
    }
    this.endpointsNotAnnounced = left;
    out.sort((a, b) => a.vni - b.vni || (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
    return out;
  }

  private pollLocal(): void {
    const node = this.node;
    const dp = this.dp;
    if (!node || !dp) return;
    const version = this.config.networks.map((n) => dp.localVersion(n.vni)).join(',');
    if (version === this.lastLocal && !this.announceDirty) return;
    this.announceDirty = false;
    this.lastLocal = version;
    const bridge = this.bridgeEndpoints();
    try {
      node.updateLocal({ endpoints: this.localEndpoints(bridge) });
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cannot announce local endpoints');
    }
    this.reassertLeft(bridge);
  }

  /**
   * A MAC or address that leaves this host's bridge (aged out, the container gone) may have held
   * back other members' entries: their claim on it was refused while it was local here
   * (local_mac / local_ip), or the static entry gossip had installed was replaced when the MAC
   * showed up here for a moment (local learning overrides anything). Nothing else would program
   * those entries again until the member's record changes — the reconciliation would find them
   * missing up to 30 s later — so the members' endpoints that name what left are applied again now.
   * O(local endpoints) per change of the bridges, plus O(endpoints) of the members when something left.
   */
  private reassertLeft(bridge: Map<number, { mac: string; ipv4: string[]; ipv6: string[] }[]>): void {
    const prev = this.bridgeSeen;
    const now = new Map<number, Set<string>>();
    for (const [vni, list] of bridge) {
      const seen = new Set<string>();
      for (const e of list) {
        seen.add(e.mac);
        for (const ip of e.ipv4) seen.add(ip);
        for (const ip of e.ipv6) seen.add(ip);
      }
      now.set(vni, seen);
    }
    this.bridgeSeen = now;
    const left = new Map<number, Set<string>>();
    for (const [vni, was] of prev) {
      const is = now.get(vni);
      for (const x of was) {
        if (is?.has(x)) continue;
        let l = left.get(vni);
        if (!l) left.set(vni, (l = new Set()));
        l.add(x);
      }
    }
    if (left.size === 0) return;
    const members: string[] = [];
    for (const [name, p] of this.programmed) {
      let hit = false;
      for (const a of p.applied.values()) {
        const gone = left.get(a.vni);
        if (!gone) continue;
        if (gone.has(a.mac) || a.ips.some((ip) => gone.has(ip))) {
          a.done = false;
          hit = true;
        }
      }
      if (hit) members.push(name);
    }
    for (const name of members) this.sync(name);
  }

  private onEvent(ev: MemberEvent): void {
    for (const fn of this.eventListeners) {
      try {
        fn(ev);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'member event listener failed');
      }
    }
    if (ev.name === this.config.node.name) return;
    const lvl = ev.type === 'dead' || ev.type === 'left' || ev.type === 'join' ? 'info' : 'debug';
    this.log[lvl]({ member: ev.name, event: ev.type, incarnation: ev.record.incarnation }, `member ${ev.type}`);
    this.sync(ev.name);
    if (ev.type !== 'update' || !ev.previous || floodInputsChanged(ev.previous, ev.record)) this.scheduleFlood();
    for (const cb of this.changeListeners) {
      try {
        cb();
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'member change listener failed');
      }
    }
  }

  /**
   * Brings the data plane in line with our view of member `name`: programs the endpoints of its
   * record that are new, changed or not fully installed yet, and releases those it no longer
   * announces. `all`: re-program every endpoint (reload: the networks served may have changed).
   */
  private sync(name: string, all = false): void {
    const dp = this.dp;
    const node = this.node;
    if (!dp || !node) return;
    const m = node.member(name);
    const prev = this.programmed.get(name);
    const live = m && (m.state === 'alive' || m.state === 'suspect');
    let ep = live ? underlayEndpoint(m.record.underlay) : null;
    if (ep && this.underlayTaken(name, ep)) {
      this.refuse('underlay_in_use', name, { underlay: m!.record.underlay }, 'member announces an underlay address that is ours or another member\'s: not programmed');
      ep = null;
    }
    if (!ep) {
      if (prev) {
        this.release(name, prev, new Map(), new Map());
        dp.fdbRemoveByPeer(prev.underlay);
        this.programmed.delete(name);
      }
      this.contested.delete(name);
      this.retryContested(name);
      return;
    }
    if (prev && (prev.underlay.address !== ep.address || prev.underlay.port !== ep.port)) {
      // Moved: what it owned at the old address goes; it is installed again below.
      this.release(name, prev, new Map(), new Map());
      dp.fdbRemoveByPeer(prev.underlay);
      this.programmed.delete(name);
    }
    const before = this.programmed.get(name);
    const cur: Programmed = { underlay: ep, macs: new Map(), ips: new Map(), applied: new Map() };
    let local: Map<number, { macs: Set<string>; ips: Set<string> }> | null = null;
    const localOf = (vni: number): { macs: Set<string>; ips: Set<string> } => {
      local ??= new Map();
      let l = local.get(vni);
      if (!l) {
        l = { macs: new Set(), ips: new Set() };
        const own = dp.network(vni)?.tap?.mac;
        if (own && own.length === 6) l.macs.add([...own].map((b) => b.toString(16).padStart(2, '0')).join(':'));
        for (const e of dp.localEndpoints(vni)) {
          l.macs.add(e.mac);
          for (const ip of e.ipv4) l.ips.add(ip);
          for (const ip of e.ipv6) l.ips.add(ip);
        }
        local.set(vni, l);
      }
      return l;
    };
    let contested = false;
    for (const e of m!.record.endpoints) {
      if (!dp.network(e.vni)) continue;
      const k = `${e.vni}|${e.mac}`;
      const sig = ipsSig(e.ips);
      const was = all || cur.applied.has(k) ? undefined : before?.applied.get(k);
      if (was && was.done && was.sig === sig) {
        // Installed as announced: nothing to do (its entries stay this member's).
        cur.applied.set(k, was);
        cur.macs.set(k, { vni: e.vni, mac: e.mac });
        for (const ip of e.ips) cur.ips.set(`${e.vni}|${ip}`, { vni: e.vni, ip });
        continue;
      }
      const applied = { vni: e.vni, mac: e.mac, ips: e.ips, sig, done: false };
      cur.applied.set(k, applied);
      const l = localOf(e.vni);
      if (l.macs.has(e.mac)) {
        this.refuse('local_mac', name, { vni: e.vni, mac: e.mac }, 'member announces a MAC that is local here: refused');
        continue;
      }
      const owner = this.macOwner.get(k);
      if (owner !== undefined && owner !== name) {
        contested = true;
        this.refuse('mac_owned_by_other', name, { vni: e.vni, mac: e.mac, owner }, 'member announces a MAC another member owns: refused');
        continue;
      }
      this.macOwner.set(k, name);
      cur.macs.set(k, { vni: e.vni, mac: e.mac });
      let done = dp.fdbSetRemote(e.vni, e.mac, ep, ep);
      if (!done) this.log.debug({ member: name, vni: e.vni, mac: e.mac }, 'FDB full, network gone or entry refused');
      for (const ip of e.ips) {
        const ik = `${e.vni}|${ip}`;
        if (l.ips.has(ip)) {
          done = false;
          this.refuse('local_ip', name, { vni: e.vni, ip }, 'member announces an address that is local here: refused');
          continue;
        }
        const ipOwner = this.ipOwner.get(ik);
        if (ipOwner !== undefined && ipOwner !== name) {
          done = false;
          contested = true;
          this.refuse('ip_owned_by_other', name, { vni: e.vni, ip, owner: ipOwner }, 'member announces an address another member owns: refused');
          continue;
        }
        try {
          if (!dp.neighSet(e.vni, ip, e.mac, ep)) done = false;
          this.ipOwner.set(ik, name);
          cur.ips.set(ik, { vni: e.vni, ip });
        } catch (err) {
          done = false;
          this.log.debug({ member: name, ip, err: (err as Error).message }, 'unusable neighbour entry');
        }
      }
      applied.done = done;
    }
    if (contested) this.contested.add(name);
    else this.contested.delete(name);
    this.programmed.set(name, cur);
    if (before && this.release(name, before, cur.macs, cur.ips)) this.retryContested(name);
  }

  /**
   * Deletes the entries in `prev` that member `name` owns and no longer announces (not in `keepMacs`
   * / `keepIps`); entries owned by another member are left alone. Returns whether any was released.
   */
  private release(name: string, prev: Programmed, keepMacs: Map<string, unknown>, keepIps: Map<string, unknown>): boolean {
    const dp = this.dp!;
    let released = false;
    for (const [k, { vni, mac }] of prev.macs) {
      if (keepMacs.has(k) || this.macOwner.get(k) !== name) continue;
      this.macOwner.delete(k);
      dp.fdbDelete(vni, mac, prev.underlay);
      released = true;
    }
    for (const [k, { vni, ip }] of prev.ips) {
      if (keepIps.has(k) || this.ipOwner.get(k) !== name) continue;
      this.ipOwner.delete(k);
      dp.neighDelete(vni, ip, prev.underlay);
      released = true;
    }
    return released;
  }

  /** Members whose claims were refused get another look once an owner let go of entries. */
  private retryContested(except: string): void {
    if (this.syncing || this.contested.size === 0) return;
    this.syncing = true;
    try {
      for (const other of [...this.contested]) if (other !== except) this.sync(other);
    } finally {
      this.syncing = false;
    }
  }

  /** Is `ep` our own underlay, or the underlay of another member programmed here? */
  private underlayTaken(name: string, ep: Endpoint): boolean {
    const u = this.config.underlay;
    if (ep.address === u.address && ep.port === u.port) return true;
    for (const [other, p] of this.programmed) {
      if (other !== name && p.underlay.address === ep.address && p.underlay.port === ep.port) return true;
    }
    return false;
  }

  private refuse(reason: RefusedReason, member: string, fields: object, msg: string): void {
    this.refused[reason]++;
    this.limited.log('warn', `refused:${reason}:${member}`, { member, reason, ...fields }, msg);
  }

  private scheduleFlood(): void {
    if (this.floodTimer) return;
    this.floodTimer = this.clock.setTimer(20, () => {
      this.floodTimer = null;
      this.recomputeFlood();
    });
  }

  /** Flood list per VNI: the live members serving it (plus static peers, if any). */
  private recomputeFlood(): void {
    const dp = this.dp;
    const node = this.node;
    if (!dp || !node) return;
    const byVni = new Map<number, Endpoint[]>();
    for (const n of this.config.networks) byVni.set(n.vni, [...this.config.peers]);
    for (const m of node.members()) {
      if (m.name === node.name || (m.state !== 'alive' && m.state !== 'suspect')) continue;
      const ep = this.programmed.get(m.name)?.underlay; // members refused for their underlay get no floods
      if (!ep) continue;
      for (const v of m.record.vnis) byVni.get(v)?.push(ep);
    }
    for (const [vni, eps] of byVni) dp.setNetworkPeers(vni, eps);
  }

  /** Members for status and GET /v1/members. */
  members(): {
    name: string; state: string; incarnation: number; since: string; address: string; underlay: string;
    vnis: number[]; endpoints: number; self: boolean;
  }[] {
    const node = this.node;
    if (!node) return [];
    const nowWall = Date.now();
    const now = this.clock.now();
    return node.members().map((m) => ({
      name: m.name,
      state: m.state,
      incarnation: m.incarnation,
      since: new Date(nowWall - (now - m.changedAt)).toISOString(),
      address: m.record.gossip,
      underlay: m.record.underlay,
      vnis: m.record.vnis,
      endpoints: m.record.endpoints.length,
      self: m.name === node.name,
    }));
  }

  /** FDB entries per network for GET /v1/fdb. */
  fdb(): { network: string; vni: number; entries: { mac: string; kind: string; peer: string | null; idleMs: number; ips: string[] }[] }[] {
    const dp = this.agent?.datapath;
    if (!dp) return [];
    return dp.networks().map((n) => ({
      network: n.config.name,
      vni: n.config.vni,
      entries: n.fdb.entries().map((e) => ({
        mac: e.mac,
        kind: e.kind,
        peer: e.peer ? (e.peer as unknown as { label: string }).label : null,
        idleMs: Math.round(e.idleMs),
        ips: [...e.ipv4, ...e.ipv6],
      })),
    }));
  }

  status(): unknown {
    const node = this.node;
    if (!node) return { started: false };
    const fdbEntries = this.agent?.datapath ? this.agent.datapath.networks().reduce((n, x) => n + x.fdb.entries().length, 0) : 0;
    return {
      self: node.name,
      address: node.transport.address,
      incarnation: node.self.incarnation,
      profile: this.config.gossip?.profile,
      /** Gossip join: joined | joining (attempts, next try, the failure per seed) | seed | none. */
      join: node.joinState(),
      liveMembers: node.liveMembers,
      healthScore: node.awareness.getHealthScore(),
      fdbEntries,
      /** ARP requests / neighbour solicitations answered locally from gossip, per network. */
      neighAnswered: this.agent?.datapath?.neighAnswered ? this.agent.datapath.neighAnswered() : [],
      members: this.members(),
      /** Parts of member records not installed, by reason (ownership checks). */
      refused: { ...this.refused },
      endpointsNotAnnounced: this.endpointsNotAnnounced,
      stats: node.stats,
    };
  }

  /** Where joining the cluster stands (readiness check `gossipJoined`, status `join`). */
  joinState(): JoinState {
    if (this.node) return this.node.joinState();
    const g = this.config.gossip!;
    const self = formatAddr(g.address, g.port);
    const seeds = g.seeds.map((s) => formatAddr(s.address, s.port)).filter((s) => s !== self);
    const state = g.seeds.length === 0 ? 'none' : seeds.length < g.seeds.length ? 'seed' : 'joining';
    return { state, seeds, attempts: 0, nextAttemptInMs: null, failures: {}, lastError: null };
  }

  ready(): boolean {
    return this.node !== null && this.node.running;
  }

  metricsView(joined?: () => boolean): GossipMetricsView | null {
    return this.node ? gossipMetricsView(this.node, joined ?? (() => this.ready())) : null;
  }

  reload(config: Config): void {
    const node = this.node;
    this.config = config;
    if (!node || !config.gossip) return;
    node.seeds = config.gossip.seeds.map((s) => formatAddr(s.address, s.port));
    node.joiner.seedsChanged();
    if (config.gossip.keyFile && !this.opts.keys) {
      try {
        node.keyring.replace(readKeyring(config.gossip.keyFile));
        this.log.info({ keys: node.keyring.size }, 'cluster keyring reloaded');
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'cluster keyring reload failed; keeping the old keys');
      }
    }
    try {
      node.updateLocal({ vnis: config.networks.map((n) => n.vni), endpoints: this.localEndpoints() });
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cannot announce the new networks');
    }
    for (const m of node.members()) if (m.name !== node.name) this.sync(m.name, true);
    this.recomputeFlood();
  }

  async stop(): Promise<void> {
    this.pollTimer?.cancel();
    this.floodTimer?.cancel();
    const node = this.node;
    if (!node) return;
    await new Promise<void>((resolve) => node.leave(() => resolve()));
    await node.shutdown();
    this.log.info({}, 'left the cluster');
  }
}

/** Whether a record update can change the flood lists (the member's underlay or VNIs). */
function floodInputsChanged(a: NodeRecord, b: NodeRecord): boolean {
  if (a.underlay !== b.underlay || a.vnis.length !== b.vnis.length) return true;
  for (let i = 0; i < a.vnis.length; i++) if (a.vnis[i] !== b.vnis[i]) return true;
  return false;
}

/** Factory for src/cli/extensions.ts: a gossip extension when the config has a `gossip` section. */
export function createGossipExtension(config: Config, logger: Logger): AgentExtension | null {
  return config.gossip ? new GossipExtension(config, logger) : null;
}

export type { NodeRecord };
