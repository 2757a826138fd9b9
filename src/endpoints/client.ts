/**
 * The control-socket client the CLI (`vxmesh attach/detach/endpoints`) and the CNI plugin use:
 * JSON over HTTP on the agent's unix socket. An absent or refusing socket is `AgentDownError`
 * (the CLI exits 1, the CNI plugin answers code 11 "try again later").
 */
import * as http from 'node:http';
import { VxmeshError } from '../errors';

export const DEFAULT_SOCKET = '/run/vxmesh/vxmesh.sock';

export class AgentDownError extends VxmeshError {
  constructor(socket: string, cause: string) {
    super('ERR_VXMESH_AGENT_DOWN', `cannot reach the agent on ${socket} (${cause}); is \`vxmesh agent\` running with this api.socket?`, { socket });
  }
}

/** An error the agent answered with (status ≥ 400): `badInput` when 400. */
export class AgentRefusedError extends VxmeshError {
  readonly status: number;
  readonly badInput: boolean;
  constructor(status: number, code: string, message: string) {
    super(code || 'ERR_VXMESH_API', message);
    this.status = status;
    this.badInput = status === 400;
  }
}

export function controlRequest(socket: string, method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ socketPath: socket, method, path, headers: { 'content-type': 'application/json', ...(data ? { 'content-length': data.length } : {}) }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let json: unknown = null;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
        } catch {
          /* not JSON */
        }
        if ((res.statusCode ?? 500) >= 400) {
          const j = (json ?? {}) as { error?: string; code?: string };
          reject(new AgentRefusedError(res.statusCode ?? 500, j.code ?? '', j.error ?? `HTTP ${res.statusCode}`));
        } else resolve(json);
      });
    });
    req.on('timeout', () => req.destroy(new Error('ETIMEDOUT')));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'EACCES' || e.code === 'ENOTSOCK') reject(new AgentDownError(socket, e.code));
      else reject(new AgentDownError(socket, e.code ?? e.message));
    });
    req.end(data);
  });
}
