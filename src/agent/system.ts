/**
 * What the agent asks of the kernel: bridges, links, MTUs, TAPs and the underlay UDP socket, behind
 * one interface (`AgentSystem`) so the agent's lifecycle also runs over in-memory devices. The
 * default (`nativeSystem`) is the addon, through dataplane/netdev.ts and dataplane/native-io.ts.
 */

import * as fs from 'node:fs';
import type { TapDevice, UdpTransport } from '../dataplane/seams';
import * as netdev from '../dataplane/netdev';
import { NativeTap, NativeUdp } from '../dataplane/native-io';
import { loadNativeAead } from '../crypto/aead';

/** A TAP as opened by the system: the data-path seam plus whether opening created it. */
export interface OpenedTap extends TapDevice {
  readonly created: boolean;
}

/** The system calls the agent makes (all synchronous, throwing SystemError). */
export interface AgentSystem {
  linkExists(name: string): boolean;
  bridgeCreate(name: string): void;
  bridgeDelete(name: string): void;
  bridgeAddPort(bridge: string, ifname: string): void;
  bridgeDelPort(bridge: string, ifname: string): void;
  setMtu(name: string, mtu: number): void;
  setUp(name: string, up: boolean): void;
  isUp(name: string): boolean;
  /** Name of the bridge `ifname` is enslaved to, or null. */
  masterOf(ifname: string): string | null;
  /** `vnetHdr`: the fast path (IFF_VNET_HDR + checksum/TSO offloads), see config `underlay.offload`. */
  openTap(name: string, opts?: { vnetHdr: boolean }): OpenedTap;
  /** `gro`: try UDP GRO receive (fast path); a kernel without it leaves it off, no error. */
  openUdp(opts: { address: string; port: number; family: 4 | 6; sourcePorts: number; gro?: boolean }): UdpTransport;
  /** The ports of `bridge` with their MTUs (the watch of oversized ports); optional. */
  bridgePorts?(bridge: string): { name: string; mtu: number }[];
}

/** Ports of a bridge from /sys/class/net/<bridge>/brif, with each port's MTU. */
function sysfsBridgePorts(bridge: string): { name: string; mtu: number }[] {
  let names: string[];
  try {
    names = fs.readdirSync(`/sys/class/net/${bridge}/brif`);
  } catch {
    return [];
  }
  const out: { name: string; mtu: number }[] = [];
  for (const name of names) {
    try {
      out.push({ name, mtu: Number(fs.readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim()) });
    } catch {
      // the port went away between the two reads
    }
  }
  return out;
}

/** Reads /sys/class/net/<ifname>/master (valid inside `ip netns exec`, which remounts /sys). */
function sysfsMaster(ifname: string): string | null {
  try {
    const target = fs.readlinkSync(`/sys/class/net/${ifname}/master`);
    return target.split('/').pop() ?? null;
  } catch {
    return null;
  }
}

/** The real system: the addon's ioctls and devices (the addon loads on first use). */
export function nativeSystem(): AgentSystem {
  return {
    linkExists: (n) => netdev.linkExists(n),
    bridgeCreate: (n) => netdev.bridgeCreate(n),
    bridgeDelete: (n) => netdev.bridgeDelete(n),
    bridgeAddPort: (b, i) => netdev.bridgeAddPort(b, i),
    bridgeDelPort: (b, i) => netdev.bridgeDelPort(b, i),
    setMtu: (n, m) => netdev.setMtu(n, m),
    setUp: (n, up) => netdev.setUp(n, up),
    isUp: (n) => netdev.isUp(n),
    masterOf: sysfsMaster,
    bridgePorts: sysfsBridgePorts,
    openTap: (n, o) => NativeTap.open(n, { vnetHdr: o?.vnetHdr ?? false }),
    openUdp: (o) => {
      const u = NativeUdp.open({ address: o.address, port: o.port, family: o.family, sourcePorts: o.sourcePorts });
      if (o.gro) {
        try {
          u.setGro(true);
        } catch {
          // no UDP_GRO in this kernel: datagrams arrive one by one (correct, slower)
        }
      }
      return u;
    },
  };
}

/** Whether the addon's AEAD can seal TSO super-frames (aeadSealTso): encrypted networks may then use a vnet TAP. */
export function nativeTsoSealing(): boolean {
  const fns = loadNativeAead() as { aeadSealTso?: unknown } | null;
  return fns !== null && typeof fns.aeadSealTso === 'function';
}
