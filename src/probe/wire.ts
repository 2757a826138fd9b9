/**
 * The probe wire format: data-path probes through the VXLAN port (path MTU, reachability, RTT,
 * liveness). Codec in place on a buffer at an offset, no allocation (hot path: `isProbe` runs on
 * every received datagram, the rest only on probes). docs/wire-format.md has the same table.
 *
 *    0        1        2        3        4        5        6        7
 *   | 0x01   | 'V'    | 'X'    | 'P'    |        VNI (24 bits)     | ver=1  |
 *   | type   | 0      | length (u16)    | token (u32)                       |
 *   | sequence (u32)                    | echoed length (u32, reply)        |
 *   | zero padding up to `length` (requests only)                           |
 *
 * Why it cannot be confused with tenant traffic: byte 0 has the VXLAN I flag (0x08) CLEAR. The
 * Linux kernel's VXLAN receive path drops any datagram without the I flag before it looks at the
 * VNI (nothing reaches a bridge, nothing is learned or flooded), and a vxmesh agent without this
 * stage drops it as `no_i_flag`. 0x01 is the VXLAN-GPE "O" (OAM) bit, which is what a probe is; a
 * kernel VXLAN-GPE device drops OAM packets too. Bytes 1–3 are non-zero, so the cipher's
 * `isEnvelope` (type 1..4 followed by three zero bytes) never takes a plaintext probe for a sealed
 * message. The VNI names a network both hosts serve: admission (plaintext) and session checks
 * (encrypted: probes travel sealed inside the session like any VXLAN packet) run against it.
 *
 * `length` is the probe's own length (plaintext, before sealing): a request padded to the size
 * under test; the receiver checks it against what arrived (truncation is a counted drop). A
 * reply is always exactly `PROBE_HLEN` bytes and echoes token, sequence and the length received,
 * so a reply never amplifies and carries nothing the requester did not send.
 */

export const PROBE_HLEN = 24;
/** Byte 0: the VXLAN-GPE O (OAM) bit; the VXLAN I flag (0x08) is clear. */
export const PROBE_FLAGS = 0x01;
export const PROBE_MAGIC_1 = 0x56; // 'V'
export const PROBE_MAGIC_2 = 0x58; // 'X'
export const PROBE_MAGIC_3 = 0x50; // 'P'
export const PROBE_VERSION = 1;
export const PROBE_REQUEST = 1;
export const PROBE_REPLY = 2;

/** `parseProbe` results: 0 = valid, else the reason (index into PROBE_DROP_REASONS). */
export const PROBE_OK = -1;

/** Reasons a received probe is dropped (each counted: vxmesh_probe_drops_total{reason}). */
export const PROBE_DROP_REASONS = [
  'truncated',       // shorter than the probe header, or `length` differs from what arrived
  'bad_version',     // version byte is not 1
  'bad_type',        // type is neither request nor reply, or a reserved byte is set
  'unknown_vni',     // the VNI is not a network of this host
  'not_admitted',    // plaintext network: the source is not a known host of the VNI (admission.ts)
  'unauthenticated', // encrypted network: the probe did not arrive sealed in a session, or its host does not serve the VNI
  'unexpected_reply',// a reply with another token, an unknown sequence, from another peer, or an echoed length that does not match
  'rate_limited',    // a request over the reply budget (no reply sent)
  'reply_failed',    // the reply could not be sealed or sent
] as const;
export type ProbeDropReason = (typeof PROBE_DROP_REASONS)[number];
export const probeDropIndex = Object.fromEntries(PROBE_DROP_REASONS.map((r, i) => [r, i])) as Record<ProbeDropReason, number>;

/** True when the datagram at `b[off]` is a probe (first 4 bytes only; cheap, every datagram). */
export function isProbe(b: Uint8Array, off: number, len: number): boolean {
  return len >= 4 && b[off] === PROBE_FLAGS && b[off + 1] === PROBE_MAGIC_1 && b[off + 2] === PROBE_MAGIC_2 && b[off + 3] === PROBE_MAGIC_3;
}

/** The probe's VNI (caller checked `len >= PROBE_HLEN`). */
export function probeVni(b: Uint8Array, off: number): number {
  return (b[off + 4] << 16) | (b[off + 5] << 8) | b[off + 6];
}

export function probeType(b: Uint8Array, off: number): number {
  return b[off + 8];
}
export function probeToken(b: Uint8Array, off: number): number {
  return readU32(b, off + 12);
}
export function probeSeq(b: Uint8Array, off: number): number {
  return readU32(b, off + 16);
}
export function probeEchoLen(b: Uint8Array, off: number): number {
  return readU32(b, off + 20);
}

/**
 * Validates the probe of `len` bytes at `b[off]` (`isProbe` was true): PROBE_OK, or the drop
 * reason's index. The VNI and the sender are checked by the caller.
 */
export function parseProbe(b: Uint8Array, off: number, len: number): number {
  if (len < PROBE_HLEN) return probeDropIndex.truncated;
  if (b[off + 7] !== PROBE_VERSION) return probeDropIndex.bad_version;
  const type = b[off + 8];
  if ((type !== PROBE_REQUEST && type !== PROBE_REPLY) || b[off + 9] !== 0) return probeDropIndex.bad_type;
  const declared = (b[off + 10] << 8) | b[off + 11];
  if (declared !== len) return probeDropIndex.truncated;
  if (type === PROBE_REPLY && len !== PROBE_HLEN) return probeDropIndex.truncated;
  return PROBE_OK;
}

/**
 * Writes a probe of `len` bytes (≥ PROBE_HLEN, ≤ 65535) at `b[off]`: header, then zero padding
 * (requests). `echo` is the echoed length (replies; 0 in requests).
 */
export function writeProbe(b: Uint8Array, off: number, len: number, vni: number, type: number, token: number, seq: number, echo: number): void {
  b[off] = PROBE_FLAGS;
  b[off + 1] = PROBE_MAGIC_1;
  b[off + 2] = PROBE_MAGIC_2;
  b[off + 3] = PROBE_MAGIC_3;
  b[off + 4] = (vni >>> 16) & 0xff;
  b[off + 5] = (vni >>> 8) & 0xff;
  b[off + 6] = vni & 0xff;
  b[off + 7] = PROBE_VERSION;
  b[off + 8] = type;
  b[off + 9] = 0;
  b[off + 10] = (len >>> 8) & 0xff;
  b[off + 11] = len & 0xff;
  writeU32(b, off + 12, token);
  writeU32(b, off + 16, seq);
  writeU32(b, off + 20, echo);
  if (len > PROBE_HLEN) b.fill(0, off + PROBE_HLEN, off + len);
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
