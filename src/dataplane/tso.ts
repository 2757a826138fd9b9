/**
 * TCP super-frames (TSO, read from a vnet TAP): what the transport's segmenter (native gso.c) will
 * make of one, computed in JS so that size checks and counters agree with the wire exactly.
 */
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN, ETH_HLEN, VLAN_HLEN } from './ethernet';

/** virtio_net_hdr gso types (linux/virtio_net.h). */
export const GSO_TCPV4 = 1;
export const GSO_TCPV6 = 4;
export const GSO_ECN = 0x80;
/** Most segments the transport cuts one super-frame into (native VX_GSO_MAX_SEGS). */
export const GSO_MAX_SEGS = 256;

/** What `tsoHeaderLen` found besides the header length. */
export interface TsoInfo {
  /** TCP payload bytes after the headers (what is cut into MSS-sized segments). */
  payload: number;
}

/**
 * Header length (Ethernet [+ one or two VLAN tags] + IP + TCP) of TCP super-frame
 * `b[off, off+len)` of virtio type `type`, parsed exactly as the transport's segmenter does (native
 * gso.c `vx_parse_tcp`: up to two 802.1Q / 802.1ad tags, then IPv4 without fragmentation or IPv6
 * with TCP as next header; bytes past the IP length are not sent); sets `out.payload` when given.
 * −1 when the transport could not cut it.
 */
export function tsoHeaderLen(b: Buffer, off: number, len: number, type: number, out?: TsoInfo): number {
  const t = type & ~GSO_ECN;
  if (len < ETH_HLEN) return -1;
  let l3 = ETH_HLEN;
  let et = (b[off + 12] << 8) | b[off + 13];
  for (let tags = 0; (et === ETHERTYPE_VLAN || et === ETHERTYPE_QINQ) && tags < 2; tags++) {
    if (len < l3 + VLAN_HLEN) return -1;
    et = (b[off + l3 + 2] << 8) | b[off + l3 + 3];
    l3 += VLAN_HLEN;
  }
  const ip = off + l3;
  let l4: number;
  let end: number;
  if (et === ETHERTYPE_IPV4 && t === GSO_TCPV4) {
    if (len < l3 + 20 || b[ip] >>> 4 !== 4) return -1;
    const ihl = (b[ip] & 15) * 4;
    const tot = (b[ip + 2] << 8) | b[ip + 3];
    if (ihl < 20 || tot < ihl + 20 || l3 + tot > len) return -1;
    if (b[ip + 9] !== 6 || (((b[ip + 6] << 8) | b[ip + 7]) & 0x3fff) !== 0) return -1;
    l4 = l3 + ihl;
    end = l3 + tot;
  } else if (et === ETHERTYPE_IPV6 && t === GSO_TCPV6) {
    if (len < l3 + 40 || b[ip] >>> 4 !== 6 || b[ip + 6] !== 6) return -1;
    const pl = (b[ip + 4] << 8) | b[ip + 5];
    if (pl < 20 || l3 + 40 + pl > len) return -1;
    l4 = l3 + 40;
    end = l3 + 40 + pl;
  } else {
    return -1;
  }
  const doff = (b[off + l4 + 12] >>> 4) * 4;
  if (doff < 20 || l4 + doff > end) return -1;
  if (out !== undefined) out.payload = end - l4 - doff;
  return l4 + doff;
}
