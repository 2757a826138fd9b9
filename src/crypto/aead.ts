/**
 * Batched AEAD over packets in a slab, transformed in place (the data path's crypto stage).
 *
 * Packet layout (docs/wire-format.md, "data message"): a 16-byte header authenticated as AAD
 * (bytes 8..15 = the 64-bit little-endian counter that forms the nonce), then the body
 * encrypted in place, then a 16-byte tag. Nonce = 4 zero bytes ‖ counter (LE), as WireGuard.
 *
 * Two backends with the same contract, tested against each other:
 *  - `native`: one addon call per batch over Node's bundled OpenSSL EVP (native/aead.c), key
 *    schedule done once per key. This is the production path.
 *  - `node`: node:crypto createCipheriv per packet. Slower (an object per packet) but needs no
 *    addon; used when the addon is not built and as the reference in tests.
 *
 * Numbers that chose the algorithm: bench/micro/aead.ts and docs/wire-format.md §AEAD.
 */

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { VxmeshError } from '../errors';

export const ERR_AEAD = 'ERR_VXMESH_AEAD';

export type AeadAlg = 'aes-256-gcm' | 'chacha20-poly1305';

export const AEAD_HEADER_LEN = 16;
export const AEAD_TAG_LEN = 16;
export const AEAD_KEY_LEN = 32;

/** A table of keys (one per slot) and the batch operations over them. */
export interface AeadTable {
  readonly alg: AeadAlg;
  readonly slots: number;
  readonly backend: 'native' | 'node';
  /** Installs a 32-byte key in `slot` (replacing any). */
  setKey(slot: number, key: Uint8Array): void;
  /** Forgets the key in `slot`; packets naming it then fail. */
  clearKey(slot: number): void;
  /**
   * Seals descriptors [0, count): the header is already at `offs[i]`, `lens[i]` plaintext bytes
   * follow it and are encrypted in place; the tag is written after them (so the slab needs
   * `offs[i] + 16 + lens[i] + 16` bytes). `status[i]` = 1 when sealed. Returns how many sealed.
   */
  sealBatch(slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, slots: Uint32Array, count: number, status: Uint8Array): number;
  /**
   * Opens descriptors [0, count): `lens[i]` is the whole packet (header + body + tag). On success
   * the body is decrypted in place and `status[i]` = 1; otherwise 0 (bytes of the body are then
   * undefined). Returns how many authenticated.
   */
  openBatch(slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, slots: Uint32Array, count: number, status: Uint8Array): number;
  /**
   * Native backend only (undefined otherwise): cuts TSO super-frame `frame` (virtio gso type, MSS)
   * into TCP segments and seals each behind `prefix` (16-byte data header whose counter is the base
   * + 8-byte VXLAN header); segment i gets counter base + i. Sealed datagram i is at
   * `out[i * stride]`, `outLens[i]` bytes, all but the last exactly `stride` (UDP GSO layout);
   * stride in `outLens[outLens.length - 1]`. Returns the count; -1 not segmentable, -2 no room,
   * -3 no key.
   */
  sealTso?(slot: number, frame: Uint8Array, gsoType: number, mss: number, prefix: Uint8Array, out: Uint8Array, outLens: Uint32Array): number;
}

interface NativeAeadFns {
  aeadCreateTable(alg: number, slots: number): unknown;
  aeadSetKey(t: unknown, slot: number, key: Uint8Array): void;
  aeadClearKey(t: unknown, slot: number): void;
  aeadSealBatch(t: unknown, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, slots: Uint32Array, count: number, status: Uint8Array): number;
  aeadOpenBatch(t: unknown, slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, slots: Uint32Array, count: number, status: Uint8Array): number;
  /** Present in addon builds that include it (native/aead.c + gso.c). */
  aeadSealTso?(t: unknown, slot: number, frame: Uint8Array, gsoType: number, mss: number, prefix: Uint8Array, out: Uint8Array, outLens: Uint32Array): number;
}

let nativeFns: NativeAeadFns | null | undefined;

function hasAead(x: unknown): x is NativeAeadFns {
  return !!x && typeof (x as NativeAeadFns).aeadSealBatch === 'function';
}

/**
 * The addon's AEAD functions, or null when no addon with them is built. Looks in the main addon
 * (src/native/addon.ts) first, then the standalone build (build/aead/vxmesh_aead.node, see
 * bench/micro/aead.ts).
 */
export function loadNativeAead(): NativeAeadFns | null {
  if (nativeFns !== undefined) return nativeFns;
  nativeFns = null;
  const root = path.resolve(__dirname, '..', '..', '..');
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const mod = require(path.join(__dirname, '..', 'native', 'addon.js')) as Record<string, unknown>;
    for (const cand of [mod, mod.addon, typeof mod.loadAddon === 'function' ? (mod.loadAddon as () => unknown)() : null,
      typeof mod.addon === 'function' ? (mod.addon as () => unknown)() : null]) {
      if (hasAead(cand)) { nativeFns = cand; return nativeFns; }
    }
  } catch { /* main addon not built or without AEAD: try the standalone build */ }
  for (const p of [path.join(root, 'build', 'aead', 'vxmesh_aead.node')]) {
    if (!fs.existsSync(p)) continue;
    try {
      const m = require(p) as unknown;
      if (hasAead(m)) { nativeFns = m; return nativeFns; }
    } catch { /* ignore: fall back to node:crypto */ }
  }
  return nativeFns;
}

