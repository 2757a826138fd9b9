/**
 * The data path's memory, allocated at construction (and again only when a network needs larger
 * slots): receive slabs, send descriptor tables and the cipher's batch views over them. Nothing on
 * the hot path allocates; the pipelines only index into what is here.
 */
import { ADDR_LEN } from './addr';
import type { CipherBatch } from './cipher-seam';
import type { Peer } from './peers';
import { GRO_RUN_AREA, VNET_FRAME_MAX, type RxBatch, type RxRuns, type TxBatch } from './seams';
import { GSO_MAX_SEGS } from './tso';

/** Bytes after each frame free for the cipher's tag. */
export const TAILROOM = 64;
/** Bytes per ARP/ND reply slot. */
export const REPLY_SLOT = 128;

/** Outbound (TAP → wire) memory over the plain slab: B TAP slots, then B scratch slots for encrypted flood copies. */
export interface OutboundSlabs {
  readonly slotSize: number;
  readonly tapSlab: Buffer;
  readonly tapRx: RxBatch;
  readonly scratchBase: number;
  /** Send descriptor table (capacity `txCap`) and, per descriptor, its peer, gso info, datagrams and wire bytes. */
  readonly tx: TxBatch;
  readonly txCap: number;
  readonly txPeer: (Peer | null)[];
  /** virtio gso type + MSS per descriptor (0 = plain). */
  readonly txGso: Uint16Array;
  readonly txSegs: Uint16Array;
  readonly txWire: Uint32Array;
  /** `tx` as a seal batch (same arrays). */
  readonly seal: CipherBatch;
  /** ARP/ND replies written to the TAP. */
  readonly replySlab: Buffer;
  readonly replies: TxBatch;
}

/** Fast-path memory (allocated with the first vnet TAP): 64 KiB slots; `vtx` shares `tx`'s arrays. */
export interface VnetSlabs {
  readonly slot: number;
  readonly slab: Buffer;
  readonly rx: RxBatch;
  readonly gso: Uint16Array;
  readonly vtx: TxBatch;
  readonly vseal: CipherBatch;
  /** Encrypted fast path: sealed datagrams of one super-frame (UDP-GSO layout, stride last in encLens), their send table. */
  readonly encOut: Buffer;
  readonly encLens: Uint32Array;
  readonly encTx: TxBatch;
}

/** Inbound (wire → TAP) memory: the UDP slab and per-datagram working arrays. */
export interface InboundSlabs {
  readonly udpSlab: Buffer;
  readonly udpRx: RxBatch;
  readonly open: CipherBatch;
  /** open descriptor j → datagram index. */
  readonly openIdx: Uint32Array;
  /** Per datagram: where its VXLAN packet is (after opening), and its state. */
  readonly dOff: Uint32Array;
  readonly dLen: Uint32Array;
  readonly dState: Uint8Array;
  /** Per decrypted datagram: the authenticated sender's id (`CipherBatch.senders`; 0 = not known). */
  readonly dSender: Uint32Array;
  /** Per descriptor: datagrams it stands for (a GRO run: ≥ 2) and their total bytes. */
  readonly dSegs: Uint16Array;
  readonly dWire: Uint32Array;
  /** GRO run arrays over the run area after the slots (seams.ts `RxRuns`), or null without one. */
  readonly runs: RxRuns | null;
}

export function allocateOutbound(B: number, S: number, headroom: number): OutboundSlabs {
  const txCap = Math.max(256, B * 4);
  const tapSlab = Buffer.alloc(S * B * 2);
  const tx: TxBatch = {
    slab: tapSlab, offs: new Uint32Array(txCap), lens: new Uint32Array(txCap), addrs: Buffer.alloc(txCap * ADDR_LEN),
    srcIdx: new Uint8Array(txCap), status: new Int32Array(txCap), count: 0,
  };
  const replySlab = Buffer.alloc(B * REPLY_SLOT);
  return {
    slotSize: S,
    tapSlab,
    tapRx: { slab: tapSlab, slotSize: S, headroom, slots: B, lens: new Uint32Array(B), addrs: Buffer.alloc(0) },
    scratchBase: S * B,
    tx,
    txCap,
    txPeer: new Array<Peer | null>(txCap).fill(null),
    txGso: new Uint16Array(2 * txCap),
    txSegs: new Uint16Array(txCap),
    txWire: new Uint32Array(txCap),
    seal: {
      slab: tapSlab, offs: tx.offs, lens: tx.lens, addrs: tx.addrs, vnis: new Uint32Array(txCap),
      outOffs: new Uint32Array(txCap), outLens: new Uint32Array(txCap), status: new Uint8Array(txCap), senders: new Uint32Array(txCap), count: 0,
    },
    replySlab,
    replies: {
      slab: replySlab, offs: new Uint32Array(B), lens: new Uint32Array(B), addrs: Buffer.alloc(0), srcIdx: new Uint8Array(0),
      status: new Int32Array(B), count: 0,
    },
  };
}

