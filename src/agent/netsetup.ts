/**
 * One network's kernel side, set up and undone: bridge (created if missing, remembered), TAP
 * (created, or a persistent one attached), MTUs (TAP always; bridge only if we created it), TAP
 * enslaved, both up. `teardownNetwork` undoes exactly what `setupNetwork` did and nothing else.
 */

import type { Logger } from '../log';
import type { Config, NetworkConfig } from '../config/types';
import { SystemError } from '../errors';
import { nativeTsoSealing, type AgentSystem, type OpenedTap } from './system';

/** What the agent set up for one network, so that stop removes exactly that. */
export interface NetworkState {
  config: NetworkConfig;
  tap: OpenedTap;
  bridgeCreated: boolean;
  /** A bridge that existed but was down, brought up by us (brought down again on stop). */
  bridgeRaised: boolean;
  /** We enslaved the TAP (false: a persistent TAP was already on this bridge). */
  portAdded: boolean;
}

/** Bridge, TAP, MTUs, enslave, up — undone on failure of any step. */
export function setupNetwork(sys: AgentSystem, config: Config, net: NetworkConfig, logger: Logger): NetworkState {
  const log = logger.child({ network: net.name, vni: net.vni });
  let bridgeCreated = false;
  let bridgeRaised = false;
  let tap: OpenedTap | null = null;
  let portAdded = false;
  try {
    if (!sys.linkExists(net.bridge)) {
      sys.bridgeCreate(net.bridge);
      bridgeCreated = true;
      log.info({ bridge: net.bridge }, 'bridge created');
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
    return { config: net, tap, bridgeCreated, bridgeRaised, portAdded };
  } catch (e) {
    teardownNetwork(sys, { config: net, tap: tap as OpenedTap, bridgeCreated, bridgeRaised, portAdded }, logger, tap !== null);
    throw e;
  }
}

/** Undoes setupNetwork; never throws (logs what it could not undo). */
export function teardownNetwork(sys: AgentSystem, s: NetworkState, logger: Logger, tapOpen = true): void {
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
  if (s.bridgeCreated) {
    attempt(`bringing ${s.config.bridge} down`, () => sys.setUp(s.config.bridge, false));
    attempt(`deleting ${s.config.bridge}`, () => sys.bridgeDelete(s.config.bridge));
    log.info({ bridge: s.config.bridge }, 'bridge deleted');
  }
}
