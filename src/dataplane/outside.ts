/**
 * Inbound: VXLAN datagrams from the underlay ("outside") go to the TAP of their network
 * ("inside"). Hot path; batch-shaped; no per-packet allocation. Per UDP readiness, up to `burst`
 * batches; each function below is named after its stage:
 *
 *   1. recv          one recvBatch into the UDP slab (datagram at slot + 0), source address
 *                    records alongside;
 *   2. open          cipher envelopes (if a cipher is set): cipher.openBatch in place → plaintext
 *                    VXLAN, consumed control messages, or `decrypt_failed` (global: the VNI is
 *                    unknown until decrypted);
 *   2b. probe        data-path probes (src/probe/wire.ts: VXLAN I flag clear, "VXP" magic),
 *                    before any tenant processing: format, VNI, then admission (plaintext) or the
 *                    authenticated sender (encrypted: sealed in a session, serving the VNI), else a
 *                    counted probe drop; valid ones go to the probe stage (probe-seam.ts), which
 *                    queues bounded replies, sent once per batch (`flush`);
 *   3. checkVxlan    `truncated` / `no_i_flag` / `reserved_bits` (global drops);
 *   4. network       VNI → network, else `unknown_vni` (global); from here counted per network
 *                    (rxPackets) and per peer;
 *      admit         plaintext network: the source address must be a known host of the VNI
 *                    (static peer, live gossip member serving it) or let in by `acceptFrom`,
 *                    else `unknown_vtep` — before any peer, counter or FDB entry exists for it
 *                    (admission.ts; encrypted networks admit by session instead);
 *   5. checkFrame    `plaintext_on_encrypted`, `runt_frame`, `oversize_frame`, `bad_src_mac`
 *                    (group or zero);
 *   6. checkOwner    `own_src_mac` (the TAP's MAC or a local FDB entry); then the sender: on a
 *                    decrypted datagram the host whose session authenticated it (the cipher's
 *                    `senders` id → `senderEndpoint`), else the outer source address. Encrypted
 *                    networks: a sender that does not serve the VNI (static peers serve all, gossip
 *                    peers the VNIs they announce) → `not_serving`; any network: a source MAC that
 *                    gossip binds to another host (static entry) → `foreign_src_mac`;
 *   6b. policy       networks with a policy (policy-seam.ts): the inner source must be an
 *                    endpoint of the sending host, and the flow allowed → else `policy_denied`;
 *   7. learnRemote   the inner source MAC → the sender (remote FDB entry; never over a local or
 *                    static one);
 *   8. deliver       one TAP writeBatch per network per batch, descriptors pointing INTO the
 *                    receive slab at +8 (no copy);
 *   9. count         rxDelivered (status 0); skipped by the write (errno) or not attempted
 *                    (EAGAIN) → `tap_write_failed`.
 *
 * (With UDP GRO on, the transport splits coalesced buffers back into datagrams; a vnet TAP's
 * writeBatch coalesces TCP segment runs and runs of equal-sized UDP datagrams of one flow into GSO
 * frames: both invisible here.)
 *
 * GRO runs (seams.ts `RxRuns`; on when the transport forms them and every network's TAP writes GSO
 * frames, VXMESH_GRO_RUNS=0 off): the transport hands a GRO buffer's run of one inner TCP flow over
 * as ONE descriptor (merged while it splits the buffer), so stages 2–9 run once per run as inside.ts
 * does per TSO super-frame. A run is only formed where every datagram in it would get the same
 * verdict from every stage (one outer source, one plaintext VXLAN header, one inner Ethernet header
 * and flow, every segment within the smallest network frame limit), so each stage decides once and
 * counts `segs` datagrams of `wire` bytes: rxPackets/rxBytes, peer counters, every drop, and
 * rxDelivered/rxDeliveredBytes come out exactly as per datagram. The write is `writeBatchGso`
 * (a GSO frame of the run's segment size); captures and drop rings see the run as one frame.
 * Identity per network: rxDelivered + Σ rxDrops = rxPackets.
 *
 * Drops (src/capture/drops.ts): every drop above is one call, `ctx.capture.rxDrop`, which counts it
 * in rxDrops (the network's, or the global counters' before the network is known) and again by
 * sender, and keeps a bounded copy kept in the drop ring of its network, or the global ring before the
 * network is known); while a live capture is open (`capture.live`, read once per network per batch
 * in `deliver`) each frame written to a TAP goes to `capture.forwarded`.
 */
