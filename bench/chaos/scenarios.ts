/**
 * Chaos, churn and load scenarios on real agents in network namespaces (issue 11, item 5). Each
 * builds its own lab, runs bounded loops (count and time), returns its figures and the list of
 * violations of what must hold (empty = pass), and always destroys its lab. Sizes come from the
 * caller: `npm run chaos` (bench/chaos/run.ts) at full size, test/netns/chaos.test.ts smaller.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { generateClusterKey } from '../../src/gossip/keyring';
import { Lab, LabContainer, LabHost, REPO_ROOT } from '../../lab/netns';
import { agentConfig, httpGetJson, startAgent, type LabAgent } from '../../lab/vxmesh';
import { cpuSeconds, fdCount, heal, impairUnderlay, machineTicks, udpSnmp, memberEvents, members, partition, quantiles, rssKb, sleep, tapsAndBridges, type Impairment } from './lib';
import { guardTable, parseGuardCounts } from '../../src/crypto/flood-guard';

export interface ScenarioResult {
  name: string;
  figures: Record<string, unknown>;
  violations: string[];
  seconds: number;
}

export type Log = (msg: string) => void;
const VNI = 42;
const NET = { name: 'ov', vni: VNI, bridge: 'br0' };

async function gossipLab(hosts: number, imp: Impairment | null, profile: string, withContainers: boolean): Promise<{
  lab: Lab; agents: LabAgent[]; config: (h: LabHost) => Record<string, unknown>; containers: LabContainer[];
}> {
  const lab = await Lab.create({ hosts });
  try {
    if (imp) await impairUnderlay(lab, imp);
    const containers: LabContainer[] = [];
    if (withContainers) {
      for (const h of lab.hosts) {
        await lab.addBridge(h, 'br0');
        containers.push(await lab.addContainer(h, { bridge: 'br0', name: `h${h.index}c1`, address: `198.19.0.${h.index}/24` }));
      }
    }
    const keyFile = lab.writeFile('cluster.key', `${await generateClusterKey()}\n`);
    const config = (h: LabHost): Record<string, unknown> => {
      const c = agentConfig(lab, h, { networks: [NET], logLevel: process.env.VXMESH_CHAOS_LOG === 'debug' ? 'debug' : 'info', extra: { gossip: { seeds: [lab.hosts[0].address], keyFile, profile } } });
      delete c.peers;
      return c;
    };
    const agents: LabAgent[] = [];
    for (const h of lab.hosts) agents.push(await startAgent(lab, h, config(h), { readyTimeoutMs: 60_000 }));
    await waitAllAlive(lab, agents, hosts, 120_000);
    return { lab, agents, config, containers };
  } catch (e) {
    await lab.destroy();
    throw e;
  }
}

async function waitAllAlive(lab: Lab, agents: LabAgent[], n: number, timeoutMs: number): Promise<void> {
  await lab.waitFor(`every agent sees ${n} alive members`, async () => {
    for (const a of agents) {
      const ms = await members(lab, a).catch(() => []);
      if (ms.filter((m) => m.state === 'alive').length !== n) return false;
    }
    return true;
  }, { timeoutMs, intervalMs: 1000 });
}

async function timed<T extends Omit<ScenarioResult, 'seconds'>>(fn: () => Promise<T>): Promise<ScenarioResult> {
  const t0 = Date.now();
  const r = await fn();
  return { ...r, seconds: Math.round((Date.now() - t0) / 100) / 10 };
}

/** kill -9 one host (not the seed) per trial; seconds until every other agent logged it dead. */
export function killDetection(o: { hosts: number; trials: number; imp: Impairment | null; profile: string; deadlineS: number }, log: Log): Promise<ScenarioResult> {
  return timed(async () => {
    const { lab, agents, config } = await gossipLab(o.hosts, o.imp, o.profile, false);
    const violations: string[] = [];
    const trials: number[] = [];
    try {
      for (let k = 0; k < o.trials; k++) {
        const idx = 1 + (k % (o.hosts - 1));
        const victim = agents[idx];
        const name = victim.host.name;
        const t0 = Date.now();
        process.kill(victim.proc.pid, 'SIGKILL');
        await victim.proc.exited;
        const others = agents.filter((a) => a !== victim);
        let last = 0;
        try {
          await lab.waitFor(`${name} declared dead by all`, () => {
            let worst = 0;
            for (const a of others) {
              const ev = memberEvents(a, t0).find((e) => e.member === name && e.event === 'dead');
              if (!ev) return false;
              worst = Math.max(worst, ev.time - t0);
            }
            last = worst;
            return true;
          }, { timeoutMs: o.deadlineS * 1000, intervalMs: 100 });
          trials.push(last / 1000);
          log(`kill -9 ${name}: dead everywhere after ${(last / 1000).toFixed(2)} s`);
        } catch {
          const missing = others.filter((a) => !memberEvents(a, t0).some((e) => e.member === name && e.event === 'dead')).map((a) => a.host.name);
          violations.push(`trial ${k}: ${name} not declared dead within ${o.deadlineS} s by ${missing.join(' ')}`);
        }
        // Back for the next trial: restarted, and alive again everywhere.
        const t1 = Date.now();
        agents[idx] = await startAgent(lab, victim.host, config(victim.host), { readyTimeoutMs: 60_000 });
        await lab.waitFor(`${name} back in every view`, () => others.every((a) => memberEvents(a, t1).some((e) => e.member === name && e.event === 'join')), { timeoutMs: 90_000, intervalMs: 200 })
          .catch(() => violations.push(`trial ${k}: ${name} did not rejoin within 90 s`));
      }
    } finally {
      await lab.destroy();
    }
    const q = quantiles(trials);
    return { name: 'kill-9 detection', figures: { hosts: o.hosts, trials: trials.length, impairment: o.imp, profile: o.profile, secondsPerTrial: trials, median: q.median, p99: q.p99, max: q.max }, violations };
  });
}

