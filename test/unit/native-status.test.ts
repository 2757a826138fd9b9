/**
 * Per-descriptor outcomes of the native send calls and device errors of the TAP reader thread,
 * against real devices in a fresh network namespace (raw addon calls):
 *  - udpSend / udpSendGso / tapWrite / tapWriteVnet fill `status` (0 sent, or the errno that
 *    skipped that descriptor) while the neighbours of a failed descriptor are sent;
 *  - a TAP deleted under a running reader thread: the reader callback gets the error (never a
 *    throw), readerStats()[2] keeps its errno.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { ERRNO, loadAddon } from '../../src/native/addon';
import { childMain, nativeSkipReason, runScenario, sh, withNetns } from './native-helpers';

const ADDR = 18;

function v4record(address: string, port: number): Buffer {
  const r = Buffer.alloc(ADDR);
  r[10] = 0xff;
  r[11] = 0xff;
  address.split('.').forEach((x, i) => (r[12 + i] = Number(x)));
  r.writeUInt16BE(port, 16);
  return r;
}

interface Batch { slab: Buffer; offs: Uint32Array; lens: Uint32Array; addrs: Buffer; src: Uint8Array; count: number }

function batch(items: Array<{ len: number; to: Buffer; src?: number; fill?: number }>): Batch {
  const total = items.reduce((a, x) => a + x.len, 0);
  const b: Batch = {
    slab: Buffer.alloc(total + 8), offs: new Uint32Array(items.length), lens: new Uint32Array(items.length),
    addrs: Buffer.alloc(items.length * ADDR), src: new Uint8Array(items.length), count: items.length,
  };
  let at = 1;
  items.forEach((x, i) => {
    b.slab.fill(x.fill ?? i, at, at + x.len);
    b.offs[i] = at;
    b.lens[i] = x.len;
    x.to.copy(b.addrs, i * ADDR);
    b.src[i] = x.src ?? 0;
    at += x.len;
  });
  return b;
}

/** Datagrams arriving at `sock` within `ms` (first byte of each). */
function collect(sock: dgram.Socket, want: number, ms = 3000): Promise<number[]> {
  return new Promise((resolve) => {
    const got: number[] = [];
    const done = () => { clearTimeout(t); sock.removeAllListeners('message'); resolve(got.sort((a, b) => a - b)); };
    const t = setTimeout(done, ms);
    sock.on('message', (m) => { got.push(m[0]); if (got.length >= want) done(); });
  });
}

function stats(): BigUint64Array {
  return new BigUint64Array(loadAddon().constants.STAT_COUNT);
}

function txPackets(dev: string): number {
  // Frames written into a TAP are received by the kernel: its rx counter.
  return Number(fs.readFileSync(`/sys/class/net/${dev}/statistics/rx_packets`, 'utf8'));
}

