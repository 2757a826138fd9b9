/**
 * The CLI as an operator runs it: bin/vxmesh spawned as a process. Help lists every command,
 * `<command> --help` works for each, `version`, unknown commands/options → exit 2 with usage,
 * `check-config` exit codes (0 valid, 2 invalid with a message naming the field).
 */

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { commands } from '../../src/cli/commands/index';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'vxmesh');

function vxmesh(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, NOTIFY_SOCKET: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectCode(r: { code: number | null; stderr: string }, code: number): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
}

function tmpFile(name: string, text: string): { file: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxcli-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return { file, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test('--help lists every command and exits 0; no arguments prints usage and exits 2', () => {
  const r = vxmesh('--help');
  assert.equal(r.code, 0, `exit code; stderr: ${r.stderr}`);
  for (const c of commands) assert.match(r.stdout, new RegExp(`^  ${c.name} +${c.summary.replace(/[()]/g, '.')}$`, 'm'));
  assert.match(r.stdout, /Exit codes: 0 success, 1 runtime failure, 2 bad arguments or config/);
  const none = vxmesh();
  assert.equal(none.code, 2, `exit code; stderr: ${none.stderr}`);
  assert.match(none.stderr, /Usage: vxmesh <command>/);
  assert.equal(vxmesh('help').stdout, r.stdout);
});

test('<command> --help prints that command\'s usage for every command', () => {
  for (const c of commands) {
    const r = vxmesh(c.name, '--help');
    assert.equal(r.code, 0, `${c.name} --help: ${r.stderr}`);
    assert.equal(r.stdout.trim(), c.usage.trim());
    assert.match(r.stdout, new RegExp(`^Usage: vxmesh ${c.name}`));
    assert.equal(vxmesh('help', c.name).stdout, r.stdout);
  }
  assert.match(vxmesh('agent', '-h').stdout, /--config FILE/);
});

test('version prints the package version', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const r = vxmesh('version');
  assert.equal(r.code, 0, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stdout, new RegExp(`^vxmesh ${pkg.version.replace(/\./g, '\\.')} \\(node v\\d+`));
  assert.equal(vxmesh('--version').stdout, r.stdout);
  const j = JSON.parse(vxmesh('version', '--json').stdout);
  assert.equal(j.version, pkg.version);
});

test('unknown commands and options exit 2 with usage', () => {
  const r = vxmesh('frobnicate');
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  assert.match(r.stderr, /Usage: vxmesh <command>/);
  assert.match(vxmesh('chek-config').stderr, /did you mean "check-config"/);
  const o = vxmesh('--frob');
  assert.equal(o.code, 2, `exit code; stderr: ${o.stderr}`);
  assert.match(o.stderr, /unknown option "--frob"/);
  const c = vxmesh('version', '--frob');
  assert.equal(c.code, 2, `exit code; stderr: ${c.stderr}`);
  assert.match(c.stderr, /vxmesh version: Unknown option '--frob'/);
  assert.match(c.stderr, /vxmesh version --help/);
  const h = vxmesh('help', 'nope');
  assert.equal(h.code, 2, `exit code; stderr: ${h.stderr}`);
  assert.match(h.stderr, /unknown command "nope"/);
});

test('agent: missing or bad arguments exit 2', () => {
  const r = vxmesh('agent');
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /--config FILE is required/);
  expectCode(vxmesh('agent', '--config'), 2);
  expectCode(vxmesh('agent', '--config', 'x', 'extra'), 2);
  const l = vxmesh('agent', '--config', '/nonexistent/vxmesh.yaml', '--log-level', 'loud');
  assert.equal(l.code, 2, `exit code; stderr: ${l.stderr}`);
  assert.match(l.stderr, /--log-level: expected one of/);
  const m = vxmesh('agent', '--config', '/nonexistent/vxmesh.yaml');
  assert.equal(m.code, 2, `exit code; stderr: ${m.stderr}`);
  assert.match(m.stderr, /cannot read config file \/nonexistent\/vxmesh\.yaml: ENOENT/);
});

