/**
 * The gossip API other extensions use (endpoints, IPAM): record sections round-trip in the codec
 * (a record without sections keeps its exact old bytes), and two gossip extensions over the memory
 * transport see each other's sections and announced endpoints (programmed into the remote FDB and
 * neighbour table before any frame), with member-change callbacks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from '../../src/agent/agent';
import { FakeClock } from '../../src/clock';
import type { Config } from '../../src/config/types';
import { BC_ALIVE, decodeBroadcast, encodeBroadcast, CodecError } from '../../src/gossip/codec';
import { GossipExtension } from '../../src/gossip/extension';
import { sodiumReady } from '../../src/gossip/keyring';
import { MemoryNetwork } from '../../src/gossip/memory-transport';
import { NodeRecord, sameContent } from '../../src/gossip/record';
import { seededRng } from '../../src/gossip/rng';
import { nullLogger } from '../../src/log';

const base: NodeRecord = {
  name: 'a', incarnation: 3, protocol: 1, gossip: '198.18.0.1:7946', underlay: '198.18.0.1:4789',
  vnis: [42], endpoints: [{ vni: 42, mac: '02:00:00:00:00:01', ips: ['198.19.0.1'] }], publicKey: '',
};

test('record sections round-trip; a record without sections encodes as before; malformed sections are rejected', () => {
  const withS: NodeRecord = { ...base, sections: [{ name: 'endpoints', data: '[{"n":"c1"}]' }, { name: 'ipam', data: '{}' }] };
  const b = encodeBroadcast({ kind: BC_ALIVE, record: withS });
  const d = decodeBroadcast(b, 0, b.length);
  assert.deepEqual(d.kind === BC_ALIVE && d.record, withS);
  const plain = encodeBroadcast({ kind: BC_ALIVE, record: base });
  const plainEmpty = encodeBroadcast({ kind: BC_ALIVE, record: { ...base, sections: [] } });
  assert.deepEqual(plain, plainEmpty, 'empty sections are not encoded');
  const dp = decodeBroadcast(plain, 0, plain.length);
  assert.equal(dp.kind === BC_ALIVE && dp.record.sections, undefined);
  assert.equal(sameContent(base, withS), false);
  assert.equal(sameContent(withS, { ...withS, incarnation: 9 }), true);
  // a record whose section count is 0 (never written) is bad_value
  const bad = Buffer.from(plain);
  const patched = Buffer.concat([bad.subarray(0, 1), Buffer.from([bad[1] + 1]), bad.subarray(2), Buffer.from([0])]);
  assert.throws(() => decodeBroadcast(patched, 0, patched.length), (e: unknown) => e instanceof CodecError);
});

function config(name: string, addr: string, seed: string | null): Config {
  return {
    node: { name, keyFile: null },
    underlay: { address: addr, family: 4, port: 4789, mtu: 1500, sourcePorts: 1 },
    networks: [{ name: 'n42', vni: 42, bridge: 'br0', tap: 'vx-n42', mtu: 1450, encrypted: false }],
    peers: [], fdb: { ageingSeconds: 300, maxEntries: 1000 },
    gossip: { port: 7946, address: addr, seeds: seed ? [{ address: seed, port: 7946, family: 4 }] : [], keyFile: null, profile: 'test' },
    api: { listen: { host: '127.0.0.1', port: 0 } }, log: { level: 'error' }, source: null,
  };
}

class Dp {
  calls: string[] = [];
  network(vni: number) { return vni === 42 ? { config: { vni } } : undefined; }
  networks() { return []; }
  fdbSetRemote(vni: number, mac: string) { this.calls.push(`set ${vni} ${mac}`); return true; }
  fdbDelete() { return true; }
  fdbRemoveByPeer() { return 0; }
  neighSet(vni: number, ip: string, mac: string) { this.calls.push(`neigh ${vni} ${ip} ${mac}`); return true; }
  neighDelete() { return true; }
  setNetworkPeers() { return true; }
  localEndpoints() { return []; }
  localVersion() { return 0; }
}

test('two gossip extensions see each other\'s sections and announced endpoints', async () => {
  await sodiumReady();
  const KEY = new Uint8Array(32).fill(7);
  const clock = new FakeClock();
  const net = new MemoryNetwork({ clock, rng: seededRng(11) });
  const mk = async (name: string, addr: string, seed: string | null) => {
    const dp = new Dp();
    const agent = { clock, datapath: dp, extensions: [], api: null } as unknown as Agent;
    const ext = new GossipExtension(config(name, addr, seed), nullLogger, { transport: net.attach(`${addr}:7946`), keys: [KEY] });
    return { ext, dp, agent };
  };
  const a = await mk('a', '198.18.0.1', null);
  const b = await mk('b', '198.18.0.2', '198.18.0.1');
  a.ext.setSection('ipam', '{"blocks":["198.19.0.0/26"]}'); // before start: announced at start
  await a.ext.start(a.agent);
  await b.ext.start(b.agent);
  let changes = 0;
  b.ext.onMembersChange(() => changes++);
  clock.advance(2000);
  const seen = b.ext.sections('ipam');
  assert.deepEqual(seen.map((s) => [s.node, s.state, s.data, s.self]), [['a', 'alive', '{"blocks":["198.19.0.0/26"]}', false]]);
  a.ext.setAnnouncedEndpoints('endpoints', [{ vni: 42, mac: '02:AA:00:00:00:01', ips: ['198.19.0.5'] }]);
  a.ext.setSection('endpoints', '[{"name":"c1"}]');
  clock.advance(2000);
  assert.ok(b.dp.calls.includes('set 42 02:aa:00:00:00:01'), b.dp.calls.join('\n'));
  assert.ok(b.dp.calls.includes('neigh 42 198.19.0.5 02:aa:00:00:00:01'));
  assert.equal(b.ext.sections('endpoints')[0].data, '[{"name":"c1"}]');
  assert.ok(changes > 0);
  a.ext.setSection('endpoints', null);
  clock.advance(2000);
  assert.deepEqual(b.ext.sections('endpoints'), []);
  assert.throws(() => a.ext.setSection('Bad Name', 'x'), RangeError);
  await Promise.all([a.ext.stop(), b.ext.stop(), (async () => { for (let i = 0; i < 50; i++) { clock.advance(100); await Promise.resolve(); } })()]);
});
