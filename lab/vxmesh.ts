/**
 * vxmesh agents in the lab: write a host's agent config, start `node bin/vxmesh agent --config
 * FILE` inside the host's namespace (PID tracked by the Lab), wait until its `GET /v1/status` says
 * ready, read counters from it, stop it with SIGTERM (the agent then removes what it created).
 *
 * The status JSON is `Agent.status()` (src/agent/status.ts): per-network counters under
 * `networks[i].counters` (rxDrops/txDrops by reason) and global ones under `counters`.
 */

import * as path from 'node:path';
import { stringify } from 'yaml';
import { Lab, LabError, LabHost, LabProcess, REPO_ROOT } from './netns';

export interface LabNetwork {
  name: string;
  vni: number;
  bridge: string;
  /** Inner MTU; default: the agent derives it (underlay MTU − 50/70). */
  mtu?: number;
  /** TAP name; default the agent's (`vx-<name>`). */
  tap?: string;
}

export interface AgentConfigOptions {
  networks: LabNetwork[];
  /** Static peers (underlay addresses); default every other host of the lab. */
  peers?: string[];
  /** VXLAN UDP port; default 4789. */
  port?: number;
  /** Underlay MTU given to the agent; default the lab's. */
  underlayMtu?: number;
  /** api.listen inside the host namespace; default 127.0.0.1:9469. */
  apiListen?: string;
  /** Default 'info'. */
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** Extra top-level keys (e.g. gossip) merged in. */
  extra?: Record<string, unknown>;
}

/** The agent config (the YAML schema of README's config reference) for `host`. */
export function agentConfig(lab: Lab, host: LabHost, opts: AgentConfigOptions): Record<string, unknown> {
  return {
    node: host.name,
    underlay: { address: host.address, port: opts.port ?? 4789, mtu: opts.underlayMtu ?? lab.underlayMtu },
    networks: opts.networks.map((n) => ({ ...n })),
    peers: opts.peers ?? lab.hosts.filter((h) => h !== host).map((h) => h.address),
    api: { listen: opts.apiListen ?? '127.0.0.1:9469' },
    log: { level: opts.logLevel ?? 'info' },
    ...(opts.extra ?? {}),
  };
}

export interface AgentStatus {
  node: string;
  pid: number;
  ready: { ok: boolean; checks: Record<string, boolean> };
  networks: Array<{
    name: string;
    vni: number;
    bridge: string;
    tap: string;
    mtu: number;
    counters: null | {
      rxPackets: number;
      rxDelivered: number;
      rxDrops: Record<string, number>;
      txFrames: number;
      txPackets: number;
      txDrops: Record<string, number>;
      txFlooded: number;
      [k: string]: unknown;
    };
    [k: string]: unknown;
  }>;
  peers: Array<{ peer: string; rxPackets: number; txPackets: number; [k: string]: unknown }>;
  counters: null | { rxDatagrams: number; rxProbes?: number; rxDrops: Record<string, number>; [k: string]: unknown };
  [k: string]: unknown;
}

/** A running agent in a lab host. */
export class LabAgent {
  constructor(
    readonly lab: Lab,
    readonly host: LabHost,
    readonly proc: LabProcess,
    readonly configPath: string,
    readonly config: Record<string, unknown>,
    /** `http://host:port` of its API, reachable inside `host.ns`. */
    readonly apiUrl: string,
  ) {}

  /** GET /v1/status (fetched from inside the host namespace). */
  async status(): Promise<AgentStatus> {
    return (await httpGetJson(this.lab, this.host.ns, `${this.apiUrl}/v1/status`)) as AgentStatus;
  }

  /** Counters of the network with `vni` (throws if absent). */
  async network(vni: number): Promise<NonNullable<AgentStatus['networks'][number]['counters']>> {
    const s = await this.status();
    const n = s.networks.find((x) => x.vni === vni);
    if (!n || !n.counters) throw new LabError(`agent ${this.host.name} has no counters for vni ${vni}`);
    return n.counters;
  }

