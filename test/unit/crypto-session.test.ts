/**
 * The session layer on a fake clock, two or three hosts joined by an in-memory "wire" that can
 * drop, duplicate, reorder and tamper: handshake (lost and duplicated messages, simultaneous
 * start → exactly one session, cookies under load, rate limit before DH, wrong PSK, unknown key),
 * transport (every single-bit flip rejected with the replay window unchanged, truncation,
 * extension, replay), rekeying (no nonce reused across rekeys, previous keypair accepted
 * briefly, limits by time and by count), fail closed (queue then no_session), restart recovery.
 */
import * as os from 'node:os';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { FakeClock } from '../../src/clock';
import type { Endpoint } from '../../src/config/types';
import { ADDR_LEN, endpointToRecord } from '../../src/dataplane/addr';
import { seededRandom } from '../../src/dataplane/memory-io';
import {
  CIPHER_CONSUMED, CIPHER_FAILED, CIPHER_NO_SESSION, CIPHER_OK, CIPHER_QUEUED, type CipherBatch,
} from '../../src/dataplane/cipher-seam';
import { cryptoReady, generateHostKey, type HostKey } from '../../src/crypto/keys';
import { DATA_OVERHEAD, MSG_COOKIE, MSG_DATA, MSG_INITIATION, MSG_RESPONSE } from '../../src/crypto/noise';
import { SessionManager, type SessionTimers, pskFromClusterKey } from '../../src/crypto/session';

interface Wire { from: Endpoint; to: Endpoint; pkt: Uint8Array }
interface HostOpts { psk?: Uint8Array; timers?: Partial<SessionTimers>; maxKeypairs?: number }

const HEAD = 64;

function batch(cap: number, slabSize = cap * 2048): CipherBatch {
  return {
    slab: Buffer.alloc(slabSize), offs: new Uint32Array(cap), lens: new Uint32Array(cap), addrs: Buffer.alloc(cap * ADDR_LEN),
    vnis: new Uint32Array(cap), outOffs: new Uint32Array(cap), outLens: new Uint32Array(cap), status: new Uint8Array(cap), senders: new Uint32Array(cap), count: 0,
  };
}

const ep = (n: number): Endpoint => ({ address: `198.18.0.${n}`, port: 4789, family: 4 });

class Host {
  readonly sm: SessionManager;
  readonly delivered: Uint8Array[] = [];
  readonly drops: { vni: number; reason: string; n: number }[] = [];
  constructor(readonly net: Net, readonly endpoint: Endpoint, readonly key: HostKey, opts: HostOpts = {}) {
    this.sm = this.make(opts);
  }
  make(opts: HostOpts): SessionManager {
    const sm = new SessionManager({
      hostKey: this.key, clock: this.net.clock, psks: [opts.psk ?? this.net.psk], timers: opts.timers, maxKeypairs: opts.maxKeypairs,
      wallClock: () => 1.8e12 + this.net.clock.now(), jitter: () => 0.5, backend: 'auto',
    });
    sm.setSendHook((pkt, to) => this.net.wire.push({ from: this.endpoint, to: recToEp(to), pkt: new Uint8Array(pkt) }));
    sm.attach({
      clock: this.net.clock, sendBatch: () => { throw new Error('unused: send hook set'); },
      countTx: () => {}, countTxDrop: (vni, reason, n) => { this.drops.push({ vni, reason, n }); },
    });
    return sm;
  }
  /** Seals one VXLAN packet to `to` through sealBatch; returns [status, datagram]. */
  seal(to: Endpoint, payload: Uint8Array, vni = 42): [number, Uint8Array | null] {
    const b = batch(1);
    b.offs[0] = HEAD;
    b.lens[0] = payload.length;
    b.slab.set(payload, HEAD);
    endpointToRecord(to).copy(b.addrs, 0);
    b.vnis[0] = vni;
    b.count = 1;
    b.status[0] = CIPHER_NO_SESSION;
    this.sm.sealBatch(b);
    const st = b.status[0];
    return [st, st === CIPHER_OK ? new Uint8Array(b.slab.subarray(b.outOffs[0], b.outOffs[0] + b.outLens[0])) : null];
  }
  /** Opens one datagram; returns [status, plaintext]. */
  open(from: Endpoint, pkt: Uint8Array): [number, Uint8Array | null] {
    const b = batch(1, pkt.length + 64);
    b.offs[0] = 0;
    b.lens[0] = pkt.length;
    b.slab.set(pkt, 0);
    endpointToRecord(from).copy(b.addrs, 0);
    b.count = 1;
    if (!this.sm.isEnvelope(b.slab, 0, pkt.length)) return [-1, null];
    b.status[0] = CIPHER_FAILED;
    this.sm.openBatch(b);
    const st = b.status[0];
    return [st, st === CIPHER_OK ? new Uint8Array(b.slab.subarray(b.outOffs[0], b.outOffs[0] + b.outLens[0])) : null];
  }
}

function recToEp(r: Buffer): Endpoint {
  return { address: `${r[12]}.${r[13]}.${r[14]}.${r[15]}`, port: (r[16] << 8) | r[17], family: 4 };
}

