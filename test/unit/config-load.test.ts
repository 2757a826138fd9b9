/**
 * Config loader: the issue's example validates with every default applied; each class of error
 * names the field path and what was expected; unknown keys (with did-you-mean); JSON too; several
 * errors at once; YAML hazards (duplicate keys, alias bombs); the reload diff.
 */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfig, loadConfigFile, ConfigErrorList, ENCRYPTION_OVERHEAD } from '../../src/config/load';
import { DATA_OVERHEAD } from '../../src/crypto/noise';
import { diffConfig } from '../../src/config/diff';
import { ConfigError } from '../../src/errors';
import type { Config } from '../../src/config/types';

export const ISSUE_EXAMPLE = `node: host-a                 # optional, defaults to the hostname
underlay:
  address: 198.18.0.1        # local underlay address to bind and send from
  port: 4789                 # VXLAN UDP port, default 4789
networks:
  - name: blue
    vni: 42
    bridge: br0              # created if missing
peers:                       # static peers: address or address:port
  - 198.18.0.2
  - 198.18.0.3:4789
api:
  listen: 127.0.0.1:9469     # metrics/status HTTP listener (used by later issues)
`;

const noLookup = { mtuLookup: () => null, hostname: 'testhost' };

/** Parses `text` expecting failure; returns every ConfigError. */
function errorsOf(text: string, opts: Parameters<typeof parseConfig>[1] = noLookup): ConfigError[] {
  try {
    parseConfig(text, opts);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    assert.equal((e as ConfigError).code, 'ERR_VXMESH_CONFIG');
    return e instanceof ConfigErrorList ? e.errors : [e];
  }
  assert.fail(`expected the config to be rejected:\n${text}`);
}

/** Exactly one error, at `field`, whose message matches `re`. */
function expectError(text: string, field: string, re: RegExp): ConfigError {
  const errs = errorsOf(text);
  assert.equal(errs.length, 1, `expected one error, got:\n${errs.map((e) => e.message).join('\n')}`);
  assert.equal(errs[0].path, field);
  assert.ok(errs[0].message.startsWith(`${field}: `), errs[0].message);
  assert.match(errs[0].message, re);
  return errs[0];
}

const base = (extra = '', net = '  - {name: blue, vni: 42, bridge: br0}\n') =>
  `underlay:\n  address: 198.18.0.1\nnetworks:\n${net}${extra}`;

test('the issue example validates as is, with every default applied', () => {
  const c = parseConfig(ISSUE_EXAMPLE, noLookup);
  assert.deepEqual(c, {
    node: { name: 'host-a', keyFile: null },
    underlay: { address: '198.18.0.1', family: 4, port: 4789, mtu: 1500, sourcePorts: 8, offload: true, tapThreads: false, busyPollUs: 50, maxLearnedPeers: 1024, handshakeGuard: true },
    networks: [{ name: 'blue', vni: 42, bridge: 'br0', tap: 'vx-blue', mtu: 1450, encrypted: false, acceptFrom: 'known', defaultPolicy: 'allow', policyMode: 'enforce' }],
    peers: [
      { address: '198.18.0.2', port: 4789, family: 4 },
      { address: '198.18.0.3', port: 4789, family: 4 },
    ],
    peerKeys: [],
    fdb: { ageingSeconds: 300, maxEntries: 16384, maxLocalPerNetwork: 512 },
    gossip: null,
    api: { listen: { host: '127.0.0.1', port: 9469 }, metricsListen: null, socket: '/run/vxmesh/vxmesh.sock' },
    log: { level: 'info' },
    localNetworks: [],
    source: null,
  } satisfies Config);
});

test('node defaults to the hostname; object form with keyFile', () => {
  assert.deepEqual(parseConfig(base(), noLookup).node, { name: 'testhost', keyFile: null });
  assert.deepEqual(parseConfig(base('node: {name: h1, keyFile: /etc/vxmesh/host.key}\n'), noLookup).node, { name: 'h1', keyFile: '/etc/vxmesh/host.key' });
  assert.deepEqual(parseConfig(base('node: {keyFile: /k}\n'), noLookup).node, { name: 'testhost', keyFile: '/k' });
  expectError(base('node: "bad name"\n'), 'node', /expected a node name/);
  expectError(base('node: {nmae: x}\n'), 'node.nmae', /unknown key \(did you mean "name"\?\)/);
});

