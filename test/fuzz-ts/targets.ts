/**
 * Property-based fuzz targets (fast-check) for the TypeScript decoders of untrusted input:
 * VXLAN header and inner-frame validation (vxlan.ts, ethernet.ts, and the data path's receive
 * side end to end over the in-memory twins), ARP/ND (neigh.ts), gossip packets, broadcasts,
 * records and stream messages (gossip/codec.ts) and the keyring envelope, handshake messages
 * (crypto/handshake.ts), config (config/load.ts).
 *
 * Each target checks two kinds of property:
 *  - arbitrary and mutated bytes/text never make a decoder throw anything but its documented
 *    error (CodecError for gossip, ConfigError for config; the others return a status, -1 or null
 *    and never throw), and what it accepts is within bounds;
 *  - round trips: what the encoder writes, the decoder gives back exactly.
 * `runTarget` runs one for a time budget from a seed and returns how many inputs it executed.
 */
import fc from 'fast-check';
import * as YAML from 'yaml';
import { FakeClock } from '../../src/clock';
import { ConfigError } from '../../src/errors';
import { parseConfig } from '../../src/config/load';
import { Datapath } from '../../src/dataplane/datapath';
import type { Endpoint } from '../../src/config/types';
import { ETH_HLEN, l2HeaderLen, macToString, parseMac, payloadEthertype } from '../../src/dataplane/ethernet';
import { MemoryReactor, MemoryTap, MemoryUdpNetwork } from '../../src/dataplane/memory-io';
import {
  ARP_FRAME_LEN, MIN_FRAME_LEN, NA_FRAME_LEN, arpRequestTarget, arpSenderIp, icmpv6ChecksumOk, ndSolicitTarget, writeArpReply,
  writeNdAdvert,
} from '../../src/dataplane/neigh';
import {
  VXLAN_HLEN, VXLAN_NO_I_FLAG, VXLAN_OK, VXLAN_RESERVED_BITS, VXLAN_RESERVED_BIT_POSITIONS, VXLAN_TRUNCATED, vxlanCheck, vxlanVni,
  writeVxlanHeader,
} from '../../src/dataplane/vxlan';
import {
  BC_ALIVE, BC_DEAD, BC_SUSPECT, CodecError, LIMITS, PKT_ACK, PKT_GOSSIP, PKT_INDIRECT_PING, PKT_NACK, PKT_PING, STREAM_ACK,
  STREAM_PING, STREAM_PUSH, STREAM_REPLY, STREAM_REQUEST, decodeBroadcast, decodePacket, decodeStream, encodeBroadcast,
  encodePacket, encodeStream, peekAlive, type Broadcast, type PrimaryMsg, type StreamMsg,
} from '../../src/gossip/codec';
import { Keyring, sodiumReady } from '../../src/gossip/keyring';
import type { NodeRecord } from '../../src/gossip/record';
import { checkMac1, consumeCookieReply, consumeInitiation, consumeResponse, createInitiation, type InitiatorState } from '../../src/crypto/handshake';
import { cryptoReady, hostKeyFromPrivate, type HostKey } from '../../src/crypto/keys';
import { COOKIE_LEN, INITIATION_LEN, MSG_COOKIE, MSG_INITIATION, MSG_RESPONSE, RESPONSE_LEN, encodeTimestamp, mac1Key } from '../../src/crypto/noise';

export interface TargetResult {
  name: string;
  /** Inputs executed (all properties of the target together). */
  runs: number;
  ms: number;
}

export interface Target {
  name: string;
  /** Properties of the target; the budget is shared among them. */
  properties(): Promise<Array<{ label: string; prop: fc.IPropertyWithHooks<any> | fc.IProperty<any> | fc.IAsyncProperty<any> }>>;
}

const bytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max });
/** Byte edits to apply to a valid encoding: [position (mod length), value]. */
const edits = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 });
/** A valid input mutated: bytes changed, then maybe truncated or extended. */
function mutate(b: Uint8Array, ed: Array<[number, number]>, cut: number, extra: Uint8Array): Uint8Array {
  const out = new Uint8Array(b);
  if (out.length) for (const [p, v] of ed) out[p % out.length] = v;
  const keep = cut % (out.length + 1);
  if (keep === 0) return out; // unchanged length
  const m = new Uint8Array(keep + extra.length);
  m.set(out.subarray(0, keep));
  m.set(extra, keep);
  return m;
}

