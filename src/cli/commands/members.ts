/** `vxmesh members [--json] [--api ADDR]`: gossip members (GET /v1/members) as a table. */

import type { Command } from '../command';
import { apiViewCommand, MemberJson, membersTable } from './status';

export const members: Command = apiViewCommand<{ members: MemberJson[]; gossip?: string }>({
  name: 'members',
  summary: 'List gossip members with their state and time of last change',
  path: '/v1/members',
  about: [
    'Reads GET /v1/members from the agent: every known member with its state (alive, suspect,',
    'dead, left), since when, gossip address, underlay VXLAN endpoint, VNIs served and number of',
    'announced endpoints. Dead and left members stay listed until reaped. Without gossip it says',
    'so (exit 0; --json gives {"gossip": "off", "members": []}).',
  ],
  exitOne: 'agent unreachable or API error',
  render: (r) => (r.gossip === 'off'
    ? 'gossip is off on this agent (its config has no gossip section): there are no members; it talks to its static peers (see vxmesh status)'
    : membersTable(r.members)),
});