  /** TAP name of the network with `vni`, from the config the agent reports. */
  async tapOf(vni: number): Promise<string> {
    const s = await this.status();
    const n = s.networks.find((x) => x.vni === vni);
    if (!n) throw new LabError(`agent ${this.host.name} has no network vni ${vni}`);
    return n.tap;
  }

  running(): boolean {
    return this.proc.running();
  }

  /** SIGTERM (clean stop), SIGKILL after timeoutMs. */
  stop(timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.lab.stop(this.proc, { timeoutMs });
  }
}

/**
 * Fetches JSON from `url` inside `ns` (a one-shot node process using fetch, 5 s timeout).
 * Throws LabError with the body on a non-2xx answer or when nothing listens.
 */
export async function httpGetJson(lab: Lab, ns: string, url: string): Promise<unknown> {
  const script =
    'fetch(process.argv[1],{signal:AbortSignal.timeout(5000)}).then(async r=>{const t=await r.text();' +
    'if(!r.ok){process.stderr.write(r.status+" "+t);process.exit(3)}process.stdout.write(t)})' +
    '.catch(e=>{process.stderr.write(String(e&&e.cause||e));process.exit(4)})';
  const r = await lab.exec(ns, process.execPath, ['-e', script, url], { check: false, timeoutMs: 15_000 });
  if (r.code !== 0) throw new LabError(`GET ${url} in ${ns} failed: ${r.stderr.trim()}`, { code: r.code });
  return JSON.parse(r.stdout);
}

export interface StartAgentOptions {
  /** Wait this long for GET /v1/status to report ready (default 60 000 ms: a loaded machine can take tens of seconds). */
  readyTimeoutMs?: number;
  /** Extra CLI arguments. */
  args?: string[];
}

/**
 * Writes `config` to `<lab.dir>/agent-<host>.yaml`, starts the agent in the host's namespace and
 * waits until its status reports ready. If it exits or never gets ready, throws with its output.
 */
export async function startAgent(lab: Lab, host: LabHost, config: Record<string, unknown>, opts: StartAgentOptions = {}): Promise<LabAgent> {
  const file = lab.writeFile(`agent-${host.name}.yaml`, stringify(config));
  const listen = String((config.api as { listen?: string } | undefined)?.listen ?? '127.0.0.1:9469');
  const apiUrl = `http://${listen.startsWith('[') || !listen.includes(':') || listen.split(':').length === 2 ? listen : `[${listen}]`}`;
  const bin = path.join(REPO_ROOT, 'bin', 'vxmesh');
  // One state directory per host, kept across restarts of its agent (never the real /var/lib/vxmesh).
  const stateArgs = (opts.args ?? []).includes('--state-dir') ? [] : ['--state-dir', path.join(lab.dir, `state-${host.name}`)];
  const proc = lab.spawn(host.ns, process.execPath, [bin, 'agent', '--config', file, ...stateArgs, ...(opts.args ?? [])], {
    name: `vxmesh@${host.name}`,
    env: { ...process.env, VXMESH_LOG_FORMAT: 'json' },
    logFile: path.join(lab.dir, `agent-${host.name}.log`),
  });
  const agent = new LabAgent(lab, host, proc, file, config, apiUrl);
  try {
    await lab.waitFor(
      `agent on ${host.name} to be ready`,
      async () => {
        if (!proc.running()) throw new LabError(`agent on ${host.name} exited during start:\n${proc.output()}`);
        try {
          const s = await agent.status();
          return s.ready?.ok === true;
        } catch {
          return false;
        }
      },
      { timeoutMs: opts.readyTimeoutMs ?? 60_000, intervalMs: 100 },
    );
  } catch (e) {
    if (proc.running()) await lab.stop(proc, { timeoutMs: 3000 });
    if (e instanceof LabError && !/exited during start/.test(e.message)) {
      throw new LabError(`${e.message}; agent output:\n${proc.output()}`);
    }
    throw e;
  }
  return agent;
}

/** Sum of an rx drop reason over the global counters and every network (what one datagram adds to). */
export function rxDropTotal(s: AgentStatus, reason: string): number {
  let n = s.counters?.rxDrops[reason] ?? 0;
  for (const net of s.networks) n += net.counters?.rxDrops[reason] ?? 0;
  return n;
}
