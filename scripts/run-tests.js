#!/usr/bin/env node
'use strict';
// Runs every compiled test file (dist/test/**/*.test.js) with node:test, one file at a time
// (netns tests build many namespaces; the machines have 2 cores). A test that runs longer than
// VXMESH_TEST_TIMEOUT_MS (default 10 minutes) fails instead of hanging the run.
//
// Around the run:
//  - every process of the run gets VXMESH_TEST_RUN=<id> and TMPDIR=<a fresh directory of the run>;
//    VXMESH_SEED (default 1) seeds the random tests and is printed when the run fails;
//  - at the end it lists the skipped tests and why. Run as root every test must run: a skip is a
//    failure (npm test installs what the tests need first, scripts/test-setup.js). With CI=1 a test
//    skipped because the native addon is not built is a failure too. VXMESH_ALLOW_SKIP=1 lifts both;
//  - it checks that the run left the machine as it found it (scripts/machine-state.js): no network
//    namespace, root-namespace TAP/bridge/veth, tagged process, file in the run's TMPDIR, vxmesh-named
//    /tmp entry or repository file (outside dist/, build/, node_modules/) left over. Anything left is
//    printed and fails the run; leftover processes of the run are then killed (by pid), its leftover
//    namespaces deleted and its TMPDIR removed. VXMESH_LEAK_CHECK=0 turns the check off. On a
//    shared machine (neither CI=1 nor VXMESH_LEAK_STRICT=1) what may be a concurrent run's is only
//    noted: a namespace whose owner pid (in its name) is alive, new root-namespace links, /tmp entries,
//    files changed in the checkout (which may be one's own edits).
//
// Usage: node scripts/run-tests.js [substring-filter ...]
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const state = require('./machine-state');

