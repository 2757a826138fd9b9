// deploy/: the systemd unit (systemd-analyze verify + security score), Prometheus config and alert
// rules (promtool check/test), the Grafana dashboard's queries, docs coverage, install/uninstall.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PEER_DROPS_FAMILY } from '../../src/capture/metrics';
import { VxmeshMetrics } from '../../src/metrics/registry';
import { ObserveExtension } from '../../src/observe/extension';
import { nullLogger } from '../../src/log';
import { run, toolsSkip } from './ops-tools';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const DEPLOY = path.join(ROOT, 'deploy');
const UNIT = path.join(DEPLOY, 'vxmesh.service');

function tmpdir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-ops-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function unitDirectives(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('[')) continue;
    const i = line.indexOf('=');
    const k = line.slice(0, i);
    m.set(k, [...(m.get(k) ?? []), line.slice(i + 1)]);
  }
  return m;
}

/** The unit with its program paths pointed at an existing executable (verify checks they exist). */
function verifiableUnit(dir: string, transform: (s: string) => string = (s) => s): string {
  const exe = path.join(dir, 'vxmesh');
  fs.writeFileSync(exe, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const file = path.join(dir, 'vxmesh.service');
  fs.writeFileSync(file, transform(fs.readFileSync(UNIT, 'utf8').replaceAll('/usr/bin/node /opt/vxmesh/bin/vxmesh', exe)));
  return file;
}

test('unit declares the required service protocol, identity and hardening', () => {
  const d = unitDirectives(fs.readFileSync(UNIT, 'utf8'));
  const one = (k: string) => { const v = d.get(k); assert.ok(v, `${k} missing`); return v[v.length - 1]; };
  assert.equal(one('Type'), 'notify');
  assert.equal(one('NotifyAccess'), 'main');
  assert.match(one('WatchdogSec'), /^\d+s$/);
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('ExecReload'), '/usr/bin/node /opt/vxmesh/bin/vxmesh reload --config /etc/vxmesh/vxmesh.yaml', 'waits for the verdict: a refused reload fails systemctl reload');
  for (const k of ['ExecStartPre', 'ExecStart', 'ExecReload']) assert.match(one(k), /^\/usr\/bin\/node \/opt\/vxmesh\/bin\/vxmesh /, `${k}: an absolute node (install.sh writes the one it checked), not env`);
  assert.equal(one('StateDirectory'), 'vxmesh', 'bridge ownership file under /var/lib/vxmesh');
  assert.equal(one('User'), 'vxmesh');
  assert.equal(one('AmbientCapabilities'), 'CAP_NET_ADMIN');
  assert.equal(one('CapabilityBoundingSet'), 'CAP_NET_ADMIN');
  assert.equal(one('DeviceAllow'), '/dev/net/tun rw');
  assert.equal(one('DevicePolicy'), 'closed');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(d.has('MemoryDenyWriteExecute'), false, 'V8 needs writable code pages');
  assert.equal(d.has('PrivateDevices'), false, 'PrivateDevices would hide /dev/net/tun');
});

test('systemd-analyze verify passes cleanly, and flags a broken variant', { skip: toolsSkip('systemd-analyze') }, (t) => {
  const dir = tmpdir(t);
  const good = run('systemd-analyze', ['verify', verifiableUnit(dir)]);
  assert.equal(good.status, 0, good.stderr);
  assert.equal((good.stdout + good.stderr).trim(), '', 'no warnings');
  // Control: verify reports a misspelt key (it exits 0 on warnings, so the test reads its output).
  const badDir = path.join(dir, 'bad');
  fs.mkdirSync(badDir);
  const bad = run('systemd-analyze', ['verify', verifiableUnit(badDir, (s) => s.replace('\nUser=vxmesh', '\nUsr=vxmesh'))]);
  assert.match(bad.stdout + bad.stderr, /Unknown key 'Usr'/);
});

