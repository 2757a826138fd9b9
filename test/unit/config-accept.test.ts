/**
 * `networks[].acceptFrom` and `underlay.maxLearnedPeers` (issue 18): defaults, accepted forms
 * (known, any, CIDR lists of the underlay's family), every error naming its field with a hint,
 * and the reload diff (acceptFrom applies live without touching the network; maxLearnedPeers
 * needs a restart).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { diffConfig } from '../../src/config/diff';
import { ConfigErrorList, DEFAULT_MAX_LEARNED_PEERS, parseConfig } from '../../src/config/load';
import { ConfigError } from '../../src/errors';

const noLookup = { mtuLookup: () => null, hostname: 'h' };
const text = (net = '{name: blue, vni: 42, bridge: br0}', underlay = 'address: 198.18.0.1') =>
  `node: a\nunderlay: {${underlay}}\nnetworks:\n  - ${net}\n`;

function errors(t: string): ConfigError[] {
  try {
    parseConfig(t, noLookup);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e instanceof ConfigErrorList ? e.errors : [e];
  }
  assert.fail(`accepted:\n${t}`);
}
function oneError(t: string, field: string, re: RegExp): void {
  const errs = errors(t);
  assert.equal(errs.length, 1, errs.map((e) => e.message).join('\n'));
  assert.equal(errs[0].path, field);
  assert.match(errs[0].message, re);
}

test('acceptFrom defaults to known; known, any and CIDR lists (canonicalised) are accepted', () => {
  assert.equal(parseConfig(text(), noLookup).networks[0].acceptFrom, 'known');
  assert.equal(parseConfig(text('{name: blue, vni: 42, bridge: br0, acceptFrom: known}'), noLookup).networks[0].acceptFrom, 'known');
  assert.equal(parseConfig(text('{name: blue, vni: 42, bridge: br0, acceptFrom: any}'), noLookup).networks[0].acceptFrom, 'any');
  assert.deepEqual(
    parseConfig(text('{name: blue, vni: 42, bridge: br0, acceptFrom: [198.18.0.0/15, 203.0.113.9]}'), noLookup).networks[0].acceptFrom,
    ['198.18.0.0/15', '203.0.113.9/32'],
  );
  assert.deepEqual(
    parseConfig(text('{name: blue, vni: 42, bridge: br0, acceptFrom: ["2001:0002::/48"]}', 'address: "2001:2::1"'), noLookup).networks[0].acceptFrom,
    ['2001:2::/48'],
  );
  assert.deepEqual(parseConfig(text('{name: blue, vni: 42, bridge: br0, acceptFrom: []}'), noLookup).networks[0].acceptFrom, []);
});

test('acceptFrom errors name the field, with a hint', () => {
  const net = (v: string) => text(`{name: blue, vni: 42, bridge: br0, acceptFrom: ${v}}`);
  oneError(net('knwon'), 'networks[0].acceptFrom', /expected "known".*did you mean "known"\?/);
  oneError(net('all'), 'networks[0].acceptFrom', /expected "known" .*"any", or a list of CIDRs/);
  oneError(net('198.18.0.0/15'), 'networks[0].acceptFrom', /a list, e\.g\. \[198\.18\.0\.0\/15\]\?/);
  oneError(net('[198.18.0.1/15]'), 'networks[0].acceptFrom[0]', /bits set after the prefix length \(did you mean "198\.18\.0\.0\/15"\?\)/);
  oneError(net('[198.18.0.0/33]'), 'networks[0].acceptFrom[0]', /prefix length 0\.\.32/);
  oneError(net('[banana]'), 'networks[0].acceptFrom[0]', /expected a CIDR/);
  oneError(net('[42]'), 'networks[0].acceptFrom[0]', /expected a CIDR \(address\/length\), got 42/);
  oneError(net('["2001:2::/48"]'), 'networks[0].acceptFrom[0]', /is IPv6 but the underlay is IPv4: it would never match/);
  oneError(net('[198.18.0.0/15, 198.18.0.0/15]'), 'networks[0].acceptFrom[1]', /listed twice/);
  oneError(net('{any: true}'), 'networks[0].acceptFrom', /expected a list of CIDRs/);
  oneError(text('{name: blue, vni: 42, bridge: br0, encrypted: true, acceptFrom: any}'), 'networks[0].acceptFrom', /only for plaintext networks/);
  oneError(text('{name: blue, vni: 42, bridge: br0, acceptfrom: any}'), 'networks[0].acceptfrom', /unknown key \(did you mean "acceptFrom"\?\)/);
  const many = `[${Array.from({ length: 257 }, (_, i) => `198.18.${i >> 8}.${i & 255}`).join(', ')}]`;
  oneError(net(many), 'networks[0].acceptFrom', /at most 256 CIDRs/);
});

test('underlay.maxLearnedPeers: default, range, restart-only', () => {
  assert.equal(parseConfig(text(), noLookup).underlay.maxLearnedPeers, DEFAULT_MAX_LEARNED_PEERS);
  assert.equal(DEFAULT_MAX_LEARNED_PEERS, 1024);
  assert.equal(parseConfig(text(undefined, 'address: 198.18.0.1, maxLearnedPeers: 16'), noLookup).underlay.maxLearnedPeers, 16);
  oneError(text(undefined, 'address: 198.18.0.1, maxLearnedPeers: 0'), 'underlay.maxLearnedPeers', /1\.\.65536 \(peers\)/);
  oneError(text(undefined, 'address: 198.18.0.1, maxPeers: 10'), 'underlay.maxPeers', /unknown key/);
  const d = diffConfig(parseConfig(text(), noLookup), parseConfig(text(undefined, 'address: 198.18.0.1, maxLearnedPeers: 16'), noLookup));
  assert.ok(d.refused.some((r) => r.startsWith('underlay changed')), JSON.stringify(d.refused));
});

test('reload: an acceptFrom change is applied in place (network not torn down)', () => {
  const a = parseConfig(text(), noLookup);
  const b = parseConfig(text('{name: blue, vni: 42, bridge: br0, acceptFrom: [198.18.0.0/15]}'), noLookup);
  const d = diffConfig(a, b);
  assert.deepEqual(d.refused, []);
  assert.deepEqual(d.changed, []);
  assert.deepEqual(d.unchanged.map((n) => n.name), ['blue']);
  assert.deepEqual(d.acceptFromChanged.map((n) => n.acceptFrom), [['198.18.0.0/15']]);
  assert.deepEqual(diffConfig(b, b).acceptFromChanged, []);
  // back to the default (absent = known)
  assert.deepEqual(diffConfig(b, a).acceptFromChanged.map((n) => n.acceptFrom), ['known']);
  const hand = { ...a, networks: a.networks.map((n) => ({ ...n, acceptFrom: undefined })) };
  assert.deepEqual(diffConfig(hand, a).acceptFromChanged, []);
  // another change as well: the network is set up again (with its new acceptFrom)
  const c = parseConfig(text('{name: blue, vni: 42, bridge: br1, acceptFrom: any}'), noLookup);
  const dc = diffConfig(a, c);
  assert.equal(dc.changed.length, 1);
  assert.deepEqual(dc.acceptFromChanged, []);
});

test('check-config summary names what a network accepts beyond its known hosts (nothing for the default)', async () => {
  const { summarize } = await import('../../src/cli/commands/check-config');
  const c = parseConfig(`node: a\nunderlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0, acceptFrom: [198.18.4.0/24]}\n  - {name: red, vni: 43, bridge: br1, acceptFrom: any}\n  - {name: green, vni: 44, bridge: br2}\n`, noLookup);
  const lines = summarize(c, false).split('\n');
  assert.match(lines.find((l) => l.includes('blue'))!, / accepts 198\.18\.4\.0\/24$/);
  assert.match(lines.find((l) => l.includes('red'))!, / accepts any sender$/);
  assert.doesNotMatch(lines.find((l) => l.includes('green'))!, /accepts/);
});
