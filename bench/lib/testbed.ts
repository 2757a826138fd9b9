/**
 * Two-host netns testbed for the benchmark (prototype until `src/lab/netns.ts` is used).
 *
 *   [container a1] --veth-- (br) [host A] ul0 ==veth, MTU 1500== ul0 [host B] (br) --veth-- [container b1]
 *       198.19.x.x                 198.18.0.1                   198.18.0.2                198.19.x.x
 *
 * Every name is unique to the run (`vxb<pid%10000><rand>-…`); interface names live inside those
 * namespaces, so they can be short and fixed. Everything is registered for cleanup on creation.
 * Only 198.18.0.0/15 addresses are used.
 */

import { randomBytes } from 'node:crypto';
import { deleteNetns, onCleanup } from './cleanup';
import { must, nsMust } from './proc';

export interface Host {
  /** Logical name: 'a' or 'b'. */
  id: string;
  ns: string;
  underlayIf: string;
  underlayAddr: string;
}

export interface Container {
  id: string;
  ns: string;
  host: Host;
  ifname: string;
  addr: string;
}

export function runPrefix(): string {
  return `vxb${process.pid % 10000}${randomBytes(2).toString('hex')}`;
}

export class Testbed {
  readonly prefix: string;
  readonly hosts: Host[] = [];
  readonly containers: Container[] = [];
  private namespaces: string[] = [];
  private undo: Array<() => void> = [];

  private constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** Two hosts joined by a veth underlay (MTU `underlayMtu`), addresses 198.18.0.1 and .2/24. */
  static async create(opts: { underlayMtu?: number; prefix?: string } = {}): Promise<Testbed> {
    const tb = new Testbed(opts.prefix ?? runPrefix());
    try {
      const mtu = opts.underlayMtu ?? 1500;
      const a = await tb.addNetns(`${tb.prefix}-a`);
      const b = await tb.addNetns(`${tb.prefix}-b`);
      await must('ip', ['-n', a, 'link', 'add', 'ul0', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'ul0', 'netns', b, 'mtu', String(mtu)]);
      const hosts: Array<[string, string, string]> = [['a', a, '198.18.0.1'], ['b', b, '198.18.0.2']];
      for (const [id, ns, addr] of hosts) {
        await must('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'ul0']);
        await must('ip', ['-n', ns, 'link', 'set', 'ul0', 'up']);
        await nsMust(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
        tb.hosts.push({ id, ns, underlayIf: 'ul0', underlayAddr: addr });
      }
      return tb;
    } catch (e) {
      tb.destroy();
      throw e;
    }
  }

  host(id: string): Host {
    const h = this.hosts.find((x) => x.id === id);
    if (!h) throw new Error(`no host ${id}`);
    return h;
  }

  private async addNetns(name: string): Promise<string> {
    await must('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    this.undo.push(onCleanup(`netns ${name}`, () => deleteNetns(name)));
    await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** Creates a Linux bridge in the host (up, MTU set when given). */
  async addBridge(host: Host, name: string, mtu?: number): Promise<void> {
    await must('ip', ['-n', host.ns, 'link', 'add', name, 'type', 'bridge']);
    if (mtu) await must('ip', ['-n', host.ns, 'link', 'set', name, 'mtu', String(mtu)]);
    await must('ip', ['-n', host.ns, 'link', 'set', name, 'up']);
  }

  /**
   * A container: its own netns with `eth0` (address `cidr`, MTU `mtu`), the host end enslaved to
   * `bridge`. `gateway`, when given, becomes the default route (routed overlays such as nebula).
   */
  async addContainer(host: Host, id: string, opts: { bridge: string; cidr: string; mtu: number; gateway?: string }): Promise<Container> {
    const ns = await this.addNetns(`${this.prefix}-${id}`);
    const hostIf = `c-${id}`.slice(0, 15);
    await must('ip', ['-n', host.ns, 'link', 'add', hostIf, 'mtu', String(opts.mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns, 'mtu', String(opts.mtu)]);
    await must('ip', ['-n', host.ns, 'link', 'set', hostIf, 'master', opts.bridge]);
    await must('ip', ['-n', host.ns, 'link', 'set', hostIf, 'up']);
    await must('ip', ['-n', ns, 'addr', 'add', opts.cidr, 'dev', 'eth0']);
    await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    if (opts.gateway) await must('ip', ['-n', ns, 'route', 'add', 'default', 'via', opts.gateway]);
    const c: Container = { id, ns, host, ifname: 'eth0', addr: opts.cidr.split('/')[0] };
    this.containers.push(c);
    return c;
  }

  /** Linux kernel VXLAN device on `bridge` with a single static remote (unicast, no multicast). */
  async addKernelVxlan(host: Host, opts: { name: string; vni: number; port: number; remote: string; bridge: string }): Promise<void> {
    await must('ip', [
      '-n', host.ns, 'link', 'add', opts.name, 'type', 'vxlan', 'id', String(opts.vni),
      'dstport', String(opts.port), 'local', host.underlayAddr, 'remote', opts.remote, 'dev', host.underlayIf,
    ]);
    await must('ip', ['-n', host.ns, 'link', 'set', opts.name, 'master', opts.bridge]);
    await must('ip', ['-n', host.ns, 'link', 'set', opts.name, 'up']);
  }

  /** Deletes every namespace (links inside go with them). Idempotent and synchronous. */
  destroy(): void {
    while (this.undo.length) this.undo.pop()!();
    this.namespaces = [];
  }
}
