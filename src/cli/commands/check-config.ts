/**
 * `vxmesh check-config FILE`: runs the agent's own config loader without touching the system
 * (outside inputs, all read-only: an MTU lookup and the key files the config names) and prints a
 * summary. Exit 2 on a bad config. It accepts exactly what `vxmesh agent` accepts at start: after
 * the loader, `checkReferencedFiles` reads the key files with the functions the extensions use at
 * start (the cluster keyring as gossip reads it; the host key as crypto reads it, when it exists —
 * a missing one is created at start).
 */
import * as fs from 'node:fs';

import type { Command } from '../command';
import { out, parseCommandArgs } from '../command';
import { loadConfigFile } from '../../config/load';
import { systemMtuLookup } from '../../config/mtu';
import type { Config } from '../../config/types';
import { ConfigError } from '../../errors';
import { createCryptoExtension, DEFAULT_HOST_KEY_FILE } from '../../crypto/extension';
import { decodeKey as decodeHostKey } from '../../crypto/keys';
import { readKeyring } from '../../gossip/extension';
import { nullLogger } from '../../log';

/**
 * The start-time checks of the extensions that depend on files the config names, without side
 * effects: the gossip keyring (`readKeyring`, what gossip and the handshake PSKs use) and an
 * existing host key file (crypto's `decodeKey`). Throws ConfigError naming the field.
 */
export function checkReferencedFiles(config: Config): void {
  if (config.gossip?.keyFile) readKeyring(config.gossip.keyFile);
  if (createCryptoExtension(config, nullLogger)) {
    const file = config.node.keyFile ?? DEFAULT_HOST_KEY_FILE;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // created at start
      throw new ConfigError('node.keyFile', `cannot read ${file}: ${(e as Error).message}`);
    }
    try {
      decodeHostKey(text, file);
    } catch (e) {
      throw new ConfigError('node.keyFile', (e as Error).message);
    }
  }
}

export const checkConfig: Command = {
  name: 'check-config',
  summary: 'Validate a config file without touching the system',
  usage: [
    'Usage: vxmesh check-config [--json] [--quiet] FILE',
    '',
    'Reads FILE (YAML, or JSON by extension or content), validates it exactly as `vxmesh agent`',
    'would, applies every default and prints a summary. Nothing on the system is changed.',
    'Errors name the field and what was expected, e.g.',
    '  networks[1].vni: expected an integer 1..16777215, got "abc" (line 9)',
    '',
    'Options:',
    '  --json     print the validated config, with every default filled in, as JSON; an invalid',
    '             one as {"valid": false, "file": FILE, "errors": [...]} (exit 2)',
    '  --quiet    print nothing when the config is valid',
    '',
    'Exit codes: 0 valid, 2 invalid config or bad arguments.',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, { json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } }, [1, 1]);
    let mtuFromSystem = false;
    const lookup = systemMtuLookup();
    let config: Config;
    try {
      config = loadConfigFile(positionals[0], {
        mtuLookup: (address) => {
          const m = lookup(address);
          mtuFromSystem = m !== null;
          return m;
        },
      });
      checkReferencedFiles(config);
    } catch (e) {
      // --json is JSON also when invalid: {valid: false, file, errors: [one line per error]}, exit 2
      if (!values.json || !(e instanceof ConfigError)) throw e;
      out(JSON.stringify({ valid: false, file: positionals[0], errors: e.message.split('\n') }, null, 2));
      return 2;
    }
    if (values.json) out(JSON.stringify(config, null, 2));
    else if (!values.quiet) out(summarize(config, mtuFromSystem));
    return 0;
  },
};

/** A readable summary of a validated config. */
export function summarize(c: Config, mtuFromSystem: boolean): string {
  const fam = `IPv${c.underlay.family}`;
  const ep = (e: { address: string; port: number }) => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);
  const lines = [
    `config ${c.source ?? '(text)'} is valid`,
    `node      ${c.node.name}${c.node.keyFile ? ` (host key ${c.node.keyFile})` : ''}`,
    `underlay  ${ep(c.underlay)} ${fam}, MTU ${c.underlay.mtu}${mtuFromSystem ? ' (from the interface)' : ''}, ${c.underlay.sourcePorts} source port${c.underlay.sourcePorts > 1 ? 's' : ''}`,
    `networks  ${c.networks.length}`,
  ];
  for (const n of c.networks) {
    lines.push(`  ${n.name.padEnd(15)} vni ${String(n.vni).padEnd(8)} bridge ${n.bridge.padEnd(15)} tap ${n.tap.padEnd(15)} mtu ${n.mtu}${n.encrypted ? ' encrypted' : ''}${acceptText(n.acceptFrom)}`);
  }
  lines.push(`peers     ${c.peers.length ? c.peers.map(ep).join(', ') : 'none'}`);
  if (c.gossip) {
    const g = c.gossip;
    lines.push(`gossip    ${ep({ address: g.address, port: g.port })} profile ${g.profile}, seeds ${g.seeds.length ? g.seeds.map(ep).join(', ') : 'none'}, keyring ${g.keyFile}`);
  } else {
    lines.push('gossip    off');
  }
  lines.push(`fdb       ageing ${c.fdb.ageingSeconds} s, at most ${c.fdb.maxEntries} entries per network`);
  lines.push(`api       ${ep({ address: c.api.listen.host, port: c.api.listen.port })}`);
  lines.push(`log       ${c.log.level}`);
  return lines.join('\n');
}

/** ` accepts any` / ` accepts <CIDRs>` beyond the known hosts; nothing for the default (known). */
function acceptText(a: 'known' | 'any' | string[] | undefined): string {
  if (a === undefined || a === 'known' || (Array.isArray(a) && a.length === 0)) return '';
  return ` accepts ${a === 'any' ? 'any sender' : a.join(',')}`;
}
