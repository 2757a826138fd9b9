/**
 * ARP / IPv6 neighbour-discovery suppression: a per-network IP → MAC table (filled by gossip from
 * the endpoints other hosts announce) and the codecs that recognise a request read from the TAP and
 * write the reply in place into a caller-provided buffer.
 *
 * The data path answers an ARP request (RFC 826) or a neighbour solicitation (RFC 4861 §4.3) for a
 * known, remote endpoint by writing an ARP reply / neighbour advertisement to the TAP, so the request
 * never leaves the host; unknown targets are flooded as usual. Not answered (flooded instead):
 * gratuitous ARP and ARP probes (sender IP 0 or = target), duplicate-address-detection solicitations
 * (source ::), VLAN-tagged requests, anything malformed.
 *
 * IPv4 keys are numbers; IPv6 keys are 32-char hex strings (built only for solicitations, which are
 * rare — control-plane rate).
 */
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6Into } from './addr';
import { csumAdd, csumFold } from './checksum';
import {
  ETHERTYPE_ARP, ETHERTYPE_IPV6, ETH_HLEN, macToString, putU16, toMacNumber, u16, u32, writeMac,
} from './ethernet';

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

function v6Key(buf: Uint8Array, off: number): string {
  let s = '';
  for (let i = 0; i < 16; i++) s += HEX[buf[off + i]];
  return s;
}

/** Who set a neighbour entry: an underlay address key of the gossip member (null: the operator / API). */
export type NeighOwner = number | string | null;

/** Per-network IP → MAC table for ARP/ND suppression; each entry remembers its owner. */
export class NeighTable {
  private readonly v4 = new Map<number, number>();
  private readonly v6 = new Map<string, number>();
  private readonly owner4 = new Map<number, NeighOwner>();
  private readonly owner6 = new Map<string, NeighOwner>();
  private readonly scratch = new Uint8Array(16);

  get size(): number {
    return this.v4.size + this.v6.size;
  }

  /**
   * Sets `ip` (IPv4 or IPv6 text) → `mac` (text or number) on behalf of `owner`. False (nothing
   * changed) when another owner's entry holds `ip`. Throws TypeError on bad input.
   */
  set(ip: string, mac: string | number, owner: NeighOwner = null): boolean {
    const m = toMacNumber(mac);
    const v4 = parseIPv4(ip);
    if (v4 >= 0) {
      if (this.v4.has(v4) && this.owner4.get(v4) !== owner) return false;
      this.v4.set(v4, m);
      this.owner4.set(v4, owner);
      return true;
    }
    if (!parseIPv6Into(ip, this.scratch, 0)) throw new TypeError(`not an IP address: ${JSON.stringify(ip)}`);
    const k = v6Key(this.scratch, 0);
    if (this.v6.has(k) && this.owner6.get(k) !== owner) return false;
    this.v6.set(k, m);
    this.owner6.set(k, owner);
    return true;
  }

  /** Deletes `ip` if `owner` set it: 'deleted', 'absent', or 'other_owner' (left as it is). */
  delete(ip: string, owner: NeighOwner = null): 'deleted' | 'absent' | 'other_owner' {
    const v4 = parseIPv4(ip);
    if (v4 >= 0) {
      if (!this.v4.has(v4)) return 'absent';
      if (this.owner4.get(v4) !== owner) return 'other_owner';
      this.v4.delete(v4);
      this.owner4.delete(v4);
      return 'deleted';
    }
    if (!parseIPv6Into(ip, this.scratch, 0)) return 'absent';
    const k = v6Key(this.scratch, 0);
    if (!this.v6.has(k)) return 'absent';
    if (this.owner6.get(k) !== owner) return 'other_owner';
    this.v6.delete(k);
    this.owner6.delete(k);
    return 'deleted';
  }

  /** MAC for an IPv4 address (uint32), or -1. */
  lookupV4(ip: number): number {
    const m = this.v4.get(ip);
    return m === undefined ? -1 : m;
  }

