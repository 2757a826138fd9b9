/**
 * Issue 6, the unit's privilege model in practice: the agent runs as an unprivileged user (nobody)
 * holding only CAP_NET_ADMIN — ambient, bounding set reduced to it, no_new_privs — as
 * deploy/vxmesh.service gives the `vxmesh` user. It must still create its bridge and TAP, bind the
 * VXLAN port, serve its API, carry traffic between containers on two hosts, record the bridge it
 * created in its state directory, and stop cleanly on SIGTERM (the bridge stays, see issue 19).
 *
 * Issue 17: the unprivileged agent runs from an INSTALLED copy (deploy/install.sh into a staging
 * root whose every path component is 0755, as /opt/vxmesh would be), never from the checkout, which
 * may sit in a directory nobody else can enter (root's 0700 home, a mktemp -d). install.sh refuses a
 * prefix, or a node, that the service user could not reach.
 */

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { labFor, netnsSkip, startAgents } from '../helpers/lab';
import { agentConfig } from '../../lab/vxmesh';
import { REPO_ROOT } from '../../lab/netns';
import { run, toolsSkip } from '../unit/ops-tools';

const skip = netnsSkip('setpriv') ?? toolsSkip('useradd', 'groupadd');
const NOBODY = 65534;

/** Can others (the agent's user, with no supplementary groups) search every directory of `p`? */
function othersCanReach(p: string): string | null {
  const parts = path.resolve(p).split(path.sep).filter(Boolean);
  let cur = '/';
  for (let i = 0; i <= parts.length; i++) {
    const st = fs.statSync(cur);
    if (st.isDirectory() && (st.mode & 0o001) === 0) return cur;
    if (i < parts.length) cur = path.join(cur, parts[i]);
  }
  return null;
}

/** A fresh directory every path component of which others can search (removed after the test). */
function reachableTempDir(t: TestContext, prefix: string): string {
  let base = os.tmpdir();
  if (othersCanReach(base) !== null) base = '/tmp';
  const dir = fs.mkdtempSync(path.join(base, prefix));
  fs.chmodSync(dir, 0o755);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const blocked = othersCanReach(dir);
  if (blocked) throw new Error(`no temporary directory reachable by other users (${blocked} is closed)`);
  return dir;
}

/**
 * Installs vxmesh from this checkout into a staging root (deploy/install.sh, DESTDIR) below a
 * directory all can reach; returns the installed entry point and a node binary the agent's user can
 * run (this one, or a copy in the staging root when it sits somewhere closed, e.g. under /root).
 */
function installForAgent(t: TestContext): { root: string; vxmesh: string; node: string } {
  const root = reachableTempDir(t, 'vxmesh-installed-');
  const r = run('sh', [path.join(REPO_ROOT, 'deploy', 'install.sh'), '--prefix', '/opt/vxmesh'], { env: { ...process.env, DESTDIR: root }, timeoutMs: 120_000 });
  assert.equal(r.status, 0, `install.sh: ${r.stdout}${r.stderr}`);
  const vxmesh = path.join(root, 'opt', 'vxmesh', 'bin', 'vxmesh');
  assert.equal(othersCanReach(vxmesh), null);
  let node = process.execPath;
  if (othersCanReach(node) !== null || (fs.statSync(node).mode & 0o001) === 0) {
    node = path.join(root, 'usr', 'local', 'bin', 'node');
    fs.copyFileSync(process.execPath, node);
    fs.chmodSync(node, 0o755);
  }
  return { root, vxmesh, node };
}

