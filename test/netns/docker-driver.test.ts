/**
 * The real daemon: Debian's dockerd on two lab hosts (own data/exec roots, --iptables=false
 * --ip-masq=false --ip-forward=false --bridge=none, vfs), each run under `nsenter --net` +
 * `unshare -m --propagation private` with a tmpfs on /run and the host's plugin directory
 * bind-mounted at /run/docker/plugins (both only in dockerd's mount namespace), where that host's
 * agent serves `docker.socket` (see shared RUNTIMES.md).
 * An image imported from a busybox-static root filesystem.
 *
 *   `docker network create -d vxmesh --ipam-driver vxmesh --subnet 198.19.0.0/16 blue` on both;
 *   containers on both get vxmesh addresses (gossip IPAM), are vxmesh endpoints, ping across hosts,
 *   a spoofed source address is dropped by the endpoint guard;
 *   `--ip` honoured, an address in use refused with nothing half-made; a podman (CNI) container
 *   on h2 and a Docker one on h1 reach each other; the agent restarted while containers run
 *   (endpoints kept and found again, socket re-created, a new `docker run` works without a new
 *   activation); dockerd restarted while the agent runs (the container comes back, no stale
 *   endpoint); bad input errors shown by the docker CLI; the agent not ready (a TAP's name taken
 *   by another device, network:blue failing) → `docker network create` / `docker run` print the
 *   plugin's 'not ready' error, nothing made, then it recovers; a SIGHUP reload whose config network
 *   clashes with a runtime network Docker uses is refused, nothing changed; `docker rm` + `docker network rm` leave
 *   no vxmesh endpoint, address, device or network map behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { generateClusterKey } from '../../src/gossip/keyring';
import type { Lab, LabHost, LabProcess } from '../../lab/netns';
import { haveTool } from '../../lab/netns';
import type { LabAgent } from '../../lab/vxmesh';
import { labFor, netnsSkip } from '../helpers/lab';
import { endpointAgentConfig, links, startEndpointAgent, vx } from '../helpers/endpoints';

const NET = { name: 'blue', vni: 42, bridge: 'br0', subnet: '198.19.0.0/16', gateway: '198.19.0.1', hostBlock: '/26' };

function skip(): string | undefined {
  const s = netnsSkip('nsenter', 'unshare');
  if (s) return s;
  for (const t of ['dockerd', 'docker', 'containerd', 'runc', 'podman', 'conmon']) if (!haveTool(t)) return `${t} is not installed`;
  if (!fs.existsSync('/usr/bin/busybox')) return 'busybox-static is not installed';
  return undefined;
}

interface Dockerd { host: LabHost; dir: string; sock: string; plugins: string; proc: LabProcess | null }

async function startDockerd(lab: Lab, d: Dockerd): Promise<void> {
  fs.mkdirSync(path.join(d.dir, 'tmp'), { recursive: true });
  // in dockerd's own mount namespace only: a fresh /run (nothing is created on the machine's),
  // with the host's plugin directory at /run/docker/plugins
  const script = `mount -t tmpfs -o mode=0755 vxmesh-test-run /run && mkdir -p /run/docker/plugins && mount --bind ${d.plugins} /run/docker/plugins && exec dockerd --data-root ${d.dir}/data --exec-root ${d.dir}/exec -H unix://${d.sock} --pidfile ${d.dir}/dockerd.pid ` +
    '--iptables=false --ip-masq=false --ip-forward=false --bridge=none --storage-driver vfs --shutdown-timeout 3';
  d.proc = lab.spawn(null, 'nsenter', [`--net=/run/netns/${d.host.ns}`, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script], {
    name: `dockerd@${d.host.name}`, logFile: path.join(d.dir, 'dockerd.log'),
    env: { ...process.env, TMPDIR: path.join(d.dir, 'tmp') }, // containerd's stack dumps stay in d.dir
  });
  const proc = d.proc;
  await lab.waitFor(`dockerd on ${d.host.name}`, async () => {
    if (!proc.running()) throw new Error(`dockerd on ${d.host.name} exited:\n${proc.output()}`);
    return (await docker(lab, d, ['info', '--format', '{{.ServerVersion}}'], false)).code === 0;
  }, { timeoutMs: 60_000, intervalMs: 200 });
}

async function stopDockerd(lab: Lab, d: Dockerd): Promise<void> {
  if (!d.proc) return;
  await lab.stop(d.proc, { timeoutMs: 20_000 });
  d.proc = null;
  // its managed containerd, if it outlived a killed dockerd (by PID from its pidfile)
  const pidfile = path.join(d.dir, 'exec', 'containerd', 'containerd.pid');
  try {
    const pid = Number(fs.readFileSync(pidfile, 'utf8').trim());
    if (pid > 1 && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(d.dir)) process.kill(pid, 'SIGKILL');
  } catch { /* gone */ }
}

