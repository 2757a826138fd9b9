/**
 * Agent lifecycle against the real kernel, as root, inside a network namespace unique to this run
 * (the root namespace is never touched): `bin/vxmesh agent` runs in the namespace through
 * `ip netns exec`; the test inspects links with `ip -n NS -j -d link show`.
 *
 * - start creates the bridge and TAP with the right MTUs and state, attaches to a pre-existing
 *   bridge and a persistent TAP; stop (SIGTERM, exit 0) removes exactly what it created;
 * - SIGHUP: networks added/removed without disturbing the others, an invalid config is refused
 *   and the running one stays, a change that cannot be applied live is refused;
 * - runtime failures exit 1 with a clear message and leave nothing behind.
 *
 * Every namespace and process made here is removed in `after` hooks, also on failure.
 */

import { test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'vxmesh');
const ADDON = path.join(ROOT, 'build', 'Release', 'vxmesh.node');

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  if (spawnSync('ip', ['-V']).status !== 0) return 'needs iproute2';
  if (!fs.existsSync(ADDON)) return 'native addon not built';
  return undefined;
}
const SKIP = skipReason();

function run(cmd: string, args: string[], allowFail = false): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  if (!allowFail && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

interface Link {
  name: string;
  mtu: number;
  up: boolean;
  master: string | null;
  kind: string | null;
  ifindex: number;
}

/** A namespace of its own with an underlay veth at 198.18.0.1/24; deleted after the test. */
function makeNetns(t: TestContext): { ns: string; links(): Map<string, Link>; ip(...args: string[]): void } {
  const ns = `vxt${process.pid % 10000}${randomBytes(3).toString('hex')}`;
  run('ip', ['netns', 'add', ns]);
  t.after(() => { run('ip', ['netns', 'del', ns], true); });
  const ip = (...args: string[]) => { run('ip', ['-n', ns, ...args]); };
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1');
  ip('addr', 'add', '198.18.0.1/24', 'dev', 'u0');
  ip('link', 'set', 'u0', 'up');
  ip('link', 'set', 'u1', 'up');
  const links = () => {
    const arr = JSON.parse(run('ip', ['-n', ns, '-j', '-d', 'link', 'show'])) as Array<Record<string, unknown>>;
    return new Map(arr.map((l) => [l.ifname as string, {
      name: l.ifname as string,
      mtu: l.mtu as number,
      up: (l.flags as string[]).includes('UP'),
      master: (l.master as string | undefined) ?? null,
      kind: ((l.linkinfo as { info_kind?: string } | undefined)?.info_kind) ?? null,
      ifindex: l.ifindex as number,
    }]));
  };
  return { ns, links, ip };
}

interface AgentProc {
  proc: ChildProcess;
  /** Parsed JSON log records so far. */
  records: Array<Record<string, unknown>>;
  stderr(): string;
  /** Resolves with the first record (from index `from`) whose msg matches; bounded wait. */
  waitLog(re: RegExp, from?: number, ms?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function startAgent(t: TestContext, ns: string, configFile: string, prefix: string[] = []): AgentProc {
  const proc = spawn('ip', ['netns', 'exec', ns, ...prefix, process.execPath, BIN, 'agent', '--config', configFile, '--state-dir', path.join(path.dirname(configFile), 'state')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VXMESH_LOG_FORMAT: 'json', NOTIFY_SOCKET: '' },
  });
  // `ip netns exec` execs its command: proc.pid is the agent's own PID.
  t.after(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  let buf = '';
  let all = '';
  const records: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => {
    all += d;
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        records.push(JSON.parse(line));
      } catch {
        records.push({ msg: line });
      }
    }
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => { for (const w of waiters.splice(0)) w(); resolve(code); }));
  const waitLog = (re: RegExp, from = 0, ms = 20_000) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`timed out waiting for log ${re}; stderr:\n${all}`)), ms);
    const check = () => {
      const hit = records.slice(from).find((r) => re.test(String(r.msg)));
      if (hit) {
        clearTimeout(deadline);
        resolve(hit);
      } else if (proc.exitCode !== null || proc.signalCode !== null) {
        clearTimeout(deadline);
        reject(new Error(`agent exited (${proc.exitCode ?? proc.signalCode}) before log ${re}; stderr:\n${all}`));
      } else waiters.push(check);
    };
    check();
  });
  return { proc, records, stderr: () => all, waitLog, exited };
}

function writeConfig(t: TestContext, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxagent-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'vxmesh.yaml');
  fs.writeFileSync(file, text);
  return file;
}

/** The state directory startAgent gives the agent of `configFile`. */
const stateDirOf = (configFile: string): string => path.join(path.dirname(configFile), 'state');

