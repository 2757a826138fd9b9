/**
 * Issue 19 items 3 and 4 (gossip side), on the memory transport with a FakeClock and the `lan`
 * profile (push-pull every 30 s): the first join retries 1 s, 2 s, 4 s … capped at 10 s (with
 * jitter) instead of once per push-pull period; a seed that comes up late is joined within the cap;
 * a restarted seed re-learns the cluster within seconds; the join state names each seed's failure;
 * a wrong cluster key is said out loud on both sides, at warn, rate-limited.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/clock';
import { tuningFor } from '../../src/gossip/config';
import { Keyring, sodiumReady } from '../../src/gossip/keyring';
import { MemoryNetwork } from '../../src/gossip/memory-transport';
import { seededRng } from '../../src/gossip/rng';
import { GossipNode } from '../../src/gossip/swim';
import { createLogger, type Logger } from '../../src/log';

const K1 = new Uint8Array(32).fill(1);
const K2 = new Uint8Array(32).fill(2);
const SEED = '198.18.0.10:7946';

interface Rec { level: string; msg: string; [k: string]: unknown }

function sink(): { logger: Logger; records: Rec[] } {
  const records: Rec[] = [];
  const logger = createLogger({ level: 'debug', format: 'json', destination: { write: (l: string) => records.push(JSON.parse(l)) } });
  return { logger, records };
}

function setup(seed = 1) {
  const clock = new FakeClock();
  const net = new MemoryNetwork({ clock, rng: seededRng(seed) });
  const node = (name: string, addr: string, key = K1, logger?: Logger): GossipNode => {
    const n = new GossipNode({
      name, transport: net.attach(addr), keyring: new Keyring([key]), clock, tuning: tuningFor('lan'),
      underlay: addr.replace(':7946', ':4789'), seeds: [SEED], rng: seededRng(name.length * 31 + seed), logger,
    });
    n.start();
    n.startJoining();
    return n;
  };
  return { clock, net, node };
}

test('first join: retries back off 1 s, 2 s, 4 s … 10 s; a late seed is joined within the cap', async () => {
  await sodiumReady();
  const { clock, node } = setup();
  const a = node('a', '198.18.0.1:7946');
  const attemptsAt: number[] = [];
  let last = 0;
  for (let t = 0; t < 40_000; t += 50) {
    clock.advance(50);
    const st = a.joinState();
    if (st.attempts !== last) {
      last = st.attempts;
      attemptsAt.push(clock.now());
    }
  }
  const st = a.joinState();
  assert.equal(st.state, 'joining');
  assert.deepEqual(st.seeds, [SEED]);
  assert.equal(st.failures[SEED], 'refused');
  assert.match(st.lastError ?? '', /seed 198\.18\.0\.10:7946: refused or unreachable/);
  assert.ok(st.nextAttemptInMs !== null && st.nextAttemptInMs <= 12_000);
  // gaps between attempts: ~1, ~2, ~4, ~8, then ≤ 10 s (±20 %), never a push-pull period (30 s)
  const gaps = attemptsAt.slice(1).map((x, i) => x - attemptsAt[i]);
  const expect = [1000, 2000, 4000, 8000, 10_000, 10_000];
  assert.ok(gaps.length >= 5, `attempts at ${attemptsAt.join(', ')}`);
  gaps.forEach((g, i) => {
    const e = expect[Math.min(i, expect.length - 1)];
    assert.ok(g >= e * 0.8 - 100 && g <= e * 1.2 + 100, `gap ${i}: ${g} ms, expected ~${e} (attempts at ${attemptsAt.join(', ')})`);
  });

  // The seed comes up now: joined within the cap (+ jitter), not 24-27 s later.
  const up = clock.now();
  const s = node('s', SEED);
  let joinedAt = -1;
  for (let t = 0; t < 30_000 && joinedAt < 0; t += 50) {
    clock.advance(50);
    if (a.joinState().state === 'joined' && s.liveMembers === 2) joinedAt = clock.now();
  }
  assert.ok(joinedAt > 0, 'joined');
  assert.ok(joinedAt - up <= 12_500, `joined ${joinedAt - up} ms after the seed came up`);
  assert.equal(a.joinState().attempts, 0);
  assert.equal(s.joinState().state, 'joined');
  void a.shutdown();
  void s.shutdown();
});

test('a seed that restarts with an empty view re-learns the cluster within seconds (3 restarts)', async () => {
  await sodiumReady();
  const { clock, net, node } = setup(2);
  let s = node('s', SEED);
  const a = node('a', '198.18.0.1:7946');
  const b = node('b', '198.18.0.2:7946');
  clock.advance(5000);
  assert.equal(a.liveMembers, 3);
  assert.equal(s.joinState().state, 'joined');
  for (let round = 0; round < 3; round++) {
    void s.shutdown();
    clock.advance(60_000 + round * 7_000);
    assert.equal(a.member('s')!.state, 'dead');
    assert.equal(a.joinState().state, 'joined', 'a still has b');
    s = new GossipNode({
      name: 's', transport: net.attach(SEED), keyring: new Keyring([K1]), clock, tuning: tuningFor('lan'),
      underlay: '198.18.0.10:4789', seeds: [SEED], rng: seededRng(99 + round), initialIncarnation: 1000 + round,
    });
    s.start();
    s.startJoining();
    assert.equal(s.joinState().state, 'seed', 'alone, but a seed: nothing to wait for');
    const back = clock.now();
    let seen = -1;
    for (let t = 0; t < 60_000 && seen < 0; t += 50) {
      clock.advance(50);
      if (s.liveMembers === 3 && a.member('s')!.state === 'alive' && b.member('s')!.state === 'alive') seen = clock.now();
    }
    assert.ok(seen > 0 && seen - back <= 12_500, `round ${round}: the restarted seed was back in the cluster after ${seen - back} ms (push-pull/reconnect period: 30 s)`);
    clock.advance(5000);
  }
  for (const n of [s, a, b]) void n.shutdown();
});

test('a wrong cluster key is said out loud on both sides, at warn, rate-limited', async () => {
  await sodiumReady();
  const { clock, node } = setup(3);
  const seedLog = sink();
  const badLog = sink();
  const s = node('s', SEED, K1, seedLog.logger);
  const bad = node('bad', '198.18.0.66:7946', K2, badLog.logger);
  clock.advance(120_000);
  assert.equal(s.liveMembers, 1);
  assert.equal(bad.joinState().state, 'joining');
  assert.equal(bad.joinState().failures[SEED], 'closed');
  assert.match(bad.joinState().lastError ?? '', /cluster key we do not have/);

  const onSeed = seedLog.records.filter((r) => /uses a cluster key we do not know/.test(r.msg));
  assert.ok(onSeed.length >= 1, 'the seed says who uses a key it does not know');
  assert.ok(onSeed.every((r) => r.level === 'warn'));
  assert.match(onSeed[0].msg, /^host 198\.18\.0\.66 uses a cluster key we do not know/);
  assert.ok(onSeed.length <= 5, `rate-limited: ${onSeed.length} records in 120 s`);
  assert.ok(s.stats.drops.bad_key >= 10, 'every rejected request is still counted');

  const onBad = badLog.records.filter((r) => /join attempts to seed 198\.18\.0\.10:7946 are rejected/.test(r.msg));
  assert.ok(onBad.length >= 1, 'the host with the wrong key says its join attempts are rejected and names the seed');
  assert.ok(onBad.every((r) => r.level === 'warn'));
  assert.ok(onBad.length <= 5, `rate-limited: ${onBad.length} records in 120 s`);
  assert.ok(!badLog.records.some((r) => r.msg === 'joined the cluster'));
  void s.shutdown();
  void bad.shutdown();
});
