/**
 * The lease channel over gossip: this host's leases travel in its gossip record as section
 * `ipam` = JSON `[[network, block, at, gen], ...]`; other hosts' are read back from their records
 * with their member state (alive/suspect = live; dead/left age toward reclaim from the time the
 * state changed, measured on this host's clock). Malformed sections from other hosts are ignored
 * (counted in `malformed`), never trusted.
 */
import type { Clock } from '../clock';
import type { LeaseChannel } from './channel';
import type { BlockLease, PeerLeases } from './leases';

/** What the gossip extension offers for this (structurally: GossipExtension). */
export interface GossipSections {
  readonly nodeName: string;
  setSection(name: string, data: string | null): void;
  sections(name: string): { node: string; state: string; changedAt: number; self: boolean; data: string }[];
  onMembersChange(cb: () => void): () => void;
}

export const IPAM_SECTION = 'ipam';

export function decodeLeases(data: string): BlockLease[] | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || v.length > 4096) return null;
  const out: BlockLease[] = [];
  for (const e of v) {
    if (!Array.isArray(e) || e.length !== 4) return null;
    const [network, block, at, gen] = e as unknown[];
    if (typeof network !== 'string' || typeof block !== 'string' || typeof at !== 'number' || typeof gen !== 'number') return null;
    out.push({ network, block, at, gen });
  }
  return out;
}

export class GossipLeaseChannel implements LeaseChannel {
  malformed = 0;
  constructor(private readonly g: GossipSections, private readonly clock: Clock) {}

  get self(): string {
    return this.g.nodeName;
  }

  publish(leases: BlockLease[]): void {
    this.g.setSection(IPAM_SECTION, leases.length ? JSON.stringify(leases.map((l) => [l.network, l.block, l.at, l.gen])) : null);
  }

  peers(): PeerLeases[] {
    const out: PeerLeases[] = [];
    const now = this.clock.now();
    for (const s of this.g.sections(IPAM_SECTION)) {
      if (s.self) continue;
      const leases = decodeLeases(s.data);
      if (!leases) {
        this.malformed++;
        continue;
      }
      const live = s.state === 'alive' || s.state === 'suspect';
      out.push({ node: s.node, live, downForMs: live ? 0 : now - s.changedAt, leases });
    }
    return out;
  }

  onChange(cb: () => void): void {
    this.g.onMembersChange(cb);
  }
}
