/**
 * The measurements: iperf3 TCP (1 and N streams), iperf3 UDP with small packets at a bounded
 * rate, sockperf UDP ping-pong (ping as a fallback), CPU accounting from /proc and peak RSS.
 * Each load is bounded in time: the tool's own duration plus a hard kill after a margin.
 * Parsers are pure functions (tested in bench/test) so a tool's output format change shows up as
 * a clear error instead of a silent zero.
 */

import * as fs from 'node:fs';
import type { Lab, LabProcess } from '../../lab/netns';
import { sleep } from './proc';

// ---- iperf3 --------------------------------------------------------------------------------

export interface TcpResult {
  /** Receiver-side goodput over the whole run, bits/s. */
  bps: number;
  /** Bytes received. */
  bytes: number;
  seconds: number;
  /** Per-interval receiver goodput (bits/s): the raw samples. */
  intervals: number[];
  retransmits: number | null;
}

/** Parses `iperf3 -J` output of a TCP client run. */
export function parseIperfTcp(json: string): TcpResult {
  const d = JSON.parse(json);
  if (d.error) throw new Error(`iperf3: ${d.error}`);
  const r = d?.end?.sum_received;
  if (!r || typeof r.bits_per_second !== 'number') throw new Error('iperf3 TCP: no end.sum_received in output');
  const intervals: number[] = Array.isArray(d.intervals) ? d.intervals.map((i: any) => Number(i?.sum?.bits_per_second ?? 0)) : [];
  const rt = d?.end?.sum_sent?.retransmits;
  return { bps: r.bits_per_second, bytes: r.bytes, seconds: r.seconds, intervals, retransmits: typeof rt === 'number' ? rt : null };
}

export interface UdpResult {
  /** Packets the sender sent. */
  sent: number;
  /** Packets the receiver counted as lost (sequence gaps). */
  lost: number;
  /** Received packets per second over the run. */
  pps: number;
  /** Loss in percent of sent. */
  lossPct: number;
  seconds: number;
  jitterMs: number | null;
}

/** Parses `iperf3 -u -J` client output (receiver's loss is reported back to the client in end.sum). */
export function parseIperfUdp(json: string): UdpResult {
  const d = JSON.parse(json);
  if (d.error) throw new Error(`iperf3: ${d.error}`);
  const s = d?.end?.sum;
  if (!s || typeof s.packets !== 'number' || typeof s.lost_packets !== 'number') throw new Error('iperf3 UDP: no end.sum packets in output');
  const seconds = Number(s.seconds) || 0;
  const received = Math.max(0, s.packets - s.lost_packets);
  return {
    sent: s.packets,
    lost: s.lost_packets,
    pps: seconds > 0 ? received / seconds : 0,
    lossPct: s.packets > 0 ? (100 * s.lost_packets) / s.packets : 100,
    seconds,
    jitterMs: typeof s.jitter_ms === 'number' ? s.jitter_ms : null,
  };
}

const IPERF_PORT = 5201;

/** True once something listens on `port` (`proto` tcp or udp) inside `ns`. */
async function listening(lab: Lab, ns: string, proto: 't' | 'u', port: number): Promise<boolean> {
  const r = await lab.exec(ns, 'ss', [`-Hl${proto}n`, `sport = :${port}`], { check: false, timeoutMs: 5000 });
  return r.stdout.trim().length > 0;
}

/** iperf3 server in `ns` bound to `addr`; resolves once it listens. */
export async function startIperfServer(lab: Lab, ns: string, addr: string): Promise<LabProcess> {
  const p = lab.spawn(ns, 'iperf3', ['-s', '-B', addr, '-p', String(IPERF_PORT)], { name: 'iperf3-server' });
  await lab.waitFor('iperf3 server', async () => {
    if (!p.running()) throw new Error(`iperf3 server exited: ${p.output().slice(-400)}`);
    return listening(lab, ns, 't', IPERF_PORT);
  }, { timeoutMs: 5000, intervalMs: 50 });
  return p;
}

/** iperf3's refusal while the server still finishes the previous test (its streams closing). */
export function serverBusy(json: string): boolean {
  return /server is busy running a test/.test(json);
}

