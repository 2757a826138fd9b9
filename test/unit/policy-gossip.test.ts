/**
 * Policies spread by gossip (src/policy/gossip-sync.ts): the section encoding (plain JSON when it
 * fits a section, deflated + base64 in up to 4 sections otherwise, digest-checked, inflation
 * bounded), and two real gossip extensions over the memory transport carrying a 1,000-rule policy
 * (120 KB of JSON, 13 KB as sent; more than one section holds) and 2 × 4,000 rules (more than one section even
 * compressed) from one policy extension to the other — and the deletion after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import type { Agent } from '../../src/agent/agent';
import { FakeClock } from '../../src/clock';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/types';
import { GossipExtension } from '../../src/gossip/extension';
import { sodiumReady } from '../../src/gossip/keyring';
import { MemoryNetwork } from '../../src/gossip/memory-transport';
import { seededRng } from '../../src/gossip/rng';
import { nullLogger } from '../../src/log';
import { PolicyExtension } from '../../src/policy/extension';
import { decodeSections, encodeSections, gossipPolicySync, MAX_CHUNKS, POLICY_SECTION, SECTION_BYTES } from '../../src/policy/gossip-sync';

/** A policy document with `rules` ingress rules, each its own CIDR, label set and port. */
function bigDoc(name: string, rules: number): string {
  const body = Array.from({ length: rules }, (_, k) =>
    `  - from: [{cidr: 198.18.${(k * 37) & 255}.${(k * 101) & 255}/32}, {endpoints: {team: t${k % 7}, app: a${k % 13}}}]\n` +
    `    ports: [{protocol: ${k % 3 ? 'TCP' : 'UDP'}, port: ${1024 + ((k * 7919) % 60000)}}]\n`).join('');
  return `name: ${name}\nnetwork: blue\nendpoints: {role: server}\ningress:\n${body}`;
}

test('policy sections: plain JSON when it fits, else deflate + base64 in ≤ 4 digest-checked pieces; bad or partial copies are refused', () => {
  const small = '[{"name":"a"}]';
  assert.deepEqual(encodeSections(small), [small], 'a small store is the JSON itself (what older agents read)');
  assert.equal(decodeSections((i) => (i === 0 ? small : undefined)), small);

  const json = JSON.stringify(Array.from({ length: 3000 }, (_, k) => ({ name: `p${k}`, cidr: `198.18.${k & 255}.${(k * 7) & 255}/32`, port: (k * 7919) % 65536 })));
  assert.ok(json.length > SECTION_BYTES);
  const secs = encodeSections(json)!;
  assert.ok(secs.length >= 1 && secs.length <= MAX_CHUNKS);
  for (const s of secs) assert.ok(Buffer.byteLength(s) <= SECTION_BYTES + 64, 'each piece fits a record section');
  assert.match(secs[0], /^z1 \d \w{16}\n/);
  assert.equal(decodeSections((i) => secs[i]), json);

  // Several pieces: incompressible content (random hex) of ~100 KB compressed.
  const rnd = JSON.stringify(Array.from({ length: 2000 }, (_, k) => ({ name: `r${k}`, v: createHash('sha256').update(String(k)).digest('hex') })));
  const many = encodeSections(rnd)!;
  assert.ok(many.length >= 2, `pieces: ${many.length}`);
  assert.equal(decodeSections((i) => many[i]), rnd);
  assert.equal(decodeSections((i) => (i === 1 ? undefined : many[i])), null, 'a missing piece: nothing (read again at the next record)');
  assert.equal(decodeSections((i) => (i === 1 ? many[1].replace(/A/, 'B') : many[i])), null, 'a changed piece fails the digest');
  assert.equal(decodeSections((i) => (i === 0 ? many[0].replace(/^z1 \d/, 'z1 9') : many[i])), null, 'more pieces than allowed');

  // Too large even compressed: not encoded (the caller reports it as not spread).
  const huge = JSON.stringify(Array.from({ length: 6000 }, (_, k) => createHash('sha512').update(String(k)).digest('hex')));
  assert.equal(encodeSections(huge), null);

  // A decompression bomb (32 MiB of zeros in a few KB) is refused by the inflate bound.
  const bomb = zlib.deflateRawSync(Buffer.alloc(32 << 20)).toString('base64');
  const d = createHash('sha256').update(bomb).digest('hex').slice(0, 16);
  assert.ok(bomb.length < SECTION_BYTES);
  assert.equal(decodeSections((i) => (i === 0 ? `z1 1 ${d}\n${bomb}` : undefined)), null);
});

