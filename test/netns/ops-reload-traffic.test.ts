/**
 * Issue 6 item 4, netns: SIGHUP reloads lose no traffic on an unchanged network. Two hosts, network
 * blue (VNI 42, br0) with one container on each, plus network green (VNI 44, br2) at start. While a
 * bounded ping stream (-c 2000 -i 0.01) runs between the two blue containers, both agents get
 * four reloads by rewriting their config file and sending SIGHUP to their PID:
 *   1. network red (VNI 43, br1) added,
 *   2. network green removed,
 *   3. static peers changed (an extra peer, 198.18.0.250) and log level info → debug,
 *   4. network red removed.
 * Each reload is checked as applied (the agent's log line, GET /v1/status, the TAPs appearing and
 * disappearing), and the ping stream must still be running when the last one is confirmed, so it
 * spans all four. Asserted: 0 of the blue echoes lost, the blue TAP kept its ifindex on both hosts,
 * and blue's counters show no drops other than `local_dst` (the global rx drops none).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { stringify } from 'yaml';
import { buildTopology, labFor, netnsSkip, startAgents } from '../helpers/lab';
import { parsePing, type Lab } from '../../lab/netns';
import type { LabAgent, LabNetwork } from '../../lab/vxmesh';

const skip = netnsSkip('ping');
const BLUE: LabNetwork = { name: 'blue', vni: 42, bridge: 'br0' };
const RED: LabNetwork = { name: 'red', vni: 43, bridge: 'br1' };
const GREEN: LabNetwork = { name: 'green', vni: 44, bridge: 'br2' };
/** Echoes in the stream; at 10 ms apart it lasts ~20 s, far more than four reloads take. */
const PINGS = 2000;

async function ifindex(lab: Lab, ns: string, ifname: string): Promise<number> {
  const r = await lab.ip(ns, '-j', 'link', 'show', 'dev', ifname);
  return (JSON.parse(r.stdout) as Array<{ ifindex: number }>)[0].ifindex;
}

/** Non-zero drops of network `vni` (rx/tx by reason) plus the agent's global rx drops. */
async function dropsOf(agent: LabAgent, vni: number): Promise<Record<string, number>> {
  const s = await agent.status();
  const n = s.networks.find((x) => x.vni === vni);
  assert.ok(n?.counters, `${agent.host.name} reports network ${vni}`);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(n.counters.rxDrops)) if (v) out[`rx:${k}`] = v;
  for (const [k, v] of Object.entries(n.counters.txDrops)) if (v) out[`tx:${k}`] = v;
  for (const [k, v] of Object.entries(s.counters?.rxDrops ?? {})) if (v) out[`global-rx:${k}`] = v;
  return out;
}

const count = (text: string, re: RegExp): number => (text.match(new RegExp(re.source, 'g')) ?? []).length;

