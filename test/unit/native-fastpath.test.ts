/**
 * The fast path end to end over real devices: two namespaces joined by a minimal userspace tunnel
 * built from the addon (TAP → 8-byte prefix → UDP → strip → TAP, both directions) carry a TCP
 * transfer of random data whose sha256 is compared at both ends. Modes: `plain` (phase-1 TAPs and
 * sendBatch), `gso` (IFF_VNET_HDR + TSO offloads, segmentation + UDP GSO, coalescing on write),
 * `gro` (the same plus UDP GRO receive, split back per datagram), `runs` (UDP GRO receive with GRO
 * runs: a buffer's run of one flow received as one merged frame, written with writeBatchGso) and
 * `fallback` (UDP GSO off: one datagram per segment; no coalescing on write).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import { NativeTap, NativeUdp, VNET_MAX_FRAME } from '../../src/dataplane/native-io';
import { GRO_RUN_AREA } from '../../src/dataplane/seams';
import { childMain, nativeSkipReason, nsSh, runScenario, sh, uniqueNetnsName } from './native-helpers';
import { spawnSync } from 'node:child_process';

const ADDR = 18;
const BYTES = 16 * 1024 * 1024;

type Mode = 'plain' | 'gso' | 'gro' | 'runs' | 'fallback';

/** Frames/datagrams moved by the pumps (debug output only). */
const moved: Record<string, number> = {};

/** One direction of the tunnel: TAP `from` → UDP `tx` → (kernel) → UDP `rx` → TAP `to`. */
function pump(from: NativeTap, tx: NativeUdp, rx: NativeUdp, to: NativeTap, mode: Mode): void {
  const vnet = mode !== 'plain';
  const HEAD = 64;
  const slots = vnet ? 16 : 64;
  const slotSize = HEAD + (vnet ? VNET_MAX_FRAME : 2048);
  const rb = { slab: Buffer.alloc(slots * slotSize), slotSize, headroom: HEAD, slots, lens: new Uint32Array(slots), addrs: Buffer.alloc(0) };
  const gso = new Uint16Array(2 * slots);
  const dst = Buffer.alloc(ADDR);
  dst[10] = dst[11] = 0xff;
  Buffer.from(rx.address.split('.').map(Number)).copy(dst, 12);
  dst.writeUInt16BE(rx.port, 16);
  const tb = {
    slab: rb.slab, offs: new Uint32Array(slots), lens: new Uint32Array(slots), addrs: Buffer.alloc(slots * ADDR),
    srcIdx: new Uint8Array(slots), status: new Int32Array(slots), count: 0,
  };
  for (let i = 0; i < slots; i++) dst.copy(tb.addrs, i * ADDR);
  from.onReadable(() => {
    const n = vnet ? from.readBatchVnet(rb, gso) : from.readBatch(rb);
    for (let i = 0; i < n; i++) {
      const at = i * slotSize + HEAD - 8;
      rb.slab.writeUInt32BE(0x08000000, at); // a VXLAN-like prefix, stripped on the other side
      rb.slab.writeUInt32BE(42 << 8, at + 4);
      tb.offs[i] = at;
      tb.lens[i] = rb.lens[i] + 8;
    }
    tb.count = n;
    moved[`${from.name}>`] = (moved[`${from.name}>`] ?? 0) + n;
    if (n) vnet ? tx.sendBatchGso(tb, gso, 8) : tx.sendBatch(tb);
  });
  const RS = 64;
  const rr = { slab: Buffer.alloc(RS * 2048 + GRO_RUN_AREA), slotSize: 2048, headroom: 0, slots: RS, lens: new Uint32Array(RS), addrs: Buffer.alloc(RS * ADDR) };
  const runs = { offs: new Uint32Array(RS), gso: new Uint16Array(2 * RS), segs: new Uint16Array(RS), wire: new Uint32Array(RS), superOff: RS * 2048, maxFrame: 0 };
  const wb = { slab: rr.slab, offs: new Uint32Array(RS), lens: new Uint32Array(RS), addrs: Buffer.alloc(0), srcIdx: new Uint8Array(0), status: new Int32Array(RS), count: 0 };
  const wgso = new Uint16Array(2 * RS);
  rx.onReadable(() => {
    const n = mode === 'runs' ? rx.recvBatchRuns(rr, runs) : rx.recvBatch(rr);
    let c = 0;
    for (let i = 0; i < n; i++) {
      const off = mode === 'runs' ? runs.offs[i] : i * 2048;
      if (rr.lens[i] < 8 + 14 || rr.slab.readUInt32BE(off) !== 0x08000000) continue;
      wb.offs[c] = off + 8;
      wb.lens[c] = rr.lens[i] - 8;
      wgso[2 * c] = mode === 'runs' && runs.segs[i] > 1 ? runs.gso[2 * i] : 0;
      wgso[2 * c + 1] = runs.gso[2 * i + 1];
      c++;
    }
    wb.count = c;
    moved[`>${to.name}`] = (moved[`>${to.name}`] ?? 0) + c;
    if (c) mode === 'fallback' ? to.writeBatchVnet(wb, 1) : mode === 'runs' ? to.writeBatchGso(wb, wgso) : to.writeBatch(wb);
  });
}

