/**
 * What changed between two validated configs, for SIGHUP reload. The agent applies the live-
 * applicable parts (networks added/removed/changed, a network's `acceptFrom` (in place, the network
 * is not torn down), static peers, log level, gossip seeds and keyring) and refuses the whole
 * reload, with reasons, if anything else changed (underlay, node identity, API listener, FDB
 * limits, gossip port/address/profile, gossip on/off).
 *
 * Endpoint settings of a network (overlay or local) are the endpoints extension's: `hostEndpoint`
 * and, for local networks, `mtu` apply in place (`endpointsChanged`; a changed overlay MTU re-creates
 * the network as before, and the endpoints extension then sets the new MTU on the endpoints it
 * attached). What cannot change live is refused: a network's `ipam` (addresses already handed out
 * come from it), its `mode` or `parent`, a local network's `bridge`.
 */

import type { Config, Endpoint, NetworkConfig } from './types';

export interface ConfigDiff {
  /** Networks only in the new config. */
  added: NetworkConfig[];
  /** Networks (by VNI) only in the old config. */
  removed: NetworkConfig[];
  /** Same VNI, different settings: torn down and set up again. */
  changed: Array<{ before: NetworkConfig; after: NetworkConfig }>;
  /** Same VNI, identical settings: untouched. */
  unchanged: NetworkConfig[];
  /**
   * Networks (new config) whose only change is `acceptFrom`: applied in place (also listed in
   * `unchanged`, since nothing is torn down). A network in `changed` gets its new one anyway.
   */
  acceptFromChanged: NetworkConfig[];
  peersChanged: boolean;
  logLevelChanged: boolean;
  /** gossip.seeds or gossip.keyFile changed (passed on to extensions). */
  gossipChanged: boolean;
  /**
   * Networks (overlay or local, new config) whose endpoint settings change in place (the endpoints
   * extension's reload): MTU (the endpoints it attached get it), `hostEndpoint`; and local
   * networks added.
   */
  endpointsChanged: NetworkConfig[];
  /** Changes that cannot be applied to a running agent; non-empty = reload refused. */
  refused: string[];
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
const epKey = (e: Endpoint): string => `${e.address}|${e.port}`;

export function sameEndpoints(a: Endpoint[], b: Endpoint[]): boolean {
  const ka = a.map(epKey).sort();
  const kb = b.map(epKey).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i]);
}

export function diffConfig(before: Config, after: Config): ConfigDiff {
  const refused: string[] = [];
  const must = (what: string, a: unknown, b: unknown) => {
    if (sameJson(a, b)) return;
    // two mappings: name only the keys that changed (a whole section would not fit a STATUS= line)
    const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (isMap(a) && isMap(b)) {
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => !sameJson(a[k], b[k]));
      const parts = keys.map((k) => `${k}: ${JSON.stringify(a[k]) ?? 'unset'} → ${JSON.stringify(b[k]) ?? 'unset'}`);
      refused.push(`${what} changed (${parts.join(', ')}); restart the agent to apply it`);
      return;
    }
    refused.push(`${what} changed (${JSON.stringify(a)} → ${JSON.stringify(b)}); restart the agent to apply it`);
  };
  must('node', before.node, after.node);
  must('underlay', before.underlay, after.underlay);
  must('api.listen', before.api.listen, after.api.listen);
  must('api.metricsListen', before.api.metricsListen ?? null, after.api.metricsListen ?? null);
  must('fdb', before.fdb, after.fdb);
  if ((before.gossip === null) !== (after.gossip === null)) {
    refused.push(`gossip ${after.gossip ? 'enabled' : 'disabled'}; restart the agent to apply it`);
  } else if (before.gossip && after.gossip) {
    must('gossip.port', before.gossip.port, after.gossip.port);
    must('gossip.address', before.gossip.address, after.gossip.address);
    must('gossip.profile', before.gossip.profile, after.gossip.profile);
  }

  const oldBy = new Map(before.networks.map((n) => [n.vni, n]));
  const newBy = new Map(after.networks.map((n) => [n.vni, n]));
  const added = after.networks.filter((n) => !oldBy.has(n.vni));
  const removed = before.networks.filter((n) => !newBy.has(n.vni));
  const changed: ConfigDiff['changed'] = [];
  const unchanged: NetworkConfig[] = [];
  const acceptFromChanged: NetworkConfig[] = [];
  // absent (hand-built configs) = known
  const accept = (n: NetworkConfig) => n.acceptFrom ?? 'known';
  // Fields applied in place by their owners (admission; the policy and endpoints extensions' reload): not a set-up change.
  const setup = (n: NetworkConfig) => ({ ...n, acceptFrom: undefined, defaultPolicy: undefined, policyMode: undefined, hostEndpoint: undefined, ipam: undefined });
  // Endpoint settings across overlay and local networks, by name.
  const allBefore = new Map([...before.networks, ...(before.localNetworks ?? [])].map((n) => [n.name, n]));
  const endpointsChanged: NetworkConfig[] = [];
  for (const n of [...after.networks, ...(after.localNetworks ?? [])]) {
    const o = allBefore.get(n.name);
    const local = (n.mode ?? 'overlay') !== 'overlay';
    if (!o) {
      if (local) endpointsChanged.push(n);
      continue;
    }
    must(`networks[${n.name}].ipam`, o.ipam ?? null, n.ipam ?? null);
    must(`networks[${n.name}].mode`, o.mode ?? 'overlay', n.mode ?? 'overlay');
    must(`networks[${n.name}].parent`, o.parent ?? null, n.parent ?? null);
    if (local) must(`networks[${n.name}].bridge`, o.bridge, n.bridge);
    if (o.mtu !== n.mtu || (o.hostEndpoint ?? false) !== (n.hostEndpoint ?? false)) endpointsChanged.push(n);
  }
  for (const n of after.networks) {
    const o = oldBy.get(n.vni);
    if (!o) continue;
    if (sameJson(setup(o), setup(n))) {
      unchanged.push(n);
      if (!sameJson(accept(o), accept(n))) acceptFromChanged.push(n);
    } else changed.push({ before: o, after: n });
  }
  return {
    added,
    removed,
    changed,
    unchanged,
    acceptFromChanged,
    peersChanged: !sameEndpoints(before.peers, after.peers),
    logLevelChanged: before.log.level !== after.log.level,
    gossipChanged: !!before.gossip && !!after.gossip &&
      (!sameEndpoints(before.gossip.seeds, after.gossip.seeds) || before.gossip.keyFile !== after.gossip.keyFile),
    endpointsChanged,
    refused,
  };
}