const scenarios = {
  /** udpSend: oversize (EMSGSIZE), no route (ENETUNREACH), bad source (EINVAL) among sent datagrams. */
  async udp(gso: boolean) {
    sh(`ip link set lo up
ip link add vxs0 type veth peer name vxs1
ip link set vxs0 mtu 1400 up
ip link set vxs1 up
ip addr add 198.18.9.1/24 dev vxs0
ip neigh add 198.18.9.9 lladdr 02:00:00:00:00:09 dev vxs0 nud permanent`);
    const a = loadAddon();
    const st = stats();
    const [h] = a.udpOpen(4, '198.18.9.1', 0, 1, 0, st);
    a.udpSetGso(h, gso);
    const far = v4record('198.18.9.9', 9); // leaves vxs0 (MTU 1400, DF): 1500 bytes do not fit
    const rx = dgram.createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '198.18.9.1', () => r()));
    const to = v4record('198.18.9.1', rx.address().port);
    const nowhere = v4record('198.19.250.1', 9); // no route in this namespace
    // Equal sizes around the failures, so that with UDP GSO they would be one run per destination.
    const b = batch([
      { len: 100, to }, { len: 100, to }, { len: 1500, to: far }, { len: 100, to }, { len: 100, to: nowhere },
      { len: 100, to }, { len: 100, to, src: 7 }, { len: 100, to }, { len: 100, to },
    ]);
    const status = new Int32Array(b.count).fill(-1);
    const got = collect(rx, 6);
    const n = a.udpSend(h, b.slab, b.offs, b.lens, b.addrs, b.src, b.count, status);
    const arrived = await got;
    rx.close();
    a.close(h);
    return { n, status: [...status], arrived, skipped: Number(st[a.constants.STAT_TX_SKIPPED]), emsgsize: Number(st[a.constants.STAT_TX_EMSGSIZE]) };
  },

  /** udpSendGso: an unsegmentable super-frame (EINVAL) between plain datagrams. */
  async udpGso() {
    sh(`ip link set lo up
ip link add vxs0 type veth peer name vxs1
ip link set vxs0 up
ip link set vxs1 up
ip addr add 198.18.9.1/24 dev vxs0`);
    const a = loadAddon();
    const st = stats();
    const [h] = a.udpOpen(4, '198.18.9.1', 0, 1, 0, st);
    const rx = dgram.createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '198.18.9.1', () => r()));
    const to = v4record('198.18.9.1', rx.address().port);
    const b = batch([{ len: 60, to }, { len: 200, to }, { len: 60, to }, { len: 2000, to }]);
    const gso = new Uint16Array(2 * b.count);
    gso[2] = a.constants.GSO_TCPV4; // descriptor 1 claims to be a TSO super-frame: its bytes are not TCP
    gso[3] = 1000;
    const status = new Int32Array(b.count).fill(-1);
    const got = collect(rx, 3);
    const n = a.udpSendGso(h, b.slab, b.offs, b.lens, b.addrs, b.src, gso, 8, b.count, status);
    const arrived = await got;
    rx.close();
    a.close(h);
    return { n, status: [...status], arrived, badTso: Number(st[a.constants.STAT_BAD_TSO]) };
  },

  /** tapWrite / tapWriteVnet: a runt frame (EINVAL) between valid ones; a down TAP (EIO) for all. */
  async tap(vnet: boolean) {
    const a = loadAddon();
    const st = stats();
    const [h, name] = a.tapOpen('vxst0', vnet ? a.constants.TAP_F_VNET_HDR : 0, st);
    sh(`ip link set ${name} up`);
    const frame = (fill: number, len = 60) => {
      const f = Buffer.alloc(len, fill);
      if (len < 14) return f; // a runt: shorter than an Ethernet header
      Buffer.from('ffffffffffff020000000001', 'hex').copy(f); // broadcast from a local MAC
      f.writeUInt16BE(0x88b5, 12); // local experimental EtherType: nobody answers
      return f;
    };
    const frames = [frame(1), frame(2, 5), frame(3), frame(4)];
    const slab = Buffer.concat(frames);
    const offs = new Uint32Array(frames.length);
    const lens = new Uint32Array(frames.map((f) => f.length));
    for (let i = 1; i < frames.length; i++) offs[i] = offs[i - 1] + lens[i - 1];
    const status = new Int32Array(frames.length).fill(-1);
    const before = txPackets(name);
    const n = vnet ? a.tapWriteVnet(h, slab, offs, lens, frames.length, 64, status) : a.tapWrite(h, slab, offs, lens, frames.length, status);
    const written = txPackets(name) - before;
    sh(`ip link set ${name} down`);
    const down = new Int32Array(frames.length).fill(-1);
    const n2 = vnet ? a.tapWriteVnet(h, slab, offs, lens, frames.length, 1, down) : a.tapWrite(h, slab, offs, lens, frames.length, down);
    // The status array is optional, and a short one is a RangeError.
    const n3 = vnet ? a.tapWriteVnet(h, slab, offs, lens, 1, 1) : a.tapWrite(h, slab, offs, lens, 1);
    assert.throws(() => a.tapWrite(h, slab, offs, lens, 4, new Int32Array(3)), { name: 'RangeError' });
    a.close(h);
    return { n, status: [...status], written, n2, down: [...down], n3 };
  },

  /** A TAP deleted under a running reader thread: the callback gets the error. */
  async readerGone() {
    const a = loadAddon();
    const st = stats();
    const [h, name] = a.tapOpen('vxst1', 0, st);
    sh(`ip link set ${name} up`);
    const SLOT = 2048;
    const ring = { slab: Buffer.alloc(2 * SLOT), lens: new Uint32Array(2), gso: new Uint16Array(4) };
    const events: Array<{ code?: string; errno?: number; syscall?: string }> = [];
    let threw: unknown = null;
    const gotErr = new Promise<void>((resolve) => {
      a.readerStart(h, ring.slab, SLOT, 0, 1, 2, ring.lens, ring.gso, (err?: Error) => {
        try {
          while (a.readerNext(h) >= 0) a.readerRelease(h);
        } catch (e) {
          threw = e;
        }
        if (err) {
          const e = err as Error & { code: string; errno: number; syscall: string };
          events.push({ code: e.code, errno: e.errno, syscall: e.syscall });
          resolve();
        }
      });
    });
    await new Promise((r) => setTimeout(r, 100)); // the thread waits in poll()
    assert.equal(a.readerStats(h)[2], 0, 'no error while the device exists');
    sh(`ip link del ${name}`);
    const timeout = new Promise<void>((r) => setTimeout(r, 5000));
    await Promise.race([gotErr, timeout]);
    const errno = a.readerStats(h)[2];
    a.readerStop(h);
    const afterStop = a.readerStats(h)[2];
    a.close(h);
    return { events, errno, afterStop, threw: threw === null ? null : String(threw) };
  },
};

