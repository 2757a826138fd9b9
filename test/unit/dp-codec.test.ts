/** Codecs: address records, Ethernet helpers, VXLAN header write/validate, flow hash. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ADDR_LEN, endpointToRecord, formatIPv6, parseIPv6Into, peerKeyOf, peerKeyOfEndpoint, recordPort, recordToEndpoint,
} from '../../src/dataplane/addr';
import {
  ETHERTYPE_IPV4, isGroupMac, isZeroMac, l2HeaderLen, macHi, macLo, macToString, parseMac, payloadEthertype, readMac,
  writeEthHeader, writeMac,
} from '../../src/dataplane/ethernet';
import { flowHash, pickSource } from '../../src/dataplane/flowhash';
import {
  VXLAN_NO_I_FLAG, VXLAN_OK, VXLAN_RESERVED_BITS, VXLAN_RESERVED_BIT_POSITIONS, VXLAN_TRUNCATED, vxlanCheck, vxlanVni,
  writeVxlanHeader,
} from '../../src/dataplane/vxlan';

describe('addr records', () => {
  it('round-trips IPv4 as v4-mapped with the port big-endian', () => {
    const r = endpointToRecord({ address: '198.18.0.7', port: 4789, family: 4 });
    assert.equal(r.length, ADDR_LEN);
    assert.equal(r.subarray(0, 16).toString('hex'), '00000000000000000000ffffc6120007');
    assert.equal(recordPort(r, 0), 4789);
    assert.deepEqual(recordToEndpoint(r, 0), { address: '198.18.0.7', port: 4789, family: 4 });
  });

  it('round-trips IPv6 in canonical RFC 5952 form', () => {
    for (const [input, canon] of [
      ['2001:2:0:0:0:0:0:1', '2001:2::1'],
      ['2001:0002::0001', '2001:2::1'],
      ['::', '::'],
      ['::1', '::1'],
      ['fe80::1:0:0:1', 'fe80::1:0:0:1'],
      ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
      ['64:ff9b::198.18.0.1', '64:ff9b::c612:1'],
    ]) {
      const r = endpointToRecord({ address: input, port: 1, family: 6 });
      assert.equal(recordToEndpoint(r, 0).address, canon, input);
    }
  });

  it('rejects invalid addresses', () => {
    const b = new Uint8Array(16);
    for (const bad of ['1:::2', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '1.2.3.4::', ':1::2', '1::2::3']) {
      assert.equal(parseIPv6Into(bad, b, 0), false, bad);
    }
    assert.throws(() => endpointToRecord({ address: '300.1.1.1', port: 1, family: 4 }), TypeError);
    assert.throws(() => endpointToRecord({ address: '1.2.3.4', port: 70000, family: 4 }), TypeError);
  });

  it('peer keys: a number for IPv4 (port ignored), a string for IPv6', () => {
    const a = endpointToRecord({ address: '198.18.0.7', port: 4789, family: 4 });
    const b = endpointToRecord({ address: '198.18.0.7', port: 50000, family: 4 });
    assert.equal(typeof peerKeyOf(a, 0), 'number');
    assert.equal(peerKeyOf(a, 0), 0xc6120007);
    assert.equal(peerKeyOf(a, 0), peerKeyOf(b, 0));
    const c = endpointToRecord({ address: '2001:2::1', port: 4789, family: 6 });
    assert.equal(typeof peerKeyOf(c, 0), 'string');
    assert.equal(peerKeyOfEndpoint({ address: '2001:2::1', port: 1, family: 6 }), peerKeyOf(c, 0));
    const buf = new Uint8Array(16);
    assert.ok(parseIPv6Into('2001:2::1', buf, 0));
    assert.equal(formatIPv6(buf, 0), '2001:2::1');
  });
});

describe('ethernet', () => {
  it('MACs as numbers and halves', () => {
    const b = Buffer.alloc(20);
    writeMac(b, 2, parseMac('02:42:c6:12:00:0a'));
    assert.equal(b.subarray(2, 8).toString('hex'), '0242c612000a');
    assert.equal(macHi(b, 2), 0x0242);
    assert.equal(macLo(b, 2), 0xc612000a);
    assert.equal(readMac(b, 2), 0x0242c612000a);
    assert.equal(macToString(readMac(b, 2)), '02:42:c6:12:00:0a');
    assert.equal(parseMac('ff:ff:ff:ff:ff:ff'), 0xffffffffffff);
    assert.equal(parseMac('zz:ff:ff:ff:ff:ff'), -1);
    assert.equal(parseMac('ff:ff:ff:ff:ff'), -1);
  });

  it('group bit and zero MAC', () => {
    const b = Buffer.from('ffffffffffff01005e000001333300000001000000000000020000000001', 'hex');
    assert.ok(isGroupMac(b, 0));
    assert.ok(isGroupMac(b, 6));
    assert.ok(isGroupMac(b, 12));
    assert.ok(isZeroMac(b, 18));
    assert.ok(!isGroupMac(b, 24));
    assert.ok(!isZeroMac(b, 24));
  });

  it('EtherType behind an optional VLAN tag', () => {
    const f = Buffer.alloc(64);
    writeEthHeader(f, 0, 0x020000000002, 0x020000000001, ETHERTYPE_IPV4);
    assert.equal(l2HeaderLen(f, 0, 64), 14);
    assert.equal(payloadEthertype(f, 0, 64), 0x0800);
    writeEthHeader(f, 0, 0x020000000002, 0x020000000001, 0x8100);
    f.writeUInt16BE(0x0064, 14);
    f.writeUInt16BE(0x86dd, 16);
    assert.equal(l2HeaderLen(f, 0, 64), 18);
    assert.equal(payloadEthertype(f, 0, 64), 0x86dd);
    assert.equal(l2HeaderLen(f, 0, 16), -1);
    assert.equal(l2HeaderLen(f, 0, 13), -1);
  });
});

describe('vxlan header', () => {
  it('writes flags 0x08 and the VNI, reserved zero (Linux wire format)', () => {
    const b = Buffer.alloc(20, 0xee);
    writeVxlanHeader(b, 4, 0x123456);
    assert.equal(b.subarray(4, 12).toString('hex'), '0800000012345600');
    assert.equal(b[3], 0xee);
    assert.equal(b[12], 0xee);
    assert.equal(vxlanCheck(b, 4, 8), VXLAN_OK);
    assert.equal(vxlanVni(b, 4), 0x123456);
    writeVxlanHeader(b, 0, 42);
    assert.equal(b.subarray(0, 8).toString('hex'), '080000000000' + '2a00');
  });

  it('truncated below 8 bytes, for every length 0..7', () => {
    const b = Buffer.alloc(8);
    writeVxlanHeader(b, 0, 1);
    for (let len = 0; len < 8; len++) assert.equal(vxlanCheck(b, 0, len), VXLAN_TRUNCATED);
  });

  it('no_i_flag when the I bit is clear (checked before reserved bits, as the kernel does)', () => {
    const b = Buffer.alloc(8);
    assert.equal(vxlanCheck(b, 0, 8), VXLAN_NO_I_FLAG);
    b[0] = 0x80;
    b[7] = 1;
    assert.equal(vxlanCheck(b, 0, 8), VXLAN_NO_I_FLAG);
  });

  it('each of the 39 reserved bits set alone → reserved_bits', () => {
    assert.equal(VXLAN_RESERVED_BIT_POSITIONS.length, 39);
    const seen = new Set<string>();
    for (const [byte, mask] of VXLAN_RESERVED_BIT_POSITIONS) {
      seen.add(`${byte}/${mask}`);
      const b = Buffer.alloc(8);
      writeVxlanHeader(b, 0, 42);
      b[byte] |= mask;
      assert.equal(vxlanCheck(b, 0, 8), VXLAN_RESERVED_BITS, `byte ${byte} mask ${mask}`);
    }
    assert.equal(seen.size, 39);
    // VNI bits are not reserved
    for (let byte = 4; byte <= 6; byte++) for (let bit = 0; bit < 8; bit++) {
      const b = Buffer.alloc(8);
      writeVxlanHeader(b, 0, 0);
      b[byte] = 1 << bit;
      assert.equal(vxlanCheck(b, 0, 8), VXLAN_OK);
    }
  });
});

function ipv4Udp(srcPort: number, dstPort: number, opts: { frag?: number; proto?: number; src?: number } = {}): Buffer {
  const f = Buffer.alloc(14 + 20 + 8 + 10);
  writeEthHeader(f, 0, 0x020000000002, 0x020000000001, ETHERTYPE_IPV4);
  f[14] = 0x45;
  f.writeUInt16BE(20 + 8 + 10, 16);
  f.writeUInt16BE(opts.frag ?? 0, 20);
  f[22] = 64;
  f[23] = opts.proto ?? 17;
  f.writeUInt32BE(opts.src ?? 0xc6120101, 26);
  f.writeUInt32BE(0xc6120202, 30);
  f.writeUInt16BE(srcPort, 34);
  f.writeUInt16BE(dstPort, 36);
  return f;
}

describe('flow hash', () => {
  it('is stable per flow and independent of payload and length', () => {
    const a = ipv4Udp(1000, 2000);
    const b = Buffer.concat([ipv4Udp(1000, 2000), Buffer.alloc(100, 7)]);
    b.writeUInt16BE(20 + 8 + 110, 16);
    assert.equal(flowHash(a, 0, a.length), flowHash(b, 0, b.length));
    a[50] ^= 0xff; // payload
    assert.equal(flowHash(a, 0, a.length), flowHash(b, 0, b.length));
  });

  it('differs across ports, addresses and protocol and spreads flows over sockets', () => {
    const base = flowHash(ipv4Udp(1000, 2000), 0, 52);
    assert.notEqual(flowHash(ipv4Udp(1001, 2000), 0, 52), base);
    assert.notEqual(flowHash(ipv4Udp(1000, 2001), 0, 52), base);
    assert.notEqual(flowHash(ipv4Udp(1000, 2000, { src: 0xc6120103 }), 0, 52), base);
    assert.notEqual(flowHash(ipv4Udp(1000, 2000, { proto: 6 }), 0, 52), base);
    const used = new Set<number>();
    for (let p = 0; p < 200; p++) used.add(pickSource(ipv4Udp(10000 + p, 80), 0, 52, 8));
    assert.equal(used.size, 8);
    assert.equal(pickSource(ipv4Udp(1, 2), 0, 52, 1), 0);
  });

  it('ignores ports on IPv4 fragments (a fragmented flow stays on one path)', () => {
    const h1 = flowHash(ipv4Udp(1000, 2000, { frag: 0x2000 }), 0, 52); // MF
    const h2 = flowHash(ipv4Udp(3000, 4000, { frag: 0x0010 }), 0, 52); // later fragment: "ports" are payload
    assert.equal(h1, h2);
  });

  it('hashes IPv6 5-tuples and survives truncated headers', () => {
    const f = Buffer.alloc(14 + 40 + 8);
    writeEthHeader(f, 0, 0x333300000001, 0x020000000001, 0x86dd);
    f[14] = 0x60;
    f[20] = 17;
    f.writeUInt16BE(5000, 54);
    const h = flowHash(f, 0, f.length);
    f.writeUInt16BE(5001, 54);
    assert.notEqual(flowHash(f, 0, f.length), h);
    for (let len = 14; len < f.length; len++) assert.equal(typeof flowHash(f, 0, len), 'number');
  });
});
