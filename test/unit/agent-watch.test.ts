/**
 * Issue 19 items 2, 4, 5: the agent's control-plane watch on an injected clock — static peer
 * liveness (never answered → down with a warning; a packet → up; silence → down again), drop
 * summaries by reason (warn, rate-limited, local_dst left out, the senders of the window named),
 * and bridge ports whose MTU exceeds the network MTU (warned once, listed, cleared when fixed).
 */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FakeClock } from '../../src/clock';
import { createLogger, type Logger } from '../../src/log';
import { AgentWatch } from '../../src/agent/watch';
import { GlobalCounters, NetworkCounters, PeerCounters, rxDropIndex, txDropIndex } from '../../src/dataplane/counters';
import type { Datapath } from '../../src/dataplane/datapath';
import type { AgentSystem } from '../../src/agent/system';
import type { NetworkConfig } from '../../src/config/types';

function collect(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, logger: createLogger({ level: 'trace', format: 'json', destination: { write: (s: string) => { lines.push(JSON.parse(s)); } } }) };
}

const blue = { name: 'blue', vni: 42, bridge: 'br0', tap: 'vx-blue', mtu: 1450, encrypted: false } as NetworkConfig;

function setup(ports: { name: string; mtu: number }[] = []) {
  const clock = new FakeClock(1000);
  const { logger, lines } = collect();
  const peer = new PeerCounters();
  const net = new NetworkCounters();
  const global = new GlobalCounters();
  const dp = {
    peerList: () => [{ endpoint: { address: '198.18.0.2', port: 4789 }, label: '198.18.0.2:4789', static: true, counters: peer }],
    networks: () => [{ config: blue, counters: net }],
    counters: global,
  } as unknown as Datapath;
  const sys = { bridgePorts: (b: string) => (b === 'br0' ? ports : []) } as unknown as AgentSystem;
  const watch = new AgentWatch({ clock, logger, system: sys, datapath: () => dp, networks: () => [{ config: blue }], nodeName: (ep) => (ep === '198.18.0.2:4789' ? 'h2' : null) });
  clock.setInterval(1000, () => watch.tick());
  return { clock, lines, peer, net, global, watch, ports };
}

test('static peer liveness: unknown, then down with "never answered", up on a packet, down after silence', () => {
  const { clock, lines, peer, watch } = setup();
  clock.advance(5000);
  assert.equal(watch.peerViews()[0].state, 'unknown');
  clock.advance(11_000);
  const v = watch.peerViews()[0];
  assert.deepEqual([v.peer, v.endpoint, v.static, v.state, v.lastReceived], ['h2', '198.18.0.2:4789', true, 'down', null]);
  const never = lines.filter((l) => /has never answered/.test(String(l.msg)));
  assert.equal(never.length, 1);
  assert.equal(never[0].level, 'warn');
  assert.equal(never[0].peer, 'h2');
  peer.rxPackets = 3;
  clock.advance(1000);
  assert.equal(watch.peerState('198.18.0.2:4789'), 'up');
  assert.ok(watch.peerViews()[0].lastReceived);
  assert.ok(lines.some((l) => l.msg === 'peer h2 is up' && l.level === 'info'));
  clock.advance(16_000);
  assert.equal(watch.peerState('198.18.0.2:4789'), 'down');
  assert.ok(lines.some((l) => l.msg === 'peer h2 is down: no packet from it for 15s' && l.level === 'warn'));
  assert.equal(lines.filter((l) => l.msg === 'peer state changed' && l.level === 'debug').length, 3, 'each decision at debug');
});

test('drop summaries: one warn per reason and window with the count and the senders; local_dst left out; repeated within a minute suppressed', () => {
  const { clock, lines, peer, net, global } = setup();
  peer.rxPackets = 10;
  global.rxDrops[rxDropIndex.unknown_vni] = 7;
  net.txDrops[txDropIndex.oversize_frame] = 2;
  net.txDrops[txDropIndex.local_dst] = 100;
  clock.advance(10_000);
  const drops = lines.filter((l) => /^dropped /.test(String(l.msg)));
  assert.deepEqual(drops.map((l) => [l.level, l.reason, l.dropped, l.network ?? null]), [['warn', 'unknown_vni', 7, null], ['warn', 'oversize_frame', 2, 'blue']]);
  assert.deepEqual(drops[0].sendersInWindow, ['h2']);
  assert.match(String(drops[0].msg), /dropped 7 received packets \(unknown_vni: a VNI this host does not serve/);
  global.rxDrops[rxDropIndex.unknown_vni] = 9;
  clock.advance(10_000);
  assert.equal(lines.filter((l) => l.reason === 'unknown_vni').length, 1, 'rate-limited: once a minute per reason');
  clock.advance(50_000);
  global.rxDrops[rxDropIndex.unknown_vni] = 10;
  clock.advance(10_000);
  const again = lines.filter((l) => l.reason === 'unknown_vni');
  assert.equal(again.length, 2);
  assert.equal(again[1].suppressed, 1, 'the suppressed window is reported');
});

test('bridge ports above the network MTU: warned once, listed, cleared when fixed; the TAP itself is not a container port', () => {
  const ports = [{ name: 'vx-blue', mtu: 1450 }, { name: 'veth1', mtu: 1500 }, { name: 'veth2', mtu: 1450 }];
  const { clock, lines, watch } = setup(ports);
  clock.advance(3000);
  assert.deepEqual(watch.oversizedPorts(42), [{ port: 'veth1', mtu: 1500 }]);
  const w = lines.filter((l) => l.port === 'veth1' && l.level === 'warn');
  assert.equal(w.length, 1, 'once, not every round');
  assert.match(String(w[0].msg), /port veth1 of br0 has MTU 1500, above network blue's MTU 1450.*set the container interface and its veth to MTU 1450/);
  ports[1].mtu = 1450;
  clock.advance(1000);
  assert.deepEqual(watch.oversizedPorts(42), []);
  assert.ok(lines.some((l) => l.port === 'veth1' && l.level === 'info' && /no longer exceeds/.test(String(l.msg))));
  ports[1].mtu = 9000;
  clock.advance(1000);
  assert.equal(lines.filter((l) => l.port === 'veth1' && l.level === 'warn').length, 2, 'a new excess is warned again');
});