class Net {
  readonly clock = new FakeClock(1000);
  readonly wire: Wire[] = [];
  readonly hosts: Host[] = [];
  readonly psk = pskFromClusterKey(new Uint8Array(32).fill(7));
  add(n: number, opts: HostOpts & { key?: HostKey } = {}): Host {
    const h = new Host(this, ep(n), opts.key ?? generateHostKey(), opts);
    this.hosts.push(h);
    return h;
  }
  byEndpoint(e: Endpoint): Host | undefined {
    return this.hosts.find((h) => h.endpoint.address === e.address);
  }
  /** Delivers everything on the wire (and what that causes), optionally filtered. */
  pump(filter: (w: Wire) => 'deliver' | 'drop' | 'dup' = () => 'deliver', max = 1000): void {
    for (let i = 0; i < max && this.wire.length; i++) {
      const w = this.wire.shift()!;
      const action = filter(w);
      if (action === 'drop') continue;
      const h = this.byEndpoint(w.to);
      if (!h) continue;
      for (let k = 0; k < (action === 'dup' ? 2 : 1); k++) {
        const [st, plain] = h.open(w.from, w.pkt);
        if (st === CIPHER_OK) h.delivered.push(plain!);
      }
    }
  }
}

function meet(a: Host, b: Host): void {
  a.sm.setPeer(b.key.publicKey, b.endpoint);
  b.sm.setPeer(a.key.publicKey, a.endpoint);
}

const vx = (s: string): Uint8Array => {
  const body = Buffer.from(s);
  const p = new Uint8Array(8 + 14 + body.length);
  p[0] = 0x08;
  p[6] = 42;
  p.set(body, 22);
  return p;
};

function session(h: Host, other: Host) {
  const p = h.sm.peer(Buffer.from(other.key.publicKey).toString('base64'))!;
  return h.sm.keypairsOf(p);
}

test('crypto ready', async () => { await cryptoReady(); });

test('first packet is queued, the handshake runs, the packet arrives, both sides share one session', () => {
  const net = new Net();
  const a = net.add(1);
  const b = net.add(2);
  meet(a, b);
  const [st] = a.seal(b.endpoint, vx('hello-1'));
  assert.equal(st, CIPHER_QUEUED);
  assert.equal(net.wire.length, 1);
  assert.equal(net.wire[0].pkt[0], MSG_INITIATION);
  assert.equal(net.wire[0].pkt.length, 148);
  net.pump();
  assert.equal(b.delivered.length, 1);
  assert.deepEqual(Buffer.from(b.delivered[0]), Buffer.from(vx('hello-1')));
  const sa = session(a, b);
  const sb = session(b, a);
  assert.ok(sa.current && sb.current);
  assert.equal(sa.current!.localIndex, sb.current!.remoteIndex);
  assert.equal(sb.current!.localIndex, sa.current!.remoteIndex);
  assert.equal(sb.next, null, 'responder keypair confirmed by the first data packet');
  // both directions now seal immediately
  const [s1, d1] = a.seal(b.endpoint, vx('a->b'));
  const [s2, d2] = b.seal(a.endpoint, vx('b->a'));
  assert.equal(s1, CIPHER_OK);
  assert.equal(s2, CIPHER_OK);
  assert.equal(d1![0], MSG_DATA);
  assert.equal(d1!.length, vx('a->b').length + DATA_OVERHEAD);
  assert.equal(b.open(a.endpoint, d1!)[0], CIPHER_OK);
  assert.deepEqual(Buffer.from(a.open(b.endpoint, d2!)[1]!), Buffer.from(vx('b->a')));
  // separate keys per direction: the two send keys differ
  assert.notEqual(sa.current!.sendKeyId, sb.current!.sendKeyId);
});

test('the payload never appears on the wire in clear', () => {
  const net = new Net();
  const a = net.add(1);
  const b = net.add(2);
  meet(a, b);
  const marker = 'INNER-MARKER-7f3a9c';
  a.seal(b.endpoint, vx(marker));
  const seen: Uint8Array[] = [];
  net.pump((w) => { seen.push(w.pkt); return 'deliver'; });
  const [, d] = a.seal(b.endpoint, vx(marker));
  seen.push(d!);
  for (const p of seen) assert.equal(Buffer.from(p).includes(marker), false);
  assert.equal(b.delivered.length, 1);
});

test('lost initiation and lost response: retried with backoff, then the session forms', () => {
  for (const lose of [MSG_INITIATION, MSG_RESPONSE]) {
    const net = new Net();
    const a = net.add(1);
    const b = net.add(2);
    meet(a, b);
    a.seal(b.endpoint, vx('x'));
    let lost = 0;
    net.pump((w) => (w.pkt[0] === lose && lost++ === 0 ? 'drop' : 'deliver'));
    assert.equal(session(a, b).current, null);
    net.clock.advance(1000 + 333); // first retry: 1 s + jitter (0.5 × 333 ms)
    net.pump();
    assert.ok(session(a, b).current, `session after a lost type ${lose}`);
    assert.equal(a.sm.counters.hsInitiationSent, 2);
    // the first packet waited in the queue (within 3 s) and arrived
    assert.equal(b.delivered.length, 1);
  }
});

