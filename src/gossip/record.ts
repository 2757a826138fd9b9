/**
 * What each host announces: its node record. A record is immutable and versioned by the
 * member's incarnation number: a newer record always carries a higher incarnation, so a stale or
 * replayed copy (same or lower incarnation) changes nothing anywhere.
 */

/** Gossip protocol version spoken by this build (carried in every record and packet). */
export const PROTOCOL_VERSION = 1;

/** One container endpoint learned on a local bridge. */
export interface EndpointRecord {
  /** VXLAN network identifier the endpoint lives in. */
  vni: number;
  /** Lower-case "aa:bb:cc:dd:ee:ff". */
  mac: string;
  /** IPv4/IPv6 addresses seen for this MAC (canonical text), possibly empty. */
  ips: string[];
}

export interface NodeRecord {
  /** Unique node name. */
  name: string;
  /** Version of this record (SWIM incarnation). Higher wins; equal = same record. */
  incarnation: number;
  /** Gossip protocol version the node speaks. */
  protocol: number;
  /** Gossip transport address, "host:port". */
  gossip: string;
  /** Underlay VXLAN endpoint, "host:port". */
  underlay: string;
  /** VNIs the node serves, ascending. */
  vnis: number[];
  /** Local endpoints (bounded by the codec). */
  endpoints: EndpointRecord[];
  /** Public key for data-plane encryption (opaque string, may be empty). */
  publicKey: string;
  /**
   * Sections other extensions publish through the gossip API (e.g. `ipam` leases, `endpoints`
   * metadata), sorted by name; absent or empty when none. Encoded after the public key only when
   * non-empty, so records without sections keep their exact bytes.
   */
  sections?: RecordSection[];
}

/** One named, opaque (usually JSON) section of a node record. */
export interface RecordSection {
  /** [a-z0-9-]{1,32}. */
  name: string;
  data: string;
}

/** Member states. `left` (graceful leave) is distinct from `dead` (failed). */
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

/** Numeric state codes (codec + member table). Order is severity for equal incarnations. */
export const ST_ALIVE = 0;
export const ST_SUSPECT = 1;
export const ST_DEAD = 2;
export const ST_LEFT = 3;
export const STATE_NAMES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];

/** Returns a copy of `r` with a new incarnation (records are never mutated in place). */
export function withIncarnation(r: NodeRecord, incarnation: number): NodeRecord {
  return { ...r, incarnation };
}

/** True when the announced content (everything but the incarnation) is equal. */
export function sameContent(a: NodeRecord, b: NodeRecord): boolean {
  if (a.name !== b.name || a.protocol !== b.protocol || a.gossip !== b.gossip || a.underlay !== b.underlay) return false;
  if (a.publicKey !== b.publicKey || a.vnis.length !== b.vnis.length || a.endpoints.length !== b.endpoints.length) return false;
  for (let i = 0; i < a.vnis.length; i++) if (a.vnis[i] !== b.vnis[i]) return false;
  const sa = a.sections ?? [];
  const sb = b.sections ?? [];
  if (sa.length !== sb.length) return false;
  for (let i = 0; i < sa.length; i++) if (sa[i].name !== sb[i].name || sa[i].data !== sb[i].data) return false;
  for (let i = 0; i < a.endpoints.length; i++) {
    const x = a.endpoints[i];
    const y = b.endpoints[i];
    if (x.vni !== y.vni || x.mac !== y.mac || x.ips.length !== y.ips.length) return false;
    for (let j = 0; j < x.ips.length; j++) if (x.ips[j] !== y.ips[j]) return false;
  }
  return true;
}
