/**
 * Host identity: node.keyFile created 0600 with a fresh key when missing, loaded as is when
 * present, group/other-readable files reported, malformed files rejected with a ConfigError naming
 * node.keyFile; `keygenHost` prints or writes a key and never overwrites one.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  cryptoReady, decodeKey, encodeKey, generateHostKey, keygenHost, loadOrCreateHostKey, publicKeyOf,
} from '../../src/crypto/keys';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'vxmesh-keys-'));

test('crypto ready', async () => { await cryptoReady(); });

test('missing key file: created with mode 0600 (and its directory 0700), then loaded unchanged', () => {
  const dir = tmp();
  try {
    const file = path.join(dir, 'sub', 'host.key');
    const old = process.umask(0);
    let k;
    try {
      k = loadOrCreateHostKey(file);
    } finally {
      process.umask(old);
    }
    assert.equal(k.created, true);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    assert.match(fs.readFileSync(file, 'utf8'), /^[A-Za-z0-9+/]{43}=\n$/);
    const again = loadOrCreateHostKey(file);
    assert.equal(again.created, false);
    assert.equal(again.insecureMode, false);
    assert.deepEqual(again.publicKey, k.publicKey);
    assert.deepEqual(again.publicKey, publicKeyOf(again.privateKey));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('group/other-readable key file is reported; malformed ones are ConfigErrors on node.keyFile', () => {
  const dir = tmp();
  try {
    const file = path.join(dir, 'host.key');
    fs.writeFileSync(file, encodeKey(generateHostKey().privateKey) + '\n', { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    assert.equal(loadOrCreateHostKey(file).insecureMode, true);
    for (const bad of ['', 'not base64 at all', Buffer.alloc(16).toString('base64'), Buffer.alloc(33).toString('base64')]) {
      fs.writeFileSync(file, bad);
      assert.throws(() => loadOrCreateHostKey(file), (e: { code?: string; path?: string }) => e.code === 'ERR_VXMESH_CONFIG' && e.path === 'node.keyFile');
    }
    assert.throws(() => loadOrCreateHostKey(dir), { code: 'ERR_VXMESH_CONFIG' }, 'a directory');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('keygenHost: prints a key pair, or writes a 0600 file and refuses to overwrite it', async () => {
  const printed = await keygenHost();
  assert.ok(printed.privateKeyLine);
  assert.deepEqual(encodeKey(publicKeyOf(decodeKey(printed.privateKeyLine!))), printed.publicKey);
  const dir = tmp();
  try {
    const file = path.join(dir, 'h.key');
    const w = await keygenHost(file);
    assert.equal(w.privateKeyLine, null);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(encodeKey(loadOrCreateHostKey(file).publicKey), w.publicKey);
    await assert.rejects(keygenHost(file), { code: 'ERR_VXMESH_KEY' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('decodeKey accepts exactly 32 bytes of padded base64', () => {
  const k = generateHostKey().publicKey;
  assert.deepEqual(decodeKey(`  ${encodeKey(k)}\n`), k);
  assert.throws(() => decodeKey(encodeKey(k).slice(0, 43)), { code: 'ERR_VXMESH_KEY' });
  assert.throws(() => decodeKey(''), { code: 'ERR_VXMESH_KEY' });
});
