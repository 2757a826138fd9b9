/**
 * Outbound: frames read from a network's TAP ("inside") go to the underlay ("outside") as VXLAN
 * (RFC 7348). Hot path; batch-shaped; no per-packet allocation. Per TAP readiness, up to `burst`
 * batches; each function below is named after its stage:
 *
 *   1. read         one readBatch into the TAP slab, each frame at slot + headroom (room for the
 *                   VXLAN + cipher headers); vnet TAPs: readBatchVnet into 64 KiB slots, or the
 *                   batches a reader thread filled (reader-ring.ts);
 *   2. classify     count the frame; runt (< 14 B) → `runt_frame`; VLAN-tagged or not;
 *   3. learnLocal   the source MAC (unicast, non-zero) is local; its IPv4/IPv6/ARP sender address
 *                   is snooped for gossip;
 *   4. checkSize    oversize (> MTU + 14, + 4 if tagged, or the outer packet > underlay MTU) →
 *                   `oversize_frame`; a TSO super-frame: every MSS-sized segment, headers included,
 *                   must fit, and the transport (or the cipher) must be able to cut it;
 *   5. decide       group bit → ARP/ND suppression (known remote target: reply written to the TAP,
 *                   frame consumed, arp-nd.ts) else flood; known remote → unicast to its peer;
 *                   known local → `local_dst`; unknown → flood (head-end replication to every peer
 *                   serving the VNI); no peer → `no_peers`; encrypted without cipher → `no_session`;
 *   5a. pathMtu     unicast to a peer whose path MTU the probes measured (probe-seam.ts): a frame
 *                   (a super-frame: its largest segment) larger than that path carries →
 *                   `path_mtu`, and the probe stage answers the sender with ICMP fragmentation
 *                   needed / Packet Too Big (rate-limited, src/probe/icmp.ts);
 *   5b. policy      networks with a policy (policy-seam.ts): the frame's flow must be allowed
 *                   by the source's egress and the destination's ingress → else `policy_denied`;
 *   5c. hairpin     same-host enforcement (policy-seam.ts): a frame between two endpoints of this
 *                   host (sent here by the port rules instead of across the bridge) is checked
 *                   (`filterLocal`) and written back to the TAP — one writeBatch per batch;
 *   6. encapsulate  VXLAN header in place at headroom − 8; source socket = flow hash % sources;
 *                   one send descriptor per destination (`queue`; flood copies share the bytes,
 *                   except on encrypted networks, where each peer's copy is sealed on its own);
 *   7. seal         encrypted networks: cipher.sealBatch over the descriptors, in place; a TSO
 *                   super-frame: cipher.sealSuperFrame cuts and seals it, sent at once (`sealSuper`);
 *   8. send         ONE udp.sendBatch (vnet: sendBatchGso, the transport cuts super-frames) per
 *                   batch, more only when a flood overflows the descriptor table; ARP/ND replies:
 *                   one TAP writeBatch;
 *   9. count        per network and per peer what reached the wire (status 0); a descriptor the
 *                   send skipped → `emsgsize` / `unreachable` / `send_failed` by its errno; one it
 *                   did not attempt (EAGAIN) → `send_failed`.
 *
 * Drops (src/capture/drops.ts): every drop above is one call, `ctx.capture.txDrop`, which counts it
 * in the network's txDrops and again by peer, and keeps a bounded copy in the network's drop ring
 * (`path_mtu` alone is counted here, in txDrops only); while a live capture is open
 * (`capture.live`, read once per batch) each frame that passes 5b goes to `capture.forwarded`.
 *
 * Counters: txFrames/txFrameBytes count what the TAP gave (a super-frame once), txPackets/txBytes
 * what goes on the wire (one per segment, VXLAN header + segment bytes, computed from the parsed
 * headers exactly as the transport cuts them).
 */