/** `vxmesh cleanup` inside the namespace for the agent of `configFile`; returns its stdout. */
function cleanupCli(ns: string, configFile: string): string {
  return run('ip', ['netns', 'exec', ns, process.execPath, BIN, 'cleanup', '--state-dir', stateDirOf(configFile)]);
}

/** GET /v1/status from inside the namespace. */
function status(ns: string): Record<string, unknown> {
  const js = "fetch('http://127.0.0.1:9469/v1/status').then(r=>r.text()).then(t=>process.stdout.write(t),e=>{console.error(e);process.exit(1)})";
  return JSON.parse(run('ip', ['netns', 'exec', ns, process.execPath, '-e', js]));
}

test('start creates bridge + TAP with the right MTUs and state; stop keeps the bridge it created, cleanup removes it', { skip: SKIP }, async (t) => {
  const { ns, links, ip } = makeNetns(t);
  // Pre-existing, not ours: a bridge (down) and a persistent TAP.
  ip('link', 'add', 'brx', 'type', 'bridge');
  ip('tuntap', 'add', 'dev', 'ptap', 'mode', 'tap');
  const before = links();
  const file = writeConfig(t, `node: host-a
underlay: {address: 198.18.0.1}
networks:
  - {name: blue, vni: 42, bridge: br0}
  - {name: red, vni: 43, bridge: brx, tap: ptap, mtu: 1400}
peers: [198.18.0.2]
`);
  const a = startAgent(t, ns, file);
  await a.waitLog(/^agent started$/);

  const l = links();
  const br0 = l.get('br0')!;
  assert.ok(br0, 'br0 created');
  assert.equal(br0.kind, 'bridge');
  assert.equal(br0.mtu, 1450, 'created bridge MTU = underlay 1500 − 50');
  assert.equal(br0.up, true);
  const tap = l.get('vx-blue')!;
  assert.ok(tap, 'TAP vx-blue created');
  assert.equal(tap.kind, 'tun');
  assert.equal(tap.mtu, 1450);
  assert.equal(tap.master, 'br0');
  assert.equal(tap.up, true);
  assert.equal(l.get('ptap')!.master, 'brx');
  assert.equal(l.get('ptap')!.mtu, 1400);
  assert.equal(l.get('ptap')!.up, true);
  assert.equal(l.get('brx')!.up, true, 'an existing bridge that was down is brought up');

  const s = status(ns) as { node: string; ready: { ok: boolean }; networks: Array<Record<string, unknown>>; staticPeers: string[] };
  assert.equal(s.node, 'host-a');
  assert.equal(s.ready.ok, true);
  assert.deepEqual(s.staticPeers, ['198.18.0.2:4789']);
  assert.deepEqual(s.networks.map((n) => [n.name, n.vni, n.bridge, n.tap, n.mtu, n.bridgeCreated, n.tapCreated]), [
    ['blue', 42, 'br0', 'vx-blue', 1450, true, true],
    ['red', 43, 'brx', 'ptap', 1400, false, false],
  ]);

  a.proc.kill('SIGTERM');
  assert.equal(await a.exited, 0, a.stderr());
  let after = links();
  assert.equal(after.get('br0')?.up, true, 'the bridge it created stays, up (containers stay attached)');
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(stateDirOf(file), 'bridges.json'), 'utf8')).bridges, [{ name: 'br0', network: 'blue', vni: 42 }]);
  assert.equal(after.has('vx-blue'), false, 'created TAP gone');
  assert.match(cleanupCli(ns, file), /deleted bridge br0/);
  assert.equal(fs.existsSync(path.join(stateDirOf(file), 'bridges.json')), false, 'state file removed by cleanup');
  after = links();
  assert.equal(after.has('br0'), false, 'cleanup deleted the bridge vxmesh created');
  assert.ok(after.has('brx'), 'pre-existing bridge left');
  assert.equal(after.get('brx')!.up, false, 'pre-existing bridge back down, as it was');
  assert.ok(after.has('ptap'), 'persistent TAP left');
  assert.equal(after.get('ptap')!.master, null, 'persistent TAP taken off the bridge');
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
});

