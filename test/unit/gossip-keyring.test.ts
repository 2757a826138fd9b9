/** Keyring: authenticated encryption, wrong keys rejected, rotation keeps everyone readable. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeKey, ENVELOPE_OVERHEAD, generateClusterKey, Keyring, parseKeyFile, sodiumReady } from '../../src/gossip/keyring';

const k1 = new Uint8Array(32).fill(1);
const k2 = new Uint8Array(32).fill(2);
const k3 = new Uint8Array(32).fill(3);
const msg = Uint8Array.from([1, 2, 3, 4, 5]);

test('seal/open round trip; nonces never repeat', async () => {
  await sodiumReady();
  const a = new Keyring([k1]);
  const b = new Keyring([k1]);
  const e1 = a.seal(msg);
  const e2 = a.seal(msg);
  assert.equal(e1.length, msg.length + ENVELOPE_OVERHEAD);
  assert.notDeepEqual(e1.subarray(1, 25), e2.subarray(1, 25));
  assert.deepEqual(b.open(e1, 100), msg);
});

test('wrong key, tampering, truncation and oversize are rejected (null)', async () => {
  await sodiumReady();
  const a = new Keyring([k1]);
  const other = new Keyring([k2]);
  const env = a.seal(msg);
  assert.equal(other.open(env, 100), null);
  const t = Uint8Array.from(env);
  t[t.length - 1] ^= 1;
  assert.equal(a.open(t, 100), null);
  assert.equal(a.open(env.subarray(0, 20), 100), null);
  assert.equal(a.open(env, 2), null, 'larger than the caller allows');
  const v = Uint8Array.from(env);
  v[0] = 2;
  assert.equal(a.open(v, 100), null);
});

test('rotation: add → use → remove, every step readable by members at every other step', async () => {
  await sodiumReady();
  // Three members; rotate from k1 to k2 one member and one step at a time.
  const ms = [new Keyring([k1]), new Keyring([k1]), new Keyring([k1])];
  const allRead = (): void => {
    for (const a of ms) for (const b of ms) assert.deepEqual(b.open(a.seal(msg), 100), msg);
  };
  allRead();
  for (const m of ms) { m.add(k2); allRead(); }
  for (const m of ms) { m.use(k2); allRead(); }
  for (const m of ms) { m.remove(k1); allRead(); }
  assert.deepEqual(ms[0].primary, k2);
  assert.equal(ms[0].size, 1);
  // The old key alone can no longer read anything.
  assert.equal(new Keyring([k1]).open(ms[0].seal(msg), 100), null);
});

test('the primary key cannot be removed; unknown keys cannot be made primary', async () => {
  await sodiumReady();
  const r = new Keyring([k1, k3]);
  assert.throws(() => r.remove(k1), { code: 'ERR_VXMESH_CONFIG' });
  assert.throws(() => r.use(k2), { code: 'ERR_VXMESH_CONFIG' });
  r.remove(k3);
  assert.equal(r.size, 1);
});

test('key files: base64 lines, comments; bad keys named by line', async () => {
  const key = await generateClusterKey();
  assert.equal(Buffer.from(key, 'base64').length, 32);
  const keys = parseKeyFile(`# cluster keyring\n${key}\n\n${Buffer.from(k2).toString('base64')}  # old\n`);
  assert.equal(keys.length, 2);
  assert.deepEqual(keys[1], k2);
  assert.throws(() => parseKeyFile('abc\n'), /gossip.keyFile:1: cluster key must be 32 bytes/);
  assert.throws(() => parseKeyFile('# nothing\n'), /no key/);
  assert.throws(() => decodeKey('not base64!'), { code: 'ERR_VXMESH_CONFIG' });
});
