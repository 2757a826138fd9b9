/**
 * Turns raw per-round samples into medians, ratios to kernel VXLAN, goal verdicts, a markdown
 * table and a hand-written SVG bar chart. Pure functions: no I/O here (run.ts writes the files).
 */

import type { CpuWindow, RttResult, TcpResult, UdpResult } from './measure';
import type { ScenarioId } from './scenarios';

/**
 * The two underlays every path is measured on (issue 15):
 *   wire     veth offloads off on the hosts' `ul0` (tx csum, TSO, GSO): the underlay segments and
 *            checksums in software and carries only wire-sized, finished packets, like a plain NIC
 *            without tunnel offloads;
 *   offload  the veths' defaults kept: checksum-partial 64 KiB GSO packets (TCP, UDP tunnel, UDP
 *            GSO) cross the underlay whole, as on a NIC with tunnel offloads (TSO/GSO over VXLAN, GRO).
 */
export type UnderlayKind = 'wire' | 'offload';
export const ALL_UNDERLAYS: UnderlayKind[] = ['wire', 'offload'];
export const UNDERLAY_LABELS: Record<UnderlayKind, string> = {
  wire: 'wire-like underlay (veth offloads off)',
  offload: 'offloading underlay (veth defaults: checksum/TSO/GSO offloads on)',
};
export const UNDERLAY_MODELS: Record<UnderlayKind, string> = {
  wire: 'models a NIC without tunnel offloads: the hosts\' underlay veths finish checksums and segment in software, so only wire-sized packets with complete checksums cross the underlay',
  offload: 'models a NIC with tunnel offloads (TSO/GSO of VXLAN, checksum offload, GRO): 64 KiB checksum-partial GSO packets cross the underlay unsegmented, which the kernel\'s VXLAN uses end to end',
};

