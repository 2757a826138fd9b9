/**
 * Inner MACs belong to somebody: on encrypted networks a MAC is learned against the host whose
 * session authenticated the frame (not the outer address); a host may only send on networks it
 * serves; a MAC that gossip binds to host B is not taken over by frames from host C; local MACs
 * are never replaced by remote frames or gossip records; gossip entries carry their owner, and a
 * member changes or deletes only its own. Every refusal is counted with its own reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CIPHER_OK, type CipherBatch, type PacketCipher,
} from '../../src/dataplane/cipher-seam';
import type { Endpoint } from '../../src/config/types';
import { fdbRefusalIndex } from '../../src/dataplane/counters';
import { macToString } from '../../src/dataplane/ethernet';
import { BLUE, cmac, ep, frame, lab, netCfg, rxIdentity, vx, ADDRS } from './dp-lab';

const GREEN = 44;
const ENV = 0xee;
const HDR = 8;

/**
 * A transparent stand-in cipher: an envelope is 0xEE, the sender's id (u32), 3 zero bytes, then the
 * VXLAN packet. `open` reports the id in the envelope as the authenticated sender.
 */
class TagCipher implements PacketCipher {
  readonly headroom = HDR;
  readonly tailroom = 0;
  constructor(readonly id: number, private readonly ids: Map<number, Endpoint>) {}
  isEnvelope(slab: Buffer, off: number, len: number): boolean { return len > HDR && slab[off] === ENV; }
  sealBatch(b: CipherBatch): void {
    for (let j = 0; j < b.count; j++) {
      const o = b.offs[j] - HDR;
      b.slab[o] = ENV;
      b.slab.writeUInt32BE(this.id, o + 1);
      b.slab.fill(0, o + 5, o + HDR);
      b.outOffs[j] = o;
      b.outLens[j] = b.lens[j] + HDR;
      b.status[j] = CIPHER_OK;
    }
  }
  openBatch(b: CipherBatch): void {
    for (let j = 0; j < b.count; j++) {
      b.senders[j] = b.slab.readUInt32BE(b.offs[j] + 1);
      b.outOffs[j] = b.offs[j] + HDR;
      b.outLens[j] = b.lens[j] - HDR;
      b.status[j] = CIPHER_OK;
    }
  }
  senderEndpoint(id: number): Endpoint | null { return this.ids.get(id) ?? null; }
}

/** An envelope from host id `id` carrying `inner` for network `vni`. */
function sealed(id: number, vni: number, inner: Buffer): Buffer {
  const p = vx(vni, inner);
  const d = Buffer.alloc(HDR + p.length);
  d[0] = ENV;
  d.writeUInt32BE(id, 1);
  p.copy(d, HDR);
  return d;
}

function encryptedLab(opts: { staticPeers?: boolean } = {}) {
  const L = lab({
    networks: [netCfg('blue', BLUE), netCfg('green', GREEN, true)],
    peers: opts.staticPeers === false ? () => [] : undefined,
  });
  const ids = new Map<number, Endpoint>(L.hosts.map((h, i) => [i + 1, ep(h.addr)]));
  L.hosts.forEach((h, i) => h.dp.setCipher(new TagCipher(i + 1, ids)));
  return L;
}

describe('datapath: learning on encrypted networks binds to the authenticated host', () => {
  it('a frame authenticated as B but arriving from C\'s address teaches "MAC → B", not "MAC → C"', () => {
    const { hosts, run, net } = encryptedLab();
    const [A, B, C] = hosts;
    const M = cmac(1, 1);
    A.udp.injectFrom(ep(C.addr), sealed(2, GREEN, frame(cmac(0, 1), M)));
    run();
    assert.equal(A.tap(GREEN).takeWritten().length, 1);
    net.capture!.length = 0;
    A.tap(GREEN).inject(frame(M, cmac(0, 1)));
    run();
    assert.equal(net.capture!.length, 1, 'unicast, not flooded');
    assert.equal(net.capture![0].to.readUInt32BE(12), 0xc6120002, 'sent to B');
    assert.equal(B.tap(GREEN).takeWritten().length, 1);
    assert.equal(C.tap(GREEN).written.length, 0);
  });

  it('a host may only send on networks it serves: C, not serving green, is refused (`not_serving`)', () => {
    const { hosts, run } = encryptedLab({ staticPeers: false });
    const [A, B, C] = hosts;
    A.dp.setNetworkPeers(GREEN, [ep(B.addr)]);
    A.udp.injectFrom(ep(C.addr), sealed(3, GREEN, frame(cmac(0, 1), cmac(2, 1))));
    A.udp.injectFrom(ep(B.addr), sealed(2, GREEN, frame(cmac(0, 1), cmac(1, 1))));
    run();
    const got = A.tap(GREEN).takeWritten();
    assert.equal(got.length, 1);
    assert.equal(got[0].readUIntBE(6, 6), cmac(1, 1));
    const c = A.counters(GREEN);
    assert.equal(c.rxDropCount('not_serving'), 1);
    rxIdentity(c);
    assert.equal(A.dp.network(GREEN)!.fdb.entries().filter((e) => e.kind === 'remote').length, 1, 'C\'s MAC not learned');
  });
});

