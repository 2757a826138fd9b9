/**
 * TSO sealing (native aeadSealTso via SessionManager.sealSuperFrame): a TCP super-frame is cut
 * into exactly the segments the plaintext fast path cuts (addon gsoSegment, same VXLAN header),
 * each sealed as a data message with consecutive counters, laid out for UDP GSO (all but the last
 * exactly `stride` bytes); the peer opens every one to the reference segment; no counter is ever
 * reused with later packets. Skipped (with the reason) when the addon lacks it.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { FakeClock } from '../../src/clock';
import type { Endpoint } from '../../src/config/types';
import { ADDR_LEN, endpointToRecord } from '../../src/dataplane/addr';
import { CIPHER_OK, CIPHER_FAILED, type CipherBatch } from '../../src/dataplane/cipher-seam';
import { loadNativeAead } from '../../src/crypto/aead';
import { cryptoReady, generateHostKey } from '../../src/crypto/keys';
import { SessionManager } from '../../src/crypto/session';
import { tcpSuperFrame } from '../helpers/vnet';

const fns = loadNativeAead() as unknown as { aeadSealTso?: unknown; gsoSegment?: (...a: unknown[]) => number } | null;
let gsoSegment: ((f: Uint8Array, t: number, mss: number, p: Uint8Array, out: Uint8Array, l: Uint32Array) => number) | undefined;
try {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  gsoSegment = (require('../../src/native/addon') as { loadAddon(): { gsoSegment?: typeof gsoSegment } }).loadAddon().gsoSegment;
} catch { /* not built */ }
const skip = !fns || typeof fns.aeadSealTso !== 'function' ? 'addon without aeadSealTso' : !gsoSegment ? 'addon without gsoSegment' : false;

test('super-frame sealed as the same segments the plaintext path cuts, UDP-GSO layout, peer opens all', { skip }, async () => {
  await cryptoReady();
  const clock = new FakeClock(0);
  const ka = generateHostKey();
  const kb = generateHostKey();
  const ea: Endpoint = { address: '198.18.0.1', port: 4789, family: 4 };
  const eb: Endpoint = { address: '198.18.0.2', port: 4789, family: 4 };
  const a = new SessionManager({ hostKey: ka, clock, backend: 'native' });
  const b = new SessionManager({ hostKey: kb, clock, backend: 'native' });
  const wire: [SessionManager, Uint8Array][] = [];
  a.setSendHook((p) => wire.push([a, new Uint8Array(p)]));
  b.setSendHook((p) => wire.push([b, new Uint8Array(p)]));
  a.setPeer(kb.publicKey, eb);
  b.setPeer(ka.publicKey, ea);
  const recB = endpointToRecord(eb);
  const open = (to: SessionManager, from: Endpoint, pkt: Uint8Array): [number, Uint8Array | null] => {
    const c: CipherBatch = {
      slab: Buffer.alloc(pkt.length + 64), offs: new Uint32Array(1), lens: new Uint32Array([pkt.length]), addrs: endpointToRecord(from),
      vnis: new Uint32Array(1), outOffs: new Uint32Array(1), outLens: new Uint32Array(1), status: new Uint8Array([CIPHER_FAILED]), senders: new Uint32Array(1), count: 1,
    };
    c.slab.set(pkt, 0);
    to.openBatch(c);
    return [c.status[0], c.status[0] === CIPHER_OK ? new Uint8Array(c.slab.subarray(c.outOffs[0], c.outOffs[0] + c.outLens[0])) : null];
  };
  const vxlan = Uint8Array.from([0x08, 0, 0, 0, 0, 0, 42, 0]);
  const frame = tcpSuperFrame(10_000);
  const out = new Uint8Array(64 * 1024);
  const outLens = new Uint32Array(257);
  assert.equal(a.sealSuperFrame(recB, 0, vxlan, frame, 1, 1400, out, outLens), 0, 'no session yet: a handshake starts');
  for (let k = 0; k < 6 && wire.length; k++) {
    const [from, p] = wire.shift()!;
    open(from === a ? b : a, from === a ? ea : eb, p);
  }
  assert.ok(a.status() && (a.status() as { peers: { session: unknown }[] }).peers[0].session, 'session');
  const n = a.sealSuperFrame(recB, 0, vxlan, frame, 1, 1400, out, outLens);
  const ref = new Uint8Array(64 * 1024);
  const refLens = new Uint32Array(257);
  const m = gsoSegment!(frame, 1, 1400, vxlan, ref, refLens);
  assert.equal(n, Math.ceil(10_000 / 1400));
  assert.equal(n, m);
  const stride = outLens[outLens.length - 1];
  const refStride = refLens[refLens.length - 1];
  assert.equal(stride, refStride + 32, 'stride = plaintext stride + data header + tag');
  let lastCounter = -1n;
  for (let i = 0; i < n; i++) {
    const d = out.subarray(i * stride, i * stride + outLens[i]);
    if (i < n - 1) assert.equal(outLens[i], stride, `segment ${i} fills the stride`);
    assert.equal(d[0], 4);
    const ctr = Buffer.from(d).readBigUInt64LE(8);
    if (lastCounter >= 0n) assert.equal(ctr, lastCounter + 1n);
    lastCounter = ctr;
    const [st, plain] = open(b, ea, d);
    assert.equal(st, CIPHER_OK, `segment ${i} opens`);
    assert.deepEqual(Buffer.from(plain!), Buffer.from(ref.subarray(i * refStride, i * refStride + refLens[i])), `segment ${i} = reference`);
  }
  // the next ordinary packet continues after the TSO counters (no reuse)
  const sb: CipherBatch = {
    slab: Buffer.alloc(256), offs: new Uint32Array([64]), lens: new Uint32Array([30]), addrs: Buffer.from(recB),
    vnis: new Uint32Array([42]), outOffs: new Uint32Array(1), outLens: new Uint32Array(1), status: new Uint8Array(1), senders: new Uint32Array(1), count: 1,
  };
  sb.slab.set(vxlan, 64);
  a.sealBatch(sb);
  assert.equal(sb.status[0], CIPHER_OK);
  assert.equal(sb.slab.readBigUInt64LE(sb.outOffs[0] + 8), lastCounter + 1n);
  // not a TCP frame / no room
  assert.equal(a.sealSuperFrame(recB, 0, vxlan, new Uint8Array(60), 1, 1400, out, outLens), -1);
  assert.equal(a.sealSuperFrame(recB, 0, vxlan, frame, 1, 1400, new Uint8Array(4000), outLens), -2);
  assert.equal(ADDR_LEN, 18);
  a.stop();
  b.stop();
});