async function docker(lab: Lab, d: Dockerd, args: string[], check = true): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await lab.exec(null, 'docker', ['-H', `unix://${d.sock}`, ...args], { check: false, timeoutMs: 120_000, env: { ...process.env, DOCKER_CONFIG: path.join(d.dir, 'cli') } });
  if (check && r.code !== 0) throw new Error(`docker ${args.join(' ')} on ${d.host.name} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r;
}

async function addrOf(lab: Lab, d: Dockerd, name: string): Promise<string> {
  const out = (await docker(lab, d, ['exec', name, 'ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout;
  const m = /inet (198\.19\.\d+\.\d+)\/16/.exec(out);
  assert.ok(m, `container ${name} on ${d.host.name} has a vxmesh address: ${out}`);
  return m![1];
}

interface Ep { host: string; name: string; ips: string[]; local: boolean }

async function endpoints(lab: Lab, h: LabHost): Promise<Ep[]> {
  const r = await vx(lab, h, ['endpoints', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (r.json as { endpoints: Ep[] }).endpoints;
}

/** GET /v1/status of the host's agent (retried: a loaded machine can time a request out). */
async function status(agent: LabAgent): Promise<any> {
  let last: unknown;
  for (let i = 0; i < 5; i++) {
    try {
      const st = (await agent.status()) as any;
      if (st?.extensions?.endpoints) return st;
      last = new Error(`no endpoints section: ${JSON.stringify(st).slice(0, 200)}`);
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw last;
}

/** Devices vxmesh makes for endpoints in the host namespace (vx… host ends, vp… peers). */
async function endpointDevices(lab: Lab, h: LabHost): Promise<string[]> {
  return (await links(lab, h.ns)).filter((l) => /^v[xp][0-9a-f]{11}$/.test(l));
}

async function pingOk(lab: Lab, run: (args: string[]) => Promise<{ stdout: string; stderr: string }>, to: string, what: string): Promise<void> {
  const r = await run(['ping', '-c', '3', '-W', '2', to]);
  assert.match(r.stdout, /[1-3] packets received/, `${what} → ${to}: ${r.stdout}${r.stderr}`);
}

/** After a restart: the path may need a few seconds (gossip rejoin, FDB) — pings until one answers. */
async function pingSoon(lab: Lab, run: (args: string[]) => Promise<{ stdout: string; stderr: string }>, to: string, what: string): Promise<number> {
  const t0 = Date.now();
  await lab.waitFor(`${what} → ${to}`, async () => /1 packets received/.test((await run(['ping', '-c', '1', '-W', '1', to])).stdout), { timeoutMs: 30_000, intervalMs: 200 });
  await pingOk(lab, run, to, what);
  return Date.now() - t0;
}

/** A raw request to the plugin socket (what dockerd would send). */
function rawPost(sock: string, method: string, body: Buffer): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, agent: false, method: 'POST', path: `/${method}`, headers: { 'content-length': body.length } }, (res) => {
      const c: Buffer[] = [];
      res.on('data', (x: Buffer) => c.push(x));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(c).toString() || '{}') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('docker: vxmesh network + IPAM driver on two hosts with the real dockerd (and podman), restarts, errors, cleanup', { skip: skip(), timeout: 420_000 }, async (t) => {
  const t0 = Date.now();
  const mark = (what: string) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
  const lab = await labFor(t, { hosts: 2 });
  const keyFile = lab.writeFile('cluster.key', `${await generateClusterKey()}\n`);
  const rootfs = path.join(lab.dir, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'etc'));
  fs.copyFileSync('/usr/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const app of ['sh', 'ping', 'sleep', 'ip', 'cat']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', app));
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  const tar = path.join(lab.dir, 'rootfs.tar');
  await lab.exec(null, 'tar', ['-C', rootfs, '-cf', tar, '.']);

  // short paths: containerd's sockets live under the exec root (unix socket paths ≤ 107 bytes)
  const short = fs.mkdtempSync('/tmp/vxd-');
  const ds: Dockerd[] = [];
  const agents: LabAgent[] = [];
  const cfgs: Record<string, unknown>[] = [];
  let podmanBase: string[] | null = null;
  let podmanEnv: NodeJS.ProcessEnv = {};
  try {
    for (const h of lab.hosts) {
      const dir = path.join(short, h.name);
      const plugins = path.join(dir, 'plugins');
      fs.mkdirSync(plugins, { recursive: true });
      const cfg = { ...endpointAgentConfig(lab, h, [NET], { keyFile }), docker: { socket: path.join(plugins, 'vxmesh.sock') } };
      cfgs.push(cfg);
      agents.push(await startEndpointAgent(lab, h, cfg));
      ds.push({ host: h, dir, sock: path.join(dir, 'docker.sock'), plugins, proc: null });
    }
    mark('agents ready');
    await Promise.all(ds.map(async (d) => {
      await startDockerd(lab, d);
      await docker(lab, d, ['import', tar, 'bb']);
    }));
    mark('dockerd ready, image imported');
    for (const d of ds) {
      const r = await docker(lab, d, ['network', 'create', '-d', 'vxmesh', '--ipam-driver', 'vxmesh', '--subnet', '198.19.0.0/16', 'blue']);
      assert.match(r.stdout, /^[0-9a-f]{64}\s*$/);
    }
    const insp = JSON.parse((await docker(lab, ds[0], ['network', 'inspect', 'blue'])).stdout)[0];
    assert.equal(insp.IPAM.Driver, 'vxmesh');
    assert.equal(insp.IPAM.Config[0].Subnet, '198.19.0.0/16');
    const run = (d: Dockerd, name: string, extra: string[] = []) => docker(lab, d, ['run', '-d', '--name', name, '--network', 'blue', '--restart', 'always', '--stop-timeout', '1', ...extra, 'bb', 'sleep', '3600']);
    await run(ds[0], 'c1');
    const ip1 = await addrOf(lab, ds[0], 'c1');
    // a free address outside every block the two hosts hold, for --ip on h2
    const blocks = (await Promise.all(agents.map(async (a) => (await status(a)).extensions.endpoints.ipam.networks[0].blocks as string[]))).flat();
    const inBlock = (ip: string) => blocks.some((b) => {
      const [base, p] = b.split('/');
      const n = (s: string) => s.split('.').reduce((a, x) => a * 256 + Number(x), 0);
      const mask = 2 ** (32 - Number(p));
      return Math.floor(n(ip) / mask) === Math.floor(n(base) / mask);
    });
    const fixed = ['198.19.255.200', '198.19.128.200', '198.19.64.200'].find((x) => !inBlock(x))!;
    await run(ds[1], 'c2', ['--ip', fixed]);
    const ip2 = await addrOf(lab, ds[1], 'c2');
    assert.equal(ip2, fixed, '--ip is honoured');
    assert.notEqual(ip1, ip2);
    mark(`containers up: c1 ${ip1} (h1), c2 ${ip2} (h2)`);

    // first-class vxmesh endpoints: listed on both hosts (gossip), with the container's MAC
    await lab.waitFor('both Docker endpoints announced to h1', async () => (await endpoints(lab, lab.hosts[0])).filter((e) => e.name.startsWith('docker-')).length === 2, { timeoutMs: 20_000, intervalMs: 250 });
    const eps = await endpoints(lab, lab.hosts[0]);
    assert.deepEqual(eps.map((e) => `${e.host} ${e.ips[0]}`).sort(), [`h1 ${ip1}`, `h2 ${ip2}`].sort());
    const mac1 = (await docker(lab, ds[0], ['exec', 'c1', 'cat', '/sys/class/net/eth0/address'])).stdout.trim();
    assert.equal((eps.find((e) => e.host === 'h1') as unknown as { mac: string }).mac, mac1, 'the endpoint has the container interface MAC');
    const nft = await lab.exec(lab.hosts[0].ns, 'nft', ['list', 'ruleset'], { check: false });
    assert.ok(nft.stdout.includes(mac1), 'anti-spoofing rules name the container MAC');
    await pingOk(lab, (a) => docker(lab, ds[0], ['exec', 'c1', ...a], false), ip2, 'c1 (h1)');
    await pingOk(lab, (a) => docker(lab, ds[1], ['exec', 'c2', ...a], false), ip1, 'c2 (h2)');
    mark('cross-host ping both ways');
    // anti-spoofing: c1 sending from an address it was not given is dropped (and counted)
    const pid1 = (await docker(lab, ds[0], ['inspect', '-f', '{{.State.Pid}}', 'c1'])).stdout.trim();
    await lab.exec(null, 'nsenter', ['-t', pid1, '-n', 'ip', 'addr', 'add', '198.19.77.77/16', 'dev', 'eth0']);
    const spoof = await docker(lab, ds[0], ['exec', 'c1', 'ping', '-c', '2', '-W', '1', '-I', '198.19.77.77', ip2], false);
    assert.match(spoof.stdout, /0 packets received/, `a spoofed source gets no answer: ${spoof.stdout}`);
    await lab.exec(null, 'nsenter', ['-t', pid1, '-n', 'ip', 'addr', 'del', '198.19.77.77/16', 'dev', 'eth0']);
    const drops = ((await endpoints(lab, lab.hosts[0])).find((e) => e.local) as unknown as { drops: number }).drops;
    assert.ok(drops >= 2, `the guard counted the spoofed packets (${drops})`);

    // an address in use (c2's, announced by h2) is refused on h1; nothing half-made
    const before = { devs: await endpointDevices(lab, lab.hosts[0]), alloc: (await status(agents[0])).extensions.endpoints.ipam.networks[0].allocated };
    const taken = await docker(lab, ds[0], ['run', '-d', '--name', 'c3', '--network', 'blue', '--ip', ip2, 'bb', 'sleep', '3600'], false);
    assert.notEqual(taken.code, 0);
    assert.match(taken.stderr, new RegExp(`address ${ip2.replace(/\./g, '\\.')} is already taken on network blue \\(endpoint docker-[0-9a-f]{12} on host h2\\)`));
    await docker(lab, ds[0], ['rm', '-f', 'c3'], false);
    assert.deepEqual(await endpointDevices(lab, lab.hosts[0]), before.devs);
    assert.equal((await status(agents[0])).extensions.endpoints.ipam.networks[0].allocated, before.alloc);
    assert.equal((await endpoints(lab, lab.hosts[0])).filter((e) => e.local).length, 1);

    // bad input, as the docker CLI shows it
    const unknown = await docker(lab, ds[0], ['network', 'create', '-d', 'vxmesh', '--ipam-driver', 'vxmesh', '--ipam-opt', 'network=nope', 'n2'], false);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /unknown network "nope" \(this agent has: blue\)/);
    const outside = await docker(lab, ds[0], ['network', 'create', '-d', 'vxmesh', '--ipam-driver', 'vxmesh', '--subnet', '198.18.99.0/24', 'n3'], false);
    assert.notEqual(outside.code, 0);
    assert.match(outside.stderr, /pool 198\.18\.99\.0\/24 is outside every vxmesh network's subnet/);
    const optBad = await docker(lab, ds[0], ['network', 'create', '-d', 'vxmesh', '--ipam-driver', 'vxmesh', '--opt', 'network=nope', 'n4'], false);
    assert.notEqual(optBad.code, 0);
    assert.match(optBad.stderr, /unknown network "nope"/);
    assert.deepEqual((await docker(lab, ds[0], ['network', 'ls', '--filter', 'driver=vxmesh', '--format', '{{.Name}}'])).stdout.trim().split('\n'), ['blue'], 'no network half-made');
    const sock1 = (cfgs[0].docker as { socket: string }).socket;
    const mal = await rawPost(sock1, 'NetworkDriver.CreateNetwork', Buffer.from('{"NetworkID": '));
    assert.equal(mal.status, 400);
    assert.match(mal.body.Err, /not JSON/);
    const big = await rawPost(sock1, 'IpamDriver.RequestPool', Buffer.alloc(70_000, 0x20));
    assert.equal(big.status, 413);
    assert.match(big.body.Err, /larger than the limit of 65536 bytes/);
    mark('errors checked');

    // the agent not ready (a readiness check genuinely failing): h1's TAP deleted and its name
    // taken by another device (a bridge), so re-creating it fails (network:blue stays failed). Docker shows
    // the plugin's error for a new network and for a container; nothing is made. The name freed,
    // the agent recovers by itself and `docker run` works again.
    {
      const h = lab.hosts[0];
      const devs = await endpointDevices(lab, h);
      const alloc = (await status(agents[0])).extensions.endpoints.ipam.networks[0].allocated;
      const batch = lab.writeFile('tap-taken.batch', 'link del vx-blue\nlink add vx-blue type bridge\n');
      await lab.exec(h.ns, 'ip', ['-batch', batch]);
      let failing: string[] = [];
      await lab.waitFor('h1 not ready (network:blue)', async () => {
        failing = ((await status(agents[0])).ready?.failing ?? []) as string[];
        return failing.includes('network:blue');
      }, { timeoutMs: 20_000, intervalMs: 200 });
      const notReady = /vxmesh agent on h1 is not ready \([^)]*network:blue[^)]*\)/;
      const nc = await docker(lab, ds[0], ['network', 'create', '-d', 'vxmesh', '--ipam-driver', 'vxmesh', '--subnet', '198.18.250.0/24', '--opt', 'vni=4343', 'nr'], false);
      assert.notEqual(nc.code, 0);
      assert.match(nc.stderr, notReady, `docker network create shows why: ${nc.stderr}`);
      const nrun = await docker(lab, ds[0], ['run', '-d', '--name', 'c4', '--network', 'blue', 'bb', 'sleep', '3600'], false);
      assert.notEqual(nrun.code, 0);
      assert.match(nrun.stderr, notReady, `docker run shows why: ${nrun.stderr}`);
      await docker(lab, ds[0], ['rm', '-f', 'c4'], false);
      assert.deepEqual((await docker(lab, ds[0], ['network', 'ls', '--filter', 'driver=vxmesh', '--format', '{{.Name}}'])).stdout.trim().split('\n'), ['blue'], 'no network made while not ready');
      assert.deepEqual(await endpointDevices(lab, h), devs, 'no endpoint device made while not ready');
      assert.equal((await status(agents[0])).extensions.endpoints.ipam.networks[0].allocated, alloc, 'no address left while not ready');
      mark(`not ready (failing: ${failing.join(', ')}): docker network create and docker run show the plugin's error`);
      console.log(`# docker network create: ${nc.stderr.trim()}\n# docker run: ${nrun.stderr.trim()}`);
      await lab.exec(h.ns, 'ip', ['link', 'del', 'vx-blue']);
      await lab.waitFor('h1 ready again', async () => ((await status(agents[0])).ready?.failing ?? ['?']).length === 0, { timeoutMs: 45_000, intervalMs: 250 });
      mark('ready again (TAP re-created)');
    }

    // a vxmesh network created from options (no config entry): the same `--opt vni=` on both hosts
    {
      const RT = ['network', 'create', '-d', 'vxmesh', '--ipam-driver', 'vxmesh', '--subnet', '198.18.248.0/24', '--gateway', '198.18.248.1', '--opt', 'vni=4242', '--opt', 'mtu=1400'];
      const badMtu = await docker(lab, ds[0], [...RT.slice(0, -2), '--opt', 'mtu=99999', 'red'], false);
      assert.notEqual(badMtu.code, 0);
      assert.match(badMtu.stderr, /--opt mtu: expected an integer \d+\.\.\d+/);
      const clash = await docker(lab, ds[0], ['network', 'create', '-d', 'vxmesh', '--ipam-driver', 'vxmesh', '--subnet', '198.18.249.0/24', '--opt', `vni=${NET.vni}`, '--opt', 'name=other', 'red'], false);
      assert.notEqual(clash.code, 0, 'a VNI that is a configured network with another subnet is refused');
      for (const h of lab.hosts.slice(0, 2)) assert.equal((await lab.exec(h.ns, 'ip', ['link', 'show', 'vxb4242'], { check: false })).code, 1, 'nothing half-made');
      for (const d of ds) await docker(lab, d, [...RT, 'red']);
      for (const h of lab.hosts.slice(0, 2)) {
        const link = (await lab.exec(h.ns, 'ip', ['-o', 'link', 'show', 'vxt4242'])).stdout;
        assert.match(link, /mtu 1400 .*master vxb4242/, `the runtime network's TAP on ${h.name}`);
      }
      assert.deepEqual((await status(agents[1])).extensions.docker.runtimeNetworks, ['docker-4242']);
      const runRed = (d: Dockerd, name: string) => docker(lab, d, ['run', '-d', '--name', name, '--network', 'red', '--stop-timeout', '1', 'bb', 'sleep', '3600']);
      await runRed(ds[0], 'r1');
      await runRed(ds[1], 'r2');
      const redIp = async (d: Dockerd, name: string) => {
        const out = (await docker(lab, d, ['exec', name, 'ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout;
        const m = /inet (198\.18\.248\.\d+)\/24/.exec(out);
        assert.ok(m, `${name} has an address of the runtime network: ${out}`);
        return m![1];
      };
      const r1 = await redIp(ds[0], 'r1');
      const r2 = await redIp(ds[1], 'r2');
      assert.notEqual(r1, r2);
      await pingSoon(lab, (a) => docker(lab, ds[0], ['exec', 'r1', ...a], false), r2, 'r1 (h1) → r2 (h2) on the runtime network');
      await pingSoon(lab, (a) => docker(lab, ds[1], ['exec', 'r2', ...a], false), r1, 'r2 (h2) → r1 (h1)');
      // a SIGHUP reload whose new config network takes the VNI of the runtime network Docker's
      // `red` uses: refused and nothing changes (runtime-networks.json, the running networks); the
      // log and `vxmesh status` name the clash and the Docker network
      {
        const rtFile = path.join(lab.dir, 'state-h1', 'runtime-networks.json');
        const savedRt = fs.readFileSync(rtFile, 'utf8');
        const redId = (await docker(lab, ds[0], ['network', 'inspect', '-f', '{{.Id}}', 'red'])).stdout.trim().slice(0, 12);
        const gen = (await status(agents[0])).reload.generation as number;
        fs.writeFileSync(agents[0].configPath, stringify({ ...cfgs[0], networks: [...(cfgs[0].networks as unknown[]), { name: 'green', vni: 4242, bridge: 'br9' }] }));
        process.kill(agents[0].proc.pid!, 'SIGHUP');
        await lab.waitFor('h1 handled the reload', async () => (await status(agents[0])).reload.generation > gen, { timeoutMs: 20_000, intervalMs: 200 });
        const st = await status(agents[0]);
        fs.writeFileSync(agents[0].configPath, stringify(cfgs[0]));
        const clash = `config network green clashes with runtime network docker-4242 (vni 4242 is already runtime network docker-4242), which is in use by Docker network ${redId}`;
        assert.equal(st.reload.result, 'refused');
        assert.ok(String(st.reload.message).includes(clash), `status names the clash: ${st.reload.message}`);
        assert.ok(agents[0].proc.output().includes(`reload: reload refused: ${clash}`), 'the agent logged the refusal');
        assert.equal(fs.readFileSync(rtFile, 'utf8'), savedRt, 'runtime-networks.json untouched');
        assert.deepEqual(st.networks.map((n: { name: string }) => n.name), ['blue', 'docker-4242']);
        mark(`reload clashing with the runtime network refused: ${clash}`);
      }
      // the agent on h1 restarted: the runtime network comes back from the state file (before the
      // endpoints are restored), r1 keeps its endpoint
      await agents[0].stop();
      agents[0] = await startEndpointAgent(lab, lab.hosts[0], cfgs[0]);
      assert.match((await lab.exec(lab.hosts[0].ns, 'ip', ['-o', 'link', 'show', 'vxt4242'])).stdout, /mtu 1400 .*master vxb4242/, 'the runtime network re-created at the restart');
      assert.deepEqual((await status(agents[0])).extensions.docker.runtimeNetworks, ['docker-4242']);
      await pingSoon(lab, (a) => docker(lab, ds[1], ['exec', 'r2', ...a], false), r1, 'r2 (h2) → r1 (h1) after the agent on h1 restarted');
      const redIpam = async (a: LabAgent) => ((await status(a)).extensions.endpoints.ipam.networks as { name: string; allocated: number }[]).find((n) => n.name === 'docker-4242');
      for (const [i, [d, c]] of ([[ds[0], 'r1'], [ds[1], 'r2']] as const).entries()) {
        await docker(lab, d, ['rm', '-f', c]);
        assert.equal((await redIpam(agents[i]))?.allocated, 0, `docker rm released ${c}'s address on ${lab.hosts[i].name}`);
        await docker(lab, d, ['network', 'rm', 'red']);
        assert.equal(await redIpam(agents[i]), undefined, `the runtime network's IPAM state (blocks, leases) went with it on ${lab.hosts[i].name}`);
      }
      for (const h of lab.hosts.slice(0, 2)) {
        for (const dev of ['vxb4242', 'vxt4242']) assert.equal((await lab.exec(h.ns, 'ip', ['link', 'show', dev], { check: false })).code, 1, `${dev} removed on ${h.name}`);
      }
      assert.deepEqual((await status(agents[0])).extensions.docker.runtimeNetworks, []);
      mark('runtime network created from --opt vni on both hosts, containers reach each other, kept across an agent restart, removed');
    }

    // podman (CNI) on h2 ↔ Docker on h1
    {
      const h = lab.hosts[1];
      const dir = path.join(lab.dir, 'podman');
      const runroot = path.join(short, 'pr');
      for (const x of ['root', 'tmp', 'cni', 'cnibin']) fs.mkdirSync(path.join(dir, x), { recursive: true });
      fs.mkdirSync(runroot);
      fs.writeFileSync(path.join(dir, 'containers.conf'), [
        '[containers]', 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
        '[engine]', 'runtime = "runc"', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', `events_logfile_path = "${dir}/events.log"`, `tmp_dir = "${dir}/tmp"`,
        '[network]', 'network_backend = "cni"', `network_config_dir = "${dir}/cni"`, `cni_plugin_dirs = ["${dir}/cnibin"]`, 'default_network = "blue"', '',
      ].join('\n'));
      const inst = await vx(lab, h, ['install-cni', '--bin-dir', path.join(dir, 'cnibin'), '--conf-dir', path.join(dir, 'cni'), '--config', lab.writeFile('agent-h2-cni.yaml', stringify(cfgs[1]))]);
      assert.equal(inst.code, 0, inst.stderr);
      podmanEnv = { ...process.env, CONTAINERS_CONF: path.join(dir, 'containers.conf'), XDG_RUNTIME_DIR: path.join(dir, 'tmp') };
      podmanBase = [`--net=/run/netns/${h.ns}`, 'podman', '--root', path.join(dir, 'root'), '--runroot', runroot, '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs'];
      const pm = async (args: string[], check = true) => {
        const r = await lab.exec(null, 'nsenter', [...podmanBase!, ...args], { check: false, timeoutMs: 120_000, env: podmanEnv });
        if (check && r.code !== 0) throw new Error(`podman ${args.join(' ')} failed: ${r.stderr}`);
        return r;
      };
      await pm(['import', tar, 'localhost/bb']);
      await pm(['run', '-d', '--name', 'p2', '--network', 'blue', '--pull=never', '--cap-add', 'NET_RAW', 'localhost/bb', 'sleep', '3600']);
      const m = /inet (198\.19\.\d+\.\d+)\/16/.exec((await pm(['exec', 'p2', 'ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout);
      assert.ok(m, 'the podman container has a vxmesh address');
      await pingOk(lab, (a) => docker(lab, ds[0], ['exec', 'c1', ...a], false), m![1], 'docker c1 (h1)');
      await pingOk(lab, (a) => pm(['exec', 'p2', ...a], false), ip1, 'podman p2 (h2)');
      await pm(['rm', '-f', '-t', '0', 'p2']);
      mark('podman ↔ docker');
    }

    // the agent on h1 restarted while c1 runs: the endpoint is kept and found again, the socket re-made
    const epBefore = (await endpoints(lab, lab.hosts[0])).find((e) => e.local)!;
    await agents[0].stop();
    assert.equal(fs.existsSync(sock1), false, 'socket removed while the agent is down');
    agents[0] = await startEndpointAgent(lab, lab.hosts[0], cfgs[0]);
    assert.ok(fs.existsSync(sock1), 'socket re-created');
    const epAfter = (await endpoints(lab, lab.hosts[0])).filter((e) => e.local);
    assert.deepEqual(epAfter.map((e) => [e.name, e.ips[0]]), [[epBefore.name, ip1]], 'the endpoint is found again');
    const afterAgent = await pingSoon(lab, (a) => docker(lab, ds[0], ['exec', 'c1', ...a], false), ip2, 'c1 after the agent restart');
    mark(`c1 → c2 answers ${afterAgent} ms after the agent was ready again`);
    await run(ds[0], 'c5');
    const ip5 = await addrOf(lab, ds[0], 'c5');
    await pingOk(lab, (a) => docker(lab, ds[0], ['exec', 'c5', ...a], false), ip2, 'c5 (started after the agent restart)');
    mark('agent restart');

    // dockerd on h2 restarted while its agent runs: c2 comes back with its address, no stale endpoint
    await stopDockerd(lab, ds[1]);
    await startDockerd(lab, ds[1]);
    await lab.waitFor('c2 running again', async () => (await docker(lab, ds[1], ['inspect', '-f', '{{.State.Running}}', 'c2'], false)).stdout.trim() === 'true', { timeoutMs: 60_000, intervalMs: 300 });
    assert.equal(await addrOf(lab, ds[1], 'c2'), ip2);
    const h2eps = (await endpoints(lab, lab.hosts[1])).filter((e) => e.local);
    assert.deepEqual(h2eps.map((e) => e.ips[0]), [ip2], 'one endpoint for c2 on h2, none stale');
    const afterDockerd = await pingSoon(lab, (a) => docker(lab, ds[1], ['exec', 'c2', ...a], false), ip1, 'c2 after the dockerd restart');
    mark(`c2 → c1 answers ${afterDockerd} ms after c2 ran again`);
    await pingOk(lab, (a) => docker(lab, ds[1], ['exec', 'c2', ...a], false), ip5, 'c2 → c5');
    mark('dockerd restart');

    // docker rm + docker network rm: nothing of vxmesh left
    await docker(lab, ds[0], ['rm', '-f', 'c1', 'c5']);
    await docker(lab, ds[1], ['rm', '-f', 'c2']);
    for (const [i, d] of ds.entries()) {
      await docker(lab, d, ['network', 'rm', 'blue']);
      const h = lab.hosts[i];
      assert.deepEqual((await endpoints(lab, h)).filter((e) => e.local), [], `no endpoint left on ${h.name}`);
      const st = await status(agents[i]);
      assert.equal(st.extensions.endpoints.ipam.networks[0].allocated, 0, `no address left on ${h.name}`);
      assert.deepEqual(st.extensions.docker.networks, {}, `no network map left on ${h.name}`);
      assert.deepEqual(await endpointDevices(lab, h), [], `no endpoint device left on ${h.name}`);
      const rules = (await lab.exec(h.ns, 'nft', ['list', 'ruleset'], { check: false })).stdout;
      assert.ok(!rules.includes(mac1) && !rules.includes(ip1) && !rules.includes(ip2) && !rules.includes(ip5), `no anti-spoofing rule left on ${h.name}`);
    }
    mark('cleanup verified');
  } finally {
    if (podmanBase) await lab.exec(null, 'nsenter', [...podmanBase, 'rm', '-a', '-f', '-t', '0'], { check: false, timeoutMs: 60_000, env: podmanEnv });
    for (const d of ds) {
      if (d.proc?.running()) {
        const ids = (await docker(lab, d, ['ps', '-aq'], false)).stdout.split('\n').filter((x) => x);
        if (ids.length) await docker(lab, d, ['rm', '-f', ...ids], false);
      }
      await stopDockerd(lab, d);
    }
    // dockerd's vfs layers and exec root
    fs.rmSync(short, { recursive: true, force: true });
  }
});
