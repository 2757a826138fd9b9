/**
 * Issue 6, the unit's privilege model in practice: the agent runs as an unprivileged user (nobody)
 * holding only CAP_NET_ADMIN — ambient, bounding set reduced to it, no_new_privs — as
 * deploy/vxmesh.service gives the `vxmesh` user. It must still create its bridge and TAP, bind the
 * VXLAN port, serve its API, carry traffic between containers on two hosts, record the bridge it
 * created in its state directory, and stop cleanly on SIGTERM (the bridge stays, see issue 19).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { labFor, netnsSkip, startAgents } from '../helpers/lab';
import { agentConfig } from '../../lab/vxmesh';
import { REPO_ROOT } from '../../lab/netns';
import { toolsSkip } from '../unit/ops-tools';

const skip = netnsSkip('setpriv') ?? toolsSkip();
const NOBODY = 65534;

test('agent as an unprivileged user with only CAP_NET_ADMIN (ambient) forwards traffic', { skip, timeout: 120_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  // h1's bridge does not exist yet: the unprivileged agent must create it (h2's agent runs as root).
  const [h1, h2] = lab.hosts;
  fs.chmodSync(lab.dir, 0o755); // the unprivileged agent reads its config from the lab's scratch dir
  const cfg = agentConfig(lab, h1, { networks: [{ name: 'blue', vni: 42, bridge: 'br0' }] });
  const file = path.join(lab.dir, 'agent-h1-nobody.yaml');
  fs.writeFileSync(file, stringify(cfg), { mode: 0o644 });
  // /dev/net/tun is 0666 on a normal host (udev's default rule); a container may have it 0600. So
  // that the test does not depend on that, or change the machine, the agent gets a 0666 TUN node
  // bind-mounted over /dev/net/tun in the private mount namespace `ip netns exec` gives it.
  const tunDir = path.join(lab.dir, 'tun');
  fs.mkdirSync(tunDir);
  // Its state directory (which bridges it created), writable by nobody as StateDirectory= makes it.
  const stateDir = path.join(lab.dir, 'state-nobody');
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
    process.execPath, path.join(REPO_ROOT, 'bin', 'vxmesh'), 'agent', '--config', file, '--state-dir', stateDir,
  ], { name: 'vxmesh@h1 (nobody)', env: { ...process.env, VXMESH_LOG_FORMAT: 'json' } });
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
