/**
 * Encrypted networks without gossip: static peers given with their host public keys
 * (`peers: [{address, publicKey}]`). Everything through the real CLI: `vxmesh keygen host --out`
 * makes each host's key file and prints its public key, which goes into the other host's config;
 * the agents (`vxmesh agent`) then form sessions pinned to those keys. Containers ping and transfer
 * TCP (sha256 verified) and the underlay never carries the payload marker in clear; a third host
 * whose key nobody pinned gets nothing in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Lab, LabContainer } from '../../lab/netns';
import { agentConfig, startAgent, type LabAgent } from '../../lab/vxmesh';
import { labFor, netnsSkip, pingWithMarker } from '../helpers/lab';

const skip = netnsSkip('tcpdump');
const VNI = 78;
const MTU = 1500 - 82;
const MARKER = 'VXM-STATIC-MARK!';
const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'vxmesh');

const pingMarker = (lab: Lab, from: LabContainer, to: LabContainer, count = 5) => pingWithMarker(lab, from, to, MARKER, count);

test('encrypted network with static peers and pinned public keys (no gossip): reachable, nothing in clear, an unpinned host gets nothing in',
  { skip, timeout: 150_000 }, async (t) => {
    const lab = await labFor(t, { hosts: 3 });
    const containers: LabContainer[] = [];
    const pubs: string[] = [];
    const keyFiles: string[] = [];
    for (const h of lab.hosts) {
      await lab.addBridge(h, 'br0');
      containers.push(await lab.addContainer(h, { bridge: 'br0', name: `s${h.index}c1`, address: `198.19.0.${10 * h.index + 1}/24`, mtu: MTU }));
      const file = path.join(lab.dir, `host-${h.name}.key`);
      const r = await lab.exec(h.ns, process.execPath, [BIN, 'keygen', 'host', '--out', file]);
      const pub = (r.stdout + r.stderr).match(/[A-Za-z0-9+/]{43}=/)?.[0];
      assert.ok(pub, `keygen host printed a public key: ${r.stdout} ${r.stderr}`);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      pubs.push(pub);
      keyFiles.push(file);
    }
    // Hosts 1 and 2 pin each other; host 3 lists both with their keys, but nobody pins host 3.
    const agents: LabAgent[] = [];
    for (const h of lab.hosts) {
      const config = agentConfig(lab, h, { networks: [{ name: 'sec', vni: VNI, bridge: 'br0', mtu: MTU, encrypted: true } as never], logLevel: 'warn' });
      config.node = { name: h.name, keyFile: keyFiles[h.index - 1] };
      config.peers = lab.hosts.filter((o) => o !== h && (h.index === 3 || o.index !== 3))
        .map((o) => ({ address: o.address, publicKey: pubs[o.index - 1] }));
      delete (config as Record<string, unknown>).gossip;
      agents.push(await startAgent(lab, h, config));
    }
    const [c1, c2, c3] = containers;
    const under = await lab.capture(lab.hosts[0].ns, lab.hosts[0].underlayIf, '', { snaplen: 2048 });
    assert.ok((await pingMarker(lab, c1, c2)) >= 4, 'c1 -> c2');
    assert.ok((await pingMarker(lab, c2, c1)) >= 4, 'c2 -> c1');
    const x = await lab.tcpTransfer(c1, c2, { bytes: 1 << 20 });
    assert.equal(x.receivedSha256, x.sentSha256);
    const underFile = await under.stop();
    assert.equal(fs.readFileSync(underFile).includes(MARKER), false, 'the marker appeared on the underlay');
    const pkts = await lab.readPcap(underFile, 'udp port 4789');
    assert.ok(pkts.length > 50, `captured ${pkts.length} datagrams on the underlay`);
    assert.equal(pkts.filter((l) => /flags \[I\]/.test(l)).length, 0, 'no plaintext VXLAN on the underlay');

    // Host 3 knows the others' keys, but they never pinned its key: no session, nothing gets in.
    assert.equal(await pingMarker(lab, c3, c1, 3), 0, 'an unpinned host reached c1');
    const n1 = await agents[0].network(VNI);
    t.diagnostic(`h1 rx drops: ${JSON.stringify(n1.rxDrops)}`);
    for (const a of agents.slice(0, 2)) {
      const cs = ((await a.status()).extensions as Record<string, { peers: { publicKey: string; session: unknown }[] }>).crypto;
      const pinnedPeer = cs.peers.find((p) => p.publicKey === pubs[a.host.index === 1 ? 1 : 0]);
      assert.ok(pinnedPeer?.session, `${a.host.name}: a session with its pinned peer`);
      assert.equal(cs.peers.some((p) => p.publicKey === pubs[2] && p.session), false, `${a.host.name}: no session with the unpinned host`);
    }
  });
