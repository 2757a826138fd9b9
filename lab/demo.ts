/**
 * `vxmesh demo` (and `npm start`): three hosts in network namespaces on one underlay, two
 * containers per host on one overlay network (VNI 42), one vxmesh agent per host with static
 * peers; then a UDP echo (a ping carried by node: lab/echo.ts) and a 10 MB TCP transfer (sha256
 * checked, lab/xfer.ts) across hosts, the agents' counters, and a clean teardown — also on Ctrl-C
 * (the Lab destroys itself on SIGINT/SIGTERM). Needs root and iproute2 only (tcpdump, when
 * installed, shows the echo on the underlay); no ping, ethtool, socat or iperf3.
 *
 * Steps: check root → build lab → start agents → echo → TCP transfer → counters → teardown.
 */

import { stringify } from 'yaml';
import { haveTool, Lab, LabContainer, labSkipReason } from './netns';
import { agentConfig, LabAgent, startAgent } from './vxmesh';

export interface DemoOptions {
  /** Where lines go (default stdout). */
  write?: (line: string) => void;
  /** Bytes of the TCP transfer (default 10 MB). */
  transferBytes?: number;
}

const VNI = 42;
const ECHO_PORT = 40007; // a port tcpdump has no decoder for: shown as "UDP, length 12"

/** Runs the demo; resolves to the process exit code (0 ok, 1 failure). */
export async function runDemo(opts: DemoOptions = {}): Promise<number> {
  const out = opts.write ?? ((l: string) => process.stdout.write(l + '\n'));
  const step = (s: string) => out(`\n== ${s}`);
  const skip = labSkipReason();
  if (skip) {
    out(`vxmesh demo: ${skip} (it builds network namespaces and runs agents with CAP_NET_ADMIN)`);
    return 1;
  }
  const bytes = opts.transferBytes ?? 10_000_000;
  let lab: Lab | null = null;
  const agents: LabAgent[] = [];
  try {
    step('Building the lab: 3 hosts on one underlay switch, a bridge and 2 containers per host');
    lab = await Lab.create({ hosts: 3 });
    out(`namespaces: ${lab.prefix}-*   underlay 198.18.0.0/24 (MTU ${lab.underlayMtu})   overlay 198.19.0.0/24 (MTU ${lab.overlayMtu})`);
    const containers: LabContainer[][] = [];
    for (const h of lab.hosts) {
      await lab.addBridge(h, 'br0');
      const row: LabContainer[] = [];
      for (let j = 1; j <= 2; j++) {
        row.push(await lab.addContainer(h, { bridge: 'br0', name: `h${h.index}c${j}`, address: `198.19.0.${10 * h.index + j}/24` }));
      }
      containers.push(row);
      out(`  host ${h.name}  underlay ${h.address.padEnd(12)} bridge br0  containers ${row.map((c) => `${c.name}=${c.address}`).join('  ')}`);
    }

    step('Starting one vxmesh agent per host (static peers: the other two hosts)');
    for (const h of lab.hosts) {
      const cfg = agentConfig(lab, h, { networks: [{ name: 'blue', vni: VNI, bridge: 'br0' }] });
      if (h.index === 1) {
        out(`config of ${h.name}:`);
        for (const l of stringify(cfg).trimEnd().split('\n')) out(`    ${l}`);
      }
      const a = await startAgent(lab, h, cfg);
      agents.push(a);
      out(`  ${h.name}: agent pid ${a.proc.pid} ready`);
    }

    const [a, b, c] = [containers[0][0], containers[1][0], containers[2][1]];
    step(`UDP echo ${a.name} (${a.address}, on h1) -> ${b.name} (${b.address}, on h2), port ${ECHO_PORT}`);
    const cap = haveTool('tcpdump') ? await lab.capture(lab.hosts[0].ns, 'ul0', 'udp dst port 4789', { name: 'demo' }) : null;
    const p = await lab.udpEcho(a, b, { count: 5, intervalMs: 200, port: ECHO_PORT });
    out(`  ${p.transmitted} datagrams sent, ${p.received} echoed back` + (p.rtt ? `, rtt min/avg/max ${p.rtt.min.toFixed(3)}/${p.rtt.avg.toFixed(3)}/${p.rtt.max.toFixed(3)} ms` : ''));
    if (p.received === 0) throw new Error(`echo failed:\n${p.output}`);
    if (cap) {
      const pkts = (await lab.readPcap(await cap.stop())).filter((l) => new RegExp(`\\.${ECHO_PORT}[: ]`).test(l.split(' | ')[1] ?? ''));
      out('  on the underlay of h1 (tcpdump), an echo request and its reply as VXLAN:');
      for (const pkt of pkts.slice(0, 2)) {
        const [outer, inner] = pkt.replace(/^\S+ /, '').split(' | ');
        out(`    ${outer}`);
        if (inner) out(`      ${inner}`);
      }
    }

    step(`TCP transfer of ${(bytes / 1e6).toFixed(0)} MB ${a.name} (h1) -> ${c.name} (h3, ${c.address})`);
    const t0 = process.hrtime.bigint();
    const x = await lab.tcpTransfer(a, c, { bytes, timeoutMs: 120_000 });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    out(`  sent     ${x.bytes} bytes  sha256 ${x.sentSha256}`);
    out(`  received ${x.receivedBytes} bytes  sha256 ${x.receivedSha256}`);
    const ok = x.receivedBytes === x.bytes && x.receivedSha256 === x.sentSha256;
    out(`  ${ok ? 'OK: identical' : 'MISMATCH'} (${secs.toFixed(2)} s including process start-up)`);
    if (!ok) throw new Error('transfer corrupted');

    step('Agent counters (GET /v1/status in each host)');
    for (const ag of agents) {
      const s = await ag.status();
      const n = s.networks.find((y) => y.vni === VNI)?.counters;
      if (!n) continue;
      const drops = Object.entries(n.rxDrops).concat(Object.entries(n.txDrops)).filter(([, v]) => v > 0);
      out(
        `  ${ag.host.name}: tap->udp frames ${n.txFrames}, udp packets sent ${n.txPackets}, received ${n.rxPackets}, delivered ${n.rxDelivered}, ` +
          `drops ${drops.length ? drops.map(([k, v]) => `${k}=${v}`).join(' ') : 'none'}`,
      );
    }
    return 0;
  } catch (e) {
    out(`\nvxmesh demo failed: ${(e as Error).message}`);
    for (const ag of agents) if (!ag.running()) out(`agent on ${ag.host.name} exited:\n${ag.proc.output()}`);
    return 1;
  } finally {
    if (lab) {
      step('Tearing down');
      for (const ag of agents) {
        const ex = await ag.stop();
        out(`  ${ag.host.name}: agent stopped (${ex.signal ?? `exit ${ex.code}`})`);
      }
      await lab.destroy();
      const left = Lab.listNamespaces(lab.prefix);
      out(left.length ? `  LEFT BEHIND: ${left.join(' ')}` : `  all ${lab.prefix}-* namespaces removed`);
    }
  }
}
