/**
 * NativeUdp over real sockets in a fresh network namespace (underlay addresses 198.18.7.0/24 and
 * 2001:2::/64 on a veth device): IPv4 and IPv6 batches with contents, lengths and 18-byte sender
 * records checked; ECMP source-socket fan-out (N distinct random high ports, nothing read from
 * them); DF (an oversize datagram is skipped with EMSGSIZE and never fragmented: the stack sends
 * exactly the small ones and creates no fragments); oversize input delivered truncated and counted;
 * per-descriptor errors skipped;
 * bind/IO errors with code, errno and syscall.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { NativeUdp } from '../../src/dataplane/native-io';
import { ERR_UDP_BIND, ERR_UDP_IO, SystemError } from '../../src/errors';
import { childMain, nativeSkipReason, runScenario, sh, untilReadable, withNetns } from './native-helpers';

const ADDR = 18;

function setup(): void {
  // A veth pair: vxd0 holds the local addresses and routes 198.18.8.0/24 and 2001:2:0:8::/64 (MTU
  // 1400) towards static neighbours, so sends there leave a real device without any resolution.
  sh(`ip link add vxd0 type veth peer name vxd1
ip link set vxd0 mtu 1400 up
ip link set vxd1 up
ip addr add 198.18.7.1/24 dev vxd0
ip addr add 198.18.7.2/24 dev vxd0
ip -6 addr add 2001:2::1/64 dev vxd0 nodad
ip -6 addr add 2001:2::2/64 dev vxd0 nodad
ip route add 198.18.8.0/24 dev vxd0
ip -6 route add 2001:2:0:8::/64 dev vxd0
ip neigh add 198.18.8.9 lladdr 02:00:00:00:00:09 dev vxd0 nud permanent
ip -6 neigh add 2001:2:0:8::9 lladdr 02:00:00:00:00:09 dev vxd0 nud permanent`);
}

/** Counters of this namespace's IP stack (/proc/net/snmp, /proc/net/snmp6). */
function snmp(family: 4 | 6): { udpOut: number; fragCreates: number } {
  if (family === 4) {
    const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n');
    const pick = (proto: string, field: string) => {
      const rows = lines.filter((l) => l.startsWith(`${proto}:`));
      const names = rows[0].split(/\s+/);
      const vals = rows[1].split(/\s+/);
      return Number(vals[names.indexOf(field)]);
    };
    return { udpOut: pick('Udp', 'OutDatagrams'), fragCreates: pick('Ip', 'FragCreates') };
  }
  const kv = new Map(fs.readFileSync('/proc/net/snmp6', 'utf8').trim().split('\n').map((l) => {
    const [k, v] = l.trim().split(/\s+/);
    return [k, Number(v)] as [string, number];
  }));
  return { udpOut: kv.get('Udp6OutDatagrams')!, fragCreates: kv.get('Ip6FragCreates')! };
}

/** 18-byte record of an address (IPv4 v4-mapped) and port. */
function record(address: string, port: number): Buffer {
  const r = Buffer.alloc(ADDR);
  if (address.includes(':')) {
    // Only the forms used here: 2001:2::N and 2001:2:0:8::N.
    const [head, tail] = address.split('::');
    const hw = head.split(':').map((x) => parseInt(x, 16));
    const tw = tail ? tail.split(':').map((x) => parseInt(x, 16)) : [];
    const words = [...hw, ...new Array(8 - hw.length - tw.length).fill(0), ...tw];
    words.forEach((w, i) => r.writeUInt16BE(w, 2 * i));
  } else {
    r[10] = 0xff;
    r[11] = 0xff;
    address.split('.').forEach((x, i) => (r[12 + i] = Number(x)));
  }
  r.writeUInt16BE(port, 16);
  return r;
}

interface Tx {
  slab: Buffer; offs: Uint32Array; lens: Uint32Array; addrs: Buffer; srcIdx: Uint8Array; status: Int32Array; count: number;
}