test('retry backoff doubles up to 5 s and gives up after 90 s, dropping the queue as no_session', () => {
  const net = new Net();
  const a = net.add(1);
  const b = net.add(2);
  meet(a, b);
  a.seal(b.endpoint, vx('x'));
  const sentAt: number[] = [];
  const t0 = net.clock.now();
  for (let t = 0; t < 100_000; t += 50) {
    net.clock.advance(50);
    for (const w of net.wire.splice(0)) if (w.pkt[0] === MSG_INITIATION) sentAt.push(net.clock.now() - t0);
  }
  const gaps = sentAt.slice(1).map((x, i) => x - sentAt[i]).map((g) => Math.round(g / 100) / 10);
  assert.deepEqual(gaps.slice(0, 4), [1.2, 2.2, 4.2, 5.2]);
  assert.ok(gaps.slice(3).every((g) => g === 5.2));
  assert.equal(a.sm.counters.handshakeTimeouts, 1);
  assert.ok(sentAt[sentAt.length - 1] <= 90_000 + 5_400);
  assert.deepEqual(a.drops, [{ vni: 42, reason: 'no_session', n: 1 }]);
});

test('duplicated initiation and duplicated response change nothing', () => {
  const net = new Net();
  const a = net.add(1);
  const b = net.add(2);
  meet(a, b);
  a.seal(b.endpoint, vx('x'));
  net.pump(() => 'dup');
  assert.equal(b.sm.counters.hsReplayedInitiation, 1);
  assert.equal(a.sm.counters.hsUnknownIndex, 1, 'second copy of the response: index no longer pending');
  assert.equal(a.sm.counters.sessionsEstablished, 1);
  assert.equal(b.sm.counters.sessionsEstablished, 1);
  assert.equal(b.delivered.length, 1, 'the duplicated data packet is delivered once (replay window)');
  assert.equal(b.sm.counters.rxReplay, 1);
});

test('simultaneous initiation ends in exactly one session (deterministic tie-break)', () => {
  for (let run = 0; run < 6; run++) {
    const net = new Net();
    const a = net.add(1);
    const b = net.add(2);
    meet(a, b);
    a.seal(b.endpoint, vx('from-a'));
    b.seal(a.endpoint, vx('from-b'));
    assert.equal(net.wire.length, 2);
    net.pump();
    net.clock.advance(10_000);
    net.pump();
    const sa = session(a, b);
    const sb = session(b, a);
    assert.ok(sa.current && sb.current);
    assert.equal(sa.current!.localIndex, sb.current!.remoteIndex);
    assert.equal(sb.current!.localIndex, sa.current!.remoteIndex);
    assert.equal(sa.previous, null);
    assert.equal(sb.previous, null);
    assert.equal(sa.next, null);
    assert.equal(sb.next, null);
    assert.equal(a.sm.counters.sessionsEstablished, 1);
    assert.equal(b.sm.counters.sessionsEstablished, 1);
    assert.equal(a.sm.counters.hsTieBreakIgnored + b.sm.counters.hsTieBreakIgnored, 1);
    const lower = Buffer.compare(Buffer.from(a.key.publicKey), Buffer.from(b.key.publicKey)) < 0 ? a : b;
    assert.equal(lower.sm.counters.hsTieBreakIgnored, 1, 'the lower key keeps its own initiation');
    assert.ok(sa.current!.isInitiator !== sb.current!.isInitiator);
    assert.equal(lower === a ? sa.current!.isInitiator : sb.current!.isInitiator, true);
    assert.deepEqual(a.delivered.map((d) => Buffer.from(d).toString('hex')), [Buffer.from(vx('from-b')).toString('hex')]);
    assert.deepEqual(b.delivered.map((d) => Buffer.from(d).toString('hex')), [Buffer.from(vx('from-a')).toString('hex')]);
    assert.equal(a.sm.keypairCount, 1);
    assert.equal(b.sm.keypairCount, 1);
  }
});

function established(): { net: Net; a: Host; b: Host } {
  const net = new Net();
  const a = net.add(1);
  const b = net.add(2);
  meet(a, b);
  a.seal(b.endpoint, vx('hello'));
  net.pump();
  assert.ok(session(a, b).current && session(b, a).current);
  return { net, a, b };
}