test('underlay MTU: configured, looked up, or 1500; network MTU = underlay − 50 (IPv4) / − 70 (IPv6)', () => {
  const looked: string[] = [];
  const c = parseConfig(base(), { mtuLookup: (a) => { looked.push(a); return 9000; } });
  assert.deepEqual(looked, ['198.18.0.1']);
  assert.equal(c.underlay.mtu, 9000);
  assert.equal(c.networks[0].mtu, 8950);
  const c6 = parseConfig('underlay: {address: "2001:2::1", mtu: 1500}\nnetworks: [{name: a, vni: 1, bridge: b}]\n', noLookup);
  assert.equal(c6.underlay.family, 6);
  assert.equal(c6.networks[0].mtu, 1430);
  // Encrypted networks leave room for the crypto envelope.
  const enc = parseConfig(base('', '  - {name: blue, vni: 42, bridge: br0, encrypted: true}\n'), noLookup);
  assert.equal(enc.networks[0].mtu, 1500 - 50 - ENCRYPTION_OVERHEAD);
  expectError(base('', '  - {name: blue, vni: 42, bridge: br0, encrypted: true, mtu: 1450}\n'), 'networks[0].mtu', /576\.\.1418 .*− 32 \(encrypted\)/);
  // Explicit network MTU within bounds
  assert.equal(parseConfig(base('', '  - {name: blue, vni: 42, bridge: br0, mtu: 1400}\n'), noLookup).networks[0].mtu, 1400);
  expectError(base('', '  - {name: blue, vni: 42, bridge: br0, mtu: 1451}\n'), 'networks[0].mtu', /expected an integer 576\.\.1450 .*got 1451/);
  expectError(base('', '  - {name: blue, vni: 42, bridge: br0, mtu: 500}\n'), 'networks[0].mtu', /576\.\.1450/);
  expectError('underlay: {address: 198.18.0.1, mtu: 100}\nnetworks: []\n', 'underlay.mtu', /expected an integer 626\.\.65535/);
  // A looked-up underlay MTU too small for the minimum network MTU is reported.
  const errs = errorsOf(base(), { mtuLookup: () => 600 });
  assert.equal(errs[0].path, 'underlay');
  assert.match(errs[0].message, /network MTU of 550, below the minimum 576/);
});

test('the encrypted-network MTU allowance equals the crypto envelope size', () => {
  assert.equal(ENCRYPTION_OVERHEAD, DATA_OVERHEAD);
});

test('VNI: integer 1..16777215, unique', () => {
  expectError(base('', '  - {name: blue, vni: abc, bridge: br0}\n'), 'networks[0].vni', /expected an integer 1\.\.16777215, got "abc"/);
  expectError(base('', '  - {name: blue, vni: 0, bridge: br0}\n'), 'networks[0].vni', /got 0/);
  expectError(base('', '  - {name: blue, vni: 16777216, bridge: br0}\n'), 'networks[0].vni', /got 16777216/);
  expectError(base('', '  - {name: blue, vni: 4.5, bridge: br0}\n'), 'networks[0].vni', /got 4.5/);
  assert.equal(parseConfig(base('', '  - {name: blue, vni: 16777215, bridge: br0}\n'), noLookup).networks[0].vni, 16777215);
  const e = expectError(base('', '  - {name: blue, vni: 42, bridge: br0}\n  - {name: red, vni: 42, bridge: br1}\n'), 'networks[1].vni', /42 is already used by networks\[0\]/);
  assert.match(e.message, /\(line 5\)$/);
});

