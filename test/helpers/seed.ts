/**
 * Seeds of the randomised tests. One run-wide seed, VXMESH_SEED (default 1; scripts/run-tests.js
 * passes it on and prints it when a run fails), from which each test derives its own with a label,
 * so that adding a test does not change another's inputs. Put `seedFor(label)` (or the label and
 * SEED) in assertion messages; rerun with VXMESH_SEED=<n> to replay a failure.
 */
import { createHash } from 'node:crypto';

function parseSeed(v: string | undefined): number {
  if (v === undefined || v === '') return 1;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`VXMESH_SEED must be an integer 0..2^32-1, not '${v}'`);
  return n;
}

/** The run-wide seed (VXMESH_SEED, default 1). */
export const SEED = parseSeed(process.env.VXMESH_SEED);

/** A 32-bit seed for the test labelled `label`, derived from SEED. */
export function seedFor(label: string): number {
  return createHash('sha256').update(`${SEED}:${label}`).digest().readUInt32LE(0);
}

/** `n` bytes from a seeded generator (test keys and payloads that replay with the seed). */
export function seededBytes(label: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  let off = 0;
  for (let i = 0; off < n; i++) off += createHash('sha256').update(`${SEED}:${label}:${i}`).digest().copy(out, off);
  return out;
}
