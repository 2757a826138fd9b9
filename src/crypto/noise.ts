/**
 * Handshake primitives and message codecs (docs/wire-format.md §Handshake).
 *
 * Noise IKpsk2 as WireGuard uses it, with BLAKE2b (libsodium crypto_generichash) in place of
 * BLAKE2s and keyed BLAKE2b as the PRF in place of HMAC:
 *   HASH(x)      = BLAKE2b-256(x)
 *   PRF(k, x)    = BLAKE2b-256 keyed with k
 *   MAC(k, x)    = BLAKE2b-128 keyed with k              (mac1, mac2, cookie)
 *   KDFn(k, x)   = HKDF with PRF: t0 = PRF(k, x); t1 = PRF(t0, 0x01); ti = PRF(t0, t(i−1) ‖ i)
 *   DH           = X25519 (crypto_scalarmult)
 *   AEAD         = ChaCha20-Poly1305 IETF, nonce 0 (every handshake key is used once)
 *   XAEAD        = XChaCha20-Poly1305 IETF (cookie reply, random 24-byte nonce)
 * Data messages use AES-256-GCM (aead.ts), chosen by measurement.
 *
 * Pure functions over byte arrays; callers must have awaited `cryptoReady()`.
 */

import sodium from 'libsodium-wrappers';

export const CONSTRUCTION = 'vxmesh Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b';
export const IDENTIFIER = 'vxmesh v1 handshake';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';

/** Message types (first byte). Plain VXLAN's first byte has the I flag 0x08 set; these never do. */
export const MSG_INITIATION = 1;
export const MSG_RESPONSE = 2;
export const MSG_COOKIE = 3;
export const MSG_DATA = 4;

export const INITIATION_LEN = 148;
export const RESPONSE_LEN = 92;
export const COOKIE_LEN = 64;
/** Data message: 16-byte header + encrypted (VXLAN header + frame) + 16-byte tag. */
export const DATA_HEADER_LEN = 16;
export const DATA_OVERHEAD = 32;
export const TIMESTAMP_LEN = 12;

const te = new TextEncoder();
const ZERO12 = new Uint8Array(12);
const EMPTY: Uint8Array = new Uint8Array(0);

export function hash(...parts: Uint8Array[]): Uint8Array {
  return sodium.crypto_generichash(32, concat(parts), null);
}
export function prf(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  return sodium.crypto_generichash(32, concat(parts), key);
}
export function mac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return sodium.crypto_generichash(16, data, key);
}

/** HKDF over PRF: returns n 32-byte outputs. */
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const t0 = prf(key, input);
  const out: Uint8Array[] = [];
  let prev: Uint8Array = EMPTY;
  for (let i = 1; i <= n; i++) {
    prev = prf(t0, prev, Uint8Array.of(i));
    out.push(prev);
  }
  t0.fill(0);
  return out;
}

/** X25519; null for a low-order / invalid public key (all-zero shared secret). */
export function dh(priv: Uint8Array, pub: Uint8Array): Uint8Array | null {
  try {
    return sodium.crypto_scalarmult(priv, pub);
  } catch {
    return null;
  }
}

export function aeadSeal(key: Uint8Array, plain: Uint8Array, ad: Uint8Array): Uint8Array {
  return sodium.crypto_aead_chacha20poly1305_ietf_encrypt(plain, ad, null, ZERO12, key);
}
export function aeadOpen(key: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null {
  try {
    return sodium.crypto_aead_chacha20poly1305_ietf_decrypt(null, sealed, ad, ZERO12, key);
  } catch {
    return null;
  }
}
export function xaeadSeal(key: Uint8Array, nonce24: Uint8Array, plain: Uint8Array, ad: Uint8Array): Uint8Array {
  return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, ad, null, nonce24, key);
}
export function xaeadOpen(key: Uint8Array, nonce24: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null {
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed, ad, nonce24, key);
  } catch {
    return null;
  }
}

export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** Lexicographic compare of equal-length byte strings (−1, 0, 1). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return a.length - b.length;
}

/** Chaining key and hash every handshake starts from (constant). */
let initial: { ck: Uint8Array; h: Uint8Array } | null = null;
export function initialState(): { ck: Uint8Array; h: Uint8Array } {
  if (!initial) {
    const ck = hash(te.encode(CONSTRUCTION));
    initial = { ck, h: hash(ck, te.encode(IDENTIFIER)) };
  }
  return { ck: initial.ck.slice(), h: initial.h.slice() };
}

/** Key for mac1 of messages to the host with static public key `pub`: HASH(LABEL_MAC1 ‖ pub). */
export function mac1Key(pub: Uint8Array): Uint8Array {
  return hash(te.encode(LABEL_MAC1), pub);
}
/** Key for cookie replies from the host with static public key `pub`: HASH(LABEL_COOKIE ‖ pub). */
export function cookieKey(pub: Uint8Array): Uint8Array {
  return hash(te.encode(LABEL_COOKIE), pub);
}

/** 12-byte timestamp: seconds (u64 BE) ‖ nanoseconds (u32 BE), from microseconds since epoch. */
export function encodeTimestamp(micros: number): Uint8Array {
  const out = new Uint8Array(TIMESTAMP_LEN);
  const dv = new DataView(out.buffer);
  const secs = Math.floor(micros / 1e6);
  dv.setBigUint64(0, BigInt(secs));
  dv.setUint32(8, Math.floor((micros - secs * 1e6) * 1000));
  return out;
}

export function readU32LE(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
export function writeU32LE(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff; b[o + 1] = (v >>> 8) & 0xff; b[o + 2] = (v >>> 16) & 0xff; b[o + 3] = (v >>> 24) & 0xff;
}
/** Reads a u64 LE counter as a number; returns −1 when ≥ 2^53 (never a valid counter here). */
export function readCounter(b: Uint8Array, o: number): number {
  const lo = readU32LE(b, o);
  const hi = readU32LE(b, o + 4);
  if (hi >= 0x200000) return -1;
  return hi * 0x100000000 + lo;
}
export function writeCounter(b: Uint8Array, o: number, v: number): void {
  writeU32LE(b, o, v >>> 0);
  writeU32LE(b, o + 4, Math.floor(v / 0x100000000));
}
