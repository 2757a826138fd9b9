/**
 * One network's kernel side, set up and undone: bridge (created if missing; a bridge vxmesh created
 * in an earlier run — `owned` — is reused as ours), TAP (created, or a persistent one attached),
 * MTUs (TAP always; bridge only if it is ours), TAP enslaved, both up.
 *
 * `teardownNetwork` undoes what `setupNetwork` did, except that a bridge of ours stays (up, with
 * its container ports) unless `deleteBridge` is asked for: containers stay attached across agent
 * restarts, and only `vxmesh cleanup` or removing the network from the config deletes the bridge.
 */

import type { Logger } from '../log';
import type { Config, NetworkConfig } from '../config/types';
import { SystemError } from '../errors';
import { nativeTsoSealing, type AgentSystem, type OpenedTap } from './system';

/** What the agent set up for one network, so that stop removes exactly that. */
export interface NetworkState {
  config: NetworkConfig;
  tap: OpenedTap;
  /** The bridge is vxmesh's: created now or by an earlier run (recorded in the state file). */
  bridgeCreated: boolean;
  /** Created by this run's set-up (a start that fails deletes it again: nothing can be attached yet). */
  bridgeNew: boolean;
  /** A bridge that existed but was down, brought up by us (brought down again on stop). */
  bridgeRaised: boolean;
  /** We enslaved the TAP (false: a persistent TAP was already on this bridge). */
  portAdded: boolean;
}

/** Bridge, TAP, MTUs, enslave, up — undone on failure of any step. */
export function setupNetwork(sys: AgentSystem, config: Config, net: NetworkConfig, logger: Logger, owned: ReadonlySet<string> = new Set()): NetworkState {
  const log = logger.child({ network: net.name, vni: net.vni });
  let bridgeCreated = false;
  /** Created by this call (deleted again if a later step fails). */
  let bridgeNew = false;
  let bridgeRaised = false;
  let tap: OpenedTap | null = null;
  let portAdded = false;
  try {
    if (!sys.linkExists(net.bridge)) {
      sys.bridgeCreate(net.bridge);
      bridgeCreated = true;
      bridgeNew = true;
      log.info({ bridge: net.bridge }, 'bridge created');
    } else if (owned.has(net.bridge)) {
      bridgeCreated = true;
      log.info({ bridge: net.bridge }, 'bridge from an earlier run reused (its ports stay attached)');
    }
    // fast path (vnet TAP, TSO) unless underlay.offload is false; encrypted networks too when the
    // native AEAD can seal TSO super-frames (the data path hands them to cipher.sealSuperFrame),
    // else they keep a plain TAP and are sealed per datagram
    const vnetHdr = config.underlay.offload !== false && (!net.encrypted || nativeTsoSealing());
    if (vnetHdr) {
      try {
        tap = sys.openTap(net.tap, { vnetHdr });
      } catch (e) {
        log.warn({ tap: net.tap, err: (e as Error).message }, 'TAP offloads unavailable; using plain frames');
        tap = sys.openTap(net.tap);
      }
    } else {
      tap = sys.openTap(net.tap);
    }
    log.info({ tap: net.tap, created: tap.created, vnetHdr: (tap as { vnetHdr?: boolean }).vnetHdr === true },
      tap.created ? 'TAP created' : 'persistent TAP attached');
    sys.setMtu(net.tap, net.mtu);
    if (bridgeCreated) sys.setMtu(net.bridge, net.mtu);
    const master = sys.masterOf(net.tap);
    if (master === net.bridge) {
      portAdded = false;
    } else {
      if (master !== null) {
        throw new SystemError('ERR_VXMESH_NETDEV', `TAP ${net.tap} is already a port of bridge ${master}, not ${net.bridge}`, 'ioctl(SIOCBRADDIF)', 'EBUSY');
      }
      sys.bridgeAddPort(net.bridge, net.tap);
      portAdded = true;
    }
    sys.setUp(net.tap, true);
    if (bridgeCreated) sys.setUp(net.bridge, true);
    else if (!sys.isUp(net.bridge)) {
      sys.setUp(net.bridge, true);
      bridgeRaised = true;
      log.info({ bridge: net.bridge }, 'existing bridge was down: brought up');
    }
    return { config: net, tap, bridgeCreated, bridgeNew, bridgeRaised, portAdded };
  } catch (e) {
    teardownNetwork(sys, { config: net, tap: tap as OpenedTap, bridgeCreated, bridgeNew, bridgeRaised, portAdded }, logger, { tapOpen: tap !== null, deleteBridge: bridgeNew });
    throw e;
  }
}

/**
 * Undoes setupNetwork; never throws (logs what it could not undo). A bridge of ours is deleted only
 * with `deleteBridge` (network removed from the config, `vxmesh cleanup`, or created by a start
 * that failed); otherwise it stays up with its ports.
 */
export function teardownNetwork(sys: AgentSystem, s: NetworkState, logger: Logger, opts: { tapOpen?: boolean; deleteBridge?: boolean } = {}): void {
  const tapOpen = opts.tapOpen ?? true;
  const log = logger.child({ network: s.config.name, vni: s.config.vni });
  const attempt = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      log.warn({ err: (e as Error).message }, `cleanup: ${what} failed`);
    }
  };
  if (tapOpen && s.tap) {
    if (!s.tap.created && s.portAdded) attempt(`removing ${s.config.tap} from ${s.config.bridge}`, () => sys.bridgeDelPort(s.config.bridge, s.config.tap));
    attempt(`closing ${s.config.tap}`, () => s.tap.close());
  }
  if (s.bridgeRaised) attempt(`bringing ${s.config.bridge} back down`, () => sys.setUp(s.config.bridge, false));
  if (s.bridgeCreated && opts.deleteBridge) deleteBridge(sys, s.config.bridge, log);
}

/** Brings a bridge of ours down and deletes it (its ports are released); never throws. */
export function deleteBridge(sys: AgentSystem, bridge: string, log: Logger): boolean {
  try {
    sys.setUp(bridge, false);
    sys.bridgeDelete(bridge);
    log.info({ bridge }, 'bridge deleted');
    return true;
  } catch (e) {
    log.warn({ bridge, err: (e as Error).message }, `cleanup: deleting ${bridge} failed`);
    return false;
  }
}

/** What `vxmesh cleanup` did. */
export interface CleanupResult {
  deleted: string[];
  /** Recorded as ours but no longer present. */
  missing: string[];
  failed: string[];
}

/**
 * `vxmesh cleanup`: deletes every bridge the state file says vxmesh created (releasing its
 * container ports), then the state file. The caller checks that no agent is running.
 */
export function cleanupOwnedBridges(sys: AgentSystem, bridges: readonly { name: string }[], logger: Logger): CleanupResult {
  const r: CleanupResult = { deleted: [], missing: [], failed: [] };
  for (const b of bridges) {
    if (!sys.linkExists(b.name)) r.missing.push(b.name);
    else if (deleteBridge(sys, b.name, logger)) r.deleted.push(b.name);
    else r.failed.push(b.name);
  }
  return r;
}
