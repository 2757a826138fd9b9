/**
 * Chaos-lab helpers over the netns testbed (lab/netns.ts, lab/vxmesh.ts): an impaired underlay
 * (loss, delay ± jitter, like `tc netem`, by a userspace relay the switch namespace routes every
 * packet through — the lab's kernels may lack sch_netem), partitions (blackhole routes between two
 * groups of hosts), gossip member views read from the agents' logs and API, and per-process
 * resource readings (RSS, open descriptors). Addresses: the lab's 198.18.0.0/24 underlay only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Lab, LabError, LabHost, LabProcess, REPO_ROOT } from '../../lab/netns';
import { httpGetJson, LabAgent } from '../../lab/vxmesh';

export interface Impairment {
  lossPct: number;
  delayMs: number;
  jitterMs: number;
  seed?: number;
}

/**
 * Routes all underlay traffic of `lab` through an impairment relay in the switch namespace: the
 * switch bridge's ports become routed ports (proxy ARP, one /32 route per host), and a policy rule
 * sends whatever arrives on a port to the relay's TUN device, whose output is routed normally.
 * The relay is a lab process: lab.destroy() ends it with the namespaces.
 */
export async function impairUnderlay(lab: Lab, imp: Impairment): Promise<LabProcess> {
  const sw = lab.switchNs;
  const sysctl = (k: string, v: string) => lab.exec(sw, 'sysctl', ['-qw', `${k}=${v}`]);
  await sysctl('net.ipv4.ip_forward', '1');
  await sysctl('net.ipv4.conf.all.rp_filter', '0');
  await sysctl('net.ipv4.conf.default.rp_filter', '0');
  const relay = lab.spawn(sw, 'python3', [path.join(REPO_ROOT, 'bench', 'chaos', 'impair.py'), 'imp0',
    String(imp.lossPct), String(imp.delayMs), String(imp.jitterMs), String(imp.seed ?? 1)], { name: 'impair' });
  await lab.waitForOutput(relay, 'ready', 10_000);
  await lab.ip(sw, 'link', 'set', 'imp0', 'up');
  await sysctl('net.ipv4.conf.imp0.rp_filter', '0');
  await lab.ip(sw, 'route', 'add', 'default', 'dev', 'imp0', 'table', '100');
  for (const h of lab.hosts) {
    const port = `p${h.index}`;
    await lab.ip(sw, 'link', 'set', port, 'nomaster');
    await lab.ip(sw, 'addr', 'add', '198.18.1.254/32', 'dev', port);
    await sysctl(`net.ipv4.conf.${port}.proxy_arp`, '1');
    await sysctl(`net.ipv4.conf.${port}.rp_filter`, '0');
    await lab.ip(sw, 'route', 'add', `${h.address}/32`, 'dev', port);
    await lab.ip(sw, 'rule', 'add', 'iif', port, 'lookup', '100', 'pref', String(100 + h.index));
  }
  return relay;
}

/** Blackholes traffic between the two groups (both directions), until heal(). */
export async function partition(lab: Lab, a: LabHost[], b: LabHost[]): Promise<void> {
  for (const [from, to] of [[a, b], [b, a]] as const) {
    for (const h of from) for (const o of to) await lab.ip(h.ns, 'route', 'add', 'blackhole', `${o.address}/32`);
  }
}

export async function heal(lab: Lab, a: LabHost[], b: LabHost[]): Promise<void> {
  for (const [from, to] of [[a, b], [b, a]] as const) {
    for (const h of from) for (const o of to) await lab.exec(h.ns, 'ip', ['route', 'del', 'blackhole', `${o.address}/32`], { check: false });
  }
}

export interface MemberView {
  name: string;
  state: string;
}

export async function members(lab: Lab, a: LabAgent): Promise<MemberView[]> {
  return ((await httpGetJson(lab, a.host.ns, `${a.apiUrl}/v1/members`)) as { members: MemberView[] }).members;
}

/** Member events an agent logged (JSON logs: `member dead`, `member join`, …) at or after `sinceMs` (epoch). */
export function memberEvents(a: LabAgent, sinceMs = 0): Array<{ time: number; member: string; event: string }> {
  const out: Array<{ time: number; member: string; event: string }> = [];
  for (const line of a.proc.output().split('\n')) {
    if (!line.includes('"member ')) continue;
    try {
      const j = JSON.parse(line) as { time?: number | string; member?: string; event?: string };
      const time = typeof j.time === 'string' ? Date.parse(j.time) : j.time; // ISO time (src/log.ts), or epoch ms
      if (j.member && j.event && typeof time === 'number' && Number.isFinite(time) && time >= sinceMs) out.push({ time, member: j.member, event: j.event });
    } catch { /* a partial line */ }
  }
  return out;
}

/** Resident set size of `pid` in KiB (VmRSS), or null when it is gone. */
export function rssKb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Open file descriptors of `pid`, or null. */
export function fdCount(pid: number): number | null {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** TAP and bridge names in a namespace. */
export async function tapsAndBridges(lab: Lab, ns: string): Promise<{ taps: string[]; bridges: string[] }> {
  const r = await lab.exec(ns, 'ip', ['-d', '-o', 'link', 'show']);
  const taps: string[] = [];
  const bridges: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^\d+: ([^:@]+)[@:]/.exec(line);
    if (!m) continue;
    if (/\\\s+tun type tap /.test(line)) taps.push(m[1]);
    else if (/\\\s+bridge forward_delay /.test(line)) bridges.push(m[1]);
  }
  return { taps: taps.sort(), bridges: bridges.sort() };
}

/** Median and p99 (nearest rank) of `xs`. */
export function quantiles(xs: number[]): { n: number; median: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  return { n: s.length, median: s.length ? at(0.5) : NaN, p99: s.length ? at(0.99) : NaN, max: s.length ? s[s.length - 1] : NaN };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function assertLab(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new LabError(msg);
}

/** CPU seconds (user + system) used so far by `pid`, or null when it is gone (/proc/PID/stat, 100 Hz ticks). */
export function cpuSeconds(pid: number): number | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime = fields 14, 15
  } catch {
    return null;
  }
}

/** Machine-wide CPU ticks (busy, softirq, total) from /proc/stat; busy = total − idle − iowait. */
export function machineTicks(): { busy: number; softirq: number; total: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], softirq: f[6], total };
}

/** UDP counters (InDatagrams, NoPorts, InErrors, RcvbufErrors, …) of namespace `ns` (/proc/net/snmp read inside it). */
export async function udpSnmp(lab: Lab, ns: string): Promise<Record<string, number>> {
  const r = await lab.exec(ns, 'cat', ['/proc/net/snmp']);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const out: Record<string, number> = {};
  if (lines.length < 2) return out;
  const k = lines[0].trim().split(/\s+/).slice(1);
  const v = lines[1].trim().split(/\s+/).slice(1).map(Number);
  k.forEach((name, i) => { out[name] = v[i]; });
  return out;
}
