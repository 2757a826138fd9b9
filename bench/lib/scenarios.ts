/**
 * The compared data paths. Each scenario builds its path on a fresh two-host testbed and says
 * where the load runs (client namespace → server address) and which processes are "the agent"
 * (for CPU and RSS). Container-to-container everywhere except `underlay` (host to host).
 *
 *   underlay      host A ul0 → host B ul0, no overlay (the ceiling)
 *   kernel-vxlan  container → bridge → Linux vxlan dev → underlay → vxlan dev → bridge → container
 *   vxmesh        container → bridge → TAP → vxmesh agent → UDP → agent → TAP → bridge → container
 *   vxmesh-enc    the same with `encrypted: true`
 *   nebula        container → bridge (gateway) → route → nebula tun (unsafe_routes) → … (L3)
 *   tinc          container → bridge → tinc tap (Mode = switch) → tincd → … (L2)
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Daemon, must, nsRun, nsSpawn, run, sleep, waitFor } from './proc';
import { Testbed } from './testbed';

export type ScenarioId = 'underlay' | 'kernel-vxlan' | 'vxmesh' | 'vxmesh-enc' | 'nebula' | 'tinc';
export const ALL_SCENARIOS: ScenarioId[] = ['underlay', 'kernel-vxlan', 'vxmesh', 'vxmesh-enc', 'nebula', 'tinc'];

export interface RunningPath {
  /** Namespace the load generator runs in. */
  clientNs: string;
  /** Namespace and address of the receiver. */
  serverNs: string;
  serverAddr: string;
  /** Address of the client (for the reverse connectivity check). */
  clientAddr: string;
  /** MTU of the interface the load leaves through. */
  mtu: number;
  /** Agent processes (empty for kernel paths). */
  agents: Daemon[];
  notes: string[];
  stop(): Promise<void>;
}

export interface ScenarioContext {
  tb: Testbed;
  /** Scratch directory for this scenario instance (configs, keys); removed by the caller. */
  dir: string;
  repoRoot: string;
  /** Extra node flags for vxmesh agents (e.g. --perf-basic-prof). */
  nodeArgs: string[];
  /** When set, vxmesh agents run under this wrapper command (e.g. ['strace','-c','-f','-o',file]). */
  agentWrapper?: (host: string) => string[];
}

export interface Scenario {
  id: ScenarioId;
  label: string;
  /** null when runnable here, else why not (shown as n/a). */
  unavailable(ctx: { repoRoot: string }): Promise<string | null>;
  setup(ctx: ScenarioContext): Promise<RunningPath>;
}

const VNI = 42;
const VXLAN_PORT = 4789;
/** Container MTU for the L2 overlays: underlay 1500 − 50 bytes of VXLAN/UDP/IPv4/Ethernet. */
const L2_MTU = 1450;

/** Same-subnet containers a1 (host A) and b1 (host B) on bridge br0. */
async function l2Containers(tb: Testbed, mtu: number): Promise<{ a: string; b: string }> {
  const [ha, hb] = tb.hosts;
  await tb.addBridge(ha, 'br0');
  await tb.addBridge(hb, 'br0');
  const a = await tb.addContainer(ha, 'a1', { bridge: 'br0', cidr: '198.19.0.1/24', mtu });
  const b = await tb.addContainer(hb, 'b1', { bridge: 'br0', cidr: '198.19.0.2/24', mtu });
  return { a: a.ns, b: b.ns };
}

function l2Path(ns: { a: string; b: string }, mtu: number, agents: Daemon[], notes: string[] = []): RunningPath {
  return {
    clientNs: ns.a,
    clientAddr: '198.19.0.1',
    serverNs: ns.b,
    serverAddr: '198.19.0.2',
    mtu,
    agents,
    notes,
    stop: async () => {
      for (const d of agents) await d.stop();
    },
  };
}

/** Waits until `ns` reaches `addr` (one ping per try); false after `timeoutMs`. */
export async function reachable(ns: string, addr: string, timeoutMs: number): Promise<boolean> {
  return waitFor(async () => (await nsRun(ns, 'ping', ['-n', '-c', '1', '-W', '1', addr], { timeoutMs: 3000 })).code === 0, timeoutMs, 200);
}

// ---- underlay ------------------------------------------------------------------------------

