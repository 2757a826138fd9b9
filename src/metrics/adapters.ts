/**
 * Adapters from the gossip and crypto extensions' own counters to the metrics views of sources.ts,
 * used when an extension does not offer `metricsView()` itself. Duck-typed on purpose: the metrics
 * layer reads a few public fields at scrape time and depends on no gossip or crypto internals
 * beyond them; a field that is missing yields no sample rather than an error.
 *
 * Crypto (src/crypto/session.ts `CipherCounters`, on `extension.sessions.counters`):
 *   handshakes{result}: initiated (initiations sent), responded (responses sent), completed
 *     (sessions established), timed_out (no response in time), failed (invalid, bad MAC, unknown
 *     peer or index, replayed initiation), rate_limited (refused or answered with a cookie under load,
 *     or dropped by the kernel flood guard, src/crypto/flood-guard.ts);
 *   failures{reason}: bad_tag, replay, unknown_index, expired, malformed (inbound packets), and
 *     no_session (outbound packets with no session);
 *   sessions: peers with a current session;
 *   duplicateHostKeys: detections (`duplicateHostKey`) and hosts listed by `duplicateHostKeys()`.
 * Gossip: the extension's own `metricsView()` (GossipApi; src/gossip/metrics-view.ts); joined from
 *   the given check (readiness.ts), else the extension's `ready()`.
 */

import { gossipMetricsView } from '../gossip/metrics-view';
import type { GossipNode } from '../gossip/swim';
import type { CryptoMetricsView, GossipMetricsView } from './sources';

type Num = number | undefined;
const n = (v: Num): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

interface CipherCountersLike {
  hsInitiationSent?: number; hsResponseSent?: number; sessionsEstablished?: number; handshakeTimeouts?: number;
  hsInvalid?: number; hsBadMac?: number; hsUnknownPeer?: number; hsUnknownIndex?: number; hsReplayedInitiation?: number;
  hsRateLimited?: number; hsCookieSent?: number; hsGuardPerSource?: number; hsGuardTotal?: number;
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
        rate_limited: n(c.hsRateLimited) + n(c.hsCookieSent) + n(c.hsGuardPerSource) + n(c.hsGuardTotal),
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

interface GossipExtensionLike {
  metricsView?(joined?: () => boolean): GossipMetricsView | null;
  node?: GossipNode | null;
  ready?(): boolean;
}

/**
 * The gossip extension's view (its `metricsView`, src/gossip/metrics-view.ts), or that of a bare
 * `{ node }`; null while it has no node.
 */
export function gossipViewOf(ext: unknown, joined?: () => boolean): GossipMetricsView | null {
  const e = ext as GossipExtensionLike | null;
  if (typeof e?.metricsView === 'function') return e.metricsView(joined);
  const node = e?.node;
  if (!node) return null;
  return gossipMetricsView(node, joined ?? (() => (e.ready ? e.ready() : true)));
}
