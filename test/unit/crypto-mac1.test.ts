/**
 * The mac1 gate of handshake admission (src/crypto/mac1-gate.ts, native/mac1.c): the native keyed
 * BLAKE2b equals libsodium's crypto_generichash; a batch of forged initiations and responses (bad
 * mac1, wrong length, non-zero reserved bytes) with one genuine initiation among them costs exactly
 * one Diffie-Hellman — the genuine one — and every forgery is counted `hsBadMac`, with the
 * native gate (one call per batch) and with the JS fallback alike.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import sodium from 'libsodium-wrappers';

import { FakeClock } from '../../src/clock';
import type { Endpoint } from '../../src/config/types';
import { ADDR_LEN, endpointToRecord } from '../../src/dataplane/addr';
import { CIPHER_CONSUMED, CIPHER_FAILED, type CipherBatch } from '../../src/dataplane/cipher-seam';
import { seededRandom } from '../../src/dataplane/memory-io';
import { checkMac1 } from '../../src/crypto/handshake';
import { cryptoReady, generateHostKey } from '../../src/crypto/keys';
import { Mac1Gate, loadNativeMac1 } from '../../src/crypto/mac1-gate';
import { MSG_INITIATION, MSG_RESPONSE, mac1Key } from '../../src/crypto/noise';
import { SessionManager } from '../../src/crypto/session';

const native = loadNativeMac1();
const nativeSkip = native ? false : 'native addon not built (npm install)';
const ep = (n: number): Endpoint => ({ address: `198.18.0.${n}`, port: 4789, family: 4 });

test('crypto ready', async () => { await cryptoReady(); });

test('native keyed BLAKE2b equals libsodium crypto_generichash (key 0..64, digest 16..64, input 0..300 bytes)', { skip: nativeSkip }, () => {
  const b2 = (native as unknown as { blake2b(out: Uint8Array, key: Uint8Array, data: Uint8Array): void }).blake2b;
  const rnd = seededRandom(11);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
  for (const klen of [0, 1, 16, 32, 64]) {
    for (const outlen of [16, 32, 64]) {
      for (const n of [0, 1, 60, 116, 127, 128, 129, 255, 256, 257, 300]) {
        const key = bytes(klen);
        const data = bytes(n);
        const out = new Uint8Array(outlen);
        b2(out, key, data);
        assert.deepEqual(Buffer.from(out), Buffer.from(sodium.crypto_generichash(outlen, data, klen ? key : null)), `key ${klen} out ${outlen} in ${n}`);
      }
    }
  }
});

test('native mac1Check: argument errors throw with a code, never crash', { skip: nativeSkip }, () => {
  const f = native!.mac1Check.bind(native);
  const o = new Uint32Array(1);
  assert.throws(() => f(new Uint8Array(200), o, new Uint32Array([148]), 1, new Uint8Array(31), new Uint8Array(1)), { code: 'ERR_VXMESH_MAC1' });
  assert.throws(() => f(new Uint8Array(200), o, new Uint32Array([148]), 2, new Uint8Array(32), new Uint8Array(1)), { code: 'ERR_VXMESH_MAC1' });
  assert.throws(() => f(new Uint8Array(200), [0] as never, new Uint32Array([148]), 1, new Uint8Array(32), new Uint8Array(1)), { code: 'ERR_VXMESH_MAC1' });
  // out of the slab: a verdict of 0, no read past the end
  const st = new Uint8Array(2).fill(7);
  assert.equal(f(new Uint8Array(200), new Uint32Array([100, 300]), new Uint32Array([148, 148]), 2, new Uint8Array(32), st), 0);
  assert.deepEqual([...st], [0, 0]);
});

function pair(backend: 'auto' | 'node') {
  const clock = new FakeClock(1000);
  const ka = generateHostKey();
  const kb = generateHostKey();
  const out: Uint8Array[] = [];
  const mk = (key: typeof ka) => new SessionManager({ hostKey: key, clock, wallClock: () => 1.8e12 + clock.now(), jitter: () => 0.5, backend });
  const a = mk(ka);
  const b = mk(kb);
  a.setSendHook((pkt) => out.push(new Uint8Array(pkt)));
  b.setSendHook((pkt) => out.push(new Uint8Array(pkt)));
  a.setPeer(kb.publicKey, ep(2));
  b.setPeer(ka.publicKey, ep(1));
  return { a, b, out, kb };
}

for (const backend of ['auto', 'node'] as const) {
  const gate = backend === 'auto' ? 'native' : 'js';
  test(`${gate} gate: 300 forged handshake messages and 1 genuine initiation in one batch → 1 DH, 300 counted bad mac1`, { skip: gate === 'native' ? nativeSkip : false }, () => {
    const { a, b, out, kb } = pair(backend);
    assert.equal(b.mac1Backend, gate);
    // a genuine initiation from a to b
    const pb = a.peer(Buffer.from(kb.publicKey).toString('base64'))!;
    a.beginHandshake(pb);
    const init = out.splice(0).find((p) => p[0] === MSG_INITIATION)!;
    assert.ok(init && checkMac1(init, mac1Key(kb.publicKey)));
    const rnd = seededRandom(3);
    const N = 301;
    const bt: CipherBatch = {
      slab: Buffer.alloc(N * 160), offs: new Uint32Array(N), lens: new Uint32Array(N), addrs: Buffer.alloc(N * ADDR_LEN),
      vnis: new Uint32Array(N), outOffs: new Uint32Array(N), outLens: new Uint32Array(N), status: new Uint8Array(N), senders: new Uint32Array(N), count: N,
    };
    let forged = 0;
    for (let i = 0; i < N; i++) {
      const off = i * 160;
      bt.offs[i] = off;
      endpointToRecord(ep(1)).copy(bt.addrs, i * ADDR_LEN);
      bt.status[i] = CIPHER_FAILED;
      if (i === 150) {
        bt.slab.set(init, off);
        bt.lens[i] = init.length;
        continue;
      }
      // random bodies (bad mac1); a few with the genuine body but a wrong length or reserved byte
      const kind = i % 10;
      const src = kind === 7 || kind === 8 ? init : Uint8Array.from({ length: 148 }, () => Math.floor(rnd() * 256));
      bt.slab.set(src, off);
      bt.slab[off] = kind === 5 ? MSG_RESPONSE : MSG_INITIATION;
      bt.slab[off + 1] = bt.slab[off + 2] = bt.slab[off + 3] = 0;
      if (kind === 8) bt.slab[off + 2] = 1;
      bt.lens[i] = kind === 5 ? 92 : kind === 7 ? 147 : 148;
      forged++;
    }
    b.openBatch(bt);
    assert.equal(forged, 300);
    assert.equal(b.counters.hsBadMac, 300);
    assert.equal(b.counters.hsDh, 1, 'DH only for the genuine initiation');
    assert.equal(b.counters.hsInitiationRecv, 1);
    assert.equal(b.counters.hsResponseSent, 1);
    assert.ok([...bt.status].every((s) => s === CIPHER_CONSUMED));
    // the response completes a's handshake: the gate let it through on a's side too
    const resp = out.splice(0).find((p) => p[0] === MSG_RESPONSE)!;
    const rb: CipherBatch = { ...bt, count: 1 };
    rb.slab.set(resp, 0);
    rb.offs[0] = 0;
    rb.lens[0] = resp.length;
    endpointToRecord(ep(2)).copy(rb.addrs, 0);
    a.openBatch(rb);
    assert.equal(a.counters.hsBadMac, 0);
    assert.equal(a.counters.hsDh, 1);
    assert.ok(a.keypairsOf(pb).current, 'a has a session');
  });
}

test('Mac1Gate: native and JS verdicts agree on genuine, forged and malformed messages', { skip: nativeSkip }, () => {
  const k = generateHostKey();
  const key = mac1Key(k.publicKey);
  const n = new Mac1Gate(key, 'native');
  const j = new Mac1Gate(key, 'js');
  const rnd = seededRandom(5);
  const slab = new Uint8Array(64 * 160);
  const offs = new Uint32Array(64);
  const lens = new Uint32Array(64);
  for (let i = 0; i < 64; i++) {
    offs[i] = i * 160;
    lens[i] = [148, 92, 64, 0, 1, 148, 147, 160][i % 8];
    for (let x = 0; x < 160; x++) slab[i * 160 + x] = Math.floor(rnd() * 256);
    slab[i * 160] = 1 + (i % 3);
    slab[i * 160 + 1] = slab[i * 160 + 2] = slab[i * 160 + 3] = 0;
    if (i % 4 === 0) { // a genuine mac1 on some
      const m = slab.subarray(i * 160, i * 160 + lens[i]);
      if (lens[i] >= 32) m.set(sodium.crypto_generichash(16, m.subarray(0, lens[i] - 32), key), lens[i] - 32);
    }
  }
  const sn = new Uint8Array(64);
  const sj = new Uint8Array(64);
  const cn = n.check(slab, offs, lens, 64, sn);
  const cj = j.check(slab, offs, lens, 64, sj);
  assert.deepEqual([...sn], [...sj]);
  assert.equal(cn, cj);
  assert.ok(cn > 0 && cn < 64, `${cn} of 64 genuine`);
});