test('every single-bit flip of a sealed packet is rejected, with the replay window unchanged', () => {
  const { a, b } = established();
  for (let k = 0; k < 5; k++) assert.equal(b.open(a.endpoint, a.seal(b.endpoint, vx(`warm-${k}`))[1]!)[0], CIPHER_OK);
  const [, pkt] = a.seal(b.endpoint, vx('target packet with some payload'));
  const kp = session(b, a).current!;
  const before = kp.replay.snapshot();
  const counters = { ...b.sm.counters };
  let rejected = 0;
  for (let bit = 0; bit < pkt!.length * 8; bit++) {
    const t = new Uint8Array(pkt!);
    t[bit >> 3] ^= 1 << (bit & 7);
    const [st] = b.open(a.endpoint, t);
    // -1: no longer an envelope (type/reserved byte changed) → the data path treats it as VXLAN,
    // where such a first byte fails the I-flag/reserved-bit checks
    assert.ok(st === -1 || st === CIPHER_FAILED, `bit ${bit}: status ${st}`);
    rejected++;
    assert.deepEqual(kp.replay.snapshot(), before, `bit ${bit}: window changed`);
  }
  assert.equal(rejected, pkt!.length * 8);
  assert.equal(b.sm.counters.rxOpened, counters.rxOpened);
  assert.ok(b.sm.counters.rxBadTag > counters.rxBadTag);
  // the untouched packet still opens: nothing was consumed by the forgeries
  assert.equal(b.open(a.endpoint, pkt!)[0], CIPHER_OK);
  assert.equal(b.open(a.endpoint, pkt!)[0], CIPHER_FAILED, 'and only once');
});

test('truncated and extended packets are rejected with the window unchanged', () => {
  const { a, b } = established();
  const [, pkt] = a.seal(b.endpoint, vx('some payload'));
  const kp = session(b, a).current!;
  const before = kp.replay.snapshot();
  for (let cut = 1; cut < pkt!.length; cut++) {
    const [st] = b.open(a.endpoint, pkt!.subarray(0, pkt!.length - cut));
    assert.ok(st === CIPHER_FAILED || st === -1, `cut ${cut}`);
  }
  for (const extra of [1, 2, 16, 100]) {
    const ext = new Uint8Array(pkt!.length + extra);
    ext.set(pkt!);
    assert.equal(b.open(a.endpoint, ext)[0], CIPHER_FAILED, `extended by ${extra}`);
  }
  assert.deepEqual(kp.replay.snapshot(), before);
  assert.equal(b.open(a.endpoint, pkt!)[0], CIPHER_OK);
});

test('reordered packets within the window are accepted, replays are not', () => {
  const { a, b } = established();
  const pkts = Array.from({ length: 50 }, (_, i) => a.seal(b.endpoint, vx(`p${i}`))[1]!);
  const order = pkts.map((_, i) => i).reverse();
  for (const i of order) assert.equal(b.open(a.endpoint, pkts[i])[0], CIPHER_OK);
  for (const i of [0, 10, 49]) assert.equal(b.open(a.endpoint, pkts[i])[0], CIPHER_FAILED);
});

test('rekey after 120 s: new keypair, previous accepted briefly, no (key, nonce) pair ever reused', () => {
  const { net, a, b } = established();
  const used = new Set<string>();
  const keys = new Set<string>();
  let inflight: Uint8Array | null = null;
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 20; i++) {
      const [st, d] = a.seal(b.endpoint, vx(`r${round}-${i}`));
      assert.equal(st, CIPHER_OK);
      const kp = session(a, b).current!;
      keys.add(kp.sendKeyId);
      const ctr = Buffer.from(d!).readBigUInt64LE(8);
      const id = `${kp.sendKeyId}/${ctr}`;
      assert.equal(used.has(id), false, `nonce reuse ${id}`);
      used.add(id);
      if (i === 19) inflight = d; // sealed with the old key, delivered after the rekey
      else assert.equal(b.open(a.endpoint, d!)[0], CIPHER_OK);
    }
    net.clock.advance(121_000);
    const [st] = a.seal(b.endpoint, vx('trigger'));
    assert.equal(st, CIPHER_OK, 'old key still used while the rekey runs');
    net.pump();
    // the old keypair is now "previous" at both ends: the late packet is still accepted
    assert.equal(b.open(a.endpoint, inflight!)[0], CIPHER_OK, `round ${round}: in-flight packet under the previous key`);
  }
  assert.equal(keys.size, 4, 'a new send key each rekey');
  assert.ok(a.sm.counters.sessionsEstablished >= 4);
  // the previous key is refused after the grace period
  const [, late] = a.seal(b.endpoint, vx('late'));
  const oldA = session(a, b).current!;
  net.clock.advance(121_000);
  a.seal(b.endpoint, vx('trigger'));
  net.pump();
  assert.notEqual(session(a, b).current, oldA);
  net.clock.advance(11_000);
  assert.equal(b.open(a.endpoint, late!)[0], CIPHER_FAILED);
});

test('a key is refused after 180 s when no rekey succeeded; packets then wait, then count no_session', () => {
  const { net, a, b } = established();
  net.clock.advance(150_000);
  a.seal(b.endpoint, vx('x')); // triggers a rekey attempt (age > 120 s)
  net.wire.length = 0; // … which is lost, as are all later handshakes
  net.clock.advance(31_000);
  net.wire.length = 0;
  const [st] = a.seal(b.endpoint, vx('after 180 s'));
  assert.equal(st, CIPHER_QUEUED);
  for (let i = 0; i < 100; i++) { net.clock.advance(100); net.wire.length = 0; }
  assert.ok(a.drops.some((d) => d.reason === 'no_session'));
  assert.equal(session(a, b).current, null, 'expired keypair removed');
});