/** Partition into two halves for `partitionS`, heal: seconds until every container reaches every other again, and no endpoint lost. */
export function partitionHeal(o: { hosts: number; partitionS: number; imp: Impairment | null; profile: string; deadlineS: number }, log: Log): Promise<ScenarioResult> {
  return timed(async () => {
    const { lab, agents, containers } = await gossipLab(o.hosts, o.imp, o.profile, true);
    const violations: string[] = [];
    const figures: Record<string, unknown> = { hosts: o.hosts, partitionS: o.partitionS, impairment: o.imp, profile: o.profile };
    try {
      await reachAll(lab, containers, 120_000); // first contact (ARP, FDB learning) before the cut
      const half = Math.floor(o.hosts / 2);
      const a = lab.hosts.slice(0, half);
      const b = lab.hosts.slice(half);
      await partition(lab, a, b);
      log(`partitioned ${a.length} + ${b.length} for ${o.partitionS} s`);
      await sleep(o.partitionS * 1000);
      // per agent: members it holds dead at the end of the partition (null: its API did not answer)
      const views = await Promise.all(agents.map((x) => members(lab, x).catch(() => null)));
      figures.deadDuringPartition = views.map((v) => (v === null ? null : v.filter((m) => m.state === 'dead').length));
      await heal(lab, a, b);
      const t0 = Date.now();
      try {
        await waitAllAlive(lab, agents, o.hosts, o.deadlineS * 1000);
        figures.membersConvergedS = (Date.now() - t0) / 1000;
        const left = await reachAll(lab, containers, o.deadlineS * 1000);
        figures.allReachS = (Date.now() - t0) / 1000;
        if (left.length) violations.push(`after heal, pairs never reached: ${left.slice(0, 10).join(' ')}`);
      } catch (e) {
        violations.push(`not healed within ${o.deadlineS} s: ${(e as Error).message.split('\n')[0]}`);
      }
      // No endpoint lost: every agent holds a gossip (static) FDB entry for every other host's container.
      const lost: string[] = [];
      for (const x of agents) {
        const v = (await httpGetJson(lab, x.host.ns, `${x.apiUrl}/v1/fdb`)) as { networks: { vni: number; entries: { mac: string }[] }[] };
        const macs = new Set(v.networks.flatMap((n) => n.entries.map((e) => e.mac)));
        for (const c of containers) if (c.host !== x.host && !macs.has(c.mac)) lost.push(`${x.host.name} lacks ${c.name}`);
      }
      figures.endpointsLost = lost.length;
      if (lost.length) violations.push(`endpoints lost: ${lost.slice(0, 10).join(', ')}`);
      log(`healed: members converged in ${figures.membersConvergedS} s, all ${containers.length * (containers.length - 1)} pairs reach in ${figures.allReachS} s, ${lost.length} endpoints lost`);
    } finally {
      await lab.destroy();
    }
    return { name: 'partition and heal', figures, violations };
  });
}

/** Pings every ordered pair (32 at a time) until each has answered once, or the deadline; returns the pairs never reached. */
async function reachAll(lab: Lab, cs: LabContainer[], timeoutMs: number): Promise<string[]> {
  const todo: Array<[LabContainer, LabContainer]> = [];
  for (const x of cs) for (const y of cs) if (x !== y) todo.push([x, y]);
  const deadline = Date.now() + timeoutMs;
  let left = todo;
  while (left.length && Date.now() < deadline) {
    const next: Array<[LabContainer, LabContainer]> = [];
    for (let i = 0; i < left.length; i += 32) {
      const batch = left.slice(i, i + 32);
      const got = await Promise.all(batch.map(([f, t]) => lab.ping(f, t.address, { count: 1, waitS: 1 }).then((p) => p.received === 1, () => false)));
      batch.forEach((p, j) => { if (!got[j]) next.push(p); });
    }
    left = next;
  }
  return left.map(([f, t]) => `${f.name}>${t.name}`);
}

