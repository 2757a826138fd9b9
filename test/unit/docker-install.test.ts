/**
 * `vxmesh install-docker`: the docker.service drop-in (after/wants vxmesh.service), a plugin spec
 * file only for a socket outside /run/docker/plugins (and an old one removed when back to the
 * default), refusal (exit 2) when the config does not enable the driver, --no-systemd; the command
 * is listed by `vxmesh --help`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../../lab/netns';

const BIN = path.join(REPO_ROOT, 'bin', 'vxmesh');

function setup(t: { after(fn: () => void): void }, docker: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxm-instd-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'vxmesh.yaml');
  fs.writeFileSync(cfg, `node: a\nunderlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0, subnet: 198.19.0.0/16, gateway: 198.19.0.1}\ngossip: {seeds: [198.18.0.2], keyFile: ${path.join(dir, 'k')}}\n${docker}`);
  fs.writeFileSync(path.join(dir, 'k'), 'x'.repeat(44) + '\n', { mode: 0o600 });
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, 'install-docker', '--config', cfg, '--systemd-dir', path.join(dir, 'systemd'), '--plugin-dir', path.join(dir, 'plugins'), ...args], { encoding: 'utf8' });
  return { dir, cfg, run, dropIn: path.join(dir, 'systemd', 'docker.service.d', '10-vxmesh.conf'), spec: path.join(dir, 'plugins', 'vxmesh.spec') };
}

test('install-docker: drop-in only for the default socket; a spec file for another socket', (t) => {
  const s = setup(t, 'docker: {}\n');
  const r = s.run();
  assert.equal(r.status, 0, r.stderr);
  assert.match(fs.readFileSync(s.dropIn, 'utf8'), /^\[Unit\]\n(#.*\n)?Wants=vxmesh\.service\nAfter=vxmesh\.service\n$/);
  assert.equal(fs.existsSync(s.spec), false);
  assert.match(r.stdout, /plugin "vxmesh" on \/run\/docker\/plugins\/vxmesh\.sock/);

  fs.writeFileSync(s.cfg, fs.readFileSync(s.cfg, 'utf8').replace('docker: {}', 'docker: {socket: /run/vxmesh/docker.sock}'));
  const r2 = s.run('--no-systemd');
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal(fs.readFileSync(s.spec, 'utf8'), 'unix:///run/vxmesh/docker.sock\n');
  assert.doesNotMatch(r2.stdout, /docker\.service\.d/);

  fs.writeFileSync(s.cfg, fs.readFileSync(s.cfg, 'utf8').replace('docker: {socket: /run/vxmesh/docker.sock}', 'docker: {enabled: true}'));
  const r3 = s.run();
  assert.equal(r3.status, 0, r3.stderr);
  assert.equal(fs.existsSync(s.spec), false, 'the old spec would shadow the default socket');
  assert.match(r3.stdout, /removed .*vxmesh\.spec/);
});

test('install-docker refuses a config without the driver (exit 2, nothing written); listed in --help', (t) => {
  for (const docker of ['', 'docker: {enabled: false}\n']) {
    const s = setup(t, docker);
    const r = s.run();
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /the Docker driver is not enabled in .*vxmesh\.yaml: add a docker section/);
    assert.equal(fs.existsSync(path.join(s.dir, 'systemd')), false);
  }
  const bad = setup(t, 'docker: {socket: nope}\n').run();
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /docker\.socket/);
  const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
  assert.match(help.stdout, /install-docker\s+Make the Docker network\/IPAM plugin available before dockerd starts/);
});