function gossipConfig(name: string, addr: string, seed: string | null): Config {
  return {
    node: { name, keyFile: null },
    underlay: { address: addr, family: 4, port: 4789, mtu: 1500, sourcePorts: 1 },
    networks: [{ name: 'blue', vni: 42, bridge: 'br0', tap: 'vx-blue', mtu: 1450, encrypted: false }],
    peers: [], fdb: { ageingSeconds: 300, maxEntries: 1000 },
    gossip: { port: 7946, address: addr, seeds: seed ? [{ address: seed, port: 7946, family: 4 }] : [], keyFile: null, profile: 'test' },
    api: { listen: { host: '127.0.0.1', port: 0 } }, log: { level: 'error' }, source: null,
  };
}

class Dp {
  network(vni: number) { return vni === 42 ? { config: { vni } } : undefined; }
  networks() { return []; }
  fdbSetRemote() { return true; }
  fdbDelete() { return true; }
  fdbRemoveByPeer() { return 0; }
  neighSet() { return true; }
  neighDelete() { return true; }
  setNetworkPeers() { return true; }
  localEndpoints() { return []; }
  localVersion() { return 0; }
  setPolicyFilter() { return true; }
}

test('gossip: a 1,000-rule policy (and 2 × 4,000 rules, several sections) reaches the other host; its deletion too', async () => {
  await sodiumReady();
  const KEY = new Uint8Array(32).fill(7);
  const clock = new FakeClock();
  const net = new MemoryNetwork({ clock, rng: seededRng(5) });
  const mk = async (name: string, addr: string, seed: string | null) => {
    const agent = { clock, datapath: new Dp(), extensions: [], api: null, state: { dir: null } } as unknown as Agent;
    const gossip = new GossipExtension(gossipConfig(name, addr, seed), nullLogger, { transport: net.attach(`${addr}:7946`), keys: [KEY] });
    await gossip.start(agent);
    const config = parseConfig(`node: ${name}\nunderlay: {address: ${addr}}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\n`);
    const policy = new PolicyExtension(config, { sync: gossipPolicySync(gossip), seed: 1, stateDir: null, endpoints: { list: () => [], onChange: () => () => {} } });
    policy.start(agent);
    return { gossip, policy };
  };
  const a = await mk('a', '198.18.0.1', null);
  const b = await mk('b', '198.18.0.2', '198.18.0.1');
  const settle = () => { for (let i = 0; i < 40; i++) clock.advance(100); };
  settle();
  const rulesOn = (h: typeof a) => (h.policy.status() as { networks: { blue: { rules: number; policies: number } } }).networks.blue;

  const doc1k = bigDoc('big', 1000);
  assert.ok(doc1k.length > SECTION_BYTES, 'the document alone is larger than a section');
  a.policy.apply(doc1k);
  assert.equal((a.policy.status() as { spreadByGossip: boolean }).spreadByGossip, true);
  assert.equal(a.gossip.sections(POLICY_SECTION).find((s) => s.self)!.data.slice(0, 3), 'z1 ');
  settle();
  assert.deepEqual(b.policy.list().map((p) => `${p.name}@${p.version}/${p.node}`), ['big@1/a']);
  assert.equal(rulesOn(b).rules, 1000);
  assert.deepEqual(b.policy.store.get('big')!.doc, a.policy.store.get('big')!.doc, 'the same document, rule for rule');

  a.policy.apply(bigDoc('big', 4000));
  a.policy.apply(bigDoc('big2', 4000).replace(/port: (\d+)/g, (_m, x: string) => `port: ${(Number(x) * 3) % 65535 + 1}`));
  const pieces = [0, 1, 2, 3].filter((i) => a.gossip.sections(i ? `${POLICY_SECTION}-${i}` : POLICY_SECTION).some((s) => s.self)).length;
  assert.ok(pieces >= 2, `8,000 rules take ${pieces} section(s)`);
  settle();
  assert.equal(rulesOn(b).rules, 8000);
  assert.deepEqual(b.policy.list().map((p) => `${p.name}@${p.version}`), ['big@2', 'big2@3']);

  // Back to one section: the extra pieces are withdrawn; the deletion spreads.
  b.policy.delete('big');
  b.policy.delete('big2');
  settle();
  assert.deepEqual(a.policy.list(), []);
  assert.deepEqual(a.gossip.sections(`${POLICY_SECTION}-1`).filter((s) => s.self), [], 'no stale piece left');
  assert.equal(rulesOn(a).policies, 0);

  await a.policy.stop();
  await b.policy.stop();
  await Promise.all([a.gossip.stop(), b.gossip.stop(), (async () => { for (let i = 0; i < 50; i++) { clock.advance(100); await Promise.resolve(); } })()]);
});
