/**
 * Gossip wire codec: compact, versioned binary. Every decoder is strict: lengths and counts are
 * checked against the bytes actually present and against fixed limits BEFORE anything is
 * allocated, so a malformed, truncated, oversized or absurd-length message costs a bounds check
 * and a counted drop (CodecError.reason), never a crash or a large allocation.
 *
 * Packet (plaintext, inside the keyring envelope):
 *   u8 version | u8 type (0 gossip, 1 ping, 2 indirect ping, 3 ack, 4 nack) | body
 *   | u8 nBroadcasts | nBroadcasts × (u16 length | broadcast bytes)
 * Broadcast: u8 kind (5 alive, 6 suspect, 7 dead, 8 alive part) | body.
 * An alive broadcast too large for one packet (many endpoints) is sent as 2..maxParts `alive part`
 * broadcasts: u8 8 | str name | varuint incarnation | u16 part | u16 parts | bytes. The parts'
 * bytes, concatenated in order, are the whole alive broadcast (reassembled by part-assembler.ts),
 * so no gossip datagram ever exceeds the packet budget (no IP fragments).
 * Stream message (push-pull): u8 version | u8 type (10 request, 11 reply, 12 push) | body.
 * A record is length-prefixed (varuint) so it can be skipped or interned without parsing.
 */
import { bytesToIp, ipToBytes, parseAddr, formatAddr } from './addr';
import { EndpointRecord, NodeRecord, PROTOCOL_VERSION, RecordSection, ST_LEFT } from './record';

export const LIMITS = {
  /** Largest plaintext packet accepted (UDP payload bound). */
  maxPacket: 65_000,
  /** Largest stream (push-pull) message accepted. */
  maxStream: 16 * 1024 * 1024,
  maxName: 128,
  maxPublicKey: 256,
  maxVnis: 4096,
  maxEndpoints: 4096,
  maxIpsPerEndpoint: 16,
  maxBroadcasts: 255,
  /** Most members in one push-pull message. */
  maxMembers: 200_000,
  maxRecord: 256 * 1024,
  /** Record sections (gossip API `setSection`): most per record, name and data bytes. */
  maxSections: 16,
  maxSectionName: 32,
  maxSectionData: 64 * 1024,
  /** Most parts an alive broadcast is split into (maxRecord / the smallest useful part size). */
  maxParts: 1024,
} as const;

export type CodecReason = 'truncated' | 'oversized' | 'bad_length' | 'bad_version' | 'bad_type' | 'bad_value' | 'trailing';

export class CodecError extends Error {
  readonly code = 'ERR_VXMESH_GOSSIP_CODEC';
  constructor(readonly reason: CodecReason, message: string) {
    super(message);
  }
}

export const PKT_GOSSIP = 0;
export const PKT_PING = 1;
export const PKT_INDIRECT_PING = 2;
export const PKT_ACK = 3;
export const PKT_NACK = 4;
export const BC_ALIVE = 5;
export const BC_SUSPECT = 6;
export const BC_DEAD = 7;
export const BC_ALIVE_PART = 8;
export const STREAM_REQUEST = 10;
export const STREAM_REPLY = 11;
export const STREAM_PUSH = 12;
export const STREAM_PING = 13;
export const STREAM_ACK = 14;

export interface PingMsg { type: typeof PKT_PING; seq: number; target: string; source: string }
export interface IndirectPingMsg { type: typeof PKT_INDIRECT_PING; seq: number; target: string; targetAddr: string; nack: boolean }
export interface AckMsg { type: typeof PKT_ACK; seq: number }
export interface NackMsg { type: typeof PKT_NACK; seq: number }
export interface GossipOnlyMsg { type: typeof PKT_GOSSIP }
export type PrimaryMsg = PingMsg | IndirectPingMsg | AckMsg | NackMsg | GossipOnlyMsg;

export interface AliveBc { kind: typeof BC_ALIVE; record: NodeRecord }
export interface SuspectBc { kind: typeof BC_SUSPECT; name: string; incarnation: number; from: string }
export interface DeadBc { kind: typeof BC_DEAD; name: string; incarnation: number; from: string }
/** One part of an alive broadcast too large for a packet; `data` is a view into the packet. */
export interface AlivePartBc { kind: typeof BC_ALIVE_PART; name: string; incarnation: number; part: number; parts: number; data: Uint8Array }
export type Broadcast = AliveBc | SuspectBc | DeadBc | AlivePartBc;

