// Logger (pino JSON lines, pretty format, family-wide level) and LogLimiter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, formatPretty, LogLimiter, nullLogger } from '../../src/log';
import { FakeClock } from '../../src/clock';

function collector(): { lines: string[]; write(s: string): void; records(): Record<string, unknown>[] } {
  const lines: string[] = [];
  return {
    lines,
    write(s: string) { lines.push(...s.split('\n').filter((l) => l.length > 0)); },
    records() { return lines.map((l) => JSON.parse(l)); },
  };
}

test('JSON lines: level label, message, fields, bindings, ISO time', () => {
  const out = collector();
  const log = createLogger({ format: 'json', destination: out, bindings: { component: 'test' } });
  log.info({ network: 'blue', vni: 42 }, 'network added');
  log.warn('plain message');
  log.debug('not shown at info');
  const recs = out.records();
  assert.equal(recs.length, 2);
  assert.equal(recs[0].level, 'info');
  assert.equal(recs[0].msg, 'network added');
  assert.equal(recs[0].network, 'blue');
  assert.equal(recs[0].vni, 42);
  assert.equal(recs[0].component, 'test');
  assert.equal(recs[0].pid, process.pid);
  assert.match(String(recs[0].time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(recs[1].level, 'warn');
  assert.equal(recs[1].msg, 'plain message');
});

test('level changes apply to the whole family, children created earlier included', () => {
  const out = collector();
  const root = createLogger({ format: 'json', destination: out, level: 'info' });
  const child = root.child({ component: 'gossip' });
  const grandchild = child.child({ peer: 'b' });
  grandchild.debug('hidden');
  assert.equal(out.lines.length, 0);
  root.level = 'debug';
  assert.equal(child.level, 'debug');
  grandchild.debug('shown');
  child.trace('hidden');
  assert.equal(out.lines.length, 1);
  const rec = out.records()[0];
  assert.equal(rec.component, 'gossip');
  assert.equal(rec.peer, 'b');
  child.level = 'error';
  root.warn('hidden too');
  assert.equal(out.lines.length, 1);
  assert.throws(() => { root.level = 'loud'; }, /unknown log level/);
});

test('errors are serialised with message and stack', () => {
  const out = collector();
  const log = createLogger({ format: 'json', destination: out });
  const err = Object.assign(new Error('boom'), { code: 'ERR_X' });
  log.error({ err }, 'failed');
  const rec = out.records()[0] as { err: { message: string; code: string; stack: string } };
  assert.equal(rec.err.message, 'boom');
  assert.equal(rec.err.code, 'ERR_X');
  assert.match(rec.err.stack, /Error: boom/);
});

test('pretty format: one readable line per record, no JSON', () => {
  const out = collector();
  const log = createLogger({ format: 'pretty', destination: out, color: false, bindings: { component: 'agent' } });
  log.info({ network: 'blue', mtu: 1450, note: 'two words' }, 'network up');
  assert.equal(out.lines.length, 1);
  assert.match(out.lines[0], /^\d\d:\d\d:\d\d\.\d{3} INFO  \[agent\] network up network=blue mtu=1450 note="two words"$/);
  assert.equal(formatPretty('not json'), 'not json\n');
});

test('nullLogger discards and its children too', () => {
  nullLogger.info('x');
  assert.equal(nullLogger.child({ a: 1 }), nullLogger);
});

test('LogLimiter: burst per key per window, suppressed count reported on the next record', () => {
  const out = collector();
  const log = createLogger({ format: 'json', destination: out });
  const clock = new FakeClock();
  const limited = new LogLimiter(log, { intervalMs: 1000, burst: 2, clock });
  let written = 0;
  for (let i = 0; i < 100; i++) if (limited.warn('tap:blue', { network: 'blue' }, 'TAP write failed')) written++;
  assert.equal(written, 2);
  assert.equal(limited.warn('tap:red', { network: 'red' }, 'TAP write failed'), true, 'keys are independent');
  assert.deepEqual([...limited.pending()], [['tap:blue', 98]]);
  clock.advance(999);
  assert.equal(limited.warn('tap:blue', {}, 'TAP write failed'), false);
  clock.advance(1);
  assert.equal(limited.warn('tap:blue', { network: 'blue' }, 'TAP write failed'), true);
  const recs = out.records();
  assert.equal(recs.length, 4);
  assert.equal(recs[0].suppressed, undefined);
  assert.equal(recs[3].suppressed, 99);
  assert.equal(recs[3].network, 'blue');
  assert.equal(limited.pending().size, 0);
});

test('LogLimiter forgets the oldest key beyond maxKeys', () => {
  const out = collector();
  const limited = new LogLimiter(createLogger({ format: 'json', destination: out }), { maxKeys: 2, clock: new FakeClock() });
  assert.ok(limited.warn('a', {}, 'm'));
  assert.ok(limited.warn('b', {}, 'm'));
  assert.ok(!limited.warn('a', {}, 'm'));
  assert.ok(limited.warn('c', {}, 'm'));
  assert.ok(limited.warn('a', {}, 'm'), 'a was forgotten, so it starts a new window');
});

test('journald: <N> syslog priority prefixes when stderr is the journal stream, none otherwise', async () => {
  const { spawnSync } = await import('node:child_process');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { underJournal, journalLine } = await import('../../src/log');
  assert.equal(journalLine('{"level":"error","msg":"x"}\n'), '<3>{"level":"error","msg":"x"}\n');
  assert.equal(journalLine('{"level":"warn"}'), '<4>{"level":"warn"}');
  assert.equal(journalLine('{"level":"fatal"}'), '<2>{"level":"fatal"}');
  assert.equal(journalLine('{"level":"debug"}'), '<7>{"level":"debug"}');
  assert.equal(underJournal({ JOURNAL_STREAM: '5:77' }, () => ({ dev: 5, ino: 77 })), true);
  assert.equal(underJournal({ JOURNAL_STREAM: '5:77' }, () => ({ dev: 5, ino: 78 })), false, 'stderr redirected elsewhere');
  assert.equal(underJournal({}, () => ({ dev: 5, ino: 77 })), false);

  // End to end: the real CLI with stderr on a file named by JOURNAL_STREAM, as systemd sets it up.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vxjournal-'));
  try {
    const cfg = path.join(dir, 'vxmesh.yaml');
    fs.writeFileSync(cfg, 'underlay: {address: 198.18.0.1}\nnetworks:\n  - {name: blue, vni: 42, bridge: br0}\n');
    const run = (journal: boolean) => {
      const errFile = path.join(dir, `stderr-${journal}`);
      const fd = fs.openSync(errFile, 'w');
      const st = fs.fstatSync(fd);
      const env = { ...process.env, NOTIFY_SOCKET: '', VXMESH_LOG_FORMAT: 'json', JOURNAL_STREAM: journal ? `${st.dev}:${st.ino}` : `${st.dev}:${st.ino + 1}` };
      // without CAP_NET_ADMIN the agent logs an error and exits 1 before touching the system
      const r = spawnSync('setpriv', ['--bounding-set=-net_admin', '--inh-caps=-net_admin', process.execPath, path.resolve(__dirname, '..', '..', '..', 'bin', 'vxmesh'), 'agent', '--config', cfg, '--state-dir', path.join(dir, 'state')],
        { stdio: ['ignore', 'ignore', fd], env, timeout: 60_000 });
      fs.closeSync(fd);
      assert.equal(r.status, 1);
      return fs.readFileSync(errFile, 'utf8');
    };
    const j = run(true);
    assert.match(j, /^<3>\{"level":"error".*needs CAP_NET_ADMIN/m, j);
    const plain = run(false);
    assert.match(plain, /^\{"level":"error".*needs CAP_NET_ADMIN/m, plain);
    assert.doesNotMatch(plain, /^<\d>/m);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
