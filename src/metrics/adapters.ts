/**
 * Adapters from the gossip and crypto extensions' own counters to the metrics views of sources.ts,
 * used when an extension does not offer `metricsView()` itself. Duck-typed on purpose: the metrics
 * layer reads a few public fields at scrape time and depends on no gossip or crypto internals
 * beyond them; a field that is missing yields no sample rather than an error.
 *
 * Crypto (src/crypto/session.ts `CipherCounters`, on `extension.sessions.counters`):
 *   handshakes{result}: initiated (initiations sent), responded (responses sent), completed
 *     (sessions established), timed_out (no response in time), failed (invalid, bad MAC, unknown
 *     peer or index, replayed initiation), rate_limited (refused or answered with a cookie under load);
 *   failures{reason}: bad_tag, replay, unknown_index, expired, malformed (inbound packets), and
 *     no_session (outbound packets with no session);
 *   sessions: peers with a current session;
 *   duplicateHostKeys: detections (`duplicateHostKey`) and hosts listed by `duplicateHostKeys()`.
 * Gossip (src/gossip/swim.ts `GossipNode`, on `extension.node`):
 *   members by state from `node.members()`; probes and failures from `node.prober`; suspicions,
 *   packets and drops (by the fixed GossipDropReason set) from `node.stats`; bytes from
 *   `node.transport.stats`; joined from the given check (readiness.ts), else the extension's `ready()`.
 */

import type { CryptoMetricsView, GossipMetricsView } from './sources';

type Num = number | undefined;
const n = (v: Num): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

interface CipherCountersLike {
  hsInitiationSent?: number; hsResponseSent?: number; sessionsEstablished?: number; handshakeTimeouts?: number;
  hsInvalid?: number; hsBadMac?: number; hsUnknownPeer?: number; hsUnknownIndex?: number; hsReplayedInitiation?: number;
  hsRateLimited?: number; hsCookieSent?: number;
  rxBadTag?: number; rxReplay?: number; rxUnknownIndex?: number; rxExpired?: number; rxMalformed?: number; txNoSession?: number;
  duplicateHostKey?: number;
}

interface CryptoExtensionLike {
  sessions?: { counters?: CipherCountersLike; status?(): { peers?: { session: unknown }[] }; duplicateHostKeys?(): unknown[] } | null;
}

/** The crypto extension's view, or null while it has no session manager. */
export function cryptoViewOf(ext: unknown): CryptoMetricsView | null {
  const sm = (ext as CryptoExtensionLike | null)?.sessions;
  if (!sm || !sm.counters) return null;
  const c = sm.counters;
  return {
    counters: () => ({
      handshakes: {
        initiated: n(c.hsInitiationSent),
        responded: n(c.hsResponseSent),
        completed: n(c.sessionsEstablished),
        timed_out: n(c.handshakeTimeouts),
        failed: n(c.hsInvalid) + n(c.hsBadMac) + n(c.hsUnknownPeer) + n(c.hsUnknownIndex) + n(c.hsReplayedInitiation),
        rate_limited: n(c.hsRateLimited) + n(c.hsCookieSent),
      },
      failures: {
        bad_tag: n(c.rxBadTag),
        replay: n(c.rxReplay),
        unknown_index: n(c.rxUnknownIndex),
        expired: n(c.rxExpired),
        malformed: n(c.rxMalformed),
        no_session: n(c.txNoSession),
      },
    }),
    sessions: () => (sm.status ? (sm.status().peers ?? []).filter((p) => p.session).length : 0),
    duplicateHostKeys: () => ({ detections: n(c.duplicateHostKey), hosts: sm.duplicateHostKeys ? sm.duplicateHostKeys().length : 0 }),
  };
}

interface GossipNodeLike {
  members?(): { state: string; name?: string }[];
  prober?: { probes?: number; failures?: number; indirect?: number };
  stats?: {
    packetsReceived?: number; packetsSent?: number; suspicionsStarted?: number; streamsInitiated?: number;
    drops?: Record<string, number>;
  };
  transport?: { stats?: { packetBytesReceived?: number; packetBytesSent?: number; streamBytesReceived?: number; streamBytesSent?: number } };
  rtts?(): Iterable<{ peer: string; seconds: number }>;
}

interface GossipExtensionLike {
  node?: GossipNodeLike | null;
  ready?(): boolean;
}

const STATES = ['alive', 'suspect', 'dead', 'left'];

/** The gossip extension's view, or null while it has no node. */
export function gossipViewOf(ext: unknown, joined?: () => boolean): GossipMetricsView | null {
  const e = ext as GossipExtensionLike | null;
  const node = e?.node;
  if (!node) return null;
  return {
    membersByState: () => {
      const out: Record<string, number> = Object.fromEntries(STATES.map((s) => [s, 0]));
      for (const m of node.members?.() ?? []) out[m.state] = (out[m.state] ?? 0) + 1;
      return out;
    },
    counters: () => {
      const st = node.stats ?? {};
      const ts = node.transport?.stats;
      return {
        probes: n(node.prober?.probes),
        probesFailed: n(node.prober?.failures),
        indirectProbes: node.prober?.indirect,
        suspicions: n(st.suspicionsStarted),
        messagesIn: n(st.packetsReceived),
        messagesOut: n(st.packetsSent),
        bytesIn: ts ? n(ts.packetBytesReceived) + n(ts.streamBytesReceived) : undefined,
        bytesOut: ts ? n(ts.packetBytesSent) + n(ts.streamBytesSent) : undefined,
        pushPulls: st.streamsInitiated,
        rejected: { ...(st.drops ?? {}) },
      };
    },
    rtts: node.rtts ? () => node.rtts!() : undefined,
    joined: joined ?? (() => (e.ready ? e.ready() : true)),
    memberStates: () => (node.members?.() ?? []).filter((m) => typeof m.name === 'string').map((m) => ({ peer: m.name as string, state: m.state })),
  };
}