test('network names, bridges and TAPs: shape and uniqueness', () => {
  expectError(base('', '  - {name: Blue, vni: 1, bridge: br0}\n'), 'networks[0].name', /\[a-z0-9-\]/);
  expectError(base('', '  - {name: -x, vni: 1, bridge: br0}\n'), 'networks[0].name', /expected a network name/);
  expectError(base('', '  - {name: abcdefghijklmnop, vni: 1, bridge: br0}\n'), 'networks[0].name', /1\.\.15/);
  expectError(base('', '  - {name: a, vni: 1, bridge: br0}\n  - {name: a, vni: 2, bridge: br1}\n'), 'networks[1].name', /"a" is already used by networks\[0\]/);
  expectError(base('', '  - {name: a, vni: 1, bridge: br/0}\n'), 'networks[0].bridge', /interface name/);
  expectError(base('', '  - {name: a, vni: 1, bridge: "br 0"}\n'), 'networks[0].bridge', /interface name/);
  expectError(base('', '  - {name: a, vni: 1, bridge: "br:0"}\n'), 'networks[0].bridge', /interface name/);
  expectError(base('', '  - {name: a, vni: 1, bridge: abcdefghijklmnop}\n'), 'networks[0].bridge', /1\.\.15/);
  expectError(base('', '  - {name: a, vni: 1, bridge: br0}\n  - {name: b, vni: 2, bridge: br0}\n'), 'networks[1].bridge', /"br0" is already used/);
  expectError(base('', '  - {name: a, vni: 1, bridge: br0, tap: br0}\n'), 'networks[0].tap', /must differ from the bridge/);
  expectError(base('', '  - {name: a, vni: 1, bridge: br0}\n  - {name: b, vni: 2, bridge: br1, tap: br0}\n'), 'networks[1].tap', /"br0" is already used/);
  // Default TAP names are "vx-" + name cut to 15 characters, so long names can collide.
  const c = parseConfig(base('', '  - {name: abcdefghijklmno, vni: 1, bridge: br0}\n'), noLookup);
  assert.equal(c.networks[0].tap, 'vx-abcdefghijkl');
  expectError(base('', '  - {name: abcdefghijklmno, vni: 1, bridge: br0}\n  - {name: abcdefghijklmnx, vni: 2, bridge: br1}\n'),
    'networks[1].tap', /default TAP name/);
  expectError(base('', '  - {name: a, vni: 1, bridge: br0, encrypted: yes}\n'), 'networks[0].encrypted', /expected true or false, got "yes"/);
  assert.equal(parseConfig(base('', '  - {name: a, vni: 1, bridge: br0, encrypted: true}\n'), noLookup).networks[0].encrypted, true);
});

test('required fields are named when missing', () => {
  expectError('networks: []\n', 'underlay', /missing; expected a mapping/);
  expectError('underlay: {port: 4789}\nnetworks: []\n', 'underlay.address', /missing; expected the local underlay/);
  expectError('underlay: {address: 198.18.0.1}\n', 'networks', /missing; expected a list of networks/);
  expectError(base('', '  - {vni: 1, bridge: br0}\n'), 'networks[0].name', /missing/);
  expectError(base('', '  - {name: a, bridge: br0}\n'), 'networks[0].vni', /missing/);
  expectError(base('', '  - {name: a, vni: 1}\n'), 'networks[0].bridge', /missing/);
  expectError('underlay: {address: 198.18.0.1}\nnetworks: {name: a}\n', 'networks', /expected a list of networks/);
});

test('IP addresses and ports', () => {
  expectError('underlay: {address: 198.18.0.256}\nnetworks: []\n', 'underlay.address', /expected an IPv4 or IPv6 address, got "198.18.0.256"/);
  expectError('underlay: {address: 0.0.0.0}\nnetworks: []\n', 'underlay.address', /unicast/);
  expectError('underlay: {address: 239.1.1.1}\nnetworks: []\n', 'underlay.address', /unicast/);
  expectError('underlay: {address: "::ffff:198.18.0.1"}\nnetworks: []\n', 'underlay.address', /IPv4-mapped/);
  expectError('underlay: {address: 198.18.0.1, port: 0}\nnetworks: []\n', 'underlay.port', /expected an integer 1\.\.65535, got 0/);
  expectError('underlay: {address: 198.18.0.1, port: 65536}\nnetworks: []\n', 'underlay.port', /got 65536/);
  expectError('underlay: {address: 198.18.0.1, port: "4789"}\nnetworks: []\n', 'underlay.port', /got "4789"/);
  expectError('underlay: {address: 198.18.0.1, sourcePorts: 0}\nnetworks: []\n', 'underlay.sourcePorts', /1\.\.64/);
  const c = parseConfig('underlay: {address: "2001:0002:0::0001"}\nnetworks: []\n', noLookup);
  assert.equal(c.underlay.address, '2001:2::1', 'IPv6 addresses are canonicalized');
});

