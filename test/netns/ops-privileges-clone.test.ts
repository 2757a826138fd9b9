/**
 * Issue 17: `npm test` passes from a checkout that other users cannot enter (as root, a clone under
 * /root, which is 0700 on Debian, or in a `mktemp -d`). The checkout is copied into a 0700
 * directory — sources as a clone has them, plus what `npm install` makes (node_modules, the built
 * addon, dist/) — and the unprivileged-agent test (ops-privileges.test.ts) runs there through the
 * copy's own scripts/run-tests.js: the agent user must get everything it needs from an installed
 * copy, not from the checkout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { netnsSkip } from '../helpers/lab';
import { REPO_ROOT } from '../../lab/netns';
import { toolsSkip } from '../unit/ops-tools';

const skip = netnsSkip('setpriv') ?? toolsSkip('useradd', 'groupadd');
// What a clone has, minus VCS metadata; plus the products of `npm install` (copied, not rebuilt).
const SKIP_TOP = new Set(['.git']);

test('a checkout in a 0700 directory: the unprivileged-agent test passes from it', { skip, timeout: 300_000 }, async (t) => {
  const closed = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-0700-'));
  t.after(() => fs.rmSync(closed, { recursive: true, force: true }));
  fs.chmodSync(closed, 0o700);
  const clone = path.join(closed, 'vxmesh');
  fs.cpSync(REPO_ROOT, clone, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(REPO_ROOT, src);
      return !SKIP_TOP.has(rel.split(path.sep)[0]);
    },
  });
  for (const f of ['bin/vxmesh', 'dist/test/netns/ops-privileges.test.js', 'build/Release/vxmesh.node', 'node_modules/yaml', 'scripts/run-tests.js']) {
    assert.ok(fs.existsSync(path.join(clone, f)), `${f} in the copy`);
  }
  assert.equal(fs.statSync(closed).mode & 0o777, 0o700);

  // Its own runner, its own leak check; output kept for the assertion message.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [path.join(clone, 'scripts', 'run-tests.js'), 'netns/ops-privileges.test'], { cwd: clone, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  assert.equal(code, 0, out);
  assert.match(out, /✔ agent as an unprivileged user with only CAP_NET_ADMIN \(ambient\) forwards traffic/);
  assert.match(out, /# \d+ passed, 0 failed, 0 skipped, 1 file\(s\)/);
});
