/**
 * Policies between hosts: each host publishes its whole store (versioned entries, store.ts) as the
 * `policies` section of its gossip record and merges every other live member's copy; the newest
 * version of each policy wins on every host, so all converge on the same set.
 */
import type { PolicySyncChannel } from './extension';

export const POLICY_SECTION = 'policies';

/** What the gossip extension offers (record sections and member changes). */
export interface GossipSectionsApi {
  setSection(name: string, data: string | null): void;
  sections(name: string): { node: string; state: string; self: boolean; data: string }[];
  onMembersChange(cb: () => void): () => void;
}

export function gossipPolicySync(g: GossipSectionsApi): PolicySyncChannel {
  return {
    publish: (data) => g.setSection(POLICY_SECTION, data),
    received: () => g.sections(POLICY_SECTION).filter((s) => !s.self && (s.state === 'alive' || s.state === 'suspect')).map((s) => ({ node: s.node, data: s.data })),
    onChange: (cb) => g.onMembersChange(cb),
  };
}