test('peers: address, address:port, [v6]:port; same family as the underlay; no duplicates or self', () => {
  const c = parseConfig(base('peers: [198.18.0.2, "198.18.0.3:8472"]\n'), noLookup);
  assert.deepEqual(c.peers, [{ address: '198.18.0.2', port: 4789, family: 4 }, { address: '198.18.0.3', port: 8472, family: 4 }]);
  const c6 = parseConfig('underlay: {address: "2001:2::1", port: 4790}\nnetworks: []\npeers: ["2001:2::2", "[2001:2::3]:5000", "[2001:2::4]"]\n', noLookup);
  assert.deepEqual(c6.peers, [
    { address: '2001:2::2', port: 4790, family: 6 },
    { address: '2001:2::3', port: 5000, family: 6 },
    { address: '2001:2::4', port: 4790, family: 6 },
  ]);
  expectError(base('peers: ["2001:2::2"]\n'), 'peers[0]', /expected an IPv4 address \(the same family as the underlay\)/);
  expectError(base('peers: ["198.18.0.2:0"]\n'), 'peers[0]', /port 1\.\.65535/);
  expectError(base('peers: ["198.18.0.2:x"]\n'), 'peers[0]', /port 1\.\.65535/);
  expectError(base('peers: ["host.example:4789"]\n'), 'peers[0]', /expected an IPv4 address/);
  expectError(base('peers: [198.18.0.2, "198.18.0.2:4789"]\n'), 'peers[1]', /listed twice \(also peers\[0\]\)/);
  expectError(base('peers: [198.18.0.1]\n'), 'peers[0]', /own underlay address/);
  expectError(base('peers: 198.18.0.2\n'), 'peers', /expected a list of peer addresses/);
  expectError(base('peers: [42]\n'), 'peers[0]', /got 42/);
  // Same address on another port is a different peer (several agents on one underlay address).
  assert.equal(parseConfig(base('peers: ["198.18.0.1:4790"]\n'), noLookup).peers.length, 1);
});

test('api.listen, fdb and log sections', () => {
  assert.deepEqual(parseConfig(base('api: {listen: "[::1]:9000"}\n'), noLookup).api.listen, { host: '::1', port: 9000 });
  expectError(base('api: {listen: "127.0.0.1"}\n'), 'api.listen', /host:port/);
  expectError(base('api: {listen: "localhost:9469"}\n'), 'api.listen', /host:port with an IP address/);
  expectError(base('api: {listen: "127.0.0.1:70000"}\n'), 'api.listen', /port 1\.\.65535/);
  const f = parseConfig(base('fdb: {ageingSeconds: 60, maxEntries: 100}\nlog: {level: debug}\n'), noLookup);
  assert.deepEqual(f.fdb, { ageingSeconds: 60, maxEntries: 100, maxLocalPerNetwork: 512 });
  assert.equal(f.log.level, 'debug');
  expectError(base('fdb: {ageingSeconds: 0}\n'), 'fdb.ageingSeconds', /expected an integer 1\.\.604800 \(seconds\), got 0/);
  expectError(base('fdb: {maxEntries: -1}\n'), 'fdb.maxEntries', /got -1/);
  expectError(base('fdb: {ageing: 10}\n'), 'fdb.ageing', /did you mean "ageingSeconds"/);
  expectError(base('log: {level: verbose}\n'), 'log.level', /expected one of trace, debug, info, warn, error, got "verbose"/);
});