import { ADDR_LEN } from './addr';
import { ADMIT_REFUSED } from './admission';
import { CIPHER_CONSUMED, CIPHER_FAILED, CIPHER_OK, type PacketCipher } from './cipher-seam';
import type { PathContext } from './context';
import type { ProbeStage } from './probe-seam';
import { PROBE_OK, isProbe, parseProbe, probeDropIndex, probeVni } from '../probe/wire';
import { rxDropIndex } from './counters';
import { ETH_HLEN, isVlanTpid, macEquals } from './ethernet';
import { FDB_LOCAL, FDB_STATIC } from './fdb';
import type { Network } from './network';
import type { Peer } from './peers';
import type { GroRunTransport, GsoTapDevice } from './seams';
import type { InboundSlabs } from './slabs';
import { tapWriteTable } from './slabs';
import type { TxBatch } from './seams';
import { VXLAN_HLEN, VXLAN_OK, vxlanCheck, vxlanVni } from './vxlan';
import { DIR_RX } from '../capture/drops';
import { KIND_DATAGRAM, KIND_FRAME } from '../capture/ring';

const RX_TRUNCATED = rxDropIndex.truncated;
const RX_NO_I_FLAG = rxDropIndex.no_i_flag;
const RX_RESERVED = rxDropIndex.reserved_bits;
const RX_UNKNOWN_VNI = rxDropIndex.unknown_vni;
const RX_UNKNOWN_VTEP = rxDropIndex.unknown_vtep;
const RX_RUNT = rxDropIndex.runt_frame;
const RX_OVERSIZE = rxDropIndex.oversize_frame;
const RX_BAD_SRC = rxDropIndex.bad_src_mac;
const RX_OWN_SRC = rxDropIndex.own_src_mac;
const RX_PLAINTEXT = rxDropIndex.plaintext_on_encrypted;
const RX_DECRYPT = rxDropIndex.decrypt_failed;
const RX_TAP_FAIL = rxDropIndex.tap_write_failed;
const RX_POLICY = rxDropIndex.policy_denied;
const RX_NOT_SERVING = rxDropIndex.not_serving;
const RX_FOREIGN_SRC = rxDropIndex.foreign_src_mac;
/** Most authenticated sender ids remembered (beyond: the cache starts over). */
const MAX_SENDERS = 4096;

/** An authenticated sender id resolved to its peer, with the outer address it was last seen from. */
interface SenderEntry {
  peer: Peer | null;
  generation: number;
  readonly outer: Buffer;
}
const VXLAN_STATUS_INDEX = [-1, RX_TRUNCATED, RX_NO_I_FLAG, RX_RESERVED];
const PD_UNKNOWN_VNI = probeDropIndex.unknown_vni;
const PD_NOT_ADMITTED = probeDropIndex.not_admitted;
const PD_UNAUTH = probeDropIndex.unauthenticated;

/** Datagram states between `open` and the per-datagram stages. */
const D_PLAIN = 0;
const D_DECRYPTED = 1;
const D_SKIP = 2;

/** VXMESH_DEBUG_RUNS=1: a refused GRO run write is printed (rate-limited) with its errno and headers (diagnostics). */
const DEBUG_RUNS = process.env.VXMESH_DEBUG_RUNS === '1';
let dbgAt = 0;
/** No drop: the frame goes on. */
const PASS = -1;