import { ADDR_LEN } from './addr';
import { suppressArpNd } from './arp-nd';
import { CIPHER_NO_SESSION, CIPHER_OK, CIPHER_QUEUED, type CipherBatch } from './cipher-seam';
import type { PathContext } from './context';
import { txDropForErrno, txDropIndex } from './counters';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_HLEN, isVlanTpid, macEquals } from './ethernet';
import type { Fdb } from './fdb';
import { FDB_LOCAL } from './fdb';
import { flowHash } from './flowhash';
import { arpSenderIp } from './neigh';
import type { Network } from './network';
import type { Peer } from './peers';
import { allocateVnet, type OutboundSlabs, type VnetSlabs } from './slabs';
import type { TxBatch, VnetTapDevice } from './seams';
import { GSO_MAX_SEGS, tsoHeaderLen, type TsoInfo } from './tso';
import { VXLAN_HLEN } from './vxlan';
import { DIR_TX } from '../capture/drops';
import { KIND_DATAGRAM, KIND_FRAME } from '../capture/ring';

const TX_RUNT = txDropIndex.runt_frame;
const TX_OVERSIZE = txDropIndex.oversize_frame;
const TX_LOCAL_DST = txDropIndex.local_dst;
const TX_NO_PEERS = txDropIndex.no_peers;
const TX_NO_SESSION = txDropIndex.no_session;
const TX_SEND_FAILED = txDropIndex.send_failed;
const TX_POLICY = txDropIndex.policy_denied;
const TX_PATH_MTU = txDropIndex.path_mtu;

/** Outcomes of `decide`. */
const TO_PEER = 0;
const TO_FLOOD = 1;
const DONE = 2;
const TO_LOCAL = 3; // 5c: between two endpoints of this host (policy hairpin)

export class Inside {
  /** Plain slab memory (replaced by `reallocate`). */
  out: OutboundSlabs;
  /** Fast-path memory, with the first vnet TAP. */
  vn: VnetSlabs | null = null;
  /** The descriptor table in use (out.tx, or the vnet table while a vnet batch is processed). */
  private cur: TxBatch;
  /** The vnet table and its seal view of the batch being processed (the vnet slab's, or a reader ring slab's). */
  private vtx: TxBatch | null = null;
  private vseal: CipherBatch | null = null;
  private scratchUsed = 0;
  /** `checkSize` results for the frame at hand: its datagram count; `tso.payload`. */
  private segs = 1;
  private readonly tso: TsoInfo = { payload: 0 };
  /** `decide` result for the frame at hand (TO_PEER). */
  private peer: Peer | null = null;
  private readonly encVxlan = Buffer.alloc(VXLAN_HLEN);

  constructor(private readonly ctx: PathContext, out: OutboundSlabs) {
    this.out = out;
    this.cur = out.tx;
  }

  /** New plain memory (larger slots); the vnet views are rebuilt over it. */
  reallocate(out: OutboundSlabs): void {
    this.out = out;
    this.cur = out.tx;
    if (this.vn !== null) this.vn = allocateVnet(this.ctx.batchSize, this.ctx.headroom, out, this.vn);
  }

  /** Allocates the fast-path memory (first vnet TAP). */
  enableVnet(): void {
    if (this.vn === null) this.vn = allocateVnet(this.ctx.batchSize, this.ctx.headroom, this.out, null);
  }

  // ---- 1. read --------------------------------------------------------------------------------

  /** TAP readiness: up to `burst` batches. */
  read(net: Network): void {
    const ctx = this.ctx;
    for (let round = 0; round < ctx.burst; round++) {
      let n: number;
      try {
        n = net.vnet ? (net.tap as VnetTapDevice).readBatchVnet(this.vn!.rx, this.vn!.gso) : net.tap.readBatch(this.out.tapRx);
      } catch (e) {
        ctx.failNetwork(net, e);
        return;
      }
      if (n <= 0) return;
      if (!ctx.running || net.removed || net.failed !== null) continue; // drain and discard
      ctx.counters.tapBatches++;
      ctx.hist.tapRead.add(n);
      if (net.vnet) {
        const vn = this.vn!;
        this.vnetBatch(net, n, vn.slab, vn.rx.lens, vn.gso, vn.vtx, vn.vseal);
      } else {
        this.frames(net, n, this.out.tapSlab, this.out.slotSize, this.out.tapRx.lens, null);
      }
      if (n < ctx.batchSize) return;
    }
  }