test('gossip: defaults, seeds with the gossip port, profiles', () => {
  const c = parseConfig(base('gossip:\n  port: 7946\n  seeds: [198.18.0.1]\n  keyFile: /etc/vxmesh/cluster.key\n'), noLookup);
  assert.deepEqual(c.gossip, {
    port: 7946, address: '198.18.0.1', seeds: [{ address: '198.18.0.1', port: 7946, family: 4 }],
    keyFile: '/etc/vxmesh/cluster.key', profile: 'lan',
  });
  const d = parseConfig(base('gossip: {keyFile: /k}\n'), noLookup);
  assert.deepEqual(d.gossip, { port: 7946, address: '198.18.0.1', seeds: [], keyFile: '/k', profile: 'lan' });
  // The agent cannot start gossip without a cluster key: neither does the loader accept it.
  expectError(base('gossip: {}\n'), 'gossip.keyFile', /required: the cluster keyring file/);
  assert.deepEqual(parseConfig(base('gossip: {port: 8000, seeds: ["198.18.0.9", "198.18.0.8:9000"], profile: test, keyFile: /k}\n'), noLookup).gossip?.seeds,
    [{ address: '198.18.0.9', port: 8000, family: 4 }, { address: '198.18.0.8', port: 9000, family: 4 }]);
  expectError(base('gossip:\n'), 'gossip', /expected a mapping \(omit the section to disable gossip\)/);
  expectError(base('gossip: {profile: fast, keyFile: /k}\n'), 'gossip.profile', /expected one of lan, wan, test/);
  expectError(base('gossip: {seeds: ["2001:2::1"], keyFile: /k}\n'), 'gossip.seeds[0]', /IPv4/);
  expectError(base('gossip: {port: 4789, keyFile: /k}\n'), 'gossip.port', /also the VXLAN port/);
  expectError(base('gossip: {sedes: [], keyFile: /k}\n'), 'gossip.sedes', /did you mean "seeds"/);
});

test('unknown keys are errors, with a did-you-mean hint when close', () => {
  expectError(base('peer: [198.18.0.2]\n'), 'peer', /unknown key \(did you mean "peers"\?\); allowed here: node, underlay/);
  expectError('underlay: {address: 198.18.0.1, prot: 1}\nnetworks: []\n', 'underlay.prot', /did you mean "port"/);
  expectError(base('', '  - {name: a, vni: 1, bridge: br0, vnid: 3}\n'), 'networks[0].vnid', /did you mean "vni"/);
  const e = expectError(base('zzzzzz: 1\n'), 'zzzzzz', /unknown key;/);
  assert.doesNotMatch(e.message, /did you mean/);
});

test('several errors are reported at once, each with its field and line', () => {
  const errs = errorsOf(`underlay:
  address: 198.18.0.1
  prot: 4789
networks:
  - {name: blue, vni: abc, bridge: br0}
peers: ["2001:2::1"]
log: {level: loud}
`);
  assert.deepEqual(errs.map((e) => e.path), ['underlay.prot', 'networks[0].vni', 'peers[0]', 'log.level']);
  assert.match(errs[1].message, /\(line 5\)$/);
  assert.match(errs[3].message, /\(line 7\)$/);
});

test('JSON: by content or by option, same validation, duplicate keys rejected', () => {
  const json = JSON.stringify({ node: 'host-a', underlay: { address: '198.18.0.1' }, networks: [{ name: 'blue', vni: 42, bridge: 'br0' }] });
  const c = parseConfig(json, noLookup);
  assert.equal(c.networks[0].tap, 'vx-blue');
  assert.deepEqual(parseConfig(json, { ...noLookup, format: 'json' }), c);
  const bad = JSON.stringify({ underlay: { address: '198.18.0.1' }, networks: [{ name: 'blue', vni: 'abc', bridge: 'br0' }] }, null, 2);
  const errs = errorsOf(bad);
  assert.equal(errs[0].path, 'networks[0].vni');
  assert.match(errs[0].message, /got "abc" \(line 8\)/);
  assert.match(errorsOf('{"underlay": {"address": "198.18.0.1"}, "underlay": {}}')[0].message, /duplicate key/);
  assert.match(errorsOf('{"underlay": ', { ...noLookup, format: 'json' })[0].message, /invalid JSON/);
  // Text starting with '{' that is not JSON is YAML flow style.
  assert.equal(parseConfig('{underlay: {address: 198.18.0.1}, networks: []}', noLookup).underlay.address, '198.18.0.1');
  assert.match(errorsOf('{"a":1}', { ...noLookup, format: 'json' })[0].message, /^a: unknown key/);
});

