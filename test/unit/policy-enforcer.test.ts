/**
 * The enforcer on real frame bytes: a new flow is checked, its later packets and replies pass by
 * conntrack; a policy change revokes a live connection; audit mode counts without dropping;
 * remote frames whose source is not an endpoint of the sending host are spoofed; ARP/ND pass;
 * ICMP errors quoting a tracked flow pass; IPv6 with extension headers; the denial ring.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ipBytes } from '../../src/ipam/cidr';
import { CompiledPolicy } from '../../src/policy/compile';
import { parsePolicy } from '../../src/policy/document';
import {
  PC_ALLOWED_NEW, PC_ALLOWED_TRACKED, PC_AUDIT_INGRESS, PC_DENIED_EGRESS, PC_DENIED_INGRESS, PC_NON_IP, PC_RELATED, PC_REVOKED,
  PC_SPOOFED, PolicyEnforcer,
} from '../../src/policy/enforcer';
import type { PolicyEndpoint } from '../../src/policy/semantics';
import { FakeClock } from '../../src/clock';
import { eth, frame4, icmpEcho, ipv4, tcp, udp } from '../helpers/frames';

const EPS: PolicyEndpoint[] = [
  { name: 'web', labels: { role: 'web' }, ips: [ipBytes('198.19.0.1')!, ipBytes('2001:2::1')!], host: 'h1', hostAddr: 'h1' },
  { name: 'db', labels: { role: 'db' }, ips: [ipBytes('198.19.0.2')!, ipBytes('2001:2::2')!], host: 'h2', hostAddr: 'h2' },
  { name: 'other', labels: { role: 'other' }, ips: [ipBytes('198.19.0.3')!], host: 'h2', hostAddr: 'h2' },
];
const DB_INGRESS = parsePolicy('name: db\nnetwork: blue\nendpoints: {role: db}\ningress:\n  - from: [{endpoints: {role: web}}]\n    ports: [{protocol: TCP, port: 5432}]\n');

function setup(policies = [DB_INGRESS], defaultDeny = false, audit = false) {
  const clock = new FakeClock();
  const en = new PolicyEnforcer({ clock, audit, seed: 1 });
  en.setCompiled(new CompiledPolicy({ policies, defaultDeny }, EPS, { version: 1, seed: 1 }));
  return { clock, en };
}

test('enforcer: new flow checked, later packets and replies by conntrack', () => {
  const { en } = setup();
  const syn = frame4('198.19.0.1', '198.19.0.2', 6, tcp(40000, 5432));
  assert.equal(en.filter(syn, 0, syn.length, 'h1'), true);
  assert.equal(en.counters[PC_ALLOWED_NEW], 1);
  const reply = frame4('198.19.0.2', '198.19.0.1', 6, tcp(5432, 40000));
  assert.equal(en.filter(reply, 0, reply.length, null), true, 'the reply of an allowed connection passes');
  assert.equal(en.filter(syn, 0, syn.length, 'h1'), true);
  assert.equal(en.counters[PC_ALLOWED_TRACKED], 2);
  const bad = frame4('198.19.0.3', '198.19.0.2', 6, tcp(40000, 5432));
  assert.equal(en.filter(bad, 0, bad.length, null), false, 'other → db is not allowed');
  const badPort = frame4('198.19.0.1', '198.19.0.2', 6, tcp(40000, 5433));
  assert.equal(en.filter(badPort, 0, badPort.length, 'h1'), false);
  assert.equal(en.counters[PC_DENIED_INGRESS], 2);
  // db initiating towards web: db's egress is not isolated, web's ingress neither.
  const out = frame4('198.19.0.2', '198.19.0.1', 17, udp(1, 2));
  assert.equal(en.filter(out, 0, out.length, null), true);
  const d = en.denials();
  assert.equal(d.length, 2);
  assert.deepEqual({ ...d[0], time: 0 }, { time: 0, reason: 'ingress', audit: false, src: '198.19.0.3', dst: '198.19.0.2', srcEndpoint: 'other', dstEndpoint: 'db', protocol: 6, port: 5432, fromHost: null });
});

test('enforcer: a policy change stops a connection it no longer allows', () => {
  const { en } = setup();
  const syn = frame4('198.19.0.1', '198.19.0.2', 6, tcp(40000, 5432));
  assert.equal(en.filter(syn, 0, syn.length, 'h1'), true);
  const other = parsePolicy('name: db\nnetwork: blue\nendpoints: {role: db}\ningress:\n  - ports: [{protocol: TCP, port: 1}]\n');
  en.setCompiled(new CompiledPolicy({ policies: [other], defaultDeny: false }, EPS, { version: 2, seed: 1 }));
  const reply = frame4('198.19.0.2', '198.19.0.1', 6, tcp(5432, 40000));
  assert.equal(en.filter(reply, 0, reply.length, null), false, 'the live connection is re-checked and revoked');
  assert.equal(en.counters[PC_REVOKED], 1);
  assert.equal(en.filter(syn, 0, syn.length, 'h1'), false, 'and stays stopped');
  // A change that still allows it keeps it.
  en.setCompiled(new CompiledPolicy({ policies: [DB_INGRESS], defaultDeny: false }, EPS, { version: 3, seed: 1 }));
  assert.equal(en.filter(syn, 0, syn.length, 'h1'), true);
  en.setCompiled(new CompiledPolicy({ policies: [DB_INGRESS], defaultDeny: false }, EPS, { version: 4, seed: 1 }));
  assert.equal(en.filter(reply, 0, reply.length, null), true);
  assert.equal(en.counters[PC_REVOKED], 1);
});

test('enforcer: audit mode counts would-deny once per flow and drops nothing', () => {
  const { en } = setup([DB_INGRESS], false, true);
  const bad = frame4('198.19.0.3', '198.19.0.2', 6, tcp(40000, 5432));
  for (let i = 0; i < 5; i++) assert.equal(en.filter(bad, 0, bad.length, null), true);
  assert.equal(en.counters[PC_AUDIT_INGRESS], 1);
  assert.equal(en.counters[PC_DENIED_INGRESS], 0);
  assert.equal(en.denials()[0].audit, true);
});

test('enforcer: remote sources must be endpoints of the sending host (spoofed otherwise)', () => {
  const { en } = setup([], true);
  const f = frame4('198.19.0.1', '198.19.0.2', 6, tcp(1, 2));
  assert.equal(en.filter(f, 0, f.length, 'h2'), false, 'web lives on h1, not h2');
  const g = frame4('198.19.0.77', '198.19.0.2', 6, tcp(1, 2));
  assert.equal(en.filter(g, 0, g.length, 'h1'), false, 'not an endpoint at all');
  assert.equal(en.counters[PC_SPOOFED], 2);
  assert.equal(en.denials()[1].reason, 'spoofed');
  // Spoofing is checked even on a network with no isolated endpoint.
  const open = setup([], false).en;
  assert.equal(open.filter(f, 0, f.length, 'h2'), false);
  assert.equal(open.filter(f, 0, f.length, 'h1'), true);
});

test('enforcer: ARP and ND always pass; other non-IP only while nothing is isolated; ICMP errors of tracked flows pass', () => {
  const { en } = setup([], true);
  const arp = eth(0x0806, new Array(28).fill(0));
  assert.equal(en.filter(arp, 0, arp.length, null), true);
  const ns = eth(0x86dd, [0x60, 0, 0, 0, 0, 32, 58, 255, ...ipBytes('2001:2::1')!, ...ipBytes('ff02::1:ff00:2')!, 135, 0, 0, 0, ...new Array(28).fill(0)]);
  assert.equal(en.filter(ns, 0, ns.length, null), true, 'neighbour solicitation');
  const lldp = eth(0x88cc, new Array(20).fill(0));
  assert.equal(en.filter(lldp, 0, lldp.length, null), false);
  assert.equal(en.counters[PC_NON_IP], 1);
  assert.equal(setup([]).en.filter(lldp, 0, lldp.length, null), true, 'nothing isolated: not IP passes');

  // web → db allowed; a "fragmentation needed" from db's side quoting that flow passes.
  const { en: e2 } = setup();
  const syn = frame4('198.19.0.1', '198.19.0.2', 6, tcp(40000, 5432));
  assert.ok(e2.filter(syn, 0, syn.length, 'h1'));
  const quoted = ipv4('198.19.0.1', '198.19.0.2', 6, tcp(40000, 5432).slice(0, 8));
  const err = frame4('198.19.0.2', '198.19.0.1', 1, [3, 4, 0, 0, 0, 0, 0x05, 0x8c, ...quoted]);
  assert.equal(e2.filter(err, 0, err.length, null), true);
  assert.equal(e2.counters[PC_RELATED], 1);
  const stray = frame4('198.19.0.3', '198.19.0.2', 1, [3, 4, 0, 0, 0, 0, 0x05, 0x8c, ...ipv4('198.19.0.2', '198.19.0.3', 17, udp(9, 9))]);
  assert.equal(e2.filter(stray, 0, stray.length, null), false, 'an error quoting an untracked flow is an ICMP flow to db: denied');
});

test('enforcer: IPv6 with extension headers, ICMP echo replies by conntrack, egress denial', () => {
  const egress = parsePolicy('name: web-out\nnetwork: blue\nendpoints: {role: web}\npolicyTypes: [Egress]\negress:\n  - to: [{endpoints: {role: db}}]\n');
  const { en } = setup([egress]);
  // IPv6 web → db, hop-by-hop + destination options before TCP.
  const l4 = tcp(1000, 80);
  const v6 = [0x60, 0, 0, 0, 0, 16 + l4.length, 0, 64, ...ipBytes('2001:2::1')!, ...ipBytes('2001:2::2')!,
    60, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0, ...l4];
  const f = eth(0x86dd, v6);
  assert.equal(en.filter(f, 0, f.length, null), true);
  const toOther = frame4('198.19.0.1', '198.19.0.3', 1, icmpEcho(8, 7));
  assert.equal(en.filter(toOther, 0, toOther.length, null), false);
  assert.equal(en.counters[PC_DENIED_EGRESS], 1);
  const ping = frame4('198.19.0.1', '198.19.0.2', 1, icmpEcho(8, 9));
  const pong = frame4('198.19.0.2', '198.19.0.1', 1, icmpEcho(0, 9));
  assert.ok(en.filter(ping, 0, ping.length, null));
  const before = en.counters[PC_ALLOWED_TRACKED];
  assert.ok(en.filter(pong, 0, pong.length, 'h2'), 'echo reply matches its request');
  assert.equal(en.counters[PC_ALLOWED_TRACKED], before + 1);
  // VLAN-tagged frame parses the same.
  const tagged = Buffer.concat([ping.subarray(0, 12), Buffer.from([0x81, 0, 0, 5]), ping.subarray(12)]);
  assert.ok(en.filter(tagged, 0, tagged.length, null));
});

test('enforcer: audit mode does not drop a live connection that a policy change no longer allows (counted as revoked)', () => {
  const clock = new FakeClock();
  const en = new PolicyEnforcer({ clock, audit: true, seed: 1 });
  en.setCompiled(new CompiledPolicy({ policies: [DB_INGRESS], defaultDeny: false }, EPS, { version: 1, seed: 1 }));
  const syn = frame4('198.19.0.1', '198.19.0.2', 6, tcp(40000, 5432));
  assert.equal(en.filter(syn, 0, syn.length, 'h1'), true);
  const nobody = parsePolicy('name: db\nnetwork: blue\nendpoints: {role: db}\ningress:\n  - from: [{endpoints: {role: nobody}}]\n');
  en.setCompiled(new CompiledPolicy({ policies: [nobody], defaultDeny: false }, EPS, { version: 2, seed: 1 }));
  assert.equal(en.filter(syn, 0, syn.length, 'h1'), true, 'audit: counted, not dropped');
  assert.equal(en.counters[PC_REVOKED], 1);
  assert.equal(en.denials().at(-1)!.audit, true);
});