  /** A batch of vnet frames in `slab` (the vnet slab or a reader ring's), sent through `vtx`/`vseal` over it. */
  vnetBatch(net: Network, n: number, slab: Buffer, lens: Uint32Array, gso: Uint16Array, vtx: TxBatch, vseal: CipherBatch): void {
    this.vtx = vtx;
    this.vseal = vseal;
    this.cur = vtx;
    try {
      this.frames(net, n, slab, this.vn!.slot, lens, gso);
    } finally {
      this.cur = this.out.tx;
      this.vtx = null;
      this.vseal = null;
    }
  }

  /**
   * Stages 2–9 over `n` frames at `slab[i * slot + headroom]`. `gso` (vnet TAPs only) holds each
   * frame's virtio gso type and MSS; descriptors go to `this.cur`.
   */
  private frames(net: Network, n: number, slab: Buffer, slot: number, lens: Uint32Array, gso: Uint16Array | null): void {
    const ctx = this.ctx;
    const c = net.counters;
    const fdb = net.fdb;
    const head = ctx.headroom;
    const enc = net.config.encrypted;
    const vni = net.config.vni;
    const canSend = !enc || ctx.cipher !== null;
    const sources = ctx.sourceCount;
    const live = ctx.capture.live;
    const now = ctx.capture.stamp(ctx.clock.now());
    fdb.setNow(now);
    if (net.policy !== null) net.policy.setNow(now);
    this.cur.count = 0;
    this.scratchUsed = 0;
    this.out.replies.count = 0;
    for (let i = 0; i < n; i++) {
      const off = i * slot + head;
      const len = lens[i];
      // 2. classify
      c.txFrames++;
      c.txFrameBytes += len;
      if (len < ETH_HLEN) {
        ctx.capture.txDrop(net, TX_RUNT, 1, slab, off, len, KIND_FRAME, null);
        continue;
      }
      const tagged = isVlanTpid((slab[off + 12] << 8) | slab[off + 13]);
      const gsoType = gso === null ? 0 : gso[2 * i];
      const mss = gsoType === 0 ? 0 : gso![2 * i + 1];
      // 3. learn local
      this.learnLocal(fdb, slab, off, len);
      // 4. size check
      const wire = this.checkSize(net, slab, off, len, tagged, gsoType, mss, enc);
      if (wire < 0) {
        ctx.capture.txDrop(net, TX_OVERSIZE, 1, slab, off, len, KIND_FRAME, null);
        continue;
      }
      const segs = this.segs;
      // 5. decide
      const d = this.decide(net, slab, off, len, tagged, gsoType, canSend);
      if (d === DONE) continue;
      // 5a. path MTU (a measured peer path smaller than the frame: ICMP back to the sender)
      if (d === TO_PEER && this.peer!.pathFrameMax !== 0 && this.pathTooBig(net, slab, off, len, enc, gsoType, mss, wire)) continue;
      // 5c. policy hairpin: checked, then back to the TAP (the bridge never saw it)
      if (d === TO_LOCAL) {
        this.hairpin(net, slab, off, len, gsoType, mss);
        continue;
      }
      // 5b. policy egress (networks with a policy: the source's egress and the destination's ingress)
      if (net.policy !== null && !net.policy.filter(slab, off, len, null)) {
        ctx.capture.txDrop(net, TX_POLICY, 1, slab, off, len, KIND_FRAME, d === TO_PEER ? this.peer : null);
        continue;
      }
      if (live) ctx.capture.forwarded(net, DIR_TX, slab, off, len, d === TO_PEER ? this.peer : null);
      // 6. encapsulate
      const pkt = this.encapsulate(slab, off, vni);
      const plen = len + VXLAN_HLEN;
      const src = sources > 1 ? flowHash(slab, off, len) % sources : 0;
      const peer = this.peer;
      if (enc && gsoType !== 0) {
        // 7. seal a super-frame: what is queued goes first (order within a flow), then the cipher
        // cuts and seals it and the datagrams are sent right away
        this.send(net);
        if (d === TO_PEER) {
          this.sealSuper(net, slab, pkt, off, len, src, peer!, gsoType, mss);
        } else {
          c.txFlooded++;
          const peers = net.floodPeers;
          for (let p = 0; p < peers.length; p++) this.sealSuper(net, slab, pkt, off, len, src, peers[p], gsoType, mss);
        }
        continue;
      }
      if (d === TO_PEER) {
        this.queue(net, pkt, plen, src, peer!, gsoType, mss, segs, wire);
        continue;
      }
      c.txFlooded++;
      const peers = net.floodPeers;
      if (enc && gso !== null) {
        // vnet slab (no scratch slots there): every peer's copy goes to the plain slab's scratch
        // slots and is sealed and sent before the next frame (queued ones first: order kept)
        this.send(net);
        const vtx = this.cur;
        this.cur = this.out.tx;
        try {
          for (let p = 0; p < peers.length; p++) this.queue(net, this.copyToScratch(net, slab, pkt, plen), plen, src, peers[p], 0, 0, 1, plen);
          this.send(net);
        } finally {
          this.cur = vtx;
        }
      } else if (enc) {
        // each peer's copy is sealed separately: copies first, the in-place one last
        for (let p = 1; p < peers.length; p++) this.queue(net, this.copyToScratch(net, slab, pkt, plen), plen, src, peers[p], 0, 0, 1, plen);
        this.queue(net, pkt, plen, src, peers[0], 0, 0, 1, plen);
      } else {
        for (let p = 0; p < peers.length; p++) this.queue(net, pkt, plen, src, peers[p], gsoType, mss, segs, wire);
      }
    }
    const r = this.out.replies;
    if (r.count > 0) {
      const w = ctx.safeTapWrite(net, r);
      for (let j = 0; j < w; j++) if (r.status[j] === 0) net.neighAnswered++;
      ctx.hist.tapWrite.add(r.count);
    }
    if (net.policy !== null && net.policy.hairpinTx !== null && net.policy.hairpinTx.count > 0) this.hairpinFlush(net);
    this.send(net);
  }