/** A member as carried in push-pull: its state and last known record. */
export interface FullEntry { state: number; record: NodeRecord }
export interface DigestEntry { name: string; incarnation: number; state: number }
export interface PushPullRequest { type: typeof STREAM_REQUEST; join: boolean; self: FullEntry; digest: DigestEntry[] }
export interface PushPullReply { type: typeof STREAM_REPLY; entries: FullEntry[]; want: string[] }
export interface PushMsg { type: typeof STREAM_PUSH; entries: FullEntry[] }
/** Reliable-path probe (memberlist's TCP fallback ping) and its answer. */
export interface StreamPing { type: typeof STREAM_PING; target: string }
export interface StreamAck { type: typeof STREAM_ACK }
export type StreamMsg = PushPullRequest | PushPullReply | PushMsg | StreamPing | StreamAck;

/** Shares decoded records between decoders (the simulator's thousands of nodes); keyed by exact bytes. */
export interface RecordInterner {
  get(key: string): NodeRecord | undefined;
  set(key: string, r: NodeRecord): void;
}

// ---------------------------------------------------------------------------------------------
// Writer

export class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size = 512) {
    this.buf = Buffer.allocUnsafe(size);
  }
  reset(): this {
    this.pos = 0;
    return this;
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = Buffer.allocUnsafe(size);
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  u24(v: number): void {
    this.ensure(3);
    this.buf[this.pos++] = (v >>> 16) & 0xff;
    this.buf[this.pos++] = (v >>> 8) & 0xff;
    this.buf[this.pos++] = v & 0xff;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }
  varuint(v: number): void {
    this.ensure(5);
    v = v >>> 0;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }
  str(s: string, max: number): void {
    const n = Buffer.byteLength(s);
    if (n > max) throw new RangeError(`string longer than ${max} bytes`);
    this.varuint(n);
    this.ensure(n);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  ip(ip: string): void {
    this.ensure(17);
    const fam = ip.includes(':') ? 6 : 4;
    this.buf[this.pos++] = fam;
    this.pos += ipToBytes(ip, this.buf, this.pos);
  }
  addr(a: string): void {
    const hp = parseAddr(a);
    if (!hp) throw new RangeError(`bad address: ${a}`);
    this.ip(hp.host);
    this.u16(hp.port);
  }
  /** Copy of the bytes written so far. */
  take(): Uint8Array {
    return Uint8Array.prototype.slice.call(this.buf, 0, this.pos);
  }
}

// ---------------------------------------------------------------------------------------------
// Reader

export class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start;
  }
  get remaining(): number {
    return this.end - this.pos;
  }
  need(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw new CodecError('truncated', `need ${n} bytes, ${this.end - this.pos} left`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }
  u16(): number {
    this.need(2);
    const v = (this.buf[this.pos] << 8) | this.buf[this.pos + 1];
    this.pos += 2;
    return v;
  }
  u24(): number {
    this.need(3);
    const b = this.buf;
    const v = (b[this.pos] << 16) | (b[this.pos + 1] << 8) | b[this.pos + 2];
    this.pos += 3;
    return v;
  }
  u32(): number {
    this.need(4);
    const b = this.buf;
    const v = ((b[this.pos] << 24) | (b[this.pos + 1] << 16) | (b[this.pos + 2] << 8) | b[this.pos + 3]) >>> 0;
    this.pos += 4;
    return v;
  }
  varuint(): number {
    let v = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.u8();
      v += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) {
        if (v > 0xffffffff) throw new CodecError('bad_value', 'varuint exceeds 32 bits');
        return v;
      }
    }
    throw new CodecError('bad_value', 'varuint too long');
  }
  /** A count of items each at least `minSize` bytes: checked against `max` and the bytes left. */
  count(max: number, minSize: number, what: string): number {
    const n = this.varuint();
    if (n > max) throw new CodecError('bad_length', `${what}: ${n} exceeds limit ${max}`);
    if (n * minSize > this.remaining) throw new CodecError('bad_length', `${what}: ${n} items cannot fit in ${this.remaining} bytes`);
    return n;
  }
  str(max: number): string {
    const n = this.varuint();
    if (n > max) throw new CodecError('bad_length', `string of ${n} bytes exceeds ${max}`);
    this.need(n);
    const s = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, n).toString('utf8');
    this.pos += n;
    return s;
  }
  ip(): string {
    const fam = this.u8();
    if (fam !== 4 && fam !== 6) throw new CodecError('bad_value', `address family ${fam}`);
    const n = fam === 4 ? 4 : 16;
    this.need(n);
    const s = bytesToIp(this.buf, this.pos, fam);
    this.pos += n;
    return s;
  }
  addr(): string {
    const ip = this.ip();
    const port = this.u16();
    if (port === 0) throw new CodecError('bad_value', 'port 0');
    return formatAddr(ip, port);
  }
}

