/**
 * Admission: which underlay hosts a network accepts plaintext VXLAN from (issue 18).
 *
 * VXLAN has no authentication: whoever reaches UDP 4789 can put frames on a tenant network and, if
 * the data path learned from them, grow its peer table, FDB and metric series. So an agent accepts
 * a plaintext datagram for VNI v only when its source ADDRESS (the port is the sender's ECMP
 * source port, see addr.ts) is
 *   1. a known host of v: a static peer, or a live gossip member (alive or suspect) that serves v
 *      — exactly the set the network floods to (`Datapath.setStaticPeers` / `setNetworkPeers`);
 *      a member that dies or leaves drops out of that set and is refused from then on; or
 *   2. let in by the network's `acceptFrom` (config): `any`, or one of its CIDRs (e.g. to
 *      interoperate with kernel VXLAN devices that are not vxmesh peers).
 * Anything else is dropped as `unknown_vtep` before a peer, an FDB entry or a counter is created
 * for it. Encrypted networks do not use this table: they accept only what a session opened.
 *
 * Layout (hot path: `check` is allocation-free, reads the 16 address bytes of an 18-byte record
 * in place, IPv4 as v4-mapped `::ffff:a.b.c.d`):
 *   - known hosts: an open-addressing set (linear probing) of 4 × uint32 words per address, at most
 *     half full, hashed with a per-process random key so that no sender can pick addresses that
 *     collide (only the control plane inserts; a lookup stops at the first empty slot), and the
 *     last host found remembered (most datagrams of a batch come from one sender);
 *   - CIDRs: a flat Uint32Array, 8 words per prefix (4 address words, 4 mask words), scanned in
 *     order; at most `MAX_ACCEPT_CIDRS` per network.
 * Rebuilt (allocation allowed) by the control plane whenever the known set or `acceptFrom` changes.
 */
import { randomBytes } from 'node:crypto';
import type { AcceptFrom, AddressFamily, Endpoint } from '../config/types';
import { formatIPv6, parseIpInto, writeRecord } from './addr';

/** `check` results. */
export const ADMIT_REFUSED = 0;
/** A static peer or a live gossip member serving the VNI. */
export const ADMIT_KNOWN = 1;
/** Not known, but let in by `acceptFrom` (`any` or a CIDR): the data path may learn it (bounded). */
export const ADMIT_OPEN = 2;
export type AdmitResult = typeof ADMIT_REFUSED | typeof ADMIT_KNOWN | typeof ADMIT_OPEN;

/** Most CIDRs in one network's `acceptFrom` (each costs a few integer compares per unknown source). */
export const MAX_ACCEPT_CIDRS = 256;

const SEED = randomBytes(8);
const SEED_A = SEED.readUInt32LE(0) | 1;
const SEED_B = SEED.readUInt32LE(4);

/** A parsed CIDR: 16 bytes (IPv4 v4-mapped) masked to `prefix` bits of the 128-bit form. */
export interface Cidr {
  /** Canonical text: `198.18.0.0/15`, `2001:2::/48`. */
  text: string;
  family: AddressFamily;
  /** Prefix length as written (0..32 for IPv4, 0..128 for IPv6). */
  length: number;
  /** Address words (big-endian, v4-mapped for IPv4), already masked. */
  words: Uint32Array;
  /** Mask words. */
  mask: Uint32Array;
}

/** Why a CIDR text did not parse (for config errors); null when it did. */
export type CidrError = 'syntax' | 'length' | 'host_bits';

/**
 * Parses `a.b.c.d/n` or `v6/n` (a bare address means a single host: /32 or /128). Returns the CIDR,
 * or an error kind; `host_bits` comes with the network the text probably meant (`hint`).
 */
