/**
 * sd_notify(3) without libsystemd: one datagram ("READY=1", "STOPPING=1", "STATUS=…",
 * "WATCHDOG=1", newline-separated) to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or
 * '@name' in the abstract namespace), sent through the addon.
 */
import { ERR_SDNOTIFY } from '../errors';
import { loadAddon, toSystemError } from './addon';

/**
 * Sends `message` to `socketPath`. Returns false when no socket is configured (not started by
 * systemd with Type=notify), true once sent; throws SystemError ERR_VXMESH_SDNOTIFY when the
 * socket exists in the environment but the datagram cannot be sent (ENOENT, ECONNREFUSED…).
 */
export function sdNotify(message: string, socketPath: string | undefined = process.env.NOTIFY_SOCKET): boolean {
  if (!socketPath) return false;
  const addon = loadAddon();
  try {
    addon.notify(socketPath, message);
  } catch (err) {
    throw toSystemError(err, ERR_SDNOTIFY, `sd_notify to ${socketPath}`);
  }
  return true;
}
