/**
 * Batched in-place AEAD: the native backend (addon over Node's OpenSSL) and the node:crypto
 * backend produce the same bytes for both algorithms and reject the same forgeries; descriptors
 * outside the slab, unknown slots and short packets fail without touching memory around them.
 * The native cases are skipped (and say so) when the addon is not built.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { type AeadAlg, createAeadTable, loadNativeAead } from '../../src/crypto/aead';
import { seededBytes } from '../helpers/seed';

const ALGS: AeadAlg[] = ['aes-256-gcm', 'chacha20-poly1305'];
const native = loadNativeAead() !== null;

function packets(sizes: number[], stride: number): { slab: Buffer; offs: Uint32Array; lens: Uint32Array; slots: Uint32Array } {
  const slab = Buffer.alloc(stride * sizes.length + 64);
  const offs = new Uint32Array(sizes.length);
  const lens = new Uint32Array(sizes.length);
  const slots = new Uint32Array(sizes.length);
  sizes.forEach((n, i) => {
    offs[i] = 8 + i * stride;
    lens[i] = n;
    slots[i] = i % 2;
    slab[offs[i]] = 4;
    slab.writeUInt32LE(0x11223344 + i, offs[i] + 4);
    slab.writeBigUInt64LE(BigInt(1000 + i), offs[i] + 8);
    seededBytes(`aead:payload:${stride}:${i}`, n).copy(slab, offs[i] + 16);
  });
  return { slab, offs, lens, slots };
}

for (const alg of ALGS) {
  test(`${alg}: native and node:crypto backends agree byte for byte, and round-trip`, { skip: native ? false : 'native AEAD not built' }, () => {
    const k0 = seededBytes(`aead:${alg}:k0`, 32);
    const k1 = seededBytes(`aead:${alg}:k1`, 32);
    const sizes = [0, 1, 15, 16, 17, 64, 1400, 1450, 9000];
    const stride = 9100;
    const p = packets(sizes, stride);
    const plain = Buffer.from(p.slab);
    const tn = createAeadTable(alg, 4, 'native');
    const tj = createAeadTable(alg, 4, 'node');
    for (const t of [tn, tj]) { t.setKey(0, k0); t.setKey(1, k1); }
    const st = new Uint8Array(sizes.length);
    const a = Buffer.from(p.slab);
    const b = Buffer.from(p.slab);
    assert.equal(tn.sealBatch(a, p.offs, p.lens, p.slots, sizes.length, st), sizes.length);
    assert.equal(tj.sealBatch(b, p.offs, p.lens, p.slots, sizes.length, st), sizes.length);
    assert.ok(a.equals(b), 'same ciphertext and tags');
    assert.ok(!a.equals(plain));
    const olens = p.lens.map((n) => n + 32);
    const c = Buffer.from(a);
    assert.equal(tj.openBatch(a, p.offs, olens, p.slots, sizes.length, st), sizes.length);
    assert.equal(tn.openBatch(c, p.offs, olens, p.slots, sizes.length, st), sizes.length);
    for (let i = 0; i < sizes.length; i++) {
      const o = p.offs[i] + 16;
      assert.ok(a.subarray(o, o + sizes[i]).equals(plain.subarray(o, o + sizes[i])), `node open ${i}`);
      assert.ok(c.subarray(o, o + sizes[i]).equals(plain.subarray(o, o + sizes[i])), `native open ${i}`);
    }
  });
}

for (const backend of ['native', 'node'] as const) {
  test(`${backend}: wrong key, tampered header/body/tag, bad slot, short or out-of-slab descriptors fail`, { skip: backend === 'native' && !native ? 'native AEAD not built' : false }, () => {
    const t = createAeadTable('aes-256-gcm', 4, backend);
    t.setKey(0, seededBytes(`aead:${backend}:k0`, 32));
    t.setKey(1, seededBytes(`aead:${backend}:k1`, 32));
    const p = packets([100], 200);
    const st = new Uint8Array(1);
    assert.equal(t.sealBatch(p.slab, p.offs, p.lens, p.slots, 1, st), 1);
    const sealed = Buffer.from(p.slab);
    const olen = new Uint32Array([132]);
    const tryOpen = (mut: (b: Buffer) => void, slots = p.slots, lens = olen, offs = p.offs): number => {
      const b = Buffer.from(sealed);
      mut(b);
      return t.openBatch(b, offs, lens, slots, 1, st);
    };
    assert.equal(tryOpen(() => {}), 1);
    assert.equal(tryOpen(() => {}, new Uint32Array([1])), 0, 'other key');
    assert.equal(tryOpen(() => {}, new Uint32Array([2])), 0, 'empty slot');
    assert.equal(tryOpen(() => {}, new Uint32Array([99])), 0, 'slot out of range');
    assert.equal(tryOpen((b) => { b[p.offs[0] + 1] ^= 1; }), 0, 'header (AAD) bit');
    assert.equal(tryOpen((b) => { b[p.offs[0] + 9] ^= 0x80; }), 0, 'counter (nonce) bit');
    assert.equal(tryOpen((b) => { b[p.offs[0] + 50] ^= 4; }), 0, 'body bit');
    assert.equal(tryOpen((b) => { b[p.offs[0] + 131] ^= 1; }), 0, 'tag bit');
    assert.equal(tryOpen(() => {}, p.slots, new Uint32Array([31])), 0, 'shorter than header + tag');
    assert.equal(tryOpen(() => {}, p.slots, new Uint32Array([131])), 0, 'truncated by one');
    assert.equal(tryOpen(() => {}, p.slots, new Uint32Array([133])), 0, 'extended by one');
    assert.equal(tryOpen(() => {}, p.slots, new Uint32Array([200]), new Uint32Array([sealed.length - 100])), 0, 'past the slab end');
    // seal refuses descriptors whose tag would not fit in the slab
    const small = Buffer.alloc(40);
    assert.equal(t.sealBatch(small, new Uint32Array([0]), new Uint32Array([9]), new Uint32Array([0]), 1, st), 0);
    assert.equal(st[0], 0);
    t.clearKey(0);
    assert.equal(tryOpen(() => {}), 0, 'cleared key');
  });
}

test('native: argument errors throw with a code, never crash', { skip: native ? false : 'native AEAD not built' }, () => {
  const fns = loadNativeAead()!;
  assert.throws(() => fns.aeadCreateTable(7, 4), { code: 'ERR_VXMESH_AEAD' });
  assert.throws(() => fns.aeadCreateTable(0, 0), { code: 'ERR_VXMESH_AEAD' });
  const t = fns.aeadCreateTable(0, 2);
  assert.throws(() => fns.aeadSetKey(t, 5, new Uint8Array(32)), { code: 'ERR_VXMESH_AEAD' });
  assert.throws(() => fns.aeadSetKey(t, 0, new Uint8Array(16)), { code: 'ERR_VXMESH_AEAD' });
  assert.throws(() => fns.aeadSealBatch({} as unknown, new Uint8Array(10), new Uint32Array(1), new Uint32Array(1), new Uint32Array(1), 1, new Uint8Array(1)), { code: 'ERR_VXMESH_AEAD' });
  assert.throws(() => fns.aeadSealBatch(t, new Uint8Array(10), new Uint32Array(1), new Uint32Array(1), new Uint32Array(1), 2, new Uint8Array(1)), { code: 'ERR_VXMESH_AEAD' });
  assert.throws(() => fns.aeadOpenBatch(t, new Uint8Array(10), new Float64Array(1) as unknown as Uint32Array, new Uint32Array(1), new Uint32Array(1), 1, new Uint8Array(1)), { code: 'ERR_VXMESH_AEAD' });
});