function onlyCodecErrors(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof CodecError)) throw new Error(`decoder threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message} (only CodecError is documented)`);
  }
}

// ---- VXLAN and Ethernet ------------------------------------------------------------------------

const vxlanTarget: Target = {
  name: 'vxlan',
  async properties() {
    return [
      {
        label: 'vxlanCheck of arbitrary bytes: a status, never a throw; OK implies flags 0x08 and zero reserved bits',
        prop: fc.property(bytes(64), fc.nat(), fc.nat(), (b, o, l) => {
          const off = b.length ? o % b.length : 0;
          const len = Math.min(l % 80, b.length - off);
          const s = vxlanCheck(b, off, len);
          if (![VXLAN_OK, VXLAN_TRUNCATED, VXLAN_NO_I_FLAG, VXLAN_RESERVED_BITS].includes(s)) throw new Error(`status ${s}`);
          if (s === VXLAN_OK) {
            if (len < VXLAN_HLEN || b[off] !== 0x08 || b[off + 1] | b[off + 2] | b[off + 3] | b[off + 7]) throw new Error('accepted a bad header');
            const vni = vxlanVni(b, off);
            if (vni < 0 || vni > 0xffffff) throw new Error(`vni ${vni}`);
          }
        }),
      },
      {
        label: 'writeVxlanHeader → vxlanCheck OK and the same VNI; any one reserved bit set → RESERVED_BITS',
        prop: fc.property(fc.integer({ min: 0, max: 0xffffff }), fc.nat(64), fc.nat(), (vni, off, bit) => {
          const b = new Uint8Array(off + VXLAN_HLEN + 14);
          writeVxlanHeader(b, off, vni);
          if (vxlanCheck(b, off, VXLAN_HLEN + 14) !== VXLAN_OK || vxlanVni(b, off) !== vni) throw new Error('round trip');
          const [byte, mask] = VXLAN_RESERVED_BIT_POSITIONS[bit % VXLAN_RESERVED_BIT_POSITIONS.length];
          b[off + byte] |= mask;
          if (vxlanCheck(b, off, VXLAN_HLEN + 14) !== VXLAN_RESERVED_BITS) throw new Error(`reserved bit ${byte}/${mask} accepted`);
        }),
      },
      {
        label: 'Ethernet: l2HeaderLen/payloadEthertype of arbitrary frames stay inside the frame; MAC text round-trips',
        prop: fc.property(bytes(40), fc.integer({ min: 0, max: 0xffffffffffff }), fc.string({ maxLength: 24 }), (b, mac, text) => {
          const h = l2HeaderLen(b, 0, b.length);
          if (h !== -1 && (h !== 14 && h !== 18)) throw new Error(`header ${h}`);
          if (h > b.length) throw new Error('header beyond the frame');
          const et = payloadEthertype(b, 0, b.length);
          if ((h === -1) !== (et === -1) || et > 0xffff) throw new Error(`ethertype ${et}`);
          if (parseMac(macToString(mac)) !== mac) throw new Error(`mac ${mac}`);
          const p = parseMac(text);
          if (p !== -1 && (p < 0 || p > 0xffffffffffff)) throw new Error(`parseMac(${text}) = ${p}`);
        }),
      },
    ];
  },
};

/**
 * The data path's receive side end to end: datagrams from a known peer, valid VXLAN of a known or
 * unknown VNI around arbitrary inner frames, or arbitrary bytes — none throws, and every datagram
 * is accounted for exactly once: delivered to the TAP or dropped with a reason.
 */
