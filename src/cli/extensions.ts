/**
 * The agent extensions `vxmesh agent` starts, in order (gossip, crypto, metrics/health, ...).
 * Each module that plugs into the agent adds exactly one factory line to `FACTORIES` below: a
 * function from the validated config and the root logger to an extension, or null when the config
 * does not enable it (e.g. no `gossip` section).
 */

import type { AgentExtension } from '../agent/agent';
import type { Config } from '../config/types';
import type { Logger } from '../log';
import type { RuntimeNetworkApi } from '../agent/runtime-networks';
import type { GossipApi } from '../gossip/api';
import { createOpsExtension } from '../metrics/extension';
import { CryptoExtension, createCryptoExtension } from '../crypto/extension';
import type { FloodGuardDriver } from '../crypto/flood-guard';
import { GossipExtension, createGossipExtension } from '../gossip/extension';
import { PolicyExtension, createPolicyExtension } from '../policy/extension';
import { gossipPolicySync } from '../policy/gossip-sync';
import { controlRouter, endpointSource } from '../policy/sources';
import { EndpointsExtension, createEndpointsExtension } from '../endpoints/extension';
import { ProbeExtension, createProbeExtension } from '../probe/extension';
import { DockerExtension, createDockerExtension } from '../runtimes/docker/extension';
import { ObserveExtension, createObserveExtension } from '../observe/extension';
import { OpsExtension } from '../metrics/extension';
import { CaptureExtension, createCaptureExtension } from '../capture/extension';

export type ExtensionFactory = (config: Config, logger: Logger) => AgentExtension | null;

const FACTORIES: ExtensionFactory[] = [
  createCryptoExtension, // host key + sessions for encrypted networks (src/crypto); announces its public key through the gossip API
  createGossipExtension, // membership, FDB/flood lists/ARP suppression from gossip (src/gossip); when `gossip` is configured
  createEndpointsExtension, // IPAM, attach/detach, control socket (src/endpoints, src/ipam); after gossip, whose records carry leases and endpoints
  createDockerExtension, // Docker network + IPAM plugin on docker.socket (src/runtimes/docker); after endpoints, through which it works
  createPolicyExtension, // network policies: store, compiled tables per network, the data path's policy stage (src/policy); after endpoints (labels, control socket)
  createObserveExtension, // convergence telemetry, FDB/neighbour reconciliation with gossip (src/observe); when `gossip` is configured
  createProbeExtension, // data-path probes: path MTU, reachability matrix, peer liveness (src/probe); rows through the gossip API
  createOpsExtension, // /metrics, /healthz, /readyz, event-loop monitor (src/metrics)
  createCaptureExtension, // drop rings and live capture as pcapng on the control socket, per-peer drop series (src/capture); after ops (its registry) and endpoints (the socket)
];

/** Parts made by the caller that extensions are connected to (the CLI's runtime networks). */
export interface ExtensionLinks {
  /** Networks created at run time (src/agent/runtime-networks.ts), for the Docker driver. */
  runtimeNetworks?: RuntimeNetworkApi | null;
  /**
   * The kernel flood guard for handshake initiations (src/crypto/flood-guard.ts), given by the
   * agent process only (it changes the host's nftables), unless `underlay.handshakeGuard` is false.
   */
  floodGuard?: FloodGuardDriver | null;
}

export function buildExtensions(config: Config, logger: Logger, links: ExtensionLinks = {}): AgentExtension[] {
  const out: AgentExtension[] = [];
  for (const f of FACTORIES) {
    const ext = f(config, logger);
    if (ext) out.push(ext);
  }
  // Typed connections between extensions, made here once (never by looking each other up by name).
  const gossip = out.find((e): e is GossipExtension => e instanceof GossipExtension);
  const policy = out.find((e): e is PolicyExtension => e instanceof PolicyExtension);
  const endpoints = out.find((e): e is EndpointsExtension => e instanceof EndpointsExtension);
  const crypto = out.find((e): e is CryptoExtension => e instanceof CryptoExtension);
  const capture = out.find((e): e is CaptureExtension => e instanceof CaptureExtension);
  const probe = out.find((e): e is ProbeExtension => e instanceof ProbeExtension);
  const ops = out.find((e): e is OpsExtension => e instanceof OpsExtension);
  capture?.connect({ control: endpoints ? controlRouter(endpoints) : undefined, registry: ops?.metrics.registry ?? null });
  probe?.connect({ gossip: gossip ?? null }); // reachability rows in gossip records
  crypto?.connect({ gossip: gossip ?? null }); // publishes its key, subscribes to members (GossipApi)
  crypto?.useFloodGuard(config.underlay.handshakeGuard === false ? null : links.floodGuard ?? null);
  endpoints?.connect({ gossip: gossip ?? null });
  out.find((e): e is DockerExtension => e instanceof DockerExtension)?.connect({ endpoints: endpoints ?? null, runtimeNetworks: links.runtimeNetworks ?? null });
  ops?.connect({ crypto: crypto ?? null, policy: policy ?? null, probe: probe ?? null }); // read at scrape time
  out.find((e): e is ObserveExtension => e instanceof ObserveExtension)?.connect({ gossip: gossip ?? null, registry: ops?.metrics.registry ?? null });
  if (policy) {
    policy.connect({
      sync: gossip ? gossipPolicySync(gossip) : null,
      endpoints: endpoints ? endpointSource(config, endpoints, gossip ?? null, () => policy.clock) : null,
      control: endpoints ? controlRouter(endpoints) : null,
    });
  }
  return out;
}

/** The gossip API among built extensions, for the agent (AgentOptions.gossip), or null. */
export function gossipApiOf(extensions: AgentExtension[]): GossipApi | null {
  return extensions.find((e): e is GossipExtension => e instanceof GossipExtension) ?? null;
}
