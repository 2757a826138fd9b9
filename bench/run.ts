/**
 * `npm run bench`: compares vxmesh with the underlay, Linux kernel VXLAN, nebula and tinc on a
 * two-host netns testbed. Pipeline per run:
 *   1. parse options, check root and tools (install missing Debian packages or mark n/a);
 *   2. for each round, for each underlay (wire-like, offloading), for each scenario (interleaved
 *      A B C … A' B' C' … A B C …): fresh testbed → build
 *      the path → iperf3/sockperf servers → background CPU sample → TCP 1 stream (+CPU) →
 *      TCP N streams → UDP 64 B at a bounded rate → RTT → agent peak RSS → teardown;
 *   3. medians per scenario, ratios to kernel VXLAN, goal verdicts;
 *   4. write bench/results/<timestamp>.{json,md}, latest.md, latest.svg.
 * Everything created is removed on exit, failure or Ctrl-C.
 */

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { installCleanupHooks, onCleanup, runCleanups } from './lib/cleanup';
import {
  backgroundLoad,
  cpuAround,
  iperfTcp,
  iperfUdp,
  measureRtt,
  peakRss,
  startIperfServer,
  startSockperfServer,
} from './lib/measure';
import { haveCommand, run } from './lib/proc';
import { Lab, LabProcess } from '../lab/netns';
import { allGoals, markdown, median, parseUnderlays, ReportMeta, RoundSample, ScenarioSummary, summarize, svgChart, UnderlayKind } from './lib/report';
import { ALL_SCENARIOS, NotAvailable, RunningPath, ScenarioContext, ScenarioId, SCENARIOS } from './lib/scenarios';

interface Options {
  quick: boolean;
  rounds: number;
  tcpSeconds: number;
  udpSeconds: number;
  rttSeconds: number;
  streams: number;
  udpPps: number;
  only: ScenarioId[];
  /** Underlays measured, interleaved within each round (default both). */
  underlays: UnderlayKind[];
  outDir: string;
  install: boolean;
  perfDir: string | null;
  straceDir: string | null;
  /** --ab-env: environment of the vxmesh-ab agents. */
  abEnv: Array<[string, string]>;
}

const USAGE = `usage: npm run bench -- [options]
  --quick              1 round, short runs (about 5 minutes for both underlays)
  --rounds N           rounds per scenario, interleaved (default 3; quick 1)
  --seconds N          TCP run length in seconds (default 8; quick 2)
  --udp-seconds N      UDP run length (default 5; quick 1)
  --rtt-seconds N      sockperf ping-pong length (default 4; quick 1)
  --streams N          parallel TCP streams for the multi-stream figure (default 4)
  --udp-pps N          offered UDP rate in 64-byte packets/s (default 100000)
  --only a,b           scenarios: ${ALL_SCENARIOS.join(', ')}
  --skip a,b           leave these scenarios out
  --underlay U         wire (veth offloads off), offload (veth defaults) or both (default: both, interleaved)
  --out DIR            results directory (default bench/results)
  --no-install         do not apt-get install missing tools (mark them n/a)
  --perf DIR           vxmesh: perf record -g the agents during TCP 1 stream (NODE_OPTIONS=--perf-basic-prof)
  --strace DIR         vxmesh: strace -c -f the agents during TCP 1 stream (summary per host)
  --ab-env K=V,...     add vxmesh-ab: vxmesh plaintext with these variables in the agents' environment,
                       interleaved with the others (A/B of an environment switch, e.g. VXMESH_LOOP_IDLE_METRICS=1)`;

