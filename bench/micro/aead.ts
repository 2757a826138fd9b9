/**
 * Micro-benchmark: AEAD candidates for the data path, per packet and batched.
 *
 *   node dist/bench/micro/aead.js [--size 1400] [--batch 64] [--ms 400] [--json]
 *
 * Candidates: libsodium-wrappers (WASM) ChaCha20-Poly1305-IETF and AEGIS-256 (it has no
 * AES-GCM: that needs AES-NI, which WASM lacks); node:crypto createCipheriv (AES-256-GCM,
 * ChaCha20-Poly1305), one cipher object per packet; the addon over Node's bundled OpenSSL
 * (native/aead.c), one call per packet and one call per batch, seal and open.
 * The addon is the main one (build/Release/vxmesh.node, native/aead.c is in binding.gyp), or a
 * standalone build of the AEAD code alone: gcc -O2 -fPIC -shared -DNODE_GYP_MODULE_NAME=vxmesh_aead \
 *   -I/usr/include/node native/aead.c native/aead_glue.c native/napi_util.c native/gso.c native/aead_module.c \
 *   -o build/aead/vxmesh_aead.node
 * Every loop is bounded in time (--ms per case). Results feed docs/wire-format.md §AEAD.
 */

import * as crypto from 'node:crypto';
import sodium from 'libsodium-wrappers';

import { AeadAlg, createAeadTable, loadNativeAead } from '../../src/crypto/aead';

interface Result { name: string; pps: number; gbps: number }

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const SIZE = arg('--size', 1400);
const BATCH = arg('--batch', 64);
const MS = arg('--ms', 400);
const results: Result[] = [];

function run(name: string, packetsPerCall: number, fn: () => void): void {
  // warm-up
  const warmEnd = performance.now() + Math.min(100, MS / 4);
  while (performance.now() < warmEnd) fn();
  let calls = 0;
  const t0 = performance.now();
  const end = t0 + MS;
  let now = t0;
  while (now < end) {
    for (let k = 0; k < 16; k++) fn();
    calls += 16;
    now = performance.now();
  }
  const secs = (now - t0) / 1000;
  const pps = (calls * packetsPerCall) / secs;
  const r = { name, pps, gbps: (pps * SIZE * 8) / 1e9 };
  results.push(r);
  if (!process.argv.includes('--json')) {
    console.log(`${name.padEnd(52)} ${(pps / 1e6).toFixed(3).padStart(8)} Mpps ${r.gbps.toFixed(2).padStart(7)} Gbit/s`);
  }
}

async function main(): Promise<void> {
  await sodium.ready;
  const key = crypto.randomBytes(32);
  const msg = crypto.randomBytes(SIZE);
  const aad = crypto.randomBytes(16);
  const nonce12 = Buffer.alloc(12);
  const aegisNonce = Buffer.alloc(32);

  // libsodium (WASM)
  run('libsodium chacha20-poly1305-ietf seal, per packet', 1, () => {
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(msg, aad, null, nonce12, key);
  });
  const sealed = sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(msg, aad, null, nonce12, key);
  run('libsodium chacha20-poly1305-ietf open, per packet', 1, () => {
    sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(null, sealed.ciphertext, sealed.mac, aad, nonce12, key);
  });
  run('libsodium aegis256 seal, per packet', 1, () => {
    sodium.crypto_aead_aegis256_encrypt_detached(msg, aad, null, aegisNonce, key);
  });

  // node:crypto, one cipher object per packet
  for (const alg of ['aes-256-gcm', 'chacha20-poly1305'] as const) {
    run(`node:crypto ${alg} seal, per packet`, 1, () => {
      const c = crypto.createCipheriv(alg, key, nonce12, { authTagLength: 16 } as crypto.CipherGCMOptions) as crypto.CipherGCM;
      c.setAAD(aad);
      c.update(msg);
      c.final();
      c.getAuthTag();
    });
  }

  // tables: node backend (batch API over node:crypto) and native
  const backends: ('node' | 'native')[] = loadNativeAead() ? ['node', 'native'] : ['node'];
  if (!loadNativeAead()) console.log('(native AEAD not built: see the header of this file)');
  for (const backend of backends) {
    for (const alg of ['aes-256-gcm', 'chacha20-poly1305'] as AeadAlg[]) {
      const t = createAeadTable(alg, 4, backend);
      t.setKey(0, key);
      const stride = 16 + SIZE + 16 + 16;
      const slab = Buffer.alloc(stride * BATCH);
      const offs = new Uint32Array(BATCH);
      const lens = new Uint32Array(BATCH);
      const olens = new Uint32Array(BATCH);
      const slots = new Uint32Array(BATCH);
      const status = new Uint8Array(BATCH);
      for (let i = 0; i < BATCH; i++) {
        offs[i] = i * stride;
        lens[i] = SIZE;
        olens[i] = SIZE + 32;
        slab.writeBigUInt64LE(BigInt(i + 1), offs[i] + 8);
      }
      for (const batch of [1, BATCH]) {
        run(`${backend} ${alg} seal, ${batch === 1 ? 'per packet' : `batch ${batch}`}`, batch, () => {
          t.sealBatch(slab, offs, lens, slots, batch, status);
        });
      }
      // open needs valid packets: seal a fresh copy each time would bias; instead seal once and
      // open a pristine copy restored by a memcpy (the copy costs are included, and small).
      t.sealBatch(slab, offs, lens, slots, BATCH, status);
      const pristine = Buffer.from(slab);
      for (const batch of [1, BATCH]) {
        run(`${backend} ${alg} open (+copy), ${batch === 1 ? 'per packet' : `batch ${batch}`}`, batch, () => {
          pristine.copy(slab, 0, 0, batch === 1 ? stride : slab.length);
          const ok = t.openBatch(slab, offs, olens, slots, batch, status);
          if (ok !== batch) throw new Error('open failed in bench');
        });
      }
    }
  }
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ size: SIZE, batch: BATCH, ms: MS, cpu: cpuModel(), node: process.version, openssl: process.versions.openssl, results }, null, 2));
  }
}

function cpuModel(): string {
  try {
    return require('node:os').cpus()[0].model as string;
  } catch {
    return 'unknown';
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
