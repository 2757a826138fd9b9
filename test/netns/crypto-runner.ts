/**
 * Test helper (not a test): runs one vxmesh agent with the crypto extension and STATIC peer public
 * keys, for netns tests that do not depend on gossip to spread keys.
 *
 *   node dist/test/netns/crypto-runner.js CONFIG PEERS_JSON [CLUSTER_KEY_FILE]
 *
 * CONFIG is a normal agent config file (loaded by the same loader as `vxmesh agent`); PEERS_JSON
 * holds `[{ "address", "port", "publicKey" }]`; CLUSTER_KEY_FILE (optional) one base64 cluster key
 * per line, from which the handshake PSKs are derived. Stops cleanly on SIGTERM/SIGINT.
 */
import * as fs from 'node:fs';

import { Agent } from '../../src/agent/agent';
import { loadConfigFile } from '../../src/config/load';
import { CryptoExtension } from '../../src/crypto/extension';
import { decodeKey } from '../../src/crypto/keys';
import { createLogger, type LogLevel } from '../../src/log';

async function main(): Promise<number> {
  const [configFile, peersFile, clusterFile] = process.argv.slice(2);
  const config = loadConfigFile(configFile);
  const logger = createLogger({ level: config.log.level as LogLevel, bindings: { node: config.node.name } });
  const peers = JSON.parse(fs.readFileSync(peersFile, 'utf8')) as { address: string; port: number; publicKey: string }[];
  const clusterKeys = clusterFile
    ? fs.readFileSync(clusterFile, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean).map((l) => decodeKey(l, clusterFile))
    : undefined;
  const ext = new CryptoExtension(config, logger, {
    peerKeys: peers.map((p) => ({ endpoint: { address: p.address, port: p.port, family: p.address.includes(':') ? 6 : 4 }, publicKey: p.publicKey })),
    clusterKeys,
  });
  const agent = await Agent.start(config, { logger, extensions: [ext] });
  return new Promise<number>((resolve) => {
    const stop = (): void => {
      agent.stop().then(() => resolve(0), () => resolve(1));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`crypto-runner: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
