/**
 * sdNotify against a real AF_UNIX datagram socket (path and abstract namespace) served by a small
 * python3 listener; false when NOTIFY_SOCKET is unset; errors with code/errno/syscall. Also the
 * addon loader's ERR_VXMESH_NATIVE_LOAD when no build is found. No root needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sdNotify } from '../../src/native/sdnotify';
import { ERR_NATIVE_LOAD, ERR_SDNOTIFY, SystemError } from '../../src/errors';
import { addonSkipReason } from './native-helpers';

const LISTENER = `
import json, socket, sys
p = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + p[1:] if p.startswith("@") else p)
s.settimeout(10)
print("bound", flush=True)
d = s.recv(65536)
print(json.dumps(d.decode("utf-8", "replace")), flush=True)
`;

/** Binds `socketPath`, runs `send` once bound, resolves with the one datagram received (bounded). */
function receiveOne(socketPath: string, send: () => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', LISTENER, socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let sent = false;
    const timer = setTimeout(() => child.kill(), 15_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!sent && out.includes('bound\n')) {
        sent = true;
        try {
          send();
        } catch (e) {
          child.kill();
          reject(e);
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`listener exited ${code}: ${err}`));
      resolve(JSON.parse(out.split('\n')[1]));
    });
  });
}

const skip = addonSkipReason() ?? (spawnSync('python3', ['-V']).status === 0 ? undefined : 'python3 is not installed');

test('sdNotify sends one datagram to a unix socket path', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-notify-'));
  try {
    const sock = path.join(dir, 'notify.sock');
    const msg = 'READY=1\nSTATUS=vxmesh up, 2 networks';
    let ret: boolean | undefined;
    const got = await receiveOne(sock, () => (ret = sdNotify(msg, sock)));
    assert.equal(ret, true);
    assert.equal(got, msg);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('sdNotify reaches an abstract-namespace socket (@name) and reads NOTIFY_SOCKET by default', { skip }, async () => {
  const sock = `@vxmesh-test-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const saved = process.env.NOTIFY_SOCKET;
  process.env.NOTIFY_SOCKET = sock;
  try {
    const got = await receiveOne(sock, () => assert.equal(sdNotify('STOPPING=1'), true));
    assert.equal(got, 'STOPPING=1');
  } finally {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = saved;
  }
});

test('sdNotify returns false without a socket and throws SystemError when it cannot send', { skip: addonSkipReason() }, () => {
  assert.equal(sdNotify('READY=1', undefined), false);
  assert.equal(sdNotify('READY=1', ''), false);
  const missing = path.join(os.tmpdir(), `vxmesh-no-such-${process.pid}.sock`);
  assert.throws(() => sdNotify('READY=1', missing), (e: SystemError) => {
    assert.ok(e instanceof SystemError);
    assert.equal(e.code, ERR_SDNOTIFY);
    assert.equal(e.errno, 'ENOENT');
    assert.equal(e.syscall, 'sendto');
    assert.match(e.message, /sendto failed: No such file or directory/);
    return true;
  });
  assert.throws(() => sdNotify('READY=1', 'relative.sock'), (e: SystemError) => e.code === ERR_SDNOTIFY && e.errno === 'EINVAL');
});

test('the addon loader reports ERR_VXMESH_NATIVE_LOAD when no build exists', () => {
  // A copy of the loader where no build/ directory exists up the tree.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-load-'));
  try {
    const dist = path.join(__dirname, '..', '..', 'src');
    fs.mkdirSync(path.join(dir, 'native'));
    fs.copyFileSync(path.join(dist, 'errors.js'), path.join(dir, 'errors.js'));
    fs.copyFileSync(path.join(dist, 'native', 'addon.js'), path.join(dir, 'native', 'addon.js'));
    const saved = process.env.VXMESH_ADDON;
    delete process.env.VXMESH_ADDON;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require(path.join(dir, 'native', 'addon.js')) as typeof import('../../src/native/addon');
      assert.throws(() => mod.loadAddon(), (e: Error & { code?: string }) => {
        assert.equal(e.code, ERR_NATIVE_LOAD);
        assert.match(e.message, /native addon not found .*npm install/);
        return true;
      });
    } finally {
      if (saved !== undefined) process.env.VXMESH_ADDON = saved;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
