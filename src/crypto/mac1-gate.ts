/**
 * The first gate of handshake admission: mac1 of every initiation/response in a received batch,
 * checked in ONE native call (native/mac1.c, keyed BLAKE2b-128 in C) before any message reaches
 * per-message JS work, the rate limiter, cookies or Diffie-Hellman (handshake-fsm.ts). A flood of
 * forged initiations costs ~0.2 µs each in C instead of ~1 µs of JS (libsodium WASM) plus the
 * per-message dispatch. Without the addon (or with the `node` AEAD backend) the same check runs in
 * JS (handshake.ts checkMac1), message by message.
 */
import { checkMac1 } from './handshake';

interface NativeMac1 {
  mac1Check(slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, count: number, key: Uint8Array, status: Uint8Array): number;
}

let native: NativeMac1 | null | undefined;

/** The addon's mac1Check, or null when the addon is not built or predates it. */
export function loadNativeMac1(): NativeMac1 | null {
  if (native !== undefined) return native;
  native = null;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const mod = require('../native/addon') as { loadAddon(): unknown };
    const a = mod.loadAddon() as Partial<NativeMac1>;
    if (typeof a.mac1Check === 'function') native = a as NativeMac1;
  } catch { /* no addon: the JS check */ }
  return native;
}

export class Mac1Gate {
  readonly backend: 'native' | 'js';
  private readonly fns: NativeMac1 | null;

  /** `key` = mac1Key(our static public key) (32 bytes). */
  constructor(private readonly key: Uint8Array, backend: 'auto' | 'native' | 'js' = 'auto') {
    this.fns = backend === 'js' ? null : loadNativeMac1();
    if (backend === 'native' && !this.fns) throw new Error('Mac1Gate: the native addon has no mac1Check (rebuild it: npm install)');
    this.backend = this.fns ? 'native' : 'js';
  }

  /**
   * status[i] = 1 when message i (slab[offs[i]], lens[i] bytes) is an initiation or response
   * addressed to us (right length, reserved bytes zero, mac1 verifies), else 0. Returns the 1s.
   */
  check(slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, count: number, status: Uint8Array): number {
    if (count === 0) return 0;
    if (this.fns) return this.fns.mac1Check(slab, offs, lens, count, this.key, status);
    let ok = 0;
    for (let i = 0; i < count; i++) {
      const v = checkMac1(slab.subarray(offs[i], offs[i] + lens[i]), this.key) ? 1 : 0;
      status[i] = v;
      ok += v;
    }
    return ok;
  }
}