// ---------------------------------------------------------------------------------------------
// Records

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function writeRecordBody(w: Writer, r: NodeRecord): void {
  w.str(r.name, LIMITS.maxName);
  w.varuint(r.incarnation);
  w.u8(r.protocol);
  w.addr(r.gossip);
  w.addr(r.underlay);
  if (r.vnis.length > LIMITS.maxVnis) throw new RangeError('too many VNIs');
  w.varuint(r.vnis.length);
  for (const v of r.vnis) w.u24(v);
  if (r.endpoints.length > LIMITS.maxEndpoints) throw new RangeError('too many endpoints');
  w.varuint(r.endpoints.length);
  for (const e of r.endpoints) {
    w.u24(e.vni);
    if (!MAC_RE.test(e.mac)) throw new RangeError(`bad MAC ${e.mac}`);
    for (let i = 0; i < 6; i++) w.u8(parseInt(e.mac.slice(i * 3, i * 3 + 2), 16));
    if (e.ips.length > LIMITS.maxIpsPerEndpoint) throw new RangeError('too many IPs');
    w.u8(e.ips.length);
    for (const ip of e.ips) w.ip(ip);
  }
  w.str(r.publicKey, LIMITS.maxPublicKey);
  const secs = r.sections ?? [];
  if (secs.length > 0) {
    if (secs.length > LIMITS.maxSections) throw new RangeError('too many record sections');
    w.varuint(secs.length);
    for (const s of secs) {
      w.str(s.name, LIMITS.maxSectionName);
      w.str(s.data, LIMITS.maxSectionData);
    }
  }
}

/** Writes a length-prefixed record. */
export function writeRecord(w: Writer, r: NodeRecord): void {
  const tmp = scratch.reset();
  writeRecordBody(tmp, r);
  if (tmp.pos > LIMITS.maxRecord) throw new RangeError('record too large');
  w.varuint(tmp.pos);
  w.bytes(tmp.buf.subarray(0, tmp.pos));
}
const scratch = new Writer(1024);

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function readRecordBody(r: Reader): NodeRecord {
  const name = r.str(LIMITS.maxName);
  if (name.length === 0) throw new CodecError('bad_value', 'empty node name');
  const incarnation = r.varuint();
  const protocol = r.u8();
  const gossip = r.addr();
  const underlay = r.addr();
  const nv = r.count(LIMITS.maxVnis, 3, 'vnis');
  const vnis: number[] = new Array(nv);
  for (let i = 0; i < nv; i++) vnis[i] = r.u24();
  const ne = r.count(LIMITS.maxEndpoints, 10, 'endpoints');
  const endpoints: EndpointRecord[] = new Array(ne);
  for (let i = 0; i < ne; i++) {
    const vni = r.u24();
    r.need(6);
    const b = r.buf;
    const p = r.pos;
    const mac = `${HEX[b[p]]}:${HEX[b[p + 1]]}:${HEX[b[p + 2]]}:${HEX[b[p + 3]]}:${HEX[b[p + 4]]}:${HEX[b[p + 5]]}`;
    r.pos += 6;
    const ni = r.u8();
    if (ni > LIMITS.maxIpsPerEndpoint) throw new CodecError('bad_length', `endpoint with ${ni} IPs`);
    if (ni * 5 > r.remaining) throw new CodecError('bad_length', 'endpoint IPs cannot fit');
    const ips: string[] = new Array(ni);
    for (let j = 0; j < ni; j++) ips[j] = r.ip();
    endpoints[i] = { vni, mac, ips };
  }
  const publicKey = r.str(LIMITS.maxPublicKey);
  if (r.remaining === 0) return { name, incarnation, protocol, gossip, underlay, vnis, endpoints, publicKey };
  const ns = r.count(LIMITS.maxSections, 2, 'sections');
  if (ns === 0) throw new CodecError('bad_value', 'empty section list is not encoded');
  const sections: RecordSection[] = new Array(ns);
  for (let i = 0; i < ns; i++) {
    const sname = r.str(LIMITS.maxSectionName);
    if (sname.length === 0) throw new CodecError('bad_value', 'empty section name');
    sections[i] = { name: sname, data: r.str(LIMITS.maxSectionData) };
  }
  return { name, incarnation, protocol, gossip, underlay, vnis, endpoints, publicKey, sections };
}

