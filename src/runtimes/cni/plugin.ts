/**
 * The vxmesh CNI plugin (bin/vxmesh-cni): CNI spec 1.0.0, answering 0.3.0/0.3.1/0.4.0 configs,
 * and STATUS/GC of 1.1.0. A thin client: every command is one request to the agent's control
 * socket (src/endpoints/extension.ts), which owns IPAM, the links and the registry.
 *
 *   env (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS) + stdin (network config)
 *   → check → request → result JSON on stdout (exit 0) or the spec's error JSON (exit 1):
 *     ADD     POST /v1/attach {containerId, netns, ifname, labels}  → interfaces (sandbox), ips, routes
 *             (a repeated ADD returns the existing attachment; a failed ADD leaves nothing: the agent undoes it)
 *     DEL     POST /v1/detach; "no such endpoint" and a missing netns are success (idempotent)
 *     CHECK   POST /v1/check (the link must still exist)
 *     STATUS  GET /v1/ready: 50 "not available" unless the agent is ready
 *     GC      POST /v1/gc {valid attachments}: endpoints of this network with other container ids go
 *     VERSION supported versions (no agent needed)
 *   Codes: 1 incompatible version, 4 bad environment, 6 undecodable config, 7 invalid config
 *   (also: unknown network), 11 try again later (agent down or not ready), 50 not available, 999
 *   other failures. Labels: `args.labels` / `args.cni.labels` of the config, then CNI_ARGS K=V pairs
 *   (IgnoreUnknown dropped).
 */
import { AgentDownError, AgentRefusedError, controlRequest, DEFAULT_SOCKET } from '../../endpoints/client';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

export interface CniRun {
  code: number;
  stdout: string;
}

export class CniError extends Error {
  constructor(readonly code: number, msg: string, readonly details = '') {
    super(msg);
  }
}

interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  network: string;
  socket: string;
  labels: Record<string, string>;
  raw: Record<string, unknown>;
}

const VERSION_RE = /^\d+\.\d+\.\d+$/;