export class Outside {
  /** Inbound memory (replaced by `reallocate`). */
  mem: InboundSlabs;
  private readonly slot: () => number;
  /** Networks with descriptors pending in this batch. */
  private touched: (Network | null)[] = [];
  /** Authenticated sender ids → peers, for `sendersOf` (cleared when the cipher changes). */
  private readonly senders = new Map<number, SenderEntry>();
  private sendersOf: PacketCipher | null = null;
  /** The FDB slot of the datagram at hand's inner source MAC (set by `checkOwner`; -1: none). */
  private srcSlot = -1;
  /** GRO runs: received with `recvBatchRuns` (set by the data path, `setRuns`). */
  private runsOn = false;

  constructor(private readonly ctx: PathContext, mem: InboundSlabs, slotSize: () => number) {
    this.mem = mem;
    this.slot = slotSize;
  }

  /** New inbound memory (larger slots): every network's TAP write table is rebuilt over it. */
  reallocate(mem: InboundSlabs): void {
    this.mem = mem;
    for (const net of this.ctx.byVni.values()) this.addNetwork(net);
  }

  /**
   * GRO runs on or off (control plane, outside a batch): on needs memory with the run area
   * (`allocateInbound(…, true)`) and a transport that forms them; `maxFrame` bounds every inner
   * segment of a run (the smallest network frame limit, so a run never holds a segment the size
   * check would drop).
   */
  setRuns(on: boolean, maxFrame: number): void {
    const r = this.mem.runs;
    this.runsOn = on && r !== null;
    if (r !== null) r.maxFrame = maxFrame;
  }

  /** Whether GRO runs are received (`setRuns`). */
  get runs(): boolean {
    return this.runsOn;
  }

  /** Gives `net` its TAP write table and room in the per-batch list. */
  addNetwork(net: Network): void {
    const B = this.ctx.batchSize;
    net.tapTx = tapWriteTable(B, this.mem.udpSlab);
    net.tapGso = new Uint16Array(2 * B);
    net.tapSegs = new Uint16Array(B);
    net.tapBytes = new Uint32Array(B);
    this.touched = new Array<Network | null>(Math.max(this.touched.length, this.ctx.byVni.size + 1)).fill(null);
  }

  // ---- 1. recv --------------------------------------------------------------------------------

  /** UDP readiness: up to `burst` batches. */
  recv(): void {
    const ctx = this.ctx;
    for (let round = 0; round < ctx.burst; round++) {
      let n: number;
      try {
        n = this.runsOn ? (ctx.udp as GroRunTransport).recvBatchRuns(this.mem.udpRx, this.mem.runs!) : ctx.udp.recvBatch(this.mem.udpRx);
      } catch (e) {
        ctx.failTransport(e);
        return;
      }
      if (n <= 0) return;
      if (!ctx.running) continue; // drain and discard
      ctx.counters.udpBatches++;
      ctx.hist.udpRecv.add(n);
      this.datagrams(n);
      if (n < ctx.batchSize) return;
    }
  }

