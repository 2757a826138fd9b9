#!/usr/bin/env node
'use strict';
/*
 * `npm run test:asan`: builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer (clang,
 * -fno-sanitize-recover: any UB aborts) into build/asan/vxmesh.node — the normal build/Release is
 * untouched — and runs test suites with it: node gets the ASan runtime through LD_PRELOAD
 * (detect_leaks=0: node itself is not instrumented and keeps memory until exit), VXMESH_ADDON
 * points the loader (src/native/addon.ts) at the sanitized build, and the environment reaches
 * every child (netns scenarios, agents in the lab). Reports go to a log directory too; any report
 * fails the run.
 *
 *   node test/fuzz/asan.js [test-file-substring ...]     (default: the suites below)
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'build', 'asan');
const DEFAULT_SUITES = [
  // the native unit suites
  'unit/native-tap', 'unit/native-udp', 'unit/native-gso', 'unit/native-netdev', 'unit/native-status',
  'unit/native-fastpath', 'unit/native-sdnotify', 'unit/crypto-aead',
  // data path over the addon (TAP/UDP in namespaces) and netns fast-path suites
  'unit/dp-fastpath', 'unit/crypto-tso', 'unit/dp-encrypted-tso', 'netns/fastpath-transfer', 'netns/dp-malformed',
  // (netns/fastpath-udp asserts a 90 % arrival rate of UDP bursts, which a sanitized build on a
  // loaded machine does not reach: run it explicitly, `node test/fuzz/asan.js netns/fastpath-udp`)
];

function clang() {
  for (const c of ['clang', 'clang-14', 'clang-15', 'clang-16']) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (!r.error && r.status === 0) return c;
  }
  return null;
}

/** Node's headers: next to the node binary (Debian: /usr/include/node), else node-gyp's cache. */
function nodeInclude() {
  const cands = [path.join(path.dirname(process.execPath), '..', 'include', 'node'),
    path.join(os.homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node')];
  const d = cands.find((c) => fs.existsSync(path.join(c, 'node_api.h')));
  if (!d) throw new Error(`node_api.h not found (tried ${cands.join(', ')})`);
  return d;
}

/** The addon's sources, as binding.gyp lists them. */
function sources() {
  const gyp = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8');
  const list = [...gyp.matchAll(/"(native\/[A-Za-z0-9_]+\.c)"/g)].map((m) => path.join(ROOT, m[1]));
  if (list.length < 5) throw new Error('binding.gyp: no sources found');
  return list;
}

function main() {
  const cc = clang();
  if (!cc) {
    process.stderr.write('test:asan: clang is not installed (Debian: apt-get install clang libclang-rt-14-dev)\n');
    return 3;
  }
  const runtime = spawnSync(cc, ['-print-file-name=libclang_rt.asan-x86_64.so'], { encoding: 'utf8' }).stdout.trim();
  if (!runtime || !fs.existsSync(runtime)) {
    process.stderr.write(`test:asan: the ASan runtime (${runtime || 'libclang_rt.asan-x86_64.so'}) is missing: apt-get install libclang-rt-14-dev\n`);
    return 3;
  }
  fs.mkdirSync(OUT, { recursive: true });
  const addon = path.join(OUT, 'vxmesh.node');
  const args = ['-g', '-O1', '-fno-omit-frame-pointer', '-fsanitize=address,undefined', '-fno-sanitize-recover=undefined',
    '-shared-libsan', '-fPIC', '-shared', '-std=gnu11', '-Wall', '-Wno-unused-parameter', '-DNAPI_VERSION=8',
    '-DNODE_GYP_MODULE_NAME=vxmesh', `-I${nodeInclude()}`, ...sources(), '-o', addon];
  process.stdout.write(`test:asan: building ${path.relative(ROOT, addon)} with ${cc} -fsanitize=address,undefined\n`);
  const b = spawnSync(cc, args, { encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'] });
  if (b.status !== 0) return 1;
  const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-asan-'));
  const env = {
    ...process.env,
    VXMESH_ADDON: addon,
    LD_PRELOAD: runtime,
    ASAN_OPTIONS: `detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:log_path=${logs}/asan:log_exe_name=1`,
    UBSAN_OPTIONS: `print_stacktrace=1:halt_on_error=1:log_path=${logs}/ubsan`,
  };
  // The sanitized addon must be the one loaded.
  const probe = spawnSync(process.execPath, ['-e', `const a = require(${JSON.stringify(addon)}); process.stdout.write(String(typeof a.udpOpen))`], { env, encoding: 'utf8' });
  if (probe.stdout !== 'function') {
    process.stderr.write(`test:asan: cannot load ${addon} under the ASan runtime:\n${probe.stderr}\n`);
    return 1;
  }
  const suites = process.argv.slice(2).length ? process.argv.slice(2) : DEFAULT_SUITES;
  process.stdout.write(`test:asan: running ${suites.join(' ')} (reports in ${logs})\n`);
  const t = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'run-tests.js'), ...suites], { env, stdio: 'inherit' });
  const reports = fs.readdirSync(logs);
  for (const f of reports) {
    process.stdout.write(`\n==== sanitizer report ${f}\n${fs.readFileSync(path.join(logs, f), 'utf8')}\n`);
  }
  process.stdout.write(`test:asan: ${reports.length} sanitizer report(s); tests exited ${t.status}\n`);
  fs.rmSync(logs, { recursive: true, force: true });
  return t.status === 0 && reports.length === 0 ? 0 : 1;
}

process.exitCode = main();