class NativeTable implements AeadTable {
  readonly backend = 'native' as const;
  private readonly t: unknown;
  readonly sealTso?: AeadTable['sealTso'];
  constructor(private readonly fns: NativeAeadFns, readonly alg: AeadAlg, readonly slots: number) {
    this.t = fns.aeadCreateTable(alg === 'aes-256-gcm' ? 0 : 1, slots);
    const tso = fns.aeadSealTso;
    if (typeof tso === 'function') {
      this.sealTso = (slot, frame, gsoType, mss, prefix, out, outLens) => tso(this.t, slot, frame, gsoType, mss, prefix, out, outLens);
    }
  }
  setKey(slot: number, key: Uint8Array): void {
    checkKey(key);
    this.fns.aeadSetKey(this.t, slot, key);
  }
  clearKey(slot: number): void {
    this.fns.aeadClearKey(this.t, slot);
  }
  sealBatch(slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, slots: Uint32Array, count: number, status: Uint8Array): number {
    return this.fns.aeadSealBatch(this.t, slab, offs, lens, slots, count, status);
  }
  openBatch(slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, slots: Uint32Array, count: number, status: Uint8Array): number {
    return this.fns.aeadOpenBatch(this.t, slab, offs, lens, slots, count, status);
  }
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== AEAD_KEY_LEN) {
    throw new VxmeshError(ERR_AEAD, 'AEAD key must be 32 bytes');
  }
}

/** node:crypto backend: same bytes on the wire as the native one. */
class NodeTable implements AeadTable {
  readonly backend = 'node' as const;
  private readonly keys: (Buffer | null)[];
  private readonly iv = Buffer.alloc(12);
  constructor(readonly alg: AeadAlg, readonly slots: number) {
    this.keys = new Array(slots).fill(null);
  }
  setKey(slot: number, key: Uint8Array): void {
    checkKey(key);
    if (!(slot >= 0 && slot < this.slots)) throw new VxmeshError(ERR_AEAD, 'AEAD slot out of range');
    this.keys[slot] = Buffer.from(key);
  }
  clearKey(slot: number): void {
    const k = this.keys[slot];
    if (k) k.fill(0);
    this.keys[slot] = null;
  }
  sealBatch(slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, slots: Uint32Array, count: number, status: Uint8Array): number {
    let done = 0;
    for (let i = 0; i < count; i++) {
      status[i] = 0;
      const key = this.keys[slots[i]];
      const off = offs[i];
      const n = lens[i];
      if (!key || off + AEAD_HEADER_LEN + n + AEAD_TAG_LEN > slab.length) continue;
      const buf = Buffer.from(slab.buffer, slab.byteOffset + off, AEAD_HEADER_LEN + n + AEAD_TAG_LEN);
      this.iv.fill(0, 0, 4);
      buf.copy(this.iv, 4, 8, 16);
      const c = crypto.createCipheriv(this.alg, key, this.iv, { authTagLength: AEAD_TAG_LEN } as crypto.CipherGCMOptions);
      (c as crypto.CipherGCM).setAAD(buf.subarray(0, AEAD_HEADER_LEN));
      const body = buf.subarray(AEAD_HEADER_LEN, AEAD_HEADER_LEN + n);
      const out = c.update(body);
      out.copy(body);
      c.final();
      (c as crypto.CipherGCM).getAuthTag().copy(buf, AEAD_HEADER_LEN + n);
      status[i] = 1;
      done++;
    }
    return done;
  }
  openBatch(slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, slots: Uint32Array, count: number, status: Uint8Array): number {
    let done = 0;
    for (let i = 0; i < count; i++) {
      status[i] = 0;
      const key = this.keys[slots[i]];
      const off = offs[i];
      const len = lens[i];
      if (!key || len < AEAD_HEADER_LEN + AEAD_TAG_LEN || off + len > slab.length) continue;
      const buf = Buffer.from(slab.buffer, slab.byteOffset + off, len);
      const n = len - AEAD_HEADER_LEN - AEAD_TAG_LEN;
      this.iv.fill(0, 0, 4);
      buf.copy(this.iv, 4, 8, 16);
      const d = crypto.createDecipheriv(this.alg, key, this.iv, { authTagLength: AEAD_TAG_LEN } as crypto.CipherGCMOptions);
      (d as crypto.DecipherGCM).setAAD(buf.subarray(0, AEAD_HEADER_LEN));
      (d as crypto.DecipherGCM).setAuthTag(buf.subarray(AEAD_HEADER_LEN + n));
      const body = buf.subarray(AEAD_HEADER_LEN, AEAD_HEADER_LEN + n);
      let out: Buffer;
      try {
        out = d.update(body);
        d.final();
      } catch {
        continue;
      }
      out.copy(body);
      status[i] = 1;
      done++;
    }
    return done;
  }
}

/**
 * Creates a key table. `backend` 'auto' (default) uses the addon when built, else node:crypto;
 * 'native' throws ERR_VXMESH_AEAD when the addon has no AEAD functions.
 */
export function createAeadTable(alg: AeadAlg, slots: number, backend: 'auto' | 'native' | 'node' = 'auto'): AeadTable {
  if (!Number.isInteger(slots) || slots < 1 || slots > 65536) throw new VxmeshError(ERR_AEAD, 'AEAD table slots must be 1..65536');
  if (backend !== 'node') {
    const fns = loadNativeAead();
    if (fns) return new NativeTable(fns, alg, slots);
    if (backend === 'native') throw new VxmeshError(ERR_AEAD, 'native AEAD not available (addon not built)');
  }
  return new NodeTable(alg, slots);
}
