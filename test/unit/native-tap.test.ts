/**
 * NativeTap over a real /dev/net/tun in a fresh network namespace: create vs attach to a persistent
 * device, batched read of a kernel-generated frame (ARP request) at a headroom, batched write of
 * frames the kernel answers (ARP replies read back), level-triggered readiness, per-descriptor
 * write errors skipped and counted, a frame longer than its slot cut and counted, and errors with
 * code/errno/syscall.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { NativeTap } from '../../src/dataplane/native-io';
import { linkExists } from '../../src/dataplane/netdev';
import { render as renderOffloads } from '../../lab/ethtool';
import { loadAddon } from '../../src/native/addon';
import { ERR_TAP_IO, ERR_TAP_OPEN, SystemError } from '../../src/errors';
import { childMain, nativeSkipReason, runScenario, sh, untilReadable, withNetns } from './native-helpers';

const SLOT = 2048;
const HEADROOM = 64;
const SLOTS = 8;

function macOf(name: string): string {
  return fs.readFileSync(`/sys/class/net/${name}/address`, 'utf8').trim();
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex').match(/../g)!.join(':');

/** An ARP request (Ethernet broadcast) from `mac`/`ip` asking who has `target`. */
function arpRequest(mac: number[], ip: number[], target: number[]): Buffer {
  return Buffer.from([
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...mac, 0x08, 0x06,
    0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, ...mac, ...ip, 0, 0, 0, 0, 0, 0, ...target,
  ]);
}

function rxBatch() {
  return {
    slab: Buffer.alloc(SLOT * SLOTS, 0xaa),
    slotSize: SLOT,
    headroom: HEADROOM,
    slots: SLOTS,
    lens: new Uint32Array(SLOTS),
    addrs: Buffer.alloc(0),
  };
}