/** A send table over `slab` sharing `out.tx`'s arrays (one batch is processed at a time). */
export function txOver(out: OutboundSlabs, slab: Buffer): TxBatch {
  const t = out.tx;
  return { slab, offs: t.offs, lens: t.lens, addrs: t.addrs, srcIdx: t.srcIdx, status: t.status, count: 0 };
}

/** `out.seal` over another slab (same arrays). */
export function sealOver(out: OutboundSlabs, slab: Buffer): CipherBatch {
  return { ...out.seal, slab, count: 0 };
}

/**
 * Fast-path slab: `B` slots of headroom + VNET_FRAME_MAX + tailroom (≈ 4.2 MB for 64), kept from
 * `prev` when there is one (only the descriptor views over `out` are rebuilt).
 */
export function allocateVnet(B: number, headroom: number, out: OutboundSlabs, prev: VnetSlabs | null): VnetSlabs {
  if (prev !== null) return { ...prev, vtx: txOver(out, prev.slab), vseal: sealOver(out, prev.slab) };
  const slot = Math.ceil((headroom + VNET_FRAME_MAX + TAILROOM) / 64) * 64;
  const slab = Buffer.alloc(slot * B);
  // sealed super-frame: ≤ 256 segments × (cipher + VXLAN + headers) + 64 KiB payload
  const encOut = Buffer.alloc(256 * 1024);
  return {
    slot,
    slab,
    rx: { slab, slotSize: slot, headroom, slots: B, lens: new Uint32Array(B), addrs: Buffer.alloc(0) },
    gso: new Uint16Array(2 * B),
    vtx: txOver(out, slab),
    vseal: sealOver(out, slab),
    encOut,
    encLens: new Uint32Array(GSO_MAX_SEGS + 1),
    encTx: {
      slab: encOut, offs: new Uint32Array(GSO_MAX_SEGS), lens: new Uint32Array(GSO_MAX_SEGS),
      addrs: Buffer.alloc(GSO_MAX_SEGS * ADDR_LEN), srcIdx: new Uint8Array(GSO_MAX_SEGS),
      status: new Int32Array(GSO_MAX_SEGS), count: 0,
    },
  };
}

/** Inbound memory for `B` slots of `S` bytes; `withRuns`: plus the GRO run area and its arrays. */
export function allocateInbound(B: number, S: number, withRuns = false): InboundSlabs {
  const udpSlab = Buffer.alloc(S * B + (withRuns ? GRO_RUN_AREA : 0));
  return {
    udpSlab,
    udpRx: { slab: udpSlab, slotSize: S, headroom: 0, slots: B, lens: new Uint32Array(B), addrs: Buffer.alloc(B * ADDR_LEN) },
    open: {
      slab: udpSlab, offs: new Uint32Array(B), lens: new Uint32Array(B), addrs: Buffer.alloc(B * ADDR_LEN), vnis: new Uint32Array(B),
      outOffs: new Uint32Array(B), outLens: new Uint32Array(B), status: new Uint8Array(B), senders: new Uint32Array(B), count: 0,
    },
    openIdx: new Uint32Array(B),
    dOff: new Uint32Array(B),
    dLen: new Uint32Array(B),
    dState: new Uint8Array(B),
    dSender: new Uint32Array(B),
    dSegs: new Uint16Array(B),
    dWire: new Uint32Array(B),
    runs: withRuns
      ? { offs: new Uint32Array(B), gso: new Uint16Array(2 * B), segs: new Uint16Array(B), wire: new Uint32Array(B), superOff: S * B, maxFrame: 0 }
      : null,
  };
}

/** A network's inbound TAP write table: descriptors pointing into the UDP slab. */
export function tapWriteTable(B: number, udpSlab: Buffer): TxBatch {
  return {
    slab: udpSlab, offs: new Uint32Array(B), lens: new Uint32Array(B), addrs: Buffer.alloc(0), srcIdx: new Uint8Array(0),
    status: new Int32Array(B), count: 0,
  };
}