/** `slow` agents SIGSTOPped for `stopS` every `everyS` during `durationS`: no member may be declared dead. */
export function slowMembers(o: { hosts: number; slow: number; stopS: number; everyS: number; durationS: number; imp: Impairment | null; profile: string }, log: Log): Promise<ScenarioResult> {
  return timed(async () => {
    const { lab, agents } = await gossipLab(o.hosts, o.imp, o.profile, false);
    const violations: string[] = [];
    const slow = agents.slice(1, 1 + o.slow);
    const t0 = Date.now();
    let pauses = 0;
    const pauseAt: number[] = [];
    try {
      const rounds = Math.floor(o.durationS / o.everyS);
      for (let i = 0; i < rounds; i++) {
        const start = Date.now();
        pauseAt.push(start);
        for (const a of slow) process.kill(a.proc.pid, 'SIGSTOP');
        await sleep(o.stopS * 1000);
        for (const a of slow) process.kill(a.proc.pid, 'SIGCONT');
        pauses++;
        await sleep(Math.max(0, o.everyS * 1000 - (Date.now() - start)));
      }
      await sleep(3000); // let any late verdict show
    } finally {
      for (const a of slow) try { process.kill(a.proc.pid, 'SIGCONT'); } catch { /* gone */ }
    }
    const deaths: string[] = [];
    for (const a of agents) {
      for (const e of memberEvents(a, t0)) {
        if (e.event === 'dead') deaths.push(`${a.host.name} saw ${e.member} dead`);
      }
    }
    for (const a of agents) if (!a.running()) violations.push(`${a.host.name}'s agent exited`);
    if (deaths.length) {
      // The timeline that led to each verdict: every member event of every agent (ms since t0), and the pauses.
      log(`pauses at ${pauseAt.map((t) => t - t0).join(', ')} ms (slow: ${slow.map((a) => a.host.name).join(', ')})`);
      for (const a of agents) {
        const evs = memberEvents(a, t0).filter((e) => e.event !== 'join' && e.event !== 'update');
        if (evs.length) log(`${a.host.name}: ${evs.map((e) => `${e.time - t0} ${e.member} ${e.event}`).join('; ')}`);
      }
    }
    await lab.destroy();
    if (deaths.length) violations.push(`${deaths.length} false deaths: ${deaths.slice(0, 10).join(', ')}`);
    log(`${pauses} pauses of ${slow.length} agents for ${o.stopS} s: ${deaths.length} false deaths`);
    return { name: 'slow members', figures: { ...o, pauses, falseDeaths: deaths.length }, violations };
  });
}

