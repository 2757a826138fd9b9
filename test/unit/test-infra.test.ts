// The test infrastructure's own rules (issue 11): tests never install packages (scripts/test-setup.js
// does, before any test starts, from the one list in scripts/test-deps.js), and every tool a test
// checks for is in that list, so that a root run installs it and runs the test instead of skipping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.join(__dirname, '..', '..', '..');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { PACKAGES } = require(path.join(REPO, 'scripts', 'test-deps.js')) as { PACKAGES: Array<{ pkg: string; cmds: string[]; for: string[]; why: string }> };

function sources(dir: string): string[] {
  const out: string[] = [];
  (function walk(d: string) {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) out.push(p);
    }
  })(dir);
  return out;
}

const files = [...sources(path.join(REPO, 'test')), ...sources(path.join(REPO, 'lab'))].filter((f) => !f.endsWith('test-infra.test.ts'));

test('no test or lab helper installs packages (apt-get, dpkg -i, npm install) while tests run', () => {
  const offenders: string[] = [];
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    text.split('\n').forEach((line, i) => {
      // A package manager run as a command (not named in a message): 'apt-get', … as an argument,
      // a spawn/exec of a shell line with it, ensureTool(), or npm install/ci.
      if (/['"`](apt-get|apt|dpkg|apk|yum|dnf)['"`]\s*[,)]|\b(spawn|exec|execFile)\w*\(.*\b(apt-get|dpkg -i)\b|ensureTool\(|['"`]npm['"`],\s*\[\s*['"`](install|ci)['"`]/.test(line)) {
        offenders.push(`${path.relative(REPO, f)}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  assert.deepEqual(offenders, []);
});

test('every tool a test checks for comes from a package of scripts/test-deps.js (group test)', () => {
  const provided = new Set(PACKAGES.filter((p) => p.for.includes('test')).flatMap((p) => p.cmds));
  const needed = new Map<string, string>();
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    for (const m of text.matchAll(/\b(?:netnsSkip|toolsSkip|haveTool)\(([^)]*)\)/g)) {
      for (const t of m[1].matchAll(/'([A-Za-z0-9_.-]+)'/g)) needed.set(t[1], path.relative(REPO, f));
    }
    // for (const t of ['podman', 'runc']) if (!haveTool(t)) …
    for (const m of text.matchAll(/for \(const (\w+) of \[([^\]]*)\]\)\s*if \(!haveTool\(\1\)\)/g)) {
      for (const t of m[2].matchAll(/'([A-Za-z0-9_.-]+)'/g)) needed.set(t[1], path.relative(REPO, f));
    }
  }
  assert.ok(needed.size >= 5, `found the tool checks (${[...needed.keys()].join(' ')})`);
  const missing = [...needed].filter(([t]) => !provided.has(t)).map(([t, f]) => `${t} (${f})`);
  assert.deepEqual(missing, [], 'tools checked by tests but not in scripts/test-deps.js');
  for (const p of PACKAGES) assert.ok(p.why.length > 10, `${p.pkg}: says why`);
});
