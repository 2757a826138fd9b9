/**
 * Every `vxmesh` command, in the order `vxmesh --help` lists them. One command per file in this
 * folder, each exporting a `Command`; add one line here to register a new one.
 */

import type { Command } from '../command';
import { agent } from './agent';
import { checkConfig } from './check-config';
import { demo } from './demo';
import { help } from './help';
import { keygen } from './keygen';
import { version } from './version';

export const commands: readonly Command[] = [
  agent,
  checkConfig,
  demo,
  keygen,
  version,
  help,
];
