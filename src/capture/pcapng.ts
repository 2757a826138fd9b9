/**
 * A small pcapng writer (draft-ietf-opsawg-pcapng; what Wireshark and tshark read). No npm
 * package writes pcapng (checked with `npm view`: `pcap-ng-parser` only parses), so this file
 * encodes the four blocks vxmesh needs, little-endian, every block and option padded to 32 bits:
 *
 *   SHB  Section Header Block   (0x0A0D0D0A) byte-order magic 0x1A2B3C4D, version 1.0, section
 *                               length -1 (unknown: the file is written as a stream), shb_userappl;
 *   IDB  Interface Description  (0x00000001) link type, snap length, if_name, if_description,
 *                               if_tsresol = 6 (microseconds, the default, written out);
 *   EPB  Enhanced Packet Block  (0x00000006) interface id, 64-bit timestamp (µs since the epoch),
 *                               captured and original length, the bytes, and options:
 *                               opt_comment (1, UTF-8: the drop reason and peer), epb_flags (2:
 *                               bits 0-1 direction, 01 inbound, 10 outbound), epb_dropcount (4,
 *                               64-bit: frames missed since the previous packet of this interface);
 *   ISB  Interface Statistics   (0x00000005) isb_ifrecv (4) and isb_ifdrop (5) at the end.
 *
 * Each block is a Buffer of its own (control plane: capture output, never on the hot path), so a
 * stream of them can be cut at block boundaries (`BlockSplitter`): a file holding whole blocks is
 * a valid pcapng file, which is how `vxmesh capture` stays valid when interrupted.
 */

export const BT_SHB = 0x0a0d0d0a;
export const BT_IDB = 0x00000001;
export const BT_ISB = 0x00000005;
export const BT_EPB = 0x00000006;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
/** LINKTYPE_ETHERNET. */
export const LINKTYPE_ETHERNET = 1;

export const EPB_INBOUND = 1;
export const EPB_OUTBOUND = 2;

const OPT_END = 0;
const OPT_COMMENT = 1;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
const EPB_FLAGS = 2;
const EPB_DROPCOUNT = 4;
const ISB_IFRECV = 4;
const ISB_IFDROP = 5;

const pad4 = (n: number): number => (n + 3) & ~3;

/** Options of a block: [code, value] pairs, encoded with their padding and opt_endofopt. */
function options(list: [number, Buffer][]): Buffer {
  if (list.length === 0) return Buffer.alloc(0);
  let size = 4;
  for (const [, v] of list) {
    if (v.length > 0xffff) throw new RangeError(`pcapng option value of ${v.length} bytes is larger than 65535`);
    size += 4 + pad4(v.length);
  }
  const b = Buffer.alloc(size);
  let o = 0;
  for (const [code, v] of list) {
    b.writeUInt16LE(code, o);
    b.writeUInt16LE(v.length, o + 2);
    v.copy(b, o + 4);
    o += 4 + pad4(v.length);
  }
  b.writeUInt16LE(OPT_END, o);
  b.writeUInt16LE(0, o + 2);
  return b;
}

/** A block: type, total length, `body` (already padded), total length again. */
function block(type: number, body: Buffer): Buffer {
  const total = 12 + body.length;
  const b = Buffer.alloc(total);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(total, 4);
  body.copy(b, 8);
  b.writeUInt32LE(total, total - 4);
  return b;
}

function u64(v: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}

/** The Section Header Block that starts a file. */
export function sectionHeader(userAppl = 'vxmesh'): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32LE(BYTE_ORDER_MAGIC, 0);
  head.writeUInt16LE(1, 4); // major
  head.writeUInt16LE(0, 6); // minor
  head.writeBigInt64LE(-1n, 8); // section length: not given
  return block(BT_SHB, Buffer.concat([head, options([[SHB_USERAPPL, Buffer.from(userAppl, 'utf8')]])]));
}

/** An Interface Description Block (interface ids count from 0 in the order they are written). */
export function interfaceDescription(opts: { linkType?: number; snapLen: number; name: string; description?: string }): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(opts.linkType ?? LINKTYPE_ETHERNET, 0);
  head.writeUInt16LE(0, 2);
  head.writeUInt32LE(opts.snapLen >>> 0, 4);
  const list: [number, Buffer][] = [[IF_NAME, Buffer.from(opts.name, 'utf8')]];
  if (opts.description) list.push([IF_DESCRIPTION, Buffer.from(opts.description, 'utf8')]);
  list.push([IF_TSRESOL, Buffer.from([6])]);
  return block(BT_IDB, Buffer.concat([head, options(list)]));
}