  /** Stages 2–9 over the `n` datagrams just received. */
  private datagrams(n: number): void {
    const ctx = this.ctx;
    const g = ctx.counters;
    const m = this.mem;
    const slab = m.udpSlab;
    const lens = m.udpRx.lens;
    const addrs = m.udpRx.addrs;
    const slot = this.slot();
    const dOff = m.dOff;
    const dLen = m.dLen;
    const dState = m.dState;
    const dSender = m.dSender;
    const dSegs = m.dSegs;
    const dWire = m.dWire;
    const peers = ctx.peers;
    const runs = this.runsOn ? m.runs : null;
    const now = ctx.capture.stamp(ctx.clock.now());
    const nets = ctx.netList;
    for (let k = 0; k < nets.length; k++) {
      const net = nets[k];
      net.fdb.setNow(now);
      if (net.policy !== null) net.policy.setNow(now);
    }
    let datagrams = n;
    if (runs === null) {
      for (let i = 0; i < n; i++) {
        dOff[i] = i * slot;
        dLen[i] = lens[i];
        dState[i] = D_PLAIN;
        dSender[i] = 0;
        dSegs[i] = 1;
        dWire[i] = lens[i];
      }
    } else {
      for (let i = 0; i < n; i++) {
        dOff[i] = runs.offs[i];
        dLen[i] = lens[i];
        dState[i] = D_PLAIN;
        dSender[i] = 0;
        const segs = runs.segs[i];
        dSegs[i] = segs;
        dWire[i] = runs.wire[i];
        datagrams += segs - 1;
      }
    }
    g.rxDatagrams += datagrams;
    // 2. open
    if (ctx.cipher !== null) this.open(n);
    const probe = ctx.probe;
    let probes = false;
    let touched = 0;
    for (let i = 0; i < n; i++) {
      const state = dState[i];
      if (state === D_SKIP) continue;
      const off = dOff[i];
      const len = dLen[i];
      // a GRO run (segs > 1) stands for `segs` datagrams of `wire` bytes: counted, dropped and delivered as them
      const segs = dSegs[i];
      const wire = dWire[i];
      // 2b. probe
      if (probe !== null && isProbe(slab, off, len)) {
        g.rxProbes++;
        this.probe(probe, i, state === D_DECRYPTED, slab, off, len, addrs);
        probes = true;
        continue;
      }
      // 3. VXLAN check
      const st = vxlanCheck(slab, off, len);
      if (st !== VXLAN_OK) {
        ctx.capture.rxDrop(null, VXLAN_STATUS_INDEX[st], segs, slab, off, len, KIND_DATAGRAM, addrs, i * ADDR_LEN, peers.find(addrs, i * ADDR_LEN));
        continue;
      }
      // 4. network
      const net = ctx.byVni.get(vxlanVni(slab, off));
      if (net === undefined) {
        ctx.capture.rxDrop(null, RX_UNKNOWN_VNI, segs, slab, off, len, KIND_DATAGRAM, addrs, i * ADDR_LEN, peers.find(addrs, i * ADDR_LEN));
        continue;
      }
      const c = net.counters;
      c.rxPackets += segs;
      c.rxBytes += wire;
      const aOff = i * ADDR_LEN;
      // admit
      if (!net.config.encrypted && net.accept.check(addrs, aOff) === ADMIT_REFUSED) {
        ctx.capture.rxDrop(net, RX_UNKNOWN_VTEP, segs, slab, off + VXLAN_HLEN, len - VXLAN_HLEN, KIND_FRAME, addrs, aOff, null);
        continue;
      }
      let peer = peers.find(addrs, aOff);
      if (peer !== null) {
        peer.counters.rxPackets += segs;
        peer.counters.rxBytes += wire;
      }
      const inner = off + VXLAN_HLEN;
      const ilen = len - VXLAN_HLEN;
      // 5. frame check (a run: its largest segment, the first — wire − len = (segs − 1) × its VXLAN + inner headers)
      const seg = segs === 1 ? ilen : (wire - len) / (segs - 1) - VXLAN_HLEN + runs!.gso[2 * i + 1];
      let drop = this.checkFrame(net, state === D_DECRYPTED, slab, inner, seg);
      // 6. owner check: our own MACs; then the sender, its right to the VNI and to the source MAC
      if (drop === PASS) drop = this.checkOwner(net, slab, inner);
      let sender = peer;
      if (state === D_DECRYPTED && dSender[i] !== 0) sender = this.authenticated(dSender[i], addrs, aOff, peer);
      if (drop === PASS && net.config.encrypted && (sender === null || !net.serves(sender))) drop = RX_NOT_SERVING;
      if (drop === PASS) drop = this.checkMacOwner(net, sender);
      // 6b. policy ingress: identity from the sending host's endpoint records
      if (drop === PASS && net.policy !== null && !net.policy.filter(slab, inner, ilen, sender !== null ? sender.endpoint.address : '')) drop = RX_POLICY;
      if (drop !== PASS) {
        ctx.capture.rxDrop(net, drop, segs, slab, inner, ilen, KIND_FRAME, addrs, aOff, sender ?? peer);
        continue;
      }
      // 7. learn remote
      if (sender === null) sender = peers.learn(addrs, aOff);
      if (sender !== null) this.learnRemote(net, slab, inner, sender);
      // 8. deliver (queued; written per network below)
      if (net.rxPending === 0) this.touched[touched++] = net;
      const w = net.tapTx;
      const p = net.rxPending++;
      w.offs[p] = inner;
      w.lens[p] = ilen;
      net.tapSegs[p] = segs;
      net.tapBytes[p] = wire - segs * VXLAN_HLEN;
      if (segs === 1) {
        net.tapGso[2 * p] = 0;
      } else {
        net.tapGso[2 * p] = runs!.gso[2 * i];
        net.tapGso[2 * p + 1] = runs!.gso[2 * i + 1];
        net.rxGso = true;
      }
    }
    this.deliver(touched);
    if (probes) probe!.flush();
  }