function parseConf(stdin: string, command: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(6, 'failed to decode the network configuration', (e as Error).message);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new CniError(6, 'the network configuration is not a JSON object');
  const o = raw as Record<string, unknown>;
  const cniVersion = typeof o.cniVersion === 'string' ? o.cniVersion : '';
  if (!VERSION_RE.test(cniVersion)) throw new CniError(7, `invalid network configuration: cniVersion ${JSON.stringify(o.cniVersion)}`);
  if (!SUPPORTED_VERSIONS.includes(cniVersion)) throw new CniError(1, `incompatible CNI version ${cniVersion}`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  if ((command === 'STATUS' || command === 'GC') && cmpVersion(cniVersion, '1.1.0') < 0) {
    throw new CniError(1, `${command} needs cniVersion 1.1.0, the configuration says ${cniVersion}`);
  }
  const network = typeof o.network === 'string' && o.network ? o.network : typeof o.name === 'string' ? o.name : '';
  if (!network) throw new CniError(7, 'invalid network configuration: "network" (the vxmesh network name) is missing');
  if (o.socket !== undefined && (typeof o.socket !== 'string' || !o.socket.startsWith('/'))) throw new CniError(7, 'invalid network configuration: "socket" must be an absolute path');
  const labels: Record<string, string> = {};
  const args = o.args as Record<string, unknown> | undefined;
  for (const src of [args?.labels, (args?.cni as Record<string, unknown> | undefined)?.labels]) {
    if (src === undefined) continue;
    if (typeof src !== 'object' || src === null || Array.isArray(src)) throw new CniError(7, 'invalid network configuration: args labels must be an object');
    for (const [k, v] of Object.entries(src)) labels[k] = String(v);
  }
  return { cniVersion, name: typeof o.name === 'string' ? o.name : network, type: String(o.type ?? 'vxmesh'), network, socket: (o.socket as string) ?? DEFAULT_SOCKET, labels, raw: o };
}

function cmpVersion(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

function cniArgs(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const part of s.split(';')) {
    if (!part) continue;
    const i = part.indexOf('=');
    if (i <= 0) throw new CniError(4, `bad CNI_ARGS entry "${part}" (expected KEY=VALUE)`);
    const k = part.slice(0, i);
    if (k === 'IgnoreUnknown') continue;
    out[k] = part.slice(i + 1);
  }
  return out;
}

function need(env: NodeJS.ProcessEnv, k: string): string {
  const v = env[k];
  if (!v) throw new CniError(4, `${k} is not set`);
  return v;
}

interface EndpointView { network: string; name: string; ifname: string; mac: string; ips: string[]; gateways?: string[]; netns?: string }

/** The ADD result in the configuration's version. */
export function result(conf: NetConf, e: EndpointView, netns: string): Record<string, unknown> {
  const legacy = cmpVersion(conf.cniVersion, '0.4.0') <= 0;
  const gws = e.gateways ?? [];
  const gwFor = (addr: string) => gws.find((g) => g.includes(':') === addr.includes(':'));
  return {
    cniVersion: conf.cniVersion,
    interfaces: [{ name: e.ifname, mac: e.mac, sandbox: netns }],
    ips: e.ips.map((a) => ({ ...(legacy ? { version: a.includes(':') ? '6' : '4' } : {}), address: a, ...(gwFor(a) ? { gateway: gwFor(a) } : {}), interface: 0 })),
    routes: gws.map((g) => ({ dst: g.includes(':') ? '::/0' : '0.0.0.0/0', gw: g })),
    dns: {},
  };
}

async function call(conf: NetConf, method: string, path: string, body?: unknown): Promise<unknown> {
  try {
    return await controlRequest(conf.socket, method, path, body, 120_000);
  } catch (e) {
    if (e instanceof AgentDownError) throw new CniError(11, 'the vxmesh agent is not running (try again later)', e.message);
    if (e instanceof AgentRefusedError) {
      if (e.status === 503) throw new CniError(11, 'the vxmesh agent is not ready (try again later)', e.message);
      if (e.code === 'ERR_VXMESH_UNKNOWN_NETWORK') throw new CniError(7, `invalid network configuration: ${e.message}`);
      throw Object.assign(new CniError(e.badInput ? 7 : 999, e.message), { agentCode: e.code });
    }
    throw new CniError(999, (e as Error).message);
  }
}

/** Runs one plugin invocation as a runtime makes it. Never throws. */
export async function runCni(env: NodeJS.ProcessEnv, stdin: string): Promise<CniRun> {
  const command = env.CNI_COMMAND ?? '';
  let version = '1.0.0';
  try {
    if (command === 'VERSION') {
      return { code: 0, stdout: JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED_VERSIONS }) };
    }
    if (!['ADD', 'DEL', 'CHECK', 'STATUS', 'GC'].includes(command)) throw new CniError(4, `unknown CNI_COMMAND "${command}"`);
    const conf = parseConf(stdin, command);
    version = conf.cniVersion;
    if (command === 'STATUS') {
      try {
        await call(conf, 'GET', '/v1/ready');
      } catch (e) {
        throw new CniError(50, 'the vxmesh plugin is not available: the agent is not running or not ready', (e as Error).message);
      }
      return { code: 0, stdout: '' };
    }
    if (command === 'GC') {
      const valid = (conf.raw['cni.dev/valid-attachments'] ?? conf.raw['cni.dev/attachments'] ?? []) as { containerID?: string; ifname?: string }[];
      if (!Array.isArray(valid)) throw new CniError(7, 'invalid network configuration: cni.dev/valid-attachments must be a list');
      await call(conf, 'POST', '/v1/gc', { network: conf.network, valid: valid.map((v) => ({ containerId: String(v.containerID ?? ''), ifname: String(v.ifname ?? '') })) });
      return { code: 0, stdout: '' };
    }
    const containerId = need(env, 'CNI_CONTAINERID');
    const ifname = need(env, 'CNI_IFNAME');
    if (command === 'DEL') {
      try {
        await call(conf, 'POST', '/v1/detach', { network: conf.network, containerId, ifname });
      } catch (e) {
        const code = (e as { agentCode?: string }).agentCode;
        if (code !== 'ERR_VXMESH_ENDPOINT_NOT_FOUND') throw e;
      }
      return { code: 0, stdout: '' };
    }
    const netns = need(env, 'CNI_NETNS');
    if (command === 'CHECK') {
      await call(conf, 'POST', '/v1/check', { network: conf.network, containerId, ifname });
      return { code: 0, stdout: '' };
    }
    // ADD
    const labels = { ...conf.labels, ...cniArgs(env.CNI_ARGS) };
    let e: EndpointView;
    try {
      e = (await call(conf, 'POST', '/v1/check', { network: conf.network, containerId, ifname })) as EndpointView;
    } catch (err) {
      if ((err as { agentCode?: string }).agentCode !== 'ERR_VXMESH_ENDPOINT_NOT_FOUND') throw err;
      // the agent may not see a runtime's netns mount: give it the path through our own root too
      const netnsVia = netns.startsWith('/') ? `/proc/${process.pid}/root${netns}` : undefined;
      e = (await call(conf, 'POST', '/v1/attach', { network: conf.network, netns, netnsVia, ifname, containerId, name: containerId.slice(0, 12), labels })) as EndpointView;
    }
    return { code: 0, stdout: JSON.stringify(result(conf, e, netns)) };
  } catch (e) {
    const err = e instanceof CniError ? e : new CniError(999, (e as Error).message);
    return { code: 1, stdout: JSON.stringify({ cniVersion: version, code: err.code, msg: err.message, ...(err.details ? { details: err.details } : {}) }) };
  }
}
