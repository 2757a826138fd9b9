/**
 * Benchmark: what busy-polling (underlay.busyPollUs, native/busypoll.h) costs and gives at low and
 * moderate request rates, where a spin that finds nothing is pure CPU (issue 15 §3).
 *
 *   sudo npm run bench:lowrate [-- --windows 0,20,50,100 --rates 1000,10000 --seconds 5 --rounds 2 --underlay offload]
 *
 * The bench's two-host testbed and vxmesh plaintext path (bench/lib/scenarios.ts) with
 * VXMESH_BUSY_POLL_US set per variant, interleaved round by round (the order rotating per round).
 * Per variant: both agents' CPU over 3 s idle (no traffic at all), then for each rate a fixed-rate
 * request/response load, container to container, with both agents' CPU around it and its RTT
 * percentiles: `--tool ping` (default; ICMP echo every 1/rate s, the client sleeps in between) or
 * `--tool ul` (`sockperf under-load`: its client busy-waits between sends, i.e. a CPU-bound task
 * beside the agents, and only every 100th message is answered). Prints a table (medians over the
 * rounds); --json FILE writes the samples. Bounded: every tool has a time limit.
 */
import * as fs from 'node:fs';
import { Lab, REPO_ROOT } from '../lab/netns';
import { cpuAround, parsePing, parseSockperf, startSockperfServer } from './lib/measure';
import { SCENARIOS } from './lib/scenarios';

const argv = process.argv;
const opt = (name: string, dflt: string): string => {
  const i = argv.lastIndexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
};
const ints = (s: string): number[] => s.split(',').filter(Boolean).map((x) => {
  const n = Number(x);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected integers, got ${s}`);
  return n;
});
const WINDOWS = ints(opt('windows', '0,50'));
const RATES = ints(opt('rates', '1000,10000'));
const SECONDS = Math.min(60, Math.max(1, Number(opt('seconds', '5'))));
const ROUNDS = Math.min(10, Math.max(1, Number(opt('rounds', '2'))));
const UNDERLAY = opt('underlay', 'offload');
const JSON_OUT = opt('json', '');
const TOOL = opt('tool', 'ping');
const log = (m: string) => process.stderr.write(`[bench:lowrate ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

interface Sample { window: number; round: number; idleAgentCpu: number; rates: { rate: number; agentCpu: number; p50: number; p99: number; obs: number }[] }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function one(window: number, round: number): Promise<Sample> {
  const lab = await Lab.create({ hosts: 2, underlayMtu: 1500, handleSignals: false, underlayOffloads: UNDERLAY === 'offload' });
  try {
    const p = await SCENARIOS['vxmesh-ab'].setup({
      lab, dir: lab.dir, repoRoot: REPO_ROOT, nodeOptions: '', quick: true, abEnv: [['VXMESH_BUSY_POLL_US', String(window)]],
    });
    const agents = p.agents.map((a) => a.pid);
    await startSockperfServer(lab, p.serverNs, p.serverAddr);
    // warm-up: JIT, FDB, neighbour entries
    await lab.exec(p.clientNs, 'sockperf', ['ping-pong', '-i', p.serverAddr, '-p', '11111', '-t', '2'], { check: false, timeoutMs: 15_000 });
    const idle = await cpuAround(agents, [], () => sleep(3000));
    const s: Sample = { window, round, idleAgentCpu: (idle.cpu.agentSec ?? 0) / idle.cpu.wall, rates: [] };
    for (const rate of RATES) {
      const r = await cpuAround(agents, [], () => (TOOL === 'ul'
        ? lab.exec(p.clientNs, 'sockperf', ['under-load', '-i', p.serverAddr, '-p', '11111', '-t', String(SECONDS), '--mps', String(rate), '--full-rtt'],
          { check: false, timeoutMs: (SECONDS + 15) * 1000 })
        : lab.exec(p.clientNs, 'ping', ['-n', '-c', String(rate * SECONDS), '-i', String(1 / rate), '-W', '1', p.serverAddr],
          { check: false, timeoutMs: (SECONDS * 3 + 15) * 1000 })));
      const rtt = TOOL === 'ul' ? parseSockperf(r.value.stdout + r.value.stderr) : parsePing(r.value.stdout);
      s.rates.push({ rate, agentCpu: (r.cpu.agentSec ?? 0) / r.cpu.wall, p50: rtt.p50, p99: rtt.p99, obs: rtt.observations });
    }
    return s;
  } finally {
    await lab.destroy();
  }
}

async function main(): Promise<void> {
  const samples: Sample[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = WINDOWS.map((_, i) => WINDOWS[(i + round - 1) % WINDOWS.length]);
    for (const w of order) {
      log(`round ${round}/${ROUNDS}: busyPollUs ${w}`);
      const s = await one(w, round);
      samples.push(s);
      log(`  idle agents ${(s.idleAgentCpu * 100).toFixed(1)} % CPU; ${s.rates.map((r) => `${r.rate}/s: agents ${(r.agentCpu * 100).toFixed(1)} %, p50 ${r.p50.toFixed(1)} µs, p99 ${r.p99.toFixed(1)} µs`).join('; ')}`);
    }
  }
  const lines = [`busy-poll at low rates (${UNDERLAY} underlay, ${ROUNDS} rounds, ${TOOL === 'ul' ? 'sockperf under-load' : 'ping'} ${SECONDS} s; CPU = both agents together, % of one CPU; medians)`, ''];
  lines.push(`| busyPollUs | idle | ${RATES.map((r) => `${r}/s CPU | ${r}/s RTT p50 / p99 µs`).join(' | ')} |`);
  lines.push(`|---|---|${RATES.map(() => '---|---').join('|')}|`);
  for (const w of WINDOWS) {
    const xs = samples.filter((s) => s.window === w);
    const cells = RATES.map((rate) => {
      const rs = xs.map((s) => s.rates.find((r) => r.rate === rate)!);
      return `${(median(rs.map((r) => r.agentCpu)) * 100).toFixed(1)} % | ${median(rs.map((r) => r.p50)).toFixed(1)} / ${median(rs.map((r) => r.p99)).toFixed(1)}`;
    });
    lines.push(`| ${w} | ${(median(xs.map((s) => s.idleAgentCpu)) * 100).toFixed(1)} % | ${cells.join(' | ')} |`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify(samples, null, 2));
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
