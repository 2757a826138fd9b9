/**
 * Issue 10 defect 10: `vxmesh check-config` accepts exactly what `vxmesh agent` accepts at start.
 * For a list of configs (with the key files they name), check-config's verdict (the command, run
 * in process) equals the agent's: the same loader, then every extension the agent would build
 * (cli/extensions.ts) started against a stand-in data path (gossip binds 127.0.0.1, crypto reads or
 * creates the host key in a temporary directory), then stopped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Agent, AgentExtension } from '../../src/agent/agent';
import { systemClock } from '../../src/clock';
import { checkConfig } from '../../src/cli/commands/check-config';
import { buildExtensions } from '../../src/cli/extensions';
import { loadConfigFile } from '../../src/config/load';
import { cryptoReady } from '../../src/crypto/keys';
import { generateClusterKey } from '../../src/gossip/keyring';
import { nullLogger } from '../../src/log';

/** A data path that accepts every control call (no network is set up here: only config is judged). */
const stubDatapath: unknown = new Proxy({
  localEndpoints: () => [], localVersion: () => 0, networks: () => [], network: () => undefined, fdbRemoveByPeer: () => 0,
} as Record<string, unknown>, { get: (t, k) => (typeof k === 'string' && k in t ? t[k] : () => true) });

/** The agent's verdict on the config at `file`: loader, then every extension started. */
async function agentVerdict(file: string, stateDir: string): Promise<string> {
  let started: AgentExtension[] = [];
  try {
    const config = loadConfigFile(file);
    const exts = buildExtensions(config, nullLogger);
    const agent = { config, clock: systemClock, datapath: stubDatapath, extensions: exts, api: null, state: { dir: stateDir } } as unknown as Agent;
    for (const e of exts) {
      await e.start(agent);
      started.push(e);
    }
    return 'ok';
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  } finally {
    for (const e of started.reverse()) await e.stop();
    started = [];
  }
}

async function checkVerdict(file: string): Promise<string> {
  try {
    const code = await checkConfig.run([file, '--quiet']);
    return code === 0 ? 'ok' : `exit ${code}`;
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  }
}

test('check-config and agent start give the same verdict for every config', async (t) => {
  await cryptoReady();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-parity-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text, { mode: 0o600 });
    return f;
  };
  const cluster = write('cluster.key', `${await generateClusterKey()}\n`);
  const garbage = write('garbage.key', 'not a key\n');
  const empty = write('empty.key', '# only a comment\n');
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const base = (extra: string, encrypted = false): string => `node: {name: parity, keyFile: ${path.join(dir, 'host-' + Math.random().toString(36).slice(2) + '.key')}}
underlay: {address: 127.0.0.1, mtu: 1500}
networks:
  - {name: blue, vni: 42, bridge: br0${encrypted ? ', encrypted: true' : ''}}
api: {listen: "127.0.0.1:9469"}
${extra}`;
  const cases: { name: string; text: string; expect: 'ok' | 'refused' }[] = [
    { name: 'plain, no gossip', text: base(''), expect: 'ok' },
    { name: 'gossip without keyFile', text: base(`gossip: {port: ${port}}\n`), expect: 'refused' },
    { name: 'gossip keyFile missing', text: base(`gossip: {port: ${port}, keyFile: ${path.join(dir, 'nope.key')}}\n`), expect: 'refused' },
    { name: 'gossip keyFile not a key', text: base(`gossip: {port: ${port}, keyFile: ${garbage}}\n`), expect: 'refused' },
    { name: 'gossip keyFile without a key', text: base(`gossip: {port: ${port}, keyFile: ${empty}}\n`), expect: 'refused' },
    { name: 'gossip with a keyring', text: base(`gossip: {port: ${port}, keyFile: ${cluster}}\n`), expect: 'ok' },
    { name: 'encrypted, host key created at start', text: base('', true), expect: 'ok' },
    { name: 'encrypted, gossip keyring', text: base(`gossip: {port: ${port + 1}, keyFile: ${cluster}}\n`, true), expect: 'ok' },
    { name: 'host key file not a key', text: base('', true).replace(/keyFile: [^}]+}/, `keyFile: ${garbage}}`), expect: 'refused' },
    { name: 'bad VNI', text: base('').replace('vni: 42', 'vni: 0'), expect: 'refused' },
  ];
  for (const c of cases) {
    const file = write(`${c.name.replace(/[^a-z]+/g, '-')}.yaml`, c.text);
    const check = await checkVerdict(file);
    const stateDir = fs.mkdtempSync(path.join(dir, 'state-'));
    const agent = await agentVerdict(file, stateDir);
    assert.equal(check.split(':')[0], agent.split(':')[0], `${c.name}: check-config says "${check}", the agent "${agent}"`);
    assert.equal(agent.split(':')[0], c.expect, `${c.name}: ${agent}`);
  }
});
