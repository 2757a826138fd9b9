'use strict';
// Snapshots of what a test run could leave behind on the machine (scripts/run-tests.js compares
// one taken before the run with one taken after it):
//  - network namespaces (`ip netns list`);
//  - TAP, bridge and veth links in the root namespace;
//  - processes carrying the run's tag (VXMESH_TEST_RUN=<id> in their environment: everything the
//    run started inherits it, also what was re-parented to init after its parent died);
//  - the run's own temporary directory (TMPDIR of the run: must be empty at the end), new top-level
//    entries of /tmp named like vxmesh's, and files in the repository outside dist/, build/ and
//    node_modules/ (`git status`).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 ? r.stdout : null;
}

function namespaces() {
  const out = sh('ip', ['netns', 'list']);
  if (out === null) return [];
  return out.split('\n').map((l) => l.split(' ')[0]).filter(Boolean).sort();
}

function rootLinks() {
  const out = sh('ip', ['-d', '-o', 'link', 'show']);
  if (out === null) return [];
  const links = [];
  for (const line of out.split('\n')) {
    const m = /^\d+: ([^:@]+)[@:]/.exec(line);
    if (!m) continue;
    const kind = /\\\s+tun type (tap|tun) /.test(line) ? 'tun/tap'
      : /\\\s+bridge forward_delay /.test(line) ? 'bridge'
        : /\\\s+veth /.test(line) ? 'veth' : null;
    if (kind) links.push(`${m[1]} (${kind})`);
  }
  return links.sort();
}

function taggedProcesses(runId) {
  const needle = `VXMESH_TEST_RUN=${runId}\0`;
  const out = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let env;
    try {
      env = fs.readFileSync(`/proc/${e}/environ`, 'latin1');
    } catch {
      continue;
    }
    if (!`${env}\0`.includes(needle)) continue;
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').slice(0, 200);
    } catch { /* gone */ }
    out.push({ pid: Number(e), cmd });
  }
  return out;
}

function tmpEntries() {
  try {
    return fs.readdirSync('/tmp').filter((n) => /^vx|vxmesh/i.test(n)).sort();
  } catch {
    return [];
  }
}

function listTree(dir, limit = 50) {
  const out = [];
  (function walk(d) {
    let es;
    try {
      es = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of es) {
      if (out.length >= limit) return;
      const p = path.join(d, e.name);
      out.push(p + (e.isDirectory() ? '/' : ''));
      if (e.isDirectory()) walk(p);
    }
  })(dir);
  return out;
}

function repoFiles(repo) {
  const out = sh('git', ['-C', repo, 'status', '--porcelain', '--ignored', '--untracked-files=all', '--', '.', ':!dist', ':!build', ':!node_modules']);
  if (out === null) return null;
  return out.split('\n').filter(Boolean).sort();
}

function snapshot(opts) {
  return {
    namespaces: namespaces(),
    links: rootLinks(),
    tmp: tmpEntries(),
    repo: repoFiles(opts.repo),
  };
}

function added(before, after) {
  const b = new Set(before);
  return after.filter((x) => !b.has(x));
}

/** What is in `after` but not in `before`, plus the run's tagged processes and temp dir content. */
function leaks(before, opts) {
  const after = snapshot(opts);
  const out = {
    namespaces: added(before.namespaces, after.namespaces),
    links: added(before.links, after.links),
    tmp: added(before.tmp, after.tmp),
    repo: before.repo && after.repo ? added(before.repo, after.repo) : [],
    processes: taggedProcesses(opts.runId).map((p) => `${p.pid} ${p.cmd}`),
    tmpdir: listTree(opts.tmpdir),
  };
  return out;
}

module.exports = { snapshot, leaks, taggedProcesses };