if (!childMain(scenarios as unknown as Record<string, (arg: any) => Promise<unknown>>)) {
  const skip = nativeSkipReason();
  for (const gso of [false, true]) {
    test(`udpSend status (UDP GSO ${gso ? 'on' : 'off'}): EMSGSIZE, ENETUNREACH and EINVAL each on their own descriptor, the rest sent`, { skip }, () => {
      const r = withNetns((ns) => runScenario(ns, __filename, 'udp', gso));
      assert.equal(r.n, 9);
      assert.deepEqual(r.status, [0, 0, ERRNO.EMSGSIZE, 0, ERRNO.ENETUNREACH, 0, ERRNO.EINVAL, 0, 0]);
      assert.deepEqual(r.arrived, [0, 1, 3, 5, 7, 8]);
      assert.equal(r.skipped, 3);
      assert.equal(r.emsgsize, 1);
    });
  }
  test('udpSendGso status: an unsegmentable super-frame gets EINVAL, plain datagrams around it are sent', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'udpGso'));
    assert.equal(r.n, 4);
    assert.deepEqual(r.status, [0, ERRNO.EINVAL, 0, 0]);
    assert.deepEqual(r.arrived, [0, 2, 3]);
    assert.equal(r.badTso, 1);
  });
  for (const vnet of [false, true]) {
    test(`tapWrite${vnet ? 'Vnet' : ''} status: a runt frame gets EINVAL, its neighbours are written; a down TAP gives EIO to the others`, { skip }, () => {
      const r = withNetns((ns) => runScenario(ns, __filename, 'tap', vnet));
      assert.equal(r.n, 4);
      assert.deepEqual(r.status, [0, ERRNO.EINVAL, 0, 0]);
      assert.equal(r.written, 3);
      assert.equal(r.n2, 4);
      assert.deepEqual(r.down, [ERRNO.EIO, ERRNO.EINVAL, ERRNO.EIO, ERRNO.EIO]); // the runt is refused first
      assert.equal(r.n3, 1);
    });
  }
  test('TAP reader thread: a TAP deleted under it reaches the callback as an error (nothing thrown), readerStats keeps the errno', { skip }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'readerGone'));
    assert.equal(r.threw, null);
    assert.equal(r.events.length, 1, JSON.stringify(r.events));
    const e = r.events[0];
    assert.equal(e.syscall, 'readv');
    assert.ok(e.errno === ERRNO.EBADFD || e.errno === ERRNO.EIO, JSON.stringify(e));
    assert.equal(r.errno, e.errno);
    assert.equal(r.afterStop, e.errno);
  });
}
