/**
 * Benchmark: what network policy costs on real kernels (issue 14 item 6), in one run.
 *
 *   sudo npm run bench:policy [-- --seconds 5 --rounds 3]      (node dist/bench/policy.js …)
 *
 * Two netns hosts with vxmesh agents (gossip, endpoints attached with `vxmesh attach`), a client
 * endpoint on h1 and a server endpoint on h2, plus a second client on h2 (same host as the server).
 * Configurations, interleaved round by round: no policy; 10 rules; 1,000 rules (ingress rules on
 * the server, the one allowing the client last, so a new flow walks them all). Per configuration:
 * iperf3 TCP 1 stream (client → server) and RTT p50 (sockperf ping-pong, ping fallback), cross-host;
 * and the same-host pair (through the bridge without policy; through the agent's hairpin with one).
 * Goal (cross-host): ≤ 10 % throughput loss and ≤ 10 % RTT p50 increase at 1,000 rules.
 * Writes bench/results/policy.md and policy.json. Bounded: every tool has a time limit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, REPO_ROOT } from '../lab/netns';
import type { LabAgent } from '../lab/vxmesh';
import { generateClusterKey } from '../src/gossip/keyring';
import { addEmptyNamespace, attachOk, endpointAgentConfig, startEndpointAgent, vx } from '../test/helpers/endpoints';
import { iperfTcp, measureRtt, startIperfServer, startSockperfServer } from './lib/measure';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const SECONDS = arg('seconds', 5);
const ROUNDS = arg('rounds', 3);
const log = (m: string) => process.stderr.write(`[bench:policy ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** `rules` ingress rules on the server; the last allows the clients (every port). */
function policyDoc(rules: number): string {
  const body = Array.from({ length: rules }, (_, k) => k === rules - 1
    ? '  - from: [{endpoints: {role: client}}]\n'
    : `  - from: [{endpoints: {app: a${k % 20}}}]\n    ports: [{protocol: TCP, port: ${10000 + k}}]\n`).join('');
  return `name: bench\nnetwork: blue\nendpoints: {role: server}\ningress:\n${body}`;
}

interface Sample { config: string; round: number; crossGbps: number; crossRttP50: number; sameGbps: number; sameRttP50: number }

