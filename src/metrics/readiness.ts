/**
 * Readiness as the service reports it (GET /readyz, `vxmesh_ready`, and READY=1 to systemd): the
 * agent's own `ready()` (config loaded, every TAP open, UDP bound, data path running, API up, each
 * extension ready) plus, when `gossip.seeds` are set, `gossipJoined`: this node is part of a
 * cluster — it sees another live member, or it is itself one of the seeds (the first node of a
 * cluster has nobody to join and must not wait for the others).
 */

import type { Agent, ReadyReport } from '../agent/agent';

interface GossipLike {
  node?: { liveMembers?: number } | null;
}

/** Whether gossip has joined (true when gossip or seeds are not configured: nothing to join). */
export function gossipJoined(agent: Agent): boolean {
  const g = agent.config.gossip;
  if (!g || g.seeds.length === 0) return true;
  if (g.seeds.some((s) => s.address === g.address && s.port === g.port)) return true;
  const ext = agent.extensions.find((e) => e.name === 'gossip') as (GossipLike & object) | undefined;
  const live = ext?.node?.liveMembers;
  return typeof live === 'number' && live > 1;
}

export function serviceReady(agent: Agent): ReadyReport {
  const r = agent.ready();
  const g = agent.config.gossip;
  if (!g || g.seeds.length === 0) return r;
  const joined = gossipJoined(agent);
  return { ok: r.ok && joined, checks: { ...r.checks, gossipJoined: joined } };
}