  // ---- 5c. policy hairpin ---------------------------------------------------------------------

  /** A same-host frame: the policy's verdict, then queued for the write back to the TAP. */
  private hairpin(net: Network, slab: Buffer, off: number, len: number, gsoType: number, mss: number): void {
    const pol = net.policy!;
    if (!pol.filterLocal(slab, off, len)) {
      this.ctx.capture.txDrop(net, TX_POLICY, 1, slab, off, len, KIND_FRAME, null);
      return;
    }
    if (this.ctx.capture.live) this.ctx.capture.forwarded(net, DIR_TX, slab, off, len, null);
    if (pol.hairpinQueue(slab, off, len, gsoType, mss) === 0) {
      this.hairpinFlush(net);
      pol.hairpinQueue(slab, off, len, gsoType, mss);
    }
  }

  /** One TAP writeBatch of the queued same-host frames. */
  private hairpinFlush(net: Network): void {
    const pol = net.policy!;
    const tx = pol.hairpinTx!;
    const w = this.ctx.safeTapWrite(net, tx);
    let failed = tx.count - w;
    for (let j = 0; j < w; j++) if (tx.status[j] !== 0) failed++;
    this.ctx.hist.tapWrite.add(tx.count);
    pol.hairpinDone(failed);
  }

  // ---- 3. learn local -------------------------------------------------------------------------

  /** The frame's source MAC (unicast, non-zero) is on this host's bridge; its addresses are noted. */
  private learnLocal(fdb: Fdb<Peer>, b: Buffer, off: number, len: number): void {
    if ((b[off + 6] & 1) !== 0) return;
    const sHi = (b[off + 6] << 8) | b[off + 7];
    const sLo = ((b[off + 8] << 24) | (b[off + 9] << 16) | (b[off + 10] << 8) | b[off + 11]) >>> 0;
    if ((sHi | sLo) === 0) return;
    const s = fdb.learnLocal(sHi, sLo);
    if (s < 0) return;
    const et = (b[off + 12] << 8) | b[off + 13];
    if (et === ETHERTYPE_IPV4) {
      if (len >= ETH_HLEN + 20 && b[off + 14] >>> 4 === 4) {
        fdb.noteIPv4(s, ((b[off + 26] << 24) | (b[off + 27] << 16) | (b[off + 28] << 8) | b[off + 29]) >>> 0);
      }
    } else if (et === ETHERTYPE_IPV6) {
      if (len >= ETH_HLEN + 40 && b[off + 14] >>> 4 === 6) fdb.noteIPv6(s, b, off + 22);
    } else if (et === ETHERTYPE_ARP) {
      const spa = arpSenderIp(b, off, len);
      // only when the ARP sender hardware address is the frame's source
      if (spa > 0 && macEquals(b, off + ETH_HLEN + 8, b, off + 6)) fdb.noteIPv4(s, spa);
    }
  }