const underlay: Scenario = {
  id: 'underlay',
  label: 'underlay direct',
  unavailable: async () => null,
  setup: async ({ tb }) => {
    const [ha, hb] = tb.hosts;
    return {
      clientNs: ha.ns,
      clientAddr: ha.underlayAddr,
      serverNs: hb.ns,
      serverAddr: hb.underlayAddr,
      mtu: 1500,
      agents: [],
      notes: ['host to host over the underlay veth, no overlay'],
      stop: async () => undefined,
    };
  },
};

// ---- kernel VXLAN --------------------------------------------------------------------------

const kernelVxlan: Scenario = {
  id: 'kernel-vxlan',
  label: 'kernel VXLAN',
  unavailable: async () => null,
  setup: async ({ tb }) => {
    const ns = await l2Containers(tb, L2_MTU);
    const [ha, hb] = tb.hosts;
    await tb.addKernelVxlan(ha, { name: 'vx0', vni: VNI, port: VXLAN_PORT, remote: hb.underlayAddr, bridge: 'br0' });
    await tb.addKernelVxlan(hb, { name: 'vx0', vni: VNI, port: VXLAN_PORT, remote: ha.underlayAddr, bridge: 'br0' });
    return l2Path(ns, L2_MTU, []);
  },
};

// ---- vxmesh --------------------------------------------------------------------------------

function vxmeshConfig(node: string, local: string, peer: string, encrypted: boolean, keyFile: string | null): string {
  return [
    ...(keyFile ? ['node:', `  name: ${node}`, `  keyFile: ${JSON.stringify(keyFile)}`] : [`node: ${node}`]),
    'underlay:',
    `  address: ${local}`,
    `  port: ${VXLAN_PORT}`,
    'networks:',
    '  - name: bench',
    `    vni: ${VNI}`,
    '    bridge: br0',
    ...(encrypted ? ['    encrypted: true'] : []),
    'peers:',
    `  - ${peer}`,
    ...(encrypted ? ['gossip:', `  seeds: [${peer}]`, '  profile: test'] : []),
    'api:',
    '  listen: 127.0.0.1:9469',
    'log:',
    '  level: warn',
    '',
  ].join('\n');
}

function vxmeshScenario(id: 'vxmesh' | 'vxmesh-enc', encrypted: boolean): Scenario {
  return {
    id,
    label: encrypted ? 'vxmesh encrypted' : 'vxmesh plaintext',
    unavailable: async ({ repoRoot }) => {
      if (!fs.existsSync(path.join(repoRoot, 'dist/src/cli/main.js'))) return 'vxmesh CLI not built (dist/src/cli/main.js missing)';
      if (!fs.existsSync(path.join(repoRoot, 'dist/src/agent.js'))) return 'vxmesh agent not built yet (dist/src/agent.js missing)';
      if (encrypted && !fs.existsSync(path.join(repoRoot, 'dist/src/crypto'))) return 'encryption not implemented yet (src/crypto missing)';
      return null;
    },
    setup: async (ctx) => {
      const { tb, dir, repoRoot } = ctx;
      const ns = await l2Containers(tb, L2_MTU);
      const agents: Daemon[] = [];
      const path2: RunningPath = l2Path(ns, L2_MTU, agents);
      try {
        for (const [h, other] of [[tb.hosts[0], tb.hosts[1]], [tb.hosts[1], tb.hosts[0]]]) {
          const cfg = path.join(dir, `vxmesh-${h.id}.yaml`);
          const keyFile = encrypted ? path.join(dir, `host-${h.id}.key`) : null;
          fs.writeFileSync(cfg, vxmeshConfig(`host-${h.id}`, h.underlayAddr, other.underlayAddr, encrypted, keyFile));
          const args = [...ctx.nodeArgs, path.join(repoRoot, 'bin/vxmesh'), 'agent', '--config', cfg];
          const wrap = ctx.agentWrapper?.(h.id) ?? [];
          const cmd = wrap.length ? wrap[0] : process.execPath;
          const full = wrap.length ? [...wrap.slice(1), process.execPath, ...args] : args;
          agents.push(nsSpawn(h.ns, `vxmesh-${h.id}`, cmd, full));
        }
        await sleep(300);
        for (const a of agents) if (!a.alive) throw new Error(`${a.name} exited (${a.exitCode}): ${a.output().trim().slice(-600)}`);
        const ok = (await reachable(ns.b, '198.19.0.1', 15_000)) && (await reachable(ns.a, '198.19.0.2', 5_000));
        if (!ok) {
          const logs = agents.map((a) => `${a.name}${a.alive ? '' : ` (exited ${a.exitCode})`}: ${a.output().trim().slice(-400)}`).join(' | ');
          throw new Error(`containers not reachable through vxmesh within 20 s; ${logs}`);
        }
        return path2;
      } catch (e) {
        await path2.stop();
        throw e;
      }
    },
  };
}