export function parseCidr(text: string): { cidr: Cidr } | { error: CidrError; hint?: string } {
  if (typeof text !== 'string') return { error: 'syntax' };
  const t = text.trim();
  const slash = t.indexOf('/');
  const addrText = slash < 0 ? t : t.slice(0, slash);
  const bytes = new Uint8Array(16);
  const family = parseIpInto(addrText, bytes, 0);
  if (family === 0) return { error: 'syntax' };
  // `::ffff:a.b.c.d` written as IPv6 would silently be IPv4: ask for the IPv4 form.
  if (family === 6 && bytes[10] === 0xff && bytes[11] === 0xff && bytes.subarray(0, 10).every((b) => b === 0)) {
    return { error: 'syntax' };
  }
  const max = family === 4 ? 32 : 128;
  let length = max;
  if (slash >= 0) {
    const lt = t.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lt)) return { error: 'length' };
    length = Number(lt);
    if (length > max) return { error: 'length' };
  }
  const bits = family === 4 ? 96 + length : length;
  const words = new Uint32Array(4);
  const mask = new Uint32Array(4);
  let hostBits = false;
  for (let k = 0; k < 4; k++) {
    const w = ((bytes[4 * k] << 24) | (bytes[4 * k + 1] << 16) | (bytes[4 * k + 2] << 8) | bytes[4 * k + 3]) >>> 0;
    const n = Math.max(0, Math.min(32, bits - 32 * k));
    const m = n === 0 ? 0 : n === 32 ? 0xffffffff : (0xffffffff << (32 - n)) >>> 0;
    mask[k] = m;
    words[k] = (w & m) >>> 0;
    if (words[k] !== w) hostBits = true;
  }
  const net = new Uint8Array(16);
  for (let k = 0; k < 4; k++) {
    net[4 * k] = words[k] >>> 24;
    net[4 * k + 1] = (words[k] >>> 16) & 255;
    net[4 * k + 2] = (words[k] >>> 8) & 255;
    net[4 * k + 3] = words[k] & 255;
  }
  const addr = formatIPv6(net, 0);
  const shown = `${family === 4 ? addr.slice('::ffff:'.length) : addr}/${length}`;
  if (hostBits) return { error: 'host_bits', hint: shown };
  return { cidr: { text: shown, family, length, words, mask } };
}

/** Parses a CIDR or throws TypeError (for callers that hold validated config). */
export function cidrOrThrow(text: string): Cidr {
  const r = parseCidr(text);
  if ('cidr' in r) return r.cidr;
  throw new TypeError(`not a CIDR (${r.error}${r.hint ? `; did you mean ${r.hint}?` : ''}): ${JSON.stringify(text)}`);
}

/** Address word at `b[o]` as a SIGNED 32-bit integer: stays a small integer, never a boxed double. */
const word = (b: Uint8Array, o: number): number => (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];

