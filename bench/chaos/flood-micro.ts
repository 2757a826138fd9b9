/**
 * Where a forged initiation's time goes inside the agent's session layer: SessionManager.openBatch
 * over batches of 64 forged initiations (bad mac1), with the native mac1 gate (one call per batch,
 * native/mac1.c) and with the JS gate (libsodium per message), in ns per message.
 * Usage: node dist/bench/chaos/flood-micro.js [batches=20000]
 */
import * as crypto from 'node:crypto';

import { FakeClock } from '../../src/clock';
import { ADDR_LEN, endpointToRecord } from '../../src/dataplane/addr';
import { CIPHER_FAILED, type CipherBatch } from '../../src/dataplane/cipher-seam';
import { cryptoReady, generateHostKey } from '../../src/crypto/keys';
import { SessionManager } from '../../src/crypto/session';

async function main(): Promise<void> {
  await cryptoReady();
  const batches = Number(process.argv[2] ?? 20000);
  const N = 64;
  const out: Record<string, number> = {};
  for (const backend of ['auto', 'node'] as const) {
    const sm = new SessionManager({ hostKey: generateHostKey(), clock: new FakeClock(0), backend });
    sm.setSendHook(() => {});
    const b: CipherBatch = {
      slab: Buffer.alloc(N * 2048), offs: new Uint32Array(N), lens: new Uint32Array(N), addrs: Buffer.alloc(N * ADDR_LEN),
      vnis: new Uint32Array(N), outOffs: new Uint32Array(N), outLens: new Uint32Array(N), status: new Uint8Array(N), senders: new Uint32Array(N), count: N,
    };
    for (let i = 0; i < N; i++) {
      b.offs[i] = i * 2048;
      b.lens[i] = 148;
      crypto.randomFillSync(b.slab, i * 2048, 148);
      b.slab[i * 2048] = 1;
      b.slab[i * 2048 + 1] = b.slab[i * 2048 + 2] = b.slab[i * 2048 + 3] = 0;
      endpointToRecord({ address: '198.18.0.3', port: 4789, family: 4 }).copy(b.addrs, i * ADDR_LEN);
    }
    const once = () => { b.status.fill(CIPHER_FAILED); sm.openBatch(b); };
    for (let i = 0; i < 2000; i++) once();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batches; i++) once();
    const ns = Number(process.hrtime.bigint() - t0) / (batches * N);
    out[`${sm.mac1Backend}NsPerForgedInitiation`] = Math.round(ns);
    if (sm.counters.hsDh !== 0) throw new Error(`DH done: ${sm.counters.hsDh}`);
  }
  console.log(JSON.stringify(out));
}
main().catch((e) => { console.error(e); process.exitCode = 1; });