// ---- nebula --------------------------------------------------------------------------------

const NEB_PORT = 4242;
const NEB_MTU = 1440; // 1500 − 20 IPv4 − 8 UDP − 16 nebula header − 16 AES-GCM tag

function nebulaConfig(o: { dir: string; id: string; listen: string; lighthouse: boolean; unsafe: { route: string; via: string } }): string {
  const p = (f: string) => JSON.stringify(path.join(o.dir, f));
  return [
    'pki:',
    `  ca: ${p('ca.crt')}`,
    `  cert: ${p(`${o.id}.crt`)}`,
    `  key: ${p(`${o.id}.key`)}`,
    'static_host_map:',
    `  "198.19.255.1": ["198.18.0.1:${NEB_PORT}"]`,
    'lighthouse:',
    `  am_lighthouse: ${o.lighthouse}`,
    '  interval: 60',
    `  hosts: ${o.lighthouse ? '[]' : '["198.19.255.1"]'}`,
    'listen:',
    `  host: ${o.listen}`,
    `  port: ${NEB_PORT}`,
    'punchy:',
    '  punch: false',
    'tun:',
    '  disabled: false',
    '  dev: neb0',
    `  mtu: ${NEB_MTU}`,
    '  unsafe_routes:',
    `    - route: ${o.unsafe.route}`,
    `      via: ${o.unsafe.via}`,
    'logging:',
    '  level: warning',
    'firewall:',
    '  outbound:',
    '    - port: any',
    '      proto: any',
    '      host: any',
    '  inbound:',
    '    - port: any',
    '      proto: any',
    '      host: any',
    '',
  ].join('\n');
}

const nebula: Scenario = {
  id: 'nebula',
  label: 'nebula',
  unavailable: async () => ((await haveAll(['nebula', 'nebula-cert'])) ? null : 'nebula not installed (apt-get install nebula)'),
  setup: async ({ tb, dir }) => {
    const [ha, hb] = tb.hosts;
    await must('nebula-cert', ['ca', '-name', 'vxmesh-bench', '-out-crt', path.join(dir, 'ca.crt'), '-out-key', path.join(dir, 'ca.key')]);
    const hosts = [
      { h: ha, id: 'a', nip: '198.19.255.1', subnet: '198.19.1.0/24', gw: '198.19.1.1', c: '198.19.1.2', peerSubnet: '198.19.2.0/24', peerNip: '198.19.255.2' },
      { h: hb, id: 'b', nip: '198.19.255.2', subnet: '198.19.2.0/24', gw: '198.19.2.1', c: '198.19.2.2', peerSubnet: '198.19.1.0/24', peerNip: '198.19.255.1' },
    ];
    const agents: Daemon[] = [];
    const cns: string[] = [];
    const stop = async () => {
      for (const d of agents) await d.stop();
    };
    try {
      for (const x of hosts) {
        await must('nebula-cert', [
          'sign', '-ca-crt', path.join(dir, 'ca.crt'), '-ca-key', path.join(dir, 'ca.key'), '-name', `host-${x.id}`,
          '-ip', `${x.nip}/24`, '-subnets', x.subnet, '-out-crt', path.join(dir, `${x.id}.crt`), '-out-key', path.join(dir, `${x.id}.key`),
        ]);
        await tb.addBridge(x.h, 'br0', NEB_MTU);
        await must('ip', ['-n', x.h.ns, 'addr', 'add', `${x.gw}/24`, 'dev', 'br0']);
        const c = await tb.addContainer(x.h, `${x.id}1`, { bridge: 'br0', cidr: `${x.c}/24`, mtu: NEB_MTU, gateway: x.gw });
        cns.push(c.ns);
        const cfg = path.join(dir, `nebula-${x.id}.yml`);
        fs.writeFileSync(cfg, nebulaConfig({ dir, id: x.id, listen: x.h.underlayAddr, lighthouse: x.id === 'a', unsafe: { route: x.peerSubnet, via: x.peerNip } }));
        agents.push(nsSpawn(x.h.ns, `nebula-${x.id}`, 'nebula', ['-config', cfg]));
        await sleep(200);
      }
      // B handshakes with the lighthouse A first; then traffic flows both ways.
      const ok = (await reachable(cns[1], '198.19.1.2', 20_000)) && (await reachable(cns[0], '198.19.2.2', 5_000));
      if (!ok) throw new Error(`containers not reachable through nebula; ${agents.map((a) => `${a.name}: ${a.output().trim().slice(-400)}`).join(' | ')}`);
      return { clientNs: cns[0], clientAddr: '198.19.1.2', serverNs: cns[1], serverAddr: '198.19.2.2', mtu: NEB_MTU, agents, notes: ['routed (L3) via unsafe_routes, AES-256-GCM'], stop };
    } catch (e) {
      await stop();
      throw e;
    }
  },
};

