#!/usr/bin/env node
'use strict';
/*
 * Builds and runs the libFuzzer harnesses of the native parsers (test/fuzz/fuzz_*.c, clang with
 * -fsanitize=fuzzer,address,undefined) and prints, per target, executions, corpus size and crashes.
 *
 *   node test/fuzz/fuzz.js [--seconds N] [--out DIR] [--json] [target ...]
 *
 * Targets: vnet_tso (virtio header + TSO segmentation), coalesce (TCP/UDP coalescing planner),
 * aead (AEAD open, seal round trip, seal of TSO segments), gro_split (UDP GRO receive buffers cut
 * into one datagram per slot), gro_runs (the same with runs: a buffer's run of one inner TCP flow
 * merged into one descriptor), mac1 (batched mac1 check of handshake messages). --seconds (default VXMESH_FUZZ_SECONDS
 * or 60) per target; --out (default build/fuzz) holds binaries, the growing corpora and crash
 * artifacts. Inputs under test/fuzz/regressions/<target>/ (earlier crashes) run first and must pass.
 * Exit 0 when every target ran without a crash; 1 on a crash or build failure; 3 without clang.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const NATIVE = path.join(ROOT, 'native');
const FUZZ = path.join(ROOT, 'test', 'fuzz');

const TARGETS = {
  vnet_tso: { main: 'fuzz_vnet_tso.c', sources: ['gso.c', 'tap.c'], libs: [] },
  coalesce: { main: 'fuzz_coalesce.c', sources: ['gso.c', 'tap.c'], libs: [] },
  aead: { main: 'fuzz_aead.c', sources: ['aead.c', 'gso.c'], libs: ['-lcrypto'] },
  gro_split: { main: 'fuzz_gro_split.c', sources: ['udp.c', 'udp_split.c', 'gso.c'], libs: [] },
  gro_runs: { main: 'fuzz_gro_runs.c', sources: ['udp.c', 'udp_split.c', 'gso.c'], libs: [] },
  mac1: { main: 'fuzz_mac1.c', sources: ['mac1.c'], libs: [] },
};

function findClang() {
  for (const c of ['clang', 'clang-14', 'clang-15', 'clang-16']) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (!r.error && r.status === 0) return c;
  }
  return null;
}

function parseArgs(argv) {
  const o = { seconds: Number(process.env.VXMESH_FUZZ_SECONDS) || 60, out: path.join(ROOT, 'build', 'fuzz'), json: false, targets: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seconds') o.seconds = Number(argv[++i]);
    else if (a === '--out') o.out = path.resolve(argv[++i]);
    else if (a === '--json') o.json = true;
    else if (TARGETS[a]) o.targets.push(a);
    else throw new Error(`unknown argument ${a} (targets: ${Object.keys(TARGETS).join(', ')})`);
  }
  if (!(o.seconds > 0)) throw new Error('--seconds must be > 0');
  if (o.targets.length === 0) o.targets = Object.keys(TARGETS);
  return o;
}

function dirStats(dir) {
  let files = 0, bytes = 0;
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    const st = fs.statSync(path.join(dir, f));
    if (st.isFile()) { files++; bytes += st.size; }
  }
  return { files, bytes };
}

function build(clang, name, out) {
  const t = TARGETS[name];
  const bin = path.join(out, 'bin', name);
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  const args = ['-g', '-O1', '-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=undefined', '-fno-omit-frame-pointer',
    '-std=gnu11', '-Wall', '-Wno-unused-parameter', `-I${NATIVE}`, `-I${FUZZ}`,
    path.join(FUZZ, t.main), ...t.sources.map((s) => path.join(NATIVE, s)), ...t.libs, '-o', bin];
  const r = spawnSync(clang, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building ${name} failed:\n${clang} ${args.join(' ')}\n${r.stderr}`);
  return bin;
}

function runTarget(bin, name, o) {
  const corpus = path.join(o.out, 'corpus', name);
  const artifacts = path.join(o.out, 'artifacts');
  fs.mkdirSync(corpus, { recursive: true });
  fs.mkdirSync(artifacts, { recursive: true });
  const env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' };
  delete env.LD_PRELOAD; // the harnesses link their own sanitizer runtime (test:asan preloads a shared one)
  // Regressions first: each earlier crash input must now pass.
  const regDir = path.join(FUZZ, 'regressions', name);
  const regs = fs.existsSync(regDir) ? fs.readdirSync(regDir).map((f) => path.join(regDir, f)) : [];
  if (regs.length) {
    const r = spawnSync(bin, regs, { encoding: 'utf8', env, cwd: o.out });
    if (r.status !== 0) return { target: name, regressions: regs.length, crashes: 1, executions: 0, ...dirStats(corpus), error: r.stderr.slice(-3000) };
  }
  const args = [`-max_total_time=${o.seconds}`, '-print_final_stats=1', `-artifact_prefix=${artifacts}${path.sep}${name}-`,
    '-timeout=10', '-rss_limit_mb=2048', corpus];
  const r = spawnSync(bin, args, { encoding: 'utf8', env, cwd: o.out, maxBuffer: 64 << 20, timeout: (o.seconds + 120) * 1000 });
  const err = r.stderr || '';
  const execs = Number((/stat::number_of_executed_units:\s*(\d+)/.exec(err) || [])[1] || 0);
  const crashed = r.status !== 0;
  const res = { target: name, regressions: regs.length, executions: execs, seconds: o.seconds, ...dirStats(corpus), crashes: crashed ? 1 : 0 };
  if (crashed) {
    const art = (/Test unit written to (\S+)/.exec(err) || [])[1];
    res.artifact = art || null;
    res.error = err.split('\n').filter((l) => /ERROR|invariant|runtime error|SUMMARY|#\d+ 0x/.test(l)).slice(0, 30).join('\n') || err.slice(-3000);
  }
  return res;
}

function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    return 2;
  }
  const clang = findClang();
  if (!clang) {
    process.stderr.write('fuzz: clang is not installed (Debian: apt-get install clang libclang-rt-14-dev); the libFuzzer harnesses need it\n');
    return 3;
  }
  const results = [];
  for (const name of o.targets) {
    let bin;
    try {
      bin = build(clang, name, o.out);
    } catch (e) {
      results.push({ target: name, crashes: 0, executions: 0, files: 0, bytes: 0, error: e.message, buildFailed: true });
      continue;
    }
    const r = runTarget(bin, name, o);
    results.push(r);
    if (!o.json) {
      process.stdout.write(`${name.padEnd(9)} ${String(r.executions).padStart(10)} executions in ${o.seconds} s, corpus ${r.files} inputs / ${r.bytes} bytes, ` +
        `${r.regressions} regression inputs, crashes ${r.crashes}${r.artifact ? ` (${r.artifact})` : ''}\n`);
      if (r.error) process.stdout.write(`${r.error}\n`);
    }
  }
  if (o.json) process.stdout.write(JSON.stringify(results) + '\n');
  return results.every((r) => r.crashes === 0 && !r.buildFailed && r.executions > 0) ? 0 : 1;
}

process.exitCode = main();
