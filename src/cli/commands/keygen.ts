/**
 * `vxmesh keygen cluster|host`: new keys. `cluster` prints a cluster (gossip) key for
 * `gossip.keyFile` (src/gossip/keyring.ts); `host` makes a host key pair for `node.keyFile`
 * (src/crypto/keys.ts), printed or written to a file with mode 0600.
 */

import type { Command } from '../command';
import { err, out, parseCommandArgs } from '../command';
import { UsageError } from '../../errors';

export const keygen: Command = {
  name: 'keygen',
  summary: 'Generate a cluster key (gossip) or a host key pair (encryption)',
  usage: [
    'Usage: vxmesh keygen cluster',
    '       vxmesh keygen host [--out FILE]',
    '',
    'cluster   Print a new random 32-byte cluster key (base64) on stdout. Put it in the file named',
    '          by gossip.keyFile (one key per line; the first line is the primary key: to rotate,',
    '          add the new key as a second line on every host, then move it first, then remove',
    '          the old one).',
    'host      Make a new host key pair for encrypted networks (node.keyFile). Without --out, the',
    '          private key (base64) is printed on stdout and the public key on stderr; with',
    '          --out FILE, the key file is written with mode 0600 (never overwritten) and the',
    '          public key printed. The agent also creates node.keyFile itself on first start.',
    '',
    'Options:',
    '  -o, --out FILE   host only: write the key file instead of printing the private key',
    '',
    'Exit codes: 0 success, 1 failure (e.g. FILE exists), 2 bad arguments.',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, { out: { type: 'string', short: 'o' } }, [1, 1]);
    const kind = positionals[0];
    if (kind === 'cluster') {
      if (values.out !== undefined) throw new UsageError('--out applies to "keygen host" only');
      const { generateClusterKey } = await import('../../gossip/keyring');
      out(await generateClusterKey());
      return 0;
    }
    if (kind === 'host') {
      const { keygenHost } = await import('../../crypto/keys');
      const r = await keygenHost(values.out);
      if (r.privateKeyLine) {
        out(r.privateKeyLine);
        err(`public key: ${r.publicKey}`);
      } else {
        out(`wrote ${r.path} (mode 0600)\npublic key: ${r.publicKey}`);
      }
      return 0;
    }
    throw new UsageError(`expected "cluster" or "host", got "${kind}"`);
  },
};
