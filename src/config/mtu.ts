/**
 * The read-only MTU lookup used to default `underlay.mtu`: the MTU of the interface that holds the
 * underlay address (netdev.mtuOfAddress, an ioctl through the addon). When the addon cannot be
 * loaded (not built, foreign platform) the lookup is absent and the loader falls back to 1500;
 * `check-config` says which source was used.
 */

export type MtuLookup = (address: string) => number | null;

/** The system lookup, or null if the addon is unavailable (the reason in `mtuLookupError`). */
export function systemMtuLookup(): MtuLookup | null {
  try {
    // Loaded lazily: check-config must work (with the fallback) even where the addon does not load.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const netdev = require('../dataplane/netdev') as { mtuOfAddress(address: string): number | null };
    return (address) => {
      try {
        return netdev.mtuOfAddress(address);
      } catch {
        return null;
      }
    };
  } catch (e) {
    mtuLookupError = (e as Error).message;
    return null;
  }
}

export let mtuLookupError: string | null = null;