async function iperfClient(lab: Lab, ns: string, args: string[], seconds: number): Promise<string> {
  // The server may still be tearing down the previous test (slow stream close on a loaded
  // machine): retried a few times, a second apart, instead of losing the figure.
  for (let attempt = 0; ; attempt++) {
    const r = await lab.exec(ns, 'iperf3', [...args, '-p', String(IPERF_PORT), '-J', '--connect-timeout', '3000'], {
      check: false,
      timeoutMs: (seconds + 15) * 1000,
    });
    if (!r.stdout.trim()) throw new Error(`iperf3 client: ${r.stderr.trim() || 'no output'}`);
    if (attempt < 5 && serverBusy(r.stdout)) {
      await new Promise((res) => setTimeout(res, 1000));
      continue;
    }
    return r.stdout;
  }
}

export async function iperfTcp(lab: Lab, ns: string, server: string, seconds: number, streams: number): Promise<TcpResult> {
  const out = await iperfClient(lab, ns, ['-c', server, '-t', String(seconds), '-P', String(streams)], seconds);
  return parseIperfTcp(out);
}

/**
 * UDP with `len`-byte payloads at `pps` packets/s offered (iperf3 -b counts payload bits).
 * Socket buffers of 1 MB on both ends (-w) so scheduling hiccups of the 2-CPU machine do not
 * show up as loss of the measuring tool itself.
 */
export async function iperfUdp(lab: Lab, ns: string, server: string, seconds: number, len: number, pps: number): Promise<UdpResult> {
  const bps = Math.round(pps * len * 8);
  const out = await iperfClient(lab, ns, ['-c', server, '-u', '-l', String(len), '-b', String(bps), '-w', '1M', '-t', String(seconds)], seconds);
  return parseIperfUdp(out);
}

// ---- latency -------------------------------------------------------------------------------

export interface RttResult {
  tool: 'sockperf' | 'ping';
  /** Round-trip time percentiles, microseconds. */
  p50: number;
  p99: number;
  avg: number | null;
  observations: number;
}

/** Parses `sockperf ping-pong --full-rtt` output (percentiles are round trips in µs). */
export function parseSockperf(text: string): RttResult {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/\x1b\[[0-9;]*m/g, '');
  const pct = (p: string): number => {
    const m = new RegExp(`percentile ${p.replace('.', '\\.')} =\\s*([0-9.]+)`).exec(clean);
    if (!m) throw new Error(`sockperf: no percentile ${p} in output`);
    return Number(m[1]);
  };
  const obs = /Total (\d+) observations/.exec(clean);
  const avg = /avg-rtt=([0-9.]+)/.exec(clean);
  return { tool: 'sockperf', p50: pct('50.000'), p99: pct('99.000'), avg: avg ? Number(avg[1]) : null, observations: obs ? Number(obs[1]) : 0 };
}

/** Percentile by nearest rank on a copy of `xs`. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

/** Parses `ping` output lines `… time=0.052 ms` into RTT percentiles (µs). */
export function parsePing(text: string): RttResult {
  const xs: number[] = [];
  for (const m of text.matchAll(/time=([0-9.]+) ms/g)) xs.push(Number(m[1]) * 1000);
  if (xs.length === 0) throw new Error('ping: no replies');
  return { tool: 'ping', p50: percentile(xs, 50), p99: percentile(xs, 99), avg: xs.reduce((a, b) => a + b, 0) / xs.length, observations: xs.length };
}

const SOCKPERF_PORT = 11111;

export async function startSockperfServer(lab: Lab, ns: string, addr: string): Promise<LabProcess> {
  const p = lab.spawn(ns, 'sockperf', ['server', '-i', addr, '-p', String(SOCKPERF_PORT)], { name: 'sockperf-server' });
  await lab.waitFor('sockperf server', async () => !p.running() || listening(lab, ns, 'u', SOCKPERF_PORT), { timeoutMs: 5000, intervalMs: 50 });
  return p;
}

/** RTT by sockperf ping-pong; falls back to a bounded fast ping when sockperf fails. */
export async function measureRtt(lab: Lab, ns: string, server: string, seconds: number, sockperfUp: boolean): Promise<RttResult & { note?: string }> {
  let note: string | undefined;
  if (sockperfUp) {
    const r = await lab.exec(ns, 'sockperf', ['ping-pong', '-i', server, '-p', String(SOCKPERF_PORT), '-t', String(seconds), '--full-rtt'], {
      check: false,
      timeoutMs: (seconds + 10) * 1000,
    });
    try {
      return parseSockperf(r.stdout + r.stderr);
    } catch (e) {
      note = `sockperf failed (${(e as Error).message}); ping fallback`;
    }
  } else {
    note = 'sockperf server not running; ping fallback';
  }
  const count = Math.max(50, Math.min(2000, seconds * 200));
  const r = await lab.exec(ns, 'ping', ['-n', '-c', String(count), '-i', '0.005', '-W', '1', server], { check: false, timeoutMs: (count * 0.01 + 10) * 1000 });
  return { ...parsePing(r.stdout), note };
}

