/**
 * A live reload (SIGHUP): diff the running config against the new one, refuse what cannot change
 * live (config/diff.ts), otherwise remove, add and re-create changed networks, update static peers
 * and the log level, then let each extension apply its part. The running config afterwards is what
 * is actually in place: networks that failed to come up stay out of it.
 */

import type { Logger } from '../log';
import type { Config } from '../config/types';
import { diffConfig } from '../config/diff';
import { ConfigError, VxmeshError } from '../errors';
import type { Datapath } from '../dataplane/datapath';
import type { AgentSystem } from './system';
import { setupNetwork, teardownNetwork, type NetworkState } from './netsetup';
import { epText } from './status';

export interface ReloadResult {
  added: string[];
  removed: string[];
  changed: string[];
  /** Networks whose `acceptFrom` was applied in place. */
  acceptFromChanged: string[];
  peersChanged: boolean;
  logLevelChanged: boolean;
  /** gossip.seeds or gossip.keyFile changed (applied by the extensions' reload). */
  gossipChanged: boolean;
  /** Networks whose endpoint settings (MTU, hostEndpoint) the endpoints extension applied in place. */
  endpointsChanged: string[];
}

/** What a reload works on (the running agent's parts). */
export interface ReloadTarget {
  config: Config;
  readonly system: AgentSystem;
  readonly logger: Logger;
  readonly datapath: Datapath;
  readonly nets: Map<number, NetworkState>;
  readonly extensions: readonly { name: string; reload?(config: Config): Promise<void> | void }[];
  /** Bridges vxmesh owns (from the state file and this run). */
  ownedBridges(): ReadonlySet<string>;
  /** Records the bridges of the networks now in place (the state file). */
  saveState(): void;
}

/**
 * Applies `next` to `t` (t.config is replaced by what is in place). Refuses (ConfigError listing
 * the reasons, nothing changed) when something that cannot change live changed; a partly applied
 * reload throws ERR_VXMESH_RELOAD naming what failed. Unchanged networks are not touched.
 * `commit` runs once the reload is accepted (passed the refusal check), before anything changes;
 * a throw from it refuses the reload (ConfigError), nothing changed.
 */
export async function applyReload(t: ReloadTarget, next: Config, commit?: () => void): Promise<ReloadResult> {
  const d = diffConfig(t.config, next);
  if (d.refused.length) throw new ConfigError('', `reload refused: ${d.refused.join('; ')}`);
  // what goes with an accepted reload (the runtime networks' state file), before anything changes
  if (commit) {
    try {
      commit();
    } catch (e) {
      throw new ConfigError('', `reload refused: ${(e as Error).message}`);
    }
  }

  // Interface names must not clash between a network being added and one staying.
  const removing = [...d.removed, ...d.changed.map((c) => c.before)];
  for (const n of removing) {
    const s = t.nets.get(n.vni);
    if (!s) continue;
    t.datapath.removeNetwork(n.vni);
    // a removed network's bridge goes with it; a changed network keeps it if the bridge stays
    const keep = d.changed.some((c) => c.before.vni === n.vni && c.after.bridge === n.bridge);
    teardownNetwork(t.system, s, t.logger, { deleteBridge: !keep });
    t.nets.delete(n.vni);
    t.logger.info({ network: n.name, vni: n.vni }, 'network removed');
  }
  // What containers now need: encryption on/off (or any MTU change) moves the network MTU.
  for (const c of d.changed) {
    if (c.before.mtu === c.after.mtu && c.before.encrypted === c.after.encrypted) continue;
    const why = c.before.encrypted !== c.after.encrypted ? `encryption turned ${c.after.encrypted ? 'on' : 'off'}` : 'MTU changed';
    t.logger.warn({ network: c.after.name, vni: c.after.vni, bridge: c.after.bridge, mtuBefore: c.before.mtu, mtu: c.after.mtu, encrypted: c.after.encrypted },
      `network ${c.after.name}: ${why}, its MTU is now ${c.after.mtu} (was ${c.before.mtu}): containers on ${c.after.bridge} need MTU ${c.after.mtu} or less` +
      ` — endpoints vxmesh attached (vxmesh attach, CNI, Docker) get it on both ends now; set it on any other container interface on the bridge` +
      (c.after.mtu < c.before.mtu ? ', or its large packets are lost (small pings still work)' : ' (they may raise theirs)'));
  }
  const adding = [...d.added, ...d.changed.map((c) => c.after)];
  const failed: string[] = [];
  for (const n of adding) {
    try {
      const s = setupNetwork(t.system, t.config, n, t.logger, t.ownedBridges());
      t.nets.set(n.vni, s);
      t.datapath.addNetwork({ config: n, tap: s.tap });
      t.logger.info({ network: n.name, vni: n.vni }, 'network added');
    } catch (e) {
      const s = t.nets.get(n.vni);
      if (s) {
        teardownNetwork(t.system, s, t.logger);
        t.nets.delete(n.vni);
      }
      failed.push(`${n.name} (vni ${n.vni}): ${(e as Error).message}`);
    }
  }
  for (const n of d.acceptFromChanged) {
    t.datapath.setAcceptFrom(n.vni, n.acceptFrom ?? 'known');
    const s = t.nets.get(n.vni);
    if (s) s.config = n;
    t.logger.info({ network: n.name, vni: n.vni, acceptFrom: n.acceptFrom ?? 'known' }, 'network acceptFrom changed');
  }
  if (d.peersChanged) {
    t.datapath.setStaticPeers(next.peers);
    t.logger.info({ peers: next.peers.map(epText) }, 'static peers updated');
  }
  if (d.logLevelChanged) {
    t.logger.level = next.log.level;
    t.logger.info({ level: next.log.level }, 'log level changed');
  }
  const inPlace = next.networks.filter((n) => t.nets.has(n.vni));
  t.config = { ...next, networks: inPlace };
  try {
    t.saveState();
  } catch (e) {
    failed.push((e as Error).message);
  }
  for (const ext of t.extensions) {
    if (!ext.reload) continue;
    try {
      await ext.reload(t.config);
    } catch (e) {
      failed.push(`extension ${ext.name}: ${(e as Error).message}`);
    }
  }
  if (failed.length) {
    throw new VxmeshError('ERR_VXMESH_RELOAD', `reload partly applied; failed: ${failed.join('; ')}`);
  }
  return {
    added: d.added.map((n) => n.name),
    removed: d.removed.map((n) => n.name),
    changed: d.changed.map((c) => c.after.name),
    acceptFromChanged: d.acceptFromChanged.map((n) => n.name),
    peersChanged: d.peersChanged,
    logLevelChanged: d.logLevelChanged,
    gossipChanged: d.gossipChanged,
    endpointsChanged: d.endpointsChanged.map((n) => n.name),
  };
}