export interface PacketOptions {
  /** opt_comment (UTF-8). */
  comment?: string;
  /** EPB_INBOUND or EPB_OUTBOUND (epb_flags direction bits). */
  direction?: number;
  /** epb_dropcount: packets lost since the previous one of this interface (0: left out). */
  dropCount?: number;
}

/**
 * An Enhanced Packet Block: `data` captured (its length is the captured length), `origLen` the
 * frame's length on the wire, `timeMicros` the time in µs since the Unix epoch.
 */
export function enhancedPacket(ifId: number, timeMicros: number, data: Buffer, origLen: number, opts: PacketOptions = {}): Buffer {
  const ts = BigInt(Math.max(0, Math.round(timeMicros)));
  const head = Buffer.alloc(20);
  head.writeUInt32LE(ifId, 0);
  head.writeUInt32LE(Number(ts >> 32n), 4);
  head.writeUInt32LE(Number(ts & 0xffffffffn), 8);
  head.writeUInt32LE(data.length, 12);
  head.writeUInt32LE(Math.max(origLen, data.length) >>> 0, 16);
  const padded = Buffer.alloc(pad4(data.length));
  data.copy(padded);
  const list: [number, Buffer][] = [];
  if (opts.comment !== undefined && opts.comment !== '') list.push([OPT_COMMENT, Buffer.from(opts.comment, 'utf8')]);
  if (opts.direction) {
    const f = Buffer.alloc(4);
    f.writeUInt32LE(opts.direction & 3);
    list.push([EPB_FLAGS, f]);
  }
  if (opts.dropCount && opts.dropCount > 0) list.push([EPB_DROPCOUNT, u64(opts.dropCount)]);
  return block(BT_EPB, Buffer.concat([head, padded, options(list)]));
}

/** An Interface Statistics Block: packets received (captured) and dropped (missed) by interface `ifId`. */
export function interfaceStatistics(ifId: number, timeMicros: number, received: number, dropped: number): Buffer {
  const ts = BigInt(Math.max(0, Math.round(timeMicros)));
  const head = Buffer.alloc(12);
  head.writeUInt32LE(ifId, 0);
  head.writeUInt32LE(Number(ts >> 32n), 4);
  head.writeUInt32LE(Number(ts & 0xffffffffn), 8);
  return block(BT_ISB, Buffer.concat([head, options([[ISB_IFRECV, u64(received)], [ISB_IFDROP, u64(dropped)]])]));
}

/** Largest block `BlockSplitter` accepts (a snap length of 256 KiB plus its options). */
export const MAX_BLOCK = 512 * 1024;

/**
 * Cuts a pcapng byte stream (little-endian, as written here) into whole blocks: `push` returns
 * the blocks completed by a chunk; what remains is an incomplete block (dropped when the stream
 * is cut). Throws on a block length that is not a multiple of 4, under 12 or over MAX_BLOCK.
 */
export class BlockSplitter {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    let o = 0;
    while (this.buf.length - o >= 8) {
      const len = this.buf.readUInt32LE(o + 4);
      if (len < 12 || len % 4 !== 0 || len > MAX_BLOCK) throw new RangeError(`not a pcapng stream: block length ${len} at byte ${o}`);
      if (this.buf.length - o < len) break;
      out.push(this.buf.subarray(o, o + len));
      o += len;
    }
    this.buf = this.buf.subarray(o);
    return out;
  }

  /** Bytes of an incomplete block held. */
  get pending(): number {
    return this.buf.length;
  }
}

/** The type of a block (first 4 bytes). */
export function blockType(b: Buffer): number {
  return b.readUInt32LE(0);
}

/** The epb_dropcount of an EPB (0 when absent). */
export function epbDropCount(b: Buffer): number {
  const cap = b.readUInt32LE(20);
  let o = 28 + pad4(cap);
  const end = b.length - 4;
  while (o + 4 <= end) {
    const code = b.readUInt16LE(o);
    const len = b.readUInt16LE(o + 2);
    if (code === OPT_END) break;
    if (code === EPB_DROPCOUNT && len === 8) return Number(b.readBigUInt64LE(o + 4));
    o += 4 + pad4(len);
  }
  return 0;
}
