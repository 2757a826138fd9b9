/**
 * Policies of one network + its endpoints → flat, index-addressed tables that the data path reads
 * for the first packet of a flow (established flows cost a conntrack lookup, conntrack.ts). No
 * per-packet allocation; typed arrays only, so C could read them as well.
 *
 * Layout (n endpoints, R distinct rules):
 *   ipKeys/ipVals   open-addressing table: 16-byte address → endpoint index (−1: empty)
 *   isolated[2e+d]  endpoint e isolated for direction d (0 egress, 1 ingress)
 *   ruleStart/ruleIdx  CSR: the rules that apply to (e, d): ruleIdx[ruleStart[2e+d] … ruleStart[2e+d+1])
 *   per rule r: peerAll[r] (no peers: every peer), bits[r·stride…] (endpoints matched by its
 *     `endpoints` peers, one bit each), cidrs [cidrStart[r], cidrStart[r+1]) (each with its except
 *     blocks [exStart[c], exStart[c+1])), portAll[r], ports [portStart[r], portStart[r+1]) as
 *     (proto, lo, hi)
 * `check` gives exactly the verdict of semantics.ts `evaluate` (checked by a property test).
 */
import { randomBytes } from 'node:crypto';
import { prefixMatch } from '../ipam/cidr';
import type { Policy, PolicyRule } from './document';
import { PROTOCOL_NUMBER } from './document';
import { type NetworkPolicies, type PolicyEndpoint } from './semantics';
import { selectorMatches } from './selector';

/** Verdict bits returned by `check`. 0 = allowed. */
export const DENY_EGRESS = 1;
export const DENY_INGRESS = 2;

export const EGRESS = 0;
export const INGRESS = 1;

export interface CompileOptions {
  /** Version stamped into the tables (conntrack re-checks entries of older versions). */
  version: number;
  /** Seed of the address hash (random per process by default: no chosen-address flooding). */
  seed?: number;
}

export class CompiledPolicy {
  readonly version: number;
  readonly endpoints: readonly PolicyEndpoint[];
  /** Policy names, and per rule the policy index and rule number within its direction. */
  readonly policyNames: readonly string[];
  readonly rulePolicy: Uint32Array;
  readonly ruleNumber: Uint32Array;
  readonly ruleDir: Uint8Array;
  readonly ruleCount: number;
  /** Whether any endpoint is isolated at all (false: `check` is always 0). */
  readonly anyIsolated: boolean;

  private readonly mask: number;
  private readonly seed: number;
  private readonly ipKeys: Uint8Array;
  private readonly ipVals: Int32Array;
  private readonly isolated: Uint8Array;
  private readonly ruleStart: Uint32Array;
  private readonly ruleIdx: Uint32Array;
  private readonly stride: number;
  private readonly peerAll: Uint8Array;
  private readonly bits: Uint32Array;
  private readonly cidrStart: Uint32Array;
  private readonly cAddr: Uint8Array;
  private readonly cBits: Uint8Array;
  private readonly exStart: Uint32Array;
  private readonly xAddr: Uint8Array;
  private readonly xBits: Uint8Array;
  private readonly portAll: Uint8Array;
  private readonly portStart: Uint32Array;
  private readonly pProto: Uint8Array;
  private readonly pLo: Uint16Array;
  private readonly pHi: Uint16Array;
  /** Rule that allowed the last `check` per direction (−1: none / not isolated), for logs and traces. */
  readonly lastRule = new Int32Array(2);

