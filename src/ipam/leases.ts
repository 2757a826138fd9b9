/**
 * Host block leases and the one conflict rule every host applies the same way.
 *
 * A host owns addresses by leasing blocks (`hostBlock`, e.g. /26) of a network's subnet and
 * announcing them in its gossip record (section `ipam`, see gossip-channel.ts). Two hosts can
 * lease the same block at about the same time, before either has heard of the other; every host
 * then decides with the same rule, so all agree once their views agree:
 *
 *   winner = highest `gen`, then lowest `at` (wall-clock ms of the lease), then lowest node name.
 *
 * `gen` counts reclaims: a block whose holder has been dead or left for longer than the grace
 * period (`reclaimAfterMs`) may be taken with `gen = old gen + 1`, which out-ranks the old lease
 * when its holder comes back. The loser of a block drops it and allocates elsewhere.
 */

export interface BlockLease {
  network: string;
  /** Canonical CIDR of the block. */
  block: string;
  /** Wall-clock ms when the lease was taken. */
  at: number;
  /** Reclaim generation (0 = first lease). */
  gen: number;
}

export interface Claim extends BlockLease {
  node: string;
}

/** Is `a` the better claim than `b` under the rule above? */
export function beats(a: Claim, b: Claim): boolean {
  if (a.gen !== b.gen) return a.gen > b.gen;
  if (a.at !== b.at) return a.at < b.at;
  return a.node < b.node;
}

/** The winning claim among `claims` (non-empty). */
export function winner(claims: readonly Claim[]): Claim {
  let w = claims[0];
  for (let i = 1; i < claims.length; i++) if (beats(claims[i], w)) w = claims[i];
  return w;
}

/** What another host announces, as the lease channel reports it. */
export interface PeerLeases {
  node: string;
  /** alive or suspect. */
  live: boolean;
  /** ms since it became dead/left (0 when live). */
  downForMs: number;
  leases: BlockLease[];
}

/** Claims by others that still count: live holders, and down holders within the grace period. */
export function validClaims(peers: readonly PeerLeases[], network: string, graceMs: number): { valid: Claim[]; expired: Claim[] } {
  const valid: Claim[] = [];
  const expired: Claim[] = [];
  for (const p of peers) {
    const ok = p.live || p.downForMs < graceMs;
    for (const l of p.leases) {
      if (l.network !== network) continue;
      (ok ? valid : expired).push({ ...l, node: p.node });
    }
  }
  return { valid, expired };
}
