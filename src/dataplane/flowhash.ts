/**
 * Inner-flow hash: picks the UDP source socket of an outbound VXLAN packet (RFC 7348 §5: the source
 * port is a hash of the inner headers, giving ECMP entropy while keeping every flow on one path).
 *
 * Hashed fields, read in place (no allocation): destination and source MAC and the EtherType (behind
 * one VLAN tag, whose VID is hashed too); for IPv4 and IPv6 the addresses and protocol; for TCP and
 * UDP also the ports (not for IPv4 fragments, which carry no ports after the first one, so that a
 * fragmented flow stays on one path). IPv6 extension headers are not walked: a packet whose next
 * header is not TCP/UDP/SCTP hashes on addresses + next header only.
 *
 * `srcIdx = flowHash(...) % udp.sourceCount` is stable for a flow for the process lifetime (the
 * seed is fixed, so it is also stable across restarts — deliberately: tests and captures can
 * predict it).
 */
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN } from './ethernet';

const SEED = 0x9747b28c;
const M1 = 0x9e3779b1 | 0;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_SCTP = 132;

/** Flow hash (30-bit unsigned integer) of the Ethernet frame of `len` bytes at `b[off]`; `len` ≥ 14. */
export function flowHash(b: Uint8Array, off: number, len: number): number {
  // Words are folded in with a multiply-rotate step (cheap, inlined by hand: this runs per frame),
  // then one murmur3 finaliser spreads the bits; ECMP needs spread, not cryptographic strength.
  let h = SEED;
  let w = (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]; // dst MAC
  h = Math.imul(h ^ w, M1);
  h = (h << 13) | (h >>> 19);
  w = (b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]; // dst MAC, src MAC
  h = Math.imul(h ^ w, M1);
  h = (h << 13) | (h >>> 19);
  w = (b[off + 8] << 24) | (b[off + 9] << 16) | (b[off + 10] << 8) | b[off + 11]; // src MAC
  h = Math.imul(h ^ w, M1);
  h = (h << 13) | (h >>> 19);
  let et = (b[off + 12] << 8) | b[off + 13];
  let l3 = off + 14;
  if ((et === ETHERTYPE_VLAN || et === ETHERTYPE_QINQ) && len >= 18) {
    h = Math.imul(h ^ (((b[off + 14] & 0x0f) << 8) | b[off + 15]), M1); // VID
    h = (h << 13) | (h >>> 19);
    et = (b[off + 16] << 8) | b[off + 17];
    l3 = off + 18;
  }
  h = Math.imul(h ^ et, M1);
  h = (h << 13) | (h >>> 19);
  const end = off + len;
  if (et === ETHERTYPE_IPV4 && l3 + 20 <= end && b[l3] >>> 4 === 4) {
    const ihl = (b[l3] & 0x0f) * 4;
    const proto = b[l3 + 9];
    for (let o = l3 + 12; o < l3 + 20; o += 4) {
      h = Math.imul(h ^ ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]), M1);
      h = (h << 13) | (h >>> 19);
    }
    h = Math.imul(h ^ proto, M1);
    h = (h << 13) | (h >>> 19);
    const frag = ((b[l3 + 6] & 0x3f) << 8) | b[l3 + 7]; // MF bit + fragment offset
    const p = l3 + ihl;
    if (ihl >= 20 && frag === 0 && (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP) && p + 4 <= end) {
      h = Math.imul(h ^ ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]), M1);
      h = (h << 13) | (h >>> 19);
    }
  } else if (et === ETHERTYPE_IPV6 && l3 + 40 <= end && b[l3] >>> 4 === 6) {
    const nh = b[l3 + 6];
    for (let o = l3 + 8; o < l3 + 40; o += 4) {
      h = Math.imul(h ^ ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]), M1);
      h = (h << 13) | (h >>> 19);
    }
    h = Math.imul(h ^ nh, M1);
    h = (h << 13) | (h >>> 19);
    const p = l3 + 40;
    if ((nh === IPPROTO_TCP || nh === IPPROTO_UDP || nh === IPPROTO_SCTP) && p + 4 <= end) {
      h = Math.imul(h ^ ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]), M1);
      h = (h << 13) | (h >>> 19);
    }
  }
  // The length is deliberately not mixed in: packets of one flow differ in length.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  // 30 bits: a small integer in V8 (no HeapNumber boxing when the call is not inlined).
  return h >>> 2;
}

/** Source socket index for the frame: `flowHash % sourceCount` (0 when there is one socket). */
export function pickSource(buf: Uint8Array, off: number, len: number, sourceCount: number): number {
  return sourceCount <= 1 ? 0 : flowHash(buf, off, len) % sourceCount;
}