  /** MAC for the IPv6 address at `buf[off]`, or -1. */
  lookupV6(buf: Uint8Array, off: number): number {
    if (this.v6.size === 0) return -1;
    const m = this.v6.get(v6Key(buf, off));
    return m === undefined ? -1 : m;
  }

  clear(): void {
    this.v4.clear();
    this.v6.clear();
    this.owner4.clear();
    this.owner6.clear();
  }

  entries(): { ip: string; mac: string }[] {
    const out: { ip: string; mac: string }[] = [];
    for (const [ip, mac] of this.v4) out.push({ ip: formatIPv4(ip), mac: macToString(mac) });
    const b = new Uint8Array(16);
    for (const [k, mac] of this.v6) {
      for (let i = 0; i < 16; i++) b[i] = parseInt(k.slice(2 * i, 2 * i + 2), 16);
      out.push({ ip: formatIPv6(b, 0), mac: macToString(mac) });
    }
    return out;
  }
}

// ---- ARP ----------------------------------------------------------------------------------------

/** Ethernet + ARP for IPv4 over Ethernet: 14 + 28 bytes. */
export const ARP_FRAME_LEN = ETH_HLEN + 28;
/** Replies are padded to the Ethernet minimum (without FCS). */
export const MIN_FRAME_LEN = 60;

/**
 * If the frame at `buf[off]` (`len` bytes, untagged) is an ARP request that suppression may answer,
 * returns the target IPv4 address (uint32); otherwise -1.
 */
export function arpRequestTarget(buf: Uint8Array, off: number, len: number): number {
  if (len < ARP_FRAME_LEN || u16(buf, off + 12) !== ETHERTYPE_ARP) return -1;
  const a = off + ETH_HLEN;
  // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4, op 1 (request)
  if (u16(buf, a) !== 1 || u16(buf, a + 2) !== 0x0800 || buf[a + 4] !== 6 || buf[a + 5] !== 4 || u16(buf, a + 6) !== 1) return -1;
  const spa = u32(buf, a + 14);
  const tpa = u32(buf, a + 24);
  if (spa === 0 || spa === tpa) return -1; // probe / gratuitous
  return tpa;
}

/** Sender IPv4 address of an ARP packet (any op) in the untagged frame, or -1. */
export function arpSenderIp(buf: Uint8Array, off: number, len: number): number {
  if (len < ARP_FRAME_LEN || u16(buf, off + 12) !== ETHERTYPE_ARP) return -1;
  const a = off + ETH_HLEN;
  if (u16(buf, a + 2) !== 0x0800 || buf[a + 4] !== 6 || buf[a + 5] !== 4) return -1;
  return u32(buf, a + 14);
}

/**
 * Writes, at `out[o]`, the ARP reply to the request at `req[off]` saying `targetIp` is at
 * `targetMac`. Returns the reply length (60).
 */
export function writeArpReply(req: Uint8Array, off: number, targetMac: number, out: Uint8Array, o: number): number {
  const a = off + ETH_HLEN;
  // Ethernet: to the requester, from the target
  for (let i = 0; i < 6; i++) out[o + i] = req[a + 8 + i]; // requester's SHA
  writeMac(out, o + 6, targetMac);
  putU16(out, o + 12, ETHERTYPE_ARP);
  const r = o + ETH_HLEN;
  putU16(out, r, 1);
  putU16(out, r + 2, 0x0800);
  out[r + 4] = 6;
  out[r + 5] = 4;
  putU16(out, r + 6, 2); // reply
  writeMac(out, r + 8, targetMac); // sender HA = target MAC
  for (let i = 0; i < 4; i++) out[r + 14 + i] = req[a + 24 + i]; // sender PA = requested IP
  for (let i = 0; i < 10; i++) out[r + 18 + i] = req[a + 8 + i]; // target HA + PA = requester's
  for (let i = ARP_FRAME_LEN; i < MIN_FRAME_LEN; i++) out[o + i] = 0;
  return MIN_FRAME_LEN;
}

// ---- IPv6 neighbour discovery -------------------------------------------------------------------

const IPV6_HLEN = 40;
const ICMPV6 = 58;
const ND_NS = 135;
const ND_NA = 136;
/** Ethernet + IPv6 + NA (24) + target link-layer address option (8). */
export const NA_FRAME_LEN = ETH_HLEN + IPV6_HLEN + 32;