test('agent as an unprivileged user with only CAP_NET_ADMIN (ambient) forwards traffic', { skip, timeout: 120_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  // h1's bridge does not exist yet: the unprivileged agent must create it (h2's agent runs as root).
  const [h1, h2] = lab.hosts;
  // The agent as installed, with its config next to it (both readable by nobody), never the checkout.
  const inst = installForAgent(t);
  const cfg = agentConfig(lab, h1, { networks: [{ name: 'blue', vni: 42, bridge: 'br0' }] });
  const file = path.join(inst.root, 'agent-h1-nobody.yaml');
  fs.writeFileSync(file, stringify(cfg), { mode: 0o644 });
  // /dev/net/tun is 0666 on a normal host (udev's default rule); a container may have it 0600. So
  // that the test does not depend on that, or change the machine, the agent gets a 0666 TUN node
  // bind-mounted over /dev/net/tun in the private mount namespace `ip netns exec` gives it.
  const tunDir = path.join(lab.dir, 'tun');
  fs.mkdirSync(tunDir);
  // Its state directory (which bridges it created), writable by nobody as StateDirectory= makes it.
  const stateDir = path.join(inst.root, 'state-nobody');
  fs.mkdirSync(stateDir);
  fs.chownSync(stateDir, NOBODY, NOBODY);
  const script = [
    'set -e',
    'mount -t tmpfs -o mode=0755 vxmesh-tun "$1"',
    'mknod -m 0666 "$1/tun" c 10 200',
    'mount --bind "$1/tun" /dev/net/tun',
    'shift',
    'exec "$@"',
  ].join('\n');
  const agent = lab.spawn(h1.ns, 'sh', ['-c', script, 'sh', tunDir, 'setpriv',
    `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups',
    '--inh-caps=-all,+net_admin', '--ambient-caps=-all,+net_admin', '--bounding-set=-all,+net_admin', '--no-new-privs',
    inst.node, inst.vxmesh, 'agent', '--config', file, '--state-dir', stateDir,
  ], { name: 'vxmesh@h1 (nobody)', env: { ...process.env, VXMESH_LOG_FORMAT: 'json' }, cwd: '/' });
  await lab.waitFor('the unprivileged agent to be ready', () => {
    if (!agent.running()) throw new Error(`agent exited:\n${agent.output()}`);
    return /"msg":"agent ready"/.test(agent.output());
  }, { timeoutMs: 30_000, intervalMs: 100 });

  // It really is unprivileged: uid nobody, CapEff = CAP_NET_ADMIN only (bit 12).
  const pid = Number(/"pid":(\d+)/.exec(agent.output())![1]);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  assert.match(status, new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`, 'm'));
  assert.match(status, /^CapEff:\s+0000000000001000$/m);
  assert.match(status, /^CapBnd:\s+0000000000001000$/m);
  assert.match(status, /^NoNewPrivs:\s+1$/m);

  assert.ok(await lab.linkExists(h1.ns, 'br0'), 'bridge created by the unprivileged agent');
  const c1 = await lab.addContainer(h1, { bridge: 'br0', address: '198.19.0.11/24' });
  await lab.addBridge(h2, 'br0');
  const c2 = await lab.addContainer(h2, { bridge: 'br0', address: '198.19.0.21/24' });
  const [a2] = await startAgents(lab, [{ name: 'blue', vni: 42, bridge: 'br0' }], {}, [h2]);

  const ping = await lab.ping(c1, c2.address, { count: 3, intervalS: 0.2 });
  assert.equal(ping.received, 3, ping.output);
  const x = await lab.tcpTransfer(c1, c2, { bytes: 256 * 1024 });
  assert.equal(x.receivedSha256, x.sentSha256);

  const metrics = await lab.exec(h1.ns, process.execPath, ['-e', "fetch('http://127.0.0.1:9469/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))"]);
  const m = /^vxmesh_network_rx_delivered_packets_total\{network="blue",vni="42"\} (\d+)$/m.exec(metrics.stdout);
  assert.ok(m && Number(m[1]) > 0, 'traffic counted');

  await lab.stop(agent, { timeoutMs: 10_000 });
  const exit = await agent.exited;
  assert.equal(exit.code, 0, agent.output());
  assert.ok(await lab.linkExists(h1.ns, 'br0'), 'the bridge it created stays (containers stay attached across restarts)');
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(stateDir, 'bridges.json'), 'utf8')).bridges.map((b: { name: string }) => b.name), ['br0'], 'and is recorded as vxmesh\'s');
  await a2.stop();
});

test('install.sh refuses a program path the service user could not reach (--check)', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, (t) => {
  const install = path.join(REPO_ROOT, 'deploy', 'install.sh');
  const closed = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-closed-'));
  t.after(() => fs.rmSync(closed, { recursive: true, force: true }));
  fs.chmodSync(closed, 0o700);

  // --check never installs; the default prefix passes here (/opt is 0755).
  const ok = run('sh', [install, '--check']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /checks passed/);

  const inClosed = run('sh', [install, '--check', '--prefix', path.join(closed, 'vxmesh')]);
  assert.equal(inClosed.status, 1);
  assert.match(inClosed.stderr, new RegExp(`is not reachable by the service user vxmesh: ${closed} is mode 700`));

  const inHome = run('sh', [install, '--check', '--prefix', '/root/vxmesh']);
  assert.equal(inHome.status, 1);
  assert.match(inHome.stderr, /ProtectHome=yes/);

  // Staging root: the program's path below DESTDIR is checked the same way.
  const stage = path.join(closed, 'stage');
  fs.mkdirSync(path.join(stage, 'opt'), { recursive: true, mode: 0o700 });
  fs.chmodSync(path.join(stage, 'opt'), 0o700);
  const staged = run('sh', [install, '--check'], { env: { ...process.env, DESTDIR: stage } });
  assert.equal(staged.status, 1);
  assert.match(staged.stderr, /program directory .*\/opt\/vxmesh is not reachable by the service user vxmesh: .*\/opt is mode 700/);
});