function parseArgs(argv: string[], repoRoot: string): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    quick,
    rounds: quick ? 1 : 3,
    tcpSeconds: quick ? 2 : 8,
    udpSeconds: quick ? 1 : 5,
    rttSeconds: quick ? 1 : 4,
    streams: 4,
    udpPps: 100_000,
    only: ALL_SCENARIOS.filter((x) => x !== 'vxmesh-ab'),
    underlays: parseUnderlays('both'),
    outDir: path.join(repoRoot, 'bench/results'),
    install: true,
    perfDir: null,
    straceDir: null,
    abEnv: [],
  };
  const int = (v: string | undefined, name: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}: expected an integer in ${min}..${max}, got ${v}`);
    return n;
  };
  const ids = (v: string | undefined, name: string): ScenarioId[] => {
    const xs = (v ?? '').split(',').map((x) => x.trim()).filter(Boolean);
    for (const x of xs) if (!ALL_SCENARIOS.includes(x as ScenarioId)) throw new Error(`${name}: unknown scenario "${x}" (known: ${ALL_SCENARIOS.join(', ')})`);
    if (!xs.length) throw new Error(`${name}: expected a comma-separated list of scenarios`);
    return xs as ScenarioId[];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    switch (a) {
      case '--quick':
        break;
      case '--rounds': o.rounds = int(next(), a, 1, 20); break;
      case '--seconds': o.tcpSeconds = int(next(), a, 1, 60); break;
      case '--udp-seconds': o.udpSeconds = int(next(), a, 1, 60); break;
      case '--rtt-seconds': o.rttSeconds = int(next(), a, 1, 60); break;
      case '--streams': o.streams = int(next(), a, 2, 16); break;
      case '--udp-pps': o.udpPps = int(next(), a, 1000, 2_000_000); break;
      case '--only': o.only = ids(next(), a); break;
      case '--ab-env': {
        const v = next() ?? '';
        o.abEnv = v.split(',').filter(Boolean).map((kv) => {
          const i = kv.indexOf('=');
          if (i <= 0) throw new Error(`--ab-env: expected K=V[,K=V…], got "${kv}"`);
          return [kv.slice(0, i), kv.slice(i + 1)] as [string, string];
        });
        if (!o.abEnv.length) throw new Error('--ab-env: expected K=V[,K=V…]');
        break;
      }
      case '--skip': { const s = ids(next(), a); o.only = o.only.filter((x) => !s.includes(x)); break; }
      case '--underlay': o.underlays = parseUnderlays(next()); break;
      case '--out': o.outDir = path.resolve(next() ?? ''); break;
      case '--no-install': o.install = false; break;
      case '--perf': o.perfDir = path.resolve(next() ?? ''); break;
      case '--strace': o.straceDir = path.resolve(next() ?? ''); break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  // Keep the order of ALL_SCENARIOS (kernel VXLAN early, so ratios exist even if interrupted).
  if (o.abEnv.length && !o.only.includes('vxmesh-ab')) o.only.push('vxmesh-ab');
  if (!o.abEnv.length && o.only.includes('vxmesh-ab')) throw new Error('vxmesh-ab needs --ab-env K=V[,K=V…]');
  o.only = ALL_SCENARIOS.filter((x) => o.only.includes(x));
  return o;
}

function findRepoRoot(): string {
  let d = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'bench'))) return d;
    d = path.dirname(d);
  }
  return process.cwd();
}

// ---- progress line -------------------------------------------------------------------------

class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly t0 = Date.now();
  private last = '';
  set(text: string): void {
    const s = Math.round((Date.now() - this.t0) / 1000);
    const line = `[${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}] ${text}`;
    if (this.tty) {
      const w = process.stderr.columns || 100;
      process.stderr.write(`\r\x1b[K${line.slice(0, w - 1)}`);
    } else if (text !== this.last) {
      process.stderr.write(line + '\n');
    }
    this.last = text;
  }
  done(text: string): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(text + '\n');
  }
}

// ---- tools ---------------------------------------------------------------------------------

const TOOL_PACKAGES: Record<string, string> = { iperf3: 'iperf3', sockperf: 'sockperf', nebula: 'nebula', 'nebula-cert': 'nebula', tincd: 'tinc', ping: 'iputils-ping', ss: 'iproute2' };

/** Installs missing tools with apt-get (once); returns the commands still missing. */
async function ensureTools(cmds: string[], install: boolean, progress: Progress): Promise<string[]> {
  const missing: string[] = [];
  for (const c of cmds) if (!(await haveCommand(c))) missing.push(c);
  if (!missing.length || !install) return missing;
  const pkgs = [...new Set(missing.map((c) => TOOL_PACKAGES[c]).filter(Boolean))];
  progress.set(`installing ${pkgs.join(' ')} (apt-get)`);
  await run('apt-get', ['update'], { timeoutMs: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  const r = await run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { timeoutMs: 600_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.code !== 0) progress.done(`apt-get install ${pkgs.join(' ')} failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
  const still: string[] = [];
  for (const c of missing) if (!(await haveCommand(c))) still.push(c);
  return still;
}

// ---- one scenario, one round ---------------------------------------------------------------