test('systemd-analyze security rates the unit ≤ 3.0', { skip: toolsSkip('systemd-analyze') }, () => {
  const r = run('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT]);
  const m = /Overall exposure level for vxmesh\.service: (\d+(?:\.\d+)?)/.exec(r.stdout + r.stderr);
  assert.ok(m, `no exposure level in output:\n${r.stdout}${r.stderr}`);
  const score = Number(m[1]);
  assert.ok(score <= 3.0, `exposure ${score} > 3.0`);
  t_log(`systemd-analyze security exposure: ${score}`);
  const th = run('systemd-analyze', ['security', '--offline=true', '--threshold=30', '--no-pager', UNIT]);
  assert.equal(th.status, 0, 'threshold 3.0 accepted');
});

function t_log(s: string): void {
  process.stdout.write(`# ${s}\n`);
}

test('promtool accepts the scrape config and alert rules, and the alert unit tests pass', { skip: toolsSkip('promtool') }, () => {
  const rules = run('promtool', ['check', 'rules', path.join(DEPLOY, 'prometheus', 'vxmesh-alerts.yml')]);
  assert.equal(rules.status, 0, rules.stdout + rules.stderr);
  const count = (fs.readFileSync(path.join(DEPLOY, 'prometheus', 'vxmesh-alerts.yml'), 'utf8').match(/^\s*- (alert|record):/gm) ?? []).length;
  assert.ok(count >= 17, `${count} rules in the file`);
  assert.match(rules.stdout, new RegExp(`SUCCESS: ${count} rules found`));
  const cfg = run('promtool', ['check', 'config', 'prometheus.yml'], { cwd: path.join(DEPLOY, 'prometheus') });
  assert.equal(cfg.status, 0, cfg.stdout + cfg.stderr);
  const unit = run('promtool', ['test', 'rules', 'vxmesh-alerts.test.yml'], { cwd: path.join(DEPLOY, 'prometheus') });
  assert.equal(unit.status, 0, unit.stdout + unit.stderr);
});

test('every alert rule has a promtool test case in which it fires', () => {
  const rules = fs.readFileSync(path.join(DEPLOY, 'prometheus', 'vxmesh-alerts.yml'), 'utf8');
  const tests = fs.readFileSync(path.join(DEPLOY, 'prometheus', 'vxmesh-alerts.test.yml'), 'utf8');
  const alerts = [...rules.matchAll(/^\s*- alert: (\w+)/gm)].map((m) => m[1]);
  // an alertname followed by exp_alerts with at least one expected alert (not `exp_alerts: []`)
  const firing = new Set([...tests.matchAll(/alertname: (\w+)\n\s*exp_alerts:\n\s*- exp_labels/g)].map((m) => m[1]));
  assert.deepEqual(alerts.filter((a) => !firing.has(a)), [], 'alerts without a firing test case');
});

const observeConfig = { networks: [] } as unknown as import('../../src/config/types').Config;

/** All vxmesh_ families the registry defines (with a histogram's suffixed series). */
async function knownSeriesNames(): Promise<Set<string>> {
  const m = new VxmeshMetrics({ defaultMetrics: true });
  // families registered by extensions into the same registry (src/observe)
  new ObserveExtension(observeConfig, nullLogger).connect({ gossip: null, registry: m.registry });
  const names = new Set<string>();
  for (const metric of m.registry.getMetricsAsArray()) {
    const name = (metric as unknown as { name: string }).name;
    names.add(name);
    if ((metric as unknown as { type: string }).type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
  }
  m.stop();
  names.add(PEER_DROPS_FAMILY); // registered in the same registry by the capture extension (src/capture)
  return names;
}

function referencedMetrics(expr: string): string[] {
  return [...expr.matchAll(/\b((?:vxmesh|process|nodejs)_[a-z0-9_]+)/g)].map((x) => x[1]);
}

test('alert rules and dashboard only use metrics that exist', async () => {
  const known = await knownSeriesNames();
  const texts = [
    fs.readFileSync(path.join(DEPLOY, 'prometheus', 'vxmesh-alerts.yml'), 'utf8').split('\n').filter((l) => !/^\s*(#|summary|description)/.test(l)).join('\n'),
    ...dashboardExprs(),
  ];
  const used = new Set(texts.flatMap(referencedMetrics));
  assert.ok(used.size > 20, `only ${used.size} metrics referenced`);
  for (const name of used) assert.ok(known.has(name), `${name} is used but not exported`);
});

function dashboardExprs(): string[] {
  const dash = JSON.parse(fs.readFileSync(path.join(DEPLOY, 'grafana', 'vxmesh-dashboard.json'), 'utf8'));
  const out: string[] = [];
  for (const p of dash.panels) for (const t of p.targets ?? []) out.push(t.expr);
  return out;
}

test('every dashboard query is valid PromQL (checked by promtool as recording rules)', { skip: toolsSkip('promtool') }, (t) => {
  const dash = JSON.parse(fs.readFileSync(path.join(DEPLOY, 'grafana', 'vxmesh-dashboard.json'), 'utf8'));
  assert.equal(dash.uid, 'vxmesh-overview');
  const exprs = dashboardExprs();
  assert.ok(exprs.length >= 25);
  const dir = tmpdir(t);
  const file = path.join(dir, 'dash-rules.yml');
  const rules = exprs.map((e, i) => {
    const q = e.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*').replaceAll('$network', '.*').replaceAll('$job', 'vxmesh');
    return `      - record: dashboard:expr${i}\n        expr: ${JSON.stringify(q)}`;
  });
  fs.writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
  const r = run('promtool', ['check', 'rules', file]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`SUCCESS: ${exprs.length} rules found`));
});

test('docs/metrics.md documents every vxmesh_ metric family', async () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'metrics.md'), 'utf8');
  const m = new VxmeshMetrics({ defaultMetrics: false });
  const names = m.registry.getMetricsAsArray().map((x) => (x as unknown as { name: string }).name);
  m.stop();
  assert.ok(names.length >= 40, `${names.length} families`);
  for (const n of names) {
    assert.ok(n.startsWith('vxmesh_'), `${n} lacks the vxmesh_ prefix`);
    assert.ok(doc.includes('`' + n + '`'), `${n} is not documented in docs/metrics.md`);
  }
});

