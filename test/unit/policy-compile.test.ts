/**
 * Policy semantics and the compiled tables: hand-written Kubernetes cases against `evaluate`,
 * then a seeded property test that the flat tables (`CompiledPolicy.check`) give the very same
 * verdict as the reference for random policies, endpoints and flows. VXMESH_SEED overrides the
 * seed; it is printed on failure.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { seededRng, randInt, type Rng } from '../../src/gossip/rng';
import { ipBytes } from '../../src/ipam/cidr';
import { CompiledPolicy, DENY_EGRESS, DENY_INGRESS } from '../../src/policy/compile';
import { parsePolicy, type Policy } from '../../src/policy/document';
import { evaluate, type Flow, type PolicyEndpoint } from '../../src/policy/semantics';

const SEED = Number(process.env.VXMESH_SEED ?? 20261201);

function ep(name: string, ip: string, labels: Record<string, string>): PolicyEndpoint {
  return { name, labels, ips: [ipBytes(ip)!] };
}
function pol(yaml: string): Policy {
  return parsePolicy(`network: blue\n${yaml}`);
}
const TCP = 6, UDP = 17, ICMP = 1;

const A = ep('a', '198.19.0.1', { role: 'web', team: 'x' });
const B = ep('b', '198.19.0.2', { role: 'db', team: 'x' });
const C = ep('c', '198.19.0.3', { role: 'db', team: 'y' });
const flow = (s: PolicyEndpoint | string, d: PolicyEndpoint | string, protocol: number, port: number): Flow => ({
  src: typeof s === 'string' ? { ip: ipBytes(s)!, endpoint: null } : { ip: s.ips[0], endpoint: s },
  dst: typeof d === 'string' ? { ip: ipBytes(d)!, endpoint: null } : { ip: d.ips[0], endpoint: d },
  protocol, port,
});

test('policy semantics: Kubernetes cases', () => {
  const none = { policies: [], defaultDeny: false };
  assert.ok(evaluate(none, flow(A, B, TCP, 80)).allowed, 'no policy: everything passes');
  const deny = { policies: [], defaultDeny: true };
  const v = evaluate(deny, flow(A, B, TCP, 80));
  assert.ok(!v.allowed && !v.egress.allowed && !v.ingress.allowed, 'defaultPolicy deny isolates both ends');
  assert.ok(evaluate(deny, flow('198.18.0.9', '198.18.0.10', TCP, 80)).allowed, 'non-endpoints have no policy');

  const dbIngress = pol('name: db\nendpoints: {role: db}\ningress:\n  - from: [{endpoints: {role: web}}]\n    ports: [{protocol: TCP, port: 5432}]\n');
  const np = { policies: [dbIngress], defaultDeny: false };
  assert.ok(evaluate(np, flow(A, B, TCP, 5432)).allowed);
  assert.ok(!evaluate(np, flow(A, B, TCP, 5433)).allowed, 'other port');
  assert.ok(!evaluate(np, flow(A, B, UDP, 5432)).allowed, 'other protocol');
  assert.ok(!evaluate(np, flow(A, B, ICMP, 0)).allowed, 'ICMP has no port: only a rule without ports allows it');
  assert.ok(!evaluate(np, flow(C, B, TCP, 5432)).allowed, 'source not selected by the peer');
  assert.ok(evaluate(np, flow(B, A, TCP, 80)).allowed, 'a is not selected: not isolated');
  assert.ok(evaluate(np, flow(B, C, TCP, 1)).allowed === false, 'c is db: isolated for ingress');

  // Union of policies; AND of selector terms; OR of peers.
  const also = pol('name: also\nendpoints: {role: db}\ningress:\n  - from: [{endpoints: {matchLabels: {team: y}, matchExpressions: [{key: role, operator: NotIn, values: [web]}]}}]\n');
  const np2 = { policies: [dbIngress, also], defaultDeny: false };
  assert.ok(evaluate(np2, flow(C, B, UDP, 9)).allowed, 'c (team y, not web) allowed by the second policy, any port');
  assert.ok(!evaluate(np2, flow(A, B, UDP, 9)).allowed, 'a: only TCP 5432');
  const v2 = evaluate(np2, flow(A, B, TCP, 5432));
  assert.deepEqual(v2.ingress.selectedBy, ['db', 'also']);
  assert.deepEqual(v2.ingress.allowedBy, [{ policy: 'db', rule: 0 }]);

  // Egress of the source AND ingress of the destination.
  const webEgress = pol('name: web-out\nendpoints: {role: web}\npolicyTypes: [Egress]\negress:\n  - ports: [{protocol: UDP, port: 53}]\n');
  const np3 = { policies: [webEgress, dbIngress], defaultDeny: false };
  assert.ok(!evaluate(np3, flow(A, B, TCP, 5432)).allowed, 'ingress allows but egress does not');
  assert.ok(evaluate(np3, flow(A, '198.18.0.53', UDP, 53)).allowed, 'egress UDP 53 to anything');
  assert.ok(!evaluate(np3, flow(A, '198.18.0.53', TCP, 53)).allowed);

  // CIDR with except; CIDR matches endpoint addresses too.
  const cidr = pol('name: cidr\nendpoints: {role: db}\ningress:\n  - from: [{cidr: 198.19.0.0/24, except: [198.19.0.1/32]}]\n');
  const np4 = { policies: [cidr], defaultDeny: false };
  assert.ok(!evaluate(np4, flow(A, B, TCP, 1)).allowed, '198.19.0.1 is excepted');
  assert.ok(evaluate(np4, flow(C, B, TCP, 1)).allowed);
  assert.ok(evaluate(np4, flow('198.19.0.200', B, TCP, 1)).allowed);
  assert.ok(!evaluate(np4, flow('198.18.0.1', B, TCP, 1)).allowed);

  // Port ranges; empty selector = all; empty rule = allow all.
  const range = pol('name: r\nendpoints: {}\ningress:\n  - ports: [{protocol: UDP, port: 5000, endPort: 5010}]\n');
  const np5 = { policies: [range], defaultDeny: false };
  assert.ok(evaluate(np5, flow(A, C, UDP, 5010)).allowed && !evaluate(np5, flow(A, C, UDP, 5011)).allowed && !evaluate(np5, flow(A, C, UDP, 4999)).allowed);
  const all = pol('name: all\nendpoints: {}\ningress:\n  - {}\n');
  assert.ok(evaluate({ policies: [all], defaultDeny: true }, flow('198.18.0.7', C, ICMP, 0)).allowed, 'allow-all ingress overrides default deny for ingress');
});

// ---- property test: compiled tables == reference -------------------------------------------------

const LABEL_KEYS = ['team', 'role', 'tier'];
const LABEL_VALUES = ['a', 'b', 'c'];

function randLabels(rng: Rng): Record<string, string> {
  const l: Record<string, string> = {};
  for (const k of LABEL_KEYS) if (rng() < 0.7) l[k] = LABEL_VALUES[randInt(rng, 3)];
  return l;
}
function randSelector(rng: Rng): unknown {
  if (rng() < 0.2) return {};
  if (rng() < 0.5) {
    const l: Record<string, string> = {};
    l[LABEL_KEYS[randInt(rng, 3)]] = LABEL_VALUES[randInt(rng, 3)];
    return l;
  }
  const ops = ['In', 'NotIn', 'Exists', 'DoesNotExist'];
  const op = ops[randInt(rng, 4)];
  const e: Record<string, unknown> = { key: LABEL_KEYS[randInt(rng, 3)], operator: op };
  if (op === 'In' || op === 'NotIn') e.values = [LABEL_VALUES[randInt(rng, 3)], LABEL_VALUES[randInt(rng, 3)]].filter((v, i, a) => a.indexOf(v) === i);
  return { matchExpressions: [e] };
}
function randRule(rng: Rng): unknown {
  const r: Record<string, unknown> = {};
  if (rng() < 0.8) {
    const peers: unknown[] = [];
    const n = 1 + randInt(rng, 3);
    for (let i = 0; i < n; i++) {
      if (rng() < 0.6) peers.push({ endpoints: randSelector(rng) });
      else if (rng() < 0.7) peers.push({ cidr: '198.19.0.0/24', except: rng() < 0.5 ? [`198.19.0.${randInt(rng, 8)}/32`] : [] });
      else peers.push({ cidr: '2001:2::/48', except: [] });
    }
    r.from = peers;
  }
  if (rng() < 0.7) {
    const ports: unknown[] = [];
    const n = 1 + randInt(rng, 3);
    for (let i = 0; i < n; i++) {
      const protocol = ['TCP', 'UDP', 'SCTP'][randInt(rng, 3)];
      const x = rng();
      if (x < 0.2) ports.push({ protocol });
      else if (x < 0.6) ports.push({ protocol, port: 80 + randInt(rng, 4) });
      else ports.push({ protocol, port: 80 + randInt(rng, 3), endPort: 82 + randInt(rng, 3) });
    }
    r.ports = ports;
  }
  return r;
}
function randPolicy(rng: Rng, i: number): Policy {
  const types = [['Ingress'], ['Egress'], ['Ingress', 'Egress']][randInt(rng, 3)];
  const doc: Record<string, unknown> = { name: `p${i}`, network: 'blue', endpoints: randSelector(rng), policyTypes: types };
  const rules = (n: number): unknown[] => Array.from({ length: n }, () => randRule(rng));
  if (types.includes('Ingress')) doc.ingress = rules(randInt(rng, 3));
  if (types.includes('Egress')) {
    doc.egress = (rules(randInt(rng, 3)) as Record<string, unknown>[]).map((r) => {
      const { from, ...rest } = r;
      return from ? { ...rest, to: from } : rest;
    });
  }
  return parsePolicy(JSON.stringify(doc));
}

test(`policy compile: flat tables give the reference verdict (seed ${SEED})`, () => {
  const rng = seededRng(SEED);
  let flows = 0, denied = 0;
  try {
    for (let round = 0; round < 200; round++) {
      const n = 1 + randInt(rng, 12);
      const endpoints = Array.from({ length: n }, (_, i) => ({
        name: `e${i}`, labels: randLabels(rng),
        ips: [ipBytes(`198.19.0.${i}`)!, ...(rng() < 0.3 ? [ipBytes(`2001:2::${i + 1}`)!] : [])],
      }));
      const policies = Array.from({ length: randInt(rng, 5) }, (_, i) => randPolicy(rng, i));
      const np = { policies, defaultDeny: rng() < 0.15 };
      const cp = new CompiledPolicy(np, endpoints, { version: round, seed: round });
      const outside = [ipBytes('198.18.0.1')!, ipBytes('2001:2::ff')!, ipBytes('198.19.0.250')!];
      for (let k = 0; k < 60; k++) {
        const si = randInt(rng, n + 1) - 1;
        const di = randInt(rng, n + 1) - 1;
        const sIp = si >= 0 ? endpoints[si].ips[randInt(rng, endpoints[si].ips.length)] : outside[randInt(rng, 3)];
        const dIp = di >= 0 ? endpoints[di].ips[randInt(rng, endpoints[di].ips.length)] : outside[randInt(rng, 3)];
        const protocol = [6, 17, 132, 1][randInt(rng, 4)];
        const port = protocol === 1 ? 0 : 79 + randInt(rng, 7);
        assert.equal(cp.endpointOf(sIp, 0), si, 'address → endpoint');
        const ref = evaluate(np, { src: { ip: sIp, endpoint: si >= 0 ? endpoints[si] : null }, dst: { ip: dIp, endpoint: di >= 0 ? endpoints[di] : null }, protocol, port });
        const got = cp.check(si, sIp, 0, di, dIp, 0, protocol, port);
        const want = (ref.egress.allowed ? 0 : DENY_EGRESS) | (ref.ingress.allowed ? 0 : DENY_INGRESS);
        assert.equal(got, want, `round ${round} flow ${k}: e${si} → e${di} proto ${protocol} port ${port}`);
        flows++;
        if (got) denied++;
      }
    }
  } catch (e) {
    console.error(`policy compile property test failed with VXMESH_SEED=${SEED}`);
    throw e;
  }
  assert.ok(denied > flows * 0.1 && denied < flows * 0.9, `a useful mix of verdicts (${denied}/${flows} denied)`);
});

test('policy compile: 1,000 rules compile into bounded tables; an unknown address is not an endpoint', () => {
  const endpoints = Array.from({ length: 200 }, (_, i) => ep(`e${i}`, `198.19.${i >> 8}.${i & 255}`, { n: String(i % 10) }));
  const rules = Array.from({ length: 1000 }, (_, i) => `  - from: [{endpoints: {n: "${i % 10}"}}]\n    ports: [{protocol: TCP, port: ${1000 + i}}]\n`).join('');
  const p = parsePolicy(`name: big\nnetwork: blue\nendpoints: {}\ningress:\n${rules}`);
  const cp = new CompiledPolicy({ policies: [p], defaultDeny: false }, endpoints, { version: 1 });
  assert.equal(cp.ruleCount, 1000);
  assert.equal(cp.endpointOf(ipBytes('198.18.0.1')!, 0), -1);
  const s = endpoints[3], d = endpoints[7];
  assert.equal(cp.check(3, s.ips[0], 0, 7, d.ips[0], 0, TCP, 1003), 0);
  assert.equal(cp.ruleName(cp.lastRule[1]), 'big/ingress[3]');
  assert.equal(cp.check(3, s.ips[0], 0, 7, d.ips[0], 0, TCP, 1004), DENY_INGRESS);
});
