/** Kubernetes label selectors over endpoint labels (matchLabels AND every matchExpression). */
import type { Selector } from './document';

export type Labels = Readonly<Record<string, string>>;

/** True when `labels` satisfy `sel`. An empty selector matches every label set. */
export function selectorMatches(sel: Selector, labels: Labels): boolean {
  for (const k in sel.matchLabels) if (labels[k] !== sel.matchLabels[k]) return false;
  for (const r of sel.matchExpressions) {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    switch (r.operator) {
      case 'In':
        if (!has || !r.values.includes(labels[r.key])) return false;
        break;
      case 'NotIn':
        // As in Kubernetes: a missing key satisfies NotIn.
        if (has && r.values.includes(labels[r.key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** The selector as text, for traces and listings (`app=db,tier in (a,b)`; `{}` for all). */
export function selectorText(sel: Selector): string {
  const parts = Object.entries(sel.matchLabels).map(([k, v]) => `${k}=${v}`);
  for (const r of sel.matchExpressions) {
    if (r.operator === 'Exists') parts.push(r.key);
    else if (r.operator === 'DoesNotExist') parts.push(`!${r.key}`);
    else parts.push(`${r.key} ${r.operator === 'In' ? 'in' : 'notin'} (${r.values.join(',')})`);
  }
  return parts.length ? parts.join(',') : '{}';
}