const repo = path.join(__dirname, '..');
const root = path.join(repo, 'dist', 'test');
const files = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.test.js')) files.push(p);
  }
})(root);
files.sort();
const filters = process.argv.slice(2);
const chosen = filters.length ? files.filter((f) => filters.some((s) => f.includes(s))) : files;
if (chosen.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const ci = Boolean(process.env.CI) && process.env.CI !== '0' && process.env.CI !== 'false';
const allowSkip = process.env.VXMESH_ALLOW_SKIP === '1';
const leakCheck = process.env.VXMESH_LEAK_CHECK !== '0';
const timeout = Number(process.env.VXMESH_TEST_TIMEOUT_MS) || 600000;
const seed = process.env.VXMESH_SEED ?? '1';
const runId = `${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
// The run's TMPDIR: 0755 so that an agent the tests run as another user can reach what a test put
// in a 0755 directory below it (mkdtemp directories inside stay 0700).
const tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-run-'));
fs.chmodSync(tmpdir, 0o755);
const results = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-results-')), 'results.jsonl');

const before = leakCheck ? state.snapshot({ repo }) : null;
const started = Date.now();
const env = { ...process.env, VXMESH_TEST_RUN: runId, VXMESH_SEED: seed, TMPDIR: tmpdir };
const child = spawn(process.execPath, [
  '--test', '--test-concurrency=1', `--test-timeout=${timeout}`,
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  `--test-reporter=${path.join(__dirname, 'test-reporter.mjs')}`, `--test-reporter-destination=${results}`,
  ...chosen,
], { stdio: 'inherit', env });
// Ctrl-C / SIGTERM reach the test process group through the terminal or are forwarded here; the
// leak check still runs after the tests end.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => finish(code === null ? 1 : code, signal));

function readResults() {
  try {
    return fs.readFileSync(results, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

function rel(f) {
  return f ? path.relative(repo, f) : '?';
}

// A pid embedded in a lab namespace name (vxl<pid>-…) or a native test's (vxt<pid % 10000>…): such a
// namespace belongs to a process that is still running (another run on a shared machine) when one
// of those pids is alive.
function ownerAlive(ns) {
  let m = /^vxl(\d+)-/.exec(ns);
  if (m) return fs.existsSync(`/proc/${m[1]}`);
  m = /^vxt(\d{1,4})/.exec(ns);
  if (!m) return false;
  const live = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map((e) => Number(e) % 10000);
  for (let len = 1; len <= m[1].length; len++) if (live.includes(Number(m[1].slice(0, len)))) return true;
  return false;
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function checkLeaks() {
  let l = state.leaks(before, { repo, runId, tmpdir });
  if (l.namespaces.length || l.links.length || l.processes.length || l.tmp.length) {
    // Let what is being torn down right now (the last test's cleanup, a process exiting) finish.
    sleep(2000);
    l = state.leaks(before, { repo, runId, tmpdir });
  }
  const strict = ci || process.env.VXMESH_LEAK_STRICT === '1';
  const notes = [];
  if (!strict) {
    // On a machine shared with other runs, what a concurrent run owns is not ours to report.
    // Only a namespace named by the test helpers (vxl<pid>-…, vxt<pid>…) whose owner is gone is
    // certainly a leak; any other (a live run's, podman's netns-<uuid> of a concurrent run) is only
    // noted — and never deleted.
    const others = l.namespaces.filter((n) => !/^vx[lt]\d/.test(n) || ownerAlive(n));
    if (others.length) notes.push(`not counted (another run's, or not named by the test helpers; CI=1 counts them): ${others.join(' ')}`);
    l.namespaces = l.namespaces.filter((n) => !others.includes(n));
    // Root-namespace links and /tmp entries cannot be told apart from a concurrent run's: noted, and
    // counted only in strict mode (CI=1 or VXMESH_LEAK_STRICT=1: a machine of its own).
    if (l.links.length) notes.push(`not counted (may be another run's; CI=1 counts them): new links ${l.links.join(' ')}`);
    if (l.tmp.length) notes.push(`not counted (may be another run's; CI=1 counts them): new /tmp entries ${l.tmp.join(' ')}`);
    // Files in the checkout may be the developer's own edits during the run: noted only.
    if (l.repo.length) notes.push(`not counted (may be edits made during the run; CI=1 counts them): repository changes ${l.repo.join(', ')}`);
    l.links = [];
    l.tmp = [];
    l.repo = [];
  }
  const kinds = [
    ['network namespaces', l.namespaces],
    ['TAP/bridge/veth links in the root namespace', l.links],
    ['processes started by the run still running', l.processes],
    [`files left in the run's TMPDIR (${tmpdir})`, l.tmpdir],
    ['new vxmesh-named entries in /tmp', l.tmp],
    ['files written into the repository (outside dist/, build/, node_modules/)', l.repo],
  ];
  const found = kinds.filter(([, xs]) => xs.length > 0);
  for (const n of notes) console.log(`# leak check: ${n}`);
  if (found.length === 0) {
    console.log('# leak check: the machine is as the run found it (namespaces, links, processes, files)');
    return true;
  }
  console.log('\n# leak check FAILED: the run left things behind');
  for (const [what, xs] of found) console.log(`#   ${what}:\n${xs.map((x) => `#     ${x}`).join('\n')}`);
  // Clean up what is certainly the run's: its processes (by pid) and its namespaces.
  for (const p of state.taggedProcesses(runId)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch { /* gone */ }
  }
  // Only namespaces named by the test helpers whose owner process is gone are deleted, in every mode:
  // with CI=1 on a machine that is not the run's own, a concurrent run's live namespaces (its lab
  // hosts and switch) must not be pulled from under it — they are reported, not removed.
  for (const ns of l.namespaces) if (/^vx[lt]\d/.test(ns) && !ownerAlive(ns)) spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
  return false;
}

function finish(code, signal) {
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const all = readResults();
  const skipped = all.filter((r) => r.skip !== null);
  const failed = all.filter((r) => !r.ok);
  let status = code;
  if (signal) console.log(`# test runner ended by ${signal}`);

  if (skipped.length) {
    const byReason = new Map();
    for (const s of skipped) {
      const k = s.skip;
      if (!byReason.has(k)) byReason.set(k, []);
      byReason.get(k).push(`${rel(s.file)}: ${s.name}`);
    }
    console.log(`\n# ${skipped.length} test(s) skipped:`);
    for (const [reason, tests] of byReason) console.log(`#   because ${reason}:\n${tests.map((t) => `#     ${t}`).join('\n')}`);
    const nativeSkips = skipped.filter((s) => /addon|native AEAD/i.test(s.skip));
    if (!allowSkip && isRoot) {
      console.log('# FAIL: run as root, every test must run (npm test installs the tools first: scripts/test-setup.js; VXMESH_ALLOW_SKIP=1 to allow)');
      status = status || 1;
    } else if (!allowSkip && ci && nativeSkips.length) {
      console.log(`# FAIL: CI=1 and ${nativeSkips.length} test(s) skipped because the native addon is not built (npm install builds it)`);
      status = status || 1;
    } else if (!isRoot) {
      console.log('# (not root: these suites need root or tools that are missing; as root, npm test installs the tools and runs them all)');
    }
  }

  if (leakCheck && !checkLeaks()) status = status || 1;
  try {
    fs.rmSync(tmpdir, { recursive: true, force: true });
    fs.rmSync(path.dirname(results), { recursive: true, force: true });
  } catch (e) {
    console.log(`# could not remove ${tmpdir}: ${e.message}`);
  }
  console.log(`# ${all.filter((r) => r.ok && r.skip === null && r.todo === null).length} passed, ${failed.length} failed, ${skipped.length} skipped, ${chosen.length} file(s), ${secs} s`);
  if (status !== 0) {
    if (failed.length) {
      console.log('# failed:');
      for (const f of failed) console.log(`#   ${rel(f.file)}: ${f.name}${f.error ? ` — ${f.error.split('\n')[0]}` : ''}`);
    }
    console.log(`# random tests ran with VXMESH_SEED=${seed} (set it to replay them)`);
  }
  process.exit(status);
}
