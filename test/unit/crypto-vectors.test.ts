/**
 * Wire-format test vectors (docs/wire-format.md §8): a handshake with fixed static, ephemeral,
 * index, timestamp and PSK inputs gives exactly these bytes and transport keys, and a data message
 * exactly these bytes under both AEAD backends. Another implementation can check itself against
 * the same numbers; a change here is a wire-format change.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { createAeadTable, loadNativeAead } from '../../src/crypto/aead';
import { consumeInitiation, consumeResponse, createInitiation, createResponse } from '../../src/crypto/handshake';
import { cryptoReady, hostKeyFromPrivate } from '../../src/crypto/keys';
import { encodeTimestamp } from '../../src/crypto/noise';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fill = (v: number): Uint8Array => new Uint8Array(32).fill(v);

const V = {
  ipub: '7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13',
  rpub: '0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20',
  ts: '000000006b49d200075bca00',
  init: '01000000040302017b0d47d93427f8311160781c7c733fd89f88970aef490d8aa0ee19a4cb8a1b143301ad234a68ffaf6b49ec514d1b864bb5371444a97e9b8d502555a254c8e57706fbf9c17046f19be4e9ca7641f4768aa98b8f8f701679ce9d30cfc38e56e01d72bd70ac062358aba214decd88937a67a712475da497e2086b4624fa00000000000000000000000000000000',
  resp: '020000000d0c0b0a04030201ff2ee45601ec1b67310c7790404585ae697331eee1c1f8cf2419731c1fff3e6bc337d4d6956bcb23633a486474d5e181e3dd165783c8d53fb2bde877d454b29500000000000000000000000000000000',
  t1: '12982de479373fd4550bab3629cd78001caafeeadc2fb9d81b6eb8cfdc935fdc',
  t2: '44cf7fa5bfc564efbfaa21018bcce18029b004af94c318d5accc021406e3d480',
  plain: '0800000000002a00ffffffffffff020000000001080045',
  data: '040000000d0c0b0a07000000000000007cb94ac9c1eb3d64d27fa45141ba7d9ae0f5d84aa4a430d64c84e4fac1f09362131cf666238fde',
};

test('handshake vector', async () => {
  await cryptoReady();
  const I = hostKeyFromPrivate(fill(0x11));
  const R = hostKeyFromPrivate(fill(0x22));
  assert.equal(hex(I.publicKey), V.ipub);
  assert.equal(hex(R.publicKey), V.rpub);
  const ts = encodeTimestamp(1_800_000_000_123_456);
  assert.equal(hex(ts), V.ts);
  const init = createInitiation(I, R.publicKey, 0x01020304, ts, fill(0x33), null)!;
  assert.equal(hex(init.msg), V.init);
  const c = consumeInitiation(R, init.msg)!;
  assert.equal(hex(c.peerStatic), V.ipub);
  assert.equal(hex(c.timestamp), V.ts);
  const resp = createResponse(c, 0x0a0b0c0d, fill(0x44), fill(0x55), null)!;
  assert.equal(hex(resp.msg), V.resp);
  assert.equal(hex(resp.keys.recv), V.t1);
  assert.equal(hex(resp.keys.send), V.t2);
  const done = consumeResponse(I, init.state, resp.msg, [fill(0x66), fill(0x55)])!;
  assert.equal(done.senderIndex, 0x0a0b0c0d);
  assert.equal(hex(done.keys.send), V.t1);
  assert.equal(hex(done.keys.recv), V.t2);
  assert.equal(consumeResponse(I, init.state, resp.msg, [fill(0x66)]), null, 'wrong PSK');
});

for (const backend of ['node', 'native'] as const) {
  test(`data message vector (${backend})`, { skip: backend === 'native' && !loadNativeAead() ? 'native AEAD not built' : false }, () => {
    const plain = Buffer.from(V.plain, 'hex');
    const pkt = Buffer.alloc(16 + plain.length + 16);
    pkt[0] = 4;
    pkt.writeUInt32LE(0x0a0b0c0d, 4);
    pkt.writeBigUInt64LE(7n, 8);
    plain.copy(pkt, 16);
    const t = createAeadTable('aes-256-gcm', 1, backend);
    t.setKey(0, Buffer.from(V.t1, 'hex'));
    const st = new Uint8Array(1);
    assert.equal(t.sealBatch(pkt, new Uint32Array([0]), new Uint32Array([plain.length]), new Uint32Array([0]), 1, st), 1);
    assert.equal(pkt.toString('hex'), V.data);
    assert.equal(t.openBatch(pkt, new Uint32Array([0]), new Uint32Array([pkt.length]), new Uint32Array([0]), 1, st), 1);
    assert.equal(pkt.subarray(16, 16 + plain.length).toString('hex'), V.plain);
  });
}
