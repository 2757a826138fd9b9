/**
 * Host identity: the long-term X25519 keypair that authenticates this host in handshakes.
 *
 * File format (`node.keyFile`, `vxmesh keygen host`): one line, the 32-byte X25519 private key in
 * standard base64 (44 characters), like `wg genkey`. The public key is derived from it and spread
 * by gossip as the node record's `publicKey` (base64, 44 characters).
 *
 * The file is created with mode 0600 when missing (O_CREAT|O_EXCL, so a racing creator never
 * gets its key overwritten); an existing file readable by group or others is reported
 * (`insecureMode`) for the agent to warn about.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import sodium from 'libsodium-wrappers';

import { ConfigError, VxmeshError } from '../errors';

export const ERR_KEY = 'ERR_VXMESH_KEY';
export const KEY_LEN = 32;

export interface HostKey {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

let ready = false;

/** Resolves once libsodium (WASM) is initialised; every other function here needs it. */
export async function cryptoReady(): Promise<void> {
  if (ready) return;
  await sodium.ready;
  ready = true;
}

/** Throws unless `cryptoReady()` has resolved. */
export function assertReady(): void {
  if (!ready) throw new VxmeshError(ERR_KEY, 'crypto used before cryptoReady() resolved');
}

/** base64 (standard, padded) of a 32-byte key. */
export function encodeKey(k: Uint8Array): string {
  return Buffer.from(k).toString('base64');
}

/** Parses a base64 32-byte key; throws ERR_VXMESH_KEY naming `what` otherwise. */
export function decodeKey(s: string, what = 'key'): Uint8Array {
  const t = s.trim();
  if (!/^[A-Za-z0-9+/]{43}=$/.test(t)) {
    throw new VxmeshError(ERR_KEY, `${what}: expected 32 bytes in base64 (44 characters)`);
  }
  return new Uint8Array(Buffer.from(t, 'base64'));
}

/** The X25519 public key of a private key. */
export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  assertReady();
  if (privateKey.length !== KEY_LEN) throw new VxmeshError(ERR_KEY, 'private key must be 32 bytes');
  return sodium.crypto_scalarmult_base(privateKey);
}

/** A fresh host keypair from libsodium's CSPRNG. */
export function generateHostKey(): HostKey {
  assertReady();
  const privateKey = sodium.randombytes_buf(KEY_LEN);
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

export function hostKeyFromPrivate(privateKey: Uint8Array): HostKey {
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

export interface LoadedHostKey extends HostKey {
  readonly path: string;
  /** True when this call created the file. */
  readonly created: boolean;
  /** True when the existing file is readable or writable by group/others. */
  readonly insecureMode: boolean;
}

/**
 * Loads the host key from `file`, creating it (mode 0600, parent directory 0700 if missing)
 * with a fresh key when it does not exist. Throws ConfigError (path `node.keyFile`) when the
 * file cannot be read or does not hold a key.
 */
export function loadOrCreateHostKey(file: string): LoadedHostKey {
  assertReady();
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError('node.keyFile', `cannot read ${abs}: ${(e as Error).message}`);
    }
    return createKeyFile(abs);
  }
  let priv: Uint8Array;
  try {
    priv = decodeKey(text, abs);
  } catch (e) {
    throw new ConfigError('node.keyFile', (e as Error).message);
  }
  const mode = fs.statSync(abs).mode & 0o777;
  return { ...hostKeyFromPrivate(priv), path: abs, created: false, insecureMode: (mode & 0o077) !== 0 };
}

function createKeyFile(abs: string): LoadedHostKey {
  const key = generateHostKey();
  try {
    fs.mkdirSync(path.dirname(abs), { recursive: true, mode: 0o700 });
    const fd = fs.openSync(abs, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      fs.fchmodSync(fd, 0o600); // umask may have removed bits, never added: make it exact
      fs.writeSync(fd, encodeKey(key.privateKey) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateHostKey(abs); // lost a race
    throw new ConfigError('node.keyFile', `cannot create ${abs}: ${(e as Error).message}`);
  }
  return { ...key, path: abs, created: true, insecureMode: false };
}

/**
 * `vxmesh keygen host [--out FILE]`: without `out`, returns a new private key line to print (the
 * public key goes in `publicKey`); with `out`, writes the key file (0600, refusing to overwrite
 * an existing one) and returns its public key.
 */
export async function keygenHost(out?: string): Promise<{ privateKeyLine: string | null; publicKey: string; path: string | null }> {
  await cryptoReady();
  if (!out) {
    const k = generateHostKey();
    return { privateKeyLine: encodeKey(k.privateKey), publicKey: encodeKey(k.publicKey), path: null };
  }
  const abs = path.resolve(out);
  if (fs.existsSync(abs)) throw new VxmeshError(ERR_KEY, `${abs} exists; refusing to overwrite a host key`);
  const k = loadOrCreateHostKey(abs);
  return { privateKeyLine: null, publicKey: encodeKey(k.publicKey), path: abs };
}
