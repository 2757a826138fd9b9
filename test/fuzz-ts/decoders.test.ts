/**
 * Short property-based fuzz run of every TypeScript decoder target (test/fuzz-ts/targets.ts),
 * about VXMESH_FUZZ_MS (default 1500) ms each, from the run's seed (VXMESH_SEED, default 1: the
 * same inputs every run unless overridden). `npm run fuzz:ts` runs them longer.
 */
import { test } from 'node:test';
import { seedFor, SEED } from '../helpers/seed';
import { runTarget, TARGETS } from './targets';

const MS = Number(process.env.VXMESH_FUZZ_MS) || 1500;

for (const target of TARGETS) {
  test(`fuzz ${target.name}: decoders never throw undocumented errors; round trips exact (VXMESH_SEED=${SEED})`, { timeout: 120_000 }, async (t) => {
    const r = await runTarget(target, seedFor(`fuzz-ts:${target.name}`), MS);
    t.diagnostic(`${target.name}: ${r.runs} executions in ${r.ms} ms`);
  });
}