const SERVER = `
const net = require('net'), crypto = require('crypto');
const srv = net.createServer((s) => {
  const h = crypto.createHash('sha256'); let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => { process.stdout.write(JSON.stringify({ n, sha: h.digest('hex') }) + '\\n'); s.end(); srv.close(); });
});
srv.listen(5001, process.argv[1], () => process.stdout.write('listening\\n'));
setTimeout(() => process.exit(3), 60000).unref();
`;

const scenarios = {
  async transfer(arg: { ns2: string; mode: Mode; inner6?: boolean }) {
    const { ns2, mode } = arg;
    const inner6 = !!arg.inner6;
    const serverAddr = inner6 ? '2001:2:0:20::2' : '198.18.20.2';
    const vnet = mode !== 'plain';
    sh(`ip addr add 198.18.21.1/32 dev lo; ip addr add 198.18.21.2/32 dev lo`);
    const a = NativeTap.open('vxfa', { vnetHdr: vnet });
    const b = NativeTap.open('vxfb', { vnetHdr: vnet });
    const addrA = inner6 ? 'ip -6 addr add 2001:2:0:20::1/64 dev vxfa nodad' : 'sysctl -qw net.ipv6.conf.vxfa.disable_ipv6=1; ip addr add 198.18.20.1/24 dev vxfa';
    const addrB = inner6 ? 'ip -6 addr add 2001:2:0:20::2/64 dev vxfb nodad' : 'sysctl -qw net.ipv6.conf.vxfb.disable_ipv6=1; ip addr add 198.18.20.2/24 dev vxfb';
    sh(`ip link set vxfb netns ${ns2}
${addrA}; ip link set vxfa up`);
    nsSh(ns2, `ip link set lo up; ${addrB}; ip link set vxfb up`);
    const ua = NativeUdp.open({ address: '198.18.21.1', port: 0 });
    const ub = NativeUdp.open({ address: '198.18.21.2', port: 0 });
    if (mode === 'fallback') {
      ua.setGso(false);
      ub.setGso(false);
    }
    if (mode === 'gro' || mode === 'runs') {
      ua.setGro(true);
      ub.setGro(true);
    }
    pump(a, ua, ub, b, mode);
    pump(b, ub, ua, a, mode);

    const server = spawn('ip', ['netns', 'exec', ns2, process.execPath, '-e', SERVER, serverAddr], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      const result = new Promise<{ n: number; sha: string }>((resolve, reject) => {
        server.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          const line = out.split('\n').find((l) => l.startsWith('{'));
          if (line) resolve(JSON.parse(line));
        });
        server.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
      });
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('server did not start')), 20000);
        server.stdout.on('data', () => { if (out.includes('listening')) { clearTimeout(t); resolve(); } });
      });
      const data = crypto.randomBytes(BYTES);
      const sha = crypto.createHash('sha256').update(data).digest('hex');
      const t0 = process.hrtime.bigint();
      const sock = net.connect(5001, serverAddr);
      sock.on('error', () => {});
      sock.end(data);
      const timer = setTimeout(() => server.kill(), 60000);
      const dbg = process.env.VXMESH_DEBUG
        ? setInterval(() => process.stderr.write(`${JSON.stringify({ moved, a: [a.rawStats], b: [b.rawStats], ua: [ua.rawStats], ub: [ub.rawStats] }, (_k, v) => (typeof v === 'bigint' ? Number(v) : v))}\n`), 1000)
        : null;
      const got = await result;
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      clearTimeout(timer);
      if (dbg) clearInterval(dbg);
      sock.destroy();
      assert.equal(got.n, BYTES);
      assert.equal(got.sha, sha, 'sha256 of the received data');
      const st = {
        segments: ua.stats.segments, gsoSends: ua.stats.gsoSends, gsoFallback: ua.stats.gsoFallback, badTso: ua.stats.badTso,
        coalesced: b.stats.coalesced, gsoWrites: b.stats.gsoWrites, badVnet: a.stats.badVnet, gso: ua.gso,
        groBuffers: ub.stats.groBuffers, groRuns: ub.stats.groRuns + ua.stats.groRuns,
        tapSkipped: a.stats.sendSkipped + b.stats.sendSkipped, tapErrno: Math.max(a.stats.lastSendErrno, b.stats.lastSendErrno),
        tapEagain: a.stats.sendEagain + b.stats.sendEagain,
      };
      // Throughput is informational only (tests assert behaviour, never timings).
      return { n: got.n, sha: got.sha === sha, mbitPerS: Math.round((BYTES * 8) / seconds / 1e6), ...st };
    } finally {
      server.kill();
      a.close();
      b.close();
      ua.close();
      ub.close();
    }
  },
};