test('install.sh / uninstall.sh lay out and remove user, directories, unit and config (DESTDIR)', { skip: process.getuid?.() !== 0 ? 'needs root (chown)' : false }, (t) => {
  const dir = tmpdir(t);
  // A built source tree in miniature: the scripts only copy it.
  const src = path.join(dir, 'src');
  for (const f of ['package.json', 'README.md', 'bin/vxmesh', 'dist/src/cli/main.js', 'build/Release/vxmesh.node', 'node_modules/x/index.js']) {
    fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
    fs.writeFileSync(path.join(src, f), f === 'bin/vxmesh' ? '#!/bin/sh\n' : '{}\n', { mode: f === 'bin/vxmesh' ? 0o755 : 0o644 });
  }
  fs.mkdirSync(path.join(src, 'deploy'));
  for (const f of ['install.sh', 'uninstall.sh', 'vxmesh.service', 'vxmesh.example.yaml']) fs.copyFileSync(path.join(DEPLOY, f), path.join(src, 'deploy', f));
  const dest = path.join(dir, 'root');
  fs.mkdirSync(dest);
  const env = { ...process.env, DESTDIR: dest };

  const r = run('sh', [path.join(src, 'deploy', 'install.sh')], { env });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const passwd = fs.readFileSync(path.join(dest, 'etc/passwd'), 'utf8');
  const user = passwd.split('\n').find((l) => l.startsWith('vxmesh:'));
  assert.ok(user, 'vxmesh user created');
  const [, , uid, gid, , home, shell] = user.split(':');
  assert.ok(Number(uid) < 1000, 'system uid');
  assert.equal(home, '/var/lib/vxmesh');
  assert.match(shell, /nologin|false/);
  const group = fs.readFileSync(path.join(dest, 'etc/group'), 'utf8');
  assert.ok(group.split('\n').some((l) => l.startsWith(`vxmesh:x:${gid}:`)), 'vxmesh group');

  const etc = fs.statSync(path.join(dest, 'etc/vxmesh'));
  assert.equal(etc.mode & 0o777, 0o750);
  assert.equal(etc.gid, Number(gid));
  const cfg = path.join(dest, 'etc/vxmesh/vxmesh.yaml');
  assert.equal(fs.statSync(cfg).mode & 0o777, 0o640);
  assert.equal(fs.readFileSync(cfg, 'utf8'), fs.readFileSync(path.join(DEPLOY, 'vxmesh.example.yaml'), 'utf8'));
  assert.equal(fs.readlinkSync(path.join(dest, 'usr/local/bin/vxmesh')), '/opt/vxmesh/bin/vxmesh');
  assert.ok(fs.existsSync(path.join(dest, 'opt/vxmesh/build/Release/vxmesh.node')));
  assert.ok(fs.existsSync(path.join(dest, 'opt/vxmesh/dist/src/cli/main.js')));
  const nodeBin = fs.realpathSync(run('sh', ['-c', 'command -v node']).stdout.trim());
  assert.equal(fs.readFileSync(path.join(dest, 'etc/systemd/system/vxmesh.service'), 'utf8'), fs.readFileSync(UNIT, 'utf8').replaceAll('/usr/bin/node /opt/vxmesh/', `${nodeBin} /opt/vxmesh/`));
  assert.equal(fs.readFileSync(path.join(dest, 'etc/modules-load.d/vxmesh.conf'), 'utf8'), 'tun\nbridge\n');

  // A second install keeps an edited config and the user.
  fs.writeFileSync(cfg, 'edited\n');
  const again = run('sh', [path.join(src, 'deploy', 'install.sh')], { env });
  assert.equal(again.status, 0, again.stderr);
  assert.equal(fs.readFileSync(cfg, 'utf8'), 'edited\n');
  assert.equal(fs.readFileSync(path.join(dest, 'etc/passwd'), 'utf8').split('\n').filter((l) => l.startsWith('vxmesh:')).length, 1);

  // Uninstall keeps config and user; --purge removes them.
  const un = run('sh', [path.join(src, 'deploy', 'uninstall.sh')], { env });
  assert.equal(un.status, 0, un.stderr);
  assert.ok(!fs.existsSync(path.join(dest, 'opt/vxmesh')));
  assert.ok(!fs.existsSync(path.join(dest, 'etc/systemd/system/vxmesh.service')));
  assert.ok(!fs.existsSync(path.join(dest, 'usr/local/bin/vxmesh')));
  assert.ok(fs.existsSync(cfg));
  const purge = run('sh', [path.join(src, 'deploy', 'uninstall.sh'), '--purge'], { env });
  assert.equal(purge.status, 0, purge.stderr);
  assert.ok(!fs.existsSync(path.join(dest, 'etc/vxmesh')));
  assert.ok(!fs.readFileSync(path.join(dest, 'etc/passwd'), 'utf8').includes('vxmesh:'));
  assert.ok(!fs.readFileSync(path.join(dest, 'etc/group'), 'utf8').includes('vxmesh:'));
});