/** Parses `--underlay wire,offload` (or `both`); throws on an unknown name. */
export function parseUnderlays(v: string | undefined): UnderlayKind[] {
  const xs = (v ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  if (xs.length === 1 && xs[0] === 'both') return [...ALL_UNDERLAYS];
  if (!xs.length) throw new Error('--underlay: expected wire, offload or both');
  for (const x of xs) if (!ALL_UNDERLAYS.includes(x as UnderlayKind)) throw new Error(`--underlay: unknown underlay "${x}" (known: ${ALL_UNDERLAYS.join(', ')}, both)`);
  return ALL_UNDERLAYS.filter((u) => xs.includes(u));
}

/** One scenario measured once (one round). Missing metrics failed; see `errors`. */
export interface RoundSample {
  scenario: ScenarioId;
  /** Underlay the round ran on (absent in results from before issue 15: wire-like). */
  underlay?: UnderlayKind;
  round: number;
  startedAt: string;
  mtu?: number;
  setupSeconds?: number;
  tcp1?: TcpResult & { cpu: CpuWindow; backgroundCpuPerSec: number };
  tcp4?: TcpResult;
  udp?: UdpResult & { offeredPps: number; len: number };
  rtt?: RttResult & { note?: string };
  /** Largest VmHWM among the agent processes at the end of the round. */
  agentPeakRssBytes?: number | null;
  /** Agent-reported counters at the end of the round (vxmesh status; full runs only). */
  agentCounters?: Record<string, unknown>;
  notes: string[];
  errors: Array<{ step: string; message: string }>;
}

export interface ScenarioSummary {
  scenario: ScenarioId;
  underlay: UnderlayKind;
  label: string;
  /** 'ok' when at least one round measured something; 'n/a' when not runnable here. */
  status: 'ok' | 'n/a' | 'failed';
  reason?: string;
  rounds: number;
  tcp1Gbps: number | null;
  tcp4Gbps: number | null;
  udpPps: number | null;
  udpLossPct: number | null;
  /** Packets/s the sender managed to send (below the offered rate when the sender is CPU-bound). */
  udpSentPps: number | null;
  rttP50Us: number | null;
  rttP99Us: number | null;
  /** Data-path CPU seconds (load generator, server, agents, ksoftirqd) per GB received during TCP 1 stream. */
  cpuPathPerGB: number | null;
  /** Whole-machine busy CPU seconds per GB (includes other tenants: noisy on a shared machine). */
  cpuSystemPerGB: number | null;
  /** Agent processes' CPU seconds per GB (null for kernel paths). */
  cpuAgentPerGB: number | null;
  /** CPUs busy with the data path during the TCP 1-stream run (path CPU seconds / wall seconds; the machine has meta.cpus). */
  tcp1BusyCpus: number | null;
  rssMB: number | null;
  rttTool: string | null;
  notes: string[];
}

export function median(xs: number[]): number | null {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function med<T>(samples: RoundSample[], pick: (s: RoundSample) => T | undefined | null): number | null {
  const xs: number[] = [];
  for (const s of samples) {
    const v = pick(s);
    if (typeof v === 'number' && Number.isFinite(v)) xs.push(v);
  }
  return median(xs);
}

/** CPU seconds per GB (1e9 bytes received) for one TCP round. */
export function cpuPerGB(t: NonNullable<RoundSample['tcp1']>, which: 'path' | 'system' | 'agent'): number | null {
  if (!t.bytes) return null;
  const gb = t.bytes / 1e9;
  if (which === 'agent') return t.cpu.agentSec === null ? null : t.cpu.agentSec / gb;
  if (which === 'system') return t.cpu.systemSec / gb;
  return t.cpu.pathSec / gb;
}

export function summarize(
  id: ScenarioId,
  label: string,
  samples: RoundSample[],
  unavailable: string | null,
  underlay: UnderlayKind = 'wire',
): ScenarioSummary {
  const base: ScenarioSummary = {
    scenario: id,
    underlay,
    label,
    status: 'ok',
    rounds: samples.length,
    tcp1Gbps: med(samples, (s) => (s.tcp1 ? s.tcp1.bps / 1e9 : null)),
    tcp4Gbps: med(samples, (s) => (s.tcp4 ? s.tcp4.bps / 1e9 : null)),
    udpPps: med(samples, (s) => s.udp?.pps),
    udpLossPct: med(samples, (s) => s.udp?.lossPct),
    udpSentPps: med(samples, (s) => (s.udp && s.udp.seconds > 0 ? s.udp.sent / s.udp.seconds : null)),
    rttP50Us: med(samples, (s) => s.rtt?.p50),
    rttP99Us: med(samples, (s) => s.rtt?.p99),
    cpuPathPerGB: med(samples, (s) => (s.tcp1 ? cpuPerGB(s.tcp1, 'path') : null)),
    cpuSystemPerGB: med(samples, (s) => (s.tcp1 ? cpuPerGB(s.tcp1, 'system') : null)),
    cpuAgentPerGB: med(samples, (s) => (s.tcp1 ? cpuPerGB(s.tcp1, 'agent') : null)),
    tcp1BusyCpus: med(samples, (s) => (s.tcp1 && s.tcp1.cpu.wall > 0 ? s.tcp1.cpu.pathSec / s.tcp1.cpu.wall : null)),
    rssMB: (() => {
      const xs = samples.map((s) => s.agentPeakRssBytes).filter((x): x is number => typeof x === 'number');
      return xs.length ? Math.max(...xs) / 2 ** 20 : null;
    })(),
    rttTool: samples.find((s) => s.rtt)?.rtt?.tool ?? null,
    notes: [...new Set(samples.flatMap((s) => s.notes))],
  };
  if (unavailable) return { ...base, status: 'n/a', reason: unavailable };
  const na = samples.flatMap((s) => s.errors).find((e) => e.step === 'n/a');
  if (na) return { ...base, status: 'n/a', reason: na.message };
  const anything = [base.tcp1Gbps, base.tcp4Gbps, base.udpPps, base.rttP50Us].some((x) => x !== null);
  if (!anything) {
    const err = samples.flatMap((s) => s.errors).map((e) => `${e.step}: ${e.message}`)[0] ?? 'no samples';
    return { ...base, status: 'failed', reason: err };
  }
  return base;
}

// ---- goals ---------------------------------------------------------------------------------

export interface GoalVerdict {
  goal: string;
  value: string;
  pass: boolean | null;
}

export function ratio(a: number | null, b: number | null): number | null {
  if (a === null || b === null || b === 0) return null;
  return a / b;
}

/** The other userspace overlays of the same underlay, for the "RTT below theirs" goal. */
export interface Rivals {
  tinc?: ScenarioSummary | null;
  nebula?: ScenarioSummary | null;
}

/**
 * Issue 15's goals for one vxmesh scenario against kernel VXLAN on the same underlay, same run:
 * plaintext TCP 1 stream ≥ 0.5× (offloading underlay) / ≥ 0.7× (wire-like); encrypted ≥ 0.35×;
 * RTT p50 below tinc's and nebula's and ≤ 2.0×, p99 ≤ 3×; UDP 64 B at the offered rate with
 * < 1 % loss; CPU per GB ≤ 2×; agent RSS ≤ 100 MB.
 */
export function goals(vx: ScenarioSummary, kernel: ScenarioSummary, encrypted = false, rivals: Rivals = {}): GoalVerdict[] {
  const r = (a: number | null, b: number | null) => ratio(a, b);
  const fmt = (x: number | null, d = 2) => (x === null ? 'n/a' : x.toFixed(d));
  const check = (x: number | null, ok: (v: number) => boolean): boolean | null => (x === null ? null : ok(x));
  const tcp = r(vx.tcp1Gbps, kernel.tcp1Gbps);
  const out: GoalVerdict[] = [];
  if (encrypted) {
    out.push({ goal: 'TCP 1 stream (encrypted) ≥ 0.35 × kernel VXLAN', value: `${fmt(tcp)}×`, pass: check(tcp, (v) => v >= 0.35) });
    return out;
  }
  const want = vx.underlay === 'offload' ? 0.5 : 0.7;
  out.push({ goal: `TCP 1 stream ≥ ${want.toFixed(2)} × kernel VXLAN`, value: `${fmt(tcp)}×`, pass: check(tcp, (v) => v >= want) });
  out.push({
    goal: 'UDP 64 B loss < 1 % at the offered rate',
    value: `${fmt(vx.udpLossPct)} % (${vx.udpPps === null ? 'n/a' : (vx.udpPps / 1000).toFixed(1)} kpps rx)`,
    pass: check(vx.udpLossPct, (v) => v < 1),
  });
  const p50 = r(vx.rttP50Us, kernel.rttP50Us);
  const p99 = r(vx.rttP99Us, kernel.rttP99Us);
  const others = [rivals.tinc, rivals.nebula].filter((x): x is ScenarioSummary => !!x && x.status === 'ok' && x.rttP50Us !== null);
  if (others.length) {
    const best = Math.min(...others.map((x) => x.rttP50Us!));
    out.push({
      goal: `RTT p50 below ${others.map((x) => x.label).join(' and ')}`,
      value: `${fmt(vx.rttP50Us, 1)} µs vs ${others.map((x) => `${x.rttP50Us!.toFixed(1)}`).join(' / ')} µs`,
      pass: vx.rttP50Us === null ? null : vx.rttP50Us < best,
    });
  }
  out.push({ goal: 'RTT p50 ≤ 2.0 × kernel VXLAN', value: `${fmt(p50)}×`, pass: check(p50, (v) => v <= 2.0) });
  out.push({ goal: 'RTT p99 ≤ 3.0 × kernel VXLAN', value: `${fmt(p99)}×`, pass: check(p99, (v) => v <= 3.0) });
  const cpu = r(vx.cpuPathPerGB, kernel.cpuPathPerGB);
  out.push({ goal: 'CPU per GB (data path) ≤ 2 × kernel VXLAN', value: `${fmt(cpu)}×`, pass: check(cpu, (v) => v <= 2) });
  out.push({ goal: 'agent peak RSS ≤ 100 MB', value: `${fmt(vx.rssMB, 0)} MB`, pass: check(vx.rssMB, (v) => v <= 100) });
  return out;
}

/** Goal verdicts per underlay and vxmesh scenario (`underlay → scenario → verdicts`). */
export function allGoals(sums: ScenarioSummary[]): Record<string, Record<string, GoalVerdict[]>> {
  const out: Record<string, Record<string, GoalVerdict[]>> = {};
  for (const u of ALL_UNDERLAYS) {
    const of = sums.filter((s) => s.underlay === u);
    const k = of.find((s) => s.scenario === 'kernel-vxlan' && s.status === 'ok');
    if (!k) continue;
    const rivals: Rivals = { tinc: of.find((s) => s.scenario === 'tinc'), nebula: of.find((s) => s.scenario === 'nebula') };
    const per: Record<string, GoalVerdict[]> = {};
    for (const s of of) if (s.scenario.startsWith('vxmesh') && s.status === 'ok') per[s.scenario] = goals(s, k, s.scenario === 'vxmesh-enc', rivals);
    out[u] = per;
  }
  return out;
}

// ---- markdown ------------------------------------------------------------------------------

function num(x: number | null, digits: number): string {
  if (x === null) return '–';
  return x.toFixed(digits);
}

function withRatio(x: number | null, base: number | null, digits: number): string {
  if (x === null) return '–';
  const r = ratio(x, base);
  return r === null ? num(x, digits) : `${num(x, digits)} (${r.toFixed(2)}×)`;
}

export interface ReportMeta {
  timestamp: string;
  quick: boolean;
  rounds: number;
  seconds: { tcp: number; udp: number; rtt: number };
  udpOfferedPps: number;
  machine: string;
  commit: string;
  /** Median busy CPUs of the whole machine just before the TCP runs (other tenants' load). */
  backgroundBusyCpus: number | null;
  cpus: number;
}

function table(meta: ReportMeta, sums: ScenarioSummary[], lines: string[]): void {
  const k = sums.find((s) => s.scenario === 'kernel-vxlan') ?? null;
  const kv = (f: (s: ScenarioSummary) => number | null) => (k && k.status === 'ok' ? f(k) : null);
  lines.push('| path | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | UDP 64 B kpps rx (sent) | UDP loss % | RTT p50 µs | RTT p99 µs | CPU s/GB path | CPU s/GB agent | CPUs busy (TCP 1) | agent RSS MB |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const s of sums) {
    if (s.status !== 'ok') {
      lines.push(`| ${s.label} | ${s.status}: ${(s.reason ?? '').replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, 160)} | | | | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${s.label} | ${withRatio(s.tcp1Gbps, kv((x) => x.tcp1Gbps), 2)} | ${withRatio(s.tcp4Gbps, kv((x) => x.tcp4Gbps), 2)} | ` +
        `${withRatio(s.udpPps === null ? null : s.udpPps / 1000, kv((x) => (x.udpPps === null ? null : x.udpPps / 1000)), 1)}${s.udpSentPps === null ? '' : ` [${(s.udpSentPps / 1000).toFixed(1)}]`} | ${num(s.udpLossPct, 2)} | ` +
        `${withRatio(s.rttP50Us, kv((x) => x.rttP50Us), 1)} | ${withRatio(s.rttP99Us, kv((x) => x.rttP99Us), 1)} | ` +
        `${withRatio(s.cpuPathPerGB, kv((x) => x.cpuPathPerGB), 2)} | ${num(s.cpuAgentPerGB, 2)} | ${s.tcp1BusyCpus === null ? '–' : `${s.tcp1BusyCpus.toFixed(2)} / ${meta.cpus}`} | ${num(s.rssMB, 0)} |`,
    );
  }
  lines.push('');
}

export function markdown(meta: ReportMeta, sums: ScenarioSummary[]): string {
  const lines: string[] = [];
  lines.push(`### vxmesh benchmark — ${meta.timestamp}${meta.quick ? ' (quick)' : ''}`);
  lines.push('');
  lines.push(
    `${meta.machine}; commit ${meta.commit}. Medians of ${meta.rounds} interleaved round(s); ` +
      `TCP ${meta.seconds.tcp} s, UDP ${meta.seconds.udp} s at ${Math.round(meta.udpOfferedPps / 1000)} kpps offered (64 B payload), RTT ${meta.seconds.rtt} s. ` +
      'Ratios in parentheses are to kernel VXLAN on the same underlay (higher is better for throughput, lower for RTT/CPU/RSS).',
  );
  if (meta.backgroundBusyCpus !== null && meta.backgroundBusyCpus > 0.25) {
    lines.push('');
    lines.push(
      `⚠ The machine was busy with other work: ${meta.backgroundBusyCpus.toFixed(2)} of ${meta.cpus} CPUs (median) just before the TCP runs. ` +
        'Absolute figures are lower than on an idle machine; the interleaved ratios are the meaningful part.',
    );
  }
  lines.push('');
  const verdicts = allGoals(sums);
  const present = ALL_UNDERLAYS.filter((u) => sums.some((s) => s.underlay === u));
  for (const u of present) {
    const of = sums.filter((s) => s.underlay === u);
    lines.push(`#### ${UNDERLAY_LABELS[u][0].toUpperCase()}${UNDERLAY_LABELS[u].slice(1)}`);
    lines.push('');
    lines.push(`It ${UNDERLAY_MODELS[u]}.`);
    lines.push('');
    table(meta, of, lines);
    for (const [id, per] of Object.entries(verdicts[u] ?? {})) {
      if (id === 'vxmesh-thr' || id === 'vxmesh-ab') continue;
      const v = of.find((s) => s.scenario === id)!;
      lines.push(`Goals (${v.label} vs kernel VXLAN, ${u === 'wire' ? 'wire-like' : 'offloading'} underlay, same run):`);
      lines.push('');
      lines.push('| goal | measured | met |');
      lines.push('|---|---|---|');
      for (const g of per) lines.push(`| ${g.goal} | ${g.value} | ${g.pass === null ? 'n/a' : g.pass ? 'yes' : '**no**'} |`);
      lines.push('');
    }
  }
  const notes = [...new Set(sums.flatMap((s) => s.notes.map((n) => `${s.label}: ${n}`)))];
  if (notes.length) {
    lines.push('Notes:');
    for (const n of notes) lines.push(`- ${n}`);
    lines.push('');
  }
  lines.push(
    '_UDP_: iperf3 with 64-byte payloads at a bounded offered rate; rx = packets/s received, [sent] = packets/s the sender ' +
      'achieved. _CPU s/GB path_: CPU seconds of the data path per 10⁹ bytes received during the TCP 1-stream run — both ' +
      'iperf3 ends, the agents and the ksoftirqd threads (kernel packet processing runs there or on the sender\'s time), ' +
      'so other work on the machine is not counted. _agent_: the overlay processes alone (utime+stime); kernel paths have ' +
      'none. _CPUs busy_: the data path\'s CPU seconds per wall second during the TCP 1-stream run (how much of the machine ' +
      'the path used; what is left is what more threads could use). RSS: peak (VmHWM) of the largest agent process. RTT: sockperf UDP ping-pong round trips.',
  );
  lines.push('');
  return lines.join('\n');
}

// ---- SVG -----------------------------------------------------------------------------------

const COLORS: Record<string, string> = {
  underlay: '#9e9e9e',
  'kernel-vxlan': '#1f77b4',
  vxmesh: '#2ca02c',
  'vxmesh-enc': '#98df8a',
  'vxmesh-thr': '#aec7e8',
  'vxmesh-ab': '#98df8a',
  nebula: '#ff7f0e',
  tinc: '#d62728',
};

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Grouped bars: one group per metric, one bar per scenario, height = ratio to kernel VXLAN; one panel per underlay. */
export function svgChart(meta: ReportMeta, sums: ScenarioSummary[]): string {
  const present = ALL_UNDERLAYS.filter((u) => sums.some((s) => s.underlay === u));
  const W = 980;
  const PH = 420;
  const H = PH * Math.max(1, present.length);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  if (!present.length) {
    out.push(`<text x="60" y="40">nothing was measured</text></svg>`);
    return out.join('\n');
  }
  present.forEach((u, pi) => panel(out, meta, sums.filter((s) => s.underlay === u), UNDERLAY_LABELS[u], pi * PH, W, PH));
  out.push('</svg>');
  return out.join('\n');
}

function panel(out: string[], meta: ReportMeta, sums: ScenarioSummary[], title: string, y0: number, W: number, H: number): void {
  const k = sums.find((s) => s.scenario === 'kernel-vxlan' && s.status === 'ok');
  const metrics: Array<{ label: string; sub: string; pick: (s: ScenarioSummary) => number | null; abs: (v: number) => string }> = [
    { label: 'TCP 1 stream', sub: 'higher is better', pick: (s) => s.tcp1Gbps, abs: (v) => `${v.toFixed(2)} Gbit/s` },
    { label: 'TCP 4 streams', sub: 'higher is better', pick: (s) => s.tcp4Gbps, abs: (v) => `${v.toFixed(2)} Gbit/s` },
    { label: 'UDP 64 B pps', sub: 'higher is better', pick: (s) => s.udpPps, abs: (v) => `${(v / 1000).toFixed(1)} kpps` },
    { label: 'RTT p50', sub: 'lower is better', pick: (s) => s.rttP50Us, abs: (v) => `${v.toFixed(0)} µs` },
    { label: 'RTT p99', sub: 'lower is better', pick: (s) => s.rttP99Us, abs: (v) => `${v.toFixed(0)} µs` },
    { label: 'CPU per GB', sub: 'lower is better', pick: (s) => s.cpuPathPerGB, abs: (v) => `${v.toFixed(2)} s/GB` },
  ];
  const shown = sums.filter((s) => s.status === 'ok');
  const left = 60;
  const top = y0 + 50;
  const plotH = 260;
  const maxR = 3;
  const groupW = (W - left - 20) / metrics.length;
  const barW = Math.max(6, Math.min(22, (groupW - 20) / Math.max(1, shown.length)));
  const y = (r: number) => top + plotH - (Math.min(r, maxR) / maxR) * plotH;
  out.push(`<text x="${left}" y="${y0 + 22}" font-size="15" font-weight="bold">${esc(`vxmesh benchmark ${meta.timestamp}${meta.quick ? ' (quick)' : ''}, ${title}: ratio to kernel VXLAN`)}</text>`);
  if (!k) {
    out.push(`<text x="${left}" y="${top + 40}">kernel VXLAN was not measured: no ratios</text>`);
    return;
  }
  for (let t = 0; t <= maxR; t += 0.5) {
    const yy = y(t).toFixed(1);
    out.push(`<line x1="${left}" x2="${W - 20}" y1="${yy}" y2="${yy}" stroke="${t === 1 ? '#444' : '#e0e0e0'}" stroke-width="${t === 1 ? 1.5 : 1}"${t === 1 ? ' stroke-dasharray="4 3"' : ''}/>`);
    out.push(`<text x="${left - 8}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t.toFixed(1)}×</text>`);
  }
  metrics.forEach((m, gi) => {
    const gx = left + gi * groupW + 10;
    const base = m.pick(k);
    shown.forEach((s, si) => {
      const v = m.pick(s);
      const r = ratio(v, base);
      const x = gx + si * barW;
      if (r === null) {
        out.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${top + plotH - 4}" text-anchor="middle" font-size="9">–</text>`);
        return;
      }
      const yy = y(r);
      out.push(
        `<rect x="${x.toFixed(1)}" y="${yy.toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(top + plotH - yy).toFixed(1)}" fill="${COLORS[s.scenario] ?? '#888'}"><title>${esc(`${s.label} ${m.label}: ${r.toFixed(2)}×`)}</title></rect>`,
      );
      if (r > maxR) out.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(top - 4).toFixed(1)}" text-anchor="middle" font-size="9">${r.toFixed(1)}</text>`);
    });
    out.push(`<text x="${(gx + (shown.length * barW) / 2).toFixed(1)}" y="${top + plotH + 18}" text-anchor="middle" font-weight="bold">${esc(m.label)}</text>`);
    out.push(`<text x="${(gx + (shown.length * barW) / 2).toFixed(1)}" y="${top + plotH + 32}" text-anchor="middle" fill="#666" font-size="10">${esc(m.sub)}</text>`);
    if (base !== null) {
      out.push(`<text x="${(gx + (shown.length * barW) / 2).toFixed(1)}" y="${top + plotH + 45}" text-anchor="middle" fill="#1f77b4" font-size="10">${esc(`kernel: ${m.abs(base)}`)}</text>`);
    }
  });
  shown.forEach((s, i) => {
    const lx = left + i * 150;
    const ly = y0 + H - 30;
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${COLORS[s.scenario] ?? '#888'}"/>`);
    out.push(`<text x="${lx + 18}" y="${ly}">${esc(s.label)}</text>`);
  });
}