/** Agent of h2 restarted `restarts` times (SIGTERM and SIGKILL alternating in a fixed pattern) under a ping stream. */
export function restarts(o: { restarts: number; rssSlackPct: number }, log: Log): Promise<ScenarioResult> {
  return timed(async () => {
    const lab = await Lab.create({ hosts: 2 });
    const violations: string[] = [];
    const figures: Record<string, unknown> = { restarts: o.restarts };
    try {
      const cs: LabContainer[] = [];
      for (const h of lab.hosts) {
        await lab.addBridge(h, 'br0');
        cs.push(await lab.addContainer(h, { bridge: 'br0', name: `h${h.index}c1`, address: `198.19.0.${h.index}/24` }));
      }
      const cfg = (h: LabHost) => agentConfig(lab, h, { networks: [NET], logLevel: 'warn' });
      const steady = await startAgent(lab, lab.hosts[0], cfg(lab.hosts[0]), { readyTimeoutMs: 60_000 });
      let churn = await startAgent(lab, lab.hosts[1], cfg(lab.hosts[1]), { readyTimeoutMs: 60_000 });
      const nsBefore = Lab.listNamespaces(lab.prefix).length;
      const pinger = lab.spawn(cs[0].ns, 'ping', ['-n', '-q', '-i', '0.05', '-w', String(Math.min(3600, 30 + o.restarts * 5)), cs[1].address], { name: 'ping-stream' });
      await sleep(1000);
      const fd0 = fdCount(steady.proc.pid);
      const rss: number[] = [];
      const churnFds: number[] = [];
      for (let i = 0; i < o.restarts; i++) {
        const kill = i % 3 === 2; // two SIGTERMs, then a SIGKILL
        if (kill) {
          process.kill(churn.proc.pid, 'SIGKILL');
          await churn.proc.exited;
        } else {
          const r = await churn.stop(10_000);
          if (r.code !== 0) violations.push(`restart ${i}: SIGTERM exit ${r.code}/${r.signal}`);
        }
        const links = await tapsAndBridges(lab, lab.hosts[1].ns);
        if (links.taps.length !== 0) violations.push(`restart ${i}: TAPs left after the agent ended: ${links.taps.join(' ')}`);
        if (links.bridges.join() !== 'br0') violations.push(`restart ${i}: bridges ${links.bridges.join(' ')} (want br0 only)`);
        churn = await startAgent(lab, lab.hosts[1], cfg(lab.hosts[1]), { readyTimeoutMs: 60_000 });
        const up = await tapsAndBridges(lab, lab.hosts[1].ns);
        if (up.taps.length !== 1) violations.push(`restart ${i}: ${up.taps.length} TAPs while running`);
        churnFds.push(fdCount(churn.proc.pid) ?? -1);
        rss.push(rssKb(steady.proc.pid) ?? -1);
        if (i % 25 === 24) log(`${i + 1} restarts; steady agent RSS ${rss[rss.length - 1]} KiB, fds ${fdCount(steady.proc.pid)}`);
      }
      await lab.stop(pinger, { signal: 'SIGINT', timeoutMs: 5000 });
      const m = /(\d+) packets transmitted, (\d+) received/.exec(pinger.output());
      figures.ping = m ? { transmitted: Number(m[1]), received: Number(m[2]) } : null;
      const fd1 = fdCount(steady.proc.pid);
      figures.steadyFds = { start: fd0, end: fd1 };
      if (fd0 !== null && fd1 !== null && fd1 > fd0 + 2) violations.push(`steady agent fds grew ${fd0} → ${fd1}`);
      figures.churnFds = { first: churnFds[0], last: churnFds[churnFds.length - 1], max: Math.max(...churnFds) };
      if (churnFds.length && Math.max(...churnFds) > churnFds[0] + 2) violations.push(`restarted agent's fds at ready vary: ${churnFds[0]}..${Math.max(...churnFds)}`);
      const warm = rss.slice(Math.min(rss.length - 1, Math.floor(rss.length / 4)));
      figures.steadyRssKb = { afterWarmup: warm[0], end: rss[rss.length - 1], max: Math.max(...rss) };
      if (warm.length && rss[rss.length - 1] > warm[0] * (1 + o.rssSlackPct / 100)) violations.push(`steady agent RSS grew ${warm[0]} → ${rss[rss.length - 1]} KiB`);
      const nsAfter = Lab.listNamespaces(lab.prefix).length;
      if (nsAfter !== nsBefore) violations.push(`namespaces ${nsBefore} → ${nsAfter}`);
      figures.namespaces = { before: nsBefore, after: nsAfter };
      await churn.stop();
      await steady.stop();
      log(`${o.restarts} restarts: steady fds ${fd0}→${fd1}, RSS ${JSON.stringify(figures.steadyRssKb)}, ping ${JSON.stringify(figures.ping)}`);
    } finally {
      await lab.destroy();
    }
    return { name: 'agent restarts under traffic', figures, violations };
  });
}

