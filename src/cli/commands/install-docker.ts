/**
 * `vxmesh install-docker [--config FILE] [--systemd-dir DIR] [--plugin-dir DIR] [--no-systemd]`:
 * makes the Docker plugin "vxmesh" available before dockerd starts:
 *
 *   - a systemd drop-in `<systemd-dir>/docker.service.d/10-vxmesh.conf` (Wants= + After=
 *     vxmesh.service): the agent (Type=notify, ready once its plugin socket listens) starts first;
 *   - when `docker.socket` is not `/run/docker/plugins/vxmesh.sock` (where dockerd looks a plugin
 *     named "vxmesh" up by itself), `<plugin-dir>/vxmesh.spec` naming that socket.
 * The config must enable the driver (`docker:` section); it is checked, never edited.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from '../command';
import { out, parseCommandArgs } from '../command';
import { UsageError, VxmeshError } from '../../errors';
import { loadConfigFile } from '../../config/load';
import { writeFileAtomic } from '../../state/atomic';
import { DEFAULT_DOCKER_SOCKET } from '../../runtimes/docker/config';

export const DROP_IN = '[Unit]\n# written by vxmesh install-docker: the vxmesh agent serves the Docker plugin "vxmesh"\nWants=vxmesh.service\nAfter=vxmesh.service\n';

export const installDocker: Command = {
  name: 'install-docker',
  summary: 'Make the Docker network/IPAM plugin available before dockerd starts',
  usage: [
    'Usage: vxmesh install-docker [--config FILE] [--systemd-dir DIR] [--plugin-dir DIR] [--no-systemd]',
    '',
    'The agent serves Docker\'s network and IPAM plugin "vxmesh" on docker.socket when the config has',
    'a docker section (docker: {} turns it on). This command checks that, writes a systemd drop-in',
    'so that docker.service starts after vxmesh.service, and, when docker.socket is not',
    `${DEFAULT_DOCKER_SOCKET}, a plugin spec file naming it. Then:`,
    '  systemctl daemon-reload && systemctl restart vxmesh docker',
    '  docker network create -d vxmesh --ipam-driver vxmesh --subnet <the network\'s subnet> NAME',
    '',
    'Options:',
    '  -c, --config FILE     the agent config (default /etc/vxmesh/vxmesh.yaml)',
    '      --systemd-dir DIR where the docker.service.d drop-in goes (default /etc/systemd/system)',
    '      --plugin-dir DIR  where Docker reads plugin spec files (default /etc/docker/plugins)',
    '      --no-systemd      write no drop-in (start the agent before dockerd yourself)',
    '',
    'Exit codes: 0 installed, 1 a file could not be written, 2 bad arguments, a bad config or the',
    'driver not enabled in it.',
  ].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, {
      config: { type: 'string', short: 'c' }, 'systemd-dir': { type: 'string' }, 'plugin-dir': { type: 'string' }, 'no-systemd': { type: 'boolean' },
    });
    const file = values.config ?? '/etc/vxmesh/vxmesh.yaml';
    const config = loadConfigFile(file, { mtuLookup: () => null });
    if (!config.docker?.enabled) {
      throw new UsageError(`the Docker driver is not enabled in ${file}: add a docker section (docker: {} serves ${DEFAULT_DOCKER_SOCKET}) and restart the agent`);
    }
    const socket = config.docker.socket;
    const written: string[] = [];
    const removed: string[] = [];
    const specFile = path.join(path.resolve(values['plugin-dir'] ?? '/etc/docker/plugins'), 'vxmesh.spec');
    try {
      if (!values['no-systemd']) {
        const f = path.join(path.resolve(values['systemd-dir'] ?? '/etc/systemd/system'), 'docker.service.d', '10-vxmesh.conf');
        fs.mkdirSync(path.dirname(f), { recursive: true, mode: 0o755 });
        writeFileAtomic(f, DROP_IN, 0o644);
        written.push(f);
      }
      if (socket !== DEFAULT_DOCKER_SOCKET) {
        fs.mkdirSync(path.dirname(specFile), { recursive: true, mode: 0o755 });
        writeFileAtomic(specFile, `unix://${socket}\n`, 0o644);
        written.push(specFile);
      } else if (fs.existsSync(specFile) && /^unix:\/\//.test(fs.readFileSync(specFile, 'utf8'))) {
        fs.unlinkSync(specFile); // a spec from an earlier socket would win over the default one
        removed.push(specFile);
      }
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new VxmeshError('ERR_VXMESH_INSTALL', `cannot write into ${err.path ?? 'the target directory'}: ${err.code ?? err.message}`);
    }
    out([
      ...written.map((f) => `wrote ${f}`),
      ...removed.map((f) => `removed ${f}`),
      `plugin "vxmesh" on ${socket}`,
      ...(values['no-systemd'] ? [] : ['next: systemctl daemon-reload && systemctl restart vxmesh docker']),
    ].join('\n'));
    return 0;
  },
};