async function main(): Promise<void> {
  const lab = await Lab.create({ hosts: 2 });
  const samples: Sample[] = [];
  try {
    const keyFile = lab.writeFile('cluster.key', `${await generateClusterKey()}\n`);
    const net = { name: 'blue', vni: 42, bridge: 'br0', subnet: '198.19.0.0/16', hostBlock: '/26' };
    const agents: LabAgent[] = [];
    for (const h of lab.hosts) agents.push(await startEndpointAgent(lab, h, endpointAgentConfig(lab, h, [net], { keyFile })));
    await lab.waitFor('gossip converged', async () => ((await agents[0].status()).extensions as { gossip: { liveMembers: number } }).gossip.liveMembers === 2,
      { timeoutMs: 30_000, intervalMs: 200 });
    const [h1, h2] = lab.hosts;
    const mk = async (h: typeof h1, short: string, role: string) => {
      const ns = await addEmptyNamespace(lab, short);
      const a = await attachOk(lab, h, ['--network', 'blue', '--netns', ns, '--name', short, '--label', `role=${role}`]);
      return { ns, ip: a.ips[0].split('/')[0] };
    };
    const client = await mk(h1, 'cli', 'client');
    const server = await mk(h2, 'srv', 'server');
    const local = await mk(h2, 'loc', 'client');
    await startIperfServer(lab, server.ns, server.ip);
    const sp = await startSockperfServer(lab, server.ns, server.ip);
    const spUp = sp.running();
    await lab.waitFor('endpoints known on both hosts', async () => {
      for (const h of lab.hosts) {
        const r = await vx(lab, h, ['endpoints', '--json']);
        if (r.code !== 0 || (r.json as { endpoints: unknown[] }).endpoints.length !== 3) return false;
      }
      return true;
    }, { timeoutMs: 30_000, intervalMs: 300 });
    const docFile = (rules: number) => lab.writeFile(`bench-${rules}.yaml`, policyDoc(rules));
    const configs: { name: string; rules: number }[] = [{ name: 'no policy', rules: 0 }, { name: '10 rules', rules: 10 }, { name: '1000 rules', rules: 1000 }];
    let applied = false;
    for (let round = 1; round <= ROUNDS; round++) {
      for (const c of configs) {
        // Applied on both hosts: 1,000 rules are larger than what gossip spreads (60 KiB), and a
        // host keeps the copy it was given.
        if (c.rules === 0) {
          if (applied) for (const h of lab.hosts) await vx(lab, h, ['policy', 'delete', 'bench']);
          applied = false;
        } else {
          for (const h of lab.hosts) {
            const r = await vx(lab, h, ['policy', 'apply', docFile(c.rules)]);
            if (r.code !== 0) throw new Error(`policy apply: ${r.stderr}`);
          }
          applied = true;
        }
        await lab.waitFor('policy state on both hosts', async () => {
          for (const a of agents) {
            const s = (await a.status()).extensions as { policy: { networks: { blue: { rules: number; policies: number; endpoints: number } } } };
            const b = s.policy.networks.blue;
            if (b.policies !== (c.rules ? 1 : 0) || (c.rules && (b.rules !== c.rules || b.endpoints !== 3))) return false;
          }
          return true;
        }, { timeoutMs: 30_000, intervalMs: 200 });
        await new Promise((r) => setTimeout(r, 2500)); // the same-host rules (2 s check) are in place
        const cross = await iperfTcp(lab, client.ns, server.ip, SECONDS, 1);
        const crossRtt = await measureRtt(lab, client.ns, server.ip, Math.max(2, Math.round(SECONDS / 2)), spUp);
        const same = await iperfTcp(lab, local.ns, server.ip, SECONDS, 1);
        const sameRtt = await measureRtt(lab, local.ns, server.ip, Math.max(2, Math.round(SECONDS / 2)), spUp);
        const s: Sample = { config: c.name, round, crossGbps: cross.bps / 1e9, crossRttP50: crossRtt.p50, sameGbps: same.bps / 1e9, sameRttP50: sameRtt.p50 };
        samples.push(s);
        log(`round ${round} ${c.name}: cross ${s.crossGbps.toFixed(2)} Gbit/s, RTT p50 ${s.crossRttP50.toFixed(1)} µs; same-host ${s.sameGbps.toFixed(2)} Gbit/s, RTT p50 ${s.sameRttP50.toFixed(1)} µs`);
      }
    }
    const st = (await agents[1].status()).extensions as { policy: unknown };
    log(`h2 policy status: ${JSON.stringify(st.policy).slice(0, 600)}`);
  } finally {
    await lab.destroy();
  }
  const rows = ['no policy', '10 rules', '1000 rules'].map((config) => {
    const xs = samples.filter((s) => s.config === config);
    return { config, crossGbps: median(xs.map((s) => s.crossGbps)), crossRttP50: median(xs.map((s) => s.crossRttP50)),
      sameGbps: median(xs.map((s) => s.sameGbps)), sameRttP50: median(xs.map((s) => s.sameRttP50)) };
  });
  const base = rows[0];
  const at1k = rows[2];
  const loss = 1 - at1k.crossGbps / base.crossGbps;
  const rttUp = at1k.crossRttP50 / base.crossRttP50 - 1;
  const ok = loss <= 0.1 && rttUp <= 0.1;
  const md = [
    `# Policy benchmark (${new Date().toISOString()})`, '',
    `\`sudo node dist/bench/policy.js --seconds ${SECONDS} --rounds ${ROUNDS}\` — 2 netns hosts, vxmesh plaintext overlay, iperf3 TCP 1 stream, RTT by ${'sockperf ping-pong (ping fallback)'}; medians of ${ROUNDS} interleaved rounds.`, '',
    '| configuration | cross-host TCP Gbit/s | cross-host RTT p50 µs | same-host TCP Gbit/s | same-host RTT p50 µs |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.config} | ${r.crossGbps.toFixed(2)} | ${r.crossRttP50.toFixed(1)} | ${r.sameGbps.toFixed(2)} | ${r.sameRttP50.toFixed(1)} |`), '',
    `Cross-host at 1,000 rules vs no policy: throughput ${(loss * 100).toFixed(1)} % lower, RTT p50 ${(rttUp * 100).toFixed(1)} % higher — goal (≤ 10 % / ≤ 10 %) ${ok ? 'met' : 'NOT met'}.`,
    'Same-host: without policy the bridge carries the pair directly; with a policy the frames go through the agent (port rules → TAP → policy → back), which is what same-host enforcement costs.', '',
    `Samples: ${JSON.stringify(samples)}`, '',
  ].join('\n');
  const dir = path.join(REPO_ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'policy.md'), md);
  fs.writeFileSync(path.join(dir, 'policy.json'), JSON.stringify({ seconds: SECONDS, rounds: ROUNDS, rows, samples, loss, rttUp, ok }, null, 2));
  process.stdout.write(md);
}

main().catch((e) => {
  process.stderr.write(`bench:policy failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