const scenarios = {
  createAttach() {
    const t = NativeTap.open('vxtap0');
    assert.equal(t.created, true);
    assert.equal(t.name, 'vxtap0');
    assert.equal(hex(t.mac), macOf('vxtap0'));
    assert.ok(linkExists('vxtap0'));
    t.close();
    t.close(); // idempotent
    assert.equal(linkExists('vxtap0'), false, 'a created (non-persistent) TAP disappears on close');

    sh('ip tuntap add dev vxpers0 mode tap');
    const p = NativeTap.open('vxpers0');
    assert.equal(p.created, false);
    // IFF_TUN_EXCL on an existing device: EBUSY
    assert.throws(() => NativeTap.open('vxpers0', { exclusive: true }),
      (e: SystemError) => e.code === ERR_TAP_OPEN && e.errno === 'EBUSY' && e.syscall === 'ioctl(TUNSETIFF)');
    p.close();
    assert.ok(linkExists('vxpers0'), 'a persistent TAP survives close');

    // Multi-queue: a second open of the same name adds a queue; the device lives until the last closes.
    const m1 = NativeTap.open('vxmq0', { multiQueue: true });
    const m2 = NativeTap.open('vxmq0', { multiQueue: true });
    assert.equal(m1.created, true);
    assert.equal(m2.created, false);
    assert.throws(() => NativeTap.open('vxmq0'), (e: SystemError) => e.code === ERR_TAP_OPEN && e.errno === 'EINVAL');
    m1.close();
    assert.ok(linkExists('vxmq0'));
    m2.close();
    assert.equal(linkExists('vxmq0'), false);

    const q = NativeTap.open('vxq%d');
    assert.match(q.name, /^vxq\d+$/);
    assert.equal(q.created, true);
    q.close();
    return { persistentCreated: p.created, patternName: q.name };
  },

  async frames() {
    const t = NativeTap.open('vxtap1');
    sh('sysctl -qw net.ipv6.conf.vxtap1.disable_ipv6=1; ip addr add 198.18.5.1/24 dev vxtap1; ip link set vxtap1 up');
    const rx = rxBatch();
    // The kernel resolves 198.18.5.2 before sending a datagram there: an ARP request out of the TAP.
    const s = dgram.createSocket('udp4');
    await new Promise<void>((res, rej) => s.send('x', 9, '198.18.5.2', (e) => (e ? rej(e) : res())));
    const arp = await untilReadable(t, () => {
      const n = t.readBatch(rx);
      assert.ok(n <= SLOTS);
      for (let i = 0; i < n; i++) {
        const at = i * SLOT + HEADROOM;
        const f = rx.slab.subarray(at, at + rx.lens[i]);
        // Bytes in front of the frame (the headroom) are never written.
        assert.ok(rx.slab.subarray(i * SLOT, at).every((b) => b === 0xaa), 'headroom untouched');
        if (f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 1 && hex(f.subarray(38, 42)) === 'c6:12:05:02') {
          return Buffer.from(f);
        }
      }
      return undefined;
    }, 'the ARP request on the TAP');
    s.close();
    assert.equal(hex(arp.subarray(0, 6)), 'ff:ff:ff:ff:ff:ff');
    assert.equal(hex(arp.subarray(6, 12)), hex(t.mac));
    assert.equal(hex(arp.subarray(28, 32)), 'c6:12:05:01');

    // Write: a runt (skipped: EINVAL), then two ARP requests from two fake hosts at arbitrary offsets.
    const tx = {
      slab: Buffer.alloc(1024),
      offs: new Uint32Array([0, 100, 301]),
      lens: new Uint32Array(3),
      addrs: Buffer.alloc(0),
      srcIdx: new Uint8Array(0),
      status: new Int32Array(3),
      count: 3,
    };
    const r1 = arpRequest([2, 0, 0, 0, 0, 2], [198, 18, 5, 2], [198, 18, 5, 1]);
    const r2 = arpRequest([2, 0, 0, 0, 0, 3], [198, 18, 5, 3], [198, 18, 5, 1]);
    tx.lens[0] = 5;
    r1.copy(tx.slab, 100);
    tx.lens[1] = r1.length;
    r2.copy(tx.slab, 301);
    tx.lens[2] = r2.length;
    assert.equal(t.writeBatch(tx), 3, 'all three descriptors consumed');
    assert.equal(t.stats.sendSkipped, 1, 'the runt frame is skipped and counted');
    assert.equal(t.stats.lastSendErrno, 22 /* EINVAL */);

    // Replies, read one frame per callback (slots = 1): level-triggered readiness calls us again.
    const one = { ...rx, slots: 1 };
    const seen = new Set<string>();
    let callbacks = 0;
    await untilReadable(t, () => {
      callbacks++;
      const n = t.readBatch(one);
      assert.ok(n <= 1);
      if (n === 1) {
        const f = one.slab.subarray(HEADROOM, HEADROOM + one.lens[0]);
        if (f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 2) {
          assert.equal(hex(f.subarray(6, 12)), hex(t.mac));
          assert.equal(hex(f.subarray(28, 32)), 'c6:12:05:01');
          seen.add(hex(f.subarray(0, 6)));
        }
      }
      return seen.size === 2 ? true : undefined;
    }, 'two ARP replies');
    assert.deepEqual([...seen].sort(), ['02:00:00:00:00:02', '02:00:00:00:00:03']);

    // A frame longer than its slot is cut to the slot and counted.
    sh('ip neigh replace 198.18.5.9 lladdr 02:00:00:00:00:09 dev vxtap1 nud permanent');
    const s2 = dgram.createSocket('udp4');
    await new Promise<void>((res, rej) => s2.send(Buffer.alloc(1000, 7), 9, '198.18.5.9', (e) => (e ? rej(e) : res())));
    s2.close();
    const small = { ...rx, slotSize: 600 + HEADROOM, slots: 1 };
    const cut = await untilReadable(t, () => {
      const n = t.readBatch(small);
      if (n === 1 && small.slab.readUInt16BE(HEADROOM + 12) === 0x0800) return small.lens[0];
      return undefined;
    }, 'the 1042-byte frame');
    assert.equal(cut, 600);
    assert.equal(t.stats.recvTruncated, 1);
    t.close();
    return { arpLen: arp.length, replies: [...seen].sort(), callbacks };
  },

  vnet() {
    const addon = loadAddon();
    const t = NativeTap.open('vxtap3', { vnetHdr: true });
    assert.equal(t.vnetHdr, true);
    // TUNSETOFFLOAD took: the kernel now hands over checksum-partial TSO super-frames.
    const features = renderOffloads('vxtap3'); // `ethtool -k` through the addon's SIOCETHTOOL calls
    assert.match(features, /^tcp-segmentation-offload: on$/m);
    assert.match(features, /^tx-checksumming: on$/m);
    const rx = rxBatch();
    const gso = new Uint16Array(2 * SLOTS);
    assert.throws(() => t.readBatch(rx), { code: 'ERR_VXMESH_VNET' });
    assert.equal(t.readBatchVnet(rx, gso), 0);
    assert.throws(() => t.readBatchVnet(rx, new Uint16Array(3)), { code: 'ERR_OUT_OF_RANGE' });
    const plain = NativeTap.open('vxtap4');
    assert.equal(plain.vnetHdr, false);
    assert.throws(() => plain.readBatchVnet(rx, gso), { code: 'ERR_VXMESH_VNET' });
    assert.throws(() => plain.writeBatchVnet({ slab: rx.slab, offs: new Uint32Array(1), lens: new Uint32Array([60]), addrs: Buffer.alloc(0), srcIdx: new Uint8Array(0), status: new Int32Array(1), count: 1 }), { code: 'ERR_VXMESH_VNET' });
    assert.throws(() => addon.tapSetOffload((plain as unknown as { h: never }).h, addon.constants.TUN_F_CSUM), { code: 'ERR_VXMESH_VNET' });
    plain.close();
    t.close();
    return { tso: features.includes('tcp-segmentation-offload: on') };
  },

  errors() {
    const addon = loadAddon();
    const bad = (name: string, errno: string) =>
      assert.throws(() => NativeTap.open(name), (e: SystemError) => {
        assert.ok(e instanceof SystemError);
        assert.equal(e.code, ERR_TAP_OPEN);
        assert.equal(e.errno, errno);
        assert.equal(e.syscall, 'ioctl(TUNSETIFF)');
        assert.match(e.message, /ioctl\(TUNSETIFF\) failed: /);
        const cause = (e as { cause?: { errno?: number; code?: string } }).cause;
        assert.equal(typeof cause?.errno, 'number');
        assert.equal(cause?.code, errno);
        return true;
      });
    bad('bad/name', 'EINVAL');
    bad('abcdefghijklmnop', 'ENAMETOOLONG');
    sh('ip link add vxbr9 type bridge');
    bad('vxbr9', 'EINVAL'); // exists, but is not a TAP

    const t = NativeTap.open('vxtap2');
    const rx = rxBatch();
    assert.throws(() => t.readBatch({ ...rx, lens: new Uint32Array(2) }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => t.readBatch({ ...rx, headroom: SLOT }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => t.readBatch({ ...rx, slots: SLOTS + 1, lens: new Uint32Array(SLOTS + 1) }), { code: 'ERR_OUT_OF_RANGE' });
    const tx = { slab: Buffer.alloc(100), offs: new Uint32Array([90]), lens: new Uint32Array([20]), addrs: Buffer.alloc(0), srcIdx: new Uint8Array(0), status: new Int32Array(1), count: 1 };
    assert.throws(() => t.writeBatch(tx), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => t.writeBatch({ ...tx, count: 2 }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => addon.tapRead({} as never, rx.slab, SLOT, 0, 1, rx.lens), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.equal(t.readBatch(rx), 0, 'nothing to read on a down TAP: 0, no throw');
    t.close();
    assert.throws(() => t.readBatch(rx), (e: SystemError) => e.code === ERR_TAP_IO && e.errno === 'EBADF' && e.syscall === 'read');
    assert.throws(() => t.onReadable(() => {}), (e: SystemError) => e.code === ERR_TAP_IO && e.errno === 'EBADF');
    return { ok: true };
  },
};

/** The TAP reader thread (`underlay.tapThreads`): ring hand-over, a full ring waits, close joins it. */
async function readerScenario() {
  const t = NativeTap.open('vxtap3');
  sh('sysctl -qw net.ipv6.conf.vxtap3.disable_ipv6=1; ip addr add 198.18.6.1/24 dev vxtap3; ip link set vxtap3 up');
  const NS = 2;
  const ring = {
    slab: Buffer.alloc(NS * SLOT, 0xaa), slotSize: SLOT, headroom: HEADROOM, slots: 1, nslabs: NS,
    lens: new Uint32Array(NS), gso: new Uint16Array(2 * NS),
  };
  let calls = 0;
  t.startReader(ring, () => { calls++; });
  assert.equal(t.reading, true);
  assert.throws(() => t.startReader(ring, () => {}), /already running/);
  // Ten unresolved neighbours: ten ARP requests out of the TAP, one frame per batch (slots = 1).
  const s = dgram.createSocket('udp4');
  const targets = Array.from({ length: 10 }, (_, i) => 10 + i);
  for (const x of targets) await new Promise<void>((res, rej) => s.send('x', 9, `198.18.6.${x}`, (e) => (e ? rej(e) : res())));
  // Nothing released yet: the thread fills both slabs, then waits for one.
  const until = Date.now() + 5000;
  while ((t.readerStats().fullWaits === 0 || calls === 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.ok(t.readerStats().fullWaits >= 1, 'a full ring makes the thread wait');
  assert.ok(calls >= 1, 'the loop was notified');
  const seen: number[] = [];
  const end = Date.now() + 10_000;
  while (seen.length < targets.length && Date.now() < end) {
    const r = t.readerNext();
    if (r < 0) {
      await new Promise((res) => setTimeout(res, 10));
      continue;
    }
    const k = r >>> 16;
    const n = r & 0xffff;
    assert.ok(k < NS && n === 1, `batch ${k}/${n}`);
    const at = k * SLOT + HEADROOM;
    assert.ok(ring.slab.subarray(k * SLOT, at).every((b) => b === 0xaa), 'headroom untouched');
    const f = ring.slab.subarray(at, at + ring.lens[k]);
    if (f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 1) seen.push(f[41]);
    t.readerRelease();
  }
  assert.deepEqual([...new Set(seen)].sort((a, b) => a - b), targets, 'every ARP request came through the ring');
  // A wake-up from poll() needs a frame that arrives while the thread waits in it: keep sending
  // to new neighbours (and draining) until one did — the thread may have read everything so far
  // without waiting when it was slow to start.
  const wakeEnd = Date.now() + 10_000;
  for (let x = 100; t.readerStats().wakeups === 0 && Date.now() < wakeEnd; x = x >= 250 ? 100 : x + 1) {
    await new Promise<void>((res, rej) => s.send('x', 9, `198.18.6.${x}`, (e) => (e ? rej(e) : res())));
    await new Promise((r) => setTimeout(r, 50));
    while (t.readerNext() >= 0) t.readerRelease();
  }
  s.close();
  const stats = t.readerStats();
  assert.ok(stats.wakeups >= 1, 'the thread woke from poll() for a frame');
  t.close(); // joins the thread while it waits in poll()
  assert.deepEqual(t.readerStats(), { wakeups: 0, fullWaits: 0 });
  return { seen: seen.length, calls };
}

(scenarios as unknown as Record<string, () => Promise<unknown>>).reader = readerScenario;

/** queueDrops(): frames the kernel dropped because nobody read the TAP and its queue was full. */
async function queueDropsScenario() {
  const t = NativeTap.open('vxtap4');
  sh('sysctl -qw net.ipv6.conf.vxtap4.disable_ipv6=1; ip link set vxtap4 txqueuelen 4; ip addr add 198.18.7.1/24 dev vxtap4; ' +
    'ip link set vxtap4 up; ip neigh replace 198.18.7.2 lladdr 02:00:00:00:00:02 dev vxtap4');
  const before = t.queueDrops();
  assert.equal(typeof before, 'number');
  const s = dgram.createSocket('udp4');
  for (let i = 0; i < 50; i++) await new Promise<void>((res, rej) => s.send('x', 9, '198.18.7.2', (e) => (e ? rej(e) : res())));
  s.close();
  const after = t.queueDrops()!;
  assert.ok(after - before! >= 40, `50 datagrams into a 4-frame queue nobody reads: ${after - before!} dropped`);
  t.close();
  assert.equal(t.queueDrops(), null, 'a closed (removed) TAP has no counter');
  return { dropped: after - before! };
}
(scenarios as unknown as Record<string, () => Promise<unknown>>).queueDrops = queueDropsScenario;

/**
 * Latency reads (NativeTap.setLatencyReads, on in the data path): after a batch of exactly one
 * frame that ended on EAGAIN the next read asks for one frame only (no trailing EAGAIN read), the
 * one after it drains whatever waits behind; off, one call drains the queue again.
 */
async function latencyReadsScenario(): Promise<unknown> {
  const t = NativeTap.open('vxtap8');
  sh('sysctl -qw net.ipv6.conf.vxtap8.disable_ipv6=1; ip addr add 198.18.8.1/24 dev vxtap8; ip link set vxtap8 up; ' +
    'ip neigh replace 198.18.8.2 lladdr 02:00:00:00:00:08 dev vxtap8 nud permanent');
  const rx = rxBatch();
  const s = dgram.createSocket('udp4');
  const send = async (k: number) => {
    for (let i = 0; i < k; i++) await new Promise<void>((res, rej) => s.send(Buffer.from([i]), 9, '198.18.8.2', (e) => (e ? rej(e) : res())));
  };
  const drain = () => { while (t.readBatch(rx) > 0) { /* stale frames (IGMP/ND are off; nothing else expected) */ } };
  const frames = async (k: number) => {
    await send(k);
    // the datagrams are queued on the TAP by the time send() called back (the neighbour is permanent)
    const sizes: number[] = [];
    let got = 0;
    for (let tries = 0; got < k && tries < 200; tries++) {
      const n = t.readBatch(rx);
      if (n > 0) sizes.push(n);
      got += n;
      if (n === 0) await new Promise((r) => setTimeout(r, 5));
    }
    return sizes;
  };
  t.setLatencyReads(true);
  drain();
  const first = await frames(3); // mode drain: one call gets all three
  const single = await frames(1); // one frame, then EAGAIN
  const limited = await frames(3); // now one frame, then the other two in one call
  t.setLatencyReads(false);
  await frames(1);
  const off = await frames(3);
  s.close();
  t.close();
  return { first, single, limited, off };
}
(scenarios as unknown as Record<string, () => Promise<unknown>>).latencyReads = latencyReadsScenario;

if (!childMain(scenarios)) {
  const skip = nativeSkipReason();
  test('TAP: create vs attach to a persistent device, %d names, EXCL, multi-queue', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'createAttach'));
    assert.equal(r.persistentCreated, false);
    assert.match(r.patternName, /^vxq\d+$/);
  });
  test('TAP: batched read at a headroom, batched write, level-triggered readiness', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'frames'));
    assert.equal(r.arpLen, 42);
    assert.deepEqual(r.replies, ['02:00:00:00:00:02', '02:00:00:00:00:03']);
  });
  test('TAP with vnetHdr: offloads on; vnet and plain calls are not mixed up', { skip }, () => {
    withNetns((ns) => runScenario(ns, __filename, 'vnet'));
  });
  test('TAP reader thread: batches handed over through the ring, a full ring waits, close joins it', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'reader'));
    assert.ok(r.seen >= 10);
  });
  test('TAP: queueDrops() counts frames the kernel dropped in front of a TAP nobody reads', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'queueDrops'));
    assert.ok(r.dropped >= 40);
  });
  test('TAP latency reads: one frame after a one-frame batch, then a drain; off drains at once', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'latencyReads'));
    assert.deepEqual(r.first, [3]);
    assert.deepEqual(r.single, [1]);
    assert.equal(r.limited[0], 1, `after a one-frame batch the next read asks for one frame: ${r.limited}`);
    assert.deepEqual(r.limited, [1, 2], 'the call after a one-frame call drains');
    assert.deepEqual(r.off, [3]);
  });
  test('TAP: errors carry code, errno and syscall; bad batches are RangeErrors', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'errors'));
    assert.equal(r.ok, true);
  });
}
