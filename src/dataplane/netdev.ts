/**
 * Network-device control through the addon's ioctls (no `ip` subprocesses): bridges and their
 * ports, MTU, up/down, MAC address, existence, offload features (the SIOCETHTOOL ioctl that
 * `ethtool -k/-K` uses, without the binary) — plus `mtuOfAddress` for the underlay MTU default.
 * All calls are synchronous (a few microseconds each) and throw `SystemError` with code
 * ERR_VXMESH_NETDEV, the failing `syscall` (e.g. 'ioctl(SIOCBRADDBR)') and the errno name
 * (EPERM without CAP_NET_ADMIN, EEXIST, ENODEV, EBUSY, ENAMETOOLONG…).
 */
import * as os from 'node:os';
import { isIP } from 'node:net';
import { ERR_NETDEV, SystemError } from '../errors';
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

/**
 * Offload groups as `ethtool -k/-K` names them, each a set of kernel features matched by name the
 * way ethtool's userspace does (e.g. `tso` = every tx-tcp*-segmentation feature).
 */
export type OffloadGroup = 'rx' | 'tx' | 'sg' | 'tso' | 'gso' | 'gro' | 'lro' | 'rxvlan' | 'txvlan';
const GROUPS: Record<OffloadGroup, { label: string; match: RegExp }> = {
  rx: { label: 'rx-checksumming', match: /^rx-checksum$/ },
  tx: { label: 'tx-checksumming', match: /^tx-checksum-/ },
  sg: { label: 'scatter-gather', match: /^tx-scatter-gather/ },
  tso: { label: 'tcp-segmentation-offload', match: /^tx-tcp.*segmentation$/ },
  gso: { label: 'generic-segmentation-offload', match: /^tx-generic-segmentation$/ },
  gro: { label: 'generic-receive-offload', match: /^rx-gro$/ },
  lro: { label: 'large-receive-offload', match: /^rx-lro$/ },
  rxvlan: { label: 'rx-vlan-offload', match: /^rx-vlan-hw-parse$/ },
  txvlan: { label: 'tx-vlan-offload', match: /^tx-vlan-hw-insert$/ },
};
export const OFFLOAD_GROUPS = Object.keys(GROUPS) as OffloadGroup[];

/** `ethtool -k`'s summary line name of a group (e.g. 'tcp-segmentation-offload'). */
export function offloadLabel(g: OffloadGroup): string {
  return GROUPS[g].label;
}

/** One device feature as `ethtool -k` lists it (kernel name, e.g. 'tx-checksum-ip-generic', 'rx-gro'). */
export interface DeviceFeature {
  name: string;
  active: boolean;
  /** Wanted by the user; differs from `active` while a dependency keeps it off. */
  requested: boolean;
  /** `[fixed]` in ethtool's output: the device cannot change it. */
  fixed: boolean;
}

/** The device's features in kernel order (ETHTOOL_GSTRINGS + ETHTOOL_GFEATURES). */
export function listFeatures(ifname: string): DeviceFeature[] {
  return call(`cannot read the features of ${ifname}`, (a) => a.ethtoolFeatures(ifname))
    .filter(([name]) => name !== '')
    .map(([name, active, requested, changeable]) => ({ name, active, requested, fixed: !changeable }));
}

function isGroup(key: string): key is OffloadGroup {
  return Object.prototype.hasOwnProperty.call(GROUPS, key);
}

/** The groups of `ifname`: on when any of the group's features is on (as `ethtool -k` shows them). */
export function getOffloads(ifname: string): Record<OffloadGroup, boolean> {
  const feats = listFeatures(ifname);
  const out = {} as Record<OffloadGroup, boolean>;
  for (const g of OFFLOAD_GROUPS) out[g] = feats.some((f) => GROUPS[g].match.test(f.name) && f.active);
  return out;
}

/**
 * Turns offloads on/off like `ethtool -K ifname tx off tso off …`, in one ETHTOOL_SFEATURES
 * request: keys are groups (rx, tx, sg, tso, gso, gro, lro, rxvlan, txvlan: every changeable
 * feature of the group) or kernel feature names ('rx-udp-gro-forwarding', …); later keys win.
 * Throws SystemError ERR_VXMESH_NETDEV when the device cannot change a group or feature (fixed),
 * or when a requested state is not in effect afterwards (a feature it depends on is off; the
 * kernel keeps the request and applies it when the dependency comes back).
 */
export function setOffloads(ifname: string, want: Partial<Record<OffloadGroup, boolean>> & Record<string, boolean>): void {
  const what = `cannot set offloads ${Object.entries(want).map(([k, v]) => `${k} ${v ? 'on' : 'off'}`).join(' ')} on ${ifname}`;
  const feats = listFeatures(ifname);
  const plan = new Map<string, boolean>();
  for (const [key, on] of Object.entries(want)) {
    if (typeof on !== 'boolean') continue;
    if (isGroup(key)) {
      const members = feats.filter((f) => GROUPS[key].match.test(f.name));
      const changeable = members.filter((f) => !f.fixed);
      if (changeable.length === 0 && members.some((f) => f.active !== on)) {
        throw new SystemError(ERR_NETDEV, `${what}: ${key} (${GROUPS[key].label}) is fixed on this device`, 'ioctl(SIOCETHTOOL, ETHTOOL_SFEATURES)', 'EOPNOTSUPP');
      }
      for (const f of changeable) plan.set(f.name, on);
    } else {
      const f = feats.find((x) => x.name === key);
      if (f && f.fixed && f.active !== on) {
        throw new SystemError(ERR_NETDEV, `${what}: ${key} is fixed on this device`, 'ioctl(SIOCETHTOOL, ETHTOOL_SFEATURES)', 'EOPNOTSUPP');
      }
      if (!f || !f.fixed) plan.set(key, on); // an unknown name: the addon says so
    }
  }
  if (plan.size === 0) return;
  call(what, (a) => a.ethtoolSetFeatures(ifname, [...plan.keys()], [...plan.values()]));
  const now = new Map(listFeatures(ifname).map((f) => [f.name, f.active]));
  const off = [...plan].filter(([name, on]) => now.get(name) !== on).map(([name]) => name);
  if (off.length) {
    throw new SystemError(ERR_NETDEV, `${what}: not in effect (a feature they depend on is off): ${off.join(', ')}`,
      'ioctl(SIOCETHTOOL, ETHTOOL_SFEATURES)', 'EAGAIN');
  }
}