test('message limits: rekey after N messages, refuse past the reject limit', () => {
  const net = new Net();
  const timers = { rekeyAfterMessages: 10, rejectAfterMessages: 15 };
  const a = net.add(1, { timers });
  const b = net.add(2, { timers });
  meet(a, b);
  a.seal(b.endpoint, vx('first'));
  net.pump(); // counter 0 used by the queued packet
  const startSent = a.sm.counters.hsInitiationSent;
  let ok = 0;
  for (let i = 0; i < 20; i++) {
    const [st, d] = a.seal(b.endpoint, vx(`m${i}`));
    if (st === CIPHER_OK) { ok++; assert.equal(b.open(a.endpoint, d!)[0], CIPHER_OK); }
  }
  net.wire.length = 0; // rekey lost
  assert.equal(ok, 14, 'counters 1..14 sealed, 15 refused');
  assert.equal(a.sm.counters.hsInitiationSent, startSent + 1, 'rekey started at 10 messages');
});

test('host with a different cluster key (PSK) gets no session', () => {
  const net = new Net();
  const a = net.add(1, { psk: pskFromClusterKey(new Uint8Array(32).fill(9)) });
  const b = net.add(2);
  meet(a, b);
  a.seal(b.endpoint, vx('x'));
  net.pump();
  net.clock.advance(3000);
  net.pump();
  assert.equal(session(a, b).current, null);
  assert.ok(a.sm.counters.hsInvalid >= 1, 'responses do not authenticate');
  assert.equal(b.delivered.length, 0);
  // and b never confirmed a keypair it could send on
  assert.equal(session(b, a).current, null);
});

test('unknown static key: initiation rejected after DH, no response sent', () => {
  const net = new Net();
  const a = net.add(1);
  const b = net.add(2);
  a.sm.setPeer(b.key.publicKey, b.endpoint); // b does not know a
  a.seal(b.endpoint, vx('x'));
  net.pump();
  assert.equal(b.sm.counters.hsUnknownPeer, 1);
  assert.equal(b.sm.counters.hsResponseSent, 0);
});

test('bad mac1 is dropped before any DH; a flood from one source is rate-limited and answered with cookies', () => {
  const net = new Net();
  const a = net.add(1);
  const b = net.add(2);
  const evil = net.add(3);
  meet(a, b);
  evil.sm.setPeer(b.key.publicKey, b.endpoint); // knows b's public key (it is public)
  // garbage initiations: wrong mac1
  for (let i = 0; i < 100; i++) {
    const g = new Uint8Array(148);
    g[0] = 1;
    g[7] = i;
    b.open(evil.endpoint, g);
  }
  assert.equal(b.sm.counters.hsBadMac, 100);
  assert.equal(b.sm.counters.hsDh, 0);
  // valid-mac1 flood (evil initiates again and again)
  const peerB = evil.sm.peer(Buffer.from(b.key.publicKey).toString('base64'))!;
  for (let i = 0; i < 200; i++) {
    evil.seal(b.endpoint, vx('x'));
    evil.sm.abandonHandshake(peerB);
  }
  const flood = net.wire.splice(0);
  assert.equal(flood.length, 200);
  for (const w of flood) b.open(w.from, w.pkt);
  assert.ok(b.sm.counters.hsDh <= 5, `DH done for ${b.sm.counters.hsDh} of 200`);
  assert.ok(b.sm.counters.hsCookieSent >= 1 && b.sm.counters.hsCookieSent <= 5);
  assert.ok(b.sm.counters.hsRateLimited >= 190);
  assert.ok(net.wire.every((w) => w.pkt[0] === MSG_COOKIE && w.pkt.length === 64));
  net.wire.length = 0;
  // a legitimate host still gets in (possibly after a cookie round trip and one retry)
  a.seal(b.endpoint, vx('legit'));
  net.pump();
  net.clock.advance(1500);
  net.pump();
  assert.ok(session(a, b).current);
  assert.equal(b.delivered.length, 1);
});

test('under load a valid cookie (mac2) is required; the initiator gets one and its retry succeeds', () => {
  const net = new Net();
  const timers = { loadThreshold: 0 };
  const a = net.add(1);
  const b = net.add(2, { timers });
  meet(a, b);
  a.seal(b.endpoint, vx('x'));
  net.pump();
  assert.equal(b.sm.counters.hsCookieSent, 1);
  assert.equal(a.sm.counters.hsCookieRecv, 1);
  assert.equal(session(a, b).current, null);
  net.clock.advance(1500);
  net.pump();
  assert.ok(session(a, b).current, 'retry carries mac2 and is admitted');
  assert.equal(b.delivered.length, 1);
});

