/**
 * A short run of every libFuzzer harness of the native parsers (test/fuzz/fuzz.js: virtio header +
 * TSO segmentation, TCP/UDP coalescing, AEAD open/seal, the UDP GRO receive split), built with
 * clang and ASan+UBSan into a temporary directory that is removed afterwards. Earlier crash inputs (test/fuzz/regressions/)
 * run first. VXMESH_FUZZ_SECONDS sets the seconds per target (default 5); `npm run fuzz` runs
 * them longer with a kept corpus.
 *
 * Without clang the test fails when it runs as root or in CI (the set-up is expected to install
 * it) and is skipped, saying why, for a normal user.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const RUNNER = path.join(ROOT, 'test', 'fuzz', 'fuzz.js');
const SECONDS = Number(process.env.VXMESH_FUZZ_SECONDS) || 5;

function haveClang(): boolean {
  return ['clang', 'clang-14', 'clang-15', 'clang-16'].some((c) => {
    const r = spawnSync(c, ['--version']);
    return !r.error && r.status === 0;
  });
}

const mustRun = (typeof process.getuid === 'function' && process.getuid() === 0) || !!process.env.CI;
const skip = !haveClang() && !mustRun ? 'clang is not installed (apt-get install clang libclang-rt-14-dev)' : false;

interface FuzzResult { target: string; executions: number; files: number; bytes: number; crashes: number; regressions: number; error?: string; artifact?: string | null }

test(`fuzz: every native parser harness runs ${SECONDS} s under ASan+UBSan without a crash`, { skip, timeout: 600_000 }, () => {
  assert.ok(haveClang(), 'clang is not installed: the native fuzz harnesses need clang and libclang-rt-14-dev (the test set-up installs them as root)');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-fuzz-'));
  try {
    const r = spawnSync(process.execPath, [RUNNER, '--seconds', String(SECONDS), '--out', out, '--json'], {
      encoding: 'utf8', timeout: 540_000, maxBuffer: 16 << 20,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    let results: FuzzResult[];
    try {
      results = JSON.parse(line);
    } catch {
      throw new Error(`fuzz runner printed no result (status ${r.status}):\n${r.stderr}\n${r.stdout}`);
    }
    for (const x of results) {
      process.stdout.write(`# ${x.target}: ${x.executions} executions, corpus ${x.files} inputs / ${x.bytes} bytes, ${x.regressions} regression inputs, crashes ${x.crashes}\n`);
    }
    assert.deepEqual(results.map((x) => x.target), ['vnet_tso', 'coalesce', 'aead', 'gro_split', 'gro_runs', 'mac1']);
    for (const x of results) {
      assert.equal(x.crashes, 0, `${x.target} crashed:\n${x.error ?? ''}`);
      assert.equal(x.error, undefined, `${x.target}: ${x.error}`);
      assert.ok(x.executions > 100, `${x.target}: only ${x.executions} executions`);
      assert.ok(x.files > 0, `${x.target}: empty corpus`);
    }
    assert.ok(results.find((x) => x.target === 'coalesce')!.regressions >= 1, 'the coalesce regression inputs ran');
    assert.equal(r.status, 0, r.stderr);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
