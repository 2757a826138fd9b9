/**
 * Issue 2, interop: host h1 runs vxmesh, host h2 the Linux kernel's VXLAN (`ip link add … type
 * vxlan id 42 dstport 4789 … nolearning` on its bridge, head-end replication to h1). Ping and TCP
 * pass both ways; packets captured from vxmesh on the underlay decode as VXLAN with VNI 42 in
 * tshark (when installed) and tcpdump, carrying the container's frame.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { haveTool } from '../../lab/netns';
import { assertReaches, buildTopology, labFor, netnsSkip, startAgents } from '../helpers/lab';

const skip = netnsSkip('tcpdump');
const VNI = 42;

for (const family of [4, 6] as const) {
  test(`interop (IPv${family} underlay): vxmesh <-> kernel VXLAN, both ways, wire format decoded`, { skip, timeout: 120_000 }, async (t) => {
    const lab = await labFor(t, { hosts: 2, family });
    const topo = await buildTopology(lab, { perHost: 1 });
    const [h1, h2] = lab.hosts;
    const [a, b] = topo.all;
    await startAgents(lab, [{ name: 'blue', vni: VNI, bridge: 'br0' }], {}, [h1]);
    await lab.addKernelVxlan(h2, { vni: VNI, bridge: 'br0', peers: [h1.address] });

    const cap = await lab.capture(h1.ns, 'ul0', `udp dst port 4789 and src host ${h1.address}`, { name: 'vxmesh-out' });
    const started = Date.now();

    await assertReaches(t, lab, a, b); // vxmesh -> kernel
    await assertReaches(t, lab, b, a); // kernel -> vxmesh
    // Full-size frames both ways.
    await assertReaches(t, lab, a, b, { size: lab.overlayMtu - 28, dontFragment: true });
    await assertReaches(t, lab, b, a, { size: lab.overlayMtu - 28, dontFragment: true });
    for (const [x, y] of [[a, b], [b, a]] as const) {
      const r = await lab.tcpTransfer(x, y, { bytes: 2 << 20 });
      assert.equal(r.receivedBytes, 2 << 20);
      assert.equal(r.receivedSha256, r.sentSha256, `${x.name} -> ${y.name}`);
    }

    const file = await cap.stop();
    // tcpdump: UDP port 4789 is decoded as VXLAN by default.
    const lines = await lab.readPcap(file, '', { ether: true });
    assert.ok(lines.length > 0, 'captured vxmesh packets');
    const vx = lines.filter((l) => /VXLAN, flags \[I\] \(0x08\), vni 42\b/.test(l));
    // The only other packets are vxmesh's data-path probes (docs/wire-format.md §9: I flag clear,
    // so the kernel drops them before any VNI lookup: nothing reaches its bridge), and few of them.
    const probes = lines.filter((l) => /VXLAN, flags \[invalid\] \(0x01\), vni 42 \|/.test(l));
    assert.equal(vx.length + probes.length, lines.length, `not all decoded as VXLAN vni 42 or probes:\n${lines.filter((l) => !vx.includes(l) && !probes.includes(l)).slice(0, 5).join('\n')}`);
    const seconds = (Date.now() - started) / 1000;
    assert.ok(probes.length <= 3 * seconds + 10, `${probes.length} probes in ${seconds.toFixed(1)} s`);
    assert.ok(lines.some((l) => l.includes(a.mac)), 'the inner frame carries the container MAC');

    if (haveTool('tshark')) {
      const r = await lab.exec(null, 'tshark', ['-r', file, '-d', 'udp.port==4789,vxlan', '-T', 'fields', '-e', 'vxlan.vni', '-e', 'vxlan.flags', '-e', 'eth.src'], { timeoutMs: 60_000 });
      const all = r.stdout.trim().split('\n').filter(Boolean);
      assert.equal(all.length, lines.length);
      // probes: flags byte 0x01, then 'V' (vxlan.flags is the first 16 bits)
      const rows = all.filter((row) => Number(row.split('\t')[1]) !== 0x0156);
      assert.equal(rows.length, vx.length);
      for (const row of rows) {
        const [vni, flags, ethSrc] = row.split('\t');
        assert.equal(vni, String(VNI), row);
        assert.equal(Number(flags), 0x0800, row); // I flag only, reserved zero
        assert.equal(ethSrc.split(',').length, 2, row); // outer and inner Ethernet
      }
      assert.ok(rows.some((row) => row.split('\t')[2].split(',')[1] === a.mac), 'tshark sees the container MAC inside');
    } else {
      t.diagnostic('tshark not installed: decoded with tcpdump only');
    }
  });
}
