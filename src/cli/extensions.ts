/**
 * The agent extensions `vxmesh agent` starts, in order (gossip, crypto, metrics/health, ...).
 * Each module that plugs into the agent adds exactly one factory line to `FACTORIES` below: a
 * function from the validated config and the root logger to an extension, or null when the config
 * does not enable it (e.g. no `gossip` section).
 */

import type { AgentExtension } from '../agent/agent';
import type { Config } from '../config/types';
import type { Logger } from '../log';
import { createOpsExtension } from '../metrics/extension';
import { createCryptoExtension } from '../crypto/extension';
import { createGossipExtension } from '../gossip/extension';

export type ExtensionFactory = (config: Config, logger: Logger) => AgentExtension | null;

const FACTORIES: ExtensionFactory[] = [
  createCryptoExtension, // host key + sessions for encrypted networks (src/crypto); before gossip, which announces its public key
  createGossipExtension, // membership, FDB/flood lists/ARP suppression from gossip (src/gossip); when `gossip` is configured
  createOpsExtension, // /metrics, /healthz, /readyz, event-loop monitor (src/metrics)
];

export function buildExtensions(config: Config, logger: Logger): AgentExtension[] {
  const out: AgentExtension[] = [];
  for (const f of FACTORIES) {
    const ext = f(config, logger);
    if (ext) out.push(ext);
  }
  return out;
}
