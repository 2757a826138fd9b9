/**
 * netdev.ts ioctls on a real bridge and veth pair in a fresh network namespace: create/delete a
 * bridge, enslave/release a port, MTU get/set, up/down, MAC, existence, mtuOfAddress — each checked
 * against sysfs — and errors with code ERR_VXMESH_NETDEV, errno name and syscall.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as nd from '../../src/dataplane/netdev';
import { ERR_NETDEV, SystemError } from '../../src/errors';
import { childMain, nativeSkipReason, runScenario, sh, withNetns } from './native-helpers';

const sys = (dev: string, attr: string) => fs.readFileSync(`/sys/class/net/${dev}/${attr}`, 'utf8').trim();
const master = (dev: string) => {
  try {
    return path.basename(fs.readlinkSync(`/sys/class/net/${dev}/master`));
  } catch {
    return null;
  }
};

function fails(fn: () => unknown, errno: string, syscall: string): void {
  assert.throws(fn, (e: SystemError) => {
    assert.ok(e instanceof SystemError, String(e));
    assert.equal(e.code, ERR_NETDEV);
    assert.equal(e.errno, errno);
    assert.equal(e.syscall, syscall);
    assert.ok(e.message.includes(`${syscall} failed: `), e.message);
    return true;
  });
}

const scenarios = {
  bridge() {
    assert.equal(nd.linkExists('vxbr0'), false);
    nd.bridgeCreate('vxbr0');
    assert.equal(nd.linkExists('vxbr0'), true);
    assert.ok(fs.existsSync('/sys/class/net/vxbr0/bridge'), 'it is a bridge');
    fails(() => nd.bridgeCreate('vxbr0'), 'EEXIST', 'ioctl(SIOCBRADDBR)');
    assert.equal(nd.isUp('vxbr0'), false);

    sh('ip link add vxv0 type veth peer name vxv1');
    nd.setMtu('vxv0', 1400);
    assert.equal(nd.getMtu('vxv0'), 1400);
    assert.equal(sys('vxv0', 'mtu'), '1400');
    fails(() => nd.setMtu('vxv0', 10), 'EINVAL', 'ioctl(SIOCSIFMTU)');
    assert.equal(nd.getMac('vxv0').toString('hex').match(/../g)!.join(':'), sys('vxv0', 'address'));
    assert.ok(nd.ifIndex('vxv0') > 0);

    nd.bridgeAddPort('vxbr0', 'vxv0');
    assert.equal(master('vxv0'), 'vxbr0');
    nd.bridgeDelPort('vxbr0', 'vxv0');
    assert.equal(master('vxv0'), null);
    fails(() => nd.bridgeAddPort('vxbr0', 'nosuch0'), 'ENODEV', 'if_nametoindex');

    nd.setUp('vxbr0', true);
    assert.equal(nd.isUp('vxbr0'), true);
    assert.equal(Number(sys('vxbr0', 'flags')) & 1, 1);
    fails(() => nd.bridgeDelete('vxbr0'), 'EBUSY', 'ioctl(SIOCBRDELBR)');
    nd.setUp('vxbr0', false);
    assert.equal(nd.isUp('vxbr0'), false);
    nd.bridgeDelete('vxbr0');
    assert.equal(nd.linkExists('vxbr0'), false);
    fails(() => nd.bridgeDelete('vxbr0'), 'ENXIO', 'ioctl(SIOCBRDELBR)');

    assert.equal(nd.linkExists('nosuch0'), false);
    fails(() => nd.getMtu('nosuch0'), 'ENODEV', 'ioctl(SIOCGIFMTU)');
    fails(() => nd.setUp('nosuch0', true), 'ENODEV', 'ioctl(SIOCGIFFLAGS)');
    fails(() => nd.getMac('nosuch0'), 'ENODEV', 'ioctl(SIOCGIFHWADDR)');
    fails(() => nd.bridgeCreate('abcdefghijklmnop'), 'ENAMETOOLONG', 'ioctl(SIOCBRADDBR)');

    // mtuOfAddress: the interface must be up and running to be listed by os.networkInterfaces().
    sh(`ip link set vxv0 up; ip link set vxv1 up
ip addr add 198.18.3.1/24 dev vxv0
ip -6 addr add 2001:2:0:3::1/64 dev vxv0 nodad`);
    const byAddr = {
      v4: nd.mtuOfAddress('198.18.3.1'),
      v6: nd.mtuOfAddress('2001:2:0:3:0:0:0:1'), // non-canonical spelling
      lo: nd.mtuOfAddress('127.0.0.1'),
      absent: nd.mtuOfAddress('198.18.3.2'),
      wildcard: nd.mtuOfAddress('0.0.0.0'),
    };
    assert.deepEqual(byAddr, { v4: 1400, v6: 1400, lo: 65536, absent: null, wildcard: null });
    return byAddr;
  },
};

if (!childMain(scenarios)) {
  test('netdev: bridge, ports, MTU, up/down, MAC, existence, mtuOfAddress, errors', { skip: nativeSkipReason() }, () => {
    const r = withNetns((ns) => runScenario(ns, __filename, 'bridge'));
    assert.equal(r.v4, 1400);
    assert.equal(r.absent, null);
  });
}