async function measureOnce(id: ScenarioId, underlay: UnderlayKind, round: number, opts: Options, repoRoot: string, progress: Progress,
  sockperfOk: boolean): Promise<RoundSample> {
  const sc = SCENARIOS[id];
  const sample: RoundSample = { scenario: id, underlay, round, startedAt: new Date().toISOString(), notes: [], errors: [] };
  const tag = `round ${round}/${opts.rounds} · ${underlay} · ${sc.label}`;
  let lab: Lab | null = null;
  let undo: (() => void) | null = null;
  try {
    progress.set(`${tag} · setting up`);
    const t0 = Date.now();
    lab = await Lab.create({ hosts: 2, underlayMtu: 1500, handleSignals: false, underlayOffloads: underlay === 'offload' });
    const l = lab;
    undo = onCleanup(`lab ${l.prefix}`, () => l.destroySync());
    const ctx: ScenarioContext = { lab, dir: lab.dir, repoRoot, nodeOptions: opts.perfDir ? '--perf-basic-prof' : '', quick: opts.quick, abEnv: opts.abEnv };
    const p = await sc.setup(ctx);
    sample.mtu = p.mtu;
    sample.notes.push(...p.notes);
    const iperfServer = await startIperfServer(lab, p.serverNs, p.serverAddr);
    const sockperf = sockperfOk ? await startSockperfServer(lab, p.serverNs, p.serverAddr) : null;
    sample.setupSeconds = (Date.now() - t0) / 1000;
    const agentPids = p.agents.map((a) => a.pid);
    const serverPids = [iperfServer.pid];

    const step = async (name: string, fn: () => Promise<void>) => {
      progress.set(`${tag} · ${name}`);
      try {
        await fn();
      } catch (e) {
        sample.errors.push({ step: name, message: (e as Error).message });
      }
    };
    await step('TCP 1 stream', async () => {
      const bg = await backgroundLoad(opts.quick ? 300 : 1000);
      const profilers = id.startsWith('vxmesh') ? startProfilers(l, p, opts, `${id}-${underlay}`, round) : [];
      const { value, cpu } = await cpuAround(agentPids, serverPids, () => iperfTcp(l, p.clientNs, p.serverAddr, opts.tcpSeconds, 1));
      for (const pr of profilers) await l.stop(pr, { signal: 'SIGINT', timeoutMs: 20_000 });
      sample.tcp1 = { ...value, cpu, backgroundCpuPerSec: bg };
    });
    await step(`TCP ${opts.streams} streams`, async () => {
      sample.tcp4 = await iperfTcp(l, p.clientNs, p.serverAddr, opts.tcpSeconds, opts.streams);
    });
    await step('UDP 64 B', async () => {
      sample.udp = { ...(await iperfUdp(l, p.clientNs, p.serverAddr, opts.udpSeconds, 64, opts.udpPps)), offeredPps: opts.udpPps, len: 64 };
    });
    await step('RTT', async () => {
      sample.rtt = await measureRtt(l, p.clientNs, p.serverAddr, opts.rttSeconds, sockperf !== null && sockperf.running());
      if (sample.rtt.note) sample.notes.push(sample.rtt.note);
    });
    if (p.agents.length) {
      const rss = p.agents.map((a) => peakRss(a.pid)).filter((x): x is number => x !== null);
      sample.agentPeakRssBytes = rss.length ? Math.max(...rss) : null;
      if (p.counters && !opts.quick) sample.agentCounters = await p.counters();
      for (const a of p.agents) if (!a.running()) sample.errors.push({ step: 'agent', message: `${a.name} exited during the run: ${a.output().trim().slice(-300)}` });
    }
  } catch (e) {
    sample.errors.push({ step: e instanceof NotAvailable ? 'n/a' : 'setup', message: (e as Error).message });
  } finally {
    progress.set(`${tag} · tearing down`);
    if (lab) await lab.destroy();
    undo?.();
  }
  return sample;
}

/**
 * Profilers attached to each agent for the TCP 1-stream run: `perf record -g` (node runs with
 * --perf-basic-prof so JIT frames have names) and/or `strace -c -f` (syscall counts and time).
 * Both stop on SIGINT after the run and write into the chosen directories.
 */
