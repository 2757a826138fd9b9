/**
 * The agent's status document (GET /v1/status, `vxmesh status`): networks with their devices and
 * counters, peers, global counters, readiness and each extension's own status. Built from a
 * read-only view of the agent so the shape lives in one place.
 */

import type { Config } from '../config/types';
import type { TapDevice } from '../dataplane/seams';
import type { Datapath } from '../dataplane/datapath';
import { RX_DROP_REASONS, TX_DROP_REASONS, type NetworkCounters, type GlobalCounters } from '../dataplane/counters';
import type { NetworkState } from './netsetup';
import type { AgentWatch } from './watch';

/** What status reads from the agent. */
export interface StatusView {
  readonly config: Config;
  readonly running: boolean;
  readonly datapath: Datapath | undefined;
  readonly networks: Iterable<NetworkState>;
  readonly uptimeSeconds: number;
  readonly ready: unknown;
  readonly reload: unknown;
  readonly watch: AgentWatch | null;
  networkFailure(vni: number): { reason: string; since: number; attempts: number; nextInMs: number; lastError: string | null } | null;
  readonly extensions: readonly { name: string; status?(): unknown }[];
}

export const epText = (e: { address: string; port: number }): string => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);

export function countersJson(c: NetworkCounters): Record<string, unknown> {
  const rxDrops: Record<string, number> = {};
  RX_DROP_REASONS.forEach((r, i) => { rxDrops[r] = c.rxDrops[i]; });
  const txDrops: Record<string, number> = {};
  TX_DROP_REASONS.forEach((r, i) => { txDrops[r] = c.txDrops[i]; });
  return {
    rxPackets: c.rxPackets, rxBytes: c.rxBytes, rxDelivered: c.rxDelivered, rxDeliveredBytes: c.rxDeliveredBytes, rxDrops,
    txFrames: c.txFrames, txFrameBytes: c.txFrameBytes, txPackets: c.txPackets, txBytes: c.txBytes, txDrops,
    txFlooded: c.txFlooded, fdbEvictions: c.fdbEvictions,
  };
}

export function globalJson(c: GlobalCounters): Record<string, unknown> {
  const rxDrops: Record<string, number> = {};
  RX_DROP_REASONS.forEach((r, i) => { rxDrops[r] = c.rxDrops[i]; });
  return { rxDatagrams: c.rxDatagrams, rxProbes: c.rxProbes, rxDrops, tapBatches: c.tapBatches, udpBatches: c.udpBatches, peerEvictions: c.peerEvictions };
}

/** Coalescing on a fast-path TAP's writes (GSO frames written, frames merged into them), or null. */
export function tapWriteStats(tap: TapDevice): { gsoWrites: number; coalesced: number } | null {
  const st = (tap as Partial<{ vnetHdr: boolean; stats: { gsoWrites: number; coalesced: number } }>);
  return st.vnetHdr === true && st.stats ? { gsoWrites: st.stats.gsoWrites, coalesced: st.stats.coalesced } : null;
}

/** Everything an operator wants to see, JSON-able. */
export function buildStatus(v: StatusView): Record<string, unknown> {
  const c = v.config;
  const dpath = v.running ? v.datapath : undefined;
  const networks = [...v.networks].map((s) => {
    const dp = dpath ? dpath.network(s.config.vni) : undefined;
    return {
      name: s.config.name,
      vni: s.config.vni,
      bridge: s.config.bridge,
      tap: s.config.tap,
      mtu: s.config.mtu,
      encrypted: s.config.encrypted,
      acceptFrom: s.config.acceptFrom ?? 'known',
      bridgeCreated: s.bridgeCreated,
      tapCreated: s.tap.created,
      tapReader: dpath ? dpath.tapReaderStats(s.tap) : null,
      tapQueueDrops: s.tap.queueDrops?.() ?? null,
      tapWrites: tapWriteStats(s.tap),
      fdbSize: dp ? dp.fdb.size : null,
      failed: failedText(v.networkFailure(s.config.vni)),
      oversizedPorts: v.watch ? v.watch.oversizedPorts(s.config.vni) : [],
      counters: dp ? countersJson(dp.counters) : null,
    };
  });
  const live = new Map((v.watch?.peerViews() ?? []).map((p) => [p.endpoint, p]));
  const peers = dpath
    ? dpath.peerList().map((p) => {
        const l = live.get(p.label);
        return {
          // `peer`: the node name where gossip knows it, else the endpoint (as in metrics)
          peer: l?.peer ?? p.label, endpoint: p.label, static: p.static,
          state: l?.state ?? 'unknown', lastReceived: l?.lastReceived ?? null, lastReceivedAgoSeconds: l?.lastReceivedAgoSeconds ?? null,
          rxPackets: p.counters.rxPackets, rxBytes: p.counters.rxBytes, txPackets: p.counters.txPackets, txBytes: p.counters.txBytes,
        };
      })
    : [];
  const extensions: Record<string, unknown> = {};
  for (const ext of v.extensions) {
    if (!ext.status) continue;
    try {
      extensions[ext.name] = ext.status();
    } catch (e) {
      extensions[ext.name] = { error: (e as Error).message };
    }
  }
  return {
    node: c.node.name,
    pid: process.pid,
    uptimeSeconds: v.uptimeSeconds,
    ready: v.ready,
    reload: v.reload,
    underlay: { address: c.underlay.address, port: c.underlay.port, family: c.underlay.family, mtu: c.underlay.mtu, sourcePorts: c.underlay.sourcePorts },
    staticPeers: c.peers.map(epText),
    networks,
    peers,
    counters: dpath ? globalJson(dpath.counters) : null,
    busyPoll: dpath ? dpath.busyPollStats() : null,
    extensions,
  };
}

/** GET /v1/fdb: every network's FDB from the data path (with or without gossip). */
export function fdbJson(dp: Datapath): { network: string; vni: number; entries: { mac: string; kind: string; peer: string | null; idleMs: number; ips: string[] }[] }[] {
  return dp.networks().map((n) => ({
    network: n.config.name,
    vni: n.config.vni,
    entries: n.fdb.entries().map((e) => ({
      mac: e.mac,
      kind: e.kind,
      peer: e.peer ? (e.peer as unknown as { label: string }).label : null,
      idleMs: Math.round(e.idleMs),
      ips: [...e.ipv4, ...e.ipv6],
    })),
  }));
}

function failedText(f: { reason: string; attempts: number; nextInMs: number; lastError: string | null } | null): string | null {
  if (!f) return null;
  return `${f.reason}; re-creating the TAP${f.attempts ? ` (attempt ${f.attempts} failed${f.lastError ? `: ${f.lastError}` : ''}; next in ${Math.ceil(f.nextInMs / 1000)}s)` : ''}`;
}