test('install.sh refuses an unbuilt tree with a clear message', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, (t) => {
  const dir = tmpdir(t);
  fs.mkdirSync(path.join(dir, 'deploy'));
  fs.copyFileSync(path.join(DEPLOY, 'install.sh'), path.join(dir, 'deploy', 'install.sh'));
  const r = run('sh', [path.join(dir, 'deploy', 'install.sh')], { env: { ...process.env, DESTDIR: path.join(dir, 'root') } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /missing .*package\.json: run 'npm install'/);
});

test('the example config installed by install.sh is valid', async () => {
  const { loadConfigFile } = await import('../../src/config/load');
  const c = loadConfigFile(path.join(DEPLOY, 'vxmesh.example.yaml'), { mtuLookup: () => 1500 });
  assert.equal(c.api.listen.host, '127.0.0.1');
  assert.equal(c.api.listen.port, 9469);
  assert.equal(c.networks.length, 1);
});

/** A miniature built tree with one production and one development dependency. */
function miniTree(dir: string): string {
  const src = path.join(dir, 'src');
  const files: Record<string, string> = {
    'package.json': JSON.stringify({ name: 'vxmesh-mini', version: '0.0.0', dependencies: { 'prod-a': '1.0.0' }, devDependencies: { 'dev-b': '1.0.0' } }),
    'node_modules/prod-a/package.json': JSON.stringify({ name: 'prod-a', version: '1.0.0' }),
    'node_modules/prod-a/index.js': '',
    'node_modules/dev-b/package.json': JSON.stringify({ name: 'dev-b', version: '1.0.0' }),
    'bin/vxmesh': '#!/bin/sh\n', 'dist/src/cli/main.js': '', 'build/Release/vxmesh.node': '',
  };
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
    fs.writeFileSync(path.join(src, f), text, { mode: f === 'bin/vxmesh' ? 0o755 : 0o644 });
  }
  fs.mkdirSync(path.join(src, 'deploy'));
  for (const f of ['install.sh', 'uninstall.sh', 'vxmesh.service', 'vxmesh.example.yaml']) fs.copyFileSync(path.join(DEPLOY, f), path.join(src, 'deploy', f));
  return src;
}

