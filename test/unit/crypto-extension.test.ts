/**
 * The crypto agent extension against a stand-in agent: key file created, cipher installed on the
 * data path, peers added/updated/removed from gossip member events (through the gossip API handed
 * over with `connect`, no lookup by name, no polling), records without a key or with a bad one
 * ignored, PSKs reloaded.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { Agent } from '../../src/agent/agent';
import { FakeClock } from '../../src/clock';
import type { Config } from '../../src/config/types';
import { CryptoExtension, createCryptoExtension, parseUnderlay, type MemberLike } from '../../src/crypto/extension';
import { cryptoReady, encodeKey, generateHostKey } from '../../src/crypto/keys';
import { cryptoViewOf } from '../../src/metrics/adapters';
import { renderStatus } from '../../src/cli/commands/status';
import { tuningFor } from '../../src/gossip/config';
import { GossipExtension } from '../../src/gossip/extension';
import { Keyring, sodiumReady } from '../../src/gossip/keyring';
import { MemoryNetwork } from '../../src/gossip/memory-transport';
import { seededRng } from '../../src/gossip/rng';
import { GossipNode } from '../../src/gossip/swim';
import { nullLogger } from '../../src/log';

function config(keyFile: string | null, encrypted = true): Config {
  return {
    node: { name: 'h1', keyFile },
    underlay: { address: '198.18.0.1', family: 4, port: 4789, mtu: 1500, sourcePorts: 1 },
    networks: [{ name: 'sec', vni: 7, bridge: 'br0', tap: 'vx-sec', mtu: 1418, encrypted }],
    peers: [], fdb: { ageingSeconds: 300, maxEntries: 100 }, gossip: null,
    api: { listen: { host: '127.0.0.1', port: 9469 } }, log: { level: 'info' }, source: null,
  };
}

test('crypto ready', async () => { await cryptoReady(); });

test('factory: only when a network is encrypted or a host key file is configured', () => {
  assert.equal(createCryptoExtension(config(null, false), undefined as never), null);
  assert.ok(createCryptoExtension(config(null, true), { child: () => ({}) } as never));
  assert.ok(createCryptoExtension(config('/x', false), { child: () => ({}) } as never));
});

test('parseUnderlay', () => {
  assert.deepEqual(parseUnderlay('198.18.0.2:4789'), { address: '198.18.0.2', port: 4789, family: 4 });
  assert.deepEqual(parseUnderlay('[2001:2::5]:4790'), { address: '2001:2::5', port: 4790, family: 6 });
  for (const bad of ['', '198.18.0.2', 'x:1', '198.18.0.2:0', '198.18.0.2:70000', '[::1]']) assert.equal(parseUnderlay(bad), null, bad);
});

test('start: key file created, cipher installed, gossip members become session peers', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-ext-'));
  try {
    const keyFile = path.join(dir, 'host.key');
    const listeners: ((ev: MemberLike) => void)[] = [];
    const k2 = encodeKey(generateHostKey().publicKey);
    const k3 = encodeKey(generateHostKey().publicKey);
    const announced: string[] = [];
    // The gossip API as cli/extensions.ts hands it over (a member already known is replayed).
    const gossip = {
      setPublicKey: (k: string) => { announced.push(k); },
      onMemberEvent: (fn: (ev: MemberLike) => void, opts?: { replay?: boolean }) => {
        listeners.push(fn);
        if (opts?.replay) fn({ type: 'join', record: { name: 'h2', underlay: '198.18.0.2:4789', publicKey: k2 } });
        return () => { listeners.splice(listeners.indexOf(fn), 1); };
      },
    };
    let cipher: unknown = 'unset';
    const clock = new FakeClock(0);
    const agent = { extensions: [], datapath: { setCipher: (c: unknown) => { cipher = c; } } } as unknown as Agent;
    const ext = new CryptoExtension(config(keyFile), undefined, { clock });
    ext.connect({ gossip });
    await ext.start(agent);
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(cipher, ext.sessions);
    assert.match(ext.publicKey, /^[A-Za-z0-9+/]{43}=$/);
    assert.equal(ext.ready(), true);
    assert.equal(listeners.length, 1, 'bound to gossip at start');
    assert.deepEqual(announced, [ext.publicKey], 'our public key announced in the gossip record');
    const peers = () => (ext.status() as { peers: { publicKey: string; endpoint: { address: string } | null }[] }).peers;
    assert.deepEqual(peers().map((p) => p.publicKey), [k2]);
    const emit = (type: string, name: string, underlay: string, publicKey: string) => listeners[0]({ type, record: { name, underlay, publicKey } });
    emit('join', 'h3', '198.18.0.3:4789', k3);
    emit('join', 'h4', '198.18.0.4:4789', ''); // no key: ignored
    emit('join', 'h5', '198.18.0.5:4789', 'garbage'); // bad key: ignored (logged)
    emit('join', 'h1', '198.18.0.1:4789', ext.publicKey); // ourselves (node.name h1): ignored
    assert.deepEqual(peers().map((p) => p.publicKey).sort(), [k2, k3].sort());
    emit('update', 'h3', '198.18.0.33:4789', k3);
    assert.equal(peers().find((p) => p.publicKey === k3)!.endpoint!.address, '198.18.0.33');
    assert.ok(ext.sessions!.peerByEndpoint({ address: '198.18.0.33', port: 4789, family: 4 }));
    assert.equal(ext.sessions!.peerByEndpoint({ address: '198.18.0.3', port: 4789, family: 4 }), undefined, 'old address forgotten');
    emit('dead', 'h2', '198.18.0.2:4789', k2);
    assert.deepEqual(peers().map((p) => p.publicKey), [k3]);
    ext.stop();
    assert.equal(cipher, null, 'cipher removed on stop');
    assert.equal(listeners.length, 0, 'unsubscribed on stop');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('crypto and a real gossip extension wired by buildExtensions: key announced, no polling, either start order', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-ext-'));
  try {
    await sodiumReady();
    const clock = new FakeClock(0);
    const net = new MemoryNetwork({ clock, rng: seededRng(4) });
    const KEY = new Uint8Array(32).fill(3);
    const c = { ...config(path.join(dir, 'k')), gossip: { port: 7946, address: '198.18.0.1', seeds: [], keyFile: null, profile: 'test' as const } };
    for (const cryptoFirst of [true, false]) {
      const gossip = new GossipExtension(c, nullLogger, { transport: net.attach(`198.18.0.1:7946`), keys: [KEY] });
      const crypto = new CryptoExtension(c, undefined, { clock });
      crypto.connect({ gossip });
      const dp = { setCipher() {}, localEndpoints: () => [], localVersion: () => 0, networks: () => [], network: () => undefined, setNetworkPeers: () => true, fdbSetRemote: () => true, fdbDelete: () => true, fdbRemoveByPeer: () => 0, neighSet: () => true, neighDelete: () => true };
      const agent = { clock, extensions: [], datapath: dp, api: null } as unknown as Agent;
      const order = cryptoFirst ? [crypto, gossip] : [gossip, crypto];
      for (const e of order) await e.start(agent);
      assert.equal(gossip.node!.self.publicKey, crypto.publicKey, `our key is in our record (crypto ${cryptoFirst ? 'first' : 'second'})`);
      // Another member with a key joins: it becomes a session peer, through the subscription.
      const other = new GossipNode({
        name: 'h2', transport: net.attach('198.18.0.2:7946'), keyring: new Keyring([KEY]), clock, tuning: tuningFor('test'),
        underlay: '198.18.0.2:4789', publicKey: encodeKey(generateHostKey().publicKey), rng: seededRng(8),
      });
      other.start();
      other.join(['198.18.0.1:7946']);
      clock.advance(2000);
      const peers = (crypto.status() as { peers: { publicKey: string }[] }).peers.map((p) => p.publicKey);
      assert.deepEqual(peers, [other.self.publicKey]);
      crypto.stop();
      const stopped = gossip.stop();
      clock.advance(2000);
      await stopped;
      void other.shutdown();
      clock.advance(1000);
      fs.rmSync(path.join(dir, 'k'), { force: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('static peer keys from the config: pinned at start, added, moved and forgotten on reload', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-ext-'));
  try {
    const k2 = encodeKey(generateHostKey().publicKey);
    const k3 = encodeKey(generateHostKey().publicKey);
    const ep = (a: string) => ({ address: a, port: 4789, family: 4 as const });
    const c = { ...config(path.join(dir, 'host.key')), peers: [ep('198.18.0.2')], peerKeys: [{ endpoint: ep('198.18.0.2'), publicKey: k2 }] };
    const agent = { extensions: [], datapath: { setCipher() {} } } as unknown as Agent;
    const ext = new CryptoExtension(c, undefined, { clock: new FakeClock(0) });
    await ext.start(agent);
    const peers = () => (ext.status() as { peers: { publicKey: string; endpoint: { address: string } | null }[] }).peers
      .map((p) => `${p.publicKey}@${p.endpoint?.address}`).sort();
    assert.deepEqual(peers(), [`${k2}@198.18.0.2`]);
    ext.reload({ ...c, peerKeys: [{ endpoint: ep('198.18.0.22'), publicKey: k2 }, { endpoint: ep('198.18.0.3'), publicKey: k3 }] });
    assert.deepEqual(peers(), [`${k2}@198.18.0.22`, `${k3}@198.18.0.3`].sort(), 'moved and added');
    assert.equal(ext.sessions!.peerByEndpoint(ep('198.18.0.2')), undefined, 'the old address is forgotten');
    ext.reload({ ...c, peerKeys: [{ endpoint: ep('198.18.0.3'), publicKey: k3 }] });
    assert.deepEqual(peers(), [`${k3}@198.18.0.3`], 'a key no longer listed is forgotten');
    ext.stop();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('gossip records cannot rebind a pinned peers[].publicKey, nor take another member\'s key or address', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-ext-'));
  try {
    const k2 = encodeKey(generateHostKey().publicKey);
    const k3 = encodeKey(generateHostKey().publicKey);
    const k3b = encodeKey(generateHostKey().publicKey);
    const kEvil = encodeKey(generateHostKey().publicKey);
    const ep = (a: string) => ({ address: a, port: 4789, family: 4 as const });
    const c = { ...config(path.join(dir, 'host.key')), peers: [ep('198.18.0.2')], peerKeys: [{ endpoint: ep('198.18.0.2'), publicKey: k2 }] };
    const agent = { extensions: [], datapath: { setCipher() {} } } as unknown as Agent;
    const ext = new CryptoExtension(c, undefined, { clock: new FakeClock(0) });
    await ext.start(agent);
    const sm = ext.sessions!;
    const at = (a: string): string | undefined => sm.peerByEndpoint(ep(a))?.keyB64;
    const emit = (type: string, name: string, underlay: string, publicKey: string, previous?: string) =>
      ext.onMember({ type, record: { name, underlay, publicKey }, previous: previous === undefined ? undefined : { publicKey: previous } });
    // a record naming the pinned key elsewhere does not move it
    emit('join', 'evil', '198.18.0.66:4789', k2);
    assert.equal(at('198.18.0.2'), k2, 'pinned key stays at its pinned address');
    assert.equal(at('198.18.0.66'), undefined);
    // a record claiming the pinned address for another key does not take it
    emit('update', 'evil', '198.18.0.2:4789', kEvil);
    assert.equal(at('198.18.0.2'), k2);
    assert.equal(sm.peer(kEvil), undefined);
    // the legitimate member announcing the pinned key at the pinned address is fine
    emit('join', 'h2', '198.18.0.2:4789', k2);
    assert.equal(at('198.18.0.2'), k2);
    // another member's key and address are its own
    emit('join', 'h3', '198.18.0.3:4789', k3);
    assert.equal(at('198.18.0.3'), k3);
    emit('update', 'evil', '198.18.0.3:4789', kEvil);
    assert.equal(at('198.18.0.3'), k3, 'address of another member not taken');
    emit('update', 'evil', '198.18.0.77:4789', k3);
    assert.equal(at('198.18.0.3'), k3, 'key of another member not moved');
    assert.equal(at('198.18.0.77'), undefined);
    // nor removed by someone else's departure; a pinned key survives its own member's departure too
    emit('dead', 'evil', '198.18.0.3:4789', k3);
    assert.equal(at('198.18.0.3'), k3);
    emit('dead', 'h2', '198.18.0.2:4789', k2);
    assert.equal(at('198.18.0.2'), k2, 'pinned: still there after its member left');
    // a member may change its own key at its own address
    emit('update', 'h3', '198.18.0.3:4789', k3b, k3);
    assert.equal(at('198.18.0.3'), k3b);
    assert.equal(sm.peer(k3), undefined, 'the member\'s old key is forgotten');
    // evil's own record is honoured for evil itself
    emit('update', 'evil', '198.18.0.66:4789', kEvil);
    assert.equal(at('198.18.0.66'), kEvil);
    ext.stop();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a gossip member with our own host key: error log naming it, crypto status, metrics and vxmesh status show it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-ext-'));
  try {
    const errors: string[] = [];
    const logger = {
      level: 'info', trace() {}, debug() {}, info() {}, warn() {}, fatal() {},
      error(_o: object | string, msg?: string) { errors.push(msg ?? ''); },
      child() { return logger; },
    };
    const agent = { extensions: [], datapath: { setCipher() {} } } as unknown as Agent;
    const ext = new CryptoExtension(config(path.join(dir, 'host.key')), logger, { clock: new FakeClock(0) });
    await ext.start(agent);
    ext.onMember({ type: 'join', record: { name: 'h1', underlay: '198.18.0.1:4789', publicKey: ext.publicKey } }); // ourselves
    assert.deepEqual(errors, []);
    ext.onMember({ type: 'join', record: { name: 'h2', underlay: '198.18.0.2:4789', publicKey: ext.publicKey } });
    assert.deepEqual(errors, ['host h2 (198.18.0.2) uses the same host key as this host (cloned image or shared node.keyFile?)']);
    const st = ext.status() as { duplicateHostKeys: { host: string; address: string; via: string[] }[]; peers: unknown[] };
    assert.deepEqual(st.duplicateHostKeys.map((d) => [d.host, d.address, d.via]), [['h2', '198.18.0.2', ['gossip']]]);
    assert.deepEqual(st.peers, []);
    assert.deepEqual(cryptoViewOf(ext)!.duplicateHostKeys!(), { detections: 1, hosts: 1 });
    const text = renderStatus({
      node: 'h1', uptimeSeconds: 1, ready: true, underlay: { address: '198.18.0.1', port: 4789 }, networks: [], peers: [],
      extensions: { crypto: st },
    } as never);
    assert.match(text, /ERROR: host h2 \(198\.18\.0\.2\) uses the same host key as this host/);
    ext.onMember({ type: 'left', record: { name: 'h2', underlay: '198.18.0.2:4789', publicKey: ext.publicKey } });
    assert.deepEqual((ext.status() as { duplicateHostKeys: unknown[] }).duplicateHostKeys, []);
    assert.deepEqual(cryptoViewOf(ext)!.duplicateHostKeys!(), { detections: 1, hosts: 0 });
    ext.stop();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