// ---- CPU and memory ------------------------------------------------------------------------

export const CLK_TCK = 100;

/** Whole-system busy and total jiffies from /proc/stat's first line. */
export function parseProcStat(text: string): { busy: number; total: number } {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat: no cpu line');
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest* are already inside user/nice)
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  const total = user + nice + system + idle + iowait + irq + softirq + (steal || 0);
  return { busy: total - idle - iowait, total };
}

/** utime+stime (jiffies, all threads) of a process from /proc/<pid>/stat, or null if gone. */
export function parsePidStat(text: string): number {
  // Field 2 (comm) may contain spaces: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  return Number(rest[11]) + Number(rest[12]);
}

export function pidCpuJiffies(pid: number): number | null {
  try {
    return parsePidStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

export function systemCpuJiffies(): { busy: number; total: number } {
  return parseProcStat(fs.readFileSync('/proc/stat', 'utf8'));
}

/** Peak resident set (VmHWM) in bytes, or null if the process is gone. */
export function peakRss(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export interface CpuWindow {
  /** Wall seconds of the window. */
  wall: number;
  /** Whole-machine busy CPU seconds in the window (includes other tenants of the machine). */
  systemSec: number;
  /**
   * CPU seconds of the data path alone: the load generator (a child of this process, from our
   * cutime+cstime once reaped), the receiving server, the agents and the ksoftirqd threads. With
   * veth links the kernel's packet processing runs in softirq on the sending task's CPU time or
   * in ksoftirqd, so kernel paths are counted too, and other tenants' load is not.
   */
  pathSec: number;
  /** Agent processes' CPU seconds (utime+stime, all threads), null without agents. */
  agentSec: number | null;
}

/** cutime+cstime of this process: CPU of children it has waited for. */
export function selfChildrenJiffies(): number {
  const text = fs.readFileSync('/proc/self/stat', 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(rest[13]) + Number(rest[14]);
}

/** PIDs of the per-CPU softirq threads. */
export function ksoftirqdPids(): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/comm`, 'utf8').startsWith('ksoftirqd/')) out.push(Number(d));
    } catch {
      /* raced with exit */
    }
  }
  return out;
}

function sumJiffies(pids: number[]): number[] {
  return pids.map((p) => pidCpuJiffies(p) ?? 0);
}

/**
 * Samples CPU around `fn`, which must run the load generator as a child of this process and wait
 * for it (so its CPU lands in our cutime). `agents`: overlay processes; `others`: long-running
 * path processes such as the receiving server.
 */
export async function cpuAround<T>(agents: number[], others: number[], fn: () => Promise<T>): Promise<{ value: T; cpu: CpuWindow }> {
  const soft = ksoftirqdPids();
  const s0 = systemCpuJiffies();
  const c0 = selfChildrenJiffies();
  const a0 = sumJiffies(agents);
  const o0 = sumJiffies([...others, ...soft]);
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const t1 = process.hrtime.bigint();
  const s1 = systemCpuJiffies();
  const c1 = selfChildrenJiffies();
  const a1 = sumJiffies(agents);
  const o1 = sumJiffies([...others, ...soft]);
  const delta = (x: number[], y: number[]) => x.reduce((acc, v, i) => acc + Math.max(0, y[i] - v), 0);
  const agentJ = delta(a0, a1);
  const pathJ = agentJ + delta(o0, o1) + (c1 - c0);
  return {
    value,
    cpu: {
      wall: Number(t1 - t0) / 1e9,
      systemSec: (s1.busy - s0.busy) / CLK_TCK,
      pathSec: pathJ / CLK_TCK,
      agentSec: agents.length ? agentJ / CLK_TCK : null,
    },
  };
}

/** Busy CPU seconds per wall second of the whole machine while idle here (other tenants' load). */
export async function backgroundLoad(ms: number): Promise<number> {
  const s0 = systemCpuJiffies();
  const t0 = Date.now();
  await sleep(ms);
  const s1 = systemCpuJiffies();
  return (s1.busy - s0.busy) / CLK_TCK / ((Date.now() - t0) / 1000);
}
