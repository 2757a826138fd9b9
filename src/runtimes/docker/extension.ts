/**
 * The `docker` agent extension: Docker's network + IPAM plugin "vxmesh" on `docker.socket`
 * (default /run/docker/plugins/vxmesh.sock), when `docker.enabled`.
 *
 *   start: state (`<stateDir>/docker.json`: Docker network → vxmesh network) → the socket (a
 *          stale file from a previous run is replaced, so dockerd — which cached the activation —
 *          reaches the new process on its next call).
 *   stop:  the socket closed and removed; endpoints stay (the endpoints extension keeps them and
 *          finds them again at the next start).
 * Requests that create something answer an Err while the agent is not ready (Docker shows it).
 * Requests that create, delete or allocate run in the agent's turn among network changes
 * (Agent.exclusive): a SIGHUP reload and a CreateNetwork/CreateEndpoint never interleave.
 * Runs after the endpoints extension, handed over by connect() in src/cli/extensions.ts.
 */
import type { Agent, AgentExtension } from '../../agent/agent';
import type { Config } from '../../config/types';
import type { RuntimeNetworkApi } from '../../agent/runtime-networks';
import type { Logger } from '../../log';
import { DEFAULT_STATE_DIR, FileStateStore, StateStore } from '../../ipam/state-store';
import { DEFAULT_DOCKER_SOCKET } from './config';
import { DockerBackend, DockerDriver } from './driver';
import { PluginServer } from './protocol';

export interface DockerExtensionOptions {
  store?: StateStore;
}

export class DockerExtension implements AgentExtension {
  readonly name = 'docker';
  driver: DockerDriver | null = null;
  server: PluginServer | null = null;
  private backend: DockerBackend | null = null;
  private readonly log: Logger;

  constructor(private config: Config, logger: Logger, private readonly opts: DockerExtensionOptions = {}) {
    this.log = logger.child({ component: 'docker' });
  }

  private runtime: RuntimeNetworkApi | null = null;

  /**
   * Typed connections made once by buildExtensions: the endpoints extension (manager + IPAM) and
   * the agent's runtime networks (networks created from `--opt vni=`; null: only configured ones).
   */
  connect(links: { endpoints: DockerBackend | null; runtimeNetworks?: RuntimeNetworkApi | null }): void {
    this.backend = links.endpoints;
    this.runtime = links.runtimeNetworks ?? null;
  }

  async start(agent: Agent): Promise<void> {
    const c = this.config;
    const backend = this.backend;
    if (!backend) throw new Error('the Docker driver needs the endpoints extension (not connected)');
    const store = this.opts.store ?? new FileStateStore(c.stateDir ?? agent.state?.dir ?? DEFAULT_STATE_DIR);
    const driver = new DockerDriver({
      backend, store, node: c.node.name, runtime: this.runtime,
      exclusive: (fn) => agent.exclusive(fn),
      networks: () => [...this.config.networks, ...(this.config.localNetworks ?? [])],
      notReady: () => {
        const r = agent.ready();
        if (r.ok) return null;
        return Object.entries(r.checks).filter(([k, v]) => !v && k !== 'ext:docker').map(([k]) => k).join(', ') || null;
      },
    });
    const server = new PluginServer(c.docker?.socket ?? DEFAULT_DOCKER_SOCKET, this.log);
    for (const [k, h] of Object.entries(driver.handlers())) server.handle(k, h);
    await server.listen();
    this.driver = driver;
    this.server = server;
    this.runtime?.setUsers((name) => driver.usersOf(name)); // a reload clashing with a used runtime network is refused
    this.log.info({ socket: server.socketPath, networks: Object.keys(driver.networkMap()).length }, 'docker plugin listening');
  }

  async stop(): Promise<void> {
    this.runtime?.setUsers(null);
    await this.server?.close();
    this.server = null;
  }

  status(): unknown {
    return {
      socket: this.server?.socketPath ?? null,
      networks: this.driver?.networkMap() ?? {},
      runtimeNetworks: this.runtime?.list().map((e) => e.spec.name) ?? [],
      stats: this.driver?.stats ?? null,
      requests: this.server?.stats ?? null,
    };
  }

  ready(): boolean {
    return this.server?.isListening() === true;
  }

  reload(config: Config): void {
    this.config = config;
  }
}

/** Factory for src/cli/extensions.ts: on when `docker.enabled`. */
export function createDockerExtension(config: Config, logger: Logger): AgentExtension | null {
  return config.docker?.enabled ? new DockerExtension(config, logger) : null;
}
