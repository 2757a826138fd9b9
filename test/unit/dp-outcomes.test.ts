/**
 * Counters do not lie: a descriptor the seam consumed but skipped (status = errno) is a counted
 * drop with its cause, not a sent or delivered packet; delivered + Σ drops = received holds.
 */
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { describe, it } from 'node:test';
import { BLUE, cmac, ep, frame, lab, rxIdentity, vx } from './dp-lab';

const { EHOSTUNREACH, EMSGSIZE, EINVAL, ENETUNREACH } = constants.errno;
const recordIs = (to: Buffer, addr: string) => to.readUInt32BE(12) === Buffer.from(addr.split('.').map(Number)).readUInt32BE(0);

describe('datapath: per-descriptor send outcomes', () => {
  it('a flood copy skipped with EHOSTUNREACH is an `unreachable` drop, not a sent packet', () => {
    const { hosts, run } = lab();
    const [A, B, C] = hosts;
    A.udp.skip = (_d, to) => (recordIs(to, C.addr) ? EHOSTUNREACH : 0);
    A.tap(BLUE).inject(frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(B.tap(BLUE).takeWritten().length, 1);
    assert.equal(C.tap(BLUE).written.length, 0);
    const c = A.counters(BLUE);
    assert.equal(c.txPackets, 1, 'only the copy to B reached the wire');
    assert.equal(c.txBytes, 8 + 58);
    assert.equal(c.txDropCount('unreachable'), 1);
    assert.equal(c.txDropCount('send_failed'), 0);
    const peers = A.dp.peerCounters();
    assert.equal(peers.get(`${B.addr}:4789`)!.txPackets, 1);
    assert.equal(peers.get(`${C.addr}:4789`)!.txPackets, 0);
  });

  it('EMSGSIZE → `emsgsize`, ENETUNREACH → `unreachable`, another errno → `send_failed`; frames = sent + drops', () => {
    const { hosts, run } = lab({ hosts: 2 });
    const [A, B] = hosts;
    const X = cmac(0, 1);
    const Y = cmac(1, 1);
    // B learns nothing yet; A learns Y behind B from one delivered frame
    B.tap(BLUE).inject(frame(X, Y));
    run();
    assert.equal(A.tap(BLUE).takeWritten().length, 1);
    const errnos = [EMSGSIZE, 0, ENETUNREACH, EINVAL, 0];
    let k = 0;
    A.udp.skip = () => errnos[k++ % errnos.length];
    for (let i = 0; i < errnos.length; i++) A.tap(BLUE).inject(frame(Y, X, 16 + i));
    run();
    const c = A.counters(BLUE);
    assert.equal(B.tap(BLUE).takeWritten().length, 2);
    assert.equal(c.txPackets, 2);
    assert.equal(c.txBytes, (8 + 58 + 1) + (8 + 58 + 4));
    assert.equal(c.txDropCount('emsgsize'), 1);
    assert.equal(c.txDropCount('unreachable'), 1);
    assert.equal(c.txDropCount('send_failed'), 1);
    let drops = 0;
    for (const v of c.txDrops) drops += v;
    assert.equal(c.txPackets + drops, c.txFrames, 'every unicast frame read is sent or dropped once');
    // EAGAIN (nothing consumed) stays `send_failed`
    A.udp.skip = null;
    A.udp.failNextSends = 1;
    A.tap(BLUE).inject(frame(Y, X));
    run();
    assert.equal(c.txDropCount('send_failed'), 2);
    assert.equal(A.dp.peerCounters().get(`${B.addr}:4789`)!.txPackets, 2);
  });
});

describe('datapath: per-descriptor TAP write outcomes', () => {
  it('a frame the TAP write skipped (EINVAL) is `tap_write_failed`, not delivered; the identity holds', () => {
    const { hosts, run } = lab({ hosts: 2 });
    const [A, B] = hosts;
    let k = 0;
    B.tap(BLUE).skip = () => (k++ === 1 ? EINVAL : 0);
    const frames = [frame(cmac(1, 1), cmac(0, 1), 10), frame(cmac(1, 1), cmac(0, 2), 20), frame(cmac(1, 1), cmac(0, 3), 30)];
    for (const f of frames) B.udp.injectFrom(ep(A.addr), vx(BLUE, f));
    run();
    assert.equal(B.tap(BLUE).takeWritten().length, 2);
    const c = B.counters(BLUE);
    assert.equal(c.rxPackets, 3);
    assert.equal(c.rxDelivered, 2);
    assert.equal(c.rxDeliveredBytes, frames[0].length + frames[2].length);
    assert.equal(c.rxDropCount('tap_write_failed'), 1);
    rxIdentity(c);
  });
});
