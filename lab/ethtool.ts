/**
 * A tiny `ethtool -k / -K` on the addon's SIOCETHTOOL calls (src/dataplane/netdev.ts), so the lab,
 * the demo and the tests do not need the ethtool binary. It acts in the namespace it runs in:
 *
 *   ip netns exec NS node dist/lab/ethtool.js IFACE                      list features (like -k)
 *   ip netns exec NS node dist/lab/ethtool.js IFACE tx off tso off gso off  set them (like -K)
 *   (`-k IFACE` and `-K IFACE …` are accepted too)
 *
 * Names: the groups rx, tx, sg, tso, gso, gro, lro, rxvlan, txvlan (every changeable feature of
 * the group, as ethtool -K does) or a kernel feature name as listed (e.g. rx-udp-gro-forwarding).
 * Exit status 0 on success, 1 with a message on stderr otherwise, 2 for a usage error.
 */
import { getOffloads, listFeatures, OFFLOAD_GROUPS, offloadLabel, setOffloads } from '../src/dataplane/netdev';

export const USAGE = 'usage: ethtool.js IFACE [FEATURE on|off]...   (-k IFACE lists, -K IFACE FEATURE on|off... sets)';

/** Parses `[-k|-K] IFACE [name on|off]...`; throws a usage message. */
export function parseArgs(argv: string[]): { iface: string; set: Array<[string, boolean]> } {
  const args = [...argv];
  const flag = args[0] === '-k' || args[0] === '-K' ? args.shift() : undefined;
  const iface = args.shift();
  if (!iface || iface.startsWith('-')) throw new Error(USAGE);
  if (flag === '-k' && args.length) throw new Error(USAGE);
  if (flag === '-K' && args.length === 0) throw new Error(USAGE);
  if (args.length % 2 !== 0) throw new Error(`${USAGE}\n(every feature needs on or off)`);
  const set: Array<[string, boolean]> = [];
  for (let i = 0; i < args.length; i += 2) {
    const v = args[i + 1];
    if (v !== 'on' && v !== 'off') throw new Error(`${USAGE}\n('${args[i]}' must be followed by on or off, not '${v}')`);
    set.push([args[i], v === 'on']);
  }
  return { iface, set };
}

/** `ethtool -k`-style listing. */
export function render(iface: string): string {
  const g = getOffloads(iface);
  const onoff = (b: boolean) => (b ? 'on' : 'off');
  const lines = [`Features for ${iface}:`, ...OFFLOAD_GROUPS.map((k) => `${offloadLabel(k)}: ${onoff(g[k])}`)];
  for (const f of listFeatures(iface)) {
    lines.push(`${f.name}: ${onoff(f.active)}${f.fixed ? ' [fixed]' : ''}${f.requested !== f.active ? ` [requested ${onoff(f.requested)}]` : ''}`);
  }
  return lines.join('\n');
}

export function main(argv: string[]): number {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  try {
    if (parsed.set.length === 0) process.stdout.write(render(parsed.iface) + '\n');
    else setOffloads(parsed.iface, Object.fromEntries(parsed.set));
    return 0;
  } catch (e) {
    process.stderr.write(`ethtool.js: ${(e as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