test('an agent restart (new state, same key) is recovered from quickly', () => {
  const { net, a, b } = established();
  // b restarts: same host key, fresh state
  const idx = net.hosts.indexOf(b);
  const b2 = new Host(net, b.endpoint, b.key);
  net.hosts[idx] = b2;
  b2.sm.setPeer(a.key.publicKey, a.endpoint);
  const t0 = net.clock.now();
  let deliveredAt = -1;
  for (let i = 0; i < 50 && deliveredAt < 0; i++) {
    const [st, d] = a.seal(b.endpoint, vx(`after-restart-${i}`));
    if (st === CIPHER_OK) net.wire.push({ from: a.endpoint, to: b.endpoint, pkt: d! });
    net.pump();
    if (b2.delivered.length) deliveredAt = net.clock.now() - t0;
    net.clock.advance(100);
  }
  b.sm.stop();
  assert.ok(deliveredAt >= 0 && deliveredAt < 5000, `traffic resumed after ${deliveredAt} ms`);
  assert.ok(b2.sm.counters.rxUnknownIndex >= 1);
});

test('three hosts: pairwise sessions, each peer with its own keys', () => {
  const net = new Net();
  const hs = [net.add(1), net.add(2), net.add(3)];
  for (let i = 0; i < 3; i++) for (let j = i + 1; j < 3; j++) meet(hs[i], hs[j]);
  for (const x of hs) for (const y of hs) if (x !== y) x.seal(y.endpoint, vx(`${x.endpoint.address}->${y.endpoint.address}`));
  net.pump();
  net.clock.advance(5000);
  net.pump();
  for (const x of hs) assert.equal(x.delivered.length, 2, `${x.endpoint.address} got both`);
});

test('openBatch: a duplicate inside one batch is delivered once; control messages are consumed', () => {
  const { a, b } = established();
  const [, d] = a.seal(b.endpoint, vx('dup-in-batch'));
  const bt = batch(3);
  for (let i = 0; i < 2; i++) {
    bt.offs[i] = i * 1024;
    bt.lens[i] = d!.length;
    bt.slab.set(d!, i * 1024);
    endpointToRecord(a.endpoint).copy(bt.addrs, i * ADDR_LEN);
  }
  const junk = new Uint8Array(148);
  junk[0] = MSG_INITIATION;
  bt.offs[2] = 2048;
  bt.lens[2] = 148;
  bt.slab.set(junk, 2048);
  bt.count = 3;
  b.sm.openBatch(bt);
  assert.deepEqual([...bt.status], [CIPHER_OK, CIPHER_FAILED, CIPHER_CONSUMED]);
});

test('cluster key rotation: an initiator holding [new, old] completes with a responder still on old, and after setPsks', () => {
  const net = new Net();
  const oldPsk = pskFromClusterKey(new Uint8Array(32).fill(1));
  const newPsk = pskFromClusterKey(new Uint8Array(32).fill(2));
  const a = net.add(1, { psk: newPsk });
  const b = net.add(2, { psk: oldPsk });
  meet(a, b);
  a.sm.setPsks([newPsk, oldPsk]); // a already has the new key as primary, still knows the old
  a.seal(b.endpoint, vx('rotating'));
  net.pump();
  assert.ok(session(a, b).current, 'response under the old PSK accepted by the keyring');
  assert.equal(b.delivered.length, 1);
  // b drops the old key: it now answers under the new one; a fresh handshake still completes
  b.sm.setPsks([newPsk]);
  const before = a.sm.counters.sessionsEstablished;
  net.clock.advance(121_000);
  a.seal(b.endpoint, vx('after rotation'));
  net.pump();
  assert.equal(a.sm.counters.sessionsEstablished, before + 1);
  // a host that only knows the old key can no longer complete with b
  const c = net.add(3, { psk: oldPsk });
  meet(c, b);
  c.seal(b.endpoint, vx('stale key'));
  net.pump();
  assert.equal(session(c, b).current, null);
});

test('an initiator under load still completes its own handshakes (responses are not cookie-gated)', () => {
  const net = new Net();
  const a = net.add(1, { timers: { loadThreshold: 0 } });
  const b = net.add(2);
  meet(a, b);
  a.seal(b.endpoint, vx('from a loaded host'));
  net.pump();
  assert.ok(session(a, b).current);
  assert.equal(b.delivered.length, 1);
  assert.equal(a.sm.counters.hsCookieSent, 0);
});

test('bounded key table: previous keypairs are evicted for new sessions; when none is left, new sessions are refused without harm', () => {
  const net = new Net();
  const a = net.add(1, { maxKeypairs: 3 });
  const [b, c, d, e] = [net.add(2), net.add(3), net.add(4), net.add(5)];
  for (const x of [b, c, d, e]) meet(a, x);
  a.seal(b.endpoint, vx('to b'));
  a.seal(c.endpoint, vx('to c'));
  net.pump();
  net.clock.advance(121_000);
  a.seal(b.endpoint, vx('rekey b')); // b: current + previous; c: current → 3 keypairs, table full
  net.pump();
  assert.equal(a.sm.keypairCount, 3);
  assert.ok(session(a, b).previous);
  a.seal(d.endpoint, vx('to d'));
  net.pump();
  assert.ok(session(a, d).current, 'd got the slots of b\'s previous keypair');
  assert.equal(session(a, b).previous, null);
  assert.equal(d.delivered.length, 1);
  a.seal(e.endpoint, vx('to e'));
  net.pump();
  assert.equal(session(a, e).current, null, 'no slot left for e');
  assert.equal(e.delivered.length, 0);
  for (const x of [b, c, d]) assert.equal(x.open(a.endpoint, a.seal(x.endpoint, vx('still'))[1]!)[0], CIPHER_OK, 'others unaffected');
});