const datapathTarget: Target = {
  name: 'datapath-rx',
  async properties() {
    const PEER: Endpoint = { address: '198.18.0.2', port: 4789, family: 4 };
    const datagram = fc.oneof(
      bytes(120),
      fc.tuple(fc.constantFrom(42, 43, 7), bytes(1600), fc.option(fc.tuple(fc.nat(7), fc.integer({ min: 0, max: 255 })), { nil: undefined })).map(([vni, inner, flip]) => {
        const b = new Uint8Array(VXLAN_HLEN + inner.length);
        writeVxlanHeader(b, 0, vni);
        b.set(inner, VXLAN_HLEN);
        if (flip) b[flip[0]] = flip[1];
        return b;
      }),
      fc.tuple(fc.constantFrom(42, 43), fc.integer({ min: 0, max: 1600 }), fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.integer({ min: 0, max: 0xffff })).map(([vni, len, macs, et]) => {
        // A plausible inner frame: MACs, an EtherType, filler.
        const inner = new Uint8Array(Math.max(len, 0));
        inner.set(macs.subarray(0, Math.min(12, inner.length)));
        if (inner.length >= 14) { inner[12] = et >> 8; inner[13] = et & 0xff; }
        const b = new Uint8Array(VXLAN_HLEN + inner.length);
        writeVxlanHeader(b, 0, vni);
        b.set(inner, VXLAN_HLEN);
        return b;
      }),
    );
    return [
      {
        label: 'received datagrams: no throw; rxDatagrams = n; per network rx = delivered + drops; Σ = n − global drops',
        prop: fc.property(fc.array(datagram, { minLength: 1, maxLength: 24 }), (dgs) => {
          const clock = new FakeClock();
          const reactor = new MemoryReactor();
          const wire = new MemoryUdpNetwork({ reactor, clock });
          const udp = wire.attach('198.18.0.1', 4789, 1);
          const taps = [new MemoryTap({ name: 'vx-a', reactor }), new MemoryTap({ name: 'vx-b', reactor })];
          const dp = new Datapath({
            networks: [
              { config: { name: 'a', vni: 42, bridge: 'br-a', tap: 'vx-a', mtu: 1450, encrypted: false }, tap: taps[0] },
              { config: { name: 'b', vni: 43, bridge: 'br-b', tap: 'vx-b', mtu: 1450, encrypted: false }, tap: taps[1] },
            ],
            udp, clock, underlay: { family: 4, mtu: 1500, port: 4789, address: '198.18.0.1' }, peers: [PEER],
          });
          dp.start();
          try {
            for (const d of dgs) udp.injectFrom(PEER, d);
            reactor.run();
            const g = dp.counters;
            if (g.rxDatagrams !== dgs.length) throw new Error(`rxDatagrams ${g.rxDatagrams} ≠ ${dgs.length}`);
            let perNet = 0;
            let delivered = 0;
            for (const n of dp.networks()) {
              const c = n.counters;
              if (c.rxDelivered + c.totalRxDrops() !== c.rxPackets) throw new Error(`${n.config.name}: ${c.rxDelivered} + ${c.totalRxDrops()} ≠ ${c.rxPackets}`);
              perNet += c.rxPackets;
              delivered += c.rxDelivered;
            }
            let globalDrops = 0;
            for (const v of g.rxDrops) globalDrops += v;
            if (perNet + globalDrops !== dgs.length) throw new Error(`${perNet} + ${globalDrops} ≠ ${dgs.length}`);
            const written = taps[0].takeWritten().length + taps[1].takeWritten().length;
            if (written !== delivered) throw new Error(`TAP writes ${written} ≠ delivered ${delivered}`);
          } finally {
            dp.stop();
          }
        }),
      },
    ];
  },
};

// ---- ARP / ND ----------------------------------------------------------------------------------

function arpRequest(sha: Uint8Array, spa: number, tpa: number): Uint8Array {
  const b = new Uint8Array(MIN_FRAME_LEN);
  b.fill(0xff, 0, 6);
  b.set(sha, 6);
  b[12] = 0x08; b[13] = 0x06;
  const a = ETH_HLEN;
  b[a + 1] = 1; b[a + 2] = 0x08; b[a + 4] = 6; b[a + 5] = 4; b[a + 7] = 1;
  b.set(sha, a + 8);
  new DataView(b.buffer).setUint32(a + 14, spa);
  new DataView(b.buffer).setUint32(a + 24, tpa);
  return b;
}

