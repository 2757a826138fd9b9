/**
 * `node dist/bench/endpoints.js`: endpoint figures on the netns lab (needs root).
 *
 *   1. one host, 100 endpoints: time per attach over the control socket (the agent's work: IPAM,
 *      veth, netns setup, anti-spoofing rules, state write), then per CNI ADD (bin/vxmesh-cni
 *      spawned as a runtime does, node start-up included) for 100 more — median and p99;
 *      a static `range` (no gossip), so no block-lease settle wait is inside the figures (a lease
 *      adds settleMs = 2 s once per hostBlock of addresses, see src/ipam/README.md);
 *   2. three hosts × 10 endpoints through gossip IPAM: all addresses unique, full ping mesh (every
 *      endpoint pings every other), then every agent restarted: addresses unchanged, mesh again.
 *
 * Writes bench/results/endpoints.md and endpoints.json.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, REPO_ROOT } from '../lab/netns';
import type { LabAgent } from '../lab/vxmesh';
import { generateClusterKey } from '../src/gossip/keyring';
import { controlRequest } from '../src/endpoints/client';
import { addEmptyNamespace, endpointAgentConfig, socketOf, startEndpointAgent } from '../test/helpers/endpoints';

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
const log = (m: string) => process.stderr.write(`[bench:endpoints ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

function cniAdd(env: NodeJS.ProcessEnv, conf: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const c = execFile(process.execPath, [path.join(REPO_ROOT, 'bin', 'vxmesh-cni')], { env, timeout: 60_000 }, (err, stdout) => resolve({ code: err ? 1 : 0, out: String(stdout) }));
    c.stdin?.end(conf);
  });
}

async function oneHost(): Promise<Record<string, unknown>> {
  const lab = await Lab.create({ hosts: 1 });
  try {
    const h = lab.hosts[0];
    const cfg = endpointAgentConfig(lab, h, [{ name: 'blue', vni: 42, bridge: 'br0', subnet: '198.19.0.0/16', range: '198.19.0.0/17' }]);
    await startEndpointAgent(lab, h, cfg);
    const sock = socketOf(lab, h);
    const attach: number[] = [];
    for (let i = 0; i < 100; i++) {
      const ns = await addEmptyNamespace(lab, `a${i}`);
      const t0 = performance.now();
      await controlRequest(sock, 'POST', '/v1/attach', { network: 'blue', netns: ns });
      attach.push(performance.now() - t0);
    }
    log(`attach: median ${quantile(attach, 0.5).toFixed(1)} ms, p99 ${quantile(attach, 0.99).toFixed(1)} ms`);
    const add: number[] = [];
    const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'blue', type: 'vxmesh', network: 'blue', socket: sock });
    for (let i = 0; i < 100; i++) {
      const ns = await addEmptyNamespace(lab, `k${i}`);
      const env = { PATH: process.env.PATH, CNI_COMMAND: 'ADD', CNI_CONTAINERID: `bench${i.toString().padStart(4, '0')}`, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
      const t0 = performance.now();
      const r = await cniAdd(env, conf);
      add.push(performance.now() - t0);
      if (r.code !== 0) throw new Error(`CNI ADD ${i} failed: ${r.out}`);
    }
    log(`CNI ADD: median ${quantile(add, 0.5).toFixed(1)} ms, p99 ${quantile(add, 0.99).toFixed(1)} ms`);
    const list = (await controlRequest(sock, 'GET', '/v1/endpoints')) as { endpoints: { ips: string[] }[] };
    const ips = list.endpoints.map((e) => e.ips[0]);
    return {
      endpoints: list.endpoints.length, unique: new Set(ips).size,
      attachMs: { median: quantile(attach, 0.5), p99: quantile(attach, 0.99), min: Math.min(...attach), max: Math.max(...attach) },
      cniAddMs: { median: quantile(add, 0.5), p99: quantile(add, 0.99), min: Math.min(...add), max: Math.max(...add) },
    };
  } finally {
    await lab.destroy();
  }
}

async function threeHosts(): Promise<Record<string, unknown>> {
  const lab = await Lab.create({ hosts: 3 });
  try {
    const keyFile = lab.writeFile('cluster.key', `${await generateClusterKey()}\n`);
    const net = { name: 'blue', vni: 42, bridge: 'br0', subnet: '198.19.0.0/16', hostBlock: '/28' };
    const cfgs = lab.hosts.map((h) => endpointAgentConfig(lab, h, [net], { keyFile }));
    let agents: LabAgent[] = [];
    for (const [i, h] of lab.hosts.entries()) agents.push(await startEndpointAgent(lab, h, cfgs[i]));
    await lab.waitFor('gossip converged', async () => ((await agents[0].status()).extensions as { gossip: { liveMembers: number } }).gossip.liveMembers === 3, { timeoutMs: 30_000, intervalMs: 200 });
    const eps: { ns: string; ip: string; host: string }[] = [];
    const t0 = performance.now();
    // all three hosts attach concurrently (leases race; the conflict rule sorts them out)
    await Promise.all(lab.hosts.map(async (h) => {
      for (let j = 0; j < 10; j++) {
        const ns = await addEmptyNamespace(lab, `${h.name}e${j}`);
        const v = (await controlRequest(socketOf(lab, h), 'POST', '/v1/attach', { network: 'blue', netns: ns })) as { ips: string[] };
        eps.push({ ns, ip: v.ips[0].split('/')[0], host: h.name });
      }
    }));
    const attachAllS = (performance.now() - t0) / 1000;
    const unique = new Set(eps.map((e) => e.ip)).size;
    log(`3 × 10 attached in ${attachAllS.toFixed(1)} s, ${unique} unique addresses`);
    const mesh = async (): Promise<{ pairs: number; ok: number; failed: string[] }> => {
      let ok = 0;
      let pairs = 0;
      const failed: string[] = [];
      for (const a of eps) {
        const targets = eps.filter((b) => b !== a);
        pairs += targets.length;
        const script = targets.map((b) => `(ping -n -q -c 2 -i 0.2 -W 2 ${b.ip} >/dev/null 2>&1 && echo ok ${b.ip} || echo fail ${b.ip}) &`).join('\n') + '\nwait\n';
        const r = await lab.exec(a.ns, 'sh', ['-c', script], { check: false, timeoutMs: 60_000 });
        ok += r.stdout.split('\n').filter((l) => l.startsWith('ok ')).length;
        for (const l of r.stdout.split('\n').filter((x) => x.startsWith('fail '))) {
          const to = eps.find((b) => b.ip === l.slice(5));
          failed.push(`${a.host}/${a.ip} → ${to?.host}/${l.slice(5)}`);
        }
      }
      if (failed.length) log(`failed pairs: ${failed.join(', ')}`);
      return { pairs, ok, failed };
    };
    const m1 = await mesh();
    log(`ping mesh: ${m1.ok}/${m1.pairs}`);
    const before = new Map(eps.map((e) => [e.ns, e.ip]));
    for (const a of agents) await a.stop();
    agents = [];
    for (const [i, h] of lab.hosts.entries()) agents.push(await startEndpointAgent(lab, h, cfgs[i]));
    await lab.waitFor('endpoints re-announced', async () => ((await controlRequest(socketOf(lab, lab.hosts[0]), 'GET', '/v1/endpoints')) as { endpoints: unknown[] }).endpoints.length === 30, { timeoutMs: 60_000, intervalMs: 300 });
    let unchanged = 0;
    for (const e of eps) {
      const r = await lab.exec(e.ns, 'ip', ['-j', '-4', 'addr', 'show', 'eth0']);
      const addr = JSON.parse(r.stdout)[0].addr_info[0].local;
      const listed = ((await controlRequest(socketOf(lab, lab.hosts[0]), 'GET', '/v1/endpoints')) as { endpoints: { ips: string[] }[] }).endpoints.some((x) => x.ips[0] === addr);
      if (addr === before.get(e.ns) && listed) unchanged++;
    }
    const m2 = await mesh();
    log(`after restarting every agent: ${unchanged}/30 unchanged, ping mesh ${m2.ok}/${m2.pairs}`);
    return { endpoints: eps.length, unique, attachAllSeconds: attachAllS, meshBefore: m1, unchangedAfterRestart: unchanged, meshAfter: m2 };
  } finally {
    await lab.destroy();
  }
}

async function main(): Promise<void> {
  const parts = (process.env.BENCH_ENDPOINTS_PARTS ?? 'one,three').split(',');
  if (!parts.includes('one')) {
    process.stdout.write(JSON.stringify(await threeHosts(), null, 2) + '\n');
    return;
  }
  const one = await oneHost();
  const three = await threeHosts();
  const res = { at: new Date().toISOString(), oneHost: one, threeHosts: three };
  const dir = path.join(REPO_ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'endpoints.json'), JSON.stringify(res, null, 2) + '\n');
  const a = one.attachMs as { median: number; p99: number };
  const c = one.cniAddMs as { median: number; p99: number };
  const t = three as { unique: number; meshBefore: { ok: number; pairs: number }; meshAfter: { ok: number; pairs: number }; unchangedAfterRestart: number; attachAllSeconds: number };
  const md = [
    '# Endpoints: attach, CNI ADD, 3 hosts × 10',
    '',
    `Run ${res.at} on the netns lab (\`node dist/bench/endpoints.js\`, 2-core machine shared with other work).`,
    '',
    '| figure | median | p99 |',
    '|---|---|---|',
    `| attach over the control socket (100 endpoints, one host, static range) | ${a.median.toFixed(1)} ms | ${a.p99.toFixed(1)} ms |`,
    `| CNI ADD, bin/vxmesh-cni spawned as a runtime does (100 more) | ${c.median.toFixed(1)} ms | ${c.p99.toFixed(1)} ms |`,
    '',
    `3 hosts × 10 endpoints through gossip IPAM (hostBlock /28, attached concurrently on all hosts in ${t.attachAllSeconds.toFixed(1)} s):`,
    `${t.unique}/30 addresses unique; ping mesh ${t.meshBefore.ok}/${t.meshBefore.pairs} pairs; after restarting every agent ${t.unchangedAfterRestart}/30 addresses unchanged, ping mesh ${t.meshAfter.ok}/${t.meshAfter.pairs}.`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'endpoints.md'), md);
  process.stdout.write(md);
}

main().catch((e) => {
  process.stderr.write(`bench:endpoints failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