test('garbage envelopes (random types 1-4, lengths, bytes) never throw and never deliver', () => {
  const { a, b } = established();
  const r = seededRandom(99);
  const rnd = (n: number): number => Math.floor(r() * n);
  const bt = batch(64, 64 * 256);
  const kp = session(b, a).current!;
  const before = kp.replay.snapshot();
  let delivered = 0;
  for (let round = 0; round < 200; round++) {
    bt.count = 64;
    for (let i = 0; i < 64; i++) {
      const len = rnd(4) === 0 ? [148, 92, 64, 32][rnd(4)] : 4 + rnd(200);
      bt.offs[i] = i * 256;
      bt.lens[i] = len;
      for (let k = 0; k < len; k++) bt.slab[i * 256 + k] = rnd(256);
      bt.slab[i * 256] = 1 + rnd(4);
      bt.slab[i * 256 + 1] = bt.slab[i * 256 + 2] = bt.slab[i * 256 + 3] = 0;
      if (rnd(3) === 0 && len >= 16) { // a real index and a fresh counter: only the tag can reject it
        bt.slab.writeUInt32LE(kp.localIndex, i * 256 + 4);
        bt.slab.writeUInt32LE(100 + rnd(5000), i * 256 + 8);
        bt.slab.writeUInt32LE(0, i * 256 + 12);
      }
      endpointToRecord(a.endpoint).copy(bt.addrs, i * ADDR_LEN);
      bt.status[i] = CIPHER_FAILED;
    }
    b.sm.openBatch(bt);
    for (let i = 0; i < 64; i++) {
      assert.ok(bt.status[i] === CIPHER_FAILED || bt.status[i] === CIPHER_CONSUMED, `status ${bt.status[i]}`);
      if (bt.status[i] === CIPHER_OK) delivered++;
    }
  }
  assert.equal(delivered, 0);
  assert.deepEqual(kp.replay.snapshot(), before);
  assert.ok(b.sm.counters.rxBadTag > 0 && b.sm.counters.hsBadMac > 0);
  // the real session still works
  assert.equal(b.open(a.endpoint, a.seal(b.endpoint, vx('after the storm'))[1]!)[0], CIPHER_OK);
});

test('openBatch names the authenticated sender of each opened datagram (senders), whatever the outer source; senderEndpoint gives where its sessions are bound', () => {
  const net = new Net();
  const a = net.add(1);
  const b = net.add(2);
  const c = net.add(3);
  meet(a, b);
  meet(a, c);
  b.seal(a.endpoint, vx('hello from b'));
  c.seal(a.endpoint, vx('hello from c'));
  net.pump();
  assert.equal(a.delivered.length, 2);
  const pkts: [Endpoint, Uint8Array][] = [
    [b.endpoint, b.seal(a.endpoint, vx('b-1'))[1]!],
    [c.endpoint, c.seal(a.endpoint, vx('c-1'))[1]!],
    [c.endpoint, b.seal(a.endpoint, vx('b-2 sent from c\'s address'))[1]!],
    [b.endpoint, c.seal(a.endpoint, vx('c-2 sent from b\'s address'))[1]!],
  ];
  const bt = batch(pkts.length);
  pkts.forEach(([from, p], j) => {
    bt.offs[j] = j * 2048;
    bt.lens[j] = p.length;
    bt.slab.set(p, j * 2048);
    endpointToRecord(from).copy(bt.addrs, j * ADDR_LEN);
    bt.status[j] = CIPHER_FAILED;
  });
  bt.count = pkts.length;
  a.sm.openBatch(bt);
  assert.deepEqual([...bt.status], [CIPHER_OK, CIPHER_OK, CIPHER_OK, CIPHER_OK]);
  const idB = a.sm.peer(Buffer.from(b.key.publicKey).toString('base64'))!.id;
  const idC = a.sm.peer(Buffer.from(c.key.publicKey).toString('base64'))!.id;
  assert.ok(idB !== 0 && idC !== 0 && idB !== idC);
  assert.deepEqual([...bt.senders], [idB, idC, idB, idC], 'the key decides, not the outer source address');
  assert.deepEqual(a.sm.senderEndpoint(idB), b.endpoint);
  assert.deepEqual(a.sm.senderEndpoint(idC), c.endpoint);
  assert.equal(a.sm.senderEndpoint(0), null);
  assert.equal(a.sm.senderEndpoint(idC + 1000), null);
  // stable while the key is known (a move keeps the id), gone once forgotten, never reused
  a.sm.setPeer(b.key.publicKey, ep(9));
  assert.equal(a.sm.peer(Buffer.from(b.key.publicKey).toString('base64'))!.id, idB);
  assert.deepEqual(a.sm.senderEndpoint(idB), ep(9));
  a.sm.removePeer(b.key.publicKey);
  assert.equal(a.sm.senderEndpoint(idB), null);
  const again = a.sm.setPeer(b.key.publicKey, b.endpoint);
  assert.ok(again.id !== idB && again.id !== idC && again.id !== 0);
});

