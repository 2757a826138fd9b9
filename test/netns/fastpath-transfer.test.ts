/**
 * Issue 5, fast path end to end: two vxmesh hosts, one container each; a 50 MB random file goes
 * over TCP container to container, both ways, and its sha256 is compared end to end — with offloads
 * on (`underlay.offload: true`, the default: vnet TAPs with TSO, UDP GSO/GRO, coalescing on write)
 * and off (phase-1 path). With offloads on the sender really carried TSO super-frames (it put more
 * datagrams on the wire than it read frames from the TAP); with them off one frame is one
 * datagram. Nothing is dropped but local_dst, and a full-MTU ping with DF still passes (the wire
 * never carries more than the MTU). Also over an IPv6 underlay with offloads on, and with the TAPs
 * read on addon threads (`underlay.tapThreads`: the reader thread really ran, and nothing changes).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentConfig, startAgent, type LabAgent } from '../../lab/vxmesh';
import { assertReaches, buildTopology, dropsByReason, labFor, netnsSkip } from '../helpers/lab';

const skip = netnsSkip();
const VNI = 42;
const BYTES = 50 * 1000 * 1000;

for (const [offload, family, threads] of [[true, 4, false], [false, 4, false], [true, 6, false], [true, 4, true]] as const) {
  test(`fast path (offload ${offload ? 'on' : 'off'}, IPv${family} underlay${threads ? ', TAP reader threads' : ''}): 50 MB both ways, sha256 equal end to end`,
    { skip, timeout: 240_000 }, async (t) => {
      const lab = await labFor(t, { hosts: 2, family });
      const topo = await buildTopology(lab, { perHost: 1 });
      const agents: LabAgent[] = [];
      for (const h of lab.hosts) {
        const cfg = agentConfig(lab, h, { networks: [{ name: 'blue', vni: VNI, bridge: 'br0' }], logLevel: 'warn' });
        (cfg.underlay as Record<string, unknown>).offload = offload;
        if (threads) (cfg.underlay as Record<string, unknown>).tapThreads = true;
        agents.push(await startAgent(lab, h, cfg));
      }
      const [a, b] = topo.all;
      await assertReaches(t, lab, a, b, { size: lab.overlayMtu - 28, dontFragment: true });

      for (const [x, y] of [[a, b], [b, a]] as const) {
        const r = await lab.tcpTransfer(x, y, { bytes: BYTES, timeoutMs: 90_000 });
        assert.equal(r.receivedBytes, BYTES, `${x.name} -> ${y.name} bytes`);
        assert.equal(r.receivedSha256, r.sentSha256, `${x.name} -> ${y.name} sha256`);
      }

      for (const ag of agents) {
        assert.ok(ag.running(), `agent ${ag.host.name} still running`);
        const n = await ag.network(VNI);
        t.diagnostic(`${ag.host.name}: txFrames ${n.txFrames} txPackets ${n.txPackets} rxPackets ${n.rxPackets} rxDelivered ${n.rxDelivered}`);
        // each side sent ≥ 50 MB of TCP payload: at least BYTES / MSS datagrams on the wire
        assert.ok(n.txPackets >= BYTES / lab.overlayMtu, `${ag.host.name} txPackets ${n.txPackets}`);
        if (offload) {
          assert.ok(n.txPackets > n.txFrames, `${ag.host.name}: TSO super-frames were segmented (txPackets ${n.txPackets} > txFrames ${n.txFrames})`);
        } else {
          assert.ok(n.txPackets <= n.txFrames, `${ag.host.name}: one datagram per frame (txPackets ${n.txPackets}, txFrames ${n.txFrames})`);
        }
        const st = (await ag.status()) as unknown as { networks: Array<{ vni: number; tapReader: { wakeups: number } | null }> };
        const reader = st.networks.find((x) => x.vni === VNI)?.tapReader ?? null;
        if (threads) assert.ok(reader !== null && reader.wakeups > 0, `${ag.host.name}: the TAP reader thread ran (${JSON.stringify(reader)})`);
        else assert.equal(reader, null, `${ag.host.name}: TAP read on the loop`);
        const drops = await dropsByReason(ag);
        delete drops['tx:local_dst'];
        assert.deepEqual(drops, {}, `${ag.host.name} drops`);
      }
    });
}
