/**
 * A real runtime: Debian's podman with `network_backend = "cni"` on two lab hosts, each with its
 * own containers.conf, storage and CNI config directory written by `vxmesh install-cni`; an image
 * imported from a busybox-static root filesystem (no registry). A container started by podman on
 * each host with `--network blue` gets its address from vxmesh (gossip IPAM); they ping each other
 * by those addresses; `podman rm` releases them (the endpoint and its address are gone).
 * Settings from /work/shared/RUNTIMES.md (runc, cgroupfs, file events, nofile limits, nsenter).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateClusterKey } from '../../src/gossip/keyring';
import type { Lab, LabHost } from '../../lab/netns';
import { haveTool } from '../../lab/netns';
import { labFor, netnsSkip } from '../helpers/lab';
import { BIN, endpointAgentConfig, startEndpointAgent, vx } from '../helpers/endpoints';
import { stringify } from 'yaml';

const NET = { name: 'blue', vni: 42, bridge: 'br0', subnet: '198.19.0.0/16', hostBlock: '/26' };

function skip(): string | undefined {
  const s = netnsSkip('nsenter');
  if (s) return s;
  for (const t of ['podman', 'runc', 'conmon']) if (!haveTool(t)) return `${t} is not installed`;
  if (!fs.existsSync('/usr/bin/busybox') && !haveTool('busybox')) return 'busybox-static is not installed';
  return undefined;
}

interface Podman { host: LabHost; dir: string; env: NodeJS.ProcessEnv; base: string[] }

async function podmanFor(lab: Lab, h: LabHost, agentCfgFile: string, short: string): Promise<Podman> {
  const dir = path.join(lab.dir, `podman-${h.name}`);
  const runroot = path.join(short, h.name); // podman wants a runroot of at most 50 characters
  fs.mkdirSync(runroot);
  for (const d of ['root', 'runroot', 'tmp', 'cni', 'cnibin']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.writeFileSync(path.join(dir, 'containers.conf'), [
    '[containers]',
    'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
    '[engine]',
    'runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    `events_logfile_path = "${dir}/events.log"`,
    `tmp_dir = "${dir}/tmp"`,
    '[network]',
    'network_backend = "cni"',
    `network_config_dir = "${dir}/cni"`,
    `cni_plugin_dirs = ["${dir}/cnibin"]`,
    'default_network = "blue"',
    '',
  ].join('\n'));
  const inst = await vx(lab, h, ['install-cni', '--bin-dir', path.join(dir, 'cnibin'), '--conf-dir', path.join(dir, 'cni'), '--config', agentCfgFile]);
  assert.equal(inst.code, 0, inst.stderr);
  return {
    host: h, dir,
    env: { ...process.env, CONTAINERS_CONF: path.join(dir, 'containers.conf'), XDG_RUNTIME_DIR: path.join(dir, 'tmp') },
    base: [`--net=/run/netns/${h.ns}`, 'podman', '--root', path.join(dir, 'root'), '--runroot', runroot, '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs'],
  };
}

async function podman(lab: Lab, p: Podman, args: string[], check = true): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await lab.exec(null, 'nsenter', [...p.base, ...args], { check: false, timeoutMs: 120_000, env: p.env });
  if (check && r.code !== 0) throw new Error(`podman ${args.join(' ')} on ${p.host.name} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r;
}

test('podman (CNI backend) on two hosts: containers get vxmesh addresses, reach each other, podman rm releases them', { skip: skip(), timeout: 420_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const keyFile = lab.writeFile('cluster.key', `${await generateClusterKey()}\n`);
  // a root filesystem from busybox-static → tar
  const rootfs = path.join(lab.dir, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'etc'));
  fs.copyFileSync('/usr/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const app of ['sh', 'ping', 'sleep', 'ip', 'ifconfig', 'cat']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', app));
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  const tar = path.join(lab.dir, 'rootfs.tar');
  await lab.exec(null, 'tar', ['-C', rootfs, '-cf', tar, '.']);

  const short = fs.mkdtempSync('/tmp/vxp-');
  t.after(() => fs.rmSync(short, { recursive: true, force: true }));
  const pods: Podman[] = [];
  const started: { p: Podman; name: string }[] = [];
  try {
  for (const h of lab.hosts) {
    const cfg = endpointAgentConfig(lab, h, [NET], { keyFile });
    await startEndpointAgent(lab, h, cfg);
    const cfgFile = lab.writeFile(`agent-${h.name}.yaml`, stringify(cfg));
    const p = await podmanFor(lab, h, cfgFile, short);
    await podman(lab, p, ['import', tar, 'localhost/bb']);
    pods.push(p);
  }
  const conflist = JSON.parse(fs.readFileSync(path.join(pods[0].dir, 'cni', 'vxmesh-blue.conflist'), 'utf8'));
  assert.deepEqual(conflist.plugins[0], { type: 'vxmesh', network: 'blue', socket: path.join(lab.dir, 'h1.sock') });
  assert.ok(fs.existsSync(path.join(pods[0].dir, 'cnibin', 'vxmesh')));

  const ips: string[] = [];
  for (const [i, p] of pods.entries()) {
    const name = `c${i + 1}`;
    await podman(lab, p, ['run', '-d', '--name', name, '--network', 'blue', '--pull=never', '--cap-add', 'NET_RAW', 'localhost/bb', 'sleep', '600']);
    started.push({ p, name });
    const addr = (await podman(lab, p, ['exec', name, 'ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout;
    const m = /inet (198\.19\.\d+\.\d+)\/16/.exec(addr);
    assert.ok(m, `container ${name} has a vxmesh address: ${addr}`);
    ips.push(m![1]);
  }
  assert.notEqual(ips[0], ips[1]);
  const listed = await vx(lab, lab.hosts[0], ['endpoints', '--json']);
  const eps = (listed.json as { endpoints: { host: string; ips: string[] }[] }).endpoints;
  assert.deepEqual(eps.map((e) => e.ips[0]).sort(), [...ips].sort(), 'vxmesh lists both podman containers');

  for (const [a, b] of [[0, 1], [1, 0]]) {
    const r = await podman(lab, pods[a], ['exec', `c${a + 1}`, 'ping', '-c', '3', '-W', '2', ips[b]], false);
    assert.match(r.stdout, /[1-3] packets received/, `c${a + 1} → c${b + 1} (${ips[b]}): ${r.stdout}${r.stderr}`);
  }

  // podman rm releases the address (CNI DEL)
  await podman(lab, pods[0], ['rm', '-f', '-t', '0', 'c1']);
  started.shift();
  const after = await vx(lab, lab.hosts[0], ['endpoints', '--json']);
  const local = (after.json as { endpoints: { host: string; ips: string[] }[] }).endpoints.filter((e) => e.host === 'h1');
  assert.deepEqual(local, [], 'the endpoint is gone');
  const st = JSON.parse((await lab.exec(lab.hosts[0].ns, process.execPath, [BIN, 'status', '--json'], { check: false })).stdout || '{}');
  assert.equal(st.extensions?.endpoints?.ipam?.networks?.[0]?.allocated, 0, 'its address is released');
  } finally {
    // before the lab goes: containers (their conmon, shm mounts) removed by podman itself
    for (const s of started) await podman(lab, s.p, ['rm', '-f', '-t', '0', s.name], false);
  }
});
