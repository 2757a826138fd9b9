/**
 * Busy-poll of the data path's devices (native/busypoll_glue.c, NativeUdp/NativeTap.setBusyPoll):
 * after a member's readiness callback returned, the loop thread polls the group's fds with a zero
 * timeout for a window and runs a ready member's callback itself, without a trip through libuv's
 * epoll. Each scenario runs in a child inside a fresh network namespace (native-helpers.ts) with
 * underlay addresses 198.18.9.1/.2 on its loopback.
 *
 *  - a packet that becomes ready during the window is handled from the spin: before a setImmediate
 *    queued by the callback that sent it (libuv would run that first), counted in hits/callbacks;
 *    with the window at 0 the same exchange goes through libuv (the control that makes it fail);
 *  - echoes from another thread that come back within the window are handled from the spin;
 *  - the spin stops: an idle process with busy-poll on uses ~no CPU over 1 s, before and after a
 *    packet started one window;
 *  - a callback run from the spin may close its own handle and another member (then GC): safe;
 *    a paused member is not called;
 *  - a CPU-bound thread on the same CPU (the process pinned to one CPU): the first yield loses the
 *    CPU for its slice, the window ends and the next ones are skipped for 50 ms (contended).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { Worker } from 'node:worker_threads';
import { loadAddon } from '../../src/native/addon';
import { NativeUdp, busyPollStats, BUSY_POLL_TURN_US } from '../../src/dataplane/native-io';
import { childMain, nativeSkipReason, sh, withNetns, runScenario } from './native-helpers';

const ADDR = 18;
const A_IP = '198.18.9.1';
const B_IP = '198.18.9.2';

function record(address: string, port: number): Buffer {
  const r = Buffer.alloc(ADDR);
  r[10] = 0xff;
  r[11] = 0xff;
  address.split('.').forEach((x, i) => (r[12 + i] = Number(x)));
  r.writeUInt16BE(port, 16);
  return r;
}

/** One datagram (never starting with byte 1: that is a handshake, udp_split.h) to `to`. */
function sendOne(from: NativeUdp, to: { address: string; port: number }, tag: number): void {
  const slab = Buffer.alloc(64);
  slab[0] = 0x80 | (tag & 0x7f);
  const n = from.sendBatch({
    slab, offs: Uint32Array.of(0), lens: Uint32Array.of(32), addrs: record(to.address, to.port), srcIdx: Uint8Array.of(0),
    status: new Int32Array(1), count: 1,
  });
  assert.equal(n, 1, 'sent');
}

const rx = { slab: Buffer.alloc(8 * 2048), slotSize: 2048, headroom: 0, slots: 8, lens: new Uint32Array(8), addrs: Buffer.alloc(8 * ADDR) };
const drain = (u: NativeUdp): number => u.recvBatch(rx);
const cpuMs = (): number => { const c = process.cpuUsage(); return (c.user + c.system) / 1000; };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const setupNs = () => sh(`ip addr add ${A_IP}/32 dev lo; ip addr add ${B_IP}/32 dev lo`);

/** A (member) receives from C and sends to B (member) in its callback; B's callback: from the spin or from libuv? */
async function orderOnce(windowUs: number): Promise<{ order: string[]; hits: number; callbacks: number }> {
  const A = NativeUdp.open({ address: A_IP, port: 0 });
  const B = NativeUdp.open({ address: B_IP, port: 0 });
  const C = NativeUdp.open({ address: A_IP, port: 0 });
  const before = busyPollStats();
  A.setBusyPoll(windowUs);
  B.setBusyPoll(windowUs);
  const order: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  A.onReadable(() => {
    if (drain(A) === 0) return;
    order.push('A');
    setImmediate(() => { order.push('immediate'); if (order.includes('B')) done(); });
    sendOne(A, { address: B_IP, port: B.port }, 2);
  });
  B.onReadable(() => {
    if (drain(B) === 0) return;
    order.push('B');
    if (order.includes('immediate')) done();
  });
  const timer = setTimeout(() => done(), 3000);
  sendOne(C, { address: A_IP, port: A.port }, 1);
  await finished;
  clearTimeout(timer);
  const after = busyPollStats();
  for (const u of [A, B, C]) u.close();
  return { order, hits: (after?.hits ?? 0) - (before?.hits ?? 0), callbacks: (after?.callbacks ?? 0) - (before?.callbacks ?? 0) };
}