  constructor(np: NetworkPolicies, endpoints: readonly PolicyEndpoint[], opts: CompileOptions) {
    this.version = opts.version;
    this.endpoints = endpoints;
    this.seed = (opts.seed ?? randomBytes(4).readUInt32LE(0)) >>> 0;
    const n = endpoints.length;

    // Address → endpoint.
    let ipCount = 0;
    for (const e of endpoints) ipCount += e.ips.length;
    let size = 16;
    while (size < ipCount * 2) size <<= 1;
    this.mask = size - 1;
    this.ipKeys = new Uint8Array(size * 16);
    this.ipVals = new Int32Array(size).fill(-1);
    endpoints.forEach((e, i) => {
      for (const ip of e.ips) this.insertIp(ip, i);
    });

    // Rules: every (policy, direction, rule) once; which endpoints each applies to.
    const policies = np.policies;
    this.policyNames = policies.map((p) => p.name);
    const rules: { pol: number; dir: number; no: number; rule: PolicyRule }[] = [];
    const applies: number[][] = Array.from({ length: n * 2 }, () => []);
    this.isolated = new Uint8Array(n * 2);
    if (np.defaultDeny) this.isolated.fill(1);
    policies.forEach((pol: Policy, pi) => {
      const selected: number[] = [];
      endpoints.forEach((e, i) => {
        if (selectorMatches(pol.selector, e.labels)) selected.push(i);
      });
      for (const [dir, type, list] of [[EGRESS, 'Egress', pol.egress], [INGRESS, 'Ingress', pol.ingress]] as const) {
        if (!pol.policyTypes.includes(type)) continue;
        for (const i of selected) this.isolated[i * 2 + dir] = 1;
        list.forEach((rule, no) => {
          const r = rules.length;
          rules.push({ pol: pi, dir, no, rule });
          for (const i of selected) applies[i * 2 + dir].push(r);
        });
      }
    });
    this.anyIsolated = this.isolated.includes(1);
    const R = rules.length;
    this.ruleCount = R;
    this.ruleStart = new Uint32Array(n * 2 + 1);
    let total = 0;
    for (let k = 0; k < n * 2; k++) {
      this.ruleStart[k] = total;
      total += applies[k].length;
    }
    this.ruleStart[n * 2] = total;
    this.ruleIdx = new Uint32Array(total);
    for (let k = 0, o = 0; k < n * 2; k++) for (const r of applies[k]) this.ruleIdx[o++] = r;

    this.rulePolicy = new Uint32Array(R);
    this.ruleNumber = new Uint32Array(R);
    this.ruleDir = new Uint8Array(R);
    this.stride = Math.max(1, Math.ceil(n / 32));
    this.peerAll = new Uint8Array(R);
    this.bits = new Uint32Array(R * this.stride);
    this.portAll = new Uint8Array(R);
    this.cidrStart = new Uint32Array(R + 1);
    this.portStart = new Uint32Array(R + 1);
    const cidrs: { addr: Uint8Array; bits: number; ex: { addr: Uint8Array; bits: number }[] }[] = [];
    const ports: { proto: number; lo: number; hi: number }[] = [];
    rules.forEach(({ pol, dir, no, rule }, r) => {
      this.rulePolicy[r] = pol;
      this.ruleNumber[r] = no;
      this.ruleDir[r] = dir;
      this.cidrStart[r] = cidrs.length;
      this.portStart[r] = ports.length;
      if (rule.peers === null) this.peerAll[r] = 1;
      else {
        for (const p of rule.peers) {
          if (p.kind === 'endpoints') {
            endpoints.forEach((e, i) => {
              if (selectorMatches(p.selector, e.labels)) this.bits[r * this.stride + (i >>> 5)] |= 1 << (i & 31);
            });
          } else cidrs.push({ addr: p.cidr.addr, bits: p.cidr.bits, ex: p.except.map((x) => ({ addr: x.addr, bits: x.bits })) });
        }
      }
      if (rule.ports === null) this.portAll[r] = 1;
      else for (const pp of rule.ports) ports.push({ proto: PROTOCOL_NUMBER[pp.protocol], lo: pp.port ?? 0, hi: pp.port === null ? 65535 : pp.endPort ?? pp.port });
    });
    this.cidrStart[R] = cidrs.length;
    this.portStart[R] = ports.length;
    const C = cidrs.length;
    this.cAddr = new Uint8Array(C * 16);
    this.cBits = new Uint8Array(C);
    this.exStart = new Uint32Array(C + 1);
    let X = 0;
    for (const c of cidrs) X += c.ex.length;
    this.xAddr = new Uint8Array(X * 16);
    this.xBits = new Uint8Array(X);
    let x = 0;
    cidrs.forEach((c, ci) => {
      this.cAddr.set(c.addr, ci * 16);
      this.cBits[ci] = c.bits;
      this.exStart[ci] = x;
      for (const e of c.ex) {
        this.xAddr.set(e.addr, x * 16);
        this.xBits[x++] = e.bits;
      }
    });
    this.exStart[C] = x;
    const P = ports.length;
    this.pProto = new Uint8Array(P);
    this.pLo = new Uint16Array(P);
    this.pHi = new Uint16Array(P);
    ports.forEach((p, i) => {
      this.pProto[i] = p.proto;
      this.pLo[i] = p.lo;
      this.pHi[i] = p.hi;
    });
  }

  /** Endpoint index of the 16-byte address at `ip[off]`, or −1. Allocation-free. */
  endpointOf(ip: Uint8Array, off: number): number {
    let h = this.hash(ip, off) & this.mask;
    for (let probes = 0; probes <= this.mask; probes++, h = (h + 1) & this.mask) {
      const v = this.ipVals[h];
      if (v < 0) return -1;
      if (this.keyEquals(h, ip, off)) return v;
    }
    return -1;
  }

