/**
 * Issue 6, the hardening of deploy/vxmesh.service checked against what the agent really does: the
 * agent runs under `strace -f` in a lab host while it starts, carries ping traffic to a second
 * host, serves /metrics, reloads on SIGHUP and stops on SIGTERM; then every system call it made
 * must be allowed by the unit's SystemCallFilter= lines (groups expanded by `systemd-analyze
 * syscall-filter`), and every socket() address family must be in RestrictAddressFamilies=.
 * A call outside the filter would fail with EPERM under systemd — this test finds it first.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { buildTopology, labFor, netnsSkip, startAgents } from '../helpers/lab';
import { agentConfig } from '../../lab/vxmesh';
import { REPO_ROOT } from '../../lab/netns';
import { run, toolsSkip } from '../unit/ops-tools';

const skip = netnsSkip() ?? toolsSkip('strace', 'systemd-analyze');
const UNIT = path.join(REPO_ROOT, 'deploy', 'vxmesh.service');

/** Expands a SystemCallFilter group (or a single call) into system call names. */
function expand(name: string, seen = new Set<string>()): Set<string> {
  const out = new Set<string>();
  if (!name.startsWith('@')) return new Set([name]);
  if (seen.has(name)) return out;
  seen.add(name);
  const r = run('systemd-analyze', ['syscall-filter', '--no-pager', name]);
  assert.equal(r.status, 0, r.stderr);
  for (const line of r.stdout.split('\n').slice(1)) {
    const w = line.replace(/#.*/, '').trim();
    if (!w) continue;
    for (const x of expand(w, seen)) out.add(x);
  }
  return out;
}

/** The set of calls the unit allows: the allow-list lines minus the `~` deny-list lines. */
function allowedSyscalls(): Set<string> {
  const allow = new Set<string>();
  const deny = new Set<string>();
  for (const line of fs.readFileSync(UNIT, 'utf8').split('\n')) {
    const m = /^SystemCallFilter=(~?)(.*)$/.exec(line.trim());
    if (!m) continue;
    const target = m[1] ? deny : allow;
    for (const w of m[2].trim().split(/\s+/)) for (const x of expand(w)) target.add(x);
  }
  for (const d of deny) allow.delete(d);
  return allow;
}

function allowedFamilies(): Set<string> {
  const line = fs.readFileSync(UNIT, 'utf8').split('\n').find((l) => l.startsWith('RestrictAddressFamilies='));
  assert.ok(line);
  return new Set(line.slice('RestrictAddressFamilies='.length).trim().split(/\s+/));
}

test('every system call and socket family the agent uses is allowed by the unit', { skip, timeout: 180_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const topo = await buildTopology(lab, { perHost: 1 });
  const [h1, h2] = lab.hosts;
  await startAgents(lab, [{ name: 'blue', vni: 42, bridge: 'br0' }], {}, [h2]);

  const cfg = agentConfig(lab, h1, { networks: [{ name: 'blue', vni: 42, bridge: 'br0' }] });
  const file = lab.writeFile('agent-h1.yaml', stringify(cfg));
  const trace = path.join(lab.dir, 'strace.txt');
  const tracer = lab.spawn(h1.ns, 'strace', ['-f', '-qq', '-o', trace, process.execPath, path.join(REPO_ROOT, 'bin', 'vxmesh'), 'agent', '--config', file, '--state-dir', path.join(lab.dir, 'state-h1')], {
    name: 'strace vxmesh', env: { ...process.env, VXMESH_LOG_FORMAT: 'json' },
  });
  // Signals go to the agent by its own PID (from its log records), never to strace (which would
  // detach and leave it running).
  await lab.waitFor('agent ready', () => {
    if (!tracer.running()) throw new Error(`strace exited:\n${tracer.output()}`);
    return /"msg":"agent ready"/.test(tracer.output());
  }, { timeoutMs: 30_000, intervalMs: 100 });
  const agentPid = Number(/"pid":(\d+)/.exec(tracer.output())![1]);
  t.after(() => { try { process.kill(agentPid, 'SIGKILL'); } catch { /* exited */ } });

  const ping = await lab.ping(topo.containers[0][0], topo.containers[1][0].address, { count: 3, intervalS: 0.2 });
  assert.equal(ping.received, 3, ping.output);
  for (const p of ['/metrics', '/healthz', '/readyz', '/v1/status']) {
    const r = await lab.exec(h1.ns, process.execPath, ['-e', `fetch('http://127.0.0.1:9469${p}').then(r=>r.text()).then(()=>{},e=>{console.error(e);process.exit(1)})`]);
    assert.equal(r.code, 0);
  }
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(agentPid, sig);
    } catch (e) {
      throw new Error(`${sig} to agent ${agentPid}: ${(e as Error).message}\n${tracer.output()}`);
    }
  };
  signal('SIGHUP');
  await lab.waitFor('reload done', () => /reload: config applied/.test(tracer.output()), { timeoutMs: 15_000, intervalMs: 50 });
  signal('SIGTERM');
  const exit = await Promise.race([tracer.exited, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
  assert.ok(exit, 'agent stopped');
  assert.match(tracer.output(), /"msg":"agent stopped"/);

  const text = fs.readFileSync(trace, 'utf8');
  const used = new Map<string, number>();
  const families = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^\d+\s+([a-z0-9_]+)\(/.exec(line);
    if (!m) continue;
    used.set(m[1], (used.get(m[1]) ?? 0) + 1);
    const s = /^\d+\s+socket\((AF_[A-Z0-9]+)/.exec(line);
    if (s) families.add(s[1]);
  }
  assert.ok(used.size > 30, `only ${used.size} distinct calls traced`);
  const allowed = allowedSyscalls();
  const denied = [...used.keys()].filter((s) => !allowed.has(s)).sort();
  assert.deepEqual(denied, [], `calls outside SystemCallFilter=: ${denied.map((s) => `${s}×${used.get(s)}`).join(', ')}`);
  const okFamilies = allowedFamilies();
  const badFamilies = [...families].filter((f) => !okFamilies.has(f));
  assert.deepEqual(badFamilies, [], `socket families outside RestrictAddressFamilies=: ${badFamilies.join(', ')}`);
  assert.ok(families.has('AF_INET'));
  void h2;
});
