/**
 * The compared data paths. Each scenario builds its path on a fresh two-host testbed and says
 * where the load runs (client namespace → server address) and which processes are "the agent"
 * (for CPU and RSS). Container-to-container everywhere except `underlay` (host to host).
 *
 *   underlay      host A ul0 → host B ul0, no overlay (the ceiling)
 *   kernel-vxlan  container → bridge → Linux vxlan dev → underlay → vxlan dev → bridge → container
 *   vxmesh        container → bridge → TAP → vxmesh agent → UDP → agent → TAP → bridge → container
 *   vxmesh-enc    the same with `encrypted: true`
 *   vxmesh-thr    vxmesh plaintext with `underlay.tapThreads: true` (TAP reads on an addon thread)
 *   vxmesh-ab     vxmesh plaintext with the --ab-env variables in the agents' environment (only with --ab-env)
 *   nebula        container → bridge (gateway) → route → nebula tun (unsafe_routes) → … (L3)
 *   tinc          container → bridge → tinc tap (Mode = switch) → tincd → … (L2)
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lab, LabProcess } from '../../lab/netns';
import { ENCRYPTION_OVERHEAD } from '../../src/config/load';
import { agentConfig, LabAgent, startAgent } from '../../lab/vxmesh';
import { haveCommand, must, sleep } from './proc';

export type ScenarioId = 'underlay' | 'kernel-vxlan' | 'vxmesh' | 'vxmesh-enc' | 'vxmesh-thr' | 'vxmesh-ab' | 'nebula' | 'tinc';
export const ALL_SCENARIOS: ScenarioId[] = ['underlay', 'kernel-vxlan', 'vxmesh', 'vxmesh-enc', 'vxmesh-thr', 'vxmesh-ab', 'nebula', 'tinc'];

/** Thrown by a scenario's setup when the path cannot be measured here (reported as n/a, not retried). */
export class NotAvailable extends Error {}

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
  agents: LabProcess[];
  notes: string[];
  /** Agent-reported counters (vxmesh: GET /v1/status of each agent), kept in the JSON for diagnosis. */
  counters?: () => Promise<Record<string, unknown>>;
}

export interface ScenarioContext {
  /** A fresh two-host lab (hosts h1 198.18.0.1 and h2 198.18.0.2, underlay MTU 1500). */
  lab: Lab;
  /** Scratch directory for this scenario instance (configs, keys): the lab's, removed with it. */
  dir: string;
  repoRoot: string;
  /** NODE_OPTIONS for the vxmesh agents (e.g. --perf-basic-prof); empty for none. */
  nodeOptions: string;
  /** --quick: shorter waits before declaring a path n/a. */
  quick: boolean;
  /** --ab-env K=V,…: environment of the vxmesh-ab agents (empty: vxmesh-ab is not run). */
  abEnv: Array<[string, string]>;
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

/** Same-subnet containers a1 (host h1) and b1 (host h2) on bridge br0 of each host. */
async function l2Containers(lab: Lab, mtu: number): Promise<{ a: string; b: string }> {
  const [ha, hb] = lab.hosts;
  await lab.addBridge(ha, 'br0');
  await lab.addBridge(hb, 'br0');
  const a = await lab.addContainer(ha, { name: 'a1', bridge: 'br0', address: '198.19.0.1/24', mtu });
  const b = await lab.addContainer(hb, { name: 'b1', bridge: 'br0', address: '198.19.0.2/24', mtu });
  return { a: a.ns, b: b.ns };
}

function l2Path(ns: { a: string; b: string }, mtu: number, agents: LabProcess[], notes: string[] = []): RunningPath {
  return { clientNs: ns.a, clientAddr: '198.19.0.1', serverNs: ns.b, serverAddr: '198.19.0.2', mtu, agents, notes };
}

/** Waits until `ns` reaches `addr` (one ping per try); false after `timeoutMs`. */
export async function reachable(lab: Lab, ns: string, addr: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await lab.ping(ns, addr, { count: 1, waitS: 1 });
    if (r.received > 0) return true;
    if (Date.now() >= end) return false;
    await sleep(200);
  }
}

// ---- underlay ------------------------------------------------------------------------------

const underlay: Scenario = {
  id: 'underlay',
  label: 'underlay direct',
  unavailable: async () => null,
  setup: async ({ lab }) => {
    const [ha, hb] = lab.hosts;
    return {
      clientNs: ha.ns,
      clientAddr: ha.address,
      serverNs: hb.ns,
      serverAddr: hb.address,
      mtu: lab.underlayMtu,
      agents: [],
      notes: ['host to host over the underlay (veth → switch bridge → veth), no overlay'],
    };
  },
};