test('a host presenting our own static key (cloned host key) is reported, counted and never answered', () => {
  const net = new Net();
  const a = net.add(1);
  const clone = net.add(2, { key: a.key }); // same host key as a
  const errors: { obj: Record<string, unknown>; msg: string }[] = [];
  const logger = {
    level: 'info', trace() {}, debug() {}, info() {}, warn() {}, fatal() {},
    error(obj: object | string, msg?: string) { errors.push({ obj: obj as Record<string, unknown>, msg: msg ?? String(obj) }); },
    child() { return logger; },
  };
  const sm = new SessionManager({ hostKey: a.key, clock: net.clock, psks: [net.psk], logger, wallClock: () => 1.8e12 + net.clock.now() });
  const sent: Uint8Array[] = [];
  sm.setSendHook((pkt) => sent.push(pkt));
  // the clone knows "a" by its (= its own) key and initiates: a sees its own static key in the handshake
  clone.sm.setPeer(a.key.publicKey, a.endpoint);
  clone.seal(a.endpoint, vx('x'));
  const init = net.wire.splice(0).find((w) => w.pkt[0] === MSG_INITIATION)!;
  sm.handleControl(init.pkt, endpointToRecord(clone.endpoint));
  assert.equal(sent.length, 0, 'no response to ourselves');
  assert.equal(sm.counters.duplicateHostKey, 1);
  assert.equal(sm.counters.hsResponseSent, 0);
  assert.deepEqual(sm.duplicateHostKeys().map((d) => [d.host, d.address, d.via]), [['198.18.0.2', '198.18.0.2', ['handshake']]]);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].msg, 'host 198.18.0.2 uses the same host key as this host (cloned image or shared node.keyFile?)');
  // a gossip record with our key from member h2 at the same address: the same host, now named
  assert.equal(sm.gossipPeer('h2', a.key.publicKey, clone.endpoint), 'own_key');
  assert.equal(sm.peer(Buffer.from(a.key.publicKey).toString('base64')), undefined, 'never a peer of ourselves');
  assert.deepEqual(sm.duplicateHostKeys().map((d) => [d.host, d.address, d.via, d.detections]), [['h2', '198.18.0.2', ['gossip', 'handshake'], 2]]);
  assert.equal(errors.length, 1, 'logged once, not per detection');
  net.clock.advance(10 * 60_000);
  sm.gossipPeer('h2', a.key.publicKey, clone.endpoint);
  assert.equal(errors.length, 2, 'repeated after 10 minutes');
  assert.match(errors[1].msg, /^host h2 \(198\.18\.0\.2\) uses the same host key as this host/);
  assert.equal(errors[1].obj.member, 'h2');
  // a static pin of our own key is refused and reported
  assert.equal(sm.pinPeer(a.key.publicKey, ep(3)), null);
  assert.equal(sm.duplicateHostKeys().length, 2);
  sm.unpinPeer(Buffer.from(a.key.publicKey).toString('base64'));
  assert.equal(sm.duplicateHostKeys().length, 1);
  // the member leaves: only the handshake sighting remains, and it ages out
  sm.removeGossipPeer('h2', Buffer.from(a.key.publicKey).toString('base64'));
  assert.deepEqual(sm.duplicateHostKeys().map((d) => d.via), [['handshake']]);
  net.clock.advance(10 * 60_000);
  assert.equal(sm.duplicateHostKeys().length, 0);
  assert.equal(sm.counters.duplicateHostKey, 4, 'the counter keeps the total');
  sm.stop();
});

test('a queued packet that the transport skips when the session comes up is a counted drop with its cause, not a packet sent', () => {
  const net = new Net();
  const a = net.add(1);
  const b = net.add(2);
  meet(a, b);
  const [st] = a.seal(b.endpoint, vx('queued before the session'));
  assert.equal(st, CIPHER_QUEUED);
  net.pump(() => 'deliver', 1); // the initiation reaches b; b's response is now on the wire
  // From here a sends through its host, whose transport skips the datagram with EMSGSIZE.
  const tx: number[] = [];
  const drops: string[] = [];
  a.sm.setSendHook(null);
  a.sm.attach({
    clock: net.clock,
    sendBatch: (batch) => {
      batch.status[0] = os.constants.errno.EMSGSIZE;
      return 1;
    },
    countTx: (_vni, n) => tx.push(n),
    countTxDrop: (_vni, reason) => drops.push(reason),
  });
  net.pump(); // the response reaches a: the session is up and the queue flushed
  assert.deepEqual(tx, [], 'nothing counted as sent');
  assert.deepEqual(drops, ['emsgsize']);
});
