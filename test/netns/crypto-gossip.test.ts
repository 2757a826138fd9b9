/**
 * Issue 4 with gossip, the production path: `bin/vxmesh agent` on three hosts with
 * `encrypted: true`, `gossip` (seed + cluster key from `vxmesh keygen cluster`) and no static
 * peers or keys anywhere: each agent creates its `node.keyFile` (mode 0600), gossip spreads the
 * public keys, sessions form, containers reach each other with nothing readable on the underlay.
 * A fourth host with another cluster key never gets a frame onto the members' bridges.
 * Skipped (with the reason) while the agent has no gossip extension.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Config } from '../../src/config/types';
import type { LabContainer } from '../../lab/netns';
import { agentConfig, startAgent, type LabAgent } from '../../lab/vxmesh';
import { generateClusterKey } from '../../src/gossip/keyring';
import { labFor, netnsSkip } from '../helpers/lab';

const VNI = 78;
const MARKER = 'VXM-GOSSIP-MARK!';

function gossipSkip(): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { buildExtensions } = require('../../src/cli/extensions') as { buildExtensions(c: Config, l: unknown): { name: string }[] };
    const cfg = {
      node: { name: 'x', keyFile: null }, networks: [], peers: [], underlay: { address: '198.18.0.1', family: 4, port: 4789, mtu: 1500, sourcePorts: 1 },
      gossip: { port: 7946, address: '198.18.0.1', seeds: [], keyFile: null, profile: 'test' }, fdb: { ageingSeconds: 300, maxEntries: 10 },
      api: { listen: { host: '127.0.0.1', port: 9469 } }, log: { level: 'error' }, source: null,
    } as unknown as Config;
    const names = buildExtensions(cfg, { child: () => ({}), info() {}, warn() {}, debug() {}, error() {} }).map((e) => e.name);
    return names.includes('gossip') ? undefined : 'the agent has no gossip extension yet (src/cli/extensions.ts)';
  } catch (e) {
    return `cannot build extensions: ${(e as Error).message}`;
  }
}

const skip = netnsSkip('tcpdump') ?? gossipSkip();

async function pingMarker(lab: { exec: (ns: string, cmd: string, args: string[], o: object) => Promise<{ stdout: string }> }, from: LabContainer, to: LabContainer, count: number): Promise<number> {
  const r = await lab.exec(from.ns, 'ping', ['-n', '-q', '-c', String(count), '-i', '0.2', '-W', '2', '-p', Buffer.from(MARKER).toString('hex'), to.address], { check: false, timeoutMs: 30_000 });
  const m = /(\d+) received/.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}

test('encrypted network with gossip: keys created and spread, containers reach each other, an outsider gets nothing in', { skip, timeout: 240_000 }, async (t) => {
  const lab = await labFor(t, { hosts: 4 });
  const good = lab.writeFile('cluster.key', (await generateClusterKey()) + '\n');
  const bad = lab.writeFile('cluster-other.key', (await generateClusterKey()) + '\n');
  const mtu = lab.underlayMtu - 82;
  const cs: LabContainer[] = [];
  for (const h of lab.hosts) {
    await lab.addBridge(h, 'br0');
    cs.push(await lab.addContainer(h, { bridge: 'br0', name: `h${h.index}c1`, address: `198.19.0.${10 * h.index + 1}/24`, mtu }));
  }
  const agents: LabAgent[] = [];
  for (const h of lab.hosts) {
    const outsider = h.index === 4;
    const config = agentConfig(lab, h, {
      networks: [{ name: 'sec', vni: VNI, bridge: 'br0', encrypted: true } as never],
      peers: [],
      extra: {
        node: { name: h.name, keyFile: path.join(lab.dir, `keys-${h.name}`, 'host.key') },
        gossip: { seeds: [lab.hosts[0].address], keyFile: outsider ? bad : good, profile: 'test' },
      },
    });
    delete (config as Record<string, unknown>).peers;
    agents.push(await startAgent(lab, h, config));
  }
  for (const h of lab.hosts) {
    const st = fs.statSync(path.join(lab.dir, `keys-${h.name}`, 'host.key'));
    assert.equal(st.mode & 0o777, 0o600, `${h.name} host key mode`);
  }
  const [c1, c2, c3, c4] = cs;
  const under = await lab.capture(lab.hosts[0].ns, lab.hosts[0].underlayIf, 'udp port 4789', { snaplen: 2048 });
  const seen = await lab.capture(lab.hosts[0].ns, c1.hostIf, `ether src ${c4.mac}`, { snaplen: 128 });
  await lab.waitFor('members reach each other', async () => (await pingMarker(lab, c1, c2, 1)) === 1 && (await pingMarker(lab, c1, c3, 1)) === 1, { timeoutMs: 60_000, intervalMs: 500 });
  for (const [a, b] of [[c1, c2], [c2, c3], [c3, c1], [c2, c1]]) assert.ok((await pingMarker(lab, a, b, 3)) >= 2, `${a.name} -> ${b.name}`);
  assert.equal(await pingMarker(lab, c4, c1, 5), 0, 'outsider reached a member');
  assert.equal(await pingMarker(lab, c1, c4, 3), 0, 'member reached the outsider');
  const underBytes = fs.readFileSync(await under.stop());
  assert.equal(underBytes.includes(MARKER), false, 'marker on the underlay');
  assert.equal((await lab.readPcap(await seen.stop())).length, 0, 'a frame from the outsider reached h1\'s bridge');
  const st = await agents[0].status();
  const crypto = (st.extensions as Record<string, { peers: { session: unknown }[] }>).crypto;
  assert.ok(crypto.peers.filter((p) => p.session).length >= 2, 'sessions with both members');
});
