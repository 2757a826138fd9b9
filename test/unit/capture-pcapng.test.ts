/**
 * Issue 16 item 2: the pcapng encoder, checked against tshark (Debian's 4.0): comments, direction
 * flags, drop counts, captured vs original length, interface names and statistics; a stream cut at
 * block boundaries (what `vxmesh capture` writes when interrupted) is still a valid file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import {
  BT_EPB, BT_SHB, BlockSplitter, EPB_INBOUND, EPB_OUTBOUND, blockType, enhancedPacket, epbDropCount, interfaceDescription,
  interfaceStatistics, sectionHeader,
} from '../../src/capture/pcapng';
import { datagramFrame, describeFrame } from '../../src/capture/render';
import { DIR_RX, KIND_DATAGRAM } from '../../src/capture/ring';
import { endpointToRecord } from '../../src/dataplane/addr';
import { frame, cmac } from './dp-lab';

const hasTshark = (() => { try { execFileSync('tshark', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

function tshark(file: string, fields: string[]): string[][] {
  const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=f', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.trim().split('\n').filter((l) => l !== '').map((l) => l.split('|'));
}

const dirs: string[] = [];
after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });
function tmp(name: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'capture-pcapng-'));
  dirs.push(d);
  return path.join(d, name);
}

test('blocks are 32-bit aligned and self-delimiting; BlockSplitter cuts any chunking at block boundaries', () => {
  const blocks = [sectionHeader(), interfaceDescription({ snapLen: 256, name: 'x' }), enhancedPacket(0, 1e15, Buffer.alloc(13, 1), 13, { comment: 'abc' }),
    enhancedPacket(0, 1e15 + 1, Buffer.alloc(3), 60, { dropCount: 7 })];
  for (const b of blocks) {
    assert.equal(b.length % 4, 0);
    assert.equal(b.readUInt32LE(4), b.length);
    assert.equal(b.readUInt32LE(b.length - 4), b.length);
  }
  assert.equal(epbDropCount(blocks[3]), 7);
  assert.equal(epbDropCount(blocks[2]), 0);
  const all = Buffer.concat(blocks);
  for (const step of [1, 5, 17, all.length]) {
    const s = new BlockSplitter();
    const got: Buffer[] = [];
    for (let o = 0; o < all.length; o += step) got.push(...s.push(all.subarray(o, o + step)));
    assert.equal(got.length, blocks.length);
    assert.equal(s.pending, 0);
    assert.deepEqual(got.map(blockType), [BT_SHB, 1, BT_EPB, BT_EPB]);
  }
  const s = new BlockSplitter();
  assert.throws(() => s.push(Buffer.from([1, 0, 0, 0, 7, 0, 0, 0])), /block length 7/);
});

test('tshark reads the comments, direction, drop count, lengths and interface', { skip: !hasTshark && 'tshark not installed' }, () => {
  const f1 = frame(cmac(1, 1), cmac(0, 1), 100);
  const t0 = Date.UTC(2026, 11, 2, 1, 0, 0) * 1000;
  const file = tmp('a.pcapng');
  fs.writeFileSync(file, Buffer.concat([
    sectionHeader(),
    interfaceDescription({ snapLen: 64, name: 'vxmesh-drops:blue', description: 'drops' }),
    enhancedPacket(0, t0, f1.subarray(0, 64), f1.length, { comment: 'vxmesh drop: reason=oversize_frame dir=rx network=blue peer=h2', direction: EPB_INBOUND }),
    enhancedPacket(0, t0 + 1500, f1, f1.length, { comment: 'vxmesh: sent to peer=h3 — ünïcode', direction: EPB_OUTBOUND, dropCount: 3 }),
    interfaceStatistics(0, t0 + 2000, 2, 3),
  ]));
  const rows = tshark(file, ['frame.comment', 'frame.len', 'frame.cap_len', 'frame.packet_flags_direction', 'frame.drop_count', 'frame.interface_name', 'udp.dstport', 'frame.time_epoch']);
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[0].slice(0, 4), ['vxmesh drop: reason=oversize_frame dir=rx network=blue peer=h2', String(f1.length), '64', '0x00000001']);
  assert.equal(rows[0][5], 'vxmesh-drops:blue');
  assert.deepEqual(rows[1].slice(0, 5), ['vxmesh: sent to peer=h3 — ünïcode', String(f1.length), String(f1.length), '0x00000002', '3']);
  assert.equal(rows[1][6], '2000');
  assert.equal(Number(rows[1][7]).toFixed(4), ((t0 + 1500) / 1e6).toFixed(4));
});

test('a dropped VXLAN datagram is written inside Ethernet/IP/UDP headers, so tshark decodes its VXLAN header', { skip: !hasTshark && 'tshark not installed' }, () => {
  const inner = frame(cmac(1, 1), cmac(0, 1), 10);
  const vx = Buffer.concat([Buffer.from([0x08, 0, 0, 0, 0, 0x03, 0xe7, 0]), inner]); // VNI 999
  const addr = endpointToRecord({ address: '198.18.0.9', port: 40000, family: 4 });
  const [data, orig] = datagramFrame({ time: 0, dir: DIR_RX, kind: KIND_DATAGRAM, reason: 3, origLen: vx.length, data: vx, addr }, 4789);
  assert.equal(orig, 14 + 20 + 8 + vx.length);
  const file = tmp('b.pcapng');
  fs.writeFileSync(file, Buffer.concat([sectionHeader(), interfaceDescription({ snapLen: 512, name: 'x' }), enhancedPacket(0, 1e15, data, orig, { comment: 'unknown_vni' })]));
  const rows = tshark(file, ['ip.src', 'udp.srcport', 'udp.dstport', 'vxlan.vni', 'ip.checksum.status']);
  assert.deepEqual(rows[0].slice(0, 4), ['198.18.0.9', '40000', '4789', '999']);
  const v6 = endpointToRecord({ address: '2001:2::9', port: 40000, family: 6 });
  const [d6, o6] = datagramFrame({ time: 0, dir: DIR_RX, kind: KIND_DATAGRAM, reason: 3, origLen: vx.length, data: vx, addr: v6 }, 4789);
  fs.writeFileSync(file, Buffer.concat([sectionHeader(), interfaceDescription({ snapLen: 512, name: 'x' }), enhancedPacket(0, 1e15, d6, o6)]));
  assert.deepEqual(tshark(file, ['ipv6.src', 'vxlan.vni'])[0], ['2001:2::9', '999']);
});

test('describeFrame names the flow of an inner frame', () => {
  assert.equal(describeFrame(frame(cmac(1, 1), cmac(0, 1), 4)), '02:00:00:00:00:01 > 02:00:00:00:01:01 198.19.0.1 > 198.19.0.2 udp 1000 > 2000');
  assert.equal(describeFrame(Buffer.alloc(5)), '5-byte runt');
});
