/**
 * VXLAN header codec (RFC 7348 §5), in place on a buffer at an offset, no allocation.
 *
 *    0                   1                   2                   3
 *   |R|R|R|R|I|R|R|R|            Reserved (24 bits)                 |
 *   |                VXLAN Network Identifier (VNI) |   Reserved    |
 *
 * Validation is as strict as the Linux kernel's default (no GBP/GPE extensions): the I flag must be
 * set and all 39 reserved bits — the 7 flag bits other than I, bytes 1–3 and byte 7 — must be zero.
 * Checks run in the kernel's order: length, then the I flag, then reserved bits; the first failing
 * check is the one reason a datagram is dropped (and counted) for.
 */
import type { RxDropReason } from './counters';

export const VXLAN_HLEN = 8;
/** The I flag (VNI valid), first byte. */
export const VXLAN_FLAG_I = 0x08;
export const VXLAN_VNI_MAX = 0xffffff;
/** IANA VXLAN UDP port. */
export const VXLAN_PORT = 4789;

/** Result of `vxlanCheck`: 0 = valid; otherwise the reason, mapping to `RxDropReason` by name. */
export const VXLAN_OK = 0;
export const VXLAN_TRUNCATED = 1;
export const VXLAN_NO_I_FLAG = 2;
export const VXLAN_RESERVED_BITS = 3;
export type VxlanStatus = 0 | 1 | 2 | 3;

/** Drop reason of each non-zero `VxlanStatus` (index = status). */
export const VXLAN_STATUS_REASON: readonly (RxDropReason | null)[] = [null, 'truncated', 'no_i_flag', 'reserved_bits'];

/** Writes the 8-byte VXLAN header (flags 0x08, `vni`, reserved zero) at `buf[off]`. */
export function writeVxlanHeader(buf: Uint8Array, off: number, vni: number): void {
  buf[off] = VXLAN_FLAG_I;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = (vni >>> 16) & 0xff;
  buf[off + 5] = (vni >>> 8) & 0xff;
  buf[off + 6] = vni & 0xff;
  buf[off + 7] = 0;
}

/** Validates the VXLAN packet of `len` bytes at `buf[off]` (header + inner frame). */
export function vxlanCheck(buf: Uint8Array, off: number, len: number): VxlanStatus {
  if (len < VXLAN_HLEN) return VXLAN_TRUNCATED;
  const flags = buf[off];
  if ((flags & VXLAN_FLAG_I) === 0) return VXLAN_NO_I_FLAG;
  if (((flags & ~VXLAN_FLAG_I) | buf[off + 1] | buf[off + 2] | buf[off + 3] | buf[off + 7]) !== 0) return VXLAN_RESERVED_BITS;
  return VXLAN_OK;
}

/** The VNI of the header at `buf[off]` (caller has checked the length). */
export function vxlanVni(buf: Uint8Array, off: number): number {
  return (buf[off + 4] << 16) | (buf[off + 5] << 8) | buf[off + 6];
}

/**
 * Bit positions of the 39 reserved bits as [byte, mask] pairs, in header order; used by tests and the
 * malformed-input generator.
 */
export const VXLAN_RESERVED_BIT_POSITIONS: readonly (readonly [number, number])[] = (() => {
  const out: [number, number][] = [];
  for (const byte of [0, 1, 2, 3, 7]) {
    for (let bit = 7; bit >= 0; bit--) {
      const mask = 1 << bit;
      if (byte === 0 && mask === VXLAN_FLAG_I) continue;
      out.push([byte, mask]);
    }
  }
  return out;
})();
