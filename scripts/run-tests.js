#!/usr/bin/env node
'use strict';
// Runs every compiled test file (dist/test/**/*.test.js) with node:test, one file at a time
// (netns tests build many namespaces; the machines have 2 cores). A test that runs longer than
// VXMESH_TEST_TIMEOUT_MS (default 10 minutes) fails instead of hanging the run.
// Usage: node scripts/run-tests.js [substring-filter ...]
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', 'dist', 'test');
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
const timeout = Number(process.env.VXMESH_TEST_TIMEOUT_MS) || 600000;
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', '--test-concurrency=1', `--test-timeout=${timeout}`, ...chosen], { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