  // ---- 4. size check --------------------------------------------------------------------------

  /**
   * Bytes the frame puts on the wire (VXLAN headers included; `this.segs` = its datagrams), or −1
   * when it is too large or a super-frame that cannot be cut.
   */
  private checkSize(net: Network, slab: Buffer, off: number, len: number, tagged: boolean, gsoType: number, mss: number,
    enc: boolean): number {
    this.segs = 1;
    if (gsoType === 0) return len > (tagged ? net.maxTagged : net.maxUntagged) ? -1 : len + VXLAN_HLEN;
    // plaintext: the transport cuts super-frames (needs sendBatchGso); encrypted: the cipher does
    const tso = this.tso;
    const hlen = (this.ctx.gsoUdp === null && !enc) || mss === 0 ? -1 : tsoHeaderLen(slab, off, len, gsoType, tso);
    if (hlen < 0 || hlen + mss > (tagged ? net.maxTagged : net.maxUntagged)) return -1;
    const segs = tso.payload === 0 ? 1 : Math.ceil(tso.payload / mss);
    if (segs > GSO_MAX_SEGS) return -1;
    this.segs = segs;
    return segs * (VXLAN_HLEN + hlen) + tso.payload;
  }

  // ---- 5. decide ------------------------------------------------------------------------------

  /** TO_PEER (`this.peer`), TO_FLOOD, or DONE (answered locally, or dropped and counted). */
  private decide(net: Network, slab: Buffer, off: number, len: number, tagged: boolean, gsoType: number, canSend: boolean): number {
    let peer: Peer | null = null;
    if ((slab[off] & 1) !== 0) {
      if (!tagged && gsoType === 0 && suppressArpNd(slab, net, off, len, this.out.replies, this.ctx.batchSize)) return DONE;
    } else {
      const fdb = net.fdb;
      const dHi = (slab[off] << 8) | slab[off + 1];
      const dLo = ((slab[off + 2] << 24) | (slab[off + 3] << 16) | (slab[off + 4] << 8) | slab[off + 5]) >>> 0;
      const s = fdb.lookup(dHi, dLo);
      // 5c: between two endpoints of this host, on a network that enforces there
      if ((s < 0 || fdb.kindAt(s) === FDB_LOCAL) && net.policy !== null && !tagged && net.policy.localPair(slab, off)) return TO_LOCAL;
      if (s >= 0) {
        if (fdb.kindAt(s) === FDB_LOCAL) {
          this.ctx.capture.txDrop(net, TX_LOCAL_DST, 1, slab, off, len, KIND_FRAME, null);
          return DONE;
        }
        peer = fdb.peerAt(s);
      }
    }
    if (peer === null && net.floodPeers.length === 0) {
      this.ctx.capture.txDrop(net, TX_NO_PEERS, 1, slab, off, len, KIND_FRAME, null);
      return DONE;
    }
    if (!canSend) {
      this.ctx.capture.txDrop(net, TX_NO_SESSION, 1, slab, off, len, KIND_FRAME, peer);
      return DONE;
    }
    this.peer = peer;
    return peer === null ? TO_FLOOD : TO_PEER;
  }

  // ---- 5a. path MTU ---------------------------------------------------------------------------

  /** True (dropped as `path_mtu`, ICMP queued by the probe stage) when the frame exceeds its peer's measured path. */
  private pathTooBig(net: Network, slab: Buffer, off: number, len: number, enc: boolean, gsoType: number, mss: number, wire: number): boolean {
    const peer = this.peer!;
    const limit = enc ? peer.pathFrameMaxSealed : peer.pathFrameMax;
    // a super-frame goes out as segments of its headers + mss bytes: wire = segs × (8 + headers) + payload
    const frame = gsoType === 0 ? len : Math.min(len, (wire - this.tso.payload) / this.segs - VXLAN_HLEN + mss);
    if (frame <= limit) return false;
    net.counters.txDrops[TX_PATH_MTU]++;
    this.ctx.probe?.tooBig(net, slab, off, len, limit);
    return true;
  }