test('YAML hazards: duplicate keys, syntax errors, alias bombs, wrong top level, size', () => {
  assert.match(errorsOf('underlay: {address: 198.18.0.1}\nunderlay: {}\nnetworks: []\n')[0].message, /unique.*line 2/);
  assert.match(errorsOf('networks: [\n')[0].message, /invalid YAML/);
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]'];
  for (let i = 0; i < 8; i++) bomb.push(`${'b'.repeat(i + 1)}: &${'b'.repeat(i + 1)} [${Array(9).fill(i === 0 ? '*a' : `*${'b'.repeat(i)}`).join(', ')}]`);
  assert.match(errorsOf(bomb.join('\n'))[0].message, /alias/i);
  assert.match(errorsOf('- 1\n- 2\n')[0].message, /expected a mapping at the top level .*got a list/);
  assert.match(errorsOf('')[0].message, /expected a mapping at the top level/);
  assert.match(errorsOf('#' + 'x'.repeat(1 << 20))[0].message, /larger than/);
  // A few aliases are fine.
  const ok = parseConfig('underlay: {address: 198.18.0.1}\nnetworks:\n  - &n {name: a, vni: 1, bridge: br0}\npeers: &p [198.18.0.2]\n', noLookup);
  assert.equal(ok.networks.length, 1);
});