test('check-config: valid → 0 with a summary; --json gives the defaulted config', () => {
  const { file, cleanup } = tmpFile('ok.yaml', 'node: host-a\nunderlay:\n  address: 198.18.0.1\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\npeers: [198.18.0.2]\n');
  try {
    const r = vxmesh('check-config', file);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /is valid/);
    assert.match(r.stdout, /blue +vni 42 +bridge br0 +tap vx-blue +mtu \d+/);
    const j = vxmesh('check-config', '--json', file);
    assert.equal(j.code, 0, `exit code; stderr: ${j.stderr}`);
    const c = JSON.parse(j.stdout);
    assert.equal(c.networks[0].tap, 'vx-blue');
    assert.equal(c.source, file);
    assert.equal(vxmesh('check-config', '--quiet', file).stdout, '');
  } finally {
    cleanup();
  }
});

test('check-config: bad config → exit 2 and a message naming each field', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['vni.yaml', 'underlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: abc, bridge: br0}\n', /networks\[0\]\.vni: expected an integer 1\.\.16777215, got "abc" \(line 3\)/],
    ['key.yaml', 'underlay: {address: 198.18.0.1, prot: 4789}\nnetworks: []\n', /underlay\.prot: unknown key \(did you mean "port"\?\)/],
    ['peer.yaml', 'underlay: {address: 198.18.0.1}\nnetworks: []\npeers: ["198.18.0.2:99999"]\n', /peers\[0\]: expected a port 1\.\.65535/],
    ['bad.json', '{"underlay": {"address": "300.1.1.1"}, "networks": []}', /underlay\.address: expected an IPv4 or IPv6 address, got "300\.1\.1\.1"/],
    ['dup.yaml', 'underlay: {address: 198.18.0.1}\nnetworks: []\nnetworks: []\n', /Map keys must be unique/],
  ];
  for (const [name, text, re] of cases) {
    const { file, cleanup } = tmpFile(name, text);
    try {
      const r = vxmesh('check-config', file);
      assert.equal(r.code, 2, `${name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, re, name);
      assert.match(r.stderr, new RegExp(`invalid config ${file.replace(/[.]/g, '\\.')}`));
      assert.equal(r.stdout, '');
    } finally {
      cleanup();
    }
  }
  const several = tmpFile('many.yaml', 'underlay: {address: 198.18.0.1}\nnetworks:\n  - {name: Blue, vni: 0, bridge: br0}\nlog: {level: loud}\n');
  try {
    const r = vxmesh('check-config', several.file);
    assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
    for (const field of ['networks[0].name', 'networks[0].vni', 'log.level']) assert.ok(r.stderr.includes(`  ${field}: `), r.stderr);
  } finally {
    several.cleanup();
  }
  expectCode(vxmesh('check-config', '/nonexistent.yaml'), 2);
  expectCode(vxmesh('check-config'), 2);
});

test('keygen: a cluster key the keyring accepts; host keys printed or written 0600, never overwritten', () => {
  const c = vxmesh('keygen', 'cluster');
  assert.equal(c.code, 0, c.stderr);
  assert.equal(Buffer.from(c.stdout.trim(), 'base64').length, 32);
  assert.notEqual(vxmesh('keygen', 'cluster').stdout, c.stdout, 'keys are random');
  const h = vxmesh('keygen', 'host');
  assert.equal(h.code, 0, h.stderr);
  assert.equal(Buffer.from(h.stdout.trim(), 'base64').length, 32);
  assert.match(h.stderr, /^public key: [A-Za-z0-9+/]{43}=$/m);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxkey-'));
  try {
    const f = path.join(dir, 'host.key');
    const w = vxmesh('keygen', 'host', '--out', f);
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /public key: /);
    assert.equal(fs.statSync(f).mode & 0o777, 0o600);
    const first = fs.readFileSync(f, 'utf8');
    const again = vxmesh('keygen', 'host', '--out', f);
    assert.equal(again.code, 1, `exit code; stderr: ${again.stderr}`);
    assert.match(again.stderr, /refusing to overwrite/);
    assert.equal(fs.readFileSync(f, 'utf8'), first);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  expectCode(vxmesh('keygen'), 2);
  expectCode(vxmesh('keygen', 'other'), 2);
  expectCode(vxmesh('keygen', 'cluster', 'extra'), 2);
});
