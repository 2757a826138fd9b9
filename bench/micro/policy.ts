/**
 * Micro-benchmark: the policy stage the data path runs once per frame on a network with a policy
 * (src/policy/enforcer.ts `filter`), with 0 (no filter), 10 and 1,000 rules:
 *   - an established flow (a conntrack hit: what every packet after the first costs);
 *   - a new flow allowed by the last rule (the rule walk, once per connection);
 *   - a denied new flow (the walk plus the denial ring and a denied-cache insert);
 *   - a denied flow repeated (a flood: the denied-flow cache answers without a walk).
 *
 *   node dist/bench/micro/policy.js [--ms 300] [--json]
 *
 * Every loop is bounded in time (--ms per case). Endpoints: 200 on the network.
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

interface Row { name: string; nsPerFrame: number }
const rows: Row[] = [];

function time(name: string, fn: (k: number) => boolean): void {
  let n = 0;
  let ok = 0;
  const end = process.hrtime.bigint() + BigInt(MS) * 1_000_000n;
  const t0 = process.hrtime.bigint();
  while (process.hrtime.bigint() < end) {
    for (let k = 0; k < 1000; k++, n++) if (fn(n)) ok++;
  }
  const ns = Number(process.hrtime.bigint() - t0) / n;
  rows.push({ name, nsPerFrame: Math.round(ns * 10) / 10 });
  if (ok < 0) console.log(ok);
}

const est = frame('198.19.0.1', '198.19.0.2', 40000, 5432);
time('no policy (no filter on the network)', () => true);
for (const rules of [10, 1000]) {
  const en = enforcerWith(rules);
  en.filter(est, 0, est.length, '198.18.0.2');
  time(`${rules} rules: established flow (conntrack hit)`, () => en.filter(est, 0, est.length, '198.18.0.2'));
  // New flows: a fresh source port each time (the table is large enough not to evict).
  const fresh = frame('198.19.0.1', '198.19.0.2', 0, 5432);
  time(`${rules} rules: new flow allowed by the last rule`, (k) => {
    fresh[34] = (k >> 8) & 255;
    fresh[35] = k & 255;
    fresh[31] = 2 + ((k >> 16) % 150);
    return en.filter(fresh, 0, fresh.length, '198.18.0.2');
  });
  // Denied: a fresh flow each time (the rule walk + a denied-cache insert), then one flow repeated
  // (a flood: the denied-flow cache answers, no walk).
  const deniedNew = frame('198.19.0.1', '198.19.0.2', 0, 6000);
  time(`${rules} rules: new flow denied (walk)`, (k) => {
    deniedNew[34] = (k >> 8) & 255;
    deniedNew[35] = k & 255;
    deniedNew[31] = 2 + ((k >> 16) % 150);
    return en.filter(deniedNew, 0, deniedNew.length, '198.18.0.2');
  });
  const denied = frame('198.19.0.1', '198.19.0.2', 40000, 6000);
  time(`${rules} rules: denied flow repeated (denied cache)`, () => en.filter(denied, 0, denied.length, '198.18.0.2'));
}
if (JSON_OUT) console.log(JSON.stringify(rows, null, 2));
else for (const r of rows) console.log(`${r.name.padEnd(48)} ${r.nsPerFrame.toFixed(1).padStart(8)} ns/frame`);
