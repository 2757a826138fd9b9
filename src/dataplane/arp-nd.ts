/**
 * ARP / neighbour-discovery suppression on the outbound path: an ARP request or neighbour
 * solicitation read from the TAP whose target is a known remote endpoint (the network's neighbour
 * table, filled by gossip) is answered by a reply queued for the TAP, and the request is consumed.
 * A target on this host's own bridge answers for itself. Codecs in `neigh.ts`.
 */
import { ETHERTYPE_ARP, ETHERTYPE_IPV6 } from './ethernet';
import { arpRequestTarget, ndSolicitTarget, writeArpReply, writeNdAdvert } from './neigh';
import type { Network } from './network';
import { REPLY_SLOT } from './slabs';
import type { TxBatch } from './seams';

/**
 * Answers the request at `b[off, off+len)` if it can: the reply is written into `replies` (slot
 * `replies.count` of `REPLY_SLOT` bytes, at most `max` replies per batch). True when answered.
 */
export function suppressArpNd(b: Buffer, net: Network, off: number, len: number, replies: TxBatch, max: number): boolean {
  if (net.neigh.size === 0) return false;
  const et = (b[off + 12] << 8) | b[off + 13];
  let mac = -1;
  let isArp = false;
  if (et === ETHERTYPE_ARP) {
    const tpa = arpRequestTarget(b, off, len);
    if (tpa < 0) return false;
    mac = net.neigh.lookupV4(tpa);
    isArp = true;
  } else if (et === ETHERTYPE_IPV6) {
    const t = ndSolicitTarget(b, off, len);
    if (t < 0) return false;
    mac = net.neigh.lookupV6(b, t);
  } else {
    return false;
  }
  if (mac < 0) return false;
  // a target on our own bridge answers for itself
  if (net.fdb.isLocal(Math.floor(mac / 0x100000000), mac >>> 0)) return false;
  const r = replies;
  if (r.count === max) return false;
  const o = r.count * REPLY_SLOT;
  r.offs[r.count] = o;
  r.lens[r.count] = isArp ? writeArpReply(b, off, mac, r.slab, o) : writeNdAdvert(b, off, mac, r.slab, o);
  r.count++;
  return true;
}
