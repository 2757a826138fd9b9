/**
 * The testbed itself (lab/netns.ts), validated with the kernel's VXLAN on every host, so a
 * failure in the vxmesh tests points at vxmesh and not at the lab: namespaces and names, MTUs,
 * cross-host ping and TCP through kernel VXLAN, PID-tracked processes, captures, and a teardown
 * that leaves nothing behind.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { Lab, parsePing } from '../../lab/netns';
import { assertReaches, buildTopology, labFor, netnsSkip, otherHosts, pairs } from '../helpers/lab';

const skip = netnsSkip('tcpdump');

test('lab: three hosts with kernel VXLAN carry ping and TCP between every container pair', { skip, timeout: 120_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 3 });
  const topo = await buildTopology(lab);
  for (const h of lab.hosts) await lab.addKernelVxlan(h, { vni: 42, bridge: 'br0', peers: otherHosts(lab, h) });

  // Names: unique prefix, interface names within IFNAMSIZ.
  assert.match(lab.prefix, /^vxl\d+-[0-9a-f]{4}$/);
  assert.equal(Lab.listNamespaces(lab.prefix).length, 1 + 3 + 6);
  for (const c of topo.all) assert.ok(c.name.length <= 15);
  const st = await lab.linkStats(topo.containers[0][0].ns, 'eth0');
  assert.equal(st.mtu, 1450);
  assert.equal(st.mac, topo.containers[0][0].mac);

  for (const [a, b] of pairs(topo.all)) {
    await assertReaches(t, lab, a, b, { count: 2 });
  }
  const [a, b] = [topo.containers[0][0], topo.containers[2][1]];
  const x = await lab.tcpTransfer(a, b, { bytes: 2 << 20 });
  assert.equal(x.receivedBytes, 2 << 20);
  assert.equal(x.receivedSha256, x.sentSha256);
});

test('lab: a container in another subnet/bridge without VXLAN is unreachable (the lab does not leak)', { skip, timeout: 60_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const topo = await buildTopology(lab, { perHost: 1 });
  const p = await lab.ping(topo.containers[0][0], topo.containers[1][0].address, { count: 2, intervalS: 0.05, waitS: 1 });
  assert.equal(p.received, 0);
});

test('lab: IPv6 underlay with kernel VXLAN; overlay MTU is underlay − 70', { skip, timeout: 60_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2, family: 6, underlayMtu: 1400 });
  assert.equal(lab.overlayMtu, 1330);
  const topo = await buildTopology(lab, { perHost: 1 });
  for (const h of lab.hosts) await lab.addKernelVxlan(h, { vni: 7, bridge: 'br0', peers: otherHosts(lab, h) });
  assert.equal(lab.hosts[1].address, '2001:2::2');
  await assertReaches(t, lab, topo.containers[0][0], topo.containers[1][0], { size: 1330 - 28, dontFragment: true });
});

test('lab: spawn/stop by PID, capture, destroy removes namespaces, processes and files', { skip, timeout: 60_000 }, async () => {
  const lab = await Lab.create({ hosts: 2 });
  let destroyed = false;
  try {
    const [h1, h2] = lab.hosts;
    const cap = await lab.capture(h2.ns, 'ul0', 'icmp');
    const p = await lab.exec(h1.ns, 'ping', ['-c', '2', '-i', '0.05', '-W', '2', h2.address]);
    assert.match(p.stdout, /2 received/);
    const file = await cap.stop();
    const lines = await lab.readPcap(file, 'icmp');
    assert.ok(lines.length >= 4, lines.join('\n'));

    const sleeper = lab.spawn(h1.ns, 'sleep', ['300']);
    assert.ok(sleeper.running());
    const ex = await lab.stop(sleeper);
    assert.equal(ex.signal, 'SIGTERM');

    const lingering = lab.spawn(h1.ns, 'sleep', ['300']);
    await lab.waitFor('cfg file', () => fs.existsSync(lab.writeFile('x.yaml', 'a: 1\n')));
    const dir = lab.dir;
    await lab.destroy();
    destroyed = true;
    assert.equal(lingering.running(), false);
    assert.deepEqual(Lab.listNamespaces(lab.prefix), []);
    assert.equal(fs.existsSync(dir), false);
    assert.notEqual(spawnSync('kill', ['-0', String(lingering.pid)]).status, 0);
    await assert.rejects(lab.exec(h1.ns, 'true'), { code: 'ERR_VXMESH_LAB' });
  } finally {
    if (!destroyed) await lab.destroy();
  }
});

test('lab: waitFor is bounded and a failing command is a LabError', { skip, timeout: 30_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 1 });
  await assert.rejects(lab.waitFor('never', () => false, { timeoutMs: 200, intervalMs: 20 }), /timed out waiting for never/);
  await assert.rejects(lab.exec(lab.hosts[0].ns, 'false'), { code: 'ERR_VXMESH_LAB' });
  const r = await lab.exec(lab.hosts[0].ns, 'false', [], { check: false });
  assert.equal(r.code, 1);
  assert.throws(() => lab.host(9), /no host 9/);
  await assert.rejects(lab.addBridge(lab.hosts[0], 'a-name-too-long-x'), /1\.\.15 chars/);
});

test('lab: parsePing reads iputils summaries (all, partial, none)', () => {
  const ok = parsePing('--- x ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time 101ms\nrtt min/avg/max/mdev = 0.045/0.058/0.071/0.010 ms\n');
  assert.deepEqual([ok.transmitted, ok.received, ok.rtt], [3, 3, { min: 0.045, avg: 0.058, max: 0.071, mdev: 0.01 }]);
  const part = parsePing('5 packets transmitted, 2 received, +1 errors, 60% packet loss, time 4004ms\nrtt min/avg/max/mdev = 1.0/2.0/3.0/0.5 ms');
  assert.deepEqual([part.transmitted, part.received, part.rtt?.avg], [5, 2, 2]);
  const none = parsePing('3 packets transmitted, 0 received, 100% packet loss, time 2047ms\n');
  assert.deepEqual([none.transmitted, none.received, none.rtt], [3, 0, null]);
});

test('lab: SIGINT tears the lab down (namespaces, spawned processes) and exits 130', { skip, timeout: 60_000 }, async () => {
  const netns = path.join(__dirname, '..', '..', 'lab', 'netns.js');
  const script =
    `const { Lab } = require(${JSON.stringify(netns)});` +
    `Lab.create({ hosts: 2 }).then((lab) => { const p = lab.spawn(lab.hosts[0].ns, 'sleep', ['300']);` +
    `console.log(JSON.stringify({ prefix: lab.prefix, sleeper: p.pid })); setInterval(() => {}, 1000); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const deadline = Date.now() + 30_000;
    while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const info = JSON.parse(out.split('\n')[0]) as { prefix: string; sleeper: number };
    assert.equal(Lab.listNamespaces(info.prefix).length, 3);
    process.kill(child.pid!, 'SIGINT');
    assert.equal(await exited, 130);
    assert.deepEqual(Lab.listNamespaces(info.prefix), []);
    assert.notEqual(spawnSync('kill', ['-0', String(info.sleeper)]).status, 0, 'sleeper still alive');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