/** A send batch of `payloads`, each to `dst[i]` from source socket `src[i]`. */
function txBatch(payloads: Buffer[], dst: Buffer[], src: number[]): Tx {
  const total = payloads.reduce((a, p) => a + p.length, 0);
  const tx: Tx = {
    slab: Buffer.alloc(total + 16), offs: new Uint32Array(payloads.length), lens: new Uint32Array(payloads.length),
    addrs: Buffer.alloc(payloads.length * ADDR), srcIdx: new Uint8Array(payloads.length),
    status: new Int32Array(payloads.length), count: payloads.length,
  };
  let at = 3; // deliberately unaligned
  payloads.forEach((p, i) => {
    p.copy(tx.slab, at);
    tx.offs[i] = at;
    tx.lens[i] = p.length;
    at += p.length;
    dst[i].copy(tx.addrs, i * ADDR);
    tx.srcIdx[i] = src[i];
  });
  return tx;
}

function rxBatch(slotSize: number, slots: number) {
  return { slab: Buffer.alloc(slotSize * slots), slotSize, headroom: 0, slots, lens: new Uint32Array(slots), addrs: Buffer.alloc(slots * ADDR) };
}

/** Receives (bounded) until `want` datagrams arrived; returns [payload, senderRecordHex]. */
async function receive(u: NativeUdp, want: number, slotSize = 9000): Promise<Array<[Buffer, string]>> {
  const rx = rxBatch(slotSize, 8);
  const got: Array<[Buffer, string]> = [];
  await untilReadable(u, () => {
    const n = u.recvBatch(rx);
    for (let i = 0; i < n; i++) {
      const at = i * rx.slotSize;
      got.push([Buffer.from(rx.slab.subarray(at, at + rx.lens[i])), rx.addrs.subarray(i * ADDR, (i + 1) * ADDR).toString('hex')]);
    }
    return got.length >= want ? true : undefined;
  }, `${want} datagrams`);
  return got;
}

function payload(i: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let k = 0; k < len; k++) b[k] = (i * 31 + k * 7) & 0xff;
  // never 1 first: a handshake initiation's type byte goes to the handshake socket (udp_split.h), after the rest of a batch
  if (len >= 1) b[0] = 0x80 | (i & 0x7f);
  return b;
}

async function exchange(family: 4 | 6, a: string, b: string) {
  const A = NativeUdp.open({ address: a, port: 0 });
  const B = NativeUdp.open({ address: b, port: 0 });
  assert.equal(A.family, family);
  assert.equal(A.sourceCount, 1);
  assert.deepEqual(A.sourcePorts, [A.port]);
  const sizes = [1, 0, 100, 1400, 8000, 60];
  const pls = sizes.map((n, i) => payload(i + 1, n));
  const tx = txBatch(pls, pls.map(() => record(b, B.port)), pls.map(() => 0));
  assert.equal(A.sendBatch(tx), sizes.length);
  assert.equal(A.stats.sendSkipped, 0);
  const got = await receive(B, sizes.length);
  assert.equal(got.length, sizes.length);
  const fromA = record(a, A.port).toString('hex');
  got.forEach(([p, rec], i) => {
    assert.equal(p.length, sizes[i], `datagram ${i} length`);
    assert.ok(p.equals(pls[i]), `datagram ${i} contents`);
    assert.equal(rec, fromA, `datagram ${i} sender record`);
  });
  // Socket buffers: 8 MiB requested, forced as root (the kernel reports twice the value).
  const ss = sh(`ss -uamnH 'sport = :${B.port}' || true`);
  // the main socket's (the largest: the handshake socket beside it has a small buffer on purpose)
  const rbs = [...ss.matchAll(/rb(\d+)/g)].map((m) => Number(m[1]));
  const rb = rbs.length ? [String(Math.max(...rbs)), String(Math.max(...rbs))] : null;
  A.close();
  B.close();
  B.close();
  return { lens: got.map(([p]) => p.length), rcvbuf: rb ? Number(rb[1]) : null };
}