function startProfilers(lab: Lab, p: RunningPath, opts: Options, id: string, round: number): LabProcess[] {
  const out: LabProcess[] = [];
  for (const a of p.agents) {
    const base = `${id}-r${round}-${a.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
    if (opts.perfDir) {
      fs.mkdirSync(opts.perfDir, { recursive: true });
      out.push(lab.spawn(null, 'perf', ['record', '-F', '999', '-g', '-p', String(a.pid), '-o', path.join(opts.perfDir, `perf-${base}.data`)], { name: `perf-${a.name}` }));
    }
    if (opts.straceDir) {
      fs.mkdirSync(opts.straceDir, { recursive: true });
      out.push(lab.spawn(null, 'strace', ['-c', '-f', '-p', String(a.pid), '-o', path.join(opts.straceDir, `strace-${base}.txt`)], { name: `strace-${a.name}` }));
    }
  }
  return out;
}

// ---- main ----------------------------------------------------------------------------------

function timestamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

function machineLine(): string {
  const cpu = os.cpus()[0]?.model?.trim() ?? 'unknown CPU';
  return `${os.cpus().length} × ${cpu}, Linux ${os.release()}, Node ${process.version}`;
}

function gitCommit(repoRoot: string): string {
  try {
    return execFileSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  const repoRoot = findRepoRoot();
  let opts: Options;
  try {
    opts = parseArgs(process.argv.slice(2), repoRoot);
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return 2;
  }
  if (process.getuid && process.getuid() !== 0) {
    process.stderr.write('bench: needs root (network namespaces); run with sudo\n');
    return 2;
  }
  installCleanupHooks();
  const progress = new Progress();
  const started = new Date();

  const missing = await ensureTools(['iperf3', 'sockperf', 'ping', 'ss', ...(opts.only.includes('nebula') ? ['nebula', 'nebula-cert'] : []), ...(opts.only.includes('tinc') ? ['tincd'] : [])], opts.install, progress);
  if (missing.includes('iperf3') || missing.includes('ss') || missing.includes('ping')) {
    progress.done(`bench: missing required tools: ${missing.join(', ')}`);
    return 1;
  }
  const sockperfOk = !missing.includes('sockperf');

  const unavailable = new Map<ScenarioId, string | null>();
  for (const id of opts.only) {
    let why = await SCENARIOS[id].unavailable({ repoRoot });
    if (!why && id === 'nebula' && (missing.includes('nebula') || missing.includes('nebula-cert'))) why = 'nebula not installed and could not be installed';
    if (!why && id === 'tinc' && missing.includes('tincd')) why = 'tinc not installed and could not be installed';
    unavailable.set(id, why);
  }
  const runnable = opts.only.filter((id) => !unavailable.get(id));

  const samples: RoundSample[] = [];
  // Interleaved: round → underlay → path, so machine load drifts hit every path on both underlays alike.
  for (let round = 1; round <= opts.rounds; round++) {
    for (const u of opts.underlays) {
      for (const id of runnable) {
        // A path found not available here (e.g. encryption not wired in yet) is not retried.
        if (samples.some((s) => s.scenario === id && s.errors.some((e) => e.step === 'n/a'))) continue;
        samples.push(await measureOnce(id, u, round, opts, repoRoot, progress, sockperfOk));
      }
    }
  }

  const sums: ScenarioSummary[] = opts.underlays.flatMap((u) => opts.only.map((id) =>
    summarize(id, SCENARIOS[id].label, samples.filter((s) => s.scenario === id && s.underlay === u), unavailable.get(id) ?? null, u)));
  const ts = timestamp(started);
  const meta: ReportMeta = {
    timestamp: ts,
    quick: opts.quick,
    rounds: opts.rounds,
    seconds: { tcp: opts.tcpSeconds, udp: opts.udpSeconds, rtt: opts.rttSeconds },
    udpOfferedPps: opts.udpPps,
    machine: machineLine(),
    commit: gitCommit(repoRoot),
    backgroundBusyCpus: median(samples.map((s) => s.tcp1?.backgroundCpuPerSec ?? NaN)),
    cpus: os.cpus().length,
  };
  const md = markdown(meta, sums);
  const svg = svgChart(meta, sums);
  const verdicts = allGoals(sums);
  fs.mkdirSync(opts.outDir, { recursive: true });
  const json = {
    meta: { ...meta, startedAt: started.toISOString(), finishedAt: new Date().toISOString(), options: { ...opts, outDir: undefined }, streams: opts.streams },
    summary: sums,
    goals: verdicts,
    samples,
  };
  fs.writeFileSync(path.join(opts.outDir, `${ts}.json`), JSON.stringify(json, null, 2) + '\n');
  fs.writeFileSync(path.join(opts.outDir, `${ts}.md`), md);
  fs.writeFileSync(path.join(opts.outDir, 'latest.md'), md);
  fs.writeFileSync(path.join(opts.outDir, 'latest.svg'), svg + '\n');
  const secs = Math.round((Date.now() - started.getTime()) / 1000);
  progress.done(`done in ${secs} s → ${path.relative(process.cwd(), path.join(opts.outDir, `${ts}.json`))}`);
  process.stdout.write('\n' + md);
  const errs = samples.flatMap((s) => s.errors.map((e) => `${SCENARIOS[s.scenario].label} (${s.underlay}) r${s.round} ${e.step}: ${e.message}`));
  if (errs.length) process.stderr.write(`\n${errs.length} error(s):\n${errs.map((e) => `  ${e.slice(0, 600)}`).join('\n')}\n`);
  return 0;
}

main().then(
  (code) => {
    runCleanups();
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`\nbench: ${(e as Error)?.stack ?? e}\n`);
    runCleanups();
    process.exitCode = 1;
  },
);
