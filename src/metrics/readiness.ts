/**
 * Readiness as the service reports it (GET /readyz, `vxmesh_ready`, and READY=1 to systemd): the
 * agent's own `ready()` — config loaded, every TAP open, UDP bound, data path running, API up,
 * each extension ready: the data path forwards.
 *
 * Gossip join is its own check, `gossipJoined`, listed beside the others when `gossip.seeds` are
 * set but never holding readiness back (a down seed must not make systemd kill and restart the
 * agent, tearing its networks down each time): while it fails the report stays `ok`, names it in
 * `degraded`, and carries the join state (`gossip`: joining, attempts, next try, the failure per
 * seed — gossip/join.ts). Joined = this node sees another live member, or it is itself one of the
 * seeds (the first node of a cluster has nobody to join).
 */

import type { Agent, ReadyReport } from '../agent/agent';
import type { JoinState } from '../gossip/join';

interface GossipLike {
  joinState?(): JoinState;
  node?: { liveMembers?: number } | null;
}

/** The readiness report: the agent's checks, plus `gossipJoined` (non-blocking) and its detail. */
export interface ServiceReadyReport extends ReadyReport {
  /** Checks that fail without holding readiness back (today: `gossipJoined`). */
  degraded?: string[];
  /** Gossip join state when seeds are set. */
  gossip?: JoinState;
}

function gossipOf(agent: Agent): GossipLike | undefined {
  return agent.extensions.find((e) => e.name === 'gossip') as (GossipLike & object) | undefined;
}

/** Gossip's join state, or null when gossip is off or not started. */
export function gossipJoinState(agent: Agent): JoinState | null {
  const ext = gossipOf(agent);
  return typeof ext?.joinState === 'function' ? ext.joinState() : null;
}

/** Whether gossip has joined (true when gossip or seeds are not configured: nothing to join). */
export function gossipJoined(agent: Agent): boolean {
  const g = agent.config.gossip;
  if (!g || g.seeds.length === 0) return true;
  if (g.seeds.some((s) => s.address === g.address && s.port === g.port)) return true;
  const join = gossipJoinState(agent);
  if (join) return join.state === 'joined' || join.state === 'seed';
  const live = gossipOf(agent)?.node?.liveMembers;
  return typeof live === 'number' && live > 1;
}

export function serviceReady(agent: Agent): ServiceReadyReport {
  const r = agent.ready();
  const g = agent.config.gossip;
  if (!g || g.seeds.length === 0) return r;
  const joined = gossipJoined(agent);
  const out: ServiceReadyReport = { ok: r.ok, checks: { ...r.checks, gossipJoined: joined } };
  if (!joined) out.degraded = ['gossipJoined'];
  const join = gossipJoinState(agent);
  if (join) out.gossip = join;
  return out;
}