function ndSolicit(srcMac: Uint8Array, src: Uint8Array, target: Uint8Array): Uint8Array {
  const b = new Uint8Array(ETH_HLEN + 40 + 32);
  b[0] = 0x33; b[1] = 0x33; b[2] = 0xff;
  b.set(srcMac, 6);
  b[12] = 0x86; b[13] = 0xdd;
  const ip = ETH_HLEN;
  b[ip] = 0x60; b[ip + 5] = 32; b[ip + 6] = 58; b[ip + 7] = 255;
  b.set(src, ip + 8);
  b[ip + 24] = 0xff; b[ip + 25] = 0x02; b[ip + 35] = 1; b[ip + 36] = 0xff;
  const icmp = ip + 40;
  b[icmp] = 135;
  b.set(target, icmp + 8);
  b[icmp + 24] = 1; b[icmp + 25] = 1;
  b.set(srcMac, icmp + 26);
  return b;
}

const neighTarget: Target = {
  name: 'arp-nd',
  async properties() {
    const mac6 = fc.uint8Array({ minLength: 6, maxLength: 6 });
    const ip16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
    return [
      {
        label: 'arbitrary and mutated frames: arpRequestTarget/arpSenderIp/ndSolicitTarget give -1 or a value in range, never throw',
        prop: fc.property(
          fc.oneof(bytes(120), fc.tuple(mac6, fc.nat(), fc.nat(), edits, fc.nat(), bytes(8)).map(([m, s, t, ed, cut, ex]) => mutate(arpRequest(m, s >>> 0, t >>> 0), ed, cut, ex)),
            fc.tuple(mac6, ip16, ip16, edits, fc.nat(), bytes(8)).map(([m, s, t, ed, cut, ex]) => mutate(ndSolicit(m, s, t), ed, cut, ex))),
          (b) => {
            const t = arpRequestTarget(b, 0, b.length);
            if (t !== -1 && (t < 0 || t > 0xffffffff || b.length < ARP_FRAME_LEN)) throw new Error(`arp target ${t}`);
            const s = arpSenderIp(b, 0, b.length);
            if (s !== -1 && (s < 0 || s > 0xffffffff)) throw new Error(`arp sender ${s}`);
            const n = ndSolicitTarget(b, 0, b.length);
            if (n !== -1 && (n < 0 || n + 16 > b.length)) throw new Error(`nd target at ${n} of ${b.length}`);
          },
        ),
      },
      {
        label: 'ARP request → reply: 60 bytes, op 2, sender = requested IP at the given MAC, to the requester',
        prop: fc.property(mac6, fc.integer({ min: 1, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xfeffffffffff }), (m, spa, tpa, tmac) => {
          fc.pre(spa !== tpa);
          const req = arpRequest(m, spa, tpa);
          if (arpRequestTarget(req, 0, req.length) !== tpa) throw new Error('request not recognised');
          const out = new Uint8Array(64);
          if (writeArpReply(req, 0, tmac, out, 2) !== MIN_FRAME_LEN) throw new Error('reply length');
          const r = out.subarray(2, 2 + MIN_FRAME_LEN);
          if (arpSenderIp(r, 0, r.length) !== tpa) throw new Error('reply sender IP');
          if (arpRequestTarget(r, 0, r.length) !== -1) throw new Error('a reply taken for a request');
          for (let i = 0; i < 6; i++) if (r[i] !== m[i]) throw new Error('reply not to the requester');
          if (parseMac(macToString(tmac)) !== tmac) throw new Error('mac');
        }),
      },
      {
        label: 'ND solicitation → advertisement: valid ICMPv6 checksum, target echoed',
        prop: fc.property(mac6, ip16, ip16, fc.integer({ min: 0, max: 0xfeffffffffff }), (m, src, target, tmac) => {
          fc.pre(src.some((x) => x !== 0) && target[0] !== 0xff);
          const req = ndSolicit(m, src, target);
          const at = ndSolicitTarget(req, 0, req.length);
          if (at < 0) throw new Error('solicitation not recognised');
          const out = new Uint8Array(NA_FRAME_LEN);
          writeNdAdvert(req, 0, tmac, out, 0);
          if (!icmpv6ChecksumOk(out, 0)) throw new Error('bad checksum');
          for (let i = 0; i < 16; i++) if (out[ETH_HLEN + 40 + 8 + i] !== target[i]) throw new Error('target');
          if (ndSolicitTarget(out, 0, out.length) !== -1) throw new Error('an advertisement taken for a solicitation');
        }),
      },
    ];
  },
};

