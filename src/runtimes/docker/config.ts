/**
 * The `docker` section of the agent config (validated by the loader through this one function):
 *
 *   docker:
 *     enabled: true                              # default true once the section is given
 *     socket: /run/docker/plugins/vxmesh.sock    # where dockerd looks the plugin up (name "vxmesh")
 *
 * Absent section: the Docker driver is off.
 */
import * as pathMod from 'node:path';
import { Problems, describe, boolean, mapping } from '../../config/check';

export const DEFAULT_DOCKER_SOCKET = '/run/docker/plugins/vxmesh.sock';

export interface DockerConfig {
  enabled: boolean;
  socket: string;
}

export function validateDocker(p: Problems, v: unknown): DockerConfig | undefined {
  const d = mapping(p, v, ['docker'], ['enabled', 'socket']);
  if (!d) return undefined;
  let enabled = true;
  let socket = DEFAULT_DOCKER_SOCKET;
  if (d.enabled !== undefined) enabled = boolean(p, d.enabled, ['docker', 'enabled']) ?? enabled;
  if (d.socket !== undefined) {
    const s = d.socket;
    if (typeof s !== 'string' || s.length === 0 || s.includes('\0') || Buffer.byteLength(s) > 107 || !pathMod.isAbsolute(s) || !s.endsWith('.sock')) {
      p.add(['docker', 'socket'], `expected an absolute unix socket path ending in .sock (at most 107 bytes; Docker names the plugin after the file), got ${describe(s)}`);
    } else socket = pathMod.normalize(s);
  }
  return { enabled, socket };
}
