/**
 * `npm run fuzz:ts`: every TypeScript decoder target for longer (VXMESH_FUZZ_SECONDS per target,
 * default 30), from VXMESH_SEED (default: a fresh random seed, printed so that a failure replays).
 * Prints executions per target; exits 1 on the first failing property, with its counterexample.
 * Usage: node dist/test/fuzz-ts/run.js [target-name ...]
 */
import { runTarget, TARGETS } from './targets';

async function main(): Promise<number> {
  const seconds = Number(process.env.VXMESH_FUZZ_SECONDS) || 30;
  const seed = process.env.VXMESH_SEED !== undefined ? Number(process.env.VXMESH_SEED) : (Date.now() ^ (process.pid << 8)) >>> 0;
  const want = process.argv.slice(2);
  const chosen = want.length ? TARGETS.filter((t) => want.includes(t.name)) : TARGETS;
  if (chosen.length === 0) {
    console.error(`no such target; targets: ${TARGETS.map((t) => t.name).join(' ')}`);
    return 2;
  }
  console.log(`fuzz:ts: ${chosen.length} target(s), ${seconds} s each, VXMESH_SEED=${seed}`);
  let total = 0;
  for (const t of chosen) {
    try {
      const r = await runTarget(t, seed, seconds * 1000);
      total += r.runs;
      console.log(`  ${t.name.padEnd(14)} ${String(r.runs).padStart(9)} executions  ${(r.runs / (r.ms / 1000)).toFixed(0).padStart(7)}/s  0 failures`);
    } catch (e) {
      console.error(`  ${t.name}: FAILED\n${(e as Error).message}`);
      return 1;
    }
  }
  console.log(`fuzz:ts: ${total} executions, 0 failures`);
  return 0;
}

main().then((c) => { process.exitCode = c; }, (e) => { console.error(e); process.exitCode = 1; });