describe('datapath: a MAC that gossip binds to a host is that host\'s', () => {
  it('frames from C with a source MAC gossip puts behind B are dropped (`foreign_src_mac`); the entry stays B\'s', () => {
    const { hosts, run } = lab();
    const [A, B, C] = hosts;
    const M = cmac(1, 1);
    assert.ok(A.dp.fdbSetRemote(BLUE, M, ep(B.addr), ep(B.addr)));
    A.udp.injectFrom(ep(C.addr), vx(BLUE, frame(cmac(0, 1), M)));
    A.udp.injectFrom(ep(B.addr), vx(BLUE, frame(cmac(0, 1), M)));
    run();
    assert.equal(A.tap(BLUE).takeWritten().length, 1, 'only B\'s frame delivered');
    const c = A.counters(BLUE);
    assert.equal(c.rxDropCount('foreign_src_mac'), 1);
    rxIdentity(c);
    const e = A.dp.network(BLUE)!.fdb.entries().find((x) => x.mac === macToString(M))!;
    assert.equal(e.kind, 'static');
    assert.equal(e.peer!.label, `${B.addr}:4789`);
  });

  it('a local MAC is never replaced by a gossip record (refused, `local_entry`)', () => {
    const { hosts, run } = lab();
    const [A, B] = hosts;
    const M = cmac(0, 1);
    A.tap(BLUE).inject(frame(0xffffffffffff, M));
    run();
    assert.equal(A.dp.fdbSetRemote(BLUE, M, ep(B.addr), ep(B.addr)), false);
    const e = A.dp.network(BLUE)!.fdb.entries().find((x) => x.mac === macToString(M))!;
    assert.equal(e.kind, 'local');
    assert.equal(A.counters(BLUE).fdbRefused[fdbRefusalIndex.local_entry], 1);
    // nor a neighbour entry that would answer for a local MAC
    assert.equal(A.dp.neighSet(BLUE, '198.19.0.9', macToString(M), ep(B.addr)), false);
    assert.equal(A.counters(BLUE).fdbRefused[fdbRefusalIndex.local_entry], 2);
  });
});

describe('datapath: gossip entries carry their owner', () => {
  it('a member cannot overwrite or delete another member\'s FDB or neighbour entry (`other_owner`); its own, it can', () => {
    const { hosts, run } = lab();
    const [A, B, C] = hosts;
    const M = macToString(cmac(1, 1));
    const b = ep(B.addr);
    const c = ep(C.addr);
    const fdb = A.dp.network(BLUE)!.fdb;
    const where = () => fdb.entries().find((x) => x.mac === M)?.peer?.label;
    assert.ok(A.dp.fdbSetRemote(BLUE, M, b, b));
    assert.equal(A.dp.fdbSetRemote(BLUE, M, c, c), false, 'C cannot move B\'s MAC');
    assert.equal(where(), `${B.addr}:4789`);
    assert.equal(A.dp.fdbDelete(BLUE, M, c), false, 'C cannot delete it');
    assert.equal(where(), `${B.addr}:4789`);
    assert.ok(A.dp.fdbSetRemote(BLUE, M, b, b), 'B may refresh its own');
    assert.ok(A.dp.fdbDelete(BLUE, M, b));
    assert.equal(where(), undefined);
    // neighbour entries
    assert.ok(A.dp.neighSet(BLUE, '198.19.0.2', M, b));
    assert.equal(A.dp.neighSet(BLUE, '198.19.0.2', macToString(cmac(2, 1)), c), false);
    assert.equal(A.dp.neighDelete(BLUE, '198.19.0.2', c), false);
    assert.deepEqual(A.dp.network(BLUE)!.neigh.entries(), [{ ip: '198.19.0.2', mac: M }]);
    assert.ok(A.dp.neighDelete(BLUE, '198.19.0.2', b));
    assert.equal(A.dp.network(BLUE)!.neigh.size, 0);
    assert.equal(A.counters(BLUE).fdbRefused[fdbRefusalIndex.other_owner], 4);
    // a learned (dynamic) entry is nobody's to delete through gossip
    A.udp.injectFrom(ep(ADDRS[2]), vx(BLUE, frame(cmac(0, 1), cmac(2, 5))));
    run();
    assert.equal(A.dp.fdbDelete(BLUE, cmac(2, 5), c), false);
    assert.equal(fdb.entries().find((x) => x.mac === macToString(cmac(2, 5)))?.kind, 'remote');
    assert.equal(A.counters(BLUE).fdbRefused[fdbRefusalIndex.other_owner], 5);
  });
});
