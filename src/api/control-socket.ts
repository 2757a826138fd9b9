/**
 * The root-only control socket (`api.socket`, default /run/vxmesh/vxmesh.sock): the same small
 * HTTP router as api.listen (ApiServer: bounded bodies, timeouts, 404/405) served on a unix socket
 * whose directory is 0700 and the socket itself 0600, owned by the agent's user (root). Several
 * agents on one machine each use their own path. A stale socket file (nobody listening) is
 * replaced; a live one is an error (another agent runs there).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { SystemError } from '../errors';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { ApiServer } from './server';

export const ERR_CONTROL_SOCKET = 'ERR_VXMESH_CONTROL_SOCKET';

function probe(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(sock);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

export class ControlSocket {
  readonly api: ApiServer;
  private listening = false;

  constructor(readonly socketPath: string, logger: Logger = nullLogger) {
    this.api = new ApiServer({ host: '', port: 0, logger, maxBodyBytes: 256 * 1024 });
  }

  async listen(): Promise<void> {
    const dir = path.dirname(this.socketPath);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new SystemError(ERR_CONTROL_SOCKET, `cannot create ${dir} for api.socket: ${err.code}`, 'mkdir', err.code ?? 'EIO');
    }
    if (fs.existsSync(this.socketPath)) {
      if (await probe(this.socketPath)) {
        throw new SystemError(ERR_CONTROL_SOCKET, `api.socket ${this.socketPath} is in use by another agent`, 'bind', 'EADDRINUSE');
      }
      fs.unlinkSync(this.socketPath);
    }
    const server = this.api.server;
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        const onErr = (e: Error) => reject(e);
        server.once('error', onErr);
        server.listen(this.socketPath, () => {
          server.off('error', onErr);
          resolve();
        });
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new SystemError(ERR_CONTROL_SOCKET, `cannot listen on api.socket ${this.socketPath}: ${err.code ?? err.message}`, 'bind', err.code ?? 'EIO');
    } finally {
      process.umask(old);
    }
    fs.chmodSync(this.socketPath, 0o600);
    this.listening = true;
  }

  async close(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    await new Promise<void>((resolve) => {
      this.api.server.close(() => resolve());
      this.api.server.closeAllConnections();
    });
    try {
      fs.unlinkSync(this.socketPath);
    } catch { /* already gone */ }
  }
}
