/**
 * The Internet checksum (RFC 1071), in two steps so a pseudo-header and a body can be summed
 * apart: `csumAdd` over each byte range, `csumFold` once at the end. Used by the ARP/ND answers
 * (neigh.ts), the probe stage's ICMP errors (src/probe/icmp.ts) and the capture renderer.
 */

/** One's-complement sum of `len` bytes at `b[o]` (big-endian 16-bit words, an odd last byte padded) added to `sum` (not folded). */
export function csumAdd(sum: number, b: Uint8Array, o: number, len: number): number {
  for (let i = 0; i + 1 < len; i += 2) sum += (b[o + i] << 8) | b[o + i + 1];
  if (len & 1) sum += b[o + len - 1] << 8;
  return sum;
}

/** Folds a `csumAdd` sum to 16 bits and complements it: the checksum field's value (0 when verifying a correct one). */
export function csumFold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}
