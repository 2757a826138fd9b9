#!/usr/bin/env node
'use strict';
// Set-up step of `npm test` (its `pretest` script): runs BEFORE any test starts. It checks the
// Debian packages of scripts/test-deps.js and
//  - as root: installs the missing ones with apt-get, saying which and why, and fails clearly when
//    it cannot (tests never install anything themselves);
//  - as another user: lists what is missing and which tests will skip for it, then lets the run go
//    on (run-tests.js prints the skipped tests and their reasons at the end).
// Usage: node scripts/test-setup.js [--for GROUP ...] [--check]   (default group: test; --check
// never installs). VXMESH_NO_INSTALL=1 is the same as --check.
const { spawnSync } = require('node:child_process');
const { PACKAGES } = require('./test-deps');

const args = process.argv.slice(2);
const groups = [];
let checkOnly = process.env.VXMESH_NO_INSTALL === '1';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--for') groups.push(args[++i]);
  else if (args[i] === '--check') checkOnly = true;
  else {
    console.error(`test-setup: unknown argument ${args[i]}\nusage: node scripts/test-setup.js [--for GROUP ...] [--check]`);
    process.exit(2);
  }
}
if (groups.length === 0) groups.push('test');
const wanted = PACKAGES.filter((p) => p.for.some((g) => groups.includes(g)));

function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
const haveDpkg = onPath('dpkg-query');
function installed(p) {
  if (haveDpkg) {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', p.pkg], { encoding: 'utf8' });
    if (r.status === 0 && /install ok installed/.test(r.stdout)) return p.cmds.every(onPath) || !p.cmds.length;
  }
  return p.cmds.length > 0 && p.cmds.every(onPath);
}

const missing = wanted.filter((p) => !installed(p));
if (missing.length === 0) {
  console.log(`test-setup: all ${wanted.length} required Debian packages are present (${groups.join(', ')})`);
  process.exit(0);
}
const list = missing.map((p) => `  ${p.pkg.padEnd(16)} ${p.why}`).join('\n');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot || checkOnly) {
  console.log(`test-setup: missing Debian packages (the tests that need them will be skipped):\n${list}\n` +
    `test-setup: as root, \`npm test\` installs them; or: apt-get install ${missing.map((p) => p.pkg).join(' ')}`);
  process.exit(0);
}
if (!onPath('apt-get')) {
  console.error(`test-setup: these packages are missing and there is no apt-get to install them:\n${list}\ninstall them, then run npm test again`);
  process.exit(1);
}
console.log(`test-setup: installing ${missing.length} missing Debian package(s) with apt-get:\n${list}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const names = missing.map((p) => p.pkg);
function aptInstall() {
  return spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], { env, stdio: ['ignore', 'inherit', 'inherit'], timeout: 1_800_000 });
}
let r = aptInstall();
if (r.status !== 0) {
  console.log('test-setup: apt-get install failed; refreshing the package lists (apt-get update) and retrying');
  spawnSync('apt-get', ['update', '-qq'], { env, stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 });
  r = aptInstall();
}
const still = missing.filter((p) => !installed(p));
if (r.status !== 0 || still.length) {
  console.error(`test-setup: FAILED to install: ${(still.length ? still : missing).map((p) => p.pkg).join(' ')} ` +
    `(apt-get exit ${r.status}${r.error ? `, ${r.error.message}` : ''}). Fix the package sources or install them by hand, then run npm test again.`);
  process.exit(1);
}
console.log(`test-setup: installed ${names.join(' ')}`);