  // ---- 6. encapsulate -------------------------------------------------------------------------

  /** Writes the VXLAN header in front of the frame at `off`; returns the packet's offset. */
  private encapsulate(slab: Buffer, off: number, vni: number): number {
    const pkt = off - VXLAN_HLEN;
    slab[pkt] = 0x08;
    slab[pkt + 1] = 0;
    slab[pkt + 2] = 0;
    slab[pkt + 3] = 0;
    slab[pkt + 4] = (vni >>> 16) & 0xff;
    slab[pkt + 5] = (vni >>> 8) & 0xff;
    slab[pkt + 6] = vni & 0xff;
    slab[pkt + 7] = 0;
    return pkt;
  }

  /**
   * Adds one send descriptor (`gsoType`/`mss` non-zero: a super-frame that becomes `segs` datagrams,
   * `wire` bytes in all); sends first when the table is full.
   */
  private queue(net: Network, off: number, len: number, src: number, peer: Peer, gsoType: number, mss: number, segs: number,
    wire: number): void {
    const tx = this.cur;
    const o = this.out;
    if (tx.count === o.txCap) this.send(net);
    const j = tx.count++;
    tx.offs[j] = off;
    tx.lens[j] = len;
    tx.srcIdx[j] = src;
    tx.addrs.set(peer.record, j * ADDR_LEN);
    o.txGso[2 * j] = gsoType;
    o.txGso[2 * j + 1] = mss;
    o.txSegs[j] = segs;
    o.txWire[j] = wire;
    o.txPeer[j] = peer;
  }

  /** Copies a VXLAN packet from `from` into a scratch slot of the plain slab (encrypted floods only); returns its offset. */
  private copyToScratch(net: Network, from: Buffer, off: number, len: number): number {
    if (this.scratchUsed === this.ctx.batchSize) this.send(net);
    const o = this.out;
    const dst = o.scratchBase + this.scratchUsed * o.slotSize + this.ctx.headroom - VXLAN_HLEN;
    this.scratchUsed++;
    from.copy(o.tapSlab, dst, off, off + len);
    return dst;
  }

  // ---- 7. seal --------------------------------------------------------------------------------

  /**
   * Encrypted fast path: the VXLAN packet at `slab[pkt]` (header at `pkt`, TSO super-frame at `off`,
   * `len` bytes) sealed by `cipher.sealSuperFrame` into `encOut` and sent to `peer` at once (one
   * sendBatch of per-datagram descriptors). Fail closed: no cipher / no session → `no_session`,
   * never plaintext. Counts the datagrams that reached the wire.
   */
  private sealSuper(net: Network, slab: Buffer, pkt: number, off: number, len: number, src: number, peer: Peer,
    gsoType: number, mss: number): void {
    const ctx = this.ctx;
    const vn = this.vn!;
    const c = net.counters;
    const cipher = ctx.cipher;
    let n = 0;
    if (cipher !== null && cipher.sealSuperFrame !== undefined) {
      slab.copy(this.encVxlan, 0, pkt, pkt + VXLAN_HLEN);
      try {
        n = cipher.sealSuperFrame(peer.record, 0, this.encVxlan, slab.subarray(off, off + len), gsoType, mss, vn.encOut, vn.encLens);
      } catch (e) {
        ctx.warn('seal', e, {});
        n = -3;
      }
    }
    if (n <= 0) {
      ctx.capture.txDrop(net, n === -1 || n === -2 ? TX_OVERSIZE : TX_NO_SESSION, 1, slab, off, len, KIND_FRAME, peer);
      return;
    }
    const lens = vn.encLens;
    const stride = lens[lens.length - 1];
    const b = vn.encTx;
    const rec = peer.record;
    for (let i = 0; i < n; i++) {
      b.offs[i] = i * stride;
      b.lens[i] = lens[i];
      b.srcIdx[i] = src;
      b.addrs.set(rec, i * ADDR_LEN);
    }
    b.count = n;
    // 8. send, 9. count
    ctx.hist.udpSend.add(n);
    const consumed = ctx.safeSend(b);
    let sent = 0;
    let bytes = 0;
    const status = b.status;
    for (let i = 0; i < consumed; i++) {
      if (status[i] === 0) {
        sent++;
        bytes += lens[i];
      } else {
        ctx.capture.txDrop(net, txDropForErrno(status[i]), 1, null, 0, lens[i], KIND_DATAGRAM, peer);
      }
    }
    c.txPackets += sent;
    c.txBytes += bytes;
    peer.counters.txPackets += sent;
    peer.counters.txBytes += bytes;
    if (consumed < n) {
      ctx.capture.txDrop(net, TX_SEND_FAILED, n - consumed, null, 0, 0, KIND_DATAGRAM, peer);
    }
    b.count = 0;
  }