// ---- gossip ------------------------------------------------------------------------------------

const name = fc.string({ minLength: 1, maxLength: 24 });
const ip4 = fc.tuple(fc.integer({ min: 1, max: 254 }), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((a) => a.join('.'));
const hostPort = fc.tuple(ip4, fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `${h}:${p}`);
const hex2 = fc.integer({ min: 0, max: 255 }).map((x) => x.toString(16).padStart(2, '0'));
const macText = fc.array(hex2, { minLength: 6, maxLength: 6 }).map((a) => a.join(':'));
const record: fc.Arbitrary<NodeRecord> = fc.record({
  name,
  incarnation: fc.nat(),
  protocol: fc.constant(1),
  gossip: hostPort,
  underlay: hostPort,
  vnis: fc.uniqueArray(fc.integer({ min: 1, max: 0xffffff }), { maxLength: 4 }).map((v) => v.sort((a, b) => a - b)),
  endpoints: fc.array(fc.record({ vni: fc.integer({ min: 1, max: 0xffffff }), mac: macText, ips: fc.array(ip4, { maxLength: 3 }) }), { maxLength: 3 }),
  publicKey: fc.string({ maxLength: 44 }),
  sections: fc.option(fc.uniqueArray(fc.record({ name: fc.stringMatching(/^[a-z0-9-]{1,12}$/), data: fc.string({ maxLength: 40 }) }), { minLength: 1, maxLength: 3, selector: (s) => s.name })
    .map((s) => s.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))), { nil: undefined }),
}).map((r) => {
  if (r.sections === undefined) delete (r as Partial<NodeRecord>).sections;
  return r as NodeRecord;
});
const broadcast: fc.Arbitrary<Broadcast> = fc.oneof(
  record.map((r) => ({ kind: BC_ALIVE, record: r }) as Broadcast),
  fc.tuple(fc.constantFrom(BC_SUSPECT, BC_DEAD), name, fc.nat(), name).map(([kind, n, inc, from]) => ({ kind, name: n, incarnation: inc, from }) as Broadcast),
);
const primary: fc.Arbitrary<PrimaryMsg> = fc.oneof(
  fc.constant({ type: PKT_GOSSIP } as PrimaryMsg),
  fc.record({ type: fc.constant(PKT_PING), seq: fc.nat(), target: name, source: name }) as fc.Arbitrary<PrimaryMsg>,
  fc.record({ type: fc.constant(PKT_INDIRECT_PING), seq: fc.nat(), target: name, targetAddr: hostPort, nack: fc.boolean() }) as fc.Arbitrary<PrimaryMsg>,
  fc.record({ type: fc.constantFrom(PKT_ACK, PKT_NACK), seq: fc.nat() }) as fc.Arbitrary<PrimaryMsg>,
);
const entry = fc.record({ state: fc.integer({ min: 0, max: 3 }), record });
const stream: fc.Arbitrary<StreamMsg> = fc.oneof(
  fc.record({ type: fc.constant(STREAM_PING), target: name }) as fc.Arbitrary<StreamMsg>,
  fc.constant({ type: STREAM_ACK } as StreamMsg),
  fc.record({ type: fc.constant(STREAM_REQUEST), join: fc.boolean(), self: entry, digest: fc.array(fc.record({ name, incarnation: fc.nat(), state: fc.integer({ min: 0, max: 3 }) }), { maxLength: 4 }) }) as fc.Arbitrary<StreamMsg>,
  fc.record({ type: fc.constant(STREAM_REPLY), entries: fc.array(entry, { maxLength: 3 }), want: fc.array(name, { maxLength: 3 }) }) as fc.Arbitrary<StreamMsg>,
  fc.record({ type: fc.constant(STREAM_PUSH), entries: fc.array(entry, { maxLength: 3 }) }) as fc.Arbitrary<StreamMsg>,
);

