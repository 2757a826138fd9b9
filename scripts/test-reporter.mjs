// node:test reporter used by scripts/run-tests.js next to `spec`: one JSON line per finished test
// (file, name, skip reason, pass/fail, duration) so the runner can list skipped tests and their
// reasons at the end of a run and apply its skip policy.
export default async function* jsonLines(source) {
  for await (const ev of source) {
    if (ev.type !== 'test:pass' && ev.type !== 'test:fail') continue;
    const d = ev.data;
    if (d.details?.type === 'suite' && !d.skip) continue;
    yield `${JSON.stringify({
      ok: ev.type === 'test:pass',
      file: d.file ?? null,
      name: d.name,
      nesting: d.nesting,
      skip: d.skip === undefined ? null : d.skip === true ? '(no reason given)' : String(d.skip),
      todo: d.todo === undefined ? null : String(d.todo),
      ms: d.details?.duration_ms ?? 0,
      error: ev.type === 'test:fail' ? String(d.details?.error?.message ?? d.details?.error ?? '').slice(0, 500) : null,
    })}\n`;
  }
}
