/** `vxmesh demo`: the three-host lab in network namespaces (lab/demo.ts, the lab's code). */

import type { Command } from '../command';
import { parseCommandArgs } from '../command';

export const demo: Command = {
  name: 'demo',
  summary: 'Run a three-host demo in network namespaces (root)',
  usage: [
    'Usage: vxmesh demo',
    '',
    'Builds a lab of three hosts in network namespaces (unique names, 198.18.0.0/15 addresses),',
    'two containers per host, starts a vxmesh agent on each host, shows a ping and a TCP transfer',
    'across hosts, then tears everything down (also on Ctrl-C). Needs root. `npm start` runs it.',
    '',
    'Exit codes: 0 success, 1 failure.',
  ].join('\n'),
  async run(args) {
    parseCommandArgs(args, {});
    const { runDemo } = (await import('../../../lab/demo')) as { runDemo: () => Promise<number | void> };
    const r = await runDemo();
    return typeof r === 'number' ? r : 0;
  },
};
