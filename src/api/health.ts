/**
 * Health endpoints for supervisors and load balancers:
 *   GET /healthz — liveness: the process answers and its event loop is not stalled (200 / 503);
 *   GET /readyz  — readiness: TAPs open, UDP bound, config loaded, gossip joined when seeds are set
 *                  (the agent's `ready()`), 200 / 503.
 * Both answer JSON `{ status: "ok" | "fail", checks: {...}, failing: [names] }` so a human can see
 * which check failed (`vxmesh status` shows the same checks and exits 3 when one fails);
 * `?verbose` is not needed: the checks are always listed, and they are cheap.
 */

import type * as http from 'node:http';
import { sendJson, type Handler } from './server';

/** The outcome of a set of checks: `ok` is the verdict, `checks` names each one's result. */
export interface CheckReport {
  ok: boolean;
  checks: Record<string, unknown>;
}

function reportHandler(run: () => CheckReport): Handler {
  return (_req: http.IncomingMessage, res: http.ServerResponse) => {
    let report: CheckReport;
    try {
      report = run();
    } catch (err) {
      report = { ok: false, checks: { error: err instanceof Error ? err.message : String(err) } };
    }
    const failing = Object.entries(report.checks).filter(([, v]) => v === false).map(([k]) => k);
    sendJson(res, report.ok ? 200 : 503, { status: report.ok ? 'ok' : 'fail', checks: report.checks, failing });
  };
}

/** GET /healthz from a liveness check. */
export function healthzHandler(live: () => CheckReport): Handler {
  return reportHandler(live);
}

/** GET /readyz from a readiness check (normally `agent.ready()`). */
export function readyzHandler(ready: () => CheckReport): Handler {
  return reportHandler(ready);
}