  // ---- 2. open --------------------------------------------------------------------------------

  /** Hands cipher envelopes to `openBatch`; marks each datagram decrypted, consumed or failed. */
  private open(n: number): void {
    const ctx = this.ctx;
    const cipher = ctx.cipher!;
    const m = this.mem;
    const ob = m.open;
    const slab = m.udpSlab;
    const from = m.udpRx.addrs;
    const to = ob.addrs;
    ob.count = 0;
    for (let i = 0; i < n; i++) {
      if (!cipher.isEnvelope(slab, m.dOff[i], m.dLen[i])) continue;
      const j = ob.count++;
      ob.offs[j] = m.dOff[i];
      ob.lens[j] = m.dLen[i];
      // a byte loop, not Buffer.copy: copy() makes a Uint8Array view per call (per datagram here)
      for (let b = 0, s = i * ADDR_LEN, d = j * ADDR_LEN; b < ADDR_LEN; b++) to[d + b] = from[s + b];
      m.openIdx[j] = i;
      m.dState[i] = D_SKIP;
    }
    if (ob.count === 0) return;
    ob.status.fill(CIPHER_FAILED, 0, ob.count);
    ob.senders.fill(0, 0, ob.count);
    try {
      cipher.openBatch(ob);
    } catch (e) {
      ctx.warn('open', e, {});
    }
    for (let j = 0; j < ob.count; j++) {
      const i = m.openIdx[j];
      const st = ob.status[j];
      if (st === CIPHER_OK) {
        const o = ob.outOffs[j];
        const l = ob.outLens[j];
        // the plaintext must lie inside the datagram's own slot
        if (o >= ob.offs[j] && o + l <= ob.offs[j] + ob.lens[j]) {
          m.dOff[i] = o;
          m.dLen[i] = l;
          m.dState[i] = D_DECRYPTED;
          m.dSender[i] = ob.senders[j];
          continue;
        }
        ctx.capture.rxDrop(null, RX_DECRYPT, 1, slab, ob.offs[j], ob.lens[j], KIND_DATAGRAM, m.udpRx.addrs, i * ADDR_LEN, ctx.peers.find(m.udpRx.addrs, i * ADDR_LEN));
      } else if (st !== CIPHER_CONSUMED) {
        ctx.capture.rxDrop(null, RX_DECRYPT, 1, slab, ob.offs[j], ob.lens[j], KIND_DATAGRAM, m.udpRx.addrs, i * ADDR_LEN, ctx.peers.find(m.udpRx.addrs, i * ADDR_LEN));
      }
    }
  }

  // ---- 2b. probe ------------------------------------------------------------------------------

