/**
 * One-off measurement for issue 2's closing note (information, not a test): on one lab of two
 * hosts with one container each, container-to-container ping RTT and single-stream TCP throughput,
 * first through the kernel's VXLAN (on both hosts), then through vxmesh agents, same namespaces.
 *
 *   node dist/lab/measure.js [--pings 50] [--interval 0.01] [--seconds 5] [--json]
 *
 * Commands used (inside the container namespaces):
 *   ping -n -q -c 50 -i 0.01 <peer>           → rtt avg/mdev
 *   iperf3 -s -1 --forceflush -B <peer>  /  iperf3 -c <peer> -t 5 -J   → one TCP stream, receiver bits/s
 * Needs root, iproute2, iperf3.
 */

import { Lab, LabContainer, labSkipReason, haveTool } from './netns';
import { agentConfig, startAgent } from './vxmesh';

export interface PathFigures {
  path: 'kernel-vxlan' | 'vxmesh';
  ping: { count: number; received: number; avgMs: number; mdevMs: number; minMs: number; maxMs: number } | null;
  tcp: { seconds: number; receiverMbps: number; retransmits: number | null } | null;
}

export interface MeasureOptions {
  pings?: number;
  intervalS?: number;
  seconds?: number;
  log?: (line: string) => void;
}

async function measurePath(lab: Lab, a: LabContainer, b: LabContainer, name: PathFigures['path'], o: Required<Omit<MeasureOptions, 'log'>>): Promise<PathFigures> {
  // Warm-up (ARP, FDB learning) so the first echo is not an outlier.
  await lab.ping(a, b.address, { count: 3, intervalS: 0.05 });
  const p = await lab.ping(a, b.address, { count: o.pings, intervalS: o.intervalS });
  const server = lab.spawn(b.ns, 'iperf3', ['-s', '-1', '--forceflush', '-B', b.address], { name: `iperf3-s@${b.name}` });
  let tcp: PathFigures['tcp'] = null;
  try {
    await lab.waitForOutput(server, 'Server listening', 10_000);
    const r = await lab.exec(a.ns, 'iperf3', ['-c', b.address, '-t', String(o.seconds), '-J'], { timeoutMs: (o.seconds + 30) * 1000 });
    const j = JSON.parse(r.stdout);
    tcp = {
      seconds: o.seconds,
      receiverMbps: j.end.sum_received.bits_per_second / 1e6,
      retransmits: typeof j.end.sum_sent?.retransmits === 'number' ? j.end.sum_sent.retransmits : null,
    };
  } finally {
    if (server.running()) await lab.stop(server, { timeoutMs: 2000 });
  }
  return {
    path: name,
    ping: p.rtt ? { count: p.transmitted, received: p.received, avgMs: p.rtt.avg, mdevMs: p.rtt.mdev, minMs: p.rtt.min, maxMs: p.rtt.max } : null,
    tcp,
  };
}

/** Builds the lab, measures kernel VXLAN then vxmesh, tears down. */
export async function measure(opts: MeasureOptions = {}): Promise<PathFigures[]> {
  const skip = labSkipReason() ?? (haveTool('iperf3') ? null : 'iperf3 is not installed');
  if (skip) throw new Error(skip);
  const o = { pings: opts.pings ?? 50, intervalS: opts.intervalS ?? 0.01, seconds: opts.seconds ?? 5 };
  const log = opts.log ?? (() => {});
  const lab = await Lab.create({ hosts: 2 });
  try {
    const [h1, h2] = lab.hosts;
    for (const h of lab.hosts) await lab.addBridge(h, 'br0');
    const a = await lab.addContainer(h1, { bridge: 'br0', name: 'h1c1', address: '198.19.0.11/24' });
    const b = await lab.addContainer(h2, { bridge: 'br0', name: 'h2c1', address: '198.19.0.21/24' });
    const out: PathFigures[] = [];

    log('kernel VXLAN (vni 42) on both hosts');
    const k1 = await lab.addKernelVxlan(h1, { vni: 42, bridge: 'br0', peers: [h2.address] });
    const k2 = await lab.addKernelVxlan(h2, { vni: 42, bridge: 'br0', peers: [h1.address] });
    out.push(await measurePath(lab, a, b, 'kernel-vxlan', o));
    await lab.ip(h1.ns, 'link', 'del', k1);
    await lab.ip(h2.ns, 'link', 'del', k2);
    for (const c of [a, b]) await lab.ip(c.ns, 'neigh', 'flush', 'dev', 'eth0');

    log('vxmesh agents (vni 42) on both hosts');
    for (const h of lab.hosts) await startAgent(lab, h, agentConfig(lab, h, { networks: [{ name: 'blue', vni: 42, bridge: 'br0' }], logLevel: 'warn' }));
    out.push(await measurePath(lab, a, b, 'vxmesh', o));
    return out;
  } finally {
    await lab.destroy();
  }
}

function fmt(f: PathFigures): string {
  const p = f.ping ? `rtt avg ${f.ping.avgMs.toFixed(3)} ms mdev ${f.ping.mdevMs.toFixed(3)} ms (${f.ping.received}/${f.ping.count})` : 'ping: no reply';
  const t = f.tcp ? `TCP ${f.tcp.receiverMbps.toFixed(0)} Mbit/s (1 stream, ${f.tcp.seconds} s, ${f.tcp.retransmits ?? '?'} retransmits)` : 'TCP: n/a';
  return `${f.path.padEnd(13)} ${p}   ${t}`;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const num = (flag: string, d: number) => {
    const i = args.indexOf(flag);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  measure({ pings: num('--pings', 50), intervalS: num('--interval', 0.01), seconds: num('--seconds', 5), log: (l) => process.stderr.write(`measure: ${l}\n`) }).then(
    (figs) => {
      if (args.includes('--json')) process.stdout.write(JSON.stringify(figs, null, 2) + '\n');
      else for (const f of figs) process.stdout.write(fmt(f) + '\n');
    },
    (e) => {
      process.stderr.write(`measure: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
