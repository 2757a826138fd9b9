/**
 * What policy needs from a frame, parsed in place without allocation: the IP addresses (as 16-byte
 * values, IPv4 as ::ffff:a.b.c.d), protocol, ports, and for ICMP the echo identifier or the flow
 * an error message quotes. One `FlowKey` object is reused per caller.
 *
 * Frame: Ethernet, at most two VLAN tags; IPv4 (options skipped; a non-first fragment has no ports:
 * port 0) or IPv6 (hop-by-hop, routing, fragment, destination-options and AH headers skipped, at most
 * 8); TCP/UDP/SCTP ports; ICMP/ICMPv6 echo (both ports = identifier, so a reply finds its request's
 * conntrack entry) and errors (`related`: the quoted packet's flow, reversed to the direction of the
 * connection it belongs to). ARP and IPv6 neighbour discovery / MLD are `control`: always passed.
 */
export const KIND_IP = 0;
export const KIND_CONTROL = 1; // ARP, ND, MLD: policy never blocks them
export const KIND_OTHER = 2; // not IP (or unparsable IP): see the enforcer
export const KIND_ERROR = 3; // an ICMP error: `related` holds the quoted flow

export class FlowKey {
  kind = KIND_OTHER;
  readonly src = new Uint8Array(16);
  readonly dst = new Uint8Array(16);
  proto = 0;
  sport = 0;
  dport = 0;
  /** For KIND_ERROR: the flow the error refers to, in the direction of that flow's packets. */
  related: FlowKey | null = null;
  /** src and dst already hold the ::ffff: prefix (the last frame was IPv4): only 4 bytes each to write. */
  mapped = false;
}

function putV4(out: Uint8Array, b: Uint8Array, off: number, mapped: boolean): void {
  if (!mapped) {
    for (let i = 0; i < 10; i++) out[i] = 0;
    out[10] = 0xff;
    out[11] = 0xff;
  }
  out[12] = b[off];
  out[13] = b[off + 1];
  out[14] = b[off + 2];
  out[15] = b[off + 3];
}

/** Parses the frame at b[off..off+len) into `k`. Returns k.kind. */
export function parseFrame(b: Uint8Array, off: number, len: number, k: FlowKey): number {
  k.kind = KIND_OTHER;
  if (len < 14) return k.kind;
  let p = off + 12;
  let et = (b[p] << 8) | b[p + 1];
  for (let tags = 0; (et === 0x8100 || et === 0x88a8) && tags < 2; tags++) {
    p += 4;
    if (p + 2 > off + len) return k.kind;
    et = (b[p] << 8) | b[p + 1];
  }
  p += 2;
  const end = off + len;
  if (et === 0x0806) return (k.kind = KIND_CONTROL);
  if (et === 0x0800) return parseIPv4(b, p, end, k, true);
  if (et === 0x86dd) return parseIPv6(b, p, end, k, true);
  return k.kind;
}

function parseIPv4(b: Uint8Array, p: number, end: number, k: FlowKey, outer: boolean): number {
  if (p + 20 > end || b[p] >> 4 !== 4) return (k.kind = KIND_OTHER);
  const ihl = (b[p] & 15) * 4;
  if (ihl < 20 || p + ihl > end) return (k.kind = KIND_OTHER);
  putV4(k.src, b, p + 12, k.mapped);
  putV4(k.dst, b, p + 16, k.mapped);
  k.mapped = true;
  k.proto = b[p + 9];
  const fragOff = ((b[p + 6] & 0x1f) << 8) | b[p + 7];
  return l4(b, p + ihl, end, k, outer, fragOff !== 0, false);
}

function parseIPv6(b: Uint8Array, p: number, end: number, k: FlowKey, outer: boolean): number {
  if (p + 40 > end || b[p] >> 4 !== 6) return (k.kind = KIND_OTHER);
  for (let i = 0; i < 16; i++) {
    k.src[i] = b[p + 8 + i];
    k.dst[i] = b[p + 24 + i];
  }
  k.mapped = false;
  let nh = b[p + 6];
  let q = p + 40;
  let laterFragment = false;
  for (let n = 0; n < 8; n++) {
    if (nh === 0 || nh === 43 || nh === 60) {
      if (q + 8 > end) return (k.kind = KIND_OTHER);
      nh = b[q];
      q += (b[q + 1] + 1) * 8;
    } else if (nh === 44) {
      if (q + 8 > end) return (k.kind = KIND_OTHER);
      laterFragment = laterFragment || (((b[q + 2] << 8) | b[q + 3]) & 0xfff8) !== 0;
      nh = b[q];
      q += 8;
    } else if (nh === 51) {
      if (q + 8 > end) return (k.kind = KIND_OTHER);
      nh = b[q];
      q += (b[q + 1] + 2) * 4;
    } else break;
  }
  k.proto = nh;
  return l4(b, q, end, k, outer, laterFragment, true);
}

function l4(b: Uint8Array, q: number, end: number, k: FlowKey, outer: boolean, fragment: boolean, v6: boolean): number {
  k.sport = 0;
  k.dport = 0;
  if (fragment) return (k.kind = KIND_IP);
  const proto = k.proto;
  if (proto === 6 || proto === 17 || proto === 132 || proto === 136 /* UDP-Lite */) {
    if (q + 4 > end) return (k.kind = outer ? KIND_OTHER : KIND_IP);
    k.sport = (b[q] << 8) | b[q + 1];
    k.dport = (b[q + 2] << 8) | b[q + 3];
    return (k.kind = KIND_IP);
  }
  if ((proto === 1 && !v6) || (proto === 58 && v6)) {
    if (q + 8 > end) return (k.kind = outer ? KIND_OTHER : KIND_IP);
    const type = b[q];
    if (v6 && ((type >= 130 && type <= 137) || type === 143)) return (k.kind = KIND_CONTROL); // MLD, RS/RA/NS/NA/redirect
    const echo = v6 ? type === 128 || type === 129 : type === 8 || type === 0;
    if (echo) {
      k.sport = k.dport = (b[q + 4] << 8) | b[q + 5];
      return (k.kind = KIND_IP);
    }
    const error = v6 ? type >= 1 && type <= 4 : type === 3 || type === 11 || type === 12;
    if (error && outer) {
      const r = k.related ?? (k.related = new FlowKey());
      const inner = v6 ? parseIPv6(b, q + 8, end, r, false) : parseIPv4(b, q + 8, end, r, false);
      if (inner === KIND_IP) return (k.kind = KIND_ERROR);
    }
    return (k.kind = KIND_IP);
  }
  return (k.kind = KIND_IP);
}
