/**
 * A recording fake of the agent's system calls (src/agent/system.ts) over in-memory devices: links
 * by name, every call recorded in `calls`, failures injectable by call prefix (`failOn`). TAPs are
 * MemoryTaps on the given reactor, UDP sockets attach to the given MemoryUdpNetwork.
 */
import type { AgentSystem, OpenedTap } from '../../src/agent/agent';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { SystemError } from '../../src/errors';

export interface FakeLink {
  kind: 'bridge' | 'tap' | 'other';
  mtu: number;
  up: boolean;
  master: string | null;
  persistent: boolean;
}

/** A kernel stand-in: links by name, every call recorded, failures injectable by call prefix. */
export class FakeSystem implements AgentSystem {
  readonly links = new Map<string, FakeLink>();
  readonly calls: string[] = [];
  readonly taps = new Map<string, MemoryTap>();
  failOn: string | null = null;
  constructor(readonly net: MemoryUdpNetwork, readonly reactor: MemoryReactor, readonly macByte = 1) {}
  private rec(call: string): void {
    this.calls.push(call);
    if (this.failOn && call.startsWith(this.failOn)) throw new SystemError('ERR_VXMESH_NETDEV', `injected failure: ${call}`, 'ioctl', 'EPERM');
  }
  private link(name: string): FakeLink {
    const l = this.links.get(name);
    if (!l) throw new SystemError('ERR_VXMESH_NETDEV', `no such device ${name}`, 'ioctl', 'ENODEV');
    return l;
  }
  linkExists(name: string) { return this.links.has(name); }
  bridgeCreate(name: string) { this.rec(`bridgeCreate ${name}`); this.links.set(name, { kind: 'bridge', mtu: 1500, up: false, master: null, persistent: false }); }
  bridgeDelete(name: string) { this.rec(`bridgeDelete ${name}`); this.link(name); this.links.delete(name); }
  bridgeAddPort(br: string, ifname: string) { this.rec(`bridgeAddPort ${br} ${ifname}`); this.link(br); this.link(ifname).master = br; }
  bridgeDelPort(br: string, ifname: string) { this.rec(`bridgeDelPort ${br} ${ifname}`); this.link(ifname).master = null; }
  setMtu(name: string, mtu: number) { this.rec(`setMtu ${name} ${mtu}`); this.link(name).mtu = mtu; }
  setUp(name: string, up: boolean) { this.rec(`setUp ${name} ${up}`); this.link(name).up = up; }
  isUp(name: string) { return this.link(name).up; }
  masterOf(name: string) { return this.links.get(name)?.master ?? null; }
  openTap(name: string): OpenedTap {
    this.rec(`openTap ${name}`);
    const existing = this.links.get(name);
    const created = !existing;
    if (!existing) this.links.set(name, { kind: 'tap', mtu: 1500, up: false, master: null, persistent: false });
    const tap = new MemoryTap({ name, reactor: this.reactor, mac: Buffer.from([0x02, 0, 0, 0, this.macByte, this.taps.size + 1]) });
    this.taps.set(name, tap);
    const close = tap.close.bind(tap);
    const links = this.links;
    const calls = this.calls;
    return Object.assign(tap, {
      created,
      close() {
        calls.push(`closeTap ${name}`);
        close();
        if (!links.get(name)?.persistent) links.delete(name);
      },
    });
  }
  openUdp(o: { address: string; port: number; sourcePorts: number }) {
    this.rec(`openUdp ${o.address}:${o.port}`);
    return this.net.attach(o.address, o.port, o.sourcePorts);
  }
}
