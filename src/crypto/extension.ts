/**
 * The crypto agent extension: host identity, the SessionManager installed as the data path's
 * cipher, and peers' public keys fed from gossip (or given statically).
 *
 * Start: libsodium ready → host key from `node.keyFile` (default DEFAULT_HOST_KEY_FILE; created
 * 0600 when missing) → PSKs from the cluster keyring (`gossip.keyFile`, one PSK per key, primary
 * first; none → all-zero PSK, peers then authenticate by static key alone) → SessionManager →
 * `datapath.setCipher()` → static peer keys (options) → gossip binding.
 *
 * Gossip binding: cli/extensions.ts hands this extension the gossip extension's typed API
 * (`connect({ gossip })`, src/gossip/api.ts) before anything starts. At start crypto announces its
 * public key through it (`setPublicKey`) and subscribes to member events with a replay of the
 * members already known (`onMemberEvent`); no lookup by name, no polling, either start order.
 * A member record with a non-empty `publicKey` and an `underlay` "host:port" becomes a session
 * peer on join/update/alive and is removed on dead/left/reap. A record speaks for its own member
 * only: static `peers[].publicKey` pins win over it, and it cannot take a key or an endpoint that
 * another member announced (SessionManager.gossipPeer).
 */

import * as fs from 'node:fs';

import type { Agent, AgentExtension } from '../agent/agent';
import type { Clock } from '../clock';
import type { Config, Endpoint } from '../config/types';
import { canonicalEndpoint } from '../dataplane/addr';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import type { GossipApi } from '../gossip/api';
import { type FloodGuardDriver, guardTable } from './flood-guard';
import { cryptoReady, decodeKey, encodeKey, loadOrCreateHostKey } from './keys';
import { type GossipPeerResult, SessionManager, type SessionTimers, pskFromClusterKey } from './session';

export const DEFAULT_HOST_KEY_FILE = '/var/lib/vxmesh/host.key';

/** The subset of a gossip member event this extension uses. */
export interface MemberLike {
  type: string;
  record: { name: string; underlay: string; publicKey: string };
  /** The member's record before this change, when it was replaced (a key change shows here). */
  previous?: { publicKey: string };
}

/** The part of the gossip API (src/gossip/api.ts `GossipApi`) this extension uses. */
export type CryptoGossip = Pick<GossipApi, 'setPublicKey'> & {
  onMemberEvent(fn: (ev: MemberLike) => void, opts?: { replay?: boolean }): () => void;
};

export interface CryptoExtensionOptions {
  /** Peers not known through gossip (tests, static setups): endpoint + base64 public key. */
  peerKeys?: { endpoint: Endpoint; publicKey: string }[];
  /** Cluster keys (override `gossip.keyFile`). */
  clusterKeys?: Uint8Array[];
  timers?: Partial<SessionTimers>;
  clock?: Clock;
  /** The gossip API (else what `connect` handed over; none: static peers only). */
  gossip?: CryptoGossip | null;
  /**
   * Kernel-side rate limit of handshake initiations (flood-guard.ts); null: none. The agent
   * process (cli/commands/agent.ts, through buildExtensions' links) sets NftFloodGuard with
   * `useFloodGuard` unless `underlay.handshakeGuard` is false; tests pass the twin or nothing.
   */
  floodGuard?: FloodGuardDriver | null;
  /** How often the guard's drop counters are read into the session counters (default 5 s). */
  floodGuardPollMs?: number;
}

/** Parses "host:port" / "[v6]:port" into an Endpoint, or null. */
export function parseUnderlay(text: string): Endpoint | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) return null;
  const port = Number(m[2]);
  if (!(port > 0 && port < 65536)) return null;
  try {
    return canonicalEndpoint({ address: m[1], port, family: m[1].includes(':') ? 6 : 4 });
  } catch {
    return null;
  }
}