function hash4(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w3 ^ SEED_B, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16) ^ w2, SEED_A);
  h = Math.imul(h ^ (h >>> 15) ^ w1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ w0, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * One network's accept table. `check(buf, off)` is the hot-path question ("may the host whose
 * 18-byte record is at `buf[off]` send VXLAN to this network?"); the rest is control plane.
 */
export class AcceptTable {
  private mode: 'known' | 'any' | 'cidrs' = 'known';
  private cidrs: Cidr[] = [];
  /** CIDR words (signed, as `word` reads them): 8 per prefix (address 0..3, mask 4..7). */
  private cw = new Int32Array(0);
  private nc = 0;
  /** Known set: 4 signed words per slot, `used[i]` = 1 when slot i holds an address. */
  private keys = new Int32Array(0);
  private used = new Uint8Array(0);
  private mask = -1;
  private count = 0;
  /** The last known host found (most datagrams of a batch come from the same one): its words. */
  private h0 = 0;
  private h1 = 0;
  private h2 = 0;
  private h3 = 0;
  private hit = false;

  constructor(acceptFrom: AcceptFrom = 'known') {
    this.setAcceptFrom(acceptFrom);
  }

  /** Number of known hosts. */
  get knownCount(): number {
    return this.count;
  }

  /** The policy in force (`known`, `any`, or canonical CIDR texts). */
  get acceptFrom(): AcceptFrom {
    return this.mode === 'cidrs' ? this.cidrs.map((c) => c.text) : this.mode;
  }

  /** True when unknown hosts can be admitted at all (`any` or CIDRs): learning must then be bounded. */
  get open(): boolean {
    return this.mode !== 'known';
  }

  /** Sets the network's `acceptFrom` (validated config; throws TypeError on a bad CIDR). */
  setAcceptFrom(a: AcceptFrom): void {
    if (a === 'known' || a === 'any') {
      this.mode = a;
      this.cidrs = [];
      this.cw = new Int32Array(0);
      this.nc = 0;
      return;
    }
    if (!Array.isArray(a)) throw new TypeError(`acceptFrom: expected "known", "any" or a list of CIDRs, got ${JSON.stringify(a)}`);
    if (a.length > MAX_ACCEPT_CIDRS) throw new RangeError(`acceptFrom: at most ${MAX_ACCEPT_CIDRS} CIDRs, got ${a.length}`);
    const cidrs = a.map(cidrOrThrow);
    const cw = new Int32Array(8 * cidrs.length);
    cidrs.forEach((c, i) => {
      for (let k = 0; k < 4; k++) {
        cw[8 * i + k] = c.words[k] | 0;
        cw[8 * i + 4 + k] = c.mask[k] | 0;
      }
    });
    this.cidrs = cidrs;
    this.cw = cw;
    this.nc = cidrs.length;
    // an empty list admits nobody beyond the known hosts: the same as `known`
    this.mode = cidrs.length === 0 ? 'known' : 'cidrs';
  }

  /**
   * Replaces the known hosts by the addresses of `records` (18-byte address records, as
   * `Peer.record`; bytes 0..15 are read, the port is ignored). Duplicates are fine.
   */
  setKnownRecords(records: Iterable<Uint8Array>): void {
    const list: Uint8Array[] = [...records];
    let cap = 8;
    while (cap < 2 * list.length) cap *= 2;
    this.keys = new Int32Array(4 * cap);
    this.used = new Uint8Array(cap);
    this.mask = cap - 1;
    this.count = 0;
    this.hit = false;
    for (const r of list) this.insert(word(r, 0), word(r, 4), word(r, 8), word(r, 12));
  }

  /** `setKnownRecords` for endpoints (throws TypeError on an unparsable address). */
  setKnownEndpoints(eps: Iterable<Endpoint>): void {
    const recs: Uint8Array[] = [];
    for (const ep of eps) {
      const r = new Uint8Array(18);
      writeRecord(r, 0, { ...ep, port: ep.port || 0 });
      recs.push(r);
    }
    this.setKnownRecords(recs);
  }

  private insert(w0: number, w1: number, w2: number, w3: number): void {
    let i = hash4(w0, w1, w2, w3) & this.mask;
    const k = this.keys;
    while (this.used[i] === 1) {
      const b = 4 * i;
      if (k[b] === w0 && k[b + 1] === w1 && k[b + 2] === w2 && k[b + 3] === w3) return;
      i = (i + 1) & this.mask;
    }
    const b = 4 * i;
    k[b] = w0;
    k[b + 1] = w1;
    k[b + 2] = w2;
    k[b + 3] = w3;
    this.used[i] = 1;
    this.count++;
  }

  /** True when the address at `buf[off]` is a known host (allocation-free). */
  isKnown(buf: Uint8Array, off: number): boolean {
    if (this.count === 0) return false;
    const w0 = word(buf, off);
    const w1 = word(buf, off + 4);
    const w2 = word(buf, off + 8);
    const w3 = word(buf, off + 12);
    if (this.hit && w3 === this.h3 && w2 === this.h2 && w1 === this.h1 && w0 === this.h0) return true;
    const k = this.keys;
    const used = this.used;
    const mask = this.mask;
    let i = hash4(w0, w1, w2, w3) & mask;
    // at most half full: the probe ends at an empty slot
    while (used[i] === 1) {
      const b = 4 * i;
      if (k[b] === w0 && k[b + 1] === w1 && k[b + 2] === w2 && k[b + 3] === w3) {
        this.h0 = w0;
        this.h1 = w1;
        this.h2 = w2;
        this.h3 = w3;
        this.hit = true;
        return true;
      }
      i = (i + 1) & mask;
    }
    return false;
  }

  /**
   * The admission decision for the source record at `buf[off]` (hot path, allocation-free):
   * ADMIT_KNOWN, ADMIT_OPEN (let in by `acceptFrom`) or ADMIT_REFUSED.
   */
  check(buf: Uint8Array, off: number): AdmitResult {
    if (this.isKnown(buf, off)) return ADMIT_KNOWN;
    if (this.mode === 'known') return ADMIT_REFUSED;
    if (this.mode === 'any') return ADMIT_OPEN;
    const w0 = word(buf, off);
    const w1 = word(buf, off + 4);
    const w2 = word(buf, off + 8);
    const w3 = word(buf, off + 12);
    const c = this.cw;
    for (let j = 0, b = 0; j < this.nc; j++, b += 8) {
      if ((w0 & c[b + 4]) === c[b] && (w1 & c[b + 5]) === c[b + 1] && (w2 & c[b + 6]) === c[b + 2] && (w3 & c[b + 7]) === c[b + 3]) {
        return ADMIT_OPEN;
      }
    }
    return ADMIT_REFUSED;
  }

  /** Status view. */
  describe(): { acceptFrom: AcceptFrom; knownHosts: number } {
    return { acceptFrom: this.acceptFrom, knownHosts: this.count };
  }
}
