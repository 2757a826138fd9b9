/**
 * Metric families rendered straight from the data plane's counters, registered in a prom-client
 * Registry next to prom-client's own default metrics.
 *
 * Why not prom-client Counter/Gauge objects with `collect()` (what the first version did): that
 * costs a label hash and validation per `inc()`/`set()` and a generic formatter per sample, about
 * 15–25 µs per series: an agent with 100 networks and 1,000 peers (≈ 7,000 series) held the event
 * loop, which also runs the data path, for ~115 ms per scrape. A `Family` reads its source once per
 * scrape through its `fill` callback and writes the exposition lines itself (figures in
 * docs/metrics.md: 6–9× cheaper for the vxmesh families of a small agent, ~2× for the whole scrape of
 * a large one). `FastRegistry.getMetricsAsString` uses that text for
 * families and prom-client's formatter for everything else; `get()` still serves JSON.
 *
 * Text format (Prometheus 0.0.4): `# HELP name help`, `# TYPE name type`, then
 * `name{l1="v1",l2="v2"} value` per sample; label values escape `\`, `"` and newline.
 */

import { Registry, type Metric } from 'prom-client';

export type FamilyType = 'counter' | 'gauge' | 'histogram';
export type LabelValues = Record<string, string | number>;
/** Adds one sample; `suffix` names a histogram's `_bucket`/`_sum`/`_count` series. */
export type Emit = (labels: LabelValues, value: number, suffix?: string) => void;

function escapeLabel(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export class Family {
  readonly aggregator = 'sum';
  private readonly header: string;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: FamilyType,
    readonly labelNames: readonly string[],
    private readonly fill: (emit: Emit) => void,
  ) {
    this.header = `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}`;
  }

  /** The family's exposition text (no trailing newline, as prom-client's formatter). */
  renderText(): string {
    const lines: string[] = [this.header];
    const names = this.labelNames;
    const name = this.name;
    this.fill((labels, value, suffix) => {
      let l = '';
      for (let i = 0; i < names.length; i++) {
        const v = labels[names[i]];
        if (v === undefined) continue;
        l += (l.length ? ',' : '') + names[i] + '="' + (typeof v === 'number' ? String(v) : escapeLabel(v)) + '"';
      }
      lines.push((suffix === undefined ? name : name + suffix) + (l.length ? '{' + l + '}' : '') + ' ' + formatValue(value));
    });
    return lines.join('\n');
  }

  /** prom-client's metric interface (getMetricsAsJSON, and the formatter if used directly). */
  async get(): Promise<{ name: string; help: string; type: FamilyType; aggregator: string; values: { metricName: string; labels: LabelValues; value: number }[] }> {
    const values: { metricName: string; labels: LabelValues; value: number }[] = [];
    this.fill((labels, value, suffix) => values.push({ metricName: this.name + (suffix ?? ''), labels: { ...labels }, value }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {}
}

/** A prom-client Registry that renders `Family` metrics with their own fast formatter. */
export class FastRegistry extends Registry {
  // Not in prom-client's typings, but the method Registry.metrics() calls per metric (v15).
  async getMetricsAsString(metric: Metric): Promise<string> {
    // Synchronous up to here for a Family: every family of one scrape is read in the same tick.
    if (metric instanceof Family) return metric.renderText();
    return (Registry.prototype as unknown as { getMetricsAsString(m: Metric): Promise<string> }).getMetricsAsString.call(this, metric);
  }
}