export function readRecord(r: Reader, interner?: RecordInterner): NodeRecord {
  const len = r.varuint();
  if (len > LIMITS.maxRecord) throw new CodecError('bad_length', `record of ${len} bytes`);
  r.need(len);
  const end = r.pos + len;
  let key: string | undefined;
  if (interner) {
    key = Buffer.from(r.buf.buffer, r.buf.byteOffset + r.pos, len).toString('latin1');
    const hit = interner.get(key);
    if (hit) {
      r.pos = end;
      return hit;
    }
  }
  const sub = new Reader(r.buf, r.pos, end);
  const rec = readRecordBody(sub);
  if (sub.pos !== end) throw new CodecError('trailing', 'bytes after record');
  r.pos = end;
  if (interner && key !== undefined) interner.set(key, Object.freeze(rec) as NodeRecord);
  return rec;
}

// ---------------------------------------------------------------------------------------------
// Broadcasts

/** Encodes one broadcast (queued pre-encoded and piggybacked as is). */
export function encodeBroadcast(b: Broadcast): Uint8Array {
  const w = bcWriter.reset();
  w.u8(b.kind);
  if (b.kind === BC_ALIVE) writeRecord(w, b.record);
  else if (b.kind === BC_ALIVE_PART) {
    w.str(b.name, LIMITS.maxName);
    w.varuint(b.incarnation);
    w.u16(b.part);
    w.u16(b.parts);
    w.bytes(b.data);
  } else {
    w.str(b.name, LIMITS.maxName);
    w.varuint(b.incarnation);
    w.str(b.from, LIMITS.maxName);
  }
  if (w.pos > 0xffff) throw new RangeError('broadcast too large');
  return w.take();
}
const bcWriter = new Writer(1024);

/** The alive broadcast of `r` as one byte string (may exceed a packet: see `splitAlive`). */
export function encodeAlive(r: NodeRecord): Uint8Array {
  const w = bcWriter.reset();
  w.u8(BC_ALIVE);
  writeRecord(w, r);
  return w.take();
}

/** Most bytes of an alive-part broadcast besides its data (kind, name, incarnation, indices). */
export function alivePartOverhead(name: string): number {
  return 1 + 2 + Buffer.byteLength(name) + 5 + 2 + 2;
}

/**
 * The broadcasts that announce an encoded alive broadcast `full` of member `name` when none may
 * exceed `maxBytes`: `full` itself when it fits, else its bytes cut in order into `alive part`
 * broadcasts of at most `maxBytes` each. Throws RangeError when the budget cannot carry it.
 */
export function splitAlive(name: string, incarnation: number, full: Uint8Array, maxBytes: number): Uint8Array[] {
  if (full.length <= maxBytes) return [full];
  const chunk = maxBytes - alivePartOverhead(name);
  if (chunk < 64) throw new RangeError(`packet budget too small for a record of ${full.length} bytes`);
  const parts = Math.ceil(full.length / chunk);
  if (parts > LIMITS.maxParts) throw new RangeError(`record of ${full.length} bytes needs ${parts} parts (limit ${LIMITS.maxParts})`);
  const out: Uint8Array[] = new Array(parts);
  for (let i = 0; i < parts; i++) {
    const data = full.subarray(i * chunk, Math.min(full.length, (i + 1) * chunk));
    out[i] = encodeBroadcast({ kind: BC_ALIVE_PART, name, incarnation, part: i, parts, data });
  }
  return out;
}