function sameJson(a: unknown, b: unknown, what: string): void {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  if (x !== y) throw new Error(`${what} round trip:\n  ${x}\n≠ ${y}`);
}

function decodeAll(buf: Uint8Array): void {
  const p = decodePacket(buf);
  if (p.bcStarts.length !== p.bcEnds.length) throw new Error('broadcast spans');
  for (let i = 0; i < p.bcStarts.length; i++) {
    if (p.bcStarts[i] < 0 || p.bcEnds[i] > buf.length || p.bcStarts[i] >= p.bcEnds[i]) throw new Error('span out of the packet');
    onlyCodecErrors(() => decodeBroadcast(buf, p.bcStarts[i], p.bcEnds[i]));
    peekAlive(buf, p.bcStarts[i], p.bcEnds[i]);
  }
}

const gossipTarget: Target = {
  name: 'gossip-codec',
  async properties() {
    await sodiumReady();
    const ring = new Keyring([new Uint8Array(32).fill(7), new Uint8Array(32).fill(9)]);
    return [
      {
        label: 'packets: encode → decode gives the message and the broadcasts back',
        prop: fc.property(primary, fc.array(broadcast, { maxLength: 4 }), (msg, bcs) => {
          const enc = bcs.map(encodeBroadcast);
          const pkt = encodePacket(msg, enc);
          const d = decodePacket(pkt);
          sameJson(d.msg, msg, 'packet');
          const back = d.bcStarts.map((s, i) => decodeBroadcast(pkt, s, d.bcEnds[i]));
          sameJson(back, bcs, 'broadcasts');
          d.bcStarts.forEach((s, i) => {
            const pk = peekAlive(pkt, s, d.bcEnds[i]);
            const b = bcs[i];
            if (b.kind === BC_ALIVE ? !pk || pk.name !== b.record.name || pk.incarnation !== b.record.incarnation : pk !== null) throw new Error('peekAlive');
          });
        }),
      },
      {
        label: 'stream messages: encode → decode round trip',
        prop: fc.property(stream, (m) => sameJson(decodeStream(encodeStream(m)), m, 'stream')),
      },
      {
        label: 'arbitrary and mutated packets/stream messages: only CodecError',
        prop: fc.property(
          fc.oneof(bytes(300), fc.tuple(primary, fc.array(broadcast, { maxLength: 3 }), edits, fc.nat(), bytes(6)).map(([m, b, ed, cut, ex]) => mutate(encodePacket(m, b.map(encodeBroadcast)), ed, cut, ex))),
          fc.oneof(bytes(300), fc.tuple(stream, edits, fc.nat(), bytes(6)).map(([m, ed, cut, ex]) => mutate(encodeStream(m), ed, cut, ex))),
          (pkt, st) => {
            onlyCodecErrors(() => decodeAll(pkt));
            onlyCodecErrors(() => decodeStream(st));
            onlyCodecErrors(() => decodeBroadcast(pkt, 0, pkt.length));
          },
        ),
      },
      {
        label: 'keyring envelope: seal → open round trip; arbitrary or mutated envelopes open to null, never throw',
        prop: fc.property(bytes(200), edits, bytes(120), (plain, ed, junk) => {
          const env = ring.seal(plain);
          const back = ring.open(env, LIMITS.maxPacket);
          if (!back || Buffer.compare(Buffer.from(back), Buffer.from(plain)) !== 0) throw new Error('envelope round trip');
          const bad = mutate(env, ed, 0, new Uint8Array(0));
          const changed = Buffer.compare(Buffer.from(bad), Buffer.from(env)) !== 0;
          if (changed && ring.open(bad, LIMITS.maxPacket) !== null) throw new Error('a mutated envelope opened');
          if (ring.open(junk, LIMITS.maxPacket) !== null) throw new Error('junk opened');
        }),
      },
    ];
  },
};

