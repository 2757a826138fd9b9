/**
 * `npm run bench:gossip`: the gossip simulator (src/gossip/simulator.ts, the real gossip code on
 * a FakeClock and an in-memory network) measured at N = 100, 1,000 and 10,000:
 *
 *   1. join: time until 99% and 100% of members know a new member (no loss);
 *   2. death: time until a killed member is declared dead by all (N = 100 and 1,000, 10% loss);
 *   3. false positives: "dead" verdicts about members that never failed, over 30 simulated
 *      minutes with 5% loss and 1% slow nodes;
 *   4. bandwidth: gossip bytes sent per node per second in steady state (packets + push-pull
 *      streams, encryption included).
 *
 * Writes bench/results/gossip.md, gossip.json and gossip.svg. Options (environment):
 *   GOSSIP_BENCH_SIZES=100,1000,10000   GOSSIP_BENCH_DEATH_SIZES=100,1000
 *   GOSSIP_BENCH_FP_SIZES=100,1000      GOSSIP_BENCH_FP_MINUTES=30   GOSSIP_BENCH_SEED=1
 * Each finished measurement is merged into bench/results/gossip.json (replacing the same kind
 * and N), and the markdown and chart are rendered from everything there, so parts can be run
 * separately (e.g. GOSSIP_BENCH_SIZES= GOSSIP_BENCH_DEATH_SIZES= GOSSIP_BENCH_FP_SIZES=1000).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tuningFor } from '../src/gossip/config';
import { ST_ALIVE } from '../src/gossip/record';
import { Simulator } from '../src/gossip/simulator';

const SEED = Number(process.env.GOSSIP_BENCH_SEED ?? 1);
const SIZES = (process.env.GOSSIP_BENCH_SIZES ?? '100,1000,10000').split(',').filter(Boolean).map(Number);
const FP_SIZES = (process.env.GOSSIP_BENCH_FP_SIZES ?? '100,1000').split(',').filter(Boolean).map(Number);
const FP_MINUTES = Number(process.env.GOSSIP_BENCH_FP_MINUTES ?? 30);
const DEATH_SIZES = (process.env.GOSSIP_BENCH_DEATH_SIZES ?? '100,1000').split(',').filter(Boolean).map(Number);
const tuning = tuningFor('lan');

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
const median = (xs: number[]): number => quantile(xs, 0.5);
const sec = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : 'n/a');
function log(msg: string): void {
  process.stderr.write(`[bench:gossip ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

interface JoinResult { n: number; trials: number; t99: number[]; t100: number[]; wallS: number }
interface DeathResult { n: number; loss: number; kills: number; allMs: number[]; observerMs: number[]; undetected: number }
interface FpResult { n: number; minutes: number; loss: number; slow: number; falseDead: number; falseDeadMembers: number; suspicions: number; refutations: number; bytesPerNodeS: number }
interface BwResult { n: number; windowS: number; bytesPerNodeS: number; packetBytesPerNodeS: number; streamBytesPerNodeS: number }

async function joinAndBandwidth(n: number): Promise<{ join: JoinResult; bw: BwResult }> {
  const wall0 = Date.now();
  log(`N=${n}: building converged cluster`);
  const sim = await Simulator.create({ n, seed: SEED + n, tuning });
  log(`N=${n}: built in ${((Date.now() - wall0) / 1000).toFixed(0)} s; warming up`);
  sim.run(5000);

  // Bandwidth: steady state, no loss. The window is long enough that push-pull (whose interval
  // grows with N) is represented at its average rate: phases are uniformly random.
  const windowS = n >= 10000 ? 60 : 60;
  let pkt0 = 0;
  let str0 = 0;
  for (const s of sim.nodes) {
    pkt0 += s.transport.stats.packetBytesSent;
    str0 += s.transport.stats.streamBytesSent;
  }
  sim.run(windowS * 1000);
  let pkt1 = 0;
  let str1 = 0;
  for (const s of sim.nodes) {
    pkt1 += s.transport.stats.packetBytesSent;
    str1 += s.transport.stats.streamBytesSent;
  }
  const bw: BwResult = {
    n, windowS,
    bytesPerNodeS: (pkt1 - pkt0 + str1 - str0) / n / windowS,
    packetBytesPerNodeS: (pkt1 - pkt0) / n / windowS,
    streamBytesPerNodeS: (str1 - str0) / n / windowS,
  };
  log(`N=${n}: steady state ${bw.bytesPerNodeS.toFixed(0)} B/s per node`);

  // Joins: one at a time through a random seed; time from the join call until each member knows.
  const trials = n >= 10000 ? 3 : 5;
  const t99: number[] = [];
  const t100: number[] = [];
  let target = '';
  let known = 0;
  let start = 0;
  let at99 = NaN;
  let at100 = NaN;
  let members = 0;
  sim.observe((sn, ev) => {
    if (ev.type === 'join' && ev.name === target && sn.name !== target) {
      known++;
      const t = sim.clock.now() - start;
      if (known >= Math.ceil(0.99 * members) && Number.isNaN(at99)) at99 = t;
      if (known >= members && Number.isNaN(at100)) at100 = t;
    }
  });
  for (let j = 0; j < trials; j++) {
    members = sim.up().length;
    known = 0;
    at99 = NaN;
    at100 = NaN;
    start = sim.clock.now();
    const seed = Math.floor(sim.rng() * members);
    const joiner = sim.addNode({ seed });
    target = joiner.name;
    sim.runUntil(() => !Number.isNaN(at100), 60_000, 50);
    t99.push(at99);
    t100.push(at100);
    log(`N=${n}: join ${j + 1}/${trials}: 99% ${sec(at99)} s, 100% ${sec(at100)} s`);
    sim.run(10_000); // let the update retire before the next join
  }
  return { join: { n, trials, t99, t100, wallS: (Date.now() - wall0) / 1000 }, bw };
}

async function death(n: number): Promise<DeathResult> {
  const loss = 0.1;
  log(`N=${n}: death detection with ${loss * 100}% loss`);
  const sim = await Simulator.create({ n, seed: SEED + 7 * n, tuning, loss });
  sim.run(10_000);
  const kills = 10;
  const killedAt = new Map<string, number>();
  const seen = new Map<string, number[]>();
  sim.observe((sn, ev) => {
    if (ev.type !== 'dead') return;
    const k = killedAt.get(ev.name);
    if (k === undefined || !sn.up) return;
    seen.get(ev.name)!.push(sim.clock.now() - k);
  });
  const victims: number[] = [];
  for (let i = 0; i < kills; i++) {
    let v: number;
    do v = 1 + Math.floor(sim.rng() * (n - 1)); while (victims.includes(v));
    victims.push(v);
    killedAt.set(sim.nodes[v].name, sim.clock.now());
    seen.set(sim.nodes[v].name, []);
    sim.kill(v);
    sim.run(5000);
  }
  const allDone = (): boolean => victims.every((v) => sim.countViews(sim.nodes[v].name, ST_ALIVE) === 0 && allDead(v));
  const allDead = (v: number): boolean => {
    const name = sim.nodes[v].name;
    for (const s of sim.nodes) {
      if (!s.up || s.name === name) continue;
      const st = s.node.stateOf(name);
      if (st !== 2 && st !== -1) return false;
    }
    return true;
  };
  sim.runUntil(allDone, 120_000, 500);
  const allMs: number[] = [];
  const observerMs: number[] = [];
  let undetected = 0;
  for (const v of victims) {
    const ts = seen.get(sim.nodes[v].name)!;
    observerMs.push(...ts);
    const observers = sim.up().length;
    if (ts.length >= observers) allMs.push(Math.max(...ts));
    else undetected++;
  }
  log(`N=${n}: dead-by-all median ${sec(median(allMs))} s, p99 ${sec(quantile(allMs, 0.99))} s`);
  return { n, loss, kills, allMs, observerMs, undetected };
}

async function falsePositives(n: number): Promise<FpResult> {
  const loss = 0.05;
  const slowFrac = 0.01;
  log(`N=${n}: false positives over ${FP_MINUTES} simulated minutes, ${loss * 100}% loss, ${slowFrac * 100}% slow nodes`);
  const sim = await Simulator.create({ n, seed: SEED + 13 * n, tuning, loss });
  const slowCount = Math.max(1, Math.round(n * slowFrac));
  for (let i = 0; i < slowCount; i++) sim.net.setSlow(sim.nodes[1 + Math.floor(sim.rng() * (n - 1))].address, 400);
  let falseDead = 0;
  const members = new Set<string>();
  sim.observe((sn, ev) => {
    if (ev.type === 'dead') {
      falseDead++; // nobody is killed in this scenario: every dead verdict is false
      members.add(ev.name);
    }
  });
  const b0 = sim.bytesSent();
  for (let m = 0; m < FP_MINUTES; m++) {
    sim.run(60_000);
    if ((m + 1) % 5 === 0) log(`N=${n}: ${m + 1} min, false dead so far ${falseDead}`);
  }
  let suspicions = 0;
  let refutations = 0;
  for (const s of sim.nodes) {
    suspicions += s.node.stats.suspicionsStarted;
    refutations += s.node.stats.refutations;
  }
  return {
    n, minutes: FP_MINUTES, loss, slow: slowCount, falseDead, falseDeadMembers: members.size, suspicions, refutations,
    bytesPerNodeS: (sim.bytesSent() - b0) / n / (FP_MINUTES * 60),
  };
}

function svg(joins: JoinResult[], bws: BwResult[]): string {
  // Two panels: join latency (99% / 100%, median of trials) and bytes/s per node, per N.
  const W = 720;
  const H = 300;
  const panel = (x0: number, title: string, bars: { label: string; values: { v: number; color: string; name: string }[] }[], unit: string, goal?: number): string => {
    const pw = 320;
    const ph = 200;
    const max = Math.max(goal ?? 0, ...bars.flatMap((b) => b.values.map((x) => (Number.isFinite(x.v) ? x.v : 0)))) * 1.15 || 1;
    let out = `<text x="${x0 + pw / 2}" y="20" text-anchor="middle" font-size="14">${title}</text>`;
    out += `<line x1="${x0}" y1="${30 + ph}" x2="${x0 + pw}" y2="${30 + ph}" stroke="#333"/>`;
    const groupW = pw / bars.length;
    bars.forEach((b, i) => {
      const bw = (groupW - 20) / b.values.length;
      b.values.forEach((x, j) => {
        const v = Number.isFinite(x.v) ? x.v : 0;
        const h = (v / max) * ph;
        const bx = x0 + i * groupW + 10 + j * bw;
        out += `<rect x="${bx}" y="${30 + ph - h}" width="${bw - 2}" height="${h}" fill="${x.color}"><title>${x.name}: ${x.v.toFixed(2)} ${unit}</title></rect>`;
        out += `<text x="${bx + bw / 2}" y="${26 + ph - h}" text-anchor="middle" font-size="9">${x.v < 10 ? x.v.toFixed(2) : x.v.toFixed(0)}</text>`;
      });
      out += `<text x="${x0 + i * groupW + groupW / 2}" y="${48 + ph}" text-anchor="middle" font-size="11">N=${b.label}</text>`;
    });
    if (goal !== undefined) {
      const gy = 30 + ph - (goal / max) * ph;
      out += `<line x1="${x0}" y1="${gy}" x2="${x0 + pw}" y2="${gy}" stroke="#c00" stroke-dasharray="4 3"/><text x="${x0 + pw}" y="${gy - 3}" text-anchor="end" font-size="10" fill="#c00">goal ${goal} ${unit}</text>`;
    }
    return out;
  };
  const joinBars = joins.map((j) => ({ label: String(j.n), values: [
    { v: median(j.t99) / 1000, color: '#4a90d9', name: '99% know (median)' },
    { v: median(j.t100) / 1000, color: '#1f4e79', name: '100% know (median)' },
  ] }));
  const bwBars = bws.map((b) => ({ label: String(b.n), values: [{ v: b.bytesPerNodeS / 1000, color: '#5aa469', name: 'KB/s per node' }] }));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="${W}" height="${H}" fill="white"/>
${panel(20, 'Join known by 99% / 100% (s)', joinBars, 's', 2)}
${panel(380, 'Gossip KB/s per node (steady)', bwBars, 'KB/s', 5)}
<text x="20" y="${H - 10}" font-size="10">vxmesh gossip simulator, lan profile, seed ${SEED}; light = 99%, dark = 100%</text>
</svg>
`;
}

interface Results { seed: number; joins: JoinResult[]; deaths: DeathResult[]; fps: FpResult[]; bws: BwResult[]; wallS: Record<string, number> }

const RESULTS_DIR = path.join(__dirname, '..', '..', 'bench', 'results');
const RESULTS_JSON = path.join(RESULTS_DIR, 'gossip.json');

function load(): Results {
  try {
    const r = JSON.parse(fs.readFileSync(RESULTS_JSON, 'utf8')) as Results;
    if (r.seed === SEED && Array.isArray(r.joins)) return { ...r, wallS: r.wallS ?? {} };
  } catch {
    // none yet
  }
  return { seed: SEED, joins: [], deaths: [], fps: [], bws: [], wallS: {} };
}

/** Merges one finished measurement (replacing the same kind and N) and re-renders md + svg. */
function save<K extends 'joins' | 'deaths' | 'fps' | 'bws'>(kind: K, item: Results[K][number], wallS: number): void {
  const r = load();
  const list = (r[kind] as { n: number }[]).filter((x) => x.n !== item.n);
  list.push(item);
  list.sort((a, b) => a.n - b.n);
  (r as unknown as Record<string, unknown>)[kind] = list;
  if (Number.isFinite(wallS)) r.wallS[`${kind}:${item.n}`] = Math.round(wallS);
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(`${RESULTS_JSON}.tmp`, JSON.stringify(r, null, 1));
  fs.renameSync(`${RESULTS_JSON}.tmp`, RESULTS_JSON);
  fs.writeFileSync(path.join(RESULTS_DIR, 'gossip.md'), render(r));
  fs.writeFileSync(path.join(RESULTS_DIR, 'gossip.svg'), svg(r.joins, r.bws));
}