if (!childMain(scenarios)) {
  const skip = nativeSkipReason();
  const cases: Array<[Mode, boolean]> = [['plain', false], ['gso', false], ['gro', false], ['runs', false], ['fallback', false], ['gso', true],
    ['runs', true], ['fallback', true]];
  for (const [mode, inner6] of cases) {
    test(`fast path end to end (${mode}, inner IPv${inner6 ? 6 : 4}): 16 MiB over TCP through TAP/UDP, sha256 equal`, { skip }, () => {
      const ns1 = uniqueNetnsName();
      const ns2 = uniqueNetnsName();
      spawnSync('ip', ['netns', 'add', ns1]);
      spawnSync('ip', ['netns', 'add', ns2]);
      try {
        nsSh(ns1, 'ip link set lo up');
        const r = runScenario(ns1, __filename, 'transfer', { ns2, mode, inner6 }, 90_000);
        if (process.env.VXMESH_DEBUG) console.log(JSON.stringify(r));
        assert.equal(r.n, BYTES);
        assert.equal(r.sha, true);
        assert.equal(r.badTso, 0);
        assert.equal(r.badVnet, 0);
        if (mode === 'runs') {
          assert.ok(r.segments > 0, 'super-frames were segmented');
          if (r.gso) assert.ok(r.groRuns > 0 && r.gsoWrites > 0, 'GRO runs were received as one descriptor and written as GSO frames');
          else assert.equal(r.groRuns, 0);
        } else if (mode === 'gso' || mode === 'gro') {
          assert.ok(r.segments > 0, 'super-frames were segmented');
          if (r.gso) assert.ok(r.gsoSends > 0, 'UDP GSO used');
          assert.ok(r.gsoWrites > 0 && r.coalesced > 0, 'segments were coalesced on the receiving TAP');
          if (mode === 'gro' && r.gso) assert.ok(r.groBuffers > 0, 'UDP GRO buffers were received and split');
          if (mode === 'gso') assert.equal(r.groBuffers, 0);
          assert.equal(r.groRuns, 0, 'no runs without recvBatchRuns');
        } else if (mode === 'fallback') {
          assert.ok(r.segments > 0);
          assert.equal(r.gsoSends, 0);
          assert.ok(r.gsoFallback > 0);
          assert.equal(r.gsoWrites, 0);
        } else {
          assert.equal(r.segments, 0);
        }
      } finally {
        spawnSync('ip', ['netns', 'del', ns1]);
        spawnSync('ip', ['netns', 'del', ns2]);
      }
    });
  }
}