// ---- kernel VXLAN --------------------------------------------------------------------------

const kernelVxlan: Scenario = {
  id: 'kernel-vxlan',
  label: 'kernel VXLAN',
  unavailable: async () => null,
  setup: async ({ lab }) => {
    const ns = await l2Containers(lab, L2_MTU);
    const [ha, hb] = lab.hosts;
    await lab.addKernelVxlan(ha, { name: 'vx0', vni: VNI, port: VXLAN_PORT, peers: [hb.address], bridge: 'br0', mtu: L2_MTU });
    await lab.addKernelVxlan(hb, { name: 'vx0', vni: VNI, port: VXLAN_PORT, peers: [ha.address], bridge: 'br0', mtu: L2_MTU });
    if (!(await reachable(lab, ns.a, '198.19.0.2', 5000))) throw new Error('containers not reachable through kernel VXLAN');
    return l2Path(ns, L2_MTU, []);
  },
};

// ---- vxmesh --------------------------------------------------------------------------------

function vxmeshScenario(id: 'vxmesh' | 'vxmesh-enc' | 'vxmesh-thr' | 'vxmesh-ab', encrypted: boolean, tapThreads = false): Scenario {
  return {
    id,
    label: id === 'vxmesh-ab' ? 'vxmesh plaintext, --ab-env' : encrypted ? 'vxmesh encrypted' : tapThreads ? 'vxmesh plaintext, TAP threads' : 'vxmesh plaintext',
    unavailable: async ({ repoRoot }) => {
      if (!fs.existsSync(path.join(repoRoot, 'dist/src/cli/main.js'))) return 'vxmesh CLI not built (dist/src/cli/main.js missing)';
      const addon = path.join(repoRoot, 'build/Release/vxmesh.node');
      // A rebuild in progress (build/ present, addon not yet linked): wait for it, bounded.
      for (let i = 0; i < 60 && !fs.existsSync(addon) && fs.existsSync(path.join(repoRoot, 'build')); i++) await sleep(1000);
      if (!fs.existsSync(addon)) return 'vxmesh addon not built (npx node-gyp rebuild)';
      return null;
    },
    setup: async (ctx) => {
      const { lab, dir } = ctx;
      // Containers use the network's MTU, as an operator would: encrypted networks carry 32 bytes more.
      const mtu = encrypted ? L2_MTU - ENCRYPTION_OVERHEAD : L2_MTU;
      const ns = await l2Containers(lab, mtu);
      const pending: Array<Promise<LabAgent>> = [];
      // Encrypted: one cluster key (gossip keyring, also the handshake PSK) shared by both hosts.
      let clusterKeyFile: string | null = null;
      if (encrypted) {
        const key = (await must(process.execPath, [path.join(ctx.repoRoot, 'bin/vxmesh'), 'keygen', 'cluster'], { timeoutMs: 30_000 })).trim();
        clusterKeyFile = lab.writeFile('cluster.keys', `${key}\n`);
      }
      // NODE_OPTIONS only for the agents' spawns (startAgent spawns synchronously, before awaiting).
      const saved = process.env.NODE_OPTIONS;
      if (ctx.nodeOptions) process.env.NODE_OPTIONS = `${saved ?? ''} ${ctx.nodeOptions}`.trim();
      // vxmesh-ab: the same agents with --ab-env in their environment (A/B of an environment switch)
      const expEnv = id === 'vxmesh-ab' ? ctx.abEnv : [];
      for (const [k, v] of expEnv) process.env[k] = v;
      try {
        for (const h of lab.hosts) {
          const config = agentConfig(lab, h, { networks: [{ name: 'bench', vni: VNI, bridge: 'br0' }], port: VXLAN_PORT, logLevel: 'warn' });
          if (tapThreads) (config.underlay as Record<string, unknown>).tapThreads = true;
          if (encrypted) {
            (config.networks as Array<Record<string, unknown>>)[0].encrypted = true;
            config.node = { name: h.name, keyFile: path.join(dir, `${h.name}.key`) };
            const other = lab.hosts.find((x) => x !== h)!;
            config.gossip = { seeds: [other.address], profile: 'test', keyFile: clusterKeyFile };
          }
          pending.push(startAgent(lab, h, config, { readyTimeoutMs: 20_000 }));
        }
      } finally {
        for (const [k] of expEnv) delete process.env[k];
        if (saved === undefined) delete process.env.NODE_OPTIONS;
        else process.env.NODE_OPTIONS = saved;
      }
      // Both agents start in parallel; wait for both to settle so a failure leaves no orphan wait.
      const settled = await Promise.allSettled(pending);
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const handles = settled.map((r) => (r as PromiseFulfilledResult<LabAgent>).value);
      const agents = handles.map((a) => a.proc);
      const ok = (await reachable(lab, ns.b, '198.19.0.1', encrypted ? (ctx.quick ? 5_000 : 8_000) : 15_000)) && (await reachable(lab, ns.a, '198.19.0.2', 5_000));
      if (!ok && encrypted) {
        // Fail-closed data path without a cipher counts `no_session`: encryption is not wired in.
        const drops: string[] = [];
        for (const a of handles) {
          try {
            const st = await a.status();
            for (const n of st.networks) {
              for (const [k, v] of Object.entries({ ...(n.counters?.txDrops ?? {}), ...(n.counters?.rxDrops ?? {}) })) if (v) drops.push(`${a.host.name} ${k}=${v}`);
            }
          } catch {
            /* status unavailable */
          }
        }
        if (drops.some((d) => /no_session|plaintext_on_encrypted/.test(d))) {
          throw new NotAvailable(`encrypted network does not pass traffic in this build (agents fail closed: ${drops.join(', ')})`);
        }
      }
      if (!ok) {
        const logs = agents.map((a) => `${a.name}${a.running() ? '' : ' (exited)'}: ${a.output().trim().slice(-400)}`).join(' | ');
        throw new Error(`containers not reachable through vxmesh within 20 s; ${logs}`);
      }
      const path2 = l2Path(ns, mtu, agents, encrypted ? [`encrypted: true, container MTU ${mtu} (network MTU: underlay − 50 − ${ENCRYPTION_OVERHEAD})`] : []);
      path2.counters = async () => {
        const out: Record<string, unknown> = {};
        for (const a of handles) {
          try {
            const st = await a.status();
            out[a.host.name] = { counters: st.counters, networks: st.networks.map((n) => ({ name: n.name, counters: n.counters })), peers: st.peers,
              ...(process.env.VXMESH_BENCH_AGENT_LOG === '1' ? { log: a.proc.output().slice(-4000) } : {}) };
          } catch (e) {
            out[a.host.name] = { error: (e as Error).message };
          }
        }
        return out;
      };
      return path2;
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
  setup: async ({ lab, dir }) => {
    const [ha, hb] = lab.hosts;
    await must('nebula-cert', ['ca', '-name', 'vxmesh-bench', '-out-crt', path.join(dir, 'ca.crt'), '-out-key', path.join(dir, 'ca.key')]);
    const hosts = [
      { h: ha, id: 'a', nip: '198.19.255.1', subnet: '198.19.1.0/24', gw: '198.19.1.1', c: '198.19.1.2', peerSubnet: '198.19.2.0/24', peerNip: '198.19.255.2' },
      { h: hb, id: 'b', nip: '198.19.255.2', subnet: '198.19.2.0/24', gw: '198.19.2.1', c: '198.19.2.2', peerSubnet: '198.19.1.0/24', peerNip: '198.19.255.1' },
    ];
    const agents: LabProcess[] = [];
    const cns: string[] = [];
    for (const x of hosts) {
      await must('nebula-cert', [
        'sign', '-ca-crt', path.join(dir, 'ca.crt'), '-ca-key', path.join(dir, 'ca.key'), '-name', `host-${x.id}`,
        '-ip', `${x.nip}/24`, '-subnets', x.subnet, '-out-crt', path.join(dir, `${x.id}.crt`), '-out-key', path.join(dir, `${x.id}.key`),
      ]);
      await lab.addBridge(x.h, 'br0');
      const c = await lab.addContainer(x.h, { name: `${x.id}1`, bridge: 'br0', address: `${x.c}/24`, mtu: NEB_MTU });
      await lab.ip(x.h.ns, 'addr', 'add', `${x.gw}/24`, 'dev', 'br0');
      await lab.ip(c.ns, 'route', 'add', 'default', 'via', x.gw);
      await lab.exec(x.h.ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      cns.push(c.ns);
      const cfg = lab.writeFile(`nebula-${x.id}.yml`, nebulaConfig({ dir, id: x.id, listen: x.h.address, lighthouse: x.id === 'a', unsafe: { route: x.peerSubnet, via: x.peerNip } }));
      agents.push(lab.spawn(x.h.ns, 'nebula', ['-config', cfg], { name: `nebula-${x.id}` }));
      await sleep(200);
    }
    // B handshakes with the lighthouse A first; then traffic flows both ways.
    const ok = (await reachable(lab, cns[1], '198.19.1.2', 20_000)) && (await reachable(lab, cns[0], '198.19.2.2', 5_000));
    if (!ok) throw new Error(`containers not reachable through nebula; ${agents.map((a) => `${a.name}: ${a.output().trim().slice(-400)}`).join(' | ')}`);
    return {
      clientNs: cns[0],
      clientAddr: '198.19.1.2',
      serverNs: cns[1],
      serverAddr: '198.19.2.2',
      mtu: NEB_MTU,
      agents,
      notes: [`routed (L3): container subnets via the nebula tun (unsafe_routes), MTU ${NEB_MTU}, AES-256-GCM`],
    };
  },
};

// ---- tinc ----------------------------------------------------------------------------------

const TINC_PORT = 655;

const tinc: Scenario = {
  id: 'tinc',
  label: 'tinc (switch)',
  unavailable: async () => ((await haveAll(['tincd'])) ? null : 'tinc not installed (apt-get install tinc)'),
  setup: async ({ lab, dir }) => {
    const ns = await l2Containers(lab, L2_MTU);
    const agents: LabProcess[] = [];
    const names = lab.hosts.map((h) => h.name);
    for (const [i, h] of lab.hosts.entries()) {
      const d = path.join(dir, `tinc-${names[i]}`);
      fs.mkdirSync(path.join(d, 'hosts'), { recursive: true });
      fs.writeFileSync(
        path.join(d, 'tinc.conf'),
        [
          `Name = ${names[i]}`, 'Mode = switch', 'DeviceType = tap', 'Device = /dev/net/tun', 'Interface = tnc0',
          'AddressFamily = ipv4', `BindToAddress = ${h.address}`, `Port = ${TINC_PORT}`, `ConnectTo = ${names[1 - i]}`, '',
        ].join('\n'),
      );
      fs.writeFileSync(path.join(d, 'hosts', names[i]), `Address = ${h.address}\nPort = ${TINC_PORT}\n`);
      fs.writeFileSync(path.join(d, 'tinc-up'), `#!/bin/sh\nip link set "$INTERFACE" mtu ${L2_MTU}\nip link set "$INTERFACE" master br0\nip link set "$INTERFACE" up\n`, { mode: 0o755 });
      await must('tincd', ['-c', d, '-K', '2048'], { timeoutMs: 60_000 });
    }
    for (const [i] of lab.hosts.entries()) {
      const other = names[1 - i];
      fs.copyFileSync(path.join(dir, `tinc-${other}`, 'hosts', other), path.join(dir, `tinc-${names[i]}`, 'hosts', other));
    }
    for (const [i, h] of lab.hosts.entries()) {
      const d = path.join(dir, `tinc-${names[i]}`);
      agents.push(lab.spawn(h.ns, 'tincd', ['-c', d, '-D', '-d', '0', `--pidfile=${path.join(d, 'pid')}`, `--logfile=${path.join(d, 'log')}`], { name: `tincd-${names[i]}` }));
    }
    const ok = (await reachable(lab, ns.a, '198.19.0.2', 20_000)) && (await reachable(lab, ns.b, '198.19.0.1', 5_000));
    if (!ok) throw new Error(`containers not reachable through tinc; ${agents.map((a) => `${a.name}: ${a.output().trim().slice(-400)}`).join(' | ')}`);
    return l2Path(ns, L2_MTU, agents, [`Mode = switch, tap MTU ${L2_MTU}, tinc 1.0 defaults (Blowfish-CBC + HMAC-SHA1, ClampMSS)`]);
  },
};

async function haveAll(cmds: string[]): Promise<boolean> {
  for (const c of cmds) if (!(await haveCommand(c))) return false;
  return true;
}

export const SCENARIOS: Record<ScenarioId, Scenario> = {
  underlay,
  'kernel-vxlan': kernelVxlan,
  vxmesh: vxmeshScenario('vxmesh', false),
  'vxmesh-enc': vxmeshScenario('vxmesh-enc', true),
  'vxmesh-thr': vxmeshScenario('vxmesh-thr', false, true),
  'vxmesh-ab': vxmeshScenario('vxmesh-ab', false),
  nebula,
  tinc,
};
