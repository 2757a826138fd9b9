/**
 * End-to-end check of the harness on the real testbed (root only, about 20 s): one short round
 * of the underlay and kernel VXLAN paths writes the JSON/markdown/SVG with numbers in them and
 * leaves no namespace of its run behind. Run: `npx tsc -p . && node --test dist/bench/test/`.
 */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const skip = process.getuid?.() !== 0 ? 'needs root' : spawnSync('sh', ['-c', 'command -v iperf3 && command -v sockperf']).status !== 0 ? 'needs iperf3 and sockperf' : false;

test('a short run writes results and cleans up', { skip, timeout: 180_000 }, () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-bench-test-'));
  try {
    const run = path.join(__dirname, '..', 'run.js');
    const r = spawnSync(process.execPath, [run, '--only', 'underlay,kernel-vxlan', '--rounds', '1', '--seconds', '1', '--udp-seconds', '1', '--rtt-seconds', '1', '--udp-pps', '5000', '--underlay', 'offload', '--no-install', '--out', out], {
      encoding: 'utf8',
      timeout: 170_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const files = fs.readdirSync(out);
    const json = files.find((f) => f.endsWith('.json'));
    assert.ok(json, `no JSON in ${files.join(', ')}`);
    assert.ok(files.includes('latest.md') && files.includes('latest.svg'));
    const d = JSON.parse(fs.readFileSync(path.join(out, json), 'utf8'));
    for (const id of ['underlay', 'kernel-vxlan']) {
      const s = d.summary.find((x: { scenario: string }) => x.scenario === id);
      assert.equal(s.status, 'ok', JSON.stringify(s));
      assert.ok(s.tcp1Gbps > 0 && s.tcp4Gbps > 0, 'TCP throughput measured');
      assert.ok(s.udpPps > 0 && s.udpLossPct >= 0, 'UDP measured');
      assert.ok(s.rttP50Us > 0 && s.rttP99Us >= s.rttP50Us, 'RTT measured');
      assert.ok(s.cpuPathPerGB > 0, 'CPU per GB measured');
    }
    assert.equal(d.samples.length, 2); // one underlay asked for
    assert.ok(d.summary.every((x: { underlay: string }) => x.underlay === 'offload'), 'every summary on the offloading underlay');
    assert.match(fs.readFileSync(path.join(out, 'latest.md'), 'utf8'), /#### Offloading underlay/);
    assert.match(fs.readFileSync(path.join(out, 'latest.md'), 'utf8'), /\| kernel VXLAN \| [0-9.]+ \(1\.00×\)/);
    // The lab's namespaces are named vxl<pid>-<hex>-… (older labs: pid % 100000): none of the child's may remain.
    const mine = (l: string) => l.startsWith(`vxl${r.pid}-`) || l.startsWith(`vxl${r.pid! % 100000}-`);
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter(mine);
    assert.deepEqual(left, []);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
