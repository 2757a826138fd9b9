/**
 * Where the policy extension's inputs come from in a running agent: the endpoints extension's
 * registry (this host's endpoints, with labels) and the `endpoints` sections other hosts announce
 * by gossip, each tagged with its host's underlay address (the identity the data path sees); the
 * control socket of the endpoints extension for the write routes. Connected in cli/extensions.ts.
 */
import type { Clock, TimerHandle } from '../clock';
import type { Config } from '../config/types';
import { canonicalEndpoint } from '../dataplane/addr';
import { decodeEndpoints, ENDPOINTS_SECTION } from '../endpoints/announce';
import type { EndpointsExtension } from '../endpoints/extension';
import type { GossipExtension } from '../gossip/extension';
import { underlayEndpoint } from '../gossip/extension';
import type { Handler } from '../api/server';
import type { PolicyEndpointRecord, PolicyEndpointSource, Router } from './extension';

/** How often the endpoint list is compared with the last one (control plane). */
export const ENDPOINT_POLL_MS = 1000;

export function endpointSource(config: Config, eps: EndpointsExtension, gossip: GossipExtension | null, clock: () => Clock): PolicyEndpointSource {
  const self = canonicalEndpoint({ address: config.underlay.address, port: config.underlay.port, family: config.underlay.family }).address;
  const list = (): PolicyEndpointRecord[] => {
    const out: PolicyEndpointRecord[] = [];
    for (const e of eps.manager?.local() ?? []) {
      out.push({ host: config.node.name, hostAddr: self, network: e.network, name: e.name, mac: e.mac, ips: e.addresses.map((a) => a.split('/')[0]), labels: e.labels, port: e.kind === 'veth' && e.hostIf ? e.hostIf : undefined });
    }
    if (gossip) {
      const addrOf = new Map<string, string>();
      for (const m of gossip.members()) {
        const u = underlayEndpoint(m.underlay);
        if (u) addrOf.set(m.name, canonicalEndpoint(u).address);
      }
      for (const s of gossip.sections(ENDPOINTS_SECTION)) {
        if (s.self || (s.state !== 'alive' && s.state !== 'suspect')) continue;
        const hostAddr = addrOf.get(s.node);
        for (const e of decodeEndpoints(s.node, s.data) ?? []) out.push({ host: e.host, hostAddr, network: e.network, name: e.name, mac: e.mac, ips: e.ips, labels: e.labels });
      }
    }
    return out;
  };
  return {
    list,
    onChange(cb) {
      // Local attaches and remote announcements both end in a different list: compare once a second.
      let last = '';
      let timer: TimerHandle | null = clock().setInterval(ENDPOINT_POLL_MS, () => {
        const sig = JSON.stringify(list());
        if (sig !== last) {
          last = sig;
          cb();
        }
      });
      return () => {
        timer?.cancel();
        timer = null;
      };
    },
  };
}

/** The endpoints extension's control socket as a router (routes registered once it listens). */
export function controlRouter(eps: EndpointsExtension): Router {
  return {
    route: (method: string, path: string, handler: Handler) => eps.socket?.api.route(method, path, handler),
    unroute: (method: string, path: string) => eps.socket?.api.unroute(method, path),
  };
}
