/** Atomic state files: round trip, mode, no temporary left behind, corrupt files are named errors. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StateError } from '../../src/errors';
import { readJsonState, writeJsonAtomic } from '../../src/state/atomic';

test('state: atomic JSON write and read; corrupt or wrongly shaped files are StateError naming the file', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-state-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'sub', 'x.json');
  const check = (v: unknown) => (typeof v === 'object' && v !== null && 'n' in v ? (v as { n: number }) : 'expected {n}');
  assert.equal(readJsonState(file, check), null, 'missing file: null');
  writeJsonAtomic(file, { n: 1 });
  writeJsonAtomic(file, { n: 2 });
  assert.deepEqual(readJsonState(file, check), { n: 2 });
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['x.json'], 'no temporary file left');
  fs.writeFileSync(file, '{"n": 3');
  assert.throws(() => readJsonState(file, check), (e: unknown) => e instanceof StateError && e.code === 'ERR_VXMESH_STATE' && e.file === file && /not valid JSON/.test(e.message));
  fs.writeFileSync(file, '[]');
  assert.throws(() => readJsonState(file, check), (e: unknown) => e instanceof StateError && /expected \{n\}/.test(e.message));
});
