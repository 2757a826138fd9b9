// Test helper: parse Prometheus text exposition into samples and look them up by name and labels.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const v = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

/** Samples of `name` whose labels include every given label. */
export function select(samples: Sample[], name: string, labels: Record<string, string | number> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === String(v)));
}

/** The single sample of `name` with exactly-matching given labels (throws when absent or ambiguous). */
export function value(samples: Sample[], name: string, labels: Record<string, string | number> = {}): number {
  const found = select(samples, name, labels);
  if (found.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0].value;
}

/** Σ of the values of `name` matching `labels`. */
export function sum(samples: Sample[], name: string, labels: Record<string, string | number> = {}): number {
  return select(samples, name, labels).reduce((a, s) => a + s.value, 0);
}
