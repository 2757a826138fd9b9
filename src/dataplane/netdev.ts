/**
 * Network-device control through the addon's ioctls (no `ip` subprocesses): bridges and their
 * ports, MTU, up/down, MAC address, existence — plus `mtuOfAddress` for the underlay MTU default.
 * All calls are synchronous (a few microseconds each) and throw `SystemError` with code
 * ERR_VXMESH_NETDEV, the failing `syscall` (e.g. 'ioctl(SIOCBRADDBR)') and the errno name
 * (EPERM without CAP_NET_ADMIN, EEXIST, ENODEV, EBUSY, ENAMETOOLONG…).
 */
import * as os from 'node:os';
import { isIP } from 'node:net';
import { ERR_NETDEV } from '../errors';
import { isErrnoError, loadAddon, toSystemError, type VxmeshAddon } from '../native/addon';

function call<T>(what: string, fn: (a: VxmeshAddon) => T): T {
  const addon = loadAddon();
  try {
    return fn(addon);
  } catch (err) {
    throw toSystemError(err, ERR_NETDEV, what);
  }
}

/** True when a network device called `name` exists (in this network namespace). */
export function linkExists(name: string): boolean {
  const addon = loadAddon();
  try {
    addon.ifIndex(name);
    return true;
  } catch (err) {
    if (isErrnoError(err) && err.code === 'ENODEV') return false;
    throw toSystemError(err, ERR_NETDEV, `cannot look up link ${name}`);
  }
}

/** ifindex of `name`; throws (ENODEV) when absent. */
export function ifIndex(name: string): number {
  return call(`cannot look up link ${name}`, (a) => a.ifIndex(name));
}

/** Creates bridge `name` (SIOCBRADDBR); EEXIST if it exists. It starts down. */
export function bridgeCreate(name: string): void {
  call(`cannot create bridge ${name}`, (a) => a.bridgeAdd(name));
}

/** Deletes bridge `name` (SIOCBRDELBR; the kernel refuses with EBUSY while it is up). */
export function bridgeDelete(name: string): void {
  call(`cannot delete bridge ${name}`, (a) => a.bridgeDel(name));
}

/** Enslaves `ifname` to bridge `br` (SIOCBRADDIF). */
export function bridgeAddPort(br: string, ifname: string): void {
  call(`cannot add ${ifname} to bridge ${br}`, (a) => a.bridgePort(br, ifname, true));
}

/** Releases `ifname` from bridge `br` (SIOCBRDELIF). */
export function bridgeDelPort(br: string, ifname: string): void {
  call(`cannot remove ${ifname} from bridge ${br}`, (a) => a.bridgePort(br, ifname, false));
}

/** Sets the MTU of `name` (SIOCSIFMTU). */
export function setMtu(name: string, mtu: number): void {
  call(`cannot set MTU ${mtu} on ${name}`, (a) => a.setMtu(name, mtu));
}

/** MTU of `name` (SIOCGIFMTU). */
export function getMtu(name: string): number {
  return call(`cannot read the MTU of ${name}`, (a) => a.getMtu(name));
}

/** Brings `name` up or down (SIOCGIFFLAGS + SIOCSIFFLAGS, IFF_UP). */
export function setUp(name: string, up: boolean): void {
  call(`cannot set ${name} ${up ? 'up' : 'down'}`, (a) => a.setUp(name, up));
}

/** True when `name` is administratively up (IFF_UP). */
export function isUp(name: string): boolean {
  return (call(`cannot read the flags of ${name}`, (a) => a.getFlags(name)) & 0x1) !== 0;
}

/** MAC address of `name` (SIOCGIFHWADDR), 6 bytes. */
export function getMac(name: string): Buffer {
  return call(`cannot read the MAC address of ${name}`, (a) => a.getMac(name));
}

function canonical(address: string): string {
  if (isIP(address) === 6) {
    try {
      return new URL(`http://[${address}]/`).hostname.slice(1, -1);
    } catch {
      return address.toLowerCase();
    }
  }
  return address;
}

/**
 * MTU of the local interface holding `address` (found through os.networkInterfaces(), read with
 * SIOCGIFMTU), or null when no interface holds it (e.g. a wildcard address) or the MTU cannot be read.
 */
export function mtuOfAddress(address: string): number | null {
  const want = canonical(address);
  const ifs = os.networkInterfaces();
  for (const [name, addrs] of Object.entries(ifs)) {
    for (const a of addrs ?? []) {
      if (canonical(a.address) !== want) continue;
      try {
        return getMtu(name);
      } catch {
        return null;
      }
    }
  }
  return null;
}
