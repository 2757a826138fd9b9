/**
 * Fast-path packet work in the addon (native/gso.c), checked against a straightforward JS
 * reference over random payloads and MSS values: TSO segmentation (every header field and every
 * IPv4 header / TCP checksum of every segment compared byte for byte with frames built from
 * scratch) and TCP coalescing (the merged frame's virtio_net_hdr, headers and partial checksum;
 * completing the checksum gives exactly the reference frame; segmenting it again gives back the
 * inputs), UDP datagram coalescing into UDP_L4 GSO frames (the same checks, segmented back by a JS
 * reference of the kernel's UDP GSO), plus every reason a run is split. No root needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadAddon } from '../../src/native/addon';
import { addonSkipReason, inetChecksum } from './native-helpers';
import { seedFor, SEED } from '../helpers/seed';

const skip = addonSkipReason();

/** Deterministic PRNG (mulberry32) so failures reproduce: seeds derive from VXMESH_SEED (test/helpers/seed.ts), printed on failure. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Flow {
  v6: boolean;
  src: number[];
  dst: number[];
  sport: number;
  dport: number;
  ack: number;
  window: number;
  ttl: number;
  tos: number;
  /** TCP options (multiple of 4 bytes). */
  options: number[];
  /** IPv4 options (multiple of 4 bytes). */
  ipOptions: number[];
  /** VLAN tags between the MACs and the EtherType (0, 1 or 2 × 4 bytes). */
  vlan: number[];
}

const TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_PSH = 0x08, TCP_ACK = 0x10, TCP_CWR = 0x80;

function flow(v6: boolean, r: () => number, withOptions = true): Flow {
  const b = (n: number) => Array.from({ length: n }, () => Math.floor(r() * 256));
  return {
    v6,
    src: v6 ? [0x20, 0x01, 0, 2, ...b(12)] : [198, 18, 1, 1 + Math.floor(r() * 200)],
    dst: v6 ? [0x20, 0x01, 0, 2, ...b(12)] : [198, 19, 0, 1 + Math.floor(r() * 200)],
    sport: 1024 + Math.floor(r() * 60000),
    dport: 1 + Math.floor(r() * 65000),
    ack: Math.floor(r() * 2 ** 32),
    window: Math.floor(r() * 65536),
    ttl: 64,
    tos: 0,
    options: withOptions ? [1, 1, 8, 10, ...b(8)] : [], // NOP NOP timestamps
    ipOptions: !v6 && withOptions && r() < 0.3 ? [1, 1, 1, 0] : [],
    vlan: r() < 0.15 ? [0x81, 0x00, 0, 42] : r() < 0.05 ? [0x88, 0xa8, 0, 7, 0x81, 0x00, 0, 42] : [],
  };
}

/** Ethernet header (with the flow's VLAN tags) of the reference frames. */
function ethHeader(f: Flow): Buffer {
  return Buffer.from([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, ...f.vlan, ...(f.v6 ? [0x86, 0xdd] : [0x08, 0x00])]);
}

/** The IP header (IPv4: DF, ID, header checksum) and the pseudo-header for `proto` over l4len bytes. */
function ipHeaders(f: Flow, proto: number, l4len: number, ipId: number): { ip: Buffer; pseudo: Buffer } {
  let ip: Buffer;
  let pseudo: Buffer;
  if (f.v6) {
    ip = Buffer.alloc(40);
    ip[0] = 0x60;
    ip.writeUInt16BE(l4len, 4);
    ip[6] = proto;
    ip[7] = f.ttl;
    Buffer.from(f.src).copy(ip, 8);
    Buffer.from(f.dst).copy(ip, 24);
    pseudo = Buffer.alloc(40);
    Buffer.from(f.src).copy(pseudo, 0);
    Buffer.from(f.dst).copy(pseudo, 16);
    pseudo.writeUInt32BE(l4len, 32);
    pseudo[39] = proto;
  } else {
    ip = Buffer.alloc(20 + f.ipOptions.length);
    ip[0] = 0x40 | (ip.length / 4);
    ip[1] = f.tos;
    ip.writeUInt16BE(ip.length + l4len, 2);
    ip.writeUInt16BE(ipId & 0xffff, 4);
    ip.writeUInt16BE(0x4000, 6); // DF
    ip[8] = f.ttl;
    ip[9] = proto;
    Buffer.from(f.src).copy(ip, 12);
    Buffer.from(f.dst).copy(ip, 16);
    Buffer.from(f.ipOptions).copy(ip, 20);
    ip.writeUInt16BE(inetChecksum(ip), 10);
    pseudo = Buffer.alloc(12);
    Buffer.from(f.src).copy(pseudo, 0);
    Buffer.from(f.dst).copy(pseudo, 4);
    pseudo[9] = proto;
    pseudo.writeUInt16BE(l4len, 10);
  }
  return { ip, pseudo };
}

