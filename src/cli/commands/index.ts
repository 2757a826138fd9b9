/**
 * Every `vxmesh` command, in the order `vxmesh --help` lists them. One command per file in this
 * folder, each exporting a `Command`; add one line here to register a new one.
 */

import type { Command } from '../command';
import { agent } from './agent';
import { checkConfig } from './check-config';
import { cleanup } from './cleanup';
import { demo } from './demo';
import { help } from './help';
import { keygen } from './keygen';
import { reload } from './reload';
import { version } from './version';
import { status } from './status';
import { members } from './members';
import { fdb } from './fdb';
import { attach } from './attach';
import { detach } from './detach';
import { endpointsCmd } from './endpoints';
import { installCni } from './install-cni';
import { installDocker } from './install-docker';
import { policy } from './policy';
import { capture } from './capture';

export const commands: readonly Command[] = [
  agent,
  checkConfig,
  cleanup,
  demo,
  keygen,
  status, members, fdb, reload, // control-API views and actions
  attach, detach, endpointsCmd, installCni, installDocker, // endpoints (control socket), CNI, Docker
  policy, // network policies (control socket)
  capture, // drops and live frames as pcapng (control socket)
  version,
  help,
];
