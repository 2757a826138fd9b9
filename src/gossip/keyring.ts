/**
 * Cluster keyring: every gossip packet and stream message is encrypted and authenticated with the
 * primary key (XChaCha20-Poly1305 IETF, libsodium); on receive every key is tried (primary first).
 * Rotation without anyone being marked failed: add the new key everywhere → make it primary
 * everywhere → remove the old key everywhere. During each step every member can still read what
 * every other member sends.
 *
 * Envelope: u8 version (1) | 24-byte nonce | ciphertext | 16-byte tag. The version byte is the
 * associated data. Nonces are a random 16-byte per-keyring prefix + a 64-bit counter.
 */
import sodium from 'libsodium-wrappers';
import { ConfigError } from '../errors';

export const KEY_BYTES = 32;
export const ENVELOPE_VERSION = 1;
const NONCE = 24;
const TAG = 16;
/** Bytes an envelope adds around the plaintext. */
export const ENVELOPE_OVERHEAD = 1 + NONCE + TAG;

let ready = false;
/** Resolves once libsodium is initialised; call before constructing a Keyring. */
export async function sodiumReady(): Promise<void> {
  if (ready) return;
  await sodium.ready;
  ready = true;
}

/** Decodes a base64 cluster key; throws ConfigError naming `where` when it is not 32 bytes. */
export function decodeKey(text: string, where = 'key'): Uint8Array {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t)) throw new ConfigError(where, 'cluster key must be base64');
  const b = Buffer.from(t, 'base64');
  if (b.length !== KEY_BYTES) throw new ConfigError(where, `cluster key must be ${KEY_BYTES} bytes, got ${b.length}`);
  return new Uint8Array(b);
}

/** Parses a keyring file: one base64 key per line, the first is primary; '#' comments and blank lines ignored. */
export function parseKeyFile(text: string, path = 'gossip.keyFile'): Uint8Array[] {
  const keys: Uint8Array[] = [];
  text.split('\n').forEach((line, i) => {
    const l = line.replace(/#.*$/, '').trim();
    if (l) keys.push(decodeKey(l, `${path}:${i + 1}`));
  });
  if (keys.length === 0) throw new ConfigError(path, 'no key in keyring file');
  return keys;
}

/** A new random cluster key, base64 (what `vxmesh keygen cluster` prints). */
export async function generateClusterKey(): Promise<string> {
  await sodiumReady();
  return Buffer.from(sodium.randombytes_buf(KEY_BYTES)).toString('base64');
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class Keyring {
  private keys: Uint8Array[];
  private readonly nonce = new Uint8Array(NONCE);
  private counter = 0n;
  private readonly ad = new Uint8Array([ENVELOPE_VERSION]);

  /** `keys[0]` is primary. Requires `await sodiumReady()` first. */
  constructor(keys: Uint8Array[]) {
    if (!ready) throw new Error('Keyring: await sodiumReady() first');
    if (keys.length === 0) throw new ConfigError('gossip.keyFile', 'keyring needs at least one key');
    for (const k of keys) if (k.length !== KEY_BYTES) throw new ConfigError('gossip.keyFile', `key must be ${KEY_BYTES} bytes`);
    this.keys = keys.map((k) => new Uint8Array(k));
    this.nonce.set(sodium.randombytes_buf(16), 0);
  }

  get size(): number {
    return this.keys.length;
  }

  get primary(): Uint8Array {
    return this.keys[0];
  }

  /** Adds a key (secondary) if not present. */
  add(key: Uint8Array): void {
    if (key.length !== KEY_BYTES) throw new ConfigError('key', `key must be ${KEY_BYTES} bytes`);
    if (!this.keys.some((k) => eq(k, key))) this.keys.push(new Uint8Array(key));
  }

  /** Makes an installed key primary. */
  use(key: Uint8Array): void {
    const i = this.keys.findIndex((k) => eq(k, key));
    if (i < 0) throw new ConfigError('key', 'key is not in the keyring');
    const [k] = this.keys.splice(i, 1);
    this.keys.unshift(k);
  }

  /** Removes a secondary key; removing the primary is refused. */
  remove(key: Uint8Array): void {
    const i = this.keys.findIndex((k) => eq(k, key));
    if (i === 0) throw new ConfigError('key', 'cannot remove the primary key; make another key primary first');
    if (i > 0) this.keys.splice(i, 1);
  }

  /** Replaces all keys (reload of the key file). */
  replace(keys: Uint8Array[]): void {
    if (keys.length === 0) throw new ConfigError('gossip.keyFile', 'keyring needs at least one key');
    this.keys = keys.map((k) => new Uint8Array(k));
  }

  private nextNonce(): Uint8Array {
    this.counter++;
    let c = this.counter;
    for (let i = NONCE - 1; i >= 16; i--) {
      this.nonce[i] = Number(c & 0xffn);
      c >>= 8n;
    }
    return this.nonce;
  }

  seal(plain: Uint8Array): Uint8Array {
    const nonce = this.nextNonce();
    const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, this.ad, null, nonce, this.keys[0]);
    const out = new Uint8Array(1 + NONCE + ct.length);
    out[0] = ENVELOPE_VERSION;
    out.set(nonce, 1);
    out.set(ct, 1 + NONCE);
    return out;
  }

  /**
   * Opens an envelope with any key. Returns null when no key authenticates it or it is not an
   * envelope (too short, wrong version, larger than `maxLen`): the caller counts the drop.
   */
  open(env: Uint8Array, maxLen: number): Uint8Array | null {
    if (env.length < ENVELOPE_OVERHEAD || env.length > maxLen + ENVELOPE_OVERHEAD || env[0] !== ENVELOPE_VERSION) return null;
    const nonce = env.subarray(1, 1 + NONCE);
    const ct = env.subarray(1 + NONCE);
    for (const k of this.keys) {
      try {
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ct, this.ad, nonce, k);
      } catch {
        // Not this key: try the next one.
      }
    }
    return null;
  }
}
