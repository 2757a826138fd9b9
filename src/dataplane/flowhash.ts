/**
 * Inner-flow hash: picks the UDP source socket of an outbound VXLAN packet (RFC 7348 §5: the source
 * port is a hash of the inner headers, giving ECMP entropy while keeping every flow on one path).
 *
 * Hashed fields, read in place (no allocation): destination and source MAC and the EtherType (behind
 * one VLAN tag, whose VID is hashed too); for IPv4 and IPv6 the addresses and protocol; for TCP and
 * UDP also the ports (not for IPv4 fragments, which carry no ports after the first one, so that a
 * fragmented flow stays on one path). IPv6 extension headers are not walked: a packet whose next
 * header is not TCP/UDP hashes on addresses + next header only. Mixing is murmur3's finaliser.
 *
 * `srcIdx = flowHash(...) % udp.sourceCount` is stable for a flow for the process lifetime (the
 * seed is fixed, so it is also stable across restarts — deliberately: tests and captures can
 * predict it).
 */
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, isVlanTpid } from './ethernet';

const SEED = 0x9747b28c;

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fin(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function w32(b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_SCTP = 132;

function hasPorts(proto: number): boolean {
  return proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP;
}

/** Flow hash (uint32) of the Ethernet frame of `len` bytes at `buf[off]`; `len` ≥ 14. */
export function flowHash(buf: Uint8Array, off: number, len: number): number {
  let h = SEED;
  h = mix(h, w32(buf, off));                 // dst MAC [0..4)
  h = mix(h, w32(buf, off + 4));             // dst MAC [4..6), src MAC [0..2)
  h = mix(h, w32(buf, off + 8));             // src MAC [2..6)
  let et = (buf[off + 12] << 8) | buf[off + 13];
  let l3 = off + 14;
  if (isVlanTpid(et) && len >= 18) {
    h = mix(h, ((buf[off + 14] & 0x0f) << 8) | buf[off + 15]); // VID
    et = (buf[off + 16] << 8) | buf[off + 17];
    l3 = off + 18;
  }
  h = mix(h, et);
  const end = off + len;
  if (et === ETHERTYPE_IPV4 && l3 + 20 <= end && buf[l3] >>> 4 === 4) {
    const ihl = (buf[l3] & 0x0f) * 4;
    const proto = buf[l3 + 9];
    h = mix(h, w32(buf, l3 + 12));
    h = mix(h, w32(buf, l3 + 16));
    h = mix(h, proto);
    const fragField = ((buf[l3 + 6] & 0x3f) << 8) | buf[l3 + 7]; // MF bit + fragment offset
    if (ihl >= 20 && fragField === 0 && hasPorts(proto) && l3 + ihl + 4 <= end) h = mix(h, w32(buf, l3 + ihl));
  } else if (et === ETHERTYPE_IPV6 && l3 + 40 <= end && buf[l3] >>> 4 === 6) {
    const nh = buf[l3 + 6];
    for (let i = 8; i < 40; i += 4) h = mix(h, w32(buf, l3 + i));
    h = mix(h, nh);
    if (hasPorts(nh) && l3 + 44 <= end) h = mix(h, w32(buf, l3 + 40));
  }
  // The length is deliberately not mixed in: packets of one flow differ in length.
  return fin(h);
}

/** Source socket index for the frame: `flowHash % sourceCount` (0 when there is one socket). */
export function pickSource(buf: Uint8Array, off: number, len: number, sourceCount: number): number {
  return sourceCount <= 1 ? 0 : flowHash(buf, off, len) % sourceCount;
}
