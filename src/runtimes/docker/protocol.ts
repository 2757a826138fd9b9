/**
 * Docker's plugin protocol on a unix socket: every call is `POST /<Interface>.<Method>` with a JSON
 * body (often empty), answered `200` with JSON of content type
 * `application/vnd.docker.plugins.v1.2+json`.
 *
 *   known method, handler returns      → 200 {…}
 *   known method, handler throws       → 200 {"Err": message}   (the operation failed: Docker shows it;
 *                                        IpamDriver.* calls answer {"Error": message}: libnetwork's
 *                                        remote IPAM reads that field, its network driver reads Err)
 *   body not JSON / not an object      → 400 {"Err": "…"}       (a syntactic problem: an HTTP error status)
 *   body larger than MAX_REQUEST_BYTES → 413 {"Err": "…"}       (read no further, connection closed)
 *   unknown method                     → 404 {"Err": "…"}       (Docker then treats it as not implemented)
 *   not POST                           → 405 {"Err": "…"}
 *
 * The socket file: its directory is created if missing (0755: dockerd looks the plugin up there);
 * a stale socket (nobody listening) is replaced, a live one is an error; the file is 0600 (root).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { SystemError } from '../../errors';
import type { Logger } from '../../log';
import { nullLogger } from '../../log';

export const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';
/** Largest request body accepted (Docker's requests are a few hundred bytes). */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** A request must arrive whole within this time. */
export const REQUEST_TIMEOUT_MS = 30_000;
export const ERR_DOCKER_SOCKET = 'ERR_VXMESH_DOCKER_SOCKET';

export type Body = Record<string, unknown>;
export type Handler = (body: Body) => Promise<Body> | Body;

export interface ProtocolStats {
  requests: number;
  failed: number;
  malformed: number;
  oversize: number;
  unknown: number;
}

/** The failure body of a 200 answer to `method` (see the file comment). */
export function errorBody(method: string, msg: string): Body {
  return method.startsWith('IpamDriver.') ? { Error: msg } : { Err: msg };
}

function probe(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(sock);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

export class PluginServer {
  readonly stats: ProtocolStats = { requests: 0, failed: 0, malformed: 0, oversize: 0, unknown: 0 };
  private readonly handlers = new Map<string, Handler>();
  private readonly server: http.Server;
  private listening = false;

  constructor(readonly socketPath: string, private readonly log: Logger = nullLogger) {
    this.server = http.createServer((req, res) => this.serve(req, res));
    this.server.requestTimeout = REQUEST_TIMEOUT_MS;
    this.server.headersTimeout = REQUEST_TIMEOUT_MS;
  }

  /** Registers `Interface.Method` (e.g. "NetworkDriver.Join"). */
  handle(method: string, h: Handler): void {
    this.handlers.set(method, h);
  }

  methods(): string[] {
    return [...this.handlers.keys()];
  }

  private send(res: http.ServerResponse, status: number, body: unknown, close = false): void {
    const data = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'content-type': CONTENT_TYPE, 'content-length': data.length, ...(close ? { connection: 'close' } : {}) });
    res.end(data);
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.stats.requests++;
    const method = (req.url ?? '').replace(/^\//, '').split('?')[0];
    const declared = Number(req.headers['content-length'] ?? 0);
    if (Number.isFinite(declared) && declared > MAX_REQUEST_BYTES) {
      this.stats.oversize++;
      this.send(res, 413, { Err: `request body of ${declared} bytes is larger than the limit of ${MAX_REQUEST_BYTES} bytes` }, true);
      req.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        over = true;
        this.stats.oversize++;
        this.send(res, 413, { Err: `request body is larger than the limit of ${MAX_REQUEST_BYTES} bytes` }, true);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (over) return;
      void this.dispatch(req.method ?? '', method, Buffer.concat(chunks), res);
    });
  }

  private async dispatch(verb: string, method: string, raw: Buffer, res: http.ServerResponse): Promise<void> {
    const h = this.handlers.get(method);
    if (!h) {
      this.stats.unknown++;
      this.send(res, 404, { Err: `vxmesh does not implement ${method || '(no method)'}` });
      return;
    }
    if (verb !== 'POST') {
      this.send(res, 405, { Err: `${method} takes POST, not ${verb}` });
      return;
    }
    let body: Body = {};
    const text = raw.toString('utf8').trim();
    if (text && text !== 'null') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        this.stats.malformed++;
        this.send(res, 400, { Err: `${method}: the request body is not JSON (${(e as Error).message})` });
        return;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        this.stats.malformed++;
        this.send(res, 400, { Err: `${method}: the request body must be a JSON object` });
        return;
      }
      body = parsed as Body;
    }
    try {
      this.send(res, 200, await h(body));
    } catch (e) {
      this.stats.failed++;
      const msg = (e as Error).message || String(e);
      this.log.info({ method, err: msg }, 'docker request refused');
      this.send(res, 200, errorBody(method, msg));
    }
  }

  async listen(): Promise<void> {
    const dir = path.dirname(this.socketPath);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new SystemError(ERR_DOCKER_SOCKET, `cannot create ${dir} for docker.socket: ${err.code}`, 'mkdir', err.code ?? 'EIO');
    }
    if (fs.existsSync(this.socketPath)) {
      if (await probe(this.socketPath)) throw new SystemError(ERR_DOCKER_SOCKET, `docker.socket ${this.socketPath} is in use by another process`, 'bind', 'EADDRINUSE');
      fs.unlinkSync(this.socketPath);
    }
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        const onErr = (e: Error) => reject(e);
        this.server.once('error', onErr);
        this.server.listen(this.socketPath, () => {
          this.server.off('error', onErr);
          resolve();
        });
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new SystemError(ERR_DOCKER_SOCKET, `cannot listen on docker.socket ${this.socketPath}: ${err.code ?? err.message}`, 'bind', err.code ?? 'EIO');
    } finally {
      process.umask(old);
    }
    this.listening = true;
  }

  isListening(): boolean {
    return this.listening;
  }

  async close(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    try {
      fs.unlinkSync(this.socketPath);
    } catch { /* already gone */ }
  }
}