// ---- handshake ---------------------------------------------------------------------------------

const handshakeTarget: Target = {
  name: 'handshake',
  async properties() {
    await cryptoReady();
    const fixed = (n: number, v: number) => new Uint8Array(n).fill(v);
    const responder: HostKey = hostKeyFromPrivate(fixed(32, 0x11));
    const initiator: HostKey = hostKeyFromPrivate(fixed(32, 0x22));
    const ourMac1 = mac1Key(responder.publicKey);
    const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
    const st: InitiatorState = { localIndex: 1, peerStatic: responder.publicKey, ephPriv: fixed(32, 3), ck: fixed(32, 4), h: fixed(32, 5), mac1: fixed(16, 6) };
    const msgOf = (type: number, len: number) => fc.uint8Array({ minLength: len, maxLength: len }).map((b) => { b[0] = type; b[1] = 0; b[2] = 0; b[3] = 0; return b; });
    return [
      {
        label: 'initiation: create → mac1 verifies → consume gives the sender index, static key and timestamp',
        prop: fc.property(fc.nat(), fc.integer({ min: 0, max: 2 ** 48 }), key32, (index, micros, eph) => {
          const ts = encodeTimestamp(micros);
          const made = createInitiation(initiator, responder.publicKey, index >>> 0, ts, eph, null);
          fc.pre(made !== null);
          if (!checkMac1(made!.msg, ourMac1)) throw new Error('mac1');
          const c = consumeInitiation(responder, made!.msg);
          if (!c || c.senderIndex !== index >>> 0 || Buffer.compare(Buffer.from(c.peerStatic), Buffer.from(initiator.publicKey)) !== 0
            || Buffer.compare(Buffer.from(c.timestamp), Buffer.from(ts)) !== 0) throw new Error('consumed initiation differs');
        }),
      },
      {
        label: 'a mutated initiation fails mac1 (bytes before mac2) or fails to decrypt; never throws',
        prop: fc.property(key32, fc.integer({ min: 0, max: INITIATION_LEN - 17 }), fc.integer({ min: 1, max: 255 }), (eph, at, x) => {
          const made = createInitiation(initiator, responder.publicKey, 7, encodeTimestamp(1), eph, null);
          fc.pre(made !== null);
          const m = new Uint8Array(made!.msg);
          m[at] ^= x;
          if (checkMac1(m, ourMac1)) throw new Error(`byte ${at} changed and mac1 still verifies`);
          if (at >= 1 && at < INITIATION_LEN - 32 && consumeInitiation(responder, m) !== null && at >= 8) throw new Error(`byte ${at} changed and it decrypts`);
        }),
      },
      {
        label: 'arbitrary handshake-shaped and arbitrary messages: checkMac1 false, consume* null, never throw',
        prop: fc.property(
          fc.oneof(bytes(200), msgOf(MSG_INITIATION, INITIATION_LEN), msgOf(MSG_RESPONSE, RESPONSE_LEN), msgOf(MSG_COOKIE, COOKIE_LEN)),
          (m) => {
            if (checkMac1(m, ourMac1)) throw new Error('a random message passed mac1');
            if (consumeInitiation(responder, m) !== null) throw new Error('a random initiation was consumed');
            if (consumeResponse(initiator, st, m, [fixed(32, 8)]) !== null) throw new Error('a random response was consumed');
            if (consumeCookieReply(m, responder.publicKey, st.mac1) !== null) throw new Error('a random cookie reply was consumed');
          },
        ),
      },
    ];
  },
};

// ---- config ------------------------------------------------------------------------------------

const VALID = `node: host-a
underlay: { address: 198.18.0.1, port: 4789 }
networks:
  - { name: blue, vni: 42, bridge: br0 }
  - { name: red, vni: 43, bridge: br1, mtu: 1400 }
peers: [198.18.0.2, "198.18.0.3:4790"]
fdb: { ageingSeconds: 300 }
gossip: { port: 7946, seeds: [198.18.0.2], keyFile: /etc/vxmesh/cluster.key }
api: { listen: "127.0.0.1:9469" }
log: { level: info }
`;

