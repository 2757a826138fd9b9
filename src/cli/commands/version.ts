/** `vxmesh version`: the package version, Node's version, and whether the native addon loads. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from '../command';
import { out, parseCommandArgs } from '../command';
import { packageRoot, packageVersion } from '../paths';

export const version: Command = {
  name: 'version',
  summary: 'Print the vxmesh version',
  usage: [
    'Usage: vxmesh version [--json]',
    '',
    'Prints the vxmesh version, the Node.js version and whether the native addon is built.',
    '',
    'Options:',
    '  --json    print {"version", "node", "addon"} as JSON',
  ].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, { json: { type: 'boolean' } });
    const addon = fs.existsSync(path.join(packageRoot(), 'build', 'Release', 'vxmesh.node'));
    const info = { version: packageVersion(), node: process.version, addon: addon ? 'built' : 'missing' };
    if (values.json) out(JSON.stringify(info));
    else out(`vxmesh ${info.version} (node ${info.node}, addon ${info.addon})`);
    return 0;
  },
};