export function decodeBroadcast(buf: Uint8Array, start: number, end: number, interner?: RecordInterner): Broadcast {
  const r = new Reader(buf, start, end);
  const kind = r.u8();
  let out: Broadcast;
  if (kind === BC_ALIVE) {
    out = { kind, record: readRecord(r, interner) };
  } else if (kind === BC_ALIVE_PART) {
    const name = r.str(LIMITS.maxName);
    if (name.length === 0) throw new CodecError('bad_value', 'empty node name');
    const incarnation = r.varuint();
    const part = r.u16();
    const parts = r.u16();
    if (parts < 2 || parts > LIMITS.maxParts || part >= parts) throw new CodecError('bad_value', `part ${part} of ${parts}`);
    if (r.remaining === 0) throw new CodecError('bad_length', 'empty part');
    out = { kind, name, incarnation, part, parts, data: r.buf.subarray(r.pos, end) };
    r.pos = end;
  } else if (kind === BC_SUSPECT || kind === BC_DEAD) {
    const name = r.str(LIMITS.maxName);
    const incarnation = r.varuint();
    const from = r.str(LIMITS.maxName);
    out = { kind, name, incarnation, from } as SuspectBc | DeadBc;
  } else {
    throw new CodecError('bad_type', `broadcast kind ${kind}`);
  }
  if (r.pos !== end) throw new CodecError('trailing', 'bytes after broadcast');
  return out;
}

/**
 * Reads only the name and incarnation of an `alive` broadcast (so duplicates, the common case,
 * are recognised as stale without decoding or allocating the record). Null if malformed.
 */
