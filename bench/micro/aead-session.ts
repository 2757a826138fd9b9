/**
 * Micro-benchmark: the session layer's per-packet cost on top of the raw AEAD — what
 * `SessionManager.sealBatch` / `openBatch` (peer lookup, header, counter, replay window, one native
 * AEAD call per batch) add to `AeadTable.sealBatch` alone.
 *
 *   node dist/bench/micro/aead-session.js [--size 1400] [--batch 64] [--packets 256000]
 *
 * Reported as CPU time per packet (process.cpuUsage), which stays meaningful on a machine shared
 * with other work, unlike wall-clock rates. Loops are bounded by packet count.
 */
import { FakeClock } from '../../src/clock';
import type { Endpoint } from '../../src/config/types';
import { ADDR_LEN, endpointToRecord } from '../../src/dataplane/addr';
import { CIPHER_OK, type CipherBatch } from '../../src/dataplane/cipher-seam';
import { createAeadTable } from '../../src/crypto/aead';
import { cryptoReady, generateHostKey } from '../../src/crypto/keys';
import { SessionManager } from '../../src/crypto/session';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const SIZE = arg('--size', 1400);
const N = arg('--batch', 64);
const PACKETS = arg('--packets', 256_000);
const SLOT = SIZE + 128;

function cpuUs(fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return c.user + c.system;
}

function batch(): CipherBatch {
  return {
    slab: Buffer.alloc(N * SLOT), offs: new Uint32Array(N), lens: new Uint32Array(N), addrs: Buffer.alloc(N * ADDR_LEN),
    vnis: new Uint32Array(N), outOffs: new Uint32Array(N), outLens: new Uint32Array(N), status: new Uint8Array(N), senders: new Uint32Array(N), count: N,
  };
}

async function main(): Promise<void> {
  await cryptoReady();
  const clock = new FakeClock(0);
  const ka = generateHostKey();
  const kb = generateHostKey();
  const ea: Endpoint = { address: '198.18.0.1', port: 4789, family: 4 };
  const eb: Endpoint = { address: '198.18.0.2', port: 4789, family: 4 };
  const wire: [SessionManager, Uint8Array][] = [];
  const a = new SessionManager({ hostKey: ka, clock });
  const b = new SessionManager({ hostKey: kb, clock });
  a.setSendHook((p) => wire.push([a, new Uint8Array(p)]));
  b.setSendHook((p) => wire.push([b, new Uint8Array(p)]));
  a.setPeer(kb.publicKey, eb);
  b.setPeer(ka.publicKey, ea);
  const sb = batch();
  const rb = batch();
  for (let i = 0; i < N; i++) {
    sb.offs[i] = i * SLOT + 64;
    sb.lens[i] = SIZE;
    endpointToRecord(eb).copy(sb.addrs, i * ADDR_LEN);
    endpointToRecord(ea).copy(rb.addrs, i * ADDR_LEN);
  }
  sb.count = 1;
  a.sealBatch(sb); // queues, starts the handshake
  sb.count = N;
  for (let k = 0; k < 10 && wire.length; k++) {
    const [from, p] = wire.shift()!;
    const c = batch();
    c.slab.set(p, 0);
    c.lens[0] = p.length;
    endpointToRecord(from === a ? ea : eb).copy(c.addrs, 0);
    c.count = 1;
    (from === a ? b : a).openBatch(c);
  }
  const rounds = Math.ceil(PACKETS / N);
  const seal = cpuUs(() => { for (let r = 0; r < rounds; r++) a.sealBatch(sb); });
  const both = cpuUs(() => {
    for (let r = 0; r < rounds; r++) {
      a.sealBatch(sb);
      sb.slab.copy(rb.slab);
      for (let i = 0; i < N; i++) { rb.offs[i] = sb.outOffs[i]; rb.lens[i] = sb.outLens[i]; }
      b.openBatch(rb);
    }
  });
  let ok = 0;
  for (let i = 0; i < N; i++) if (rb.status[i] === CIPHER_OK) ok++;
  const t = createAeadTable('aes-256-gcm', 2, a.backend === 'native' ? 'native' : 'node');
  t.setKey(0, new Uint8Array(32).fill(1));
  const offs = new Uint32Array(N);
  const lens = new Uint32Array(N).fill(SIZE);
  const slots = new Uint32Array(N);
  const st = new Uint8Array(N);
  for (let i = 0; i < N; i++) offs[i] = i * SLOT + 48;
  const raw = cpuUs(() => { for (let r = 0; r < rounds; r++) t.sealBatch(sb.slab, offs, lens, slots, N, st); });
  const n = rounds * N;
  console.log(`backend ${a.backend}, ${SIZE}-byte packets, batches of ${N}, ${n} packets (CPU µs per packet)`);
  console.log(`  raw AeadTable.sealBatch            ${(raw / n).toFixed(3)}`);
  console.log(`  SessionManager.sealBatch           ${(seal / n).toFixed(3)}`);
  console.log(`  seal + copy + SessionManager.open  ${(both / n).toFixed(3)}   (last batch: ${ok}/${N} opened)`);
  a.stop();
  b.stop();
}

main().catch((e) => { console.error(e); process.exit(1); });