// ---- tinc ----------------------------------------------------------------------------------

const TINC_PORT = 655;

const tinc: Scenario = {
  id: 'tinc',
  label: 'tinc (switch)',
  unavailable: async () => ((await haveAll(['tincd'])) ? null : 'tinc not installed (apt-get install tinc)'),
  setup: async ({ tb, dir }) => {
    const ns = await l2Containers(tb, L2_MTU);
    const agents: Daemon[] = [];
    const p = l2Path(ns, L2_MTU, agents, ['Mode = switch, tinc 1.0 defaults (Blowfish-CBC + HMAC-SHA1)']);
    try {
      const ids = ['a', 'b'];
      for (const [i, h] of tb.hosts.entries()) {
        const d = path.join(dir, `tinc-${ids[i]}`);
        fs.mkdirSync(path.join(d, 'hosts'), { recursive: true });
        fs.writeFileSync(
          path.join(d, 'tinc.conf'),
          [
            `Name = ${ids[i]}`, 'Mode = switch', 'DeviceType = tap', 'Device = /dev/net/tun', 'Interface = tnc0',
            'AddressFamily = ipv4', `BindToAddress = ${h.underlayAddr}`, `Port = ${TINC_PORT}`, `ConnectTo = ${ids[1 - i]}`, '',
          ].join('\n'),
        );
        fs.writeFileSync(path.join(d, 'hosts', ids[i]), `Address = ${h.underlayAddr}\nPort = ${TINC_PORT}\n`);
        fs.writeFileSync(path.join(d, 'tinc-up'), `#!/bin/sh\nip link set "$INTERFACE" mtu ${L2_MTU}\nip link set "$INTERFACE" master br0\nip link set "$INTERFACE" up\n`, { mode: 0o755 });
        await must('tincd', ['-c', d, '-K', '2048'], { timeoutMs: 60_000 });
      }
      for (const [i] of tb.hosts.entries()) {
        const other = ids[1 - i];
        fs.copyFileSync(path.join(dir, `tinc-${other}`, 'hosts', other), path.join(dir, `tinc-${ids[i]}`, 'hosts', other));
      }
      for (const [i, h] of tb.hosts.entries()) {
        const d = path.join(dir, `tinc-${ids[i]}`);
        agents.push(nsSpawn(h.ns, `tincd-${ids[i]}`, 'tincd', ['-c', d, '-D', '-d', '0', `--pidfile=${path.join(d, 'pid')}`, `--logfile=${path.join(d, 'log')}`]));
      }
      const ok = (await reachable(ns.a, '198.19.0.2', 20_000)) && (await reachable(ns.b, '198.19.0.1', 5_000));
      if (!ok) throw new Error(`containers not reachable through tinc; ${agents.map((a) => `${a.name}: ${a.output().trim().slice(-400)}`).join(' | ')}`);
      return p;
    } catch (e) {
      await p.stop();
      throw e;
    }
  },
};

async function haveAll(cmds: string[]): Promise<boolean> {
  for (const c of cmds) {
    const r = await run('sh', ['-c', `command -v ${c}`], { timeoutMs: 5000 });
    if (r.code !== 0) return false;
  }
  return true;
}

export const SCENARIOS: Record<ScenarioId, Scenario> = {
  underlay,
  'kernel-vxlan': kernelVxlan,
  vxmesh: vxmeshScenario('vxmesh', false),
  'vxmesh-enc': vxmeshScenario('vxmesh-enc', true),
  nebula,
  tinc,
};