/** The reference: an Ethernet/IP/TCP frame built from scratch with correct checksums. */
function frame(f: Flow, seq: number, flags: number, payload: Buffer, ipId = 0, tcpCheck?: number): Buffer {
  const eth = ethHeader(f);
  const tcp = Buffer.alloc(20 + f.options.length);
  tcp.writeUInt16BE(f.sport, 0);
  tcp.writeUInt16BE(f.dport, 2);
  tcp.writeUInt32BE(seq >>> 0, 4);
  tcp.writeUInt32BE(f.ack >>> 0, 8);
  tcp[12] = (tcp.length / 4) << 4;
  tcp[13] = flags;
  tcp.writeUInt16BE(f.window, 14);
  Buffer.from(f.options).copy(tcp, 20);
  const { ip, pseudo } = ipHeaders(f, 6, tcp.length + payload.length, ipId);
  const seg = Buffer.concat([tcp, payload]);
  const check = tcpCheck ?? inetChecksum(Buffer.concat([pseudo, seg]));
  seg.writeUInt16BE(check, 16);
  return Buffer.concat([eth, ip, seg]);
}

function randomPayload(r: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/** Completes a partial checksum the way a NIC / the kernel does (virtio NEEDS_CSUM semantics). */
function completeCsum(fr: Buffer, start: number, off: number): Buffer {
  const out = Buffer.from(fr);
  out.writeUInt16BE(inetChecksum(out, start, out.length), start + off);
  return out;
}

test('TSO segmentation: every segment equals the reference frame, checksums included (random MSS and payloads)', { skip }, () => {
  const addon = loadAddon();
  const k = addon.constants;
  const seed = seedFor('native-gso:tso');
  const r = rng(seed);
  const prefix = Buffer.from([0x08, 0, 0, 0, 0, 0, 42, 0]); // a VXLAN header
  let segmentsChecked = 0;
  for (let iter = 0; iter < 300; iter++) {
    const v6 = r() < 0.5;
    const f = flow(v6, r, r() < 0.7);
    const mss = 1 + Math.floor(r() * (r() < 0.5 ? 1500 : 9000));
    const maxPayload = Math.min(65535 - 60 - 60, mss * 250);
    const plen = 1 + Math.floor(r() * maxPayload);
    const payload = randomPayload(r, plen);
    const seq = Math.floor(r() * 2 ** 32);
    const ipId = Math.floor(r() * 65536);
    const flags = TCP_ACK | (r() < 0.5 ? TCP_PSH : 0) | (r() < 0.2 ? TCP_FIN : 0) | (r() < 0.2 ? TCP_CWR : 0);
    // The kernel hands over a super-frame with a partial checksum; segmentation must not rely on it.
    const superFrame = frame(f, seq, flags, payload, ipId, 0xdead);
    const gsoType = (v6 ? k.GSO_TCPV6 : k.GSO_TCPV4) | (flags & TCP_CWR ? k.GSO_ECN : 0);
    const hlen = superFrame.length - plen;
    const n = Math.ceil(plen / mss);
    const stride = prefix.length + hlen + mss;
    const out = Buffer.alloc(n * stride);
    const segLens = new Uint32Array(n + 1);
    const got = addon.gsoSegment(superFrame, gsoType, mss, prefix, out, segLens);
    const ctx = `VXMESH_SEED=${SEED} seed ${seed} iter ${iter} v6=${v6} mss=${mss} plen=${plen}`;
    assert.equal(got, n, ctx);
    assert.equal(segLens[n], stride, ctx);
    for (let i = 0; i < n; i++) {
      const chunk = payload.subarray(i * mss, Math.min(plen, (i + 1) * mss));
      let fl = flags;
      if (i < n - 1) fl &= ~(TCP_FIN | TCP_PSH);
      if (i > 0) fl &= ~TCP_CWR;
      const want = frame(f, (seq + i * mss) >>> 0, fl, chunk, (ipId + i) & 0xffff);
      assert.equal(segLens[i], prefix.length + want.length, `${ctx} segment ${i} length`);
      const seg = out.subarray(i * stride, i * stride + segLens[i]);
      assert.ok(seg.subarray(0, prefix.length).equals(prefix), `${ctx} segment ${i} prefix`);
      const inner = seg.subarray(prefix.length);
      if (!inner.equals(want)) {
        const at = inner.findIndex((b, j) => b !== want[j]);
        assert.fail(`${ctx} segment ${i} differs from the reference at byte ${at}: got ${inner[at]} want ${want[at]}`);
      }
      segmentsChecked++;
    }
  }
  assert.ok(segmentsChecked > 300);
});

test('TSO segmentation rejects what it cannot cut', { skip }, () => {
  const addon = loadAddon();
  const k = addon.constants;
  const r = rng(7);
  const f4 = { ...flow(false, r), vlan: [] };
  const sf = frame(f4, 1, TCP_ACK, randomPayload(r, 5000), 1);
  const out = Buffer.alloc(70000);
  const segLens = new Uint32Array(257);
  assert.equal(addon.gsoSegment(sf, k.GSO_TCPV6, 1000, Buffer.alloc(0), out, segLens), -1, 'family mismatch');
  assert.equal(addon.gsoSegment(sf, k.GSO_TCPV4, 0, Buffer.alloc(0), out, segLens), -1, 'mss 0');
  assert.equal(addon.gsoSegment(sf, 3 /* UDP */, 1000, Buffer.alloc(0), out, segLens), -1, 'UFO is not ours');
  assert.equal(addon.gsoSegment(sf.subarray(0, 30), k.GSO_TCPV4, 1000, Buffer.alloc(0), out, segLens), -1, 'truncated');
  assert.equal(addon.gsoSegment(sf, k.GSO_TCPV4, 10, Buffer.alloc(0), out, new Uint32Array(11)), -2, 'too many segments');
  assert.equal(addon.gsoSegment(sf, k.GSO_TCPV4, 1000, Buffer.alloc(0), Buffer.alloc(3000), segLens), -2, 'out too small');
  const udp = Buffer.from(sf);
  udp[14 + 9] = 17;
  assert.equal(addon.gsoSegment(udp, k.GSO_TCPV4, 1000, Buffer.alloc(0), out, segLens), -1, 'not TCP');
});

/** Runs groCoalesce over `frames`; returns [vnetHeader, frame, mergedCount][] */
function coalesce(frames: Buffer[], maxMerge = 64): Array<{ vnet: Buffer; frame: Buffer; merged: number }> {
  const addon = loadAddon();
  const slab = Buffer.concat(frames);
  const offs = new Uint32Array(frames.length);
  const lens = new Uint32Array(frames.length);
  let at = 0;
  frames.forEach((fr, i) => {
    offs[i] = at;
    lens[i] = fr.length;
    at += fr.length;
  });
  const out = Buffer.alloc(slab.length + 16 * frames.length + 256);
  const info = new Uint32Array(3 * frames.length);
  const n = addon.groCoalesce(slab, offs, lens, frames.length, maxMerge, out, info);
  const res = [];
  for (let i = 0; i < n; i++) {
    const o = out.subarray(info[3 * i], info[3 * i] + info[3 * i + 1]);
    res.push({ vnet: Buffer.from(o.subarray(0, 10)), frame: Buffer.from(o.subarray(10)), merged: info[3 * i + 2] });
  }
  assert.equal(res.reduce((a, x) => a + x.merged, 0), frames.length, 'every input used once');
  return res;
}

/** A burst of consecutive data segments of one flow. */
function burst(f: Flow, seq: number, mss: number, payloads: Buffer[], lastFlags = TCP_ACK, id0 = 100): Buffer[] {
  let s = seq;
  return payloads.map((p, i) => {
    const fr = frame(f, s >>> 0, i === payloads.length - 1 ? lastFlags : TCP_ACK, p, id0 + i);
    s += p.length;
    return fr;
  });
}

test('TCP coalescing: one GSO frame whose completed checksum equals the reference, and that segments back into the inputs', { skip }, () => {
  const addon = loadAddon();
  const k = addon.constants;
  const seed = seedFor('native-gso:tcp-coalesce');
  const r = rng(seed);
  for (let iter = 0; iter < 200; iter++) {
    const v6 = r() < 0.5;
    const f = flow(v6, r, r() < 0.7);
    const mss = 1 + Math.floor(r() * 1460);
    const hdr = f.vlan.length + (v6 ? 54 : 34 + f.ipOptions.length) + 20 + f.options.length;
    const maxCount = Math.min(64, Math.floor((65535 - hdr) / mss));
    const count = 2 + Math.floor(r() * Math.max(1, maxCount - 2));
    const payloads = Array.from({ length: count }, (_, i) =>
      randomPayload(r, i === count - 1 ? 1 + Math.floor(r() * mss) : mss));
    const seq = Math.floor(r() * 2 ** 32);
    const lastFlags = r() < 0.5 ? TCP_ACK | TCP_PSH : TCP_ACK;
    const frames = burst(f, seq, mss, payloads, lastFlags);
    const ctx = `VXMESH_SEED=${SEED} seed ${seed} iter ${iter} v6=${v6} mss=${mss} count=${count}`;
    const res = coalesce(frames);
    assert.equal(res.length, 1, ctx);
    const { vnet, frame: merged } = res[0];
    const l4 = f.vlan.length + (v6 ? 54 : 34 + f.ipOptions.length);
    assert.equal(vnet[0], 1, `${ctx} NEEDS_CSUM`);
    assert.equal(vnet[1], v6 ? k.GSO_TCPV6 : k.GSO_TCPV4, ctx);
    assert.equal(vnet.readUInt16LE(2), hdr, `${ctx} hdr_len`);
    assert.equal(vnet.readUInt16LE(4), mss, `${ctx} gso_size`);
    assert.equal(vnet.readUInt16LE(6), l4, `${ctx} csum_start`);
    assert.equal(vnet.readUInt16LE(8), 16, `${ctx} csum_offset`);
    const all = Buffer.concat(payloads);
    const want = frame(f, seq, lastFlags, all, 100);
    assert.equal(merged.length, want.length, ctx);
    assert.ok(completeCsum(merged, l4, 16).equals(want), `${ctx}: merged frame (checksum completed) equals the reference`);
    // Back through segmentation: exactly the original frames (IDs renumbered from the first).
    const stride = hdr + mss;
    const out = Buffer.alloc(count * stride);
    const segLens = new Uint32Array(count + 1);
    assert.equal(addon.gsoSegment(merged, vnet[1], mss, Buffer.alloc(0), out, segLens), count, ctx);
    for (let i = 0; i < count; i++) {
      assert.ok(out.subarray(i * stride, i * stride + segLens[i]).equals(frames[i]), `${ctx} round trip segment ${i}`);
    }
  }
});

test('TCP coalescing splits runs exactly where it must', { skip }, () => {
  const r = rng(11);
  const f = { ...flow(false, r), vlan: [] as number[] };
  const mss = 1000;
  const pl = (n = mss) => randomPayload(r, n);
  const merged = (res: ReturnType<typeof coalesce>) => res.map((x) => x.merged);

  // Plain run of 5: one frame.
  assert.deepEqual(merged(coalesce(burst(f, 1, mss, [pl(), pl(), pl(), pl(), pl()]))), [5]);
  // maxMerge 1: nothing merged, each frame unchanged behind a zero header.
  const b5 = burst(f, 1, mss, [pl(), pl(), pl()]);
  const single = coalesce(b5, 1);
  assert.deepEqual(merged(single), [1, 1, 1]);
  single.forEach((x, i) => {
    assert.ok(x.vnet.equals(Buffer.alloc(10)));
    assert.ok(x.frame.equals(b5[i]));
  });
  // maxMerge bounds the run.
  assert.deepEqual(merged(coalesce(burst(f, 1, mss, [pl(), pl(), pl(), pl(), pl()]), 2)), [2, 2, 1]);
  // A corrupted TCP checksum in the middle: that frame goes alone (the kernel will drop it).
  const bad = burst(f, 1, mss, [pl(), pl(), pl(), pl()]);
  bad[2][bad[2].length - 1] ^= 0xff;
  assert.deepEqual(merged(coalesce(bad)), [2, 1, 1]);
  // A corrupted IPv4 header checksum.
  const badIp = burst(f, 1, mss, [pl(), pl(), pl()]);
  badIp[1][14 + 8] ^= 1; // TTL changed without fixing the header checksum
  assert.deepEqual(merged(coalesce(badIp)), [1, 1, 1]);
  // A sequence gap.
  const gap = [...burst(f, 1, mss, [pl(), pl()]), ...burst(f, 1 + 3 * mss, mss, [pl(), pl()])];
  assert.deepEqual(merged(coalesce(gap)), [2, 2]);
  // Another flow in between.
  const g = { ...f, sport: f.sport ^ 1 };
  assert.deepEqual(merged(coalesce([...burst(f, 1, mss, [pl()]), ...burst(g, 1, mss, [pl()]), ...burst(f, 1 + mss, mss, [pl()])])), [1, 1, 1]);
  // A short segment ends the run (and is part of it); a PSH likewise.
  assert.deepEqual(merged(coalesce(burst(f, 1, mss, [pl(), pl(10), pl(), pl()]))), [2, 2]);
  const psh = burst(f, 1, mss, [pl(), pl(), pl(), pl()]);
  const psh2 = [psh[0], frame(f, 1 + mss, TCP_ACK | TCP_PSH, psh[1].subarray(psh[1].length - mss)), ...burst(f, 1 + 2 * mss, mss, [pl(), pl()])];
  assert.deepEqual(merged(coalesce(psh2)), [2, 2]);
  // Pure ACKs, SYN and FIN segments are never merged.
  const ack = frame(f, 1, TCP_ACK, Buffer.alloc(0));
  assert.deepEqual(merged(coalesce([ack, ack, ack])), [1, 1, 1]);
  assert.deepEqual(merged(coalesce([frame(f, 1, TCP_SYN | TCP_ACK, pl()), ...burst(f, 1 + mss, mss, [pl()])])), [1, 1]);
  assert.deepEqual(merged(coalesce([...burst(f, 1, mss, [pl()]), frame(f, 1 + mss, TCP_ACK | TCP_FIN, pl())])), [1, 1]);
  // Different TTL, different TCP options (timestamps), different ack: split.
  const ttl = { ...f, ttl: 63 };
  assert.deepEqual(merged(coalesce([...burst(f, 1, mss, [pl()]), ...burst(ttl, 1 + mss, mss, [pl()])])), [1, 1]);
  const ts = { ...f, options: [1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 9] };
  assert.deepEqual(merged(coalesce([...burst(f, 1, mss, [pl()]), ...burst(ts, 1 + mss, mss, [pl()])])), [1, 1]);
  // The merged IP packet stays within 65535 bytes.
  const big = burst(f, 1, 1400, Array.from({ length: 60 }, () => pl(1400)));
  const res = coalesce(big);
  assert.ok(res.length >= 2);
  for (const x of res) assert.ok(x.frame.length - 14 <= 65535);
  // Non-TCP and garbage frames pass through untouched.
  const junk = [Buffer.from('not a frame'), Buffer.alloc(60)];
  assert.deepEqual(merged(coalesce(junk)), [1, 1]);
  // Another VLAN in between splits; the same VLAN merges.
  const fv = { ...f, vlan: [0x81, 0x00, 0, 42] };
  const fw = { ...f, vlan: [0x81, 0x00, 0, 43] };
  assert.deepEqual(merged(coalesce([...burst(fv, 1, mss, [pl(), pl()]), ...burst(fw, 1 + 2 * mss, mss, [pl()])])), [2, 1]);
  assert.deepEqual(merged(coalesce([...burst(f, 1, mss, [pl()]), ...burst(fv, 1 + mss, mss, [pl()])])), [1, 1]);
  // IPv6 too.
  const f6 = flow(true, r);
  assert.deepEqual(merged(coalesce(burst(f6, 5, mss, [pl(), pl(), pl(7)]))), [3]);
});

test('segmentation and coalescing survive mutated and truncated input (no crash, bounded output)', { skip }, () => {
  const addon = loadAddon();
  const k = addon.constants;
  const seed = seedFor('native-gso:mutate');
  const r = rng(seed);
  const out = Buffer.alloc(300_000);
  const segLens = new Uint32Array(257);
  for (let iter = 0; iter < 2000; iter++) {
    const v6 = r() < 0.5;
    const f = flow(v6, r, r() < 0.5);
    const mss = 1 + Math.floor(r() * 1500);
    const frames = burst(f, Math.floor(r() * 2 ** 32), mss, Array.from({ length: 1 + Math.floor(r() * 6) }, () => randomPayload(r, mss)));
    // Mutate: flip bytes in the first 80 bytes (headers) and/or cut frames short.
    const mutated = frames.map((fr) => {
      let b = Buffer.from(fr);
      const flips = Math.floor(r() * 4);
      for (let i = 0; i < flips; i++) b[Math.floor(r() * Math.min(80, b.length))] ^= 1 << Math.floor(r() * 8);
      if (r() < 0.3) b = b.subarray(0, Math.floor(r() * b.length));
      return b;
    });
    const res = coalesce(mutated);
    for (const x of res) assert.ok(x.frame.length <= 65535 + 14, `VXMESH_SEED=${SEED} seed ${seed} iter ${iter}`);
    const sf = Buffer.concat([mutated[0], ...mutated.slice(1).map((m) => m.subarray(Math.min(m.length, 66)))]);
    const n = addon.gsoSegment(sf, v6 ? k.GSO_TCPV6 : k.GSO_TCPV4, mss, Buffer.alloc(8), out, segLens);
    assert.ok(n >= -2 && n <= 256, `VXMESH_SEED=${SEED} seed ${seed} iter ${iter}: ${n}`);
  }
});

// ---- UDP datagram runs → UDP_L4 GSO frames --------------------------------------------------

/** An Ethernet/IP/UDP datagram built from scratch; `check` overrides the UDP checksum (0 = none). */
function udpFrame(f: Flow, payload: Buffer, ipId: number, check?: number): Buffer {
  const eth = ethHeader(f);
  const l4len = 8 + payload.length;
  const udp = Buffer.alloc(l4len);
  udp.writeUInt16BE(f.sport, 0);
  udp.writeUInt16BE(f.dport, 2);
  udp.writeUInt16BE(l4len, 4);
  payload.copy(udp, 8);
  const { ip, pseudo } = ipHeaders(f, 17, l4len, ipId);
  const c = check ?? (inetChecksum(Buffer.concat([pseudo, udp])) || 0xffff);
  udp.writeUInt16BE(c, 6);
  return Buffer.concat([eth, ip, udp]);
}

/**
 * The kernel's UDP GSO segmentation, written out plainly: cut the payload every gso_size bytes;
 * each datagram gets the headers with IPv4 total length, ID (first + i) and header checksum,
 * IPv6 payload length, UDP length, and a full UDP checksum (0 sent as 0xffff).
 */
function udpSegmentRef(merged: Buffer, vnet: Buffer, v6: boolean, l3: number): Buffer[] {
  const hdrLen = vnet.readUInt16LE(2);
  const seg = vnet.readUInt16LE(4);
  const l4 = vnet.readUInt16LE(6);
  const ihl = l4 - l3;
  const payload = merged.subarray(hdrLen);
  const out: Buffer[] = [];
  const id0 = v6 ? 0 : merged.readUInt16BE(l3 + 4);
  for (let i = 0, at = 0; at < payload.length; i++, at += seg) {
    const p = payload.subarray(at, Math.min(payload.length, at + seg));
    const fr = Buffer.concat([merged.subarray(0, hdrLen), p]);
    const l4len = 8 + p.length;
    let pseudo: Buffer;
    if (v6) {
      fr.writeUInt16BE(l4len, l3 + 4);
      pseudo = Buffer.alloc(40);
      fr.copy(pseudo, 0, l3 + 8, l3 + 40);
      pseudo.writeUInt32BE(l4len, 32);
      pseudo[39] = 17;
    } else {
      fr.writeUInt16BE(ihl + l4len, l3 + 2);
      fr.writeUInt16BE((id0 + i) & 0xffff, l3 + 4);
      fr.writeUInt16BE(0, l3 + 10);
      fr.writeUInt16BE(inetChecksum(fr.subarray(l3, l4)), l3 + 10);
      pseudo = Buffer.alloc(12);
      fr.copy(pseudo, 0, l3 + 12, l3 + 20);
      pseudo[9] = 17;
      pseudo.writeUInt16BE(l4len, 10);
    }
    fr.writeUInt16BE(l4len, l4 + 4);
    fr.writeUInt16BE(0, l4 + 6);
    fr.writeUInt16BE(inetChecksum(Buffer.concat([pseudo, fr.subarray(l4)])) || 0xffff, l4 + 6);
    out.push(fr);
  }
  return out;
}

test('UDP coalescing: one UDP_L4 GSO frame whose completed checksum equals the reference, and that segments back into the inputs', { skip }, () => {
  const seed = seedFor('native-gso:udp-coalesce');
  const r = rng(seed);
  for (let iter = 0; iter < 200; iter++) {
    const v6 = r() < 0.5;
    const f = flow(v6, r, r() < 0.7);
    const seg = 1 + Math.floor(r() * 1400);
    const l4 = 14 + f.vlan.length + (v6 ? 40 : 20 + f.ipOptions.length);
    const maxCount = Math.min(64, Math.floor((65535 - (l4 - 14 - f.vlan.length) - 8) / seg));
    const count = 2 + Math.floor(r() * Math.max(1, maxCount - 2));
    const payloads = Array.from({ length: count }, (_, i) => randomPayload(r, i === count - 1 ? 1 + Math.floor(r() * seg) : seg));
    const id0 = Math.floor(r() * 65536);
    const frames = payloads.map((p, i) => udpFrame(f, p, id0 + i));
    const ctx = `VXMESH_SEED=${SEED} seed ${seed} iter ${iter} v6=${v6} seg=${seg} count=${count}`;
    const res = coalesce(frames);
    assert.equal(res.length, 1, ctx);
    const { vnet, frame: merged } = res[0];
    assert.equal(vnet[0], 1, `${ctx} NEEDS_CSUM`);
    assert.equal(vnet[1], 5, `${ctx} VIRTIO_NET_HDR_GSO_UDP_L4`);
    assert.equal(vnet.readUInt16LE(2), l4 + 8, `${ctx} hdr_len`);
    assert.equal(vnet.readUInt16LE(4), seg, `${ctx} gso_size`);
    assert.equal(vnet.readUInt16LE(6), l4, `${ctx} csum_start`);
    assert.equal(vnet.readUInt16LE(8), 6, `${ctx} csum_offset`);
    const want = udpFrame(f, Buffer.concat(payloads), id0);
    const done = completeCsum(merged, l4, 6);
    if (done.readUInt16BE(l4 + 6) === 0) done.writeUInt16BE(0xffff, l4 + 6);
    assert.ok(done.equals(want), `${ctx}: merged frame (checksum completed) equals the reference`);
    const back = udpSegmentRef(merged, vnet, v6, 14 + f.vlan.length);
    assert.equal(back.length, count, ctx);
    back.forEach((b, i) => assert.ok(b.equals(frames[i]), `${ctx}: datagram ${i} comes back byte for byte`));
  }
});

test('UDP coalescing splits runs exactly where it must', { skip }, () => {
  const r = rng(23);
  const f = { ...flow(false, r, false), vlan: [] as number[] };
  const p = (n: number) => randomPayload(r, n);
  const merged = (frames: Buffer[]) => coalesce(frames).map((x) => x.merged);
  const run = (n: number, id0 = 1000, size = 64) => Array.from({ length: n }, (_, i) => udpFrame(f, p(size), id0 + i));
  assert.deepEqual(merged(run(10)), [10], 'one flow, equal sizes, IDs counting up');
  const noCsum = run(4);
  noCsum[0] = udpFrame(f, p(64), 1000, 0);
  assert.deepEqual(merged(noCsum), [1, 3], 'a datagram without a checksum goes alone (the kernel would add one)');
  const bad = run(5);
  bad[2][bad[2].length - 1] ^= 1; // payload bit flip: checksum no longer valid
  assert.deepEqual(merged(bad), [2, 1, 2], 'a bad checksum is never merged (it stays bad on delivery)');
  const gap = [...run(3, 1000), ...run(3, 1004)];
  assert.deepEqual(merged(gap), [3, 3], 'an IPv4 ID gap ends the run (segmentation renumbers from the first)');
  const otherPort = run(4);
  otherPort[2] = udpFrame({ ...f, dport: f.dport ^ 1 }, p(64), 1002);
  assert.deepEqual(merged(otherPort), [2, 1, 1], 'another flow ends the run');
  const bigger = [...run(2, 1000, 64), udpFrame(f, p(65), 1002)];
  assert.deepEqual(merged(bigger), [2, 1], 'a larger datagram ends the run');
  const shorter = [...run(2, 1000, 64), udpFrame(f, p(10), 1002), udpFrame(f, p(64), 1003)];
  assert.deepEqual(merged(shorter), [3, 1], 'a shorter datagram is the last of its run');
  const ttl = run(3);
  ttl[1] = udpFrame({ ...f, ttl: 63 }, p(64), 1001);
  assert.deepEqual(merged(ttl), [1, 1, 1], 'IP header fields must match');
  assert.deepEqual(merged(run(10)).length, 1);
  assert.deepEqual(coalesce(run(10), 4).map((x) => x.merged), [4, 4, 2], 'at most maxMerge datagrams per frame');
});

test('UDP coalescing survives mutated and truncated datagrams (no crash; whatever merges still segments back exactly)', { skip }, () => {
  const seed = seedFor('native-gso:udp-mutate');
  const r = rng(seed);
  for (let iter = 0; iter < 2000; iter++) {
    const v6 = r() < 0.5;
    const f = flow(v6, r, r() < 0.5);
    const seg = 1 + Math.floor(r() * 1400);
    const frames = Array.from({ length: 2 + Math.floor(r() * 8) }, (_, i) => udpFrame(f, randomPayload(r, seg), 500 + i));
    const mutated = frames.map((fr) => {
      let b = Buffer.from(fr);
      const flips = Math.floor(r() * 3);
      for (let i = 0; i < flips; i++) b[Math.floor(r() * Math.min(70, b.length))] ^= 1 << Math.floor(r() * 8);
      if (r() < 0.2) b = b.subarray(0, Math.floor(r() * b.length));
      return b;
    });
    const res = coalesce(mutated);
    let at = 0;
    for (const x of res) {
      const ctx = `VXMESH_SEED=${SEED} seed ${seed} iter ${iter}`;
      assert.ok(x.frame.length <= 65535 + 22, ctx);
      if (x.merged > 1) {
        // A merge happened only over intact datagrams: segmenting it gives back exactly the inputs.
        const back = udpSegmentRef(x.frame, x.vnet, v6, 14 + f.vlan.length);
        assert.equal(back.length, x.merged, ctx);
        back.forEach((b, i) => assert.ok(b.equals(mutated[at + i]), `${ctx}: datagram ${at + i}`));
      } else {
        assert.ok(x.frame.equals(mutated[at]), `VXMESH_SEED=${SEED} seed ${seed} iter ${iter}: a lone frame is passed through unchanged`);
      }
      at += x.merged;
    }
  }
});