test('loadConfigFile: format by extension, source made absolute, unreadable file is a ConfigError', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxcfg-'));
  try {
    const y = path.join(dir, 'a.yaml');
    fs.writeFileSync(y, ISSUE_EXAMPLE);
    const c = loadConfigFile(y, noLookup);
    assert.equal(c.source, y);
    const j = path.join(dir, 'a.json');
    fs.writeFileSync(j, JSON.stringify({ underlay: { address: '198.18.0.1' }, networks: [] }));
    assert.equal(loadConfigFile(j, noLookup).source, j);
    // .json that is not JSON is reported as such
    fs.writeFileSync(j, 'underlay: {address: 198.18.0.1}\nnetworks: []\n');
    assert.throws(() => loadConfigFile(j, noLookup), /invalid JSON/);
    // Relative key files are relative to the config file's directory.
    const k = path.join(dir, 'k.yaml');
    fs.writeFileSync(k, 'node: {name: a, keyFile: keys/host.key}\nunderlay: {address: 198.18.0.1}\nnetworks: []\ngossip: {keyFile: /etc/vxmesh/cluster.key}\n');
    const ck = loadConfigFile(k, noLookup);
    assert.equal(ck.node.keyFile, path.join(dir, 'keys', 'host.key'));
    assert.equal(ck.gossip?.keyFile, '/etc/vxmesh/cluster.key');
    assert.throws(() => loadConfigFile(path.join(dir, 'missing.yaml')), (e: unknown) => e instanceof ConfigError && /ENOENT/.test(e.message));
    assert.throws(() => loadConfigFile(dir), (e: unknown) => e instanceof ConfigError && /not a regular file/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('diffConfig: networks added/removed/changed, peers, log level; live-unchangeable fields refused', () => {
  const a = parseConfig(base('peers: [198.18.0.2]\n', '  - {name: blue, vni: 42, bridge: br0}\n  - {name: red, vni: 43, bridge: br1}\n'), noLookup);
  const b = parseConfig(base('peers: [198.18.0.3]\nlog: {level: debug}\n', '  - {name: blue, vni: 42, bridge: br0}\n  - {name: red, vni: 43, bridge: br1, mtu: 1400}\n  - {name: green, vni: 44, bridge: br2}\n'), noLookup);
  const d = diffConfig(a, b);
  assert.deepEqual(d.added.map((n) => n.name), ['green']);
  assert.deepEqual(d.removed, []);
  assert.deepEqual(d.changed.map((c) => c.after.name), ['red']);
  assert.deepEqual(d.unchanged.map((n) => n.name), ['blue']);
  assert.equal(d.peersChanged, true);
  assert.equal(d.logLevelChanged, true);
  assert.deepEqual(d.refused, []);
  assert.deepEqual(diffConfig(b, a).removed.map((n) => n.name), ['green']);
  const moved = parseConfig(base().replace('198.18.0.1', '198.18.0.9'), noLookup);
  const r = diffConfig(parseConfig(base(), noLookup), moved).refused;
  assert.equal(r.length, 1);
  assert.match(r[0], /^underlay changed .*restart/);
  const same = diffConfig(a, a);
  assert.equal(same.peersChanged || same.logLevelChanged || same.added.length > 0 || same.changed.length > 0, false);
});

test('the example configs shipped in deploy/ validate', () => {
  const dir = path.resolve(__dirname, '..', '..', '..', 'deploy');
  const examples = fs.readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f) && /example/.test(f));
  assert.ok(examples.length > 0, 'at least one example config');
  for (const f of examples) {
    const c = loadConfigFile(path.join(dir, f), noLookup);
    assert.ok(c.networks.length > 0, f);
  }
});

test('peers with a public key ({address, publicKey}): pinned keys for encrypted networks without gossip', () => {
  const K1 = 'q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=';
  const K2 = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
  const c = parseConfig(base(`peers:\n  - {address: 198.18.0.2, publicKey: "${K1}"}\n  - "198.18.0.3:8472"\n  - {address: "198.18.0.4:4790", publicKey: "${K2}"}\n  - {address: 198.18.0.5}\n`), noLookup);
  assert.deepEqual(c.peers.map((e) => `${e.address}:${e.port}`), ['198.18.0.2:4789', '198.18.0.3:8472', '198.18.0.4:4790', '198.18.0.5:4789']);
  assert.deepEqual(c.peerKeys, [
    { endpoint: { address: '198.18.0.2', port: 4789, family: 4 }, publicKey: K1 },
    { endpoint: { address: '198.18.0.4', port: 4790, family: 4 }, publicKey: K2 },
  ]);
  expectError(base('peers: [{address: 198.18.0.2, publicKey: "short"}]\n'), 'peers[0].publicKey', /32 bytes in base64 \(44 characters/);
  expectError(base('peers: [{address: 198.18.0.2, publicKey: 42}]\n'), 'peers[0].publicKey', /got 42/);
  expectError(base('peers: [{publicKey: "' + K1 + '"}]\n'), 'peers[0].address', /missing/);
  expectError(base('peers: [{address: 198.18.0.2, key: "' + K1 + '"}]\n'), 'peers[0].key', /unknown key/);
  expectError(base('peers: [{address: "2001:2::2", publicKey: "' + K1 + '"}]\n'), 'peers[0].address', /same family as the underlay/);
  expectError(base(`peers:\n  - {address: 198.18.0.2, publicKey: "${K1}"}\n  - {address: 198.18.0.3, publicKey: "${K1}"}\n`), 'peers[1].publicKey', /same public key as another peer/);
});

test('config: networks[].defaultPolicy and policyMode (policy), applied in place on reload', () => {
  const base = (extra: string) => parseConfig(`underlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0${extra}}\n`, { hostname: 'h' });
  const c = base(', defaultPolicy: deny, policyMode: audit');
  assert.equal(c.networks[0].defaultPolicy, 'deny');
  assert.equal(c.networks[0].policyMode, 'audit');
  assert.throws(() => base(', defaultPolicy: block'), /networks\[0\]\.defaultPolicy: expected one of allow, deny, got "block"/);
  assert.throws(() => base(', policyMod: audit'), /did you mean "policyMode"/);
  const d = diffConfig(base(''), c);
  assert.deepEqual(d.changed, [], 'not a set-up change: the network is not re-created');
});
