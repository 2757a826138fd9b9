/**
 * The agent's small control HTTP server on `api.listen` (loopback by default): JSON status for the
 * CLI, and the place where extensions (metrics, health, gossip) register their routes.
 *
 * Bounded by construction: request bodies are capped (`maxBodyBytes`), header and request timeouts
 * are short, connections are capped, and a handler that throws answers 500 without taking the agent
 * down. Routes are exact paths; a known path with another method answers 405 with `Allow`.
 */

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log';
import { nullLogger } from '../log';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void | Promise<void>;

export interface ApiServerOptions {
  host: string;
  port: number;
  logger?: Logger;
  /** Largest request body accepted, bytes (default 64 KiB): larger → 413. */
  maxBodyBytes?: number;
  /** Most simultaneous connections (default 64). */
  maxConnections?: number;
}

/** Sends `value` as JSON with `status` (pretty-printed: the API is for people and scripts alike). */
export function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** Sends plain text (e.g. Prometheus exposition) with the given content type. */
export function sendText(res: http.ServerResponse, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

export function sendError(res: http.ServerResponse, status: number, message: string, extraHeaders: Record<string, string> = {}): void {
  const body = JSON.stringify({ error: message }) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...extraHeaders });
  res.end(body);
}

export class ApiServer {
  readonly server: http.Server;
  private readonly routes = new Map<string, Map<string, Handler>>();
  private readonly logger: Logger;
  private readonly maxBody: number;
  private readonly host: string;
  private readonly port: number;
  private listening = false;

  constructor(opts: ApiServerOptions) {
    this.host = opts.host;
    this.port = opts.port;
    this.logger = opts.logger ?? nullLogger;
    this.maxBody = opts.maxBodyBytes ?? 64 * 1024;
    this.server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000, maxHeaderSize: 16 * 1024 }, (req, res) => this.handle(req, res));
    this.server.maxConnections = opts.maxConnections ?? 64;
    this.server.keepAliveTimeout = 5_000;
  }

  /**
   * Registers `handler` for `method` (GET, POST, ...) on exact `path` (query string ignored).
   * HEAD is served by a GET handler. Registering the same method+path twice replaces it.
   */
  route(method: string, path: string, handler: Handler): this {
    let byMethod = this.routes.get(path);
    if (!byMethod) this.routes.set(path, (byMethod = new Map()));
    byMethod.set(method.toUpperCase(), handler);
    return this;
  }

  /** Removes a route (an extension stopping). */
  unroute(method: string, path: string): void {
    const byMethod = this.routes.get(path);
    byMethod?.delete(method.toUpperCase());
    if (byMethod && byMethod.size === 0) this.routes.delete(path);
  }

  /** Starts listening; resolves with the bound address (port 0 → an ephemeral port). */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: this.host, port: this.port, exclusive: true }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.logger.error({ err: err.message }, 'api server error'));
        this.listening = true;
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo | null {
    return this.listening ? (this.server.address() as AddressInfo) : null;
  }

  /** Stops accepting, closes idle and open connections; resolves when closed. */
  close(): Promise<void> {
    if (!this.listening) return Promise.resolve();
    this.listening = false;
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** 413, then the connection is closed once the answer is out (the rest of the body is not read). */
  private tooLarge(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.on('finish', () => req.socket.destroy());
    sendError(res, 413, `request body larger than ${this.maxBody} bytes`, { connection: 'close' });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const byMethod = this.routes.get(path);
    if (!byMethod) {
      req.resume();
      sendError(res, 404, `no such endpoint: ${path}`);
      return;
    }
    const method = (req.method ?? 'GET').toUpperCase();
    const handler = byMethod.get(method) ?? (method === 'HEAD' ? byMethod.get('GET') : undefined);
    if (!handler) {
      req.resume();
      const allow = [...byMethod.keys()];
      if (allow.includes('GET')) allow.push('HEAD');
      sendError(res, 405, `method ${method} not allowed on ${path}`, { allow: allow.join(', ') });
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.maxBody) {
      this.tooLarge(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let aborted = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > this.maxBody) {
        if (!aborted) this.tooLarge(req, res);
        aborted = true;
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => { aborted = true; });
    req.on('end', () => {
      if (aborted) return;
      const fail = (err: unknown) => {
        this.logger.error({ path, method, err: err instanceof Error ? err.message : String(err) }, 'api handler failed');
        if (!res.headersSent) sendError(res, 500, 'internal error');
        else res.destroy();
      };
      try {
        const r = handler(req, res, Buffer.concat(chunks));
        if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).catch(fail);
      } catch (err) {
        fail(err);
      }
    });
  }
}