  /** Validates probe datagram `i` (format, VNI, admission or session) and hands it to the probe stage. */
  private probe(p: ProbeStage, i: number, decrypted: boolean, slab: Buffer, off: number, len: number, addrs: Buffer): void {
    const st = parseProbe(slab, off, len);
    if (st !== PROBE_OK) {
      p.drop(st);
      return;
    }
    const net = this.ctx.byVni.get(probeVni(slab, off));
    if (net === undefined) {
      p.drop(PD_UNKNOWN_VNI);
      return;
    }
    const aOff = i * ADDR_LEN;
    const peers = this.ctx.peers;
    let peer: Peer | null;
    if (net.config.encrypted) {
      const id = this.mem.dSender[i];
      peer = decrypted && id !== 0 ? this.authenticated(id, addrs, aOff, peers.find(addrs, aOff)) : null;
      if (peer === null || !net.serves(peer)) {
        p.drop(PD_UNAUTH);
        return;
      }
    } else {
      peer = net.accept.check(addrs, aOff) === ADMIT_REFUSED ? null : peers.find(addrs, aOff);
      if (peer === null) {
        p.drop(PD_NOT_ADMITTED);
        return;
      }
    }
    peer.counters.rxPackets++;
    peer.counters.rxBytes += len;
    p.input(slab, off, len, net, peer);
  }

  // ---- 5. frame check -------------------------------------------------------------------------

  /** The inner frame at `slab[inner]` (`ilen` bytes): PASS, or the drop reason's index. */
  private checkFrame(net: Network, decrypted: boolean, slab: Buffer, inner: number, ilen: number): number {
    if (net.config.encrypted && !decrypted) return RX_PLAINTEXT;
    if (ilen < ETH_HLEN) return RX_RUNT;
    if (ilen > (isVlanTpid((slab[inner + 12] << 8) | slab[inner + 13]) ? net.maxTagged : net.maxUntagged)) return RX_OVERSIZE;
    if ((slab[inner + 6] & 1) !== 0) return RX_BAD_SRC;
    if ((slab[inner + 6] | slab[inner + 7] | slab[inner + 8] | slab[inner + 9] | slab[inner + 10] | slab[inner + 11]) === 0) return RX_BAD_SRC;
    return PASS;
  }

  // ---- 6. owner check -------------------------------------------------------------------------

  /** PASS, or `own_src_mac` when the inner source MAC is this host's (the TAP's, or a local entry). */
  private checkOwner(net: Network, slab: Buffer, inner: number): number {
    this.srcSlot = -1;
    if (macEquals(slab, inner + 6, net.tap.mac, 0)) return RX_OWN_SRC;
    const sHi = (slab[inner + 6] << 8) | slab[inner + 7];
    const sLo = ((slab[inner + 8] << 24) | (slab[inner + 9] << 16) | (slab[inner + 10] << 8) | slab[inner + 11]) >>> 0;
    // one FDB lookup per datagram: its slot serves the MAC-owner check and learning below
    const s = net.fdb.lookup(sHi, sLo);
    this.srcSlot = s;
    return s >= 0 && net.fdb.kindAt(s) === FDB_LOCAL ? RX_OWN_SRC : PASS;
  }

  /**
   * The peer of authenticated sender `id` (the underlay endpoint its session is bound to, by
   * address), or `outer` when the cipher cannot tell (no `senderEndpoint`). Resolved once per id
   * and again only when the id shows up from another outer address or the peer table changed;
   * null for an id the cipher does not know.
   */
  private authenticated(id: number, addrs: Buffer, aOff: number, outer: Peer | null): Peer | null {
    const cipher = this.ctx.cipher;
    if (cipher === null || cipher.senderEndpoint === undefined) return outer;
    const peers = this.ctx.peers;
    if (this.sendersOf !== cipher) {
      this.senders.clear();
      this.sendersOf = cipher;
    }
    let e = this.senders.get(id);
    if (e !== undefined && e.generation === peers.generation) {
      const o = e.outer;
      let k = 0;
      while (k < 16 && o[k] === addrs[aOff + k]) k++;
      if (k === 16) return e.peer;
    }
    // control-plane rate: a new id, a moved host, or a changed peer table
    let ep = null;
    try {
      ep = cipher.senderEndpoint(id);
    } catch (err) {
      this.ctx.warn('sender_endpoint', err, {});
    }
    const p = ep === null ? null : peers.forAddress(ep);
    if (e === undefined) {
      if (this.senders.size >= MAX_SENDERS) this.senders.clear();
      e = { peer: p, generation: 0, outer: Buffer.alloc(16) };
      this.senders.set(id, e);
    }
    e.peer = p;
    e.generation = peers.generation;
    addrs.copy(e.outer, 0, aOff, aOff + 16);
    return p;
  }

