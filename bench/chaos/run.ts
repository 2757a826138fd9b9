/**
 * `npm run chaos`: chaos, churn and load scenarios on real agents in network namespaces (needs
 * root). Full sizes by default (issue 11): 16 hosts, 10% loss and 20 ± 10 ms delay on the underlay;
 * every size can be scaled by a flag. Prints each scenario's figures and violations as it ends, a
 * JSON summary at the end, and exits 1 if anything that must hold did not.
 *
 * Usage: node dist/bench/chaos/run.js [--only kill,partition,slow,restarts,reloads,flood]
 *   [--hosts 16] [--loss 10] [--delay 20] [--jitter 10] [--profile lan] [--trials 10]
 *   [--partition-s 60] [--slow-minutes 10] [--restarts 500] [--reloads 1000]
 *   [--flood-rate 100000 (or a list: 25000,50000,100000)] [--transfer-s 5] [--samples 5 (off/on pairs)]
 *   [--flood-port 4789 (a closed port = control: the machine's cost of the packets alone)]
 *   [--flood-sources one|forged (forged: a random source address per packet, raw socket; needs cc)]
 *   [--flood-guard 1 (default; 0 = the agents run with underlay.handshakeGuard: false)]
 *   [--flood-control 1 (default; 0 = no third arm: the same flood dropped at h1's ingress by nftables)]
 *   [--out FILE.json]
 */
import * as fs from 'node:fs';
import { labSkipReason } from '../../lab/netns';
import { handshakeFlood, killDetection, partitionHeal, reloads, restarts, slowMembers, type ScenarioResult } from './scenarios';

function flags(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`bad argument ${argv[i]} (see the usage in bench/chaos/run.ts)`);
    out[m[1]] = m[2] ?? argv[++i];
  }
  return out;
}

async function main(): Promise<number> {
  const f = flags(process.argv.slice(2));
  const skip = labSkipReason();
  if (skip) {
    console.error(`chaos: ${skip}`);
    return 2;
  }
  const num = (k: string, d: number) => (f[k] !== undefined ? Number(f[k]) : d);
  const only = new Set((f.only ?? 'kill,partition,slow,restarts,reloads,flood').split(','));
  const hosts = num('hosts', 16);
  const imp = { lossPct: num('loss', 10), delayMs: num('delay', 20), jitterMs: num('jitter', 10), seed: num('seed', 1) };
  const profile = f.profile ?? 'lan';
  const log = (m: string) => console.log(`  ${new Date().toISOString().slice(11, 19)} ${m}`);
  const results: ScenarioResult[] = [];
  const run = async (key: string, fn: () => Promise<ScenarioResult>) => {
    if (!only.has(key)) return;
    console.log(`chaos: ${key}`);
    try {
      const r = await fn();
      results.push(r);
      console.log(`  → ${r.violations.length ? 'FAIL' : 'ok'} in ${r.seconds} s ${JSON.stringify(r.figures)}${r.violations.map((v) => `\n    ✖ ${v}`).join('')}`);
    } catch (e) {
      results.push({ name: key, figures: {}, violations: [`crashed: ${(e as Error).stack ?? e}`], seconds: 0 });
      console.log(`  → FAIL: ${(e as Error).message}`);
    }
  };
  await run('kill', () => killDetection({ hosts, trials: num('trials', 10), imp, profile, deadlineS: num('deadline-s', 120) }, log));
  await run('partition', () => partitionHeal({ hosts, partitionS: num('partition-s', 60), imp, profile, deadlineS: num('deadline-s', 120) }, log));
  await run('slow', () => slowMembers({ hosts, slow: 2, stopS: 2, everyS: 10, durationS: num('slow-minutes', 10) * 60, imp, profile }, log));
  await run('restarts', () => restarts({ restarts: num('restarts', 500), rssSlackPct: 20 }, log));
  await run('reloads', () => reloads({ reloads: num('reloads', 1000), intervalMs: num('reload-interval-ms', 50) }, log));
  for (const rate of (f['flood-rate'] ?? '100000').split(',').map(Number)) {
    await run('flood', () => handshakeFlood({ rate, transferS: num('transfer-s', 5), samples: num('samples', 5), port: num('flood-port', 4789), control: num('flood-control', 1) !== 0, guard: num('flood-guard', 1) !== 0, sources: f['flood-sources'] === 'forged' ? 'forged' : 'one', minGoodputRatio: 0.9, rssSlackPct: 20 }, log));
  }
  const summary = { when: new Date().toISOString(), args: f, results };
  if (f.out) fs.writeFileSync(f.out, `${JSON.stringify(summary, null, 2)}\n`);
  console.log(JSON.stringify(summary));
  return results.some((r) => r.violations.length) ? 1 : 0;
}

main().then((c) => { process.exitCode = c; }, (e) => { console.error(e); process.exitCode = 1; });
