/**
 * ICMP "fragmentation needed" (IPv4, type 3 code 4, RFC 1191) and ICMPv6 Packet Too Big (type 2,
 * RFC 8201) written back to the sending container on behalf of the frame's destination — as
 * Linux's bridged VXLAN does since 5.9 (iptunnel_pmtud_build_icmp): Ethernet and IP addresses
 * swapped, so the sender's kernel takes it as coming from the peer it talks to and lowers its path
 * MTU for it; TCP adapts its segment size. No allocation: written into the caller's buffer.
 *
 * Not answered (return 0; the frame is still dropped and counted): VLAN-tagged or non-IP frames,
 * IPv4 without DF (the sender allows fragmentation; vxmesh never fragments), non-first IPv4
 * fragments, ICMP/ICMPv6 error messages (never an error about an error), multicast, broadcast or
 * unspecified sources, truncated headers.
 */

import { csumAdd, csumFold } from '../dataplane/checksum';
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_HLEN } from '../dataplane/ethernet';

/** Bytes of the buffer `writeTooBig` may fill. */
export const TOO_BIG_MAX = 256;
/** Bytes of the offending IPv6 packet quoted (header + 80 bytes of what follows). */
const QUOTE_V6 = TOO_BIG_MAX - ETH_HLEN - 40 - 8;

/**
 * Writes the ICMP answer to the frame `b[off, off+len)` into `out[0…]` with next-hop MTU `mtu`
 * (the inner IP MTU: bytes of IP packet that fit); returns its length, or 0 when this frame gets
 * no answer (see the file comment).
 */
export function writeTooBig(b: Uint8Array, off: number, len: number, mtu: number, out: Uint8Array): number {
  if (len < ETH_HLEN + 20) return 0;
  const et = (b[off + 12] << 8) | b[off + 13];
  if (et === ETHERTYPE_IPV4) return v4(b, off, len, mtu, out);
  if (et === ETHERTYPE_IPV6) return v6(b, off, len, mtu, out);
  return 0;
}

function ethernet(b: Uint8Array, off: number, out: Uint8Array, et: number): void {
  // to the sender, from the destination it addressed
  for (let k = 0; k < 6; k++) {
    out[k] = b[off + 6 + k];
    out[6 + k] = b[off + k];
  }
  out[12] = et >>> 8;
  out[13] = et & 0xff;
}

function v4(b: Uint8Array, off: number, len: number, mtu: number, out: Uint8Array): number {
  const ip = off + ETH_HLEN;
  if (b[ip] >>> 4 !== 4) return 0;
  const ihl = (b[ip] & 0x0f) * 4;
  if (ihl < 20 || ETH_HLEN + ihl > len) return 0;
  if ((b[ip + 6] & 0x40) === 0) return 0; // DF clear: not ours to answer
  if (((b[ip + 6] & 0x1f) | b[ip + 7]) !== 0) return 0; // not the first fragment
  const s0 = b[ip + 12];
  if (s0 === 0 || s0 >= 224) return 0; // unspecified, multicast, broadcast
  if (b[ip + 9] === 1) {
    if (ETH_HLEN + ihl >= len) return 0;
    const t = b[ip + ihl];
    if (t === 3 || t === 4 || t === 5 || t === 11 || t === 12) return 0; // an ICMP error
  }
  const quote = Math.min(ihl + 8, len - ETH_HLEN);
  ethernet(b, off, out, ETHERTYPE_IPV4);
  const o = ETH_HLEN;
  const total = 20 + 8 + quote;
  out[o] = 0x45;
  out[o + 1] = 0xc0;
  out[o + 2] = total >>> 8;
  out[o + 3] = total & 0xff;
  out[o + 4] = 0;
  out[o + 5] = 0;
  out[o + 6] = 0;
  out[o + 7] = 0;
  out[o + 8] = 64;
  out[o + 9] = 1;
  out[o + 10] = 0;
  out[o + 11] = 0;
  for (let k = 0; k < 4; k++) {
    out[o + 12 + k] = b[ip + 16 + k]; // from the original destination
    out[o + 16 + k] = b[ip + 12 + k]; // to the original source
  }
  const hc = csumFold(csumAdd(0, out, o, 20));
  out[o + 10] = hc >>> 8;
  out[o + 11] = hc & 0xff;
  const c = o + 20;
  const m = Math.max(68, Math.min(0xffff, mtu));
  out[c] = 3;
  out[c + 1] = 4;
  out[c + 2] = 0;
  out[c + 3] = 0;
  out[c + 4] = 0;
  out[c + 5] = 0;
  out[c + 6] = m >>> 8;
  out[c + 7] = m & 0xff;
  for (let k = 0; k < quote; k++) out[c + 8 + k] = b[ip + k];
  const cc = csumFold(csumAdd(0, out, c, 8 + quote));
  out[c + 2] = cc >>> 8;
  out[c + 3] = cc & 0xff;
  return ETH_HLEN + total;
}

function v6(b: Uint8Array, off: number, len: number, mtu: number, out: Uint8Array): number {
  const ip = off + ETH_HLEN;
  if (len < ETH_HLEN + 40 || b[ip] >>> 4 !== 6) return 0;
  if (b[ip + 8] === 0xff) return 0; // multicast source
  let zero = 0;
  for (let k = 0; k < 16; k++) zero |= b[ip + 8 + k];
  if (zero === 0) return 0; // unspecified source
  if (b[ip + 6] === 58) {
    if (len < ETH_HLEN + 41) return 0;
    if (b[ip + 40] < 128) return 0; // an ICMPv6 error
  }
  const quote = Math.min(QUOTE_V6, len - ETH_HLEN);
  ethernet(b, off, out, ETHERTYPE_IPV6);
  const o = ETH_HLEN;
  const plen = 8 + quote;
  out[o] = 0x60;
  out[o + 1] = 0;
  out[o + 2] = 0;
  out[o + 3] = 0;
  out[o + 4] = plen >>> 8;
  out[o + 5] = plen & 0xff;
  out[o + 6] = 58;
  out[o + 7] = 64;
  for (let k = 0; k < 16; k++) {
    out[o + 8 + k] = b[ip + 24 + k];
    out[o + 24 + k] = b[ip + 8 + k];
  }
  const c = o + 40;
  const m = Math.max(0, mtu) >>> 0;
  out[c] = 2;
  out[c + 1] = 0;
  out[c + 2] = 0;
  out[c + 3] = 0;
  out[c + 4] = (m >>> 24) & 0xff;
  out[c + 5] = (m >>> 16) & 0xff;
  out[c + 6] = (m >>> 8) & 0xff;
  out[c + 7] = m & 0xff;
  for (let k = 0; k < quote; k++) out[c + 8 + k] = b[ip + k];
  // pseudo-header: source, destination, upper-layer length, next header 58
  let s = csumAdd(0, out, o + 8, 32);
  s += plen;
  s += 58;
  s = csumAdd(s, out, c, plen);
  const cc = csumFold(s);
  out[c + 2] = cc >>> 8;
  out[c + 3] = cc & 0xff;
  return ETH_HLEN + 40 + plen;
}
