/**
 * A small in-memory lab for the data-path defect tests: hosts 198.18.0.1… on one memory underlay,
 * each with networks blue (VNI 42) and red (VNI 43), static peers = every other host, a fake clock
 * and deterministic readiness; frame builders and the per-network counter identity.
 */
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/clock';
import type { Endpoint, FdbConfig, NetworkConfig } from '../../src/config/types';
import type { NetworkCounters } from '../../src/dataplane/counters';
import { Datapath, type DatapathOptions } from '../../src/dataplane/datapath';
import { ETHERTYPE_IPV4, writeEthHeader } from '../../src/dataplane/ethernet';
import { MemoryReactor, MemoryTap, MemoryUdp, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { writeVxlanHeader } from '../../src/dataplane/vxlan';

export const PORT = 4789;
export const ADDRS = ['198.18.0.1', '198.18.0.2', '198.18.0.3', '198.18.0.4'];
export const BLUE = 42;
export const RED = 43;
export const ep = (address: string, port = PORT): Endpoint => ({ address, port, family: 4 });

export function netCfg(name: string, vni: number, encrypted = false, mtu = 1450): NetworkConfig {
  return { name, vni, bridge: `br-${name}`, tap: `vx-${name}`, mtu, encrypted };
}

export interface LabHost {
  addr: string;
  udp: MemoryUdp;
  dp: Datapath;
  taps: Map<number, MemoryTap>;
  tap(vni: number): MemoryTap;
  counters(vni: number): NetworkCounters;
}

export interface LabOptions {
  hosts?: number;
  /** Static peers of every host (default: all hosts). */
  peers?: (h: number) => Endpoint[];
  fdb?: FdbConfig;
  networks?: NetworkConfig[];
  extra?: Partial<DatapathOptions>;
}

export function lab(opts: LabOptions = {}) {
  const clock = new FakeClock(0);
  const reactor = new MemoryReactor();
  const net = new MemoryUdpNetwork({ reactor, clock });
  net.capture = [];
  const n = opts.hosts ?? 3;
  const hosts: LabHost[] = [];
  for (let h = 0; h < n; h++) {
    const addr = ADDRS[h];
    const udp = net.attach(addr, PORT, 1);
    const taps = new Map<number, MemoryTap>();
    const cfgs = opts.networks ?? [netCfg('blue', BLUE), netCfg('red', RED)];
    const networks = cfgs.map((config) => {
      const tap = new MemoryTap({ name: config.tap, mac: Buffer.from([0x02, 0xee, 0, 0, h, config.vni & 0xff]), reactor });
      taps.set(config.vni, tap);
      return { config, tap };
    });
    const dp = new Datapath({
      networks, udp, clock,
      underlay: { family: 4, mtu: 1500, port: PORT, address: addr },
      peers: opts.peers ? opts.peers(h) : ADDRS.slice(0, n).map((a) => ep(a)),
      fdb: opts.fdb ?? { ageingSeconds: 300, maxEntries: 16384 },
      ...opts.extra,
    });
    dp.start();
    hosts.push({
      addr, udp, dp, taps,
      tap: (vni) => taps.get(vni)!,
      counters: (vni) => dp.network(vni)!.counters,
    });
  }
  return { clock, reactor, net, hosts, run: () => reactor.run() };
}

/** Container MACs: host h, index i. */
export const cmac = (h: number, i: number) => 0x020000000000 + h * 256 + i;

/** An IPv4/UDP frame `dst` ← `src` with `payload` bytes. */
export function frame(dst: number, src: number, payload = 16): Buffer {
  const f = Buffer.alloc(14 + 28 + payload);
  writeEthHeader(f, 0, dst, src, ETHERTYPE_IPV4);
  f[14] = 0x45;
  f.writeUInt16BE(28 + payload, 16);
  f[22] = 64;
  f[23] = 17;
  f.writeUInt32BE(0xc6130001, 26);
  f.writeUInt32BE(0xc6130002, 30);
  f.writeUInt16BE(1000, 34);
  f.writeUInt16BE(2000, 36);
  f.writeUInt16BE(8 + payload, 38);
  for (let i = 0; i < payload; i++) f[42 + i] = i & 0xff;
  return f;
}

/** A VXLAN datagram carrying `inner` for `vni`. */
export function vx(vni: number, inner: Buffer): Buffer {
  const d = Buffer.alloc(8 + inner.length);
  writeVxlanHeader(d, 0, vni);
  inner.copy(d, 8);
  return d;
}

/** rxDelivered + Σ rxDrops = rxPackets. */
export function rxIdentity(c: NetworkCounters): void {
  assert.equal(c.rxDelivered + c.totalRxDrops(), c.rxPackets, 'rxDelivered + Σ rxDrops = rxPackets');
}