  /** Seals the queued descriptors of an encrypted network in place; keeps those sealed (compacted). */
  private seal(net: Network, tx: TxBatch): void {
    const cipher = this.ctx.cipher;
    if (cipher === null) {
      for (let j = 0; j < tx.count; j++) this.ctx.capture.txDrop(net, TX_NO_SESSION, 1, null, 0, tx.lens[j], KIND_DATAGRAM, this.out.txPeer[j]);
      tx.count = 0;
      return;
    }
    const o = this.out;
    const sb = tx === this.vtx ? this.vseal! : o.seal;
    sb.count = tx.count;
    sb.vnis.fill(net.config.vni, 0, tx.count);
    sb.status.fill(CIPHER_NO_SESSION, 0, tx.count);
    try {
      cipher.sealBatch(sb);
    } catch (e) {
      this.ctx.warn('seal', e, {});
    }
    let k = 0;
    for (let j = 0; j < sb.count; j++) {
      const st = sb.status[j];
      if (st === CIPHER_OK) {
        tx.offs[k] = sb.outOffs[j];
        tx.lens[k] = sb.outLens[j];
        tx.srcIdx[k] = tx.srcIdx[j];
        o.txWire[k] = sb.outLens[j];
        if (k !== j) tx.addrs.copyWithin(k * ADDR_LEN, j * ADDR_LEN, (j + 1) * ADDR_LEN);
        o.txPeer[k] = o.txPeer[j];
        k++;
      } else if (st !== CIPHER_QUEUED) {
        this.ctx.capture.txDrop(net, TX_NO_SESSION, 1, null, 0, tx.lens[j], KIND_DATAGRAM, o.txPeer[j]);
      }
    }
    tx.count = k;
  }

  // ---- 8. send --------------------------------------------------------------------------------

  /** Seals (encrypted networks), sends the queued descriptors, counts. */
  private send(net: Network): void {
    const tx = this.cur;
    if (tx.count > 0 && net.config.encrypted) this.seal(net, tx);
    this.scratchUsed = 0;
    if (tx.count === 0) return;
    const ctx = this.ctx;
    const count = tx.count;
    ctx.hist.udpSend.add(count);
    const consumed = tx === this.vtx ? ctx.safeSendGso(tx, this.out.txGso) : ctx.safeSend(tx);
    this.count(net, tx, count, consumed);
    tx.count = 0;
  }

  // ---- 9. count -------------------------------------------------------------------------------

  /**
   * Descriptors [0, consumed) with status 0 reached the wire; those skipped are drops by errno class
   * (`emsgsize`, `unreachable`, `send_failed`); [consumed, count) were not attempted: `send_failed`.
   * A super-frame counts as its datagrams.
   */
  private count(net: Network, tx: TxBatch, count: number, consumed: number): void {
    const c = net.counters;
    const o = this.out;
    const segs = o.txSegs;
    const wire = o.txWire;
    const status = tx.status;
    for (let j = 0; j < count; j++) {
      if (j >= consumed) {
        this.ctx.capture.txDrop(net, TX_SEND_FAILED, segs[j], null, 0, wire[j], KIND_DATAGRAM, o.txPeer[j]);
        continue;
      }
      if (status[j] !== 0) {
        this.ctx.capture.txDrop(net, txDropForErrno(status[j]), segs[j], null, 0, wire[j], KIND_DATAGRAM, o.txPeer[j]);
        continue;
      }
      const pc = o.txPeer[j]!.counters;
      c.txPackets += segs[j];
      c.txBytes += wire[j];
      pc.txPackets += segs[j];
      pc.txBytes += wire[j];
    }
  }
}