function onlyConfigErrors(text: string): void {
  try {
    parseConfig(text, { mtuLookup: () => 1500, hostname: 'fuzz' });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw new Error(`parseConfig threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message} (only ConfigError is documented)`);
    if (typeof (e as ConfigError).message !== 'string' || (e as ConfigError).message.length === 0) throw new Error('ConfigError without a message');
  }
}

const configTarget: Target = {
  name: 'config',
  async properties() {
    const lines = VALID.split('\n');
    const scalar = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constantFrom('198.18.0.9', '2001:2::1', '-1', '1e9', '[]', '{}', '~', '*a', '&a x', '!!binary AAAA', '0x10'));
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('name', 'vni', 'bridge', 'mtu', 'address', 'port', 'peers', 'publicKey', 'x'), tie('v'), { maxKeys: 3 })),
    })).v;
    const section = fc.constantFrom('node', 'underlay', 'networks', 'peers', 'fdb', 'gossip', 'api', 'log', 'encryption', 'bogus');
    return [
      {
        label: 'the valid config parses; JSON of it parses to the same config',
        prop: fc.property(fc.constant(0), () => {
          const a = parseConfig(VALID, { mtuLookup: () => 1500, hostname: 'fuzz' });
          const b = parseConfig(JSON.stringify(YAML.parse(VALID)), { mtuLookup: () => 1500, hostname: 'fuzz' });
          sameJson({ ...a, source: null }, { ...b, source: null }, 'yaml vs json');
        }),
      },
      {
        label: 'arbitrary text, mutated lines, and structurally random documents: a Config or a ConfigError',
        prop: fc.property(
          fc.oneof(
            fc.string({ maxLength: 200 }),
            fc.tuple(fc.nat(lines.length - 1), fc.string({ maxLength: 30 }), fc.nat(lines.length)).map(([i, s, cut]) => {
              const l = [...lines];
              l[i] = s;
              return l.slice(0, Math.max(1, cut)).join('\n');
            }),
            fc.tuple(edits, fc.nat(), bytes(6)).map(([ed, cut, ex]) => Buffer.from(mutate(Buffer.from(VALID), ed, cut, ex)).toString('latin1')),
            fc.dictionary(section, value, { maxKeys: 6 }).map((o) => JSON.stringify(o)),
            fc.dictionary(section, value, { maxKeys: 6 }).map((o) => YAML.stringify(o)),
          ),
          (text) => onlyConfigErrors(text),
        ),
      },
    ];
  },
};

export const TARGETS: Target[] = [vxlanTarget, datapathTarget, neighTarget, gossipTarget, handshakeTarget, configTarget];

/**
 * Runs every property of `target` from `seed` for about `ms` milliseconds in all (split evenly;
 * at least `minRuns` inputs each). Throws with the counterexample, the seed and the path to replay
 * when a property fails.
 */
export async function runTarget(target: Target, seed: number, ms: number, minRuns = 20): Promise<TargetResult> {
  const props = await target.properties();
  const started = Date.now();
  let runs = 0;
  for (const { label, prop } of props) {
    const budget = Math.max(1, Math.floor(ms / props.length));
    let details = fc.check(prop as fc.IProperty<unknown>, { seed, numRuns: 1_000_000_000, interruptAfterTimeLimit: budget, markInterruptAsFailure: false, endOnFailure: true });
    runs += details.numRuns;
    if (!details.failed && details.numRuns < minRuns) {
      details = fc.check(prop as fc.IProperty<unknown>, { seed: seed + 1, numRuns: minRuns - details.numRuns, endOnFailure: true });
      runs += details.numRuns;
    }
    if (details.failed) {
      const err = details.errorInstance as Error | undefined;
      throw new Error(`fuzz ${target.name}: "${label}" failed after ${details.numRuns} runs (seed ${details.seed}, path ${details.counterexamplePath}; ` +
        `VXMESH_SEED replays it)\ncounterexample: ${fc.stringify(details.counterexample)}\n${err?.message ?? String(details.errorInstance)}`);
    }
  }
  return { name: target.name, runs, ms: Date.now() - started };
}
