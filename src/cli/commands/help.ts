/** `vxmesh help [COMMAND]`: the command list, or one command's full help. */

import type { Command } from '../command';
import { out, err } from '../command';

/** Text of `vxmesh --help`: synopsis, every command with its summary, global options, exit codes. */
export function generalHelp(commands: readonly Command[]): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return [
    'vxmesh: one private container network across hosts, over VXLAN (RFC 7348)',
    '',
    'Usage: vxmesh <command> [options]',
    '       vxmesh <command> --help     full help for one command',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'Global options:',
    '  -h, --help       show this help',
    '  -V, --version    print the version (same as `vxmesh version`)',
    '',
    'Exit codes: 0 success, 1 runtime failure, 2 bad arguments or config,',
    '            3 `vxmesh status`: the agent answers but is not ready.',
  ].join('\n');
}

export const help: Command = {
  name: 'help',
  summary: 'Show help for vxmesh or one command',
  usage: [
    'Usage: vxmesh help [COMMAND]',
    '',
    'Without COMMAND, lists every command; with it, prints that command\'s full help',
    '(the same as `vxmesh COMMAND --help`).',
  ].join('\n'),
  async run(args) {
    const { commands } = await import('./index');
    if (args.length === 0) {
      out(generalHelp(commands));
      return 0;
    }
    if (args.length > 1 || args[0].startsWith('-')) {
      err(`vxmesh help: unexpected argument "${args[args.length > 1 ? 1 : 0]}"\n\n${help.usage}`);
      return 2;
    }
    const cmd = commands.find((c) => c.name === args[0]);
    if (!cmd) {
      err(`vxmesh help: unknown command "${args[0]}"\n\n${generalHelp(commands)}`);
      return 2;
    }
    out(cmd.usage);
    return 0;
  },
};