const scenarios = {
  /** The process pinned to one CPU with a busy worker thread: windows end on a contended yield and back off. */
  async contended() {
    setupNs();
    sh(`taskset -a -p -c 0 ${process.pid} >/dev/null`);
    const w = new Worker(`
      const { parentPort } = require('node:worker_threads');
      const end = Date.now() + 4000; // bounded
      parentPort.postMessage('spinning');
      while (Date.now() < end) {}
    `, { eval: true });
    await new Promise((r) => w.once('message', r));
    const A = NativeUdp.open({ address: A_IP, port: 0 });
    const C = NativeUdp.open({ address: B_IP, port: 0 });
    A.setBusyPoll(1000);
    let got = 0;
    A.onReadable(() => { got += drain(A); });
    const before = busyPollStats()!;
    const sent = 10;
    for (let i = 0; i < sent; i++) {
      sendOne(C, { address: A_IP, port: A.port }, i);
      await sleep(2);
    }
    for (let i = 0; i < 200 && got < sent; i++) await sleep(10);
    const after = busyPollStats()!;
    A.close();
    C.close();
    await w.terminate();
    return { got, sent, spins: after.spins - before.spins, contended: after.contended - before.contended, yields: after.yields - before.yields };
  },

  /** The in-process exchange with busy-poll on (window 1000 µs) and off. */
  async order() {
    setupNs();
    const on = await orderOnce(1000);
    const off = await orderOnce(0);
    return { on, off };
  },

  /** Ping-pong with a worker thread's plain UDP echo: replies within the window are handled from the spin. */
  async echo(arg: { rounds: number }) {
    setupNs();
    const w = new Worker(`
      const dgram = require('node:dgram');
      const { parentPort } = require('node:worker_threads');
      const s = dgram.createSocket('udp4');
      s.on('message', (m, r) => s.send(m, r.port, r.address));
      s.bind(0, '${B_IP}', () => parentPort.postMessage(s.address().port));
      parentPort.on('message', () => s.close(() => process.exit(0)));
    `, { eval: true });
    const port: number = await new Promise((r) => w.once('message', r));
    const A = NativeUdp.open({ address: A_IP, port: 0 });
    A.setBusyPoll(1000);
    // wider bounds than the agent's for a loaded test machine: the echo has 50 ms to come back; no
    // yields, so no contention back-off (tested on its own below): on a busy machine the first yield
    // would stop the spinning for longer than the whole exchange takes
    loadAddon().busyPollConfigure(50_000, 200_000, undefined, false);
    const before = busyPollStats()!;
    let rounds = 0;
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${rounds} echoes in 10 s`)), 10_000);
      A.onReadable(() => {
        const n = drain(A);
        if (n === 0) return;
        rounds += n;
        if (rounds >= arg.rounds) { clearTimeout(timer); resolve(); return; }
        sendOne(A, { address: B_IP, port }, rounds);
      });
      sendOne(A, { address: B_IP, port }, 0);
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const after = busyPollStats()!;
    A.close();
    w.postMessage('stop');
    await new Promise((r) => w.once('exit', r));
    return {
      rounds, ms, hits: after.hits - before.hits, callbacks: after.callbacks - before.callbacks, spins: after.spins - before.spins,
      contended: after.contended - before.contended,
    };
  },

  /** CPU of an idle process with busy-poll on: before any packet, and for 1 s after one. */
  async idle() {
    setupNs();
    const A = NativeUdp.open({ address: A_IP, port: 0 });
    const C = NativeUdp.open({ address: B_IP, port: 0 });
    A.setBusyPoll(1000);
    let got = 0;
    A.onReadable(() => { got += drain(A); });
    await sleep(100);
    const c0 = cpuMs();
    await sleep(1000);
    const idleNoPacket = cpuMs() - c0;
    sendOne(C, { address: A_IP, port: A.port }, 5);
    const c1 = cpuMs();
    await sleep(1000);
    const idleAfterPacket = cpuMs() - c1;
    const s = busyPollStats()!;
    A.close();
    C.close();
    return { got, idleNoPacket, idleAfterPacket, spins: s.spins, spunUs: s.spunUs, polls: s.polls, turnUs: BUSY_POLL_TURN_US };
  },

  /** Callbacks run from the spin close their own handle and another member; a paused member is not called. */
  async close() {
    setupNs();
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    let A: NativeUdp | null = NativeUdp.open({ address: A_IP, port: 0 });
    let B: NativeUdp | null = NativeUdp.open({ address: B_IP, port: 0 });
    let P: NativeUdp | null = NativeUdp.open({ address: B_IP, port: 0 });
    const C = NativeUdp.open({ address: A_IP, port: 0 });
    const calls: string[] = [];
    for (const u of [A, B, P]) u.setBusyPoll(1000);
    const bPort = B.port;
    const pPort = P.port;
    P.onReadable(() => { calls.push('P'); drain(P!); });
    P.pause();
    A.onReadable(() => {
      if (drain(A!) === 0) return;
      calls.push('A');
      sendOne(A!, { address: B_IP, port: pPort }, 3); // P is ready but paused: never called
      sendOne(A!, { address: B_IP, port: bPort }, 2); // B becomes ready during A's window
    });
    B.onReadable(() => {
      calls.push('B');
      B!.close(); // its own handle, from the spin, before reading
      A!.close(); // and another member of the group
    });
    const before = busyPollStats()!;
    sendOne(C, { address: A_IP, port: A.port }, 1);
    for (let i = 0; i < 100 && !calls.includes('B'); i++) await sleep(10);
    const after = busyPollStats()!;
    // a member that closes itself from a libuv-delivered callback, then a spin with no member left
    const D = NativeUdp.open({ address: B_IP, port: 0 });
    D.setBusyPoll(1000);
    let dCalls = 0;
    D.onReadable(() => { dCalls++; drain(D); D.close(); });
    sendOne(C, { address: B_IP, port: D.port }, 4);
    for (let i = 0; i < 100 && dCalls === 0; i++) await sleep(10);
    // the closed handles' externals are collected (their finalizers leave nothing behind in the group)
    A = B = null;
    P.close();
    P = null;
    gc();
    await sleep(50);
    gc();
    await sleep(50);
    // the group still works: a new member's packet is read
    const E = NativeUdp.open({ address: A_IP, port: 0 });
    E.setBusyPoll(1000);
    let eGot = 0;
    E.onReadable(() => { eGot += drain(E); });
    sendOne(C, { address: A_IP, port: E.port }, 6);
    for (let i = 0; i < 100 && eGot === 0; i++) await sleep(10);
    E.close();
    C.close();
    return { calls, dCalls, eGot, fromSpin: after.callbacks - before.callbacks };
  },
};

if (!childMain(scenarios)) {
  const skip = nativeSkipReason();

  test('a packet ready during the window is handled from the spin, before the loop runs its check phase', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'order'));
    assert.deepEqual(r.on.order, ['A', 'B', 'immediate'], `busy-poll on: B from A's window (${JSON.stringify(r.on)})`);
    assert.ok(r.on.hits >= 1 && r.on.callbacks >= 1, JSON.stringify(r.on));
    assert.deepEqual(r.off.order, ['A', 'immediate', 'B'], `window 0: through libuv (${JSON.stringify(r.off)})`);
    assert.equal(r.off.hits, 0);
  });

  test('echoes from another thread that come back within the window are handled without a loop wake-up', { skip }, () => {
    const rounds = 200;
    const r = withNetns((ns) => runScenario(ns, __filename, 'echo', { rounds }, 30_000));
    assert.equal(r.rounds, rounds);
    assert.equal(r.contended, 0, 'no yields, no back-off');
    assert.ok(r.hits >= rounds / 2, `most echoes from the spin: ${JSON.stringify(r)}`);
    assert.ok(r.callbacks >= r.hits, JSON.stringify(r));
  });

  test('the spin stops: an idle process with busy-poll on uses ~no CPU, before and after a packet', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'idle'));
    assert.equal(r.got, 1);
    assert.ok(r.idleNoPacket < 100, `no packet, 1 s: ${r.idleNoPacket.toFixed(1)} ms of CPU`);
    assert.ok(r.idleAfterPacket < 100, `1 s after one packet: ${r.idleAfterPacket.toFixed(1)} ms of CPU`);
    assert.equal(r.spins, 1, 'one window, started by the packet');
    // wall-clock time: a window of 1 ms (capped at the 1 ms turn) plus whatever preemption on a busy machine added
    assert.ok(r.spunUs <= 20 * r.turnUs, `spun ${r.spunUs} µs for one window`);
  });

  test('closing handles from a callback run by the spin is safe; a paused member is not called', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'close'));
    assert.deepEqual(r.calls, ['A', 'B'], 'A (libuv), B (spin); not the paused P, nothing after the close');
    assert.ok(r.fromSpin >= 1, JSON.stringify(r));
    assert.equal(r.dCalls, 1, 'a member closed by its own libuv-run callback is not called again');
    assert.equal(r.eGot, 1, 'the group works after members were closed and collected');
  });

  test('a CPU-bound task on the same CPU: the window ends at the first long yield and spinning backs off', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'contended', null, 30_000));
    assert.equal(r.got, r.sent, JSON.stringify(r));
    assert.ok(r.contended >= 1, `a contended yield: ${JSON.stringify(r)}`);
    assert.ok(r.spins < r.sent, `windows skipped while backing off: ${JSON.stringify(r)}`);
  });

  test('busyPollConfigure refuses out-of-range windows and caps', { skip: nativeSkipReason() }, () => {
    const addon = loadAddon();
    assert.throws(() => addon.busyPollConfigure(100_001, 1000), /windowUs/);
    assert.throws(() => addon.busyPollConfigure(50, 0), /turnUs/);
    assert.throws(() => addon.busyPollConfigure(50, 1000, new BigUint64Array(2)), /BUSY_STAT_COUNT/);
  });
}

