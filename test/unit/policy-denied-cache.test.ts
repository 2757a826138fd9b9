/**
 * The enforcer's denied-flow cache: a denied new flow is walked once per policy version; its later
 * packets are answered by one lookup (counted as `deniedCached`, still counted and recorded as
 * denials); a policy change (a new version: the generation) invalidates every entry; the cache is
 * bounded and counts its evictions; a cached denial of A → B says nothing about B → A.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ipBytes } from '../../src/ipam/cidr';
import { CompiledPolicy } from '../../src/policy/compile';
import { parsePolicy } from '../../src/policy/document';
import { PC_DENIED_CACHED, PC_DENIED_INGRESS, PolicyEnforcer } from '../../src/policy/enforcer';
import type { PolicyEndpoint } from '../../src/policy/semantics';
import { FakeClock } from '../../src/clock';
import { frame4, tcp } from '../helpers/frames';

const EPS: PolicyEndpoint[] = [
  { name: 'web', labels: { role: 'web' }, ips: [ipBytes('198.19.0.1')!], host: 'h1', hostAddr: 'h1' },
  { name: 'db', labels: { role: 'db' }, ips: [ipBytes('198.19.0.2')!], host: 'h2', hostAddr: 'h2' },
  { name: 'other', labels: { role: 'other' }, ips: [ipBytes('198.19.0.3')!], host: 'h2', hostAddr: 'h2' },
];
const DB_INGRESS = parsePolicy('name: db\nnetwork: blue\nendpoints: {role: db}\ningress:\n  - from: [{endpoints: {role: web}}]\n    ports: [{protocol: TCP, port: 5432}]\n');
const DB_ANY = parsePolicy('name: db\nnetwork: blue\nendpoints: {role: db}\ningress:\n  - from: [{endpoints: {}}]\n');

/** An enforcer whose compiled policy counts its rule walks. */
function setup(entries?: number) {
  const clock = new FakeClock();
  const en = new PolicyEnforcer({ clock, seed: 1, deniedCacheEntries: entries });
  let walks = 0;
  const compile = (policies = [DB_INGRESS], version = 1) => {
    const cp = new CompiledPolicy({ policies, defaultDeny: false }, EPS, { version, seed: 1 });
    const check = cp.check.bind(cp);
    cp.check = (...a: Parameters<CompiledPolicy['check']>) => {
      walks++;
      return check(...a);
    };
    en.setCompiled(cp);
  };
  compile();
  return { en, compile, walks: () => walks };
}

test('denied cache: a denied flow is walked once, then answered by a lookup', () => {
  const { en, walks } = setup();
  const f = frame4('198.19.0.3', '198.19.0.2', 6, tcp(40000, 5432));
  for (let i = 0; i < 100; i++) assert.equal(en.filter(f, 0, f.length, 'h2'), false);
  assert.equal(walks(), 1, 'one rule walk for 100 denied packets');
  assert.equal(en.counters[PC_DENIED_CACHED], 99);
  assert.equal(en.counters[PC_DENIED_INGRESS], 100, 'every denied packet is still counted');
  const last = en.denials().at(-1)!;
  assert.equal(last.reason, 'ingress');
  assert.equal(last.srcEndpoint, 'other');
});

test('denied cache: a policy change invalidates it (generation), the flow then passes', () => {
  const { en, compile, walks } = setup();
  const f = frame4('198.19.0.3', '198.19.0.2', 6, tcp(40000, 5432));
  assert.equal(en.filter(f, 0, f.length, 'h2'), false);
  assert.equal(en.filter(f, 0, f.length, 'h2'), false);
  compile([DB_ANY], 2);
  assert.equal(en.filter(f, 0, f.length, 'h2'), true, 'allowed under the new version');
  assert.equal(walks(), 2);
  // and back: denied again, walked once more under version 3
  compile([DB_INGRESS], 3);
  const g = frame4('198.19.0.3', '198.19.0.2', 6, tcp(40001, 5432));
  assert.equal(en.filter(g, 0, g.length, 'h2'), false);
  assert.equal(en.filter(g, 0, g.length, 'h2'), false);
  assert.equal(walks(), 3, "the second packet of the new denied flow is cached");
});

test('denied cache: a cached denial of A → B does not decide B → A', () => {
  const { en } = setup();
  const ab = frame4('198.19.0.3', '198.19.0.2', 6, tcp(40000, 5432));
  assert.equal(en.filter(ab, 0, ab.length, 'h2'), false);
  // db → other from the same ports: db's egress and other's ingress are not isolated
  const ba = frame4('198.19.0.2', '198.19.0.3', 6, tcp(5432, 40000));
  assert.equal(en.filter(ba, 0, ba.length, 'h2'), true);
  assert.equal(en.counters[PC_DENIED_CACHED], 0);
});

test('denied cache: bounded, evictions counted', () => {
  const { en } = setup(64);
  const cap = en.deniedCache.capacity;
  assert.equal(cap, 64);
  const f = frame4('198.19.0.3', '198.19.0.2', 6, tcp(0, 5432));
  for (let p = 1; p <= 2000; p++) {
    f[34] = p >> 8;
    f[35] = p & 255;
    assert.equal(en.filter(f, 0, f.length, 'h2'), false);
  }
  const st = en.deniedCache.stats;
  assert.ok(st.entries <= cap, `entries ${st.entries} ≤ ${cap}`);
  assert.ok(st.evictions >= 2000 - cap, `evictions ${st.evictions}`);
  assert.equal(st.inserts, 2000);
});

test('denied cache: not used in audit mode (audit tracks the flow in conntrack)', () => {
  const clock = new FakeClock();
  const en = new PolicyEnforcer({ clock, seed: 1, audit: true });
  en.setCompiled(new CompiledPolicy({ policies: [DB_INGRESS], defaultDeny: false }, EPS, { version: 1, seed: 1 }));
  const f = frame4('198.19.0.3', '198.19.0.2', 6, tcp(40000, 5432));
  assert.equal(en.filter(f, 0, f.length, 'h2'), true);
  assert.equal(en.deniedCache.stats.inserts, 0);
});
