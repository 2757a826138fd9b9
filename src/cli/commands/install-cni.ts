/**
 * `vxmesh install-cni [--bin-dir DIR] [--conf-dir DIR] [--config FILE] [--socket PATH]`: installs
 * the CNI plugin as `<bin-dir>/vxmesh` (a small wrapper running this package's bin/vxmesh-cni
 * with this node) and writes `<conf-dir>/vxmesh-<network>.conflist` for every network of the
 * agent config (type "vxmesh", the network name and the agent's control socket).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from '../command';
import { out, parseCommandArgs } from '../command';
import { VxmeshError } from '../../errors';
import { loadConfigFile } from '../../config/load';
import { writeFileAtomic } from '../../state/atomic';
import { packageRoot } from '../paths';
import { DEFAULT_SOCKET } from '../../endpoints/client';

export function conflist(network: string, socket: string): Record<string, unknown> {
  return { cniVersion: '1.0.0', name: network, plugins: [{ type: 'vxmesh', network, socket }] };
}

export const installCni: Command = {
  name: 'install-cni',
  summary: 'Install the CNI plugin and a .conflist per network',
  usage: [
    'Usage: vxmesh install-cni [--bin-dir DIR] [--conf-dir DIR] [--config FILE] [--socket PATH]',
    '',
    'Installs the vxmesh CNI plugin as DIR/vxmesh (a wrapper that runs this installation\'s',
    'bin/vxmesh-cni) and writes CONF-DIR/vxmesh-<network>.conflist for every network in the agent',
    'config, each naming the network and the agent\'s control socket.',
    '',
    'Options:',
    '      --bin-dir DIR     CNI plugin directory (default /opt/cni/bin)',
    '      --conf-dir DIR    CNI configuration directory (default /etc/cni/net.d)',
    '  -c, --config FILE     the agent config (default /etc/vxmesh/vxmesh.yaml)',
    '      --socket PATH     control socket written into the configs (default: api.socket of the config)',
    '',
    'Exit codes: 0 installed, 1 a file could not be written, 2 bad arguments or config.',
  ].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, {
      'bin-dir': { type: 'string' }, 'conf-dir': { type: 'string' }, config: { type: 'string', short: 'c' }, socket: { type: 'string' },
    });
    const binDir = path.resolve(values['bin-dir'] ?? '/opt/cni/bin');
    const confDir = path.resolve(values['conf-dir'] ?? '/etc/cni/net.d');
    const config = loadConfigFile(values.config ?? '/etc/vxmesh/vxmesh.yaml', { mtuLookup: () => null });
    const socket = values.socket ?? config.api.socket ?? DEFAULT_SOCKET;
    const plugin = path.join(packageRoot(), 'bin', 'vxmesh-cni');
    const written: string[] = [];
    try {
      writeFileAtomic(path.join(binDir, 'vxmesh'), `#!/bin/sh\n# vxmesh CNI plugin (written by vxmesh install-cni)\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(plugin)} "$@"\n`, 0o755);
      written.push(path.join(binDir, 'vxmesh'));
      for (const n of [...config.networks, ...(config.localNetworks ?? [])]) {
        const f = path.join(confDir, `vxmesh-${n.name}.conflist`);
        writeFileAtomic(f, JSON.stringify(conflist(n.name, socket), null, 2) + '\n', 0o644);
        written.push(f);
      }
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new VxmeshError('ERR_VXMESH_INSTALL', `cannot write into ${err.path ?? binDir}: ${err.code ?? err.message}`);
    }
    if (!fs.existsSync(plugin)) throw new VxmeshError('ERR_VXMESH_INSTALL', `${plugin} is missing`);
    out(written.map((f) => `wrote ${f}`).join('\n'));
    return 0;
  },
};
