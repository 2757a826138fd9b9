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
import type { JoinState } from '../gossip/api';

/** The readiness report: the agent's checks, plus `gossipJoined` (non-blocking) and its detail. */
export interface ServiceReadyReport extends ReadyReport {
  /** Checks that fail without holding readiness back (today: `gossipJoined`). */
  degraded?: string[];
  /** Gossip join state when seeds are set. */
  gossip?: JoinState;
}

/** What readiness reads of the agent: its own verdict, the config, the gossip API (Agent.gossip). */
export type ReadinessAgent = Pick<Agent, 'config' | 'ready' | 'gossip'>;

/** Gossip's join state, or null when gossip is off. */
export function gossipJoinState(agent: ReadinessAgent): JoinState | null {
  return agent.gossip ? agent.gossip.joinState() : null;
}

/** Whether gossip has joined (true when gossip or seeds are not configured: nothing to join). */
export function gossipJoined(agent: ReadinessAgent): boolean {
  const g = agent.config.gossip;
  if (!g || g.seeds.length === 0) return true;
  if (g.seeds.some((s) => s.address === g.address && s.port === g.port)) return true;
  const join = gossipJoinState(agent);
  return join !== null && (join.state === 'joined' || join.state === 'seed');
}

export function serviceReady(agent: ReadinessAgent): ServiceReadyReport {
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