/** A stand-in `node` that reports `major` (install.sh asks for process.versions and --version). */
function fakeNode(dir: string, major: number): string {
  const f = path.join(dir, `node${major}`);
  fs.writeFileSync(f, `#!/bin/sh\nif [ "$1" = -p ]; then echo ${major}; else echo v${major}.0.0; fi\n`, { mode: 0o755 });
  return f;
}

test('install.sh (DESTDIR): production dependencies only; the unit runs the checked node by absolute path; Node < 20 refused with where to get 20', { skip: process.getuid?.() !== 0 ? 'needs root (chown)' : false }, (t) => {
  const dir = tmpdir(t);
  const src = miniTree(dir);
  const dest = path.join(dir, 'root');
  fs.mkdirSync(dest);
  const env = { ...process.env, DESTDIR: dest };
  const old = run('sh', [path.join(src, 'deploy', 'install.sh'), '--node', fakeNode(dir, 18)], { env });
  assert.equal(old.status, 1);
  assert.match(old.stderr, /node >= 20 required, .*node18 is v18\.0\.0\. Debian 12 ships Node 18: install Node >= 20 from Debian 13's nodejs package or the upstream tarball/);
  assert.ok(!fs.existsSync(path.join(dest, 'opt')), 'nothing installed');

  const node20 = fakeNode(dir, 20);
  const r = run('sh', [path.join(src, 'deploy', 'install.sh'), '--node', node20], { env });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.ok(fs.existsSync(path.join(dest, 'opt/vxmesh/node_modules/prod-a/index.js')), 'production dependency copied');
  assert.ok(!fs.existsSync(path.join(dest, 'opt/vxmesh/node_modules/dev-b')), 'development dependency left out');
  assert.ok(fs.existsSync(path.join(src, 'node_modules/dev-b')), 'the source tree keeps its dev tools');
  const unit = fs.readFileSync(path.join(dest, 'etc/systemd/system/vxmesh.service'), 'utf8');
  assert.match(unit, new RegExp(`^ExecStart=${node20.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} /opt/vxmesh/bin/vxmesh agent --config /etc/vxmesh/vxmesh.yaml$`, 'm'));
  assert.doesNotMatch(unit, /^Exec.*(\/usr\/bin\/node|env node)/m);
  assert.match(r.stdout, /edit .*vxmesh\.yaml \(the example, installed as a template\): set node/);
});

test('install.sh --enable refuses to start the example config and says what to edit; an edited config passes', { skip: process.getuid?.() !== 0 ? 'needs root (chown)' : false }, (t) => {
  const dir = tmpdir(t);
  const src = miniTree(dir);
  const dest = path.join(dir, 'root');
  fs.mkdirSync(dest);
  const env = { ...process.env, DESTDIR: dest };
  const r = run('sh', [path.join(src, 'deploy', 'install.sh'), '--enable'], { env });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /not enabling vxmesh: .*vxmesh\.yaml is still the example config/);
  assert.match(r.stderr, /set node \(this host's name\), underlay\.address .*networks .*peers/);
  const cfg = path.join(dest, 'etc/vxmesh/vxmesh.yaml');
  assert.equal(fs.readFileSync(cfg, 'utf8'), fs.readFileSync(path.join(DEPLOY, 'vxmesh.example.yaml'), 'utf8'), 'the template is installed');
  fs.appendFileSync(cfg, '# edited for this host\n');
  const ok = run('sh', [path.join(src, 'deploy', 'install.sh'), '--enable'], { env });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.doesNotMatch(ok.stdout + ok.stderr, /still the example/);
});
