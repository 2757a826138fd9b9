/**
 * Device errors: a TAP or UDP poll error, or a read that throws, never escapes into the event
 * loop; the network (or the transport) is marked failed with its reason and time, the device is
 * no longer polled, the other networks keep forwarding, and `replaceTap` resumes a network on a
 * new TAP (FDB and counters kept).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryTap } from '../../src/dataplane/memory-io';
import { BLUE, RED, cmac, ep, frame, lab, vx } from './dp-lab';

const enodev = () => Object.assign(new Error('TAP vx-blue: read: No such device'), { code: 'ERR_VXMESH_TAP_IO', syscall: 'read', errno: 19 });

describe('datapath: device errors mark the network failed instead of throwing', () => {
  it('a TAP poll error: not thrown; blue is failed (reason, since), red keeps forwarding', () => {
    const { hosts, run, clock } = lab({ hosts: 2 });
    const [A, B] = hosts;
    const events: unknown[] = [];
    A.dp.onFailure((f) => events.push(f));
    clock.advance(5000);
    assert.doesNotThrow(() => A.tap(BLUE).emitError(enodev()));
    const f = A.dp.network(BLUE)!.failed;
    assert.ok(f !== null, 'blue is failed');
    assert.match(f!.reason, /No such device/);
    assert.equal(f!.since, 5000);
    assert.deepEqual(A.dp.failedNetworks().map((x) => x.vni), [BLUE]);
    assert.equal(A.dp.network(RED)!.failed, null);
    assert.equal(events.length, 1);
    A.tap(RED).inject(frame(0xffffffffffff, cmac(0, 1)));
    run();
    assert.equal(B.tap(RED).takeWritten().length, 1, 'red still forwards');
  });

  it('a TAP read that throws: failed once, the TAP is no longer polled (no busy loop)', () => {
    const { hosts, run } = lab({ hosts: 2 });
    const [A] = hosts;
    const tap = A.tap(BLUE);
    tap.readError = enodev();
    tap.inject(frame(0xffffffffffff, cmac(0, 1)));
    const rounds = run();
    assert.ok(rounds < 5, `reactor rounds ${rounds}`);
    assert.match(A.dp.network(BLUE)!.failed!.reason, /No such device/);
    assert.equal(A.dp.failedNetworks().length, 1);
  });

  it('replaceTap: a re-created TAP resumes the network both ways, FDB and counters kept, failure cleared', () => {
    const { hosts, run, reactor } = lab({ hosts: 2 });
    const [A, B] = hosts;
    const Y = cmac(1, 1);
    B.tap(BLUE).inject(frame(cmac(0, 1), Y));
    run();
    assert.equal(A.tap(BLUE).takeWritten().length, 1);
    const before = A.counters(BLUE).rxDelivered;
    A.tap(BLUE).emitError(enodev());
    const fresh = new MemoryTap({ name: 'vx-blue', mac: A.tap(BLUE).mac, reactor });
    const net = A.dp.replaceTap(BLUE, fresh);
    assert.equal(net.tap, fresh);
    assert.equal(net.failed, null);
    assert.deepEqual(A.dp.failedNetworks(), []);
    // outbound: the FDB still knows Y → B (unicast, no flood)
    fresh.inject(frame(Y, cmac(0, 1)));
    run();
    assert.equal(B.tap(BLUE).takeWritten().length, 1);
    assert.equal(A.counters(BLUE).txFlooded, 0);
    // inbound: delivered to the new TAP
    B.tap(BLUE).inject(frame(cmac(0, 1), Y));
    run();
    assert.equal(fresh.takeWritten().length, 1);
    assert.equal(A.counters(BLUE).rxDelivered, before + 1);
    assert.throws(() => A.dp.replaceTap(999, fresh), RangeError);
  });

  it('a UDP poll error or receive error marks the transport failed; nothing is thrown', () => {
    const { hosts, run, clock } = lab({ hosts: 2 });
    const [A, B] = hosts;
    clock.advance(1234);
    assert.doesNotThrow(() => A.udp.emitError(Object.assign(new Error('UDP: recvmmsg: Bad file descriptor'), { code: 'ERR_VXMESH_UDP_IO' })));
    assert.match(A.dp.transportFailure()!.reason, /Bad file descriptor/);
    assert.equal(A.dp.transportFailure()!.since, 1234);
    B.udp.recvError = new Error('recvmmsg: EIO');
    A.tap(BLUE).inject(frame(0xffffffffffff, cmac(0, 1)));
    const rounds = run();
    assert.ok(rounds < 5, `reactor rounds ${rounds}`);
    assert.match(B.dp.transportFailure()!.reason, /EIO/);
    B.udp.injectFrom(ep(A.addr), vx(BLUE, frame(cmac(1, 1), cmac(0, 2))));
    assert.doesNotThrow(() => run());
  });
});