/**
 * If the untagged frame at `buf[off]` is a neighbour solicitation that suppression may answer,
 * returns the offset of its 16-byte target address; otherwise -1. Requires hop limit 255, no
 * extension headers, a non-unspecified source (not DAD).
 */
export function ndSolicitTarget(buf: Uint8Array, off: number, len: number): number {
  if (len < ETH_HLEN + IPV6_HLEN + 24 || u16(buf, off + 12) !== ETHERTYPE_IPV6) return -1;
  const ip = off + ETH_HLEN;
  if (buf[ip] >>> 4 !== 6 || buf[ip + 6] !== ICMPV6 || buf[ip + 7] !== 255) return -1;
  const plen = u16(buf, ip + 4);
  if (plen < 24 || ETH_HLEN + IPV6_HLEN + plen > len) return -1;
  const icmp = ip + IPV6_HLEN;
  if (buf[icmp] !== ND_NS || buf[icmp + 1] !== 0) return -1;
  let src = 0;
  for (let i = 0; i < 16; i++) src |= buf[ip + 8 + i];
  if (src === 0) return -1;
  if (buf[icmp + 8] === 0xff) return -1; // multicast target: invalid
  return icmp + 8;
}

/**
 * Writes, at `out[o]`, the solicited neighbour advertisement answering the NS at `req[off]`: the
 * target address is at `targetMac` (flags S and O set; target link-layer address option).
 * Returns the frame length (86).
 */
export function writeNdAdvert(req: Uint8Array, off: number, targetMac: number, out: Uint8Array, o: number): number {
  const rip = off + ETH_HLEN;
  const target = rip + IPV6_HLEN + 8;
  for (let i = 0; i < 6; i++) out[o + i] = req[off + 6 + i]; // to the solicitor's MAC
  writeMac(out, o + 6, targetMac);
  putU16(out, o + 12, ETHERTYPE_IPV6);
  const ip = o + ETH_HLEN;
  out[ip] = 0x60;
  out[ip + 1] = 0;
  out[ip + 2] = 0;
  out[ip + 3] = 0;
  putU16(out, ip + 4, 32);
  out[ip + 6] = ICMPV6;
  out[ip + 7] = 255;
  for (let i = 0; i < 16; i++) out[ip + 8 + i] = req[target + i]; // src = target address
  for (let i = 0; i < 16; i++) out[ip + 24 + i] = req[rip + 8 + i]; // dst = solicitor's address
  const icmp = ip + IPV6_HLEN;
  out[icmp] = ND_NA;
  out[icmp + 1] = 0;
  out[icmp + 2] = 0; // checksum, below
  out[icmp + 3] = 0;
  out[icmp + 4] = 0x60; // S | O
  out[icmp + 5] = 0;
  out[icmp + 6] = 0;
  out[icmp + 7] = 0;
  for (let i = 0; i < 16; i++) out[icmp + 8 + i] = req[target + i];
  out[icmp + 24] = 2; // target link-layer address
  out[icmp + 25] = 1; // length in units of 8 bytes
  writeMac(out, icmp + 26, targetMac);
  // checksum over the pseudo-header (src, dst, upper-layer length, next header) and the message
  let sum = csumAdd(0, out, ip + 8, 32);
  sum += 32 + ICMPV6;
  sum = csumAdd(sum, out, icmp, 32);
  putU16(out, icmp + 2, csumFold(sum));
  return NA_FRAME_LEN;
}

/** Verifies the ICMPv6 checksum of the untagged IPv6 frame at `buf[off]` (tests, diagnostics). */
export function icmpv6ChecksumOk(buf: Uint8Array, off: number): boolean {
  const ip = off + ETH_HLEN;
  const plen = u16(buf, ip + 4);
  let sum = csumAdd(0, buf, ip + 8, 32);
  sum += plen + ICMPV6;
  sum = csumAdd(sum, buf, ip + IPV6_HLEN, plen);
  return csumFold(sum) === 0;
}
