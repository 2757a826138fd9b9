/**
 * Micro-benchmark: the policy stage the data path runs once per frame on a network with a policy
 * (src/policy/enforcer.ts `filter`), with 0 (no filter), 10 and 1,000 rules:
 *   - an established flow (a conntrack hit: what every packet after the first costs);
 *   - a new flow allowed by the last rule (the rule walk, once per connection);
 *   - a denied new flow (the walk plus the denial ring and a denied-cache insert);
 *   - a denied flow repeated (a flood: the denied-flow cache answers without a walk).
 *
 *   node dist/bench/micro/policy.js [--ms 300] [--rounds 5] [--json]
 *
 * Every loop is bounded in time (--ms per case and round); the cases run interleaved, round after
 * round, and each reports the median and the spread of its rounds (a loaded machine slows whole
 * stretches of time: interleaving spreads that over every case). Frames come in batches of 64 with
 * the batch time stamped (`setNow`), as the data path does. Endpoints: 200 on the network.
 */
import { FakeClock } from '../../src/clock';
import { ipBytes } from '../../src/ipam/cidr';
import { CompiledPolicy } from '../../src/policy/compile';
import { parsePolicy } from '../../src/policy/document';
import { PolicyEnforcer } from '../../src/policy/enforcer';
import type { PolicyEndpoint } from '../../src/policy/semantics';

const i = process.argv.indexOf('--ms');
const MS = i >= 0 ? Number(process.argv[i + 1]) : 300;
const JSON_OUT = process.argv.includes('--json');
const j = process.argv.indexOf('--rounds');
const ROUNDS = j >= 0 ? Number(process.argv[j + 1]) : 5;

function frame(src: string, dst: string, sport: number, dport: number): Buffer {
  const ip = (s: string) => s.split('.').map(Number);
  const l4 = [sport >> 8, sport & 255, dport >> 8, dport & 255, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0];
  return Buffer.from([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0, 0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, ...ip(src), ...ip(dst), ...l4, ...new Array(1400).fill(0)]);
}

const endpoints: PolicyEndpoint[] = Array.from({ length: 200 }, (_, k) => ({
  name: `e${k}`, labels: { app: `a${k % 20}`, role: k === 0 ? 'client' : 'server' }, ips: [ipBytes(`198.19.${k >> 8}.${(k & 255) + 1}`)!], hostAddr: '198.18.0.2',
}));

function enforcerWith(rules: number): PolicyEnforcer {
  const clock = new FakeClock(0);
  const en = new PolicyEnforcer({ clock, seed: 1, conntrackEntries: 1 << 18 });
  // `rules` ingress rules on the servers; the one allowing client → TCP 5432 is the last.
  const body = Array.from({ length: rules }, (_, k) => k === rules - 1
    ? '  - from: [{endpoints: {role: client}}]\n    ports: [{protocol: TCP, port: 5432}]\n'
    : `  - from: [{endpoints: {app: a${k % 20}}}]\n    ports: [{protocol: TCP, port: ${10000 + k}}]\n`).join('');
  const p = parsePolicy(`name: bench\nnetwork: blue\nendpoints: {role: server}\ningress:\n${body}`);
  en.setCompiled(new CompiledPolicy({ policies: [p], defaultDeny: false }, endpoints, { version: 1, seed: 1 }));
  return en;
}

interface Row { name: string; nsPerFrame: number; minNs: number; maxNs: number; cpuNsPerFrame: number }
const cases: { name: string; en: PolicyEnforcer | null; fn: (k: number) => boolean; runs: number[]; cpu: number[] }[] = [];
let tick = 0;

/**
 * Times `fn` for MS ms in batches of 64 frames, the batch time stamped as the data path does:
 * [wall ns, process CPU ns] per frame (on a shared machine the CPU time is the steadier one).
 */
function time(en: PolicyEnforcer | null, fn: (k: number) => boolean): [number, number] {
  let n = 0;
  let ok = 0;
  const end = process.hrtime.bigint() + BigInt(MS) * 1_000_000n;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  while (process.hrtime.bigint() < end) {
    for (let b = 0; b < 16; b++) {
      en?.setNow(++tick);
      for (let k = 0; k < 64; k++, n++) if (fn(n)) ok++;
    }
  }
  const wall = Number(process.hrtime.bigint() - t0) / n;
  const c = process.cpuUsage(c0);
  if (ok < 0) console.log(ok);
  return [wall, ((c.user + c.system) * 1000) / n];
}

const est = frame('198.19.0.1', '198.19.0.2', 40000, 5432);
cases.push({ name: 'no policy (no filter on the network)', en: null, fn: () => true, runs: [], cpu: [] });
for (const rules of [10, 1000]) {
  const en = enforcerWith(rules);
  en.filter(est, 0, est.length, '198.18.0.2');
  cases.push({ name: `${rules} rules: established flow (conntrack hit)`, en, fn: () => en.filter(est, 0, est.length, '198.18.0.2'), runs: [], cpu: [] });
  // New flows: a fresh source port each time (the table is large enough not to evict).
  const fresh = frame('198.19.0.1', '198.19.0.2', 0, 5432);
  cases.push({ name: `${rules} rules: new flow allowed by the last rule`, en, runs: [], cpu: [], fn: (k) => {
    fresh[34] = (k >> 8) & 255;
    fresh[35] = k & 255;
    fresh[31] = 2 + ((k >> 16) % 150);
    return en.filter(fresh, 0, fresh.length, '198.18.0.2');
  } });
  // Denied: a fresh flow each time (the rule walk + a denied-cache insert), then one flow repeated
  // (a flood: the denied-flow cache answers, no walk).
  const deniedNew = frame('198.19.0.1', '198.19.0.2', 0, 6000);
  cases.push({ name: `${rules} rules: new flow denied (walk)`, en, runs: [], cpu: [], fn: (k) => {
    deniedNew[34] = (k >> 8) & 255;
    deniedNew[35] = k & 255;
    deniedNew[31] = 2 + ((k >> 16) % 150);
    return en.filter(deniedNew, 0, deniedNew.length, '198.18.0.2');
  } });
  const denied = frame('198.19.0.1', '198.19.0.2', 40000, 6000);
  cases.push({ name: `${rules} rules: denied flow repeated (denied cache)`, en, runs: [], cpu: [], fn: () => en.filter(denied, 0, denied.length, '198.18.0.2') });
}
// Interleaved: every case once per round, ROUNDS rounds; the median and the spread per case.
for (let r = 0; r < ROUNDS; r++) {
  for (const c of cases) {
    const [wall, cpu] = time(c.en, c.fn);
    c.runs.push(wall);
    c.cpu.push(cpu);
  }
}
const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r1 = (x: number) => Math.round(x * 10) / 10;
const rows: Row[] = cases.map((c) => ({ name: c.name, nsPerFrame: r1(med(c.runs)), minNs: r1(Math.min(...c.runs)), maxNs: r1(Math.max(...c.runs)), cpuNsPerFrame: r1(med(c.cpu)) }));
if (JSON_OUT) console.log(JSON.stringify(rows, null, 2));
else {
  console.log(`${ROUNDS} interleaved rounds of ${MS} ms per case; wall ns/frame: median (min–max); CPU ns/frame: median`);
  for (const r of rows) console.log(`${r.name.padEnd(48)} ${r.nsPerFrame.toFixed(1).padStart(8)} (${r.minNs.toFixed(1)}–${r.maxNs.toFixed(1)})  cpu ${r.cpuNsPerFrame.toFixed(1).padStart(7)}`);
}
