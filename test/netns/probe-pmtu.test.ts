/**
 * Issue 16 item 1: path MTU per peer. Two hosts, one container each, static peers. While a bounded
 * TCP transfer runs from h1's container to h2's, the MTU of h2's port on the underlay switch
 * bridge drops from 1500 to 1400 (a Linux bridge drops larger frames silently: a black hole).
 * The probes find it (vxmesh_peer_path_mtu_bytes 1500 → 1400), the agent answers the container's
 * oversize frames with ICMP fragmentation needed (mtu 1350 = 1400 − 20 − 8 − 8 − 14), TCP adapts
 * and the transfer completes intact; `ping -M do` gets mtu 1350 back. The timeline is printed as
 * test diagnostics (seconds from the MTU change to the new gauge value and to the transfer moving
 * again).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, labFor, netnsSkip, startAgents } from '../helpers/lab';
import type { LabAgent } from '../../lab/vxmesh';
import type { Lab } from '../../lab/netns';

const skip = netnsSkip();
const VNI = 42;

interface ProbePeer { endpoint: string; state: string; pathMtu: number | null; innerMtu: number | null; phase: string }

async function probePeers(agent: LabAgent): Promise<ProbePeer[]> {
  const s = (await agent.status()) as unknown as { extensions?: { probe?: { peers?: ProbePeer[] } } };
  return s.extensions?.probe?.peers ?? [];
}

async function metricsText(lab: Lab, agent: LabAgent): Promise<string> {
  const script = 'fetch(process.argv[1],{signal:AbortSignal.timeout(5000)}).then(r=>r.text()).then(t=>process.stdout.write(t))';
  return (await lab.exec(agent.host.ns, process.execPath, ['-e', script, `${agent.apiUrl}/metrics`], { timeoutMs: 15_000 })).stdout;
}

test('pmtu: a smaller underlay link is found while TCP runs; containers get ICMP frag needed with the right MTU; the transfer completes', { skip, timeout: 240_000 }, async (t) => {
  // switchNetfilter: the shrunk switch port must hold packets to exactly 1400 bytes, as a link
  // would (a plain Linux bridge lets MTU + 4 through: the path would measure 1404; lab/netns.ts)
  const lab = await labFor(t, { hosts: 2, switchNetfilter: true });
  const topo = await buildTopology(lab, { perHost: 1 });
  const [a1, a2] = await startAgents(lab, [{ name: 'blue', vni: VNI, bridge: 'br0' }]);
  const [a, b] = topo.all;
  const h2 = lab.hosts[1];

  await lab.waitFor('h1 measured the path to h2 (1500)', async () => (await probePeers(a1)).some((p) => p.endpoint.startsWith(h2.address) && p.pathMtu === lab.underlayMtu), { timeoutMs: 20_000 });
  const before = (await probePeers(a1))[0];
  assert.equal(before.innerMtu, lab.underlayMtu - 50);

  const icmpCap = await lab.capture(a.ns, 'eth0', 'icmp', { name: 'icmp' });
  const bytes = 192 << 20;
  const started = Date.now();
  const xfer = lab.tcpTransfer(a, b, { bytes, timeoutMs: 180_000 });
  const delivered = async () => (await a2.network(VNI)).rxDeliveredBytes as number;
  // let the transfer get going, then shrink h2's switch port
  await lab.waitFor('transfer under way', async () => (await delivered()) > 8 << 20, { timeoutMs: 30_000 });
  const t0 = Date.now();
  const atChange = await delivered();
  await lab.ip(lab.switchNs, 'link', 'set', `p${h2.index}`, 'mtu', '1400');
  let tGauge = -1;
  let tMoving = -1;
  let done = false;
  void xfer.finally(() => { done = true; });
  while ((tGauge < 0 || tMoving < 0) && Date.now() - t0 < 120_000) {
    if (tGauge < 0 && (await probePeers(a1)).some((p) => p.pathMtu === 1400)) tGauge = (Date.now() - t0) / 1000;
    if (tMoving < 0 && ((await delivered()) - atChange > 16 << 20 || done)) tMoving = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 200));
  }
  const r = await xfer;
  const tDone = (Date.now() - t0) / 1000;
  // precise times from the agent's own log lines ("path MTU changed"; JSON with an ISO time, or the readable form)
  const logTime = (re: RegExp): number => {
    const line = a1.proc.output().split('\n').find((l) => l.includes('path MTU changed') && re.test(l));
    if (!line) return NaN;
    const iso = /"time":"([^"]+)"/.exec(line);
    if (iso) return Date.parse(iso[1]);
    const hms = /(\d\d):(\d\d):(\d\d)\.(\d\d\d)/.exec(line);
    if (!hms) return NaN;
    const d = new Date(t0);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), +hms[1], +hms[2], +hms[3], +hms[4]);
  };
  const logged = logTime(/pathMtu"?[:=]1400/);
  const unknownAt = logTime(/pathMtu"?[:=]null/);
  t.diagnostic(`timeline: MTU change at +${((t0 - started) / 1000).toFixed(1)} s into the transfer; black hole found (path MTU unknown, re-search) after ${((unknownAt - t0) / 1000).toFixed(1)} s; path MTU 1400 found after ${((logged - t0) / 1000).toFixed(1)} s (agent log; gauge seen by the poller after ${tGauge.toFixed(1)} s); transfer moving again (16 MiB more delivered) after ${tMoving.toFixed(1)} s; transfer of ${bytes >> 20} MiB complete after ${tDone.toFixed(1)} s`);
  assert.equal(r.receivedBytes, bytes);
  assert.equal(r.receivedSha256, r.sentSha256);
  assert.ok(tGauge > 0, 'the gauge shows the new path MTU');

  // the gauge, in the exposition
  const m = await metricsText(lab, a1);
  assert.match(m, new RegExp(`vxmesh_peer_path_mtu_bytes\\{peer="[^"]+",endpoint="${h2.address.replace(/\./g, '\\.')}:4789"\\} 1400`));
  const p = (await probePeers(a1))[0];
  assert.equal(p.innerMtu, 1350);
  // ping -M do: too large → the container learns mtu 1350 (from our ICMP, or from its cache of it)
  const big = await lab.exec(a.ns, 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '1', '-M', 'do', '-s', String(1400 - 28), b.address], { check: false, timeoutMs: 15_000 });
  const said = big.stdout + big.stderr;
  const icmpLines = await lab.readPcap(await icmpCap.stop(), '', { verbose: true });
  t.diagnostic(`ICMP seen by the container: ${icmpLines.length}; first: ${icmpLines[0] ?? '-'}`);
  assert.ok(icmpLines.length >= 1 && /need to frag \(mtu 1350\)/.test(icmpLines[0]), 'the container got fragmentation needed with mtu 1350');
  t.diagnostic(`ping -M do -s ${1400 - 28}: ${said.split('\n').filter((l) => /mtu/i.test(l))[0] ?? said}`);
  assert.match(said, /mtu ?= ?1350/);
  // the frames the agent refused (TCP's during the transfer, and the ping's) are counted and answered
  const c = await a1.network(VNI);
  assert.ok((c.txDrops as Record<string, number>).path_mtu > 0, JSON.stringify(c.txDrops));
  assert.match(await metricsText(lab, a1), /vxmesh_probe_icmp_total\{result="sent"\} [1-9]/);

  const fits = await lab.ping(a, b.address, { count: 3, intervalS: 0.2, size: 1350 - 28, dontFragment: true, waitS: 2 });
  assert.ok(fits.received >= 1, fits.output);
});