test('SIGHUP reloads (network added, another removed, peers + log level changed) lose no traffic on an unchanged network', { skip, timeout: 180_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const topo = await buildTopology(lab, { perHost: 1, bridge: BLUE.bridge });
  const agents = await startAgents(lab, [BLUE, GREEN]);
  const [a, b] = topo.all;

  // Warm up: ARP and the agents' FDBs learned before the measured stream starts.
  const warm = await lab.ping(a, b.address, { count: 5, intervalS: 0.05 });
  assert.ok(warm.received > 0, `blue ${a.name} -> ${b.name} reachable before the reloads:\n${warm.output}`);

  const blueTap = new Map<LabAgent, { name: string; ifindex: number }>();
  for (const ag of agents) {
    const name = await ag.tapOf(BLUE.vni);
    blueTap.set(ag, { name, ifindex: await ifindex(lab, ag.host.ns, name) });
    assert.ok(await lab.linkExists(ag.host.ns, await ag.tapOf(GREEN.vni)), `${ag.host.name} green TAP exists at start`);
  }

  const before = (await lab.linkStats(b.ns, b.ifname)).rxPackets;
  const stream = lab.spawn(a.ns, 'ping', ['-n', '-q', '-c', String(PINGS), '-i', '0.01', '-W', '2', b.address], { name: `ping@${a.name}` });
  // Echoes arriving at the far container: the stream is under way before the first SIGHUP.
  await lab.waitFor('the blue stream to start', async () => {
    if (!stream.running()) throw new Error(`ping exited early:\n${stream.output()}`);
    return (await lab.linkStats(b.ns, b.ifname)).rxPackets > before;
  }, { timeoutMs: 10_000, intervalMs: 20 });

  let applied = 0;
  const reload = async (what: string, networks: LabNetwork[], extra: { peers?: (ag: LabAgent) => string[]; logLevel?: string } = {}) => {
    applied++;
    for (const ag of agents) {
      const cfg: Record<string, unknown> = { ...ag.config, networks: networks.map((n) => ({ ...n })) };
      if (extra.peers) cfg.peers = extra.peers(ag);
      if (extra.logLevel) cfg.log = { level: extra.logLevel };
      fs.writeFileSync(ag.configPath, stringify(cfg));
      process.kill(ag.proc.pid, 'SIGHUP');
    }
    for (const ag of agents) {
      await lab.waitFor(`${ag.host.name}: reload ${applied} (${what}) applied`, () => {
        if (!ag.running()) throw new Error(`agent ${ag.host.name} exited:\n${ag.proc.output()}`);
        const out = ag.proc.output();
        if (/"msg":"reload: (?!config applied)/.test(out)) throw new Error(`agent ${ag.host.name} failed a reload:\n${out}`);
        return count(out, /reload: config applied/) >= applied;
      }, { timeoutMs: 30_000, intervalMs: 20 });
      const s = await ag.status();
      assert.deepEqual(s.networks.map((n) => n.vni).sort(), networks.map((n) => n.vni).sort(), `${ag.host.name} networks after reload ${applied} (${what})`);
    }
  };

  // 1. red added: its bridge and TAP appear.
  await reload('red added', [BLUE, GREEN, RED]);
  const redTap = await agents[0].tapOf(RED.vni);
  for (const ag of agents) {
    assert.ok(await lab.linkExists(ag.host.ns, RED.bridge), `${ag.host.name} red bridge created`);
    assert.ok(await lab.linkExists(ag.host.ns, redTap), `${ag.host.name} red TAP ${redTap} created`);
  }
  const greenTap = `vx-${GREEN.name}`;

  // 2. green removed: its TAP disappears.
  await reload('green removed', [BLUE, RED]);
  for (const ag of agents) assert.equal(await lab.linkExists(ag.host.ns, greenTap), false, `${ag.host.name} green TAP removed`);

  // 3. static peers and log level changed.
  const EXTRA_PEER = '198.18.0.250';
  await reload('peers and log level changed', [BLUE, RED], {
    peers: (ag) => [...(ag.config.peers as string[]), EXTRA_PEER],
    logLevel: 'debug',
  });
  for (const ag of agents) {
    const s = await ag.status();
    assert.ok((s.staticPeers as string[]).some((p) => p.startsWith(`${EXTRA_PEER}:`)), `${ag.host.name} static peers: ${JSON.stringify(s.staticPeers)}`);
    assert.match(ag.proc.output(), /log level changed/, `${ag.host.name} logged the new level`);
  }

  // 4. red removed: its TAP disappears.
  await reload('red removed', [BLUE]);
  for (const ag of agents) assert.equal(await lab.linkExists(ag.host.ns, redTap), false, `${ag.host.name} red TAP removed`);

  // The stream spanned every reload (otherwise the loss figure would prove nothing).
  assert.ok(stream.running(), `the ping stream had ended before the last reload was applied; raise PINGS:\n${stream.output()}`);
  const exit = await stream.exited;
  const p = parsePing(stream.output());
  assert.equal(p.transmitted, PINGS, stream.output());
  assert.equal(p.received, PINGS, `blue echoes lost across the reloads: ${PINGS - p.received} of ${PINGS}\n${stream.output()}`);
  assert.equal(exit.code, 0);

  for (const ag of agents) {
    assert.ok(ag.running(), `agent ${ag.host.name} still running`);
    const tap = blueTap.get(ag)!;
    assert.equal(await ag.tapOf(BLUE.vni), tap.name);
    assert.equal(await ifindex(lab, ag.host.ns, tap.name), tap.ifindex, `${ag.host.name} blue TAP ${tap.name} was not recreated`);
    const n = await ag.network(BLUE.vni);
    assert.ok(n.rxDelivered >= PINGS, `${ag.host.name} delivered ${n.rxDelivered} blue frames from the underlay`);
    const drops = await dropsOf(ag, BLUE.vni);
    delete drops['tx:local_dst'];
    assert.deepEqual(drops, {}, `${ag.host.name} blue drops`);
  }
});