export function peekAlive(buf: Uint8Array, start: number, end: number): { name: string; incarnation: number } | null {
  try {
    const r = new Reader(buf, start, end);
    if (r.u8() !== BC_ALIVE) return null;
    r.varuint();
    const name = r.str(LIMITS.maxName);
    return { name, incarnation: r.varuint() };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Packets

const pktWriter = new Writer(2048);

/** Encodes the primary message and piggybacked (pre-encoded) broadcasts into one packet. */
export function encodePacket(msg: PrimaryMsg, broadcasts: readonly Uint8Array[]): Uint8Array {
  const w = pktWriter.reset();
  w.u8(PROTOCOL_VERSION);
  w.u8(msg.type);
  switch (msg.type) {
    case PKT_PING:
      w.u32(msg.seq);
      w.str(msg.target, LIMITS.maxName);
      w.str(msg.source, LIMITS.maxName);
      break;
    case PKT_INDIRECT_PING:
      w.u32(msg.seq);
      w.str(msg.target, LIMITS.maxName);
      w.addr(msg.targetAddr);
      w.u8(msg.nack ? 1 : 0);
      break;
    case PKT_ACK:
    case PKT_NACK:
      w.u32(msg.seq);
      break;
    case PKT_GOSSIP:
      break;
  }
  if (broadcasts.length > LIMITS.maxBroadcasts) throw new RangeError('too many broadcasts');
  w.u8(broadcasts.length);
  for (const b of broadcasts) {
    w.u16(b.length);
    w.bytes(b);
  }
  if (w.pos > LIMITS.maxPacket) throw new RangeError('packet too large');
  return w.take();
}

/** Size of a packet's fixed part + framing per broadcast (for packing budgets). */
export const PACKET_OVERHEAD = 2 + 4 + 2 * (LIMITS.maxName + 2) + 1;
export const BROADCAST_FRAMING = 2;

export interface DecodedPacket {
  msg: PrimaryMsg;
  /** [start, end) offsets of each broadcast inside the packet buffer. */
  bcStarts: number[];
  bcEnds: number[];
}

export function decodePacket(buf: Uint8Array): DecodedPacket {
  if (buf.length > LIMITS.maxPacket) throw new CodecError('oversized', `packet of ${buf.length} bytes`);
  const r = new Reader(buf);
  const version = r.u8();
  if (version !== PROTOCOL_VERSION) throw new CodecError('bad_version', `protocol version ${version}`);
  const type = r.u8();
  let msg: PrimaryMsg;
  switch (type) {
    case PKT_PING:
      msg = { type, seq: r.u32(), target: r.str(LIMITS.maxName), source: r.str(LIMITS.maxName) };
      break;
    case PKT_INDIRECT_PING: {
      const seq = r.u32();
      const target = r.str(LIMITS.maxName);
      const targetAddr = r.addr();
      const nack = r.u8();
      if (nack > 1) throw new CodecError('bad_value', 'nack flag');
      msg = { type, seq, target, targetAddr, nack: nack === 1 };
      break;
    }
    case PKT_ACK:
    case PKT_NACK:
      msg = { type, seq: r.u32() };
      break;
    case PKT_GOSSIP:
      msg = { type };
      break;
    default:
      throw new CodecError('bad_type', `packet type ${type}`);
  }
  const n = r.u8();
  if (n * 3 > r.remaining) throw new CodecError('bad_length', `${n} broadcasts cannot fit`);
  const bcStarts: number[] = [];
  const bcEnds: number[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.u16();
    if (len === 0) throw new CodecError('bad_length', 'empty broadcast');
    r.need(len);
    bcStarts.push(r.pos);
    bcEnds.push(r.pos + len);
    r.pos += len;
  }
  if (r.remaining !== 0) throw new CodecError('trailing', 'bytes after packet');
  return { msg, bcStarts, bcEnds };
}

// ---------------------------------------------------------------------------------------------
// Stream messages (push-pull)

function writeEntry(w: Writer, e: FullEntry): void {
  w.u8(e.state);
  writeRecord(w, e.record);
}

function readEntry(r: Reader, interner?: RecordInterner): FullEntry {
  const state = r.u8();
  if (state > ST_LEFT) throw new CodecError('bad_value', `member state ${state}`);
  return { state, record: readRecord(r, interner) };
}

export function encodeStream(m: StreamMsg): Uint8Array {
  const w = new Writer(4096);
  w.u8(PROTOCOL_VERSION);
  w.u8(m.type);
  if (m.type === STREAM_PING) {
    w.str(m.target, LIMITS.maxName);
  } else if (m.type === STREAM_ACK) {
    // no body
  } else if (m.type === STREAM_REQUEST) {
    w.u8(m.join ? 1 : 0);
    writeEntry(w, m.self);
    w.varuint(m.digest.length);
    for (const d of m.digest) {
      w.str(d.name, LIMITS.maxName);
      w.varuint(d.incarnation);
      w.u8(d.state);
    }
  } else {
    w.varuint(m.entries.length);
    for (const e of m.entries) writeEntry(w, e);
    if (m.type === STREAM_REPLY) {
      w.varuint(m.want.length);
      for (const n of m.want) w.str(n, LIMITS.maxName);
    }
  }
  if (w.pos > LIMITS.maxStream) throw new RangeError('stream message too large');
  return w.take();
}

export function decodeStream(buf: Uint8Array, interner?: RecordInterner): StreamMsg {
  if (buf.length > LIMITS.maxStream) throw new CodecError('oversized', `stream message of ${buf.length} bytes`);
  const r = new Reader(buf);
  const version = r.u8();
  if (version !== PROTOCOL_VERSION) throw new CodecError('bad_version', `protocol version ${version}`);
  const type = r.u8();
  let out: StreamMsg;
  if (type === STREAM_PING) {
    out = { type, target: r.str(LIMITS.maxName) };
  } else if (type === STREAM_ACK) {
    out = { type };
  } else if (type === STREAM_REQUEST) {
    const join = r.u8();
    if (join > 1) throw new CodecError('bad_value', 'join flag');
    const self = readEntry(r, interner);
    const n = r.count(LIMITS.maxMembers, 3, 'digest');
    const digest: DigestEntry[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const name = r.str(LIMITS.maxName);
      const incarnation = r.varuint();
      const state = r.u8();
      if (state > ST_LEFT) throw new CodecError('bad_value', `member state ${state}`);
      digest[i] = { name, incarnation, state };
    }
    out = { type, join: join === 1, self, digest };
  } else if (type === STREAM_REPLY || type === STREAM_PUSH) {
    const n = r.count(LIMITS.maxMembers, 12, 'entries');
    const entries: FullEntry[] = new Array(n);
    for (let i = 0; i < n; i++) entries[i] = readEntry(r, interner);
    if (type === STREAM_REPLY) {
      const nw = r.count(LIMITS.maxMembers, 2, 'want');
      const want: string[] = new Array(nw);
      for (let i = 0; i < nw; i++) want[i] = r.str(LIMITS.maxName);
      out = { type, entries, want };
    } else {
      out = { type, entries };
    }
  } else {
    throw new CodecError('bad_type', `stream message type ${type}`);
  }
  if (r.remaining !== 0) throw new CodecError('trailing', 'bytes after stream message');
  return out;
}
