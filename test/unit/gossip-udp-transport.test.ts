/** The real gossip transport on loopback: datagrams, request/reply streams, refusals and bounds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { UdpGossipTransport } from '../../src/gossip/udp-transport';

async function bindFree(): Promise<UdpGossipTransport> {
  for (let i = 0; i < 20; i++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    try {
      return await UdpGossipTransport.bind({ host: '127.0.0.1', port, streamTimeoutMs: 2000 });
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_VXMESH_GOSSIP_BIND') throw e;
    }
  }
  throw new Error('no free port');
}

const waitFor = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond());
};

test('packets and request/reply streams between two transports', async (t) => {
  const a = await bindFree();
  const b = await bindFree();
  t.after(async () => { await a.close(); await b.close(); });
  const got: { from: string; data: number[] }[] = [];
  b.listen({
    onPacket: (from, data) => got.push({ from, data: [...data] }),
    onRequest: (_from, data, reply) => reply(data.length === 0 ? null : Uint8Array.from([...data].reverse())),
  });
  a.listen({ onPacket: () => {}, onRequest: (_f, _d, reply) => reply(null) });
  a.sendPacket(b.address, Uint8Array.from([1, 2, 3]));
  await waitFor(() => got.length === 1);
  assert.deepEqual(got[0], { from: a.address, data: [1, 2, 3] });

  const big = new Uint8Array(300_000).map((_, i) => i & 0xff);
  const reply = await new Promise<Uint8Array>((res, rej) => a.request(b.address, big, 5000, (e, r) => (e ? rej(e) : res(r!))));
  assert.equal(reply.length, big.length);
  assert.equal(reply[0], big[big.length - 1]);

  // The handler declines: the requester gets an error, not a hang.
  await assert.rejects(new Promise((res, rej) => a.request(b.address, new Uint8Array(0), 5000, (e, r) => (e ? rej(e) : res(r)))));
});

test('a frame announcing an absurd length is refused at once; closed ports fail fast', async (t) => {
  const b = await bindFree();
  t.after(() => b.close());
  let requests = 0;
  b.listen({ onPacket: () => {}, onRequest: (_f, _d, reply) => { requests++; reply(null); } });
  const port = Number(b.address.split(':')[1]);
  await new Promise<void>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3])));
    s.on('close', () => resolve());
    s.on('error', () => {});
  });
  await waitFor(() => b.stats.oversized === 1);
  assert.equal(requests, 0);
  const a = await bindFree();
  const closedPort = Number(a.address.split(':')[1]);
  await a.close();
  await assert.rejects(new Promise((res, rej) => b.request(`127.0.0.1:${closedPort}`, Uint8Array.from([1]), 2000, (e, r) => (e ? rej(e) : res(r)))));
});
