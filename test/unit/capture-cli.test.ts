/**
 * `vxmesh capture` arguments: bad usage is exit 2 with a clear message (no agent needed); an agent
 * that is not there is exit 1 naming the socket; no stack trace either way.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'vxmesh');
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, 'capture', ...args], { encoding: 'utf8', timeout: 30_000 });

test('usage errors: exit 2 with the reason', () => {
  const cases: [string[], RegExp][] = [
    [['--drops'], /-w FILE is required/],
    [['-w', 'x.pcapng'], /a live capture needs --network N/],
    [['--drops', '--count', '0', '-w', 'x'], /--count: expected a positive integer, got "0"/],
    [['--network', 'blue', '--snap', 'big', '-w', 'x'], /--snap: expected a positive integer/],
    [['--drops', '--snap', '100', '-w', 'x'], /--snap and --queue are for live captures/],
    [['--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, re] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('no agent on the socket: exit 1 naming it; no file is created', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capture-cli-'));
  try {
    const sock = path.join(dir, 'none.sock');
    const out = path.join(dir, 'x.pcapng');
    const r = run('--drops', '-w', out, '--socket', sock);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`cannot reach the agent on ${sock.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    assert.equal(fs.existsSync(out), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
