/**
 * The read-only MTU lookup used to default `underlay.mtu`: the MTU of the interface that holds the
 * underlay address (netdev.mtuOfAddress: os.networkInterfaces + SIOCGIFMTU through the addon).
 * When the addon cannot be loaded (not built) or the address is on no interface, the lookup
 * answers null and the loader falls back to 1500; `check-config` says which source was used.
 */

import { mtuOfAddress } from '../dataplane/netdev';

export type MtuLookup = (address: string) => number | null;

/** The system lookup; never throws. */
export function systemMtuLookup(): MtuLookup {
  return (address) => {
    try {
      return mtuOfAddress(address);
    } catch {
      return null;
    }
  };
}