/** `reloads` SIGHUPs to an agent with an unchanged config while a ping stream crosses it: 0 lost. */
export function reloads(o: { reloads: number; intervalMs: number }, log: Log): Promise<ScenarioResult> {
  return timed(async () => {
    const lab = await Lab.create({ hosts: 2 });
    const violations: string[] = [];
    const figures: Record<string, unknown> = { reloads: o.reloads, intervalMs: o.intervalMs };
    try {
      const cs: LabContainer[] = [];
      for (const h of lab.hosts) {
        await lab.addBridge(h, 'br0');
        cs.push(await lab.addContainer(h, { bridge: 'br0', name: `h${h.index}c1`, address: `198.19.0.${h.index}/24` }));
      }
      const agents: LabAgent[] = [];
      for (const h of lab.hosts) agents.push(await startAgent(lab, h, agentConfig(lab, h, { networks: [NET], logLevel: 'info' }), { readyTimeoutMs: 60_000 }));
      await lab.ping(cs[0], cs[1].address, { count: 3, intervalS: 0.2 }); // ARP and FDB warm
      // The stream covers the reloads at their interval plus up to 100 ms per reload (each waits for
      // the one before it, below); reloads still running after it are counted as such.
      const secs = Math.ceil((o.reloads * (o.intervalMs + 100)) / 1000) + 2;
      const count = Math.round(secs / 0.02);
      const pinger = lab.spawn(cs[0].ns, 'ping', ['-n', '-q', '-i', '0.02', '-c', String(count), '-W', '5', cs[1].address], { name: 'ping-stream' });
      await sleep(500);
      // Each SIGHUP waits for the previous reload to be logged: two signals that arrive while the
      // agent has no CPU are one pending signal to the kernel, so a fixed rate could lose some on a
      // loaded machine without any fault of the agent.
      let afterStream = 0;
      const appliedNow = () => (agents[0].proc.output().match(/reload: config applied/g) ?? []).length;
      for (let i = 0; i < o.reloads; i++) {
        const before = appliedNow();
        process.kill(agents[0].proc.pid, 'SIGHUP');
        await lab.waitFor(`reload ${i + 1} to be applied`, () => appliedNow() > before, { timeoutMs: 10_000, intervalMs: 5 }).catch(() => undefined);
        await sleep(o.intervalMs);
        if (!pinger.running()) afterStream++;
      }
      figures.reloadsAfterStream = afterStream;
      await lab.waitFor('the ping stream to end', () => !pinger.running(), { timeoutMs: secs * 1000 + 30_000, intervalMs: 200 });
      const m = /(\d+) packets transmitted, (\d+) received/.exec(pinger.output());
      const tx = m ? Number(m[1]) : 0;
      const rx = m ? Number(m[2]) : 0;
      const applied = (agents[0].proc.output().match(/reload: config applied/g) ?? []).length;
      figures.ping = { transmitted: tx, received: rx, lost: tx - rx };
      figures.reloadsApplied = applied;
      if (!m) violations.push(`no ping summary: ${pinger.output().slice(-300)}`);
      else if (tx !== rx) violations.push(`${tx - rx} of ${tx} pings lost during ${o.reloads} reloads`);
      if (applied !== o.reloads) violations.push(`only ${applied} of ${o.reloads} reloads logged as applied`);
      if (!agents[0].running()) violations.push('the reloaded agent exited');
      log(`${o.reloads} SIGHUPs (${applied} applied): ping ${tx - rx} lost of ${tx}`);
    } finally {
      await lab.destroy();
    }
    return { name: 'SIGHUP reloads under a ping stream', figures, violations };
  });
}

/**
 * Encrypted network between h1 and h2 (static peers with pinned keys); h3 floods h1's VXLAN port
 * with forged initiations (bad mac1) at `rate`/s (bench/chaos/flood.ts: sendmmsg through the addon,
 * its own CPU reported). Goodput of TCP streams c1 → c2 (bench/chaos/goodput.ts, `transferS`
 * seconds each), `samples` pairs interleaved flood off / flood on, ratio of the medians (the
 * machine is shared: its load drifts through both sides alike); one integrity-checked transfer
 * during a flood; h1's UDP counters (kernel drops); h1's handshake counters (no DH for bad mac1, every forgery counted); CPU of
 * both agents, the flooder and the machine during each window; h1's RSS before/after.
 */
