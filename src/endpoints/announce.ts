/**
 * Endpoint records through gossip: each host announces its endpoints (section `endpoints` =
 * JSON `[[network, name, ifname, mac, [ips], {labels}], ...]`) for `vxmesh endpoints`, and, for
 * overlay networks, as the record's endpoint list (VNI, MAC, IPs), so every other host's FDB and
 * ARP/ND suppression know them before their first frame (gossip extension `sync`).
 */
import type { EndpointRecord } from '../gossip/record';
import type { GossipSections } from '../ipam/gossip-channel';

export interface ListedEndpoint {
  host: string;
  network: string;
  name: string;
  ifname: string;
  mac: string;
  ips: string[];
  labels: Record<string, string>;
}

/** The seam: announce ours, read everyone else's. */
export interface EndpointAnnouncer {
  announce(own: ListedEndpoint[], overlay: EndpointRecord[]): void;
  /** Endpoints other live hosts announce. */
  remote(): ListedEndpoint[];
}

export interface GossipEndpointsApi extends GossipSections {
  setAnnouncedEndpoints(source: string, eps: EndpointRecord[]): void;
}

export const ENDPOINTS_SECTION = 'endpoints';

export function decodeEndpoints(host: string, data: string): ListedEndpoint[] | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || v.length > 4096) return null;
  const out: ListedEndpoint[] = [];
  for (const e of v) {
    if (!Array.isArray(e) || e.length !== 6) return null;
    const [network, name, ifname, mac, ips, labels] = e as unknown[];
    if (typeof network !== 'string' || typeof name !== 'string' || typeof ifname !== 'string' || typeof mac !== 'string') return null;
    if (!Array.isArray(ips) || !ips.every((x) => typeof x === 'string')) return null;
    if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return null;
    const l: Record<string, string> = {};
    for (const [k, val] of Object.entries(labels as Record<string, unknown>)) if (typeof val === 'string') l[k] = val;
    out.push({ host, network, name, ifname, mac, ips: ips as string[], labels: l });
  }
  return out;
}

export class GossipEndpointAnnouncer implements EndpointAnnouncer {
  malformed = 0;
  constructor(private readonly g: GossipEndpointsApi) {}

  announce(own: ListedEndpoint[], overlay: EndpointRecord[]): void {
    this.g.setAnnouncedEndpoints(ENDPOINTS_SECTION, overlay);
    this.g.setSection(ENDPOINTS_SECTION, own.length ? JSON.stringify(own.map((e) => [e.network, e.name, e.ifname, e.mac, e.ips, e.labels])) : null);
  }

  remote(): ListedEndpoint[] {
    const out: ListedEndpoint[] = [];
    for (const s of this.g.sections(ENDPOINTS_SECTION)) {
      if (s.self || (s.state !== 'alive' && s.state !== 'suspect')) continue;
      const eps = decodeEndpoints(s.node, s.data);
      if (!eps) {
        this.malformed++;
        continue;
      }
      out.push(...eps);
    }
    return out;
  }
}
