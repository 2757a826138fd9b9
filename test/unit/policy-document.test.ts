/**
 * Policy documents: the issue's example parses to the typed policy; every class of mistake names
 * its field path and line (with did-you-mean); Kubernetes' validation rules (endPort needs a
 * numeric port, except inside its cidr, one peer kind per peer); defaults of policyTypes.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parsePolicy, PolicyDocumentError } from '../../src/policy/document';

const EXAMPLE = `name: db-ingress
network: blue
endpoints: {app: db}
policyTypes: [Ingress]
ingress:
  - from:
      - endpoints: {role: web}
      - cidr: 198.18.0.0/24
        except: [198.18.0.5/32]
    ports:
      - {protocol: TCP, port: 5432}
      - {protocol: UDP, port: 5000, endPort: 5010}
egress: []
`;

function problems(text: string, networks?: string[]): string[] {
  try {
    parsePolicy(text, { networks });
  } catch (e) {
    assert.ok(e instanceof PolicyDocumentError, String(e));
    assert.equal((e as PolicyDocumentError).code, 'ERR_VXMESH_CONFIG');
    return [...(e as PolicyDocumentError).problems];
  }
  assert.fail('expected the document to be rejected');
}

test('policy document: the issue example', () => {
  const p = parsePolicy(EXAMPLE, { networks: ['blue'] });
  assert.equal(p.name, 'db-ingress');
  assert.equal(p.network, 'blue');
  assert.deepEqual(p.selector, { matchLabels: { app: 'db' }, matchExpressions: [] });
  assert.deepEqual(p.policyTypes, ['Ingress']);
  assert.equal(p.ingress.length, 1);
  const r = p.ingress[0];
  assert.equal(r.peers!.length, 2);
  assert.equal(r.peers![0].kind, 'endpoints');
  const c = r.peers![1];
  assert.ok(c.kind === 'cidr');
  assert.equal(c.cidr.text, '198.18.0.0/24');
  assert.deepEqual(c.except.map((x) => x.text), ['198.18.0.5/32']);
  assert.deepEqual(r.ports, [{ protocol: 'TCP', port: 5432, endPort: null }, { protocol: 'UDP', port: 5000, endPort: 5010 }]);
  assert.deepEqual(p.egress, []);
});

test('policy document: JSON, structured selectors, defaults', () => {
  const p = parsePolicy(JSON.stringify({
    name: 'x', network: 'blue',
    endpoints: { matchLabels: { team: 'a' }, matchExpressions: [{ key: 'role', operator: 'In', values: ['web', 'api'] }, { key: 'tmp', operator: 'DoesNotExist' }] },
    egress: [{ to: [], ports: [] }],
  }));
  assert.deepEqual(p.policyTypes, ['Ingress', 'Egress'], 'Egress is implied by an egress section');
  assert.equal(p.selector.matchExpressions.length, 2);
  assert.deepEqual(p.egress, [{ peers: null, ports: null }], '[] peers and [] ports mean "all"');
  const q = parsePolicy('name: y\nnetwork: blue\nendpoints: {}\n');
  assert.deepEqual(q.policyTypes, ['Ingress']);
  assert.deepEqual(q.ingress, [], 'no rules: the selected endpoints are isolated for ingress');
});

test('policy document: errors name the field and line, with did-you-mean', () => {
  const e = problems(`name: db
network: bleu
endpoints: {app: db}
ingres: []
`, ['blue', 'red']);
  assert.ok(e.some((m) => m.startsWith('network: unknown network "bleu" (did you mean "blue"?)') && m.endsWith('(line 2)')), e.join('\n'));
  assert.ok(e.some((m) => m.startsWith('ingres: unknown key (did you mean "ingress"?)') && m.endsWith('(line 4)')), e.join('\n'));
});

test('policy document: a bridge or macvlan network (not carried by vxmesh) is refused with the reason', () => {
  for (const mode of ['macvlan', 'bridge']) {
    let msg = '';
    try {
      parsePolicy('name: p\nnetwork: lan\nendpoints: {}\n', { networks: ['blue'], localNetworks: [{ name: 'lan', mode }] });
    } catch (e) {
      msg = [...(e as PolicyDocumentError).problems].join('\n');
    }
    assert.match(msg, new RegExp(`^network: network "lan" is a ${mode} network: its frames never pass vxmesh's data path \\(no overlay\\), so vxmesh cannot enforce policies on it; policies apply to overlay networks \\(blue\\) \\(line 2\\)`), msg);
  }
});

test('policy document: Kubernetes validation rules', () => {
  const base = 'name: p\nnetwork: blue\nendpoints: {}\n';
  const cases: [string, RegExp][] = [
    ['ingress:\n  - ports: [{protocol: TCP, endPort: 90}]\n', /ingress\[0\]\.ports\[0\]\.endPort: `endPort` needs a numeric `port`/],
    ['ingress:\n  - ports: [{protocol: TCP, port: 90, endPort: 80}]\n', /endPort: expected endPort ≥ port \(90\), got 80/],
    ['ingress:\n  - ports: [{protocol: TCP, port: http}]\n', /named ports are not supported/],
    ['ingress:\n  - ports: [{protocol: tcp, port: 80}]\n', /protocol: expected one of TCP, UDP, SCTP \(did you mean "TCP"\?\)/],
    ['ingress:\n  - from: [{cidr: 198.18.0.0/24, except: [198.19.0.0/24]}]\n', /except\[0\]: 198\.19\.0\.0\/24 is not inside 198\.18\.0\.0\/24/],
    ['ingress:\n  - from: [{cidr: 198.18.0.1/24}]\n', /has host bits set \(did you mean 198\.18\.0\.0\/24\?\)/],
    ['ingress:\n  - from: [{cidr: 198.18.0.0/24, endpoints: {}}]\n', /either `endpoints` or `cidr`, not both/],
    ['ingress:\n  - from: [{endpoints: {app: 5}}]\n', /quote numbers/],
    ['ingress:\n  - from: [{endpoints: {matchExpressions: [{key: a, operator: In}]}}]\n', /In needs at least one value/],
    ['ingress:\n  - from: [{endpoints: {matchExpressions: [{key: a, operator: exists}]}}]\n', /did you mean "Exists"/],
    ['policyTypes: [Ingres]\n', /policyTypes\[0\]: expected Ingress or Egress \(did you mean "Ingress"\?\)/],
    ['ingress:\n  - from: [{cidr: 2001:2::/48, except: [2001:2:0:1::/64]}]\n  - frm: []\n', /ingress\[1\]\.frm: unknown key \(did you mean "from"\?\)/],
  ];
  for (const [tail, re] of cases) {
    const e = problems(base + tail);
    assert.ok(e.some((m) => re.test(m)), `${tail}: ${e.join(' | ')}`);
  }
  assert.ok(problems('name: Bad_Name\nnetwork: blue\nendpoints: {}\n').some((m) => m.startsWith('name:')));
  assert.ok(problems('network: blue\n').some((m) => m.startsWith('name:')) && problems('name: a\nnetwork: b\n').some((m) => m.startsWith('endpoints: required')));
  assert.ok(problems('[1, 2]').some((m) => /expected a policy document/.test(m)));
  assert.throws(() => parsePolicy('name: a\nname: b\n'), /keys must be unique/i);
});
