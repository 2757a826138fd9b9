/**
 * The `vxmesh` command line (bin/vxmesh calls `main`). Dispatches to one command file per verb
 * (`commands/`), handles `--help`/`--version` and maps failures to exit codes: 2 for bad usage or
 * config (UsageError, ConfigError), 1 for runtime failures. Never throws, and never prints a stack
 * trace unless VXMESH_DEBUG is set.
 */

import { ConfigError, EXIT_RUNTIME, EXIT_USAGE, SystemError, UsageError, VxmeshError } from '../errors';
import { didYouMean } from '../config/check';
import { configErrorFile } from '../config/load';
import { commands } from './commands/index';
import { generalHelp } from './commands/help';
import { err, out } from './command';

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    err(generalHelp(commands));
    return EXIT_USAGE;
  }
  if (first === '-h' || first === '--help') {
    out(generalHelp(commands));
    return 0;
  }
  if (first === '-V' || first === '--version') return run('version', rest);
  if (first.startsWith('-')) {
    err(`vxmesh: unknown option "${first}"\n\n${generalHelp(commands)}`);
    return EXIT_USAGE;
  }
  return run(first, rest);
}

async function run(name: string, args: string[]): Promise<number> {
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    const hint = didYouMean(name, commands.map((c) => c.name));
    err(`vxmesh: unknown command "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}\n\n${generalHelp(commands)}`);
    return EXIT_USAGE;
  }
  if (args.includes('--help') || args.includes('-h')) {
    out(cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(args);
  } catch (e) {
    return report(cmd.name, e);
  }
}

/** Prints a failure the way an operator wants to read it and returns its exit code. */
function report(command: string, e: unknown): number {
  if (e instanceof UsageError) {
    err(`vxmesh ${command}: ${e.message}\nRun 'vxmesh ${command} --help' for usage.`);
    return EXIT_USAGE;
  }
  if (e instanceof ConfigError) {
    const lines = e.message.split('\n');
    const file = configErrorFile(e);
    const head = `vxmesh ${command}: invalid config${file ? ` ${file}` : ''}:`;
    err(lines.length > 1 ? `${head}\n  ${lines.join('\n  ')}` : `${head} ${e.message}`);
    return EXIT_USAGE;
  }
  if (e instanceof SystemError) {
    err(`vxmesh ${command}: ${e.message} (${e.syscall}: ${e.errno})`);
    return EXIT_RUNTIME;
  }
  if (e instanceof VxmeshError) {
    err(`vxmesh ${command}: ${e.message}`);
    return EXIT_RUNTIME;
  }
  // Not one of ours: a bug or an unexpected answer. One line; the stack only when asked for.
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  const stack = process.env.VXMESH_DEBUG && e instanceof Error && e.stack ? `\n${e.stack}` : ' (set VXMESH_DEBUG=1 to see where)';
  err(`vxmesh ${command}: unexpected error: ${msg}${stack}`);
  return EXIT_RUNTIME;
}
