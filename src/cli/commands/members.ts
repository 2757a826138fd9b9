/** `vxmesh members [--json] [--api ADDR]`: gossip members (GET /v1/members) as a table. */

import type { Command } from '../command';
import { out, parseCommandArgs } from '../command';
import { API_OPTIONS, apiGet, MemberJson, membersTable } from './status';

export const members: Command = {
  name: 'members',
  summary: 'List gossip members with their state and time of last change',
  usage: [
    'Usage: vxmesh members [--json] [--api HOST:PORT]',
    '',
    'Reads GET /v1/members from the agent: every known member with its state (alive, suspect,',
    'dead, left), since when, gossip address, underlay VXLAN endpoint, VNIs served and number of',
    'announced endpoints. Dead and left members stay listed until reaped.',
    '',
    'Options:',
    '      --json            print the raw JSON',
    '  -a, --api HOST:PORT   the agent\'s api.listen (default 127.0.0.1:9469)',
    '',
    'Exit codes: 0 success, 1 agent unreachable or gossip off, 2 bad arguments.',
  ].join('\n'),
  async run(args) {
    const { values } = parseCommandArgs(args, API_OPTIONS);
    const r = (await apiGet(values.api, '/v1/members')) as { members: MemberJson[] };
    out(values.json ? JSON.stringify(r, null, 2) : membersTable(r.members));
    return 0;
  },
};
