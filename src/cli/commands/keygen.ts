/**
 * `vxmesh keygen cluster|host|show`: new keys. `cluster` makes a cluster (gossip) key for
 * `gossip.keyFile` (src/gossip/keyring.ts); `host` makes a host key pair for `node.keyFile`
 * (src/crypto/keys.ts). With `--out FILE` either is written with mode 0600, never over an existing
 * file. `show FILE` prints what a key file holds: a host key's public key, or how many cluster keys.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from '../command';
import { err, out, parseCommandArgs } from '../command';
import { UsageError, VxmeshError } from '../../errors';

/** Creates `file` with `text`, mode 0600 exactly, refusing to overwrite (O_EXCL). */
export function writeSecretFile(file: string, text: string): string {
  const abs = path.resolve(file);
  let fd: number;
  try {
    fd = fs.openSync(abs, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new VxmeshError('ERR_VXMESH_KEY', `${abs} exists; refusing to overwrite a key file`);
    throw new VxmeshError('ERR_VXMESH_KEY', `cannot create ${abs}: ${code ?? (e as Error).message}`);
  }
  try {
    fs.fchmodSync(fd, 0o600); // the umask may remove bits, never add them: make it exact
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return abs;
}

export const keygen: Command = {
  name: 'keygen',
  summary: 'Generate a cluster key (gossip) or a host key pair (encryption); show a key file',
  usage: [
    'Usage: vxmesh keygen cluster [--out FILE]',
    '       vxmesh keygen host [--out FILE]',
    '       vxmesh keygen show FILE',
    '',
    'cluster   A new random 32-byte cluster key (base64), printed on stdout, or with --out FILE',
    '          written to FILE (mode 0600, never overwritten). It goes in the file named by',
    '          gossip.keyFile (one key per line; the first line is the primary key: to rotate,',
    '          add the new key as a second line on every host, then move it first, then remove',
    '          the old one).',
    'host      A new host key pair for encrypted networks (node.keyFile). Without --out, the',
    '          private key (base64) is printed on stdout and the public key on stderr; with',
    '          --out FILE, the key file is written with mode 0600 (never overwritten) and the',
    '          public key printed. The agent also creates node.keyFile itself on first start.',
    'show      What FILE holds: for a host key file its public key (what other hosts pin in',
    '          peers[].publicKey); for a cluster key file the number of keys (they have no',
    '          public part). Warns when FILE is readable by group or others.',
    '',
    'Options:',
    '  -o, --out FILE   write the key file (mode 0600) instead of printing the key',
    '',
    'Exit codes: 0 success, 1 failure (e.g. FILE exists, or is not a key file), 2 bad arguments.',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, { out: { type: 'string', short: 'o' } }, [1, 2]);
    const kind = positionals[0];
    if (kind !== 'show' && positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
    if (kind === 'cluster') {
      const { generateClusterKey } = await import('../../gossip/keyring');
      const key = await generateClusterKey();
      if (values.out === undefined) {
        out(key);
      } else {
        const abs = writeSecretFile(values.out, key + '\n');
        out(`wrote ${abs} (mode 0600): name it in gossip.keyFile on every host of the cluster`);
      }
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
    if (kind === 'show') {
      if (values.out !== undefined) throw new UsageError('--out does not apply to "keygen show"');
      const file = positionals[1];
      if (file === undefined) throw new UsageError('"keygen show" needs a FILE');
      return showKeyFile(file);
    }
    throw new UsageError(`expected "cluster", "host" or "show", got "${kind}"`);
  },
};

async function showKeyFile(file: string): Promise<number> {
  const abs = path.resolve(file);
  let text: string;
  let mode: number;
  try {
    text = fs.readFileSync(abs, 'utf8');
    mode = fs.statSync(abs).mode & 0o777;
  } catch (e) {
    throw new VxmeshError('ERR_VXMESH_KEY', `cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const lines = text.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
  if (lines.length === 0) throw new VxmeshError('ERR_VXMESH_KEY', `${abs} holds no key`);
  const keys = await import('../../crypto/keys');
  await keys.cryptoReady();
  let decoded: Uint8Array[];
  try {
    decoded = lines.map((l, i) => keys.decodeKey(l, `${abs}:${i + 1}`));
  } catch (e) {
    throw new VxmeshError('ERR_VXMESH_KEY', `${abs} is not a vxmesh key file: ${(e as Error).message}`);
  }
  if (decoded.length === 1) {
    // One 32-byte key: a host private key (node.keyFile) or a one-key cluster keyring; both readings are printed.
    out(`${abs}: one 32-byte key`);
    out(`public key (if it is a host key, node.keyFile): ${keys.encodeKey(keys.publicKeyOf(decoded[0]))}`);
    out('(if it is a cluster key, gossip.keyFile: it has no public part; the same file goes on every host)');
  } else {
    out(`${abs}: cluster keyring (gossip.keyFile) with ${decoded.length} keys; the first is the primary; cluster keys have no public part`);
  }
  if ((mode & 0o077) !== 0) err(`warning: ${abs} has mode ${mode.toString(8).padStart(4, '0')}; a key file should be 0600 (chmod 600 ${abs})`);
  return 0;
}
