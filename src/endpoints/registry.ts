/**
 * The endpoint registry: every endpoint this host attached, persisted in
 * `<stateDir>/endpoints.json` (atomic writes through the StateStore seam), so an agent restart
 * finds them again (then checked against the kernel: see manager.ts `restore`).
 */
import type { StateStore } from '../ipam/state-store';
import { readVersioned } from '../ipam/state-store';

export type EndpointKind = 'veth' | 'macvlan' | 'host';

export interface EndpointState {
  /** Random id; also the IPAM owner (`<network>/<id>`). */
  id: string;
  network: string;
  name: string;
  /** As given (name under /run/netns or a path); "" for a host endpoint. */
  netns: string;
  /** Resolved path; null for a host endpoint. */
  nsPath: string | null;
  ifname: string;
  /** The host-side veth (on the bridge); null for macvlan. */
  hostIf: string | null;
  kind: EndpointKind;
  mac: string;
  /** "addr/prefix" */
  addresses: string[];
  gateways: string[];
  labels: Record<string, string>;
  /** CNI container id, when attached by the CNI plugin. */
  containerId: string | null;
  createdAt: string;
  /** Made for a runtime that moved `ifname` into its sandbox itself (Docker): ifname is the peer's name as created. */
  runtimePeer?: boolean;
}

export const ENDPOINTS_FILE = 'endpoints.json';

export class Registry {
  private readonly byId = new Map<string, EndpointState>();

  constructor(private readonly store: StateStore) {
    const doc = readVersioned<{ endpoints: EndpointState[] }>(store, ENDPOINTS_FILE, (d) => {
      if (!Array.isArray(d.endpoints)) return 'endpoints is not a list';
      for (const e of d.endpoints as EndpointState[]) {
        if (!e || typeof e.id !== 'string' || typeof e.network !== 'string' || typeof e.ifname !== 'string' || typeof e.mac !== 'string' || !Array.isArray(e.addresses)) {
          return 'an endpoint entry lacks id/network/ifname/mac/addresses';
        }
      }
      return null;
    });
    for (const e of doc?.endpoints ?? []) this.byId.set(e.id, e);
  }

  all(): EndpointState[] {
    return [...this.byId.values()];
  }

  find(pred: (e: EndpointState) => boolean): EndpointState | undefined {
    for (const e of this.byId.values()) if (pred(e)) return e;
    return undefined;
  }

  add(e: EndpointState): void {
    this.byId.set(e.id, e);
    try {
      this.persist();
    } catch (err) {
      this.byId.delete(e.id);
      throw err;
    }
  }

  remove(id: string): void {
    const e = this.byId.get(id);
    if (!e) return;
    this.byId.delete(id);
    try {
      this.persist();
    } catch (err) {
      this.byId.set(id, e);
      throw err;
    }
  }

  private persist(): void {
    const endpoints = this.all().sort((a, b) => (a.network + a.name < b.network + b.name ? -1 : 1));
    this.store.write(ENDPOINTS_FILE, { version: 1, endpoints });
  }
}
