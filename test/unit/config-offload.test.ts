/**
 * `underlay.offload` (fast path switch): parsed and validated by the loader (default true, a boolean,
 * a restart-only change), and what the agent does with it: plaintext networks' TAPs opened with
 * vnetHdr and the UDP socket with GRO when on; plain TAPs and no GRO when off; encrypted networks
 * get a vnet TAP only when the native AEAD seals TSO super-frames; a TAP that refuses offloads falls back to plain frames.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Agent, type AgentSystem, type OpenedTap } from '../../src/agent/agent';
import { diffConfig } from '../../src/config/diff';
import { ConfigErrorList, parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/types';
import { loadNativeAead } from '../../src/crypto/aead';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import { ConfigError, SystemError } from '../../src/errors';

const noLookup = { mtuLookup: () => null, hostname: 'h' };
const text = (offload = '', nets = '  - {name: blue, vni: 42, bridge: br0}\n') =>
  `node: a\nunderlay:\n  address: 198.18.0.1\n${offload}networks:\n${nets}`;

test('underlay.offload defaults to true and accepts true/false', () => {
  assert.equal(parseConfig(text(), noLookup).underlay.offload, true);
  assert.equal(parseConfig(text('  offload: true\n'), noLookup).underlay.offload, true);
  assert.equal(parseConfig(text('  offload: false\n'), noLookup).underlay.offload, false);
});

test('underlay.offload must be a boolean; the error names the field', () => {
  for (const bad of ['"yes"', '1', '[true]']) {
    let err: unknown;
    try {
      parseConfig(text(`  offload: ${bad}\n`), noLookup);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError, `offload: ${bad} is rejected`);
    const errs = err instanceof ConfigErrorList ? err.errors : [err];
    assert.equal(errs.length, 1);
    assert.equal(errs[0].path, 'underlay.offload');
  }
});

test('changing underlay.offload needs a restart (reload refuses it)', () => {
  const a = parseConfig(text(), noLookup);
  const b = parseConfig(text('  offload: false\n'), noLookup);
  const d = diffConfig(a, b);
  assert.ok(d.refused.some((r) => r.startsWith('underlay changed')), JSON.stringify(d.refused));
});

/** Records how the agent opens its devices; vnet TAPs are MemoryTaps flagged `vnetHdr` (never read with readBatchVnet here). */
class OpenRecorder implements AgentSystem {
  readonly links = new Set<string>();
  readonly tapOpens: Array<{ name: string; vnetHdr: boolean }> = [];
  readonly udpOpens: Array<{ gro: boolean }> = [];
  refuseVnet = false;
  readonly reactor = new MemoryReactor({ auto: true });
  readonly net = new MemoryUdpNetwork({ reactor: this.reactor });
  linkExists(name: string) { return this.links.has(name); }
  bridgeCreate(name: string) { this.links.add(name); }
  bridgeDelete(name: string) { this.links.delete(name); }
  bridgeAddPort() {}
  bridgeDelPort() {}
  setMtu() {}
  setUp() {}
  isUp() { return true; }
  masterOf() { return null; }
  openTap(name: string, opts?: { vnetHdr: boolean }): OpenedTap {
    const vnetHdr = opts?.vnetHdr ?? false;
    this.tapOpens.push({ name, vnetHdr });
    if (vnetHdr && this.refuseVnet) throw new SystemError('ERR_VXMESH_TAP_OPEN', `cannot enable offloads on TAP ${name}`, 'ioctl(TUNSETOFFLOAD)', 'EINVAL');
    const tap = new MemoryTap({ name, reactor: this.reactor, mac: Buffer.from([2, 0, 0, 0, 0, this.tapOpens.length]) });
    return Object.assign(tap, { created: true });
  }
  openUdp(o: { address: string; port: number; sourcePorts: number; gro?: boolean }) {
    this.udpOpens.push({ gro: o.gro === true });
    return this.net.attach(o.address, o.port, o.sourcePorts);
  }
}

async function startWith(c: Config, sys: OpenRecorder): Promise<Agent> {
  return Agent.start({ ...c, api: { listen: { host: '127.0.0.1', port: 0 } } }, { system: sys, api: false });
}

const twoNets = '  - {name: blue, vni: 42, bridge: br0}\n  - {name: green, vni: 44, bridge: br1, encrypted: true}\n';

test('agent: offload on → plaintext TAPs with vnetHdr, encrypted ones too when the addon seals TSO, UDP with GRO', async () => {
  const sys = new OpenRecorder();
  const agent = await startWith(parseConfig(text('', twoNets), noLookup), sys);
  const fns = loadNativeAead() as { aeadSealTso?: unknown } | null;
  const tso = fns !== null && typeof fns.aeadSealTso === 'function';
  try {
    assert.deepEqual(sys.tapOpens, [{ name: 'vx-blue', vnetHdr: true }, { name: 'vx-green', vnetHdr: tso }]);
    assert.deepEqual(sys.udpOpens, [{ gro: true }]);
  } finally {
    await agent.stop();
  }
});

test('agent: offload off → plain TAPs, no GRO', async () => {
  const sys = new OpenRecorder();
  const agent = await startWith(parseConfig(text('  offload: false\n', twoNets), noLookup), sys);
  try {
    assert.deepEqual(sys.tapOpens, [{ name: 'vx-blue', vnetHdr: false }, { name: 'vx-green', vnetHdr: false }]);
    assert.deepEqual(sys.udpOpens, [{ gro: false }]);
  } finally {
    await agent.stop();
  }
});

test('agent: a TAP that refuses offloads is reopened plain and the agent starts', async () => {
  const sys = new OpenRecorder();
  sys.refuseVnet = true;
  const agent = await startWith(parseConfig(text(), noLookup), sys);
  try {
    assert.deepEqual(sys.tapOpens, [{ name: 'vx-blue', vnetHdr: true }, { name: 'vx-blue', vnetHdr: false }]);
    assert.equal(agent.datapath.networks().length, 1);
  } finally {
    await agent.stop();
  }
});

test('underlay.tapThreads defaults to false, must be a boolean, and needs a restart', () => {
  assert.equal(parseConfig(text(), noLookup).underlay.tapThreads, false);
  assert.equal(parseConfig(text('  tapThreads: true\n'), noLookup).underlay.tapThreads, true);
  let err: unknown;
  try {
    parseConfig(text('  tapThreads: "on"\n'), noLookup);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError);
  const errs = err instanceof ConfigErrorList ? err.errors : [err];
  assert.equal(errs[0].path, 'underlay.tapThreads');
  const d = diffConfig(parseConfig(text(), noLookup), parseConfig(text('  tapThreads: true\n'), noLookup));
  assert.ok(d.refused.some((r) => r.startsWith('underlay changed')), JSON.stringify(d.refused));
});