function render(r: Results): string {
  const lines: string[] = [];
  lines.push(`# Gossip benchmark (simulator)`, '');
  lines.push(`Updated ${new Date().toISOString()} by \`npm run bench:gossip\` (bench/gossip.ts), seed ${r.seed}, profile \`lan\``);
  lines.push(`(probe 1 s, probe timeout 0.5 s, gossip every 200 ms to 3 members, λ = 4, suspicion ${tuning.suspicionMult}·log10(N)·probe … ×${tuning.suspicionMaxTimeoutMult}, k = ${tuning.suspicionConfirmations}).`);
  lines.push(`Real gossip code (codec, XChaCha20-Poly1305 keyring, SWIM/Lifeguard, push-pull) on a FakeClock; one-way delay 0.5–1 ms.`);
  lines.push(`Wall time per part (s): ${Object.entries(r.wallS).map(([k, v]) => `${k} ${v}`).join(', ')}.`, '');
  lines.push('## Join dissemination (no loss)', '');
  lines.push('Time from the joiner\'s push-pull with a random seed until 99% / 100% of the members have it (join event). With 3–5 trials per N the maximum stands in for p99.', '');
  lines.push('| N | trials | 99% know: median / max (s) | 100% know: median / max (s) | goal |');
  lines.push('|---:|---:|---:|---:|---|');
  for (const j of r.joins) {
    lines.push(`| ${j.n} | ${j.trials} | ${sec(median(j.t99))} / ${sec(Math.max(...j.t99))} | ${sec(median(j.t100))} / ${sec(Math.max(...j.t100))} | ${j.n === 10000 ? 'all within 2 s p99' : ''} |`);
  }
  lines.push('', '## Failure detection (10% packet loss)', '');
  lines.push('| N | kills | dead by all: median / p99 (s) | per observer: median / p99 (s) | not detected by all within 120 s | goal |');
  lines.push('|---:|---:|---:|---:|---:|---|');
  for (const d of r.deaths) {
    lines.push(`| ${d.n} | ${d.kills} | ${sec(median(d.allMs))} / ${sec(quantile(d.allMs, 0.99))} | ${sec(median(d.observerMs))} / ${sec(quantile(d.observerMs, 0.99))} | ${d.undetected} | ${d.n === 1000 ? '≤ 10 s median, ≤ 30 s p99' : ''} |`);
  }
  lines.push('', '## False positives (5% loss, 1% slow nodes: +0.2–0.6 s per packet each way), nobody fails', '');
  lines.push('| N | simulated minutes | slow nodes | false "dead" verdicts (observer × member) | members ever falsely dead | suspicions started (all observers) | refutations | bytes/s per node | goal |');
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const f of r.fps) {
    lines.push(`| ${f.n} | ${f.minutes} | ${f.slow} | ${f.falseDead} | ${f.falseDeadMembers} | ${f.suspicions} | ${f.refutations} | ${f.bytesPerNodeS.toFixed(0)} | 0 |`);
  }
  lines.push('', '## Bandwidth, steady state (no loss)', '');
  lines.push('| N | window (s) | bytes/s per node (total) | packets | push-pull streams | goal |');
  lines.push('|---:|---:|---:|---:|---:|---|');
  for (const b of r.bws) {
    lines.push(`| ${b.n} | ${b.windowS} | ${b.bytesPerNodeS.toFixed(0)} | ${b.packetBytesPerNodeS.toFixed(0)} | ${b.streamBytesPerNodeS.toFixed(0)} | ${b.n === 10000 ? '≤ 5 KB/s' : ''} |`);
  }
  lines.push('', '![chart](gossip.svg)', '');
  return lines.join('\n');
}

async function main(): Promise<void> {
  for (const n of SIZES) {
    const t = Date.now();
    const r = await joinAndBandwidth(n);
    save('joins', r.join, (Date.now() - t) / 1000);
    save('bws', r.bw, NaN);
  }
  for (const n of DEATH_SIZES) {
    const t = Date.now();
    save('deaths', await death(n), (Date.now() - t) / 1000);
  }
  for (const n of FP_SIZES) {
    const t = Date.now();
    save('fps', await falsePositives(n), (Date.now() - t) / 1000);
  }
  const r = load();
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(path.join(RESULTS_DIR, 'gossip.md'), render(r));
  fs.writeFileSync(path.join(RESULTS_DIR, 'gossip.svg'), svg(r.joins, r.bws));
  process.stdout.write(render(r) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
