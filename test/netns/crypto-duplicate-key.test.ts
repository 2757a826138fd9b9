/**
 * Issue 10 defect 9, through the real CLI: two `bin/vxmesh agent`s with gossip and an encrypted
 * network started with the SAME host key file (a cloned image, or a shared `node.keyFile`). Each
 * agent logs an error record naming the other host, lists it in its crypto status section, shows it
 * in `vxmesh status`, and exports it in its metrics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';

import { REPO_ROOT } from '../../lab/netns';
import { agentConfig, startAgent, type LabAgent } from '../../lab/vxmesh';
import { generateClusterKey } from '../../src/gossip/keyring';
import { labFor, netnsSkip } from '../helpers/lab';

const skip = netnsSkip();
const API = '127.0.0.1:9469';

interface Dup { host: string; address: string | null; via: string[] }
const dupsOf = async (a: LabAgent): Promise<Dup[]> =>
  ((await a.status()).extensions as Record<string, { duplicateHostKeys?: Dup[] }>).crypto?.duplicateHostKeys ?? [];

test('two agents sharing one host key file: each names the other (error log, crypto status, vxmesh status, metrics)', { skip, timeout: 180_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 2 });
  const cluster = lab.writeFile('cluster.key', (await generateClusterKey()) + '\n');
  const keyFile = path.join(lab.dir, 'shared-host.key');
  const agents: LabAgent[] = [];
  for (const h of lab.hosts) {
    await lab.addBridge(h, 'br0');
    const config = agentConfig(lab, h, {
      networks: [{ name: 'sec', vni: 79, bridge: 'br0', encrypted: true } as never],
      apiListen: API,
      extra: { node: { name: h.name, keyFile }, gossip: { seeds: [lab.hosts[0].address], keyFile: cluster, profile: 'test' } },
    });
    delete (config as Record<string, unknown>).peers;
    agents.push(await startAgent(lab, h, config));
  }
  const [h1, h2] = lab.hosts;
  await lab.waitFor('both agents report the other host', async () => {
    const [d1, d2] = await Promise.all(agents.map(dupsOf));
    return d1.some((d) => d.host === h2.name) && d2.some((d) => d.host === h1.name);
  }, { timeoutMs: 60_000, intervalMs: 500 });
  for (const [i, self, other] of [[0, h1, h2], [1, h2, h1]] as const) {
    const d = (await dupsOf(agents[i])).find((x) => x.host === other.name)!;
    assert.equal(d.address, other.address, `${self.name}: the other host's address`);
    assert.ok(d.via.includes('gossip'));
    const log = agents[i].proc.output();
    const line = log.split('\n').find((l) => l.includes(`host ${other.name} (${other.address}) uses the same host key as this host (cloned image or shared node.keyFile?)`));
    assert.ok(line, `${self.name}: error record naming ${other.name} in:\n${log.slice(-3000)}`);
    assert.equal(JSON.parse(line!).level, 'error');
    const st = await lab.exec(self.ns, process.execPath, [path.join(REPO_ROOT, 'bin', 'vxmesh'), 'status', '--api', API], { timeoutMs: 30_000 });
    assert.match(st.stdout, new RegExp(`ERROR: host ${other.name} \\(${other.address.replace(/\./g, '\\.')}\\) uses the same host key as this host`));
    const metrics = await lab.exec(self.ns, process.execPath, ['-e',
      `fetch('http://${API}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`], { timeoutMs: 30_000 });
    assert.match(metrics.stdout, /^vxmesh_crypto_duplicate_host_key_hosts 1$/m);
    assert.match(metrics.stdout, /^vxmesh_crypto_duplicate_host_key_total [1-9]\d*$/m);
  }
});