  /** PASS, or `foreign_src_mac` when gossip binds the inner source MAC to a host other than `sender`. */
  private checkMacOwner(net: Network, sender: Peer | null): number {
    const fdb = net.fdb;
    const s = this.srcSlot;
    if (s < 0 || fdb.kindAt(s) !== FDB_STATIC) return PASS;
    const owner = fdb.peerAt(s);
    return owner === sender || (owner !== null && sender !== null && owner.key === sender.key) ? PASS : RX_FOREIGN_SRC;
  }

  // ---- 7. learn remote ------------------------------------------------------------------------

  private learnRemote(net: Network, slab: Buffer, inner: number, peer: Peer): void {
    const sHi = (slab[inner + 6] << 8) | slab[inner + 7];
    const sLo = ((slab[inner + 8] << 24) | (slab[inner + 9] << 16) | (slab[inner + 10] << 8) | slab[inner + 11]) >>> 0;
    net.fdb.learnRemoteAt(this.srcSlot, sHi, sLo, peer);
  }

  // ---- 8. deliver, 9. count -------------------------------------------------------------------

  /** One TAP writeBatch per network that got frames in this batch; counts what was written. */
  private deliver(touched: number): void {
    const ctx = this.ctx;
    for (let t = 0; t < touched; t++) {
      const net = this.touched[t]!;
      this.touched[t] = null;
      const w = net.tapTx;
      const count = net.rxPending;
      net.rxPending = 0;
      w.count = count;
      ctx.hist.tapWrite.add(count);
      const consumed = net.rxGso ? this.writeRuns(net, w) : ctx.safeTapWrite(net, w);
      net.rxGso = false;
      const c = net.counters;
      const status = w.status;
      const slab = this.mem.udpSlab;
      const live = ctx.capture.live;
      const segs = net.tapSegs;
      for (let j = 0; j < consumed; j++) {
        if (status[j] === 0) {
          c.rxDelivered += segs[j];
          c.rxDeliveredBytes += net.tapBytes[j];
          if (live) ctx.capture.forwarded(net, DIR_RX, slab, w.offs[j], w.lens[j], null);
        } else {
          ctx.capture.rxDrop(net, RX_TAP_FAIL, segs[j], slab, w.offs[j], w.lens[j], KIND_FRAME, null, 0, null);
        }
      }
      for (let j = consumed; j < count; j++) ctx.capture.rxDrop(net, RX_TAP_FAIL, segs[j], slab, w.offs[j], w.lens[j], KIND_FRAME, null, 0, null);
    }
  }

  /** A batch with GRO runs: `writeBatchGso` with the per-descriptor gso info (the data path turns runs on only over such TAPs). */
  private writeRuns(net: Network, w: TxBatch): number {
    w.status.fill(0, 0, w.count);
    const tap = net.tap as Partial<GsoTapDevice>;
    if (typeof tap.writeBatchGso !== 'function') return 0; // a TAP swapped under a pending batch: counted tap_write_failed
    try {
      const n = tap.writeBatchGso(w, net.tapGso);
      if (DEBUG_RUNS) {
        for (let j = 0; j < w.count; j++) {
          if (j >= n || w.status[j] !== 0) {
            const t = Date.now();
            if (t - dbgAt > 500) {
              dbgAt = t;
              console.error(JSON.stringify({ dbg: 'runs', j, n, count: w.count, st: w.status[j], gso: net.tapGso[2 * j], mss: net.tapGso[2 * j + 1], len: w.lens[j], segs: net.tapSegs[j],
                hdr: w.slab.subarray(w.offs[j], w.offs[j] + 80).toString('hex') }));
            }
            break;
          }
        }
      }
      return n > 0 ? Math.min(n, w.count) : 0;
    } catch (e) {
      this.ctx.warn('tap_write', e, { tap: net.tap.name });
      return 0;
    }
  }
}