test('SIGHUP reload: networks added and removed live, invalid or unappliable configs refused', { skip: SKIP }, async (t) => {
  const { ns, links } = makeNetns(t);
  const head = 'node: host-a\nunderlay: {address: 198.18.0.1}\n';
  const blue = '  - {name: blue, vni: 42, bridge: br0}\n';
  const file = writeConfig(t, `${head}networks:\n${blue}`);
  const a = startAgent(t, ns, file);
  await a.waitLog(/^agent started$/);
  const blueIndex = links().get('vx-blue')!.ifindex;

  // Add a network, change peers and log level.
  fs.writeFileSync(file, `${head}networks:\n${blue}  - {name: green, vni: 44, bridge: br2}\npeers: [198.18.0.3]\nlog: {level: debug}\n`);
  let mark = a.records.length;
  a.proc.kill('SIGHUP');
  const applied = await a.waitLog(/^reload: config applied$/, mark);
  assert.deepEqual(applied.added, ['green']);
  assert.equal(applied.peersChanged, true);
  assert.equal(applied.logLevelChanged, true);
  let l = links();
  assert.equal(l.get('vx-green')?.master, 'br2');
  assert.equal(l.get('br2')?.mtu, 1450);
  assert.equal(l.get('vx-blue')!.ifindex, blueIndex, 'unchanged network not disturbed');
  assert.deepEqual((status(ns) as { staticPeers: string[] }).staticPeers, ['198.18.0.3:4789']);

  // Invalid config: logged with the field, running config kept.
  fs.writeFileSync(file, `${head}networks:\n  - {name: blue, vni: abc, bridge: br0}\n`);
  mark = a.records.length;
  a.proc.kill('SIGHUP');
  const bad = await a.waitLog(/new config is invalid/, mark);
  assert.match(String(bad.msg), /networks\[0\]\.vni: expected an integer/);
  assert.equal(bad.level, 'error');
  l = links();
  assert.ok(l.has('vx-green') && l.has('vx-blue'), 'running config kept');

  // A change that cannot be applied live: refused with the reason, nothing changed.
  fs.writeFileSync(file, `node: host-a\nunderlay: {address: 198.18.0.1, port: 4790}\nnetworks:\n${blue}`);
  mark = a.records.length;
  a.proc.kill('SIGHUP');
  const refused = await a.waitLog(/reload refused/, mark);
  assert.match(String(refused.msg), /underlay changed .*restart/);
  assert.ok(links().has('vx-green'), 'refused reload changed nothing');

  // Remove a network.
  fs.writeFileSync(file, `${head}networks:\n${blue}`);
  mark = a.records.length;
  a.proc.kill('SIGHUP');
  const removed = await a.waitLog(/^reload: config applied$/, mark);
  assert.deepEqual(removed.removed, ['green']);
  l = links();
  assert.equal(l.has('vx-green') || l.has('br2'), false, 'removed network torn down, its bridge with it');
  assert.equal(l.get('vx-blue')!.ifindex, blueIndex);

  // `vxmesh reload` (the unit's ExecReload): waits for the verdict; a refusal exits 1 with the
  // reason and is in status; an applied one exits 0.
  const cli = (...args: string[]) => spawnSync('ip', ['netns', 'exec', ns, process.execPath, BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  fs.writeFileSync(file, `node: host-a\nunderlay: {address: 198.18.0.1, port: 4790}\nnetworks:\n${blue}`);
  const refusedCli = cli('reload', '--config', file);
  assert.equal(refusedCli.status, 1, refusedCli.stderr);
  assert.match(refusedCli.stderr, /reload #\d+ refused: reload refused: underlay changed/);
  const st = status(ns) as { reload: { result: string; message: string } };
  assert.equal(st.reload.result, 'refused');
  fs.writeFileSync(file, `${head}networks:\n  - {name: blue, vni: abc, bridge: br0}\n`);
  const invalidCli = cli('reload', '--config', file);
  assert.equal(invalidCli.status, 1, invalidCli.stderr);
  assert.match(invalidCli.stderr, /invalid: .*networks\[0\]\.vni/);
  fs.writeFileSync(file, `${head}networks:\n${blue}log: {level: info}\n`);
  const okCli = cli('reload', '--config', file);
  assert.equal(okCli.status, 0, okCli.stderr);
  assert.match(okCli.stdout, /reload #\d+ applied/);
  assert.equal((status(ns) as { reload: { result: string } }).reload.result, 'ok');

  a.proc.kill('SIGINT');
  assert.equal(await a.exited, 0, a.stderr());
  l = links();
  assert.equal(l.has('vx-blue'), false);
  assert.ok(l.has('br0'), 'bridge kept across the stop');
  cleanupCli(ns, file);
  assert.equal(links().has('br0'), false);
});

test('runtime failures exit 1 with a clear message and leave nothing behind', { skip: SKIP }, async (t) => {
  const { ns, links } = makeNetns(t);
  const before = [...links().keys()].sort();

  // Without CAP_NET_ADMIN (dropped from the bounding set, so root's exec does not get it).
  const file = writeConfig(t, 'underlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\n');
  const noCap = startAgent(t, ns, file, ['setpriv', '--bounding-set=-net_admin', '--inh-caps=-net_admin']);
  assert.equal(await noCap.exited, 1, noCap.stderr());
  assert.match(noCap.stderr(), /needs CAP_NET_ADMIN/);
  assert.deepEqual([...links().keys()].sort(), before);

  // The underlay address is on no interface: the UDP bind fails after the bridge and TAP were made.
  const file2 = writeConfig(t, 'underlay: {address: 198.18.0.77}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\n');
  const noAddr = startAgent(t, ns, file2);
  assert.equal(await noAddr.exited, 1, noAddr.stderr());
  assert.match(noAddr.stderr(), /cannot open UDP socket on 198\.18\.0\.77:4789/);
  assert.match(noAddr.stderr(), /EADDRNOTAVAIL/);
  assert.deepEqual([...links().keys()].sort(), before, 'bridge and TAP rolled back');
});

test('SIGTERM as soon as start-up begins still ends in a clean stop; only the recorded bridges are left, and cleanup removes them', { skip: SKIP }, async (t) => {
  const { ns, links } = makeNetns(t);
  const before = [...links().keys()].sort();
  const file = writeConfig(t, 'underlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\n  - {name: red, vni: 43, bridge: br1}\n');
  const a = startAgent(t, ns, file);
  await a.waitLog(/^bridge created$/);
  a.proc.kill('SIGTERM');
  assert.equal(await a.exited, 0, a.stderr());
  assert.deepEqual([...links().keys()].sort(), [...before, 'br0', 'br1'].sort());
  cleanupCli(ns, file);
  assert.deepEqual([...links().keys()].sort(), before);
});

test('a restart reuses the bridge it created with its container port; a corrupt state file is a named error', { skip: SKIP }, async (t) => {
  const { ns, links, ip } = makeNetns(t);
  const file = writeConfig(t, 'underlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\n');
  const a = startAgent(t, ns, file);
  await a.waitLog(/^agent started$/);
  ip('link', 'add', 'c0', 'type', 'veth', 'peer', 'name', 'c0p');
  ip('link', 'set', 'c0', 'master', 'br0');
  const index = links().get('br0')!.ifindex;
  a.proc.kill('SIGKILL');
  await a.exited;
  assert.equal(links().get('c0')?.master, 'br0', 'container port still on the bridge after kill -9');
  const b = startAgent(t, ns, file);
  const reused = await b.waitLog(/bridge from an earlier run reused/);
  assert.equal(reused.bridge, 'br0');
  // the bridge is reused (logged) before the TAP is opened and enslaved: read the links once started
  await b.waitLog(/^agent started$/);
  let l = links();
  assert.equal(l.get('br0')!.ifindex, index, 'the same bridge');
  assert.equal(l.get('c0')?.master, 'br0');
  assert.equal(l.get('vx-blue')?.master, 'br0');
  b.proc.kill('SIGTERM');
  assert.equal(await b.exited, 0, b.stderr());
  assert.equal(links().get('c0')?.master, 'br0', 'container port still on the bridge after a clean stop');

  fs.writeFileSync(path.join(stateDirOf(file), 'bridges.json'), '{"version":1,"bridges":[');
  const c = startAgent(t, ns, file);
  assert.equal(await c.exited, 1, c.stderr());
  assert.match(c.stderr(), /state file .*bridges\.json: not valid JSON/);
  assert.match(c.stderr(), /ERR_VXMESH_STATE/);
  l = links();
  assert.equal(l.get('c0')?.master, 'br0', 'a refused start touches nothing');
  fs.rmSync(path.join(stateDirOf(file), 'bridges.json'));
  ip('link', 'del', 'c0');
  ip('link', 'del', 'br0');
});

test('IPv6 underlay: network MTU = underlay − 70, UDP bound on the IPv6 address', { skip: SKIP }, async (t) => {
  const { ns, links, ip } = makeNetns(t);
  ip('addr', 'add', '2001:2::1/64', 'dev', 'u0', 'nodad');
  const file = writeConfig(t, 'underlay: {address: "2001:2::1"}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\npeers: ["[2001:2::2]:4789"]\n');
  const a = startAgent(t, ns, file);
  await a.waitLog(/^agent started$/);
  assert.equal(links().get('vx-blue')!.mtu, 1430);
  const s = status(ns) as { underlay: { address: string; family: number; mtu: number }; staticPeers: string[] };
  assert.deepEqual([s.underlay.address, s.underlay.family, s.underlay.mtu], ['2001:2::1', 6, 1500]);
  assert.deepEqual(s.staticPeers, ['[2001:2::2]:4789']);
  const sockets = run('ip', ['netns', 'exec', ns, 'ss', '-Hunl']);
  assert.match(sockets, /\[2001:2::1\]:4789/);
  a.proc.kill('SIGTERM');
  assert.equal(await a.exited, 0, a.stderr());
  assert.equal(links().has('vx-blue'), false);
  cleanupCli(ns, file);
  assert.equal(links().has('br0'), false);
});