const scenarios = {
  async v4() {
    setup();
    return exchange(4, '198.18.7.1', '198.18.7.2');
  },
  async v6() {
    setup();
    return exchange(6, '2001:2::1', '2001:2::2');
  },

  async fanout() {
    setup();
    const A = NativeUdp.open({ address: '198.18.7.1', port: 0, sourcePorts: 4 });
    const B = NativeUdp.open({ address: '198.18.7.2', port: 0 });
    assert.equal(A.sourceCount, 4);
    assert.equal(new Set(A.sourcePorts).size, 4, 'distinct source ports');
    for (const p of A.sourcePorts) {
      assert.ok(p >= 49152 && p <= 65535, `source port ${p} in 49152-65535`);
      assert.notEqual(p, A.port);
    }
    const src = [0, 0, 1, 1, 2, 3, 3, 2];
    const pls = src.map((_, i) => payload(i, 20));
    assert.equal(A.sendBatch(txBatch(pls, pls.map(() => record('198.18.7.2', B.port)), src)), src.length);
    const got = await receive(B, src.length);
    for (const [p, rec] of got) {
      const i = p[0] & 0x7f; // payload(): 0x80 | index
      assert.equal(rec, record('198.18.7.1', A.sourcePorts[src[i]]).toString('hex'), `datagram ${i} from source socket ${src[i]}`);
    }
    // Only the main socket is read: a datagram to a source port is not received by A.
    const toA = [payload(100, 10), payload(101, 10)];
    assert.equal(B.sendBatch(txBatch(toA, [record('198.18.7.1', A.sourcePorts[0]), record('198.18.7.1', A.port)], [0, 0])), 2);
    const gotA = await receive(A, 1);
    assert.equal(gotA.length, 1);
    assert.equal(gotA[0][0][0] & 0x7f, 101);
    const sourcePorts = [...A.sourcePorts];
    A.close();
    B.close();
    return { sourcePorts, received: got.length };
  },

  async df(family: 4 | 6) {
    setup();
    const local = family === 4 ? '198.18.7.1' : '2001:2::1';
    const remote = family === 4 ? '198.18.8.9' : '2001:2:0:8::9';
    const A = NativeUdp.open({ address: local, port: 0, sourcePorts: 2 });
    const before = snmp(family);
    // Path MTU 1400: a 1400-byte payload does not fit in one packet; DF forbids fragments.
    const pls = [payload(1, 100), payload(2, 1400), payload(3, 200), payload(4, 1373)];
    const dst = pls.map(() => record(remote, 4789));
    assert.equal(A.sendBatch(txBatch(pls, dst, [0, 1, 1, 0])), 4, 'all descriptors consumed');
    const after = snmp(family);
    const stats = { skipped: A.stats.sendSkipped, msgsize: A.stats.sendMsgSize, lastErrno: A.stats.lastSendErrno };
    A.close();
    assert.equal(stats.skipped, 2);
    assert.equal(stats.msgsize, 2);
    assert.equal(stats.lastErrno, 90 /* EMSGSIZE */);
    assert.equal(after.udpOut - before.udpOut, 2, 'exactly the two small datagrams were sent');
    assert.equal(after.fragCreates - before.fragCreates, 0, 'nothing fragmented');
    const txPackets = after.udpOut - before.udpOut;
    return { ...stats, txPackets };
  },

  async skips() {
    setup();
    const A = NativeUdp.open({ address: '198.18.7.1', port: 0, sourcePorts: 1 });
    const B = NativeUdp.open({ address: '198.18.7.2', port: 0 });
    const pls = [payload(1, 10), payload(2, 10), payload(3, 10), payload(4, 10)];
    const dst = [record('2001:2::2', B.port), record('198.18.7.2', B.port), record('198.18.7.2', 0), record('198.18.7.2', B.port)];
    // wrong family; srcIdx out of range; port 0 (EINVAL from the kernel); good
    const tx = txBatch(pls, dst, [0, 5, 0, 0]);
    assert.equal(A.sendBatch(tx), 4);
    assert.equal(A.stats.sendSkipped, 3);
    const got = await receive(B, 1);
    assert.equal(got.length, 1);
    assert.equal(got[0][0][0] & 0x7f, 4);

    // A datagram larger than a slot arrives truncated to the slot (as recvmmsg does) and is counted.
    const big = [payload(7, 3000), payload(8, 10)];
    assert.equal(A.sendBatch(txBatch(big, big.map(() => record('198.18.7.2', B.port)), [0, 0])), 2);
    const got2 = await receive(B, 2, 2048);
    assert.equal(got2.length, 2);
    assert.equal(got2[0][0].length, 2048);
    assert.ok(got2[0][0].equals(big[0].subarray(0, 2048)));
    assert.equal(got2[1][0].length, 10);
    assert.equal(got2[1][0][0] & 0x7f, 8);
    assert.equal(B.stats.recvTruncated, 1);

    // Bad batches are RangeErrors, never a crash.
    assert.throws(() => A.sendBatch({ ...tx, count: 5 }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => A.sendBatch({ ...tx, addrs: Buffer.alloc(10) }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => B.recvBatch({ ...rxBatch(100, 4), addrs: Buffer.alloc(10) }), { code: 'ERR_OUT_OF_RANGE' });
    A.close();
    B.close();
    return { skipped: 3, truncated: 1 };
  },

  async batching() {
    setup();
    const A = NativeUdp.open({ address: '198.18.7.1', port: 0 });
    const B = NativeUdp.open({ address: '198.18.7.2', port: 0 });
    const C = NativeUdp.open({ address: '198.18.7.2', port: 0 });
    const toB = record('198.18.7.2', B.port);
    const toC = record('198.18.7.2', C.port);
    // Equal-sized runs to one destination (sent as UDP GSO messages when the kernel has it),
    // interleaved with other sizes and another destination: the wire carries exactly the same
    // datagrams, in order.
    const sizes = [...new Array(40).fill(700), 300, 700, 700, 1200, 64, 64, 64, ...new Array(70).fill(100), 9];
    const dst = sizes.map((_, i) => (i === 43 || i === 100 ? toC : toB));
    const check = async (label: string) => {
      const pls = sizes.map((n, i) => payload(i & 0xff, n));
      assert.equal(A.sendBatch(txBatch(pls, dst, sizes.map(() => 0))), sizes.length, label);
      const gotB = await receive(B, sizes.length - 2).catch((e) => { throw new Error(`${label}: B: ${e.message}`); });
      const gotC = await receive(C, 2).catch((e) => { throw new Error(`${label}: C: ${e.message}`); });
      const wantB = pls.filter((_, i) => dst[i] === toB);
      assert.equal(gotB.length, wantB.length, label);
      gotB.forEach(([p], i) => assert.ok(p.equals(wantB[i]), `${label}: datagram ${i} to B`));
      assert.ok(gotC[0][0].equals(pls[43]) && gotC[1][0].equals(pls[100]), `${label}: datagrams to C`);
    };
    const gsoOn = A.gso;
    await check('gso on');
    const gsoSends = A.stats.gsoSends;
    if (gsoOn) assert.ok(gsoSends >= 3, `equal-sized runs went out as UDP GSO messages (${gsoSends})`);
    B.setGro(true);
    await check('gso on, GRO receive');
    const groBuffers = B.stats.groBuffers;
    if (gsoOn) assert.ok(groBuffers >= 1, 'the receiver got coalesced buffers and split them');
    A.setGso(false);
    await check('gso off');
    assert.equal(A.stats.gsoSends, gsoSends * 2, 'no UDP GSO with it switched off');
    A.close();
    B.close();
    C.close();
    return { gso: gsoOn, gsoSends, groBuffers };
  },

  async lifecycle() {
    setup();
    // A worker thread opens a transport, starts polling and exits without close(): the env cleanup
    // hook closes it, so the port is free again afterwards.
    const { Worker } = await import('node:worker_threads');
    const code = `
      const { parentPort } = require('node:worker_threads');
      const { NativeUdp } = require(${JSON.stringify(require.resolve('../../src/dataplane/native-io'))});
      const u = NativeUdp.open({ address: '198.18.7.1', port: 0, sourcePorts: 2 });
      u.onReadable(() => {});
      parentPort.postMessage(u.port);
      setImmediate(() => process.exit(0));
    `;
    const w = new Worker(code, { eval: true });
    const port = await new Promise<number>((res, rej) => { w.once('message', res); w.once('error', rej); });
    const exitCode = await new Promise<number>((res) => w.once('exit', res));
    assert.equal(exitCode, 0);
    const again = NativeUdp.open({ address: '198.18.7.1', port });
    again.close();

    // A transport dropped without close() (and not polling) is closed by its GC finalizer.
    const v8 = await import('node:v8');
    const vm = await import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    let dropped: NativeUdp | null = NativeUdp.open({ address: '198.18.7.1', port: 0 });
    const port2 = dropped.port;
    dropped = null;
    let freed = false;
    for (let i = 0; i < 20 && !freed; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
      try {
        NativeUdp.open({ address: '198.18.7.1', port: port2 }).close();
        freed = true;
      } catch (e) {
        if ((e as SystemError).errno !== 'EADDRINUSE') throw e;
      }
    }
    assert.ok(freed, 'the finalizer closed the socket');
    return { workerPort: port, gcFreed: freed };
  },

  /**
   * The handshake socket (udp_split.h): 4,000 forged initiations (type 1) sent before 8 data
   * messages (type 4) — the data comes first in the first batch, the initiations after it within
   * the budget (a burst of at most VX_HS_BURST = 2048, then 16,384/s), the rest overflows the small
   * buffer in the kernel. With VXMESH_UDP_SPLIT=0: one socket, arrival order.
   */
  async split(off?: unknown) {
    setup();
    if (off) process.env.VXMESH_UDP_SPLIT = '0';
    const B = NativeUdp.open({ address: '198.18.7.1', port: 0 });
    const A = NativeUdp.open({ address: '198.18.7.1', port: 0 });
    const to = record('198.18.7.1', B.port);
    const msg = (type: number, len: number, i: number) => { const b = Buffer.alloc(len, i & 0xff); b[0] = type; return b; };
    for (let k = 0; k < 20; k++) {
      const pls = Array.from({ length: 200 }, (_, i) => msg(1, 148, k * 200 + i));
      assert.equal(A.sendBatch(txBatch(pls, pls.map(() => to), pls.map(() => 0))), 200);
    }
    const data = Array.from({ length: 8 }, (_, i) => msg(4, 64, i));
    assert.equal(A.sendBatch(txBatch(data, data.map(() => to), data.map(() => 0))), 8);
    const rx = rxBatch(2048, 64);
    const t0 = process.hrtime.bigint();
    const types: number[] = [];
    let first: number[] = [];
    for (let round = 0; round < 400; round++) {
      const n = B.recvBatch(rx);
      const batch = Array.from({ length: n }, (_, i) => rx.slab[i * rx.slotSize]);
      if (round === 0) first = batch;
      types.push(...batch);
      if (n === 0 && round > 4) break;
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const inits = types.filter((t) => t === 1).length;
    const r = { first: first.slice(0, 10), data: types.filter((t) => t === 4).length, inits, hsRead: Number(B.rawStats[5]), seconds };
    A.close();
    B.close();
    return r;
  },

  errors() {
    setup();
    const A = NativeUdp.open({ address: '198.18.7.1', port: 0 });
    const check = (fn: () => unknown, errno: string, syscall: string, code = ERR_UDP_BIND) =>
      assert.throws(fn, (e: SystemError) => {
        assert.ok(e instanceof SystemError, String(e));
        assert.equal(e.code, code);
        assert.equal(e.errno, errno);
        assert.equal(e.syscall, syscall);
        assert.ok(e.message.includes(`${syscall} failed: `), e.message);
        return true;
      });
    check(() => NativeUdp.open({ address: '198.18.7.1', port: A.port }), 'EADDRINUSE', 'bind');
    check(() => NativeUdp.open({ address: '198.18.99.1', port: 0 }), 'EADDRNOTAVAIL', 'bind');
    check(() => NativeUdp.open({ address: '198.18.7.1', port: 0, family: 6 }), 'EINVAL', 'inet_pton');
    assert.throws(() => NativeUdp.open({ address: '198.18.7.1', port: 0, sourcePorts: 0 }), { name: 'RangeError' });
    assert.throws(() => NativeUdp.open({ address: '198.18.7.1', port: 70000 }), { name: 'RangeError' });
    A.close();
    check(() => A.recvBatch(rxBatch(100, 1)), 'EBADF', 'recvmmsg', ERR_UDP_IO);
    check(() => A.sendBatch(txBatch([payload(1, 1)], [record('198.18.7.2', 9)], [0])), 'EBADF', 'sendmmsg', ERR_UDP_IO);
    return { ok: true };
  },
};

if (!childMain(scenarios)) {
  const skip = nativeSkipReason();
  test('UDP v4: a batch of datagrams with lengths, contents and sender records; big socket buffers', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'v4'));
    assert.deepEqual(r.lens, [1, 0, 100, 1400, 8000, 60]);
    if (r.rcvbuf !== null) assert.ok(r.rcvbuf >= 8 * 1024 * 1024, `rcvbuf ${r.rcvbuf}`);
  });
  test('UDP v6: a batch of datagrams with lengths, contents and sender records', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'v6'));
    assert.deepEqual(r.lens, [1, 0, 100, 1400, 8000, 60]);
  });
  test('UDP: ECMP fan-out over N source sockets on distinct random high ports', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'fanout'));
    assert.equal(new Set(r.sourcePorts).size, 4);
    assert.equal(r.received, 8);
  });
  for (const family of [4, 6] as const) {
    test(`UDP DF (IPv${family}): oversize datagrams are skipped with EMSGSIZE, never fragmented`, { skip }, () => {
      const r = withNetns((ns) => runScenario(ns, __filename, 'df', family));
      assert.equal(r.msgsize, 2);
      assert.equal(r.txPackets, 2);
    });
  }
  test('UDP: per-descriptor errors skipped and counted; truncated input delivered truncated and counted', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'skips'));
    assert.deepEqual(r, { skipped: 3, truncated: 1 });
  });
  test('UDP: equal-sized runs to one destination go out as UDP GSO messages, same datagrams on the wire (GRO split too)', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'batching'));
    if (r.gso) assert.ok(r.gsoSends >= 3 && r.groBuffers >= 1);
  });
  test('UDP: handles left open are closed at worker exit (cleanup hook) and by the GC finalizer', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'lifecycle'));
    assert.equal(r.gcFreed, true);
  });
  test('UDP: handshake initiations go to a second socket on the port, read after the data within a budget; the flood overflows in the kernel', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'split'));
    assert.deepEqual(r.first.slice(0, 8), [4, 4, 4, 4, 4, 4, 4, 4], `data first: ${JSON.stringify(r)}`);
    assert.equal(r.data, 8);
    assert.ok(r.inits >= 64 && r.inits < 4000, `initiations read: ${JSON.stringify(r)}`);
    assert.ok(r.inits <= 2048 + 16384 * r.seconds + 64, `within the budget: ${JSON.stringify(r)}`);
    assert.equal(r.hsRead, r.inits, 'counted (stats slot HS_READ)');
    const off = withNetns((ns) => runScenario(ns, __filename, 'split', 1));
    assert.deepEqual(off.first.slice(0, 10), new Array(10).fill(1), `VXMESH_UDP_SPLIT=0: arrival order, ${JSON.stringify(off)}`);
    assert.equal(off.hsRead, 0);
  });
  test('UDP: bind and I/O errors carry code, errno and syscall', { skip }, () => {
    assert.equal(withNetns((ns) => runScenario(ns, __filename, 'errors')).ok, true);
  });
}