function readClusterKeys(file: string): Uint8Array[] {
  const keys: Uint8Array[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const l = line.replace(/#.*$/, '').trim();
    if (l) keys.push(decodeKey(l, file));
  }
  return keys;
}

export class CryptoExtension implements AgentExtension {
  readonly name = 'crypto';
  sessions: SessionManager | null = null;
  /** Base64 X25519 public key of this host (set by start). */
  publicKey = '';
  private agent: Agent | null = null;
  private gossip: CryptoGossip | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly log: Logger;

  constructor(private readonly config: Config, logger: Logger = nullLogger, private opts: CryptoExtensionOptions = {}) {
    this.log = logger.child({ component: 'crypto' });
  }

  async start(agent: Agent): Promise<void> {
    await cryptoReady();
    this.agent = agent;
    const keyFile = this.config.node.keyFile ?? DEFAULT_HOST_KEY_FILE;
    const key = loadOrCreateHostKey(keyFile);
    if (key.created) this.log.info({ keyFile: key.path }, 'host key created');
    if (key.insecureMode) this.log.warn({ keyFile: key.path }, 'host key file is readable by group or others; chmod 600 it');
    this.publicKey = encodeKey(key.publicKey);
    const cluster = this.opts.clusterKeys ?? (this.config.gossip?.keyFile ? readClusterKeys(this.config.gossip.keyFile) : []);
    const sm = new SessionManager({
      hostKey: key, psks: cluster.map(pskFromClusterKey), logger: this.log, timers: this.opts.timers, clock: this.opts.clock,
    });
    this.sessions = sm;
    agent.datapath.setCipher(sm);
    for (const p of this.opts.peerKeys ?? []) sm.pinPeer(p.publicKey, p.endpoint);
    this.applyStaticKeys(this.config.peerKeys ?? []);
    this.log.info({ publicKey: this.publicKey, backend: sm.backend, psks: cluster.length, staticPeerKeys: this.staticKeys.size }, 'crypto ready');
    const keyless = this.config.peers.filter((e) => !(this.config.peerKeys ?? []).some((k) => k.endpoint.address === e.address && k.endpoint.port === e.port));
    if (!this.config.gossip && !this.opts.peerKeys?.length && keyless.length > 0 && this.config.networks.some((n) => n.encrypted)) {
      // Static peers without a publicKey and no gossip: no session can form with them, and
      // encrypted networks send them nothing (frames counted as no_session).
      this.log.warn({ peers: keyless.map((e) => e.address) }, 'encrypted networks need each peer\'s public key: give peers as {address, publicKey} or enable gossip, or nothing will be sent to these peers');
    }
    const g = this.opts.gossip ?? this.gossip;
    if (g) {
      g.setPublicKey(this.publicKey);
      this.unsubscribe = g.onMemberEvent((ev) => this.onMember(ev), { replay: true });
      this.log.info('bound to gossip membership');
    }
    await this.startGuard();
  }

  /** Sets the flood guard driver (before start); null: none. */
  useFloodGuard(d: FloodGuardDriver | null): void {
    this.opts = { ...this.opts, floodGuard: d };
  }

  /** The installed guard's port, while it is installed. */
  private guardPort: number | null = null;
  private guardTimer: ReturnType<typeof setInterval> | null = null;
  private guardDriver: FloodGuardDriver | null = null;

  /**
   * Installs the flood guard for the underlay port. A failure (no nft, not root, no nf_tables) is
   * not fatal: the handshake socket's budget still bounds the work; it is logged once, with why.
   */
  private async startGuard(): Promise<void> {
    const d = this.opts.floodGuard;
    if (!d) return;
    const port = this.config.underlay.port;
    try {
      await d.install(port);
    } catch (e) {
      this.log.warn({ err: (e as Error).message, table: `inet ${guardTable(port)}` },
        'handshake flood guard not installed (needs nft and root): initiations beyond the handshake budget are dropped at the socket instead');
      return;
    }
    this.guardDriver = d;
    this.guardPort = port;
    this.log.info({ table: `inet ${guardTable(port)}` }, 'handshake flood guard installed');
    this.guardTimer = setInterval(() => { this.refreshGuardCounts().catch(() => {}); }, this.opts.floodGuardPollMs ?? 5000);
    this.guardTimer.unref?.();
  }

  /** Reads the guard's drop counters into the session counters (every 5 s, and for status readers and tests). */
  async refreshGuardCounts(): Promise<void> {
    const sm = this.sessions;
    const d = this.guardDriver;
    if (!sm || !d || this.guardPort === null) return;
    const c = await d.counts(this.guardPort);
    // monotonic while the table lives (it is made with zero counters at start)
    sm.counters.hsGuardPerSource = Math.max(sm.counters.hsGuardPerSource, c.perSource);
    sm.counters.hsGuardTotal = Math.max(sm.counters.hsGuardTotal, c.total);
  }

  /** Removes the guard table (stop). Never throws. */
  async stopGuard(): Promise<void> {
    if (this.guardTimer) clearInterval(this.guardTimer);
    this.guardTimer = null;
    const d = this.guardDriver;
    const port = this.guardPort;
    this.guardDriver = null;
    this.guardPort = null;
    if (!d || port === null) return;
    try {
      await d.remove(port);
    } catch (e) {
      this.log.warn({ err: (e as Error).message, table: `inet ${guardTable(port)}` }, 'handshake flood guard not removed');
    }
  }

  /** Typed connections made by cli/extensions.ts before start: the gossip API, when gossip runs. */
  connect(c: { gossip: CryptoGossip | null }): void {
    this.gossip = c.gossip;
  }

  /**
   * Feeds one gossip member event (join/update/alive add or update a peer; dead/left/reap remove
   * it). A record speaks for its own member only (SessionManager.gossipPeer): pinned static keys
   * and other members' keys and endpoints are never rebound by it; a refusal is logged once per
   * member and reason.
   */
  onMember(ev: MemberLike): void {
    const sm = this.sessions;
    const r = ev.record;
    if (!sm || r.name === this.config.node.name) return;
    try {
      const prev = ev.previous?.publicKey;
      if (prev && prev !== r.publicKey) sm.removeGossipPeer(r.name, prev); // the member's old key
      if (!r.publicKey) return;
      if (ev.type === 'dead' || ev.type === 'left' || ev.type === 'reap') {
        sm.removeGossipPeer(r.name, r.publicKey);
        this.refused.delete(r.name);
        return;
      }
      if (ev.type === 'suspect') return;
      const result = sm.gossipPeer(r.name, r.publicKey, parseUnderlay(r.underlay));
      if (result === 'ok' || result === 'own_key') {
        this.refused.delete(r.name);
        return;
      }
      if (this.refused.get(r.name) === result) return;
      this.refused.set(r.name, result);
      this.log.warn({ member: r.name, publicKey: r.publicKey, underlay: r.underlay, reason: result },
        'gossip record refused: a record may only describe its own member, and pinned peers[].publicKey bindings win');
    } catch (e) {
      this.log.warn({ member: r.name, err: (e as Error).message }, 'member record with an unusable public key or underlay');
    }
  }

  /** Members whose record was last refused, and why (logged once per member and reason). */
  private readonly refused = new Map<string, GossipPeerResult>();

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.agent && this.sessions) {
      try {
        this.agent.datapath.setCipher(null);
      } catch { /* data path already stopped */ }
    }
    this.sessions?.stop();
    await this.stopGuard();
  }

  ready(): boolean {
    return this.sessions !== null;
  }

  status(): unknown {
    return this.sessions ? this.sessions.status() : { publicKey: this.publicKey, started: false };
  }

  /** Static peers' public keys from the config (base64 → endpoint), as last applied. */
  private readonly staticKeys = new Map<string, string>();

  /** Pins the config's static peer keys: new and moved ones set, ones no longer listed forgotten. */
  private applyStaticKeys(keys: readonly { endpoint: Endpoint; publicKey: string }[]): void {
    const sm = this.sessions;
    if (!sm) return;
    const next = new Map(keys.map((k) => [k.publicKey, `${k.endpoint.address}|${k.endpoint.port}`]));
    for (const [pub] of this.staticKeys) if (!next.has(pub)) sm.unpinPeer(pub);
    for (const k of keys) {
      if (this.staticKeys.get(k.publicKey) === next.get(k.publicKey)) continue;
      try {
        sm.pinPeer(k.publicKey, k.endpoint);
      } catch (e) {
        this.log.warn({ peer: k.endpoint.address, err: (e as Error).message }, 'static peer public key unusable');
      }
    }
    this.staticKeys.clear();
    for (const [pub, at] of next) this.staticKeys.set(pub, at);
  }

  /** Reload: static peer keys, and the cluster keyring (PSK rotation). */
  reload(config: Config): void {
    this.applyStaticKeys(config.peerKeys ?? []);
    if (!this.sessions || this.opts.clusterKeys || !config.gossip?.keyFile) return;
    try {
      this.sessions.setPsks(readClusterKeys(config.gossip.keyFile).map(pskFromClusterKey));
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cluster keyring reload failed; keeping the old PSKs');
    }
  }
}

/**
 * Factory for src/cli/extensions.ts: an extension when some network is encrypted or a host key
 * file is configured; null otherwise (plain VXLAN only).
 */
export function createCryptoExtension(config: Config, logger: Logger): CryptoExtension | null {
  if (!config.networks.some((n) => n.encrypted) && !config.node.keyFile) return null;
  return new CryptoExtension(config, logger);
}
