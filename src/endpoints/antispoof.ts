/**
 * Anti-spoofing: an endpoint sends only from its own MAC and addresses. One nftables table in the
 * bridge family (`bridge vxmesh`), a base chain on the bridge prerouting hook that dispatches by
 * input port through a verdict map to one chain per endpoint port:
 *
 *   table bridge vxmesh {
 *     map ports { type ifname : verdict }
 *     chain prerouting { type filter hook prerouting priority -300; iifname vmap @ports }
 *     chain p_<port> {
 *       ether saddr != MAC                      counter drop   # forged source MAC
 *       arp saddr ether != MAC                  counter drop   # forged ARP sender MAC
 *       arp saddr ip != { IPv4s }               counter drop   # forged ARP sender IP (0.0.0.0 = probe, allowed)
 *       ip saddr != { IPv4s }                   counter drop   # forged IPv4 source
 *       ip6 saddr != { IPv6s, fe80::/10, :: }   counter drop   # forged IPv6 source (link-local and DAD allowed)
 *     }
 *   }
 *
 * Drops are the rules' counters (`drops(port)` sums them; `vxmesh endpoints` shows them). Frames
 * from the overlay TAP have no map entry and pass. macvlan endpoints do not cross a bridge here
 * (not filtered). `NftSpoofGuard` drives `nft -f -`; `MemorySpoofGuard` is the twin.
 */
import { runNft } from '../agent/nft';
import { EndpointError, ERR_ATTACH_FAILED } from '../errors';

export interface SpoofGuard {
  /** Restricts frames entering the bridge from `port` to `mac` and `ips` (canonical, no prefix). */
  install(port: string, mac: string, ips: string[]): Promise<void>;
  /** Removes the port's rules (no error when absent). */
  remove(port: string): Promise<void>;
  /** Packets dropped on `port` so far (0 when unknown). */
  drops(port: string): Promise<number>;
  /** Removes everything (table) — when no endpoint is left. */
  clear(): Promise<void>;
}

export const NFT_TABLE = 'vxmesh';

const nft = runNft; // shared runner (src/agent/nft.ts)

const chainOf = (port: string) => `p_${port.replace(/[^A-Za-z0-9_]/g, '_')}`;

export function rulesFor(port: string, mac: string, ips: string[]): string {
  const v4 = ips.filter((i) => !i.includes(':'));
  const v6 = ips.filter((i) => i.includes(':'));
  const ch = chainOf(port);
  const t = `bridge ${NFT_TABLE}`;
  const lines = [
    `add table ${t}`,
    `add map ${t} ports { type ifname : verdict; }`,
    `add chain ${t} prerouting { type filter hook prerouting priority -300; policy accept; }`,
    `add chain ${t} ${ch}`,
    `flush chain ${t} ${ch}`,
    `add rule ${t} ${ch} ether saddr != ${mac} counter drop`,
    `add rule ${t} ${ch} arp saddr ether != ${mac} counter drop`,
    `add rule ${t} ${ch} arp saddr ip != { 0.0.0.0${v4.map((i) => `, ${i}`).join('')} } counter drop`,
    `add rule ${t} ${ch} ether type ip ip saddr != { ${v4.length ? v4.join(', ') : '255.255.255.255'} } counter drop`,
    `add rule ${t} ${ch} ether type ip6 ip6 saddr != { ::, fe80::/10${v6.map((i) => `, ${i}`).join('')} } counter drop`,
  ];
  return lines.join('\n') + '\n';
}

export class NftSpoofGuard implements SpoofGuard {
  private based = false;

  private async ensureBase(): Promise<void> {
    if (this.based) return;
    const t = `bridge ${NFT_TABLE}`;
    const r = await nft(['-f', '-'], [
      `add table ${t}`,
      `add map ${t} ports { type ifname : verdict; }`,
      `add chain ${t} prerouting { type filter hook prerouting priority -300; policy accept; }`,
      `flush chain ${t} prerouting`,
      `add rule ${t} prerouting iifname vmap @ports`,
    ].join('\n') + '\n');
    if (r.code !== 0) throw new EndpointError(ERR_ATTACH_FAILED, `nftables (anti-spoofing table): ${r.stderr.trim()}`, false);
    this.based = true;
  }

  async install(port: string, mac: string, ips: string[]): Promise<void> {
    await this.ensureBase();
    const r = await nft(['-f', '-'], rulesFor(port, mac, ips));
    if (r.code !== 0) throw new EndpointError(ERR_ATTACH_FAILED, `nftables (anti-spoofing for ${port}): ${r.stderr.trim()}`, false);
    const r2 = await nft(['add', 'element', 'bridge', NFT_TABLE, 'ports', `{ "${port}" : jump ${chainOf(port)} }`]);
    if (r2.code !== 0 && !/exists/i.test(r2.stderr)) throw new EndpointError(ERR_ATTACH_FAILED, `nftables (anti-spoofing for ${port}): ${r2.stderr.trim()}`, false);
  }

  async remove(port: string): Promise<void> {
    const ch = chainOf(port);
    await nft(['delete', 'element', 'bridge', NFT_TABLE, 'ports', `{ "${port}" }`]);
    await nft(['delete', 'chain', 'bridge', NFT_TABLE, ch]);
  }

  async drops(port: string): Promise<number> {
    const r = await nft(['-j', 'list', 'chain', 'bridge', NFT_TABLE, chainOf(port)]);
    if (r.code !== 0) return 0;
    let n = 0;
    try {
      const doc = JSON.parse(r.stdout) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
      for (const it of doc.nftables) for (const e of it.rule?.expr ?? []) if (e.counter) n += e.counter.packets;
    } catch {
      return 0;
    }
    return n;
  }

  async clear(): Promise<void> {
    await nft(['delete', 'table', 'bridge', NFT_TABLE]);
    this.based = false;
  }
}

export class MemorySpoofGuard implements SpoofGuard {
  readonly ports = new Map<string, { mac: string; ips: string[] }>();
  async install(port: string, mac: string, ips: string[]): Promise<void> {
    this.ports.set(port, { mac, ips: [...ips] });
  }
  async remove(port: string): Promise<void> {
    this.ports.delete(port);
  }
  async drops(): Promise<number> {
    return 0;
  }
  async clear(): Promise<void> {
    this.ports.clear();
  }
}
