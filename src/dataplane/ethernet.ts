/**
 * Ethernet helpers that work in place on a buffer at an offset (no allocation on the hot path):
 * MAC addresses as 48-bit numbers, the group (multicast/broadcast) bit, the EtherType behind an
 * optional 802.1Q/802.1ad tag, and the few ARP / IPv4 / IPv6 offsets the data path needs.
 *
 * MACs as numbers: `hi16 * 2^32 + lo32`, exact in a double (< 2^53). On the hot path the two halves
 * are read separately (`macHi`/`macLo`, both small integers) so nothing is boxed.
 */

export const ETH_HLEN = 14;
export const ETH_ALEN = 6;
export const VLAN_HLEN = 4;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_VLAN = 0x8100; // 802.1Q
export const ETHERTYPE_QINQ = 0x88a8; // 802.1ad

export const MAC_BROADCAST = 0xffffffffffff;
const TWO32 = 0x100000000;

/** Upper 16 bits of the MAC at `buf[off]`. */
export function macHi(buf: Uint8Array, off: number): number {
  return (buf[off] << 8) | buf[off + 1];
}

/** Lower 32 bits of the MAC at `buf[off]` (unsigned). */
export function macLo(buf: Uint8Array, off: number): number {
  return ((buf[off + 2] << 24) | (buf[off + 3] << 16) | (buf[off + 4] << 8) | buf[off + 5]) >>> 0;
}

/** The MAC at `buf[off]` as a 48-bit number. */
export function readMac(buf: Uint8Array, off: number): number {
  return macHi(buf, off) * TWO32 + macLo(buf, off);
}

/** Writes the 48-bit MAC number `mac` at `buf[off]`. */
export function writeMac(buf: Uint8Array, off: number, mac: number): void {
  const hi = Math.floor(mac / TWO32);
  const lo = mac >>> 0;
  buf[off] = (hi >>> 8) & 0xff;
  buf[off + 1] = hi & 0xff;
  buf[off + 2] = lo >>> 24;
  buf[off + 3] = (lo >>> 16) & 0xff;
  buf[off + 4] = (lo >>> 8) & 0xff;
  buf[off + 5] = lo & 0xff;
}

/** Group bit (I/G, least significant bit of the first octet): multicast or broadcast. */
export function isGroupMac(buf: Uint8Array, off: number): boolean {
  return (buf[off] & 1) !== 0;
}

/** All-zero MAC. */
export function isZeroMac(buf: Uint8Array, off: number): boolean {
  return (buf[off] | buf[off + 1] | buf[off + 2] | buf[off + 3] | buf[off + 4] | buf[off + 5]) === 0;
}

/** True when the 6 bytes at `a[ao]` equal those at `b[bo]`. */
export function macEquals(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  return (
    a[ao] === b[bo] && a[ao + 1] === b[bo + 1] && a[ao + 2] === b[bo + 2] &&
    a[ao + 3] === b[bo + 3] && a[ao + 4] === b[bo + 4] && a[ao + 5] === b[bo + 5]
  );
}

/** Group bit of a MAC number. */
export function isGroupMacNumber(mac: number): boolean {
  return (Math.floor(mac / 0x10000000000) & 1) !== 0;
}

/** `aa:bb:cc:dd:ee:ff` (lowercase). */
export function macToString(mac: number): string {
  let s = '';
  const hi = Math.floor(mac / TWO32);
  const lo = mac >>> 0;
  const bytes = [hi >>> 8, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff];
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + bytes[i].toString(16).padStart(2, '0');
  return s;
}

/** Parses `aa:bb:cc:dd:ee:ff` (or `-` separated, any case) into a MAC number; -1 when invalid. */
export function parseMac(text: string): number {
  if (!/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(text)) return -1;
  let v = 0;
  for (const part of text.split(/[:-]/)) v = v * 256 + parseInt(part, 16);
  return v;
}

/** Accepts a MAC as number or text; throws TypeError when invalid. */
export function toMacNumber(mac: number | string): number {
  const v = typeof mac === 'number' ? mac : parseMac(mac);
  if (!Number.isInteger(v) || v < 0 || v > MAC_BROADCAST) throw new TypeError(`not a MAC address: ${String(mac)}`);
  return v;
}

/** EtherType field right after the MACs (may be a VLAN TPID). `len` must be ≥ 14. */
export function outerEthertype(buf: Uint8Array, off: number): number {
  return (buf[off + 12] << 8) | buf[off + 13];
}

/** True for an 802.1Q / 802.1ad tag TPID. */
export function isVlanTpid(ethertype: number): boolean {
  return ethertype === ETHERTYPE_VLAN || ethertype === ETHERTYPE_QINQ;
}

/**
 * Length of the L2 header of the frame at `buf[off]` of `len` bytes: 14, or 18 behind one VLAN tag.
 * Returns -1 when the frame is too short for its header. Only one tag is skipped.
 */
export function l2HeaderLen(buf: Uint8Array, off: number, len: number): number {
  if (len < ETH_HLEN) return -1;
  if (isVlanTpid(outerEthertype(buf, off))) return len < ETH_HLEN + VLAN_HLEN ? -1 : ETH_HLEN + VLAN_HLEN;
  return ETH_HLEN;
}

/** EtherType of the payload (behind one VLAN tag if present), or -1 when truncated. */
export function payloadEthertype(buf: Uint8Array, off: number, len: number): number {
  const h = l2HeaderLen(buf, off, len);
  if (h < 0) return -1;
  return (buf[off + h - 2] << 8) | buf[off + h - 1];
}

/** Reads a big-endian uint32 without allocation. */
export function u32(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

/** Reads a big-endian uint16. */
export function u16(buf: Uint8Array, off: number): number {
  return (buf[off] << 8) | buf[off + 1];
}

/** Writes a big-endian uint16. */
export function putU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 8) & 0xff;
  buf[off + 1] = v & 0xff;
}

/** Writes a big-endian uint32. */
export function putU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = (v >>> 16) & 0xff;
  buf[off + 2] = (v >>> 8) & 0xff;
  buf[off + 3] = v & 0xff;
}

/**
 * Writes an Ethernet header (dst, src, ethertype) at `buf[off]`; for tests and locally generated
 * replies. Returns the offset after it.
 */
export function writeEthHeader(buf: Uint8Array, off: number, dst: number, src: number, ethertype: number): number {
  writeMac(buf, off, dst);
  writeMac(buf, off + 6, src);
  putU16(buf, off + 12, ethertype);
  return off + ETH_HLEN;
}
