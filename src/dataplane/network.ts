/**
 * One network (one VNI) as the data path holds it: its config, TAP, counters, FDB, neighbour
 * table, flood list and frame-size limits. A frame never crosses from one network to another.
 */
import type { Clock } from '../clock';
import type { AddressFamily, FdbConfig, NetworkConfig } from '../config/types';
import { AcceptTable } from './admission';
import { NetworkCounters } from './counters';
import { ETH_HLEN, VLAN_HLEN } from './ethernet';
import { Fdb } from './fdb';
import { NeighTable } from './neigh';
import type { Peer } from './peers';
import type { PolicyFilter } from './policy-seam';
import { isVnetTap, type TapDevice, type TxBatch } from './seams';
import { VXLAN_HLEN } from './vxlan';

/** One network as the data path holds it (what `network(vni)` / `networks()` return). */
export interface DatapathNetwork {
  readonly config: NetworkConfig;
  readonly counters: NetworkCounters;
  readonly fdb: Fdb<Peer>;
  readonly neigh: NeighTable;
  readonly tap: TapDevice;
  /** ARP requests / neighbour solicitations answered locally. */
  readonly neighAnswered: number;
  /** Null while the TAP works; set when it failed (the network forwards nothing until `replaceTap`). */
  readonly failed: DeviceFailure | null;
}

/** Why and since when (clock ms) a device failed. */
export interface DeviceFailure {
  readonly reason: string;
  readonly since: number;
}

export class Network implements DatapathNetwork {
  readonly counters = new NetworkCounters();
  readonly fdb: Fdb<Peer>;
  readonly neigh = new NeighTable();
  neighAnswered = 0;
  /** Largest frame sent/accepted, untagged and 802.1Q-tagged. */
  maxUntagged = 0;
  maxTagged = 0;
  /** Gossip's peer set for this VNI, or null → the static peers. */
  override: Peer[] | null = null;
  /** Effective flood list. */
  floodPeers: Peer[] = [];
  /** The flood list as a set: with the static peers (who serve every VNI), who may send here. */
  serving: ReadonlySet<Peer> = new Set();
  /** Who may send plaintext VXLAN here: the flood list's hosts, plus what `acceptFrom` lets in. */
  readonly accept: AcceptTable;
  /** Inbound TAP write descriptors (into the UDP slab). */
  tapTx!: TxBatch;
  rxPending = 0;
  /** Per inbound TAP descriptor: gso type + segment size (GRO runs; 0 = a plain frame), datagrams it stands for, their inner bytes. */
  tapGso!: Uint16Array;
  tapSegs!: Uint16Array;
  tapBytes!: Uint32Array;
  /** A GRO run is among the pending descriptors (written with `writeBatchGso`). */
  rxGso = false;
  removed = false;
  /** The network's policy (null: none; every frame passes). */
  policy: PolicyFilter | null = null;
  /** The TAP is a vnet TAP: read with readBatchVnet into the 64 KiB slab (fast path). */
  vnet: boolean;

  /** Set when the TAP failed (poll or read error); cleared by `Datapath.replaceTap`. */
  failed: DeviceFailure | null = null;
  /** The TAP (replaced by `Datapath.replaceTap`). */
  tap: TapDevice;

  constructor(readonly config: NetworkConfig, tap: TapDevice, fdbCfg: FdbConfig, clock: Clock) {
    this.tap = tap;
    this.fdb = new Fdb<Peer>({ ...fdbCfg, clock, counters: this.counters });
    this.vnet = isVnetTap(tap);
    this.accept = new AcceptTable(config.acceptFrom ?? 'known');
  }

  /** Whether `peer` serves this network: a static peer, or in its flood list (gossip: a host announcing the VNI). */
  serves(peer: Peer): boolean {
    return peer.isStatic || this.serving.has(peer);
  }

  /**
   * Largest frames: MTU + 14 (+ 4 tagged), and never an outer packet above the underlay MTU
   * (`overhead`: the cipher's header + tag on an encrypted network).
   */
  computeLimits(family: AddressFamily, underlayMtu: number, overhead: number): void {
    const ipHdr = family === 6 ? 40 : 20;
    const outerRoom = underlayMtu - ipHdr - 8 - VXLAN_HLEN - overhead;
    this.maxUntagged = Math.min(this.config.mtu + ETH_HLEN, outerRoom);
    this.maxTagged = Math.min(this.config.mtu + ETH_HLEN + VLAN_HLEN, outerRoom);
  }
}
