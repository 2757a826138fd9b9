/**
 * What the gossip extension offers the other extensions, handed to them at start by
 * cli/extensions.ts (`connect(...)`), never found by name: the membership (members and their
 * events), publishing into this host's record (public key, named sections, announced endpoints),
 * and where joining the cluster stands. Every method works before gossip has started: what is
 * published is announced at start, subscribers get events once it runs.
 */
import type { GossipMetricsView } from '../metrics/sources';
import type { JoinState } from './join';
import type { EndpointRecord, MemberState } from './record';
import type { MemberEvent, MemberInfo } from './swim';

export type { JoinState, MemberEvent, MemberInfo };

export interface GossipApi {
  /** This node's name in gossip. */
  readonly nodeName: string;
  /** Every member we know, ourselves included, sorted by name (empty before start). */
  memberInfos(): MemberInfo[];
  /**
   * Subscribes to member events (join, update, suspect, alive, dead, left, reap — ourselves
   * included). With `replay`, `fn` first gets a `join` for every other live member already known.
   * Returns the unsubscribe function.
   */
  onMemberEvent(fn: (ev: MemberEvent) => void, opts?: { replay?: boolean }): () => void;
  /** Calls `cb` after any member change; returns the unsubscribe function. */
  onMembersChange(cb: () => void): () => void;
  /** Announces this host's public key (data-plane encryption) in its record. */
  setPublicKey(key: string): void;
  /** Publishes (or with null removes) record section `name`. */
  setSection(name: string, data: string | null): void;
  /** Section `name` of every member we know, with its state. */
  sections(name: string): { node: string; state: MemberState; changedAt: number; self: boolean; data: string }[];
  /** Endpoints announced beside those learned on the bridges; `source` names the caller. */
  setAnnouncedEndpoints(source: string, eps: EndpointRecord[]): void;
  /** Where joining the cluster stands (readiness check `gossipJoined`). */
  joinState(): JoinState;
  /** The metrics view (src/gossip/metrics-view.ts), null before start; `joined` defaults to `ready()`. */
  metricsView(joined?: () => boolean): GossipMetricsView | null;
}