export function handshakeFlood(o: {
  rate: number; transferS: number; samples: number; minGoodputRatio: number; rssSlackPct: number;
  /** Where the forgeries go: 4789 (the agent) by default; a closed port measures the machine's own cost of the packets (control). */
  port?: number;
  /**
   * A third arm in every sample: the same flood at port 4790, dropped by an nftables netdev-ingress
   * rule on h1's underlay link (the cheapest receiver there is: no IP, no socket, no agent). Its
   * goodput is what the machine alone leaves when it carries the packets, in the same run; the
   * agent's own share of the loss is the flood arm's goodput over the control arm's.
   */
  control?: boolean;
  /** The agents' kernel flood guard (`underlay.handshakeGuard`, default on); false for an A/B. */
  guard?: boolean;
  /**
   * `one` (default): every forgery from the flooding host's address (flood.ts, UDP socket).
   * `forged`: each from a random source address in 198.18.128.0/17 (flood-raw.c, raw socket,
   * built here with the system C compiler): the attacker a per-source limit cannot stop.
   */
  sources?: 'one' | 'forged';
}, log: Log): Promise<ScenarioResult> {
  return timed(async () => {
    const lab = await Lab.create({ hosts: 3 });
    const violations: string[] = [];
    const floodPort = o.port ?? 4789;
    const figures: Record<string, unknown> = { rate: o.rate, floodPort, transferS: o.transferS, samples: o.samples, guard: o.guard !== false };
    const BIN = path.join(REPO_ROOT, 'bin', 'vxmesh');
    const GOODPUT = path.join(REPO_ROOT, 'dist', 'bench', 'chaos', 'goodput.js');
    const MTU = 1500 - 82;
    try {
      const cs: LabContainer[] = [];
      const pubs: string[] = [];
      const keys: string[] = [];
      for (const h of lab.hosts.slice(0, 2)) {
        await lab.addBridge(h, 'br0');
        cs.push(await lab.addContainer(h, { bridge: 'br0', name: `f${h.index}c1`, address: `198.19.0.${h.index}/24`, mtu: MTU }));
        const file = path.join(lab.dir, `host-${h.name}.key`);
        const r = await lab.exec(h.ns, process.execPath, [BIN, 'keygen', 'host', '--out', file]);
        const pub = (r.stdout + r.stderr).match(/[A-Za-z0-9+/]{43}=/)?.[0];
        if (!pub) throw new Error(`keygen printed no key: ${r.stdout}${r.stderr}`);
        pubs.push(pub);
        keys.push(file);
      }
      const agents: LabAgent[] = [];
      for (const h of lab.hosts.slice(0, 2)) {
        const c = agentConfig(lab, h, { networks: [{ ...NET, mtu: MTU, encrypted: true } as never], logLevel: 'warn' });
        const other = lab.hosts[h.index === 1 ? 1 : 0];
        c.node = { name: h.name, keyFile: keys[h.index - 1] };
        if (o.guard === false) (c.underlay as Record<string, unknown>).handshakeGuard = false;
        c.peers = [{ address: other.address, publicKey: pubs[other.index - 1] }];
        agents.push(await startAgent(lab, h, c, { readyTimeoutMs: 60_000 }));
      }
      await lab.waitFor('an encrypted session', async () => (await lab.ping(cs[0], cs[1].address, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 30_000, intervalMs: 200 });
      const counters = async () => (((await agents[0].status()).extensions as Record<string, { counters: Record<string, number> }>).crypto.counters);
      let port = 5100;
      const goodput = async (): Promise<number> => {
        const p = port++;
        const sink = lab.spawn(cs[1].ns, process.execPath, [GOODPUT, 'sink', cs[1].address, String(p), String(o.transferS * 1000 + 60_000)], { name: 'goodput-sink' });
        await lab.waitForOutput(sink, 'listening', 20_000);
        await lab.exec(cs[0].ns, process.execPath, [GOODPUT, 'source', cs[1].address, String(p), String(o.transferS)], { timeoutMs: o.transferS * 1000 + 60_000 });
        await sink.exited;
        const r = JSON.parse(sink.stdout().trim().split('\n').pop() || '{}') as { bytes?: number; seconds?: number };
        if (!r.bytes || !r.seconds) throw new Error(`goodput sink printed no result: ${sink.output().slice(-300)}`);
        return (r.bytes * 8) / r.seconds / 1e6;
      };
      // CPU of both agents and the machine over a period, accumulated per bucket (flood off / on)
      type Cpu = { secs: number; a: number[]; wait: number[]; busy: number; softirq: number; total: number };
      const zero = (): Cpu => ({ secs: 0, a: [0, 0], wait: [0, 0], busy: 0, softirq: 0, total: 0 });
      // Time the agents' event-loop threads were runnable but not running (/proc/PID/schedstat: run, wait ns):
      // whether an agent is starved of CPU or idle waiting for packets.
      const runqWait = (pid: number): number => {
        try { return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9; } catch { return 0; }
      };
      const acc = { off: zero(), on: zero() };
      const measured = async <T>(bucket: Cpu, fn: () => Promise<T>): Promise<T> => {
        const a0 = agents.map((x) => cpuSeconds(x.proc.pid) ?? 0);
        const w0 = agents.map((x) => runqWait(x.proc.pid));
        const m0 = machineTicks();
        const t0 = Date.now();
        const r = await fn();
        const m1 = machineTicks();
        agents.forEach((x, i) => { bucket.a[i] += (cpuSeconds(x.proc.pid) ?? 0) - a0[i]; bucket.wait[i] += runqWait(x.proc.pid) - w0[i]; });
        bucket.secs += (Date.now() - t0) / 1000;
        bucket.busy += m1.busy - m0.busy;
        bucket.softirq += m1.softirq - m0.softirq;
        bucket.total += m1.total - m0.total;
        return r;
      };
      const cpuOf = (c: Cpu) => ({
        h1AgentPct: Math.round((c.a[0] / c.secs) * 1000) / 10, h2AgentPct: Math.round((c.a[1] / c.secs) * 1000) / 10,
        h1AgentRunqWaitPct: Math.round((c.wait[0] / c.secs) * 1000) / 10, h2AgentRunqWaitPct: Math.round((c.wait[1] / c.secs) * 1000) / 10,
        machineBusyPct: Math.round((c.busy / c.total) * 1000) / 10, machineSoftirqPct: Math.round((c.softirq / c.total) * 1000) / 10,
      });
      let rawFlooder: string | null = null;
      if (o.sources === 'forged') {
        rawFlooder = path.join(lab.dir, 'flood-raw');
        await lab.exec(null, 'cc', ['-O2', '-Wall', '-o', rawFlooder, path.join(REPO_ROOT, 'bench', 'chaos', 'flood-raw.c')]);
      }
      figures.sources = o.sources ?? 'one';
      const startFlood = (secs: number, dport = floodPort) => rawFlooder
        ? lab.spawn(lab.hosts[2].ns, rawFlooder, [lab.hosts[0].address, String(dport), String(o.rate), String(secs), String(Math.ceil(o.rate * secs)), '198.18.128.0', '17'], { name: 'flood' })
        : lab.spawn(lab.hosts[2].ns, process.execPath, [path.join(REPO_ROOT, 'dist', 'bench', 'chaos', 'flood.js'),
          lab.hosts[0].address, String(dport), String(o.rate), String(secs), String(Math.ceil(o.rate * secs))], { name: 'flood' });
      const CONTROL_PORT = 4790;
      if (o.control) {
        const rules = `table netdev vxmesh_flood_control {\n chain in {\n  type filter hook ingress device "ul0" priority -500;\n  udp dport ${CONTROL_PORT} counter drop\n }\n}\n`;
        await lab.exec(lab.hosts[0].ns, 'nft', ['-f', '-'], { input: rules });
      }
      const floods: Array<{ sent?: number; seconds?: number; rate?: number; eagain?: number; cpuS?: number; cpuPct?: number }> = [];
      const endFlood = async (fp: ReturnType<typeof startFlood>) => {
        await fp.exited;
        floods.push(JSON.parse(fp.stdout().trim().split('\n').pop() || '{}'));
      };
      await goodput(); // warm-up
      const rss0 = rssKb(agents[0].proc.pid);
      const c0 = await counters();
      const u0 = await udpSnmp(lab, lab.hosts[0].ns);
      // Interleaved: off, on, off, on, … so that the load of whatever else runs on the machine
      // drifts through both sides alike; the ratio is of the medians.
      const off: number[] = [];
      const on: number[] = [];
      const ctl: number[] = [];
      const controlFloods: typeof floods = [];
      for (let i = 0; i < o.samples; i++) {
        off.push(await measured(acc.off, goodput));
        const fp = startFlood(o.transferS + 4);
        await sleep(700);
        on.push(await measured(acc.on, goodput));
        if (!fp.running()) violations.push(`sample ${i}: the flood ended before the transfer did`);
        await endFlood(fp);
        if (o.control) {
          const fc = startFlood(o.transferS + 4, CONTROL_PORT);
          await sleep(700);
          ctl.push(await goodput());
          if (!fc.running()) violations.push(`sample ${i}: the control flood ended before the transfer did`);
          await endFlood(fc);
          controlFloods.push(floods.pop()!);
        }
      }
      // integrity under the flood
      const fp = startFlood(o.transferS + 20);
      await sleep(500);
      const x = await lab.tcpTransfer(cs[0], cs[1], { bytes: 8 << 20, timeoutMs: 120_000 });
      if (x.receivedSha256 !== x.sentSha256) violations.push('transfer during the flood corrupted');
      await endFlood(fp);
      await sleep(500);
      const c1 = await counters();
      const u1 = await udpSnmp(lab, lab.hosts[0].ns);
      figures.h1Udp = Object.fromEntries(['InDatagrams', 'NoPorts', 'InErrors', 'RcvbufErrors'].map((k) => [k, (u1[k] ?? 0) - (u0[k] ?? 0)]));
      const rss1 = rssKb(agents[0].proc.pid);
      const sent = floods.reduce((t, q) => t + (q.sent ?? 0), 0);
      const fsecs = floods.reduce((t, q) => t + (q.seconds ?? 0), 0);
      const fcpu = floods.reduce((t, q) => t + (q.cpuS ?? 0), 0);
      const f = { sent, seconds: Math.round(fsecs * 10) / 10, rate: Math.round(sent / fsecs), eagain: floods.reduce((t, q) => t + (q.eagain ?? 0), 0), cpuS: Math.round(fcpu * 100) / 100, cpuPct: Math.round((fcpu / fsecs) * 1000) / 10 };
      const before = quantiles(off).median;
      const during = quantiles(on).median;
      const ratio = during / before;
      figures.goodputMbit = { floodOff: off.map(Math.round), floodOn: on.map(Math.round), medianOff: Math.round(before), medianOn: Math.round(during), ratio: Math.round(ratio * 1000) / 1000 };
      if (o.control) {
        const control = quantiles(ctl).median;
        const r3 = (x: number) => Math.round(x * 1000) / 1000;
        const ccpu = controlFloods.reduce((t, q) => t + (q.cpuS ?? 0), 0);
        const csecs = controlFloods.reduce((t, q) => t + (q.seconds ?? 0), 0);
        const dropped = await lab.exec(lab.hosts[0].ns, 'nft', ['list', 'table', 'netdev', 'vxmesh_flood_control'], { check: false });
        figures.control = {
          what: `the same flood at port ${CONTROL_PORT}, dropped at h1's ul0 ingress (nftables netdev)`,
          floodControl: ctl.map(Math.round), medianControl: Math.round(control),
          // goodput the machine leaves while it carries the packets, and the agent's own share of the loss
          machineRatio: r3(control / before), agentRatio: r3(during / control),
          flooderPct: csecs > 0 ? Math.round((ccpu / csecs) * 1000) / 10 : null,
          droppedAtIngress: Number(/packets (\d+)/.exec(dropped.stdout)?.[1] ?? NaN),
        };
      }
      figures.cpu = { floodOff: cpuOf(acc.off), floodOn: { ...cpuOf(acc.on), flooderPct: f.cpuPct } };
      figures.flood = f;
      // the kernel flood guard's drops (src/crypto/flood-guard.ts), read from h1's nftables directly
      const gl = await lab.exec(lab.hosts[0].ns, 'nft', ['-j', 'list', 'table', 'inet', guardTable(4789)], { check: false });
      const guard = gl.code === 0 ? parseGuardCounts(gl.stdout) : null;
      // DH work is only allowed for the real peer's handshakes (a rekey every 2 minutes of session
      // age: runs longer than that have one): every DH must belong to an initiation or response
      // that went on to authenticate (hsInitiationRecv / hsResponseRecv count only those).
      const legit = (c1.hsInitiationRecv - c0.hsInitiationRecv) + (c1.hsResponseRecv - c0.hsResponseRecv);
      const forgedDh = (c1.hsDh - c0.hsDh) - legit;
      figures.h1 = { badMac: c1.hsBadMac - c0.hsBadMac, dh: c1.hsDh - c0.hsDh, legitHandshakes: legit, forgedDh, guardDropped: guard, rssKb: { before: rss0, after: rss1 } };
      figures.loadavg = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
      if (ratio < o.minGoodputRatio) violations.push(`goodput during the flood ${ratio.toFixed(3)} of without (< ${o.minGoodputRatio})`);
      if (forgedDh !== 0) violations.push(`${forgedDh} DH computations for forged initiations during the flood (${c1.hsDh - c0.hsDh} in all, ${legit} for the peer's own handshakes)`);
      // Every forgery is counted: dropped by the kernel flood guard (nftables, per source or in
      // total), rejected by the mac1 gate (hsBadMac), or dropped by the kernel at the agent's
      // handshake socket once its budget is spent (native/udp_split.h: RcvbufErrors).
      const kernelDropped = (figures.h1Udp as Record<string, number>).RcvbufErrors;
      (figures.h1 as Record<string, unknown>).kernelDropped = kernelDropped;
      const guardDropped = guard ? guard.perSource + guard.total : 0;
      if (floodPort === 4789 && sent > 0 && c1.hsBadMac - c0.hsBadMac + kernelDropped + guardDropped < sent * 0.9) {
        violations.push(`only ${c1.hsBadMac - c0.hsBadMac} bad mac1 + ${kernelDropped} socket drops + ${guardDropped} flood-guard drops counted of ${sent} forged initiations`);
      }
      if (rss0 !== null && rss1 !== null && rss1 > rss0 * (1 + o.rssSlackPct / 100)) violations.push(`RSS grew ${rss0} → ${rss1} KiB during the flood`);
      if (!agents[0].running()) violations.push('h1 agent exited');
      log(`flood ${JSON.stringify(f)}: goodput ${JSON.stringify(figures.goodputMbit)}${o.control ? `, control ${JSON.stringify(figures.control)}` : ''}, cpu ${JSON.stringify(figures.cpu)}, h1 ${JSON.stringify(figures.h1)}`);
    } finally {
      await lab.destroy();
    }
    return { name: 'forged handshake flood', figures, violations };
  });
}

/** The gossip lab needs these on disk (the flooder is compiled; the relay is Python). */
export function chaosFilesPresent(): string | null {
  for (const f of [path.join(REPO_ROOT, 'bench', 'chaos', 'impair.py'), path.join(REPO_ROOT, 'dist', 'bench', 'chaos', 'flood.js'), path.join(REPO_ROOT, 'dist', 'bench', 'chaos', 'goodput.js')]) {
    if (!fs.existsSync(f)) return `${f} is missing`;
  }
  return null;
}
