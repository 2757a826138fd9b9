/**
 * Health endpoints for supervisors and load balancers:
 *   GET /healthz — liveness: the process answers and its event loop is not stalled (200 / 503);
 *   GET /readyz  — readiness: TAPs open, UDP bound, config loaded, data path running (the agent's
 *                  `ready()`), 200 / 503. Checks that fail without holding readiness back (gossip
 *                  not joined yet) are listed in `degraded`, with their detail (`gossip`).
 * Both answer JSON `{ status: "ok" | "fail", checks: {...}, failing: [names] }` so a human can see
 * which check failed (`vxmesh status` shows the same checks and exits 3 when one fails; a
 * `degraded` check is not `failing`);
 * `?verbose` is not needed: the checks are always listed, and they are cheap.
 */

import type * as http from 'node:http';
import { sendJson, type Handler } from './server';

/** The outcome of a set of checks: `ok` is the verdict, `checks` names each one's result. */
export interface CheckReport {
  ok: boolean;
  checks: Record<string, unknown>;
  /** Failing checks that do not make the verdict fail (shown, 200 still). */
  degraded?: string[];
  /** Join state of gossip, when it is configured with seeds. */
  gossip?: unknown;
}

function reportHandler(run: () => CheckReport): Handler {
  return (_req: http.IncomingMessage, res: http.ServerResponse) => {
    let report: CheckReport;
    try {
      report = run();
    } catch (err) {
      report = { ok: false, checks: { error: err instanceof Error ? err.message : String(err) } };
    }
    const degraded = report.degraded ?? [];
    const failing = Object.entries(report.checks).filter(([k, v]) => v === false && !degraded.includes(k)).map(([k]) => k);
    const body: Record<string, unknown> = { status: report.ok ? 'ok' : 'fail', checks: report.checks, failing };
    if (degraded.length) body.degraded = degraded;
    if (report.gossip !== undefined) body.gossip = report.gossip;
    sendJson(res, report.ok ? 200 : 503, body);
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
