/**
 * GET /metrics: the Prometheus text exposition of the agent's registry (src/metrics/registry.ts).
 * The registry reads the data plane's counters at this moment; nothing is cached between scrapes.
 */

import type * as http from 'node:http';
import { sendText, type Handler } from './server';

export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export function metricsHandler(source: MetricsSource): Handler {
  return async (_req: http.IncomingMessage, res: http.ServerResponse) => {
    const text = await source.metrics();
    sendText(res, 200, text, source.contentType);
  };
}
