/**
 * `vxmesh demo` (lab/demo.ts) end to end: three hosts, agents, a UDP echo (no ping binary), a TCP transfer with
 * matching sha256, counters, and a teardown that leaves no namespace behind.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab } from '../../lab/netns';
import { runDemo } from '../../lab/demo';
import { netnsSkip } from '../helpers/lab';

test('demo: runs, transfers intact, tears down', { skip: netnsSkip(), timeout: 240_000 }, async () => {
  const lines: string[] = [];
  const code = await runDemo({ write: (l) => lines.push(l), transferBytes: 2_000_000 });
  const text = lines.join('\n');
  assert.equal(code, 0, text);
  assert.match(text, /5 datagrams sent, [1-5] echoed back/);
  assert.match(text, /OK: identical/);
  const sent = /sent\s+2000000 bytes\s+sha256 ([0-9a-f]{64})/.exec(text);
  const got = /received 2000000 bytes\s+sha256 ([0-9a-f]{64})/.exec(text);
  assert.ok(sent && got && sent[1] === got[1], text);
  const prefix = /namespaces: (vxl\d+-[0-9a-f]{4})-\*/.exec(text)?.[1];
  assert.ok(prefix, text);
  assert.match(text, new RegExp(`all ${prefix}-\\* namespaces removed`));
  assert.deepEqual(Lab.listNamespaces(prefix!), []);
  assert.equal((text.match(/agent stopped \(exit 0\)/g) ?? []).length, 3, text);
});