  /** True when endpoint `e` is isolated for direction `dir` (EGRESS / INGRESS). */
  isIsolated(e: number, dir: number): boolean {
    return e >= 0 && this.isolated[e * 2 + dir] === 1;
  }

  /**
   * Verdict for the first packet of a flow: 0 allowed, else DENY_EGRESS | DENY_INGRESS. `srcIdx` /
   * `dstIdx` are endpoint indices (−1: not an endpoint of the network); addresses are 16-byte
   * values at the given offsets; `port` is the destination port (0 without ports).
   */
  check(srcIdx: number, src: Uint8Array, srcOff: number, dstIdx: number, dst: Uint8Array, dstOff: number, proto: number, port: number): number {
    let v = 0;
    this.lastRule[EGRESS] = -1;
    this.lastRule[INGRESS] = -1;
    if (srcIdx >= 0 && this.isolated[srcIdx * 2 + EGRESS] === 1) {
      const r = this.firstAllowing(srcIdx * 2 + EGRESS, dstIdx, dst, dstOff, proto, port);
      if (r < 0) v |= DENY_EGRESS;
      this.lastRule[EGRESS] = r;
    }
    if (dstIdx >= 0 && this.isolated[dstIdx * 2 + INGRESS] === 1) {
      const r = this.firstAllowing(dstIdx * 2 + INGRESS, srcIdx, src, srcOff, proto, port);
      if (r < 0) v |= DENY_INGRESS;
      this.lastRule[INGRESS] = r;
    }
    return v;
  }

  private firstAllowing(slot: number, peerIdx: number, peerIp: Uint8Array, peerOff: number, proto: number, port: number): number {
    const end = this.ruleStart[slot + 1];
    for (let k = this.ruleStart[slot]; k < end; k++) {
      const r = this.ruleIdx[k];
      if (!this.portOk(r, proto, port)) continue;
      if (this.peerAll[r] === 1) return r;
      if (peerIdx >= 0 && (this.bits[r * this.stride + (peerIdx >>> 5)] & (1 << (peerIdx & 31))) !== 0) return r;
      if (this.cidrOk(r, peerIp, peerOff)) return r;
    }
    return -1;
  }

  private portOk(r: number, proto: number, port: number): boolean {
    if (this.portAll[r] === 1) return true;
    const end = this.portStart[r + 1];
    for (let i = this.portStart[r]; i < end; i++) {
      if (this.pProto[i] === proto && port >= this.pLo[i] && port <= this.pHi[i]) return true;
    }
    return false;
  }

  private cidrOk(r: number, ip: Uint8Array, off: number): boolean {
    const end = this.cidrStart[r + 1];
    for (let c = this.cidrStart[r]; c < end; c++) {
      if (!prefixMatch(this.cAddr, c * 16, ip, off, this.cBits[c])) continue;
      let excluded = false;
      for (let x = this.exStart[c]; x < this.exStart[c + 1] && !excluded; x++) excluded = prefixMatch(this.xAddr, x * 16, ip, off, this.xBits[x]);
      if (!excluded) return true;
    }
    return false;
  }

  /** Human-readable name of rule r: `policy/ingress[2]`. */
  ruleName(r: number): string {
    if (r < 0) return '-';
    return `${this.policyNames[this.rulePolicy[r]]}/${this.ruleDir[r] === INGRESS ? 'ingress' : 'egress'}[${this.ruleNumber[r]}]`;
  }

  private hash(ip: Uint8Array, off: number): number {
    // Over the 4 big-endian words (a multiply-xorshift per word), keyed by the per-process seed.
    let h = (0x811c9dc5 ^ this.seed) >>> 0;
    for (let i = off; i < off + 16; i += 4) {
      h = Math.imul(h ^ ((ip[i] << 24) | (ip[i + 1] << 16) | (ip[i + 2] << 8) | ip[i + 3]), 0x01000193);
      h ^= h >>> 15;
    }
    return Math.imul(h, 0x2c1b3c6d) >>> 0;
  }

  private keyEquals(slot: number, ip: Uint8Array, off: number): boolean {
    const b = slot * 16;
    for (let i = 0; i < 16; i++) if (this.ipKeys[b + i] !== ip[off + i]) return false;
    return true;
  }

  private insertIp(ip: Uint8Array, idx: number): void {
    let h = this.hash(ip, 0) & this.mask;
    while (this.ipVals[h] >= 0) {
      if (this.keyEquals(h, ip, 0)) return; // the first endpoint holding an address keeps it
      h = (h + 1) & this.mask;
    }
    this.ipKeys.set(ip, h * 16);
    this.ipVals[h] = idx;
  }
}
