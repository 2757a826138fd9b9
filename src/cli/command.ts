/**
 * The shape of a CLI command (one file per command under `commands/`, listed in
 * `commands/index.ts`) and the shared argument parsing on top of node:util parseArgs.
 */

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors';

export interface Command {
  /** The word after `vxmesh`. */
  name: string;
  /** One line for `vxmesh --help`. */
  summary: string;
  /** Full help for `vxmesh <name> --help`: synopsis, options, exit codes. */
  usage: string;
  /** Runs with the arguments after the command name; resolves with the exit code. */
  run(args: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Strict parseArgs: unknown options and wrong positional counts become UsageError (exit 2).
 * `positionals` is [min, max].
 */
export function parseCommandArgs<O extends Options>(
  args: string[],
  options: O,
  positionals: [number, number] = [0, 0],
): { values: { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string }; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: positionals[1] > 0 });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  const n = parsed.positionals.length;
  if (n < positionals[0]) throw new UsageError(`missing argument${positionals[0] - n > 1 ? 's' : ''}`);
  if (n > positionals[1]) throw new UsageError(`unexpected argument "${parsed.positionals[positionals[1]]}"`);
  return parsed as never;
}

/** Writes to stdout (commands print results there; diagnostics go to stderr). */
export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

export function err(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : text + '\n');
}
