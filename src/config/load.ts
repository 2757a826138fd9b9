/**
 * Config loader: YAML or JSON text → the typed, fully defaulted `Config` (types.ts), validated
 * once. Every problem becomes a `ConfigError` naming the field path and what was expected
 * (`networks[1].vni: expected an integer 1..16777215, got "abc" (line 9)`); several problems are
 * reported together (`ConfigErrorList`). Unknown keys are errors, with a did-you-mean hint.
 *
 * No side effects: the only outside input is the optional `mtuLookup` (read-only) used to default
 * `underlay.mtu`, so `vxmesh check-config` runs the very same code as the agent.
 *
 * Defaults, units and trade-offs are documented beside each constant below and in README.md's
 * config reference (keep both in step).
 */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as pathMod from 'node:path';
import * as YAML from 'yaml';
import { ConfigError } from '../errors';
import type { AcceptFrom, AddressFamily, Config, Endpoint, GossipConfig, NetworkConfig, PeerKey } from './types';
import {
  Problems, type Path, formatPath, mapping, list, integer, boolean, string, oneOf, unicastIp, endpoint,
  listenAddress, ifname, describe, didYouMean,
} from './check';
import { MAX_ACCEPT_CIDRS, parseCidr } from '../dataplane/admission';
import { validateDocker } from '../runtimes/docker/config';
import { parseCidr as parseIpamCidr, overlaps as cidrOverlaps } from '../ipam/cidr';
import { ENDPOINT_NETWORK_KEYS, DEFAULT_SOCKET, validateEndpointFields, validateSocket, validateStateDir } from '../ipam/config';

/** VXLAN's IANA port (RFC 7348 §5). */
export const DEFAULT_VXLAN_PORT = 4789;
/** Gossip UDP+TCP port (Serf/memberlist's usual port). */
export const DEFAULT_GOSSIP_PORT = 7946;
/** Status/metrics HTTP listener: loopback only by default. */
export const DEFAULT_API_LISTEN = { host: '127.0.0.1', port: 9469 };
/** FDB ageing, seconds: the Linux bridge's default; shorter = faster moves, more flooding. */
export const DEFAULT_FDB_AGEING_SECONDS = 300;
/** FDB entries per network; the oldest is evicted beyond it (bounds memory under MAC floods). */
export const DEFAULT_FDB_MAX_ENTRIES = 16384;
export const DEFAULT_FDB_MAX_LOCAL = 512;
/** UDP source sockets for ECMP entropy (RFC 7348 §5): more = better spread, more fds. */
export const DEFAULT_SOURCE_PORTS = 8;
/**
 * Most peers learned from traffic (senders let in by a network's `acceptFrom`, issue 18); beyond it
 * the longest-idle learned peer is evicted (counted). Static peers and gossip members do not count.
 * Bounds memory and per-peer metric series (4 per peer) whatever the senders do.
 */
export const DEFAULT_MAX_LEARNED_PEERS = 1024;
/**
 * Busy-poll window of the data path, µs (types.ts UnderlayConfig.busyPollUs; native/busypoll.h):
 * after a packet, the agent polls its devices this long before its event loop may sleep.
 * Trade-off: latency (no sleep/wake-up per hop) against CPU (up to one window of spinning per
 * batch at low rates). Measured (bench/results/experiments-20261202c.md): 50 µs halves the bench's
 * RTT p50 against 0; 20 µs gains much less, 100 µs no more; +2 % of a CPU per 1,000 requests/s.
 */
export const DEFAULT_BUSY_POLL_US = 50;
/** Largest accepted busy-poll window, µs (the spin of one loop turn is capped at 1 ms anyway). */
export const MAX_BUSY_POLL_US = 1000;
/** Underlay MTU when it is neither configured nor found on an interface. */
export const FALLBACK_UNDERLAY_MTU = 1500;
/**
 * Encapsulation overhead counted against the underlay MTU: outer IP + UDP (8) + VXLAN (8) + inner
 * Ethernet (14). IPv4: 20 + 8 + 8 + 14 = 50; IPv6: 40 + 8 + 8 + 14 = 70.
 */
export const VXLAN_OVERHEAD: Record<AddressFamily, number> = { 4: 50, 6: 70 };
/**
 * Extra bytes per packet on an encrypted network: the crypto envelope (16-byte header + 16-byte
 * AEAD tag; `DATA_OVERHEAD` in src/crypto/noise.ts, checked equal by a test). Encrypted networks
 * default to 32 bytes less MTU so that a full-size frame still fits the underlay unfragmented.
 */
export const ENCRYPTION_OVERHEAD = 32;
/** Smallest network MTU: IPv4's minimum datagram size (576) / IPv6's minimum link MTU (1280). */
export const MIN_NETWORK_MTU: Record<AddressFamily, number> = { 4: 576, 6: 1280 };
/** Largest accepted config text, bytes (bounds parsing work). */
export const MAX_CONFIG_BYTES = 1 << 20;
/** Most YAML alias expansions (bounds "billion laughs"). */
export const MAX_YAML_ALIASES = 100;

export const MAX_VNI = 0xffffff;
export const NETWORK_NAME_RE = /^[a-z0-9][a-z0-9-]{0,14}$/;
const NODE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export const GOSSIP_PROFILES = ['lan', 'wan', 'test'] as const;

export interface ParseOptions {
  /** 'yaml' (default when the text does not start with '{') or 'json'. */
  format?: 'yaml' | 'json';
  /** Where the text came from (made absolute into `Config.source`). */
  source?: string | null;
  /** MTU of the interface holding an address, or null (read-only; e.g. netdev.mtuOfAddress). */
  mtuLookup?: (address: string) => number | null;
  /** Hostname used when `node` is not given (default os.hostname()). */
  hostname?: string;
}

/** Several config problems at once. `path` is the first problem's; `errors` has them all. */
export class ConfigErrorList extends ConfigError {
  readonly errors: ConfigError[];
  constructor(errors: ConfigError[]) {
    super(errors[0].path, '');
    this.message = errors.map((e) => e.message).join('\n');
    this.errors = errors;
  }
}

/** Parses and validates config text. Throws ConfigError (or ConfigErrorList) on any problem. */
/**
 * The busy-poll window the agent uses: `underlay.busyPollUs` (absent in a hand-built config: the
 * default), unless the environment's VXMESH_BUSY_POLL_US (A/B measurements) overrides it. A bad
 * override is a ConfigError naming the variable.
 */
export function effectiveBusyPollUs(underlay: { busyPollUs?: number }, env: NodeJS.ProcessEnv = process.env): number {
  const v = env.VXMESH_BUSY_POLL_US;
  if (v === undefined || v === '') return underlay.busyPollUs ?? DEFAULT_BUSY_POLL_US;
  const n = /^[0-9]+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isInteger(n) || n > MAX_BUSY_POLL_US) {
    throw new ConfigError('VXMESH_BUSY_POLL_US', `expected an integer 0..${MAX_BUSY_POLL_US} (µs; 0 = busy-poll off), got ${JSON.stringify(v)}`);
  }
  return n;
}

export function parseConfig(text: string, opts: ParseOptions = {}): Config {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) {
    throw new ConfigError('', `config is larger than ${MAX_CONFIG_BYTES} bytes`);
  }
  // Without an explicit format, text starting with '{' is JSON — unless it does not parse as
  // JSON, then it is YAML in flow style (`{underlay: {address: …}}`).
  let format = opts.format;
  if (!format) {
    format = 'yaml';
    if (/^\s*\{/.test(text)) {
      try {
        JSON.parse(text);
        format = 'json';
      } catch {
        /* YAML flow style */
      }
    }
  }
  const lineCounter = new YAML.LineCounter();
  let raw: unknown;
  let doc: YAML.Document.Parsed | null = null;
  if (format === 'json') {
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new ConfigError('', `invalid JSON: ${(e as Error).message}`);
    }
    // JSON is YAML 1.2: parse it again only to find duplicate keys and line numbers.
    doc = YAML.parseDocument(text, { uniqueKeys: true, lineCounter, prettyErrors: true });
    const dup = doc.errors.find((e) => e.code === 'DUPLICATE_KEY');
    if (dup) throw yamlError(dup, 'duplicate key');
    if (doc.errors.length) doc = null;
  } else {
    doc = YAML.parseDocument(text, { uniqueKeys: true, lineCounter, prettyErrors: true });
    if (doc.errors.length) throw yamlError(doc.errors[0], 'invalid YAML');
    try {
      raw = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
    } catch (e) {
      throw new ConfigError('', `invalid YAML: ${(e as Error).message}`);
    }
  }

  const problems = new Problems();
  const config = validate(problems, raw, opts);
  if (problems.count > 0 || !config) {
    const errors = problems.list.map((pr) => {
      const line = doc ? locate(doc, lineCounter, pr.path) : null;
      return new ConfigError(formatPath(pr.path), pr.message + (line ? ` (line ${line})` : ''));
    });
    if (errors.length === 0) errors.push(new ConfigError('', 'invalid config'));
    throw errors.length === 1 ? errors[0] : new ConfigErrorList(errors);
  }
  return config;
}

/**
 * Reads and validates a config file. Format by extension (.json; .yaml/.yml) else by content.
 * A missing or unreadable file is a ConfigError too (exit code 2).
 */
export function loadConfigFile(file: string, opts: Omit<ParseOptions, 'source'> = {}): Config {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new ConfigError('', `cannot read config file ${file}: not a regular file`);
    if (st.size > MAX_CONFIG_BYTES) throw new ConfigError('', `config file ${file} is larger than ${MAX_CONFIG_BYTES} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError('', `cannot read config file ${file}: ${err.code ?? err.message}`);
  }
  const ext = pathMod.extname(file).toLowerCase();
  const format = opts.format ?? (ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined);
  try {
    return parseConfig(text, { ...opts, format, source: file });
  } catch (e) {
    if (e instanceof ConfigError) Object.defineProperty(e, 'file', { value: file, enumerable: true });
    throw e;
  }
}

/** The file a ConfigError from `loadConfigFile` is about, if any. */
export function configErrorFile(e: unknown): string | undefined {
  return (e as { file?: string } | null)?.file;
}

export function yamlError(e: YAML.YAMLError, what: string): ConfigError {
  const first = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  const pos = e.linePos?.[0];
  return new ConfigError('', `${what}: ${first}${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}`);
}

/** Line of the deepest node that exists along `path` (1-based), or null. */
export function locate(doc: YAML.Document.Parsed, lc: YAML.LineCounter, path: Path): number | null {
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n);
    let node: unknown;
    if (n === 0) node = doc.contents;
    else {
      // For a key (unknown-key errors), point at the key itself.
      const parent = n === 1 ? doc.contents : doc.getIn(sub.slice(0, -1), true);
      if (YAML.isMap(parent)) {
        const pair = parent.items.find((it) => YAML.isScalar(it.key) && it.key.value === sub[n - 1]);
        node = pair ? (pair.key as YAML.Node) : undefined;
      } else {
        node = doc.getIn(sub, true);
      }
    }
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range) return lc.linePos(range[0]).line;
  }
  return null;
}

const TOP_KEYS = ['node', 'underlay', 'networks', 'peers', 'fdb', 'gossip', 'api', 'log', 'stateDir', 'docker'] as const;

function validate(p: Problems, raw: unknown, opts: ParseOptions): Config | undefined {
  const top = mapping(p, raw, [], TOP_KEYS, 'a mapping at the top level (node, underlay, networks, ...)');
  if (!top) return undefined;

  const node = validateNode(p, top.node, opts.hostname ?? os.hostname());

  // --- underlay ---
  const u = need(p, top, 'underlay', [], 'a mapping with at least "address"')
    ? mapping(p, top.underlay, ['underlay'], ['address', 'port', 'mtu', 'sourcePorts', 'offload', 'tapThreads', 'busyPollUs', 'maxLearnedPeers', 'handshakeGuard'])
    : undefined;
  let family: AddressFamily | undefined;
  let uAddress: string | undefined;
  let uPort = DEFAULT_VXLAN_PORT;
  let uMtu: number | undefined;
  let sourcePorts = DEFAULT_SOURCE_PORTS;
  let offload = true; // fast path: vnet TAPs with TSO + UDP GSO/GRO (types.ts UnderlayConfig.offload)
  let tapThreads = false; // TAP reads on an addon thread (types.ts UnderlayConfig.tapThreads)
  let maxLearnedPeers = DEFAULT_MAX_LEARNED_PEERS;
  let busyPollUs = DEFAULT_BUSY_POLL_US; // types.ts UnderlayConfig.busyPollUs
  let handshakeGuard = true; // kernel rate limit of handshake initiations (types.ts UnderlayConfig.handshakeGuard)
  if (u) {
    if (need(p, u, 'address', ['underlay'], 'the local underlay IPv4 or IPv6 address to bind and send from')) {
      const ip = unicastIp(p, u.address, ['underlay', 'address']);
      if (ip) {
        family = ip.family;
        uAddress = ip.address;
      }
    }
    if (u.port !== undefined) uPort = integer(p, u.port, ['underlay', 'port'], 1, 65535) ?? uPort;
    if (u.sourcePorts !== undefined) sourcePorts = integer(p, u.sourcePorts, ['underlay', 'sourcePorts'], 1, 64) ?? sourcePorts;
    if (u.offload !== undefined) offload = boolean(p, u.offload, ['underlay', 'offload']) ?? offload;
    if (u.tapThreads !== undefined) tapThreads = boolean(p, u.tapThreads, ['underlay', 'tapThreads']) ?? tapThreads;
    if (u.handshakeGuard !== undefined) handshakeGuard = boolean(p, u.handshakeGuard, ['underlay', 'handshakeGuard']) ?? handshakeGuard;
    if (u.busyPollUs !== undefined) busyPollUs = integer(p, u.busyPollUs, ['underlay', 'busyPollUs'], 0, MAX_BUSY_POLL_US, 'µs') ?? busyPollUs;
    if (u.maxLearnedPeers !== undefined) maxLearnedPeers = integer(p, u.maxLearnedPeers, ['underlay', 'maxLearnedPeers'], 1, 65536, 'peers') ?? maxLearnedPeers;
    if (u.mtu !== undefined && family) {
      const min = MIN_NETWORK_MTU[family] + VXLAN_OVERHEAD[family];
      uMtu = integer(p, u.mtu, ['underlay', 'mtu'], min, 65535, 'bytes');
    } else if (u.mtu !== undefined) {
      uMtu = integer(p, u.mtu, ['underlay', 'mtu'], 626, 65535, 'bytes');
    }
  }
  let mtuDerived = false;
  if (uMtu === undefined && uAddress !== undefined) {
    const found = opts.mtuLookup ? opts.mtuLookup(uAddress) : null;
    uMtu = typeof found === 'number' && found > 0 ? Math.min(found, 65535) : FALLBACK_UNDERLAY_MTU;
    mtuDerived = true;
  }

  // --- networks ---
  const networks: NetworkConfig[] = [];
  if (need(p, top, 'networks', [], 'a list of networks (name, vni, bridge)')) {
    const nets = list(p, top.networks, ['networks'], 'networks (name, vni, bridge)');
    const at: number[] = [];
    nets?.forEach((n, i) => {
      const net = validateNetwork(p, n, i, family, uMtu, mtuDerived, top.gossip !== undefined);
      if (net) {
        networks.push(net);
        at.push(i);
      }
    });
    // mode bridge/macvlan networks never reach the data path (no VXLAN): config.localNetworks
    const overlay = networks.map((n, k) => [n, at[k]] as const).filter(([n]) => (n.mode ?? 'overlay') === 'overlay');
    if (nets) checkUnique(p, overlay.map(([n]) => n), overlay.map(([, i]) => i), nets);
    networks.forEach((n, k) => {
      if ((n.mode ?? 'overlay') === 'overlay') return;
      const prev = networks.findIndex((m) => m.name === n.name);
      if (prev !== k) p.add(['networks', at[k], 'name'], `"${n.name}" is already used by networks[${at[prev]}]`);
    });
  }
  const localNetworks = networks.filter((n) => (n.mode ?? 'overlay') !== 'overlay');
  for (const n of localNetworks) networks.splice(networks.indexOf(n), 1);

  // --- peers ---
  const peers: Endpoint[] = [];
  const peerAt: number[] = [];
  const peerKeys: PeerKey[] = [];
  if (top.peers !== undefined) {
    const raws = list(p, top.peers, ['peers'], 'peer addresses (address or address:port, or {address, publicKey})');
    raws?.forEach((r, i) => {
      // A peer is "address[:port]", or a mapping {address, publicKey} for encryption without gossip.
      let publicKey: string | undefined;
      let addr: unknown = r;
      let addrAt: Path = ['peers', i];
      if (r !== null && typeof r === 'object' && !Array.isArray(r)) {
        const m = mapping(p, r, ['peers', i], ['address', 'publicKey']);
        if (!m) return;
        if (!need(p, m, 'address', ['peers', i], 'the peer\'s underlay address (address or address:port)')) return;
        addr = m.address;
        addrAt = ['peers', i, 'address'];
        if (m.publicKey !== undefined) {
          if (typeof m.publicKey !== 'string' || !/^[A-Za-z0-9+/]{43}=$/.test(m.publicKey.trim())) {
            p.add(['peers', i, 'publicKey'], `expected the peer's host public key, 32 bytes in base64 (44 characters, as \`vxmesh keygen host\` prints it), got ${describe(m.publicKey)}`);
            return;
          }
          publicKey = m.publicKey.trim();
        }
      }
      const ep = endpoint(p, addr, addrAt, family, uPort);
      if (!ep) return;
      if (ep.address === uAddress && ep.port === uPort) {
        p.add(['peers', i], `${describe(r)} is this node's own underlay address`);
        return;
      }
      const dup = peers.findIndex((q) => q.address === ep.address && q.port === ep.port);
      if (dup >= 0) {
        p.add(['peers', i], `${describe(r)} is listed twice (also peers[${peerAt[dup]}])`);
        return;
      }
      if (publicKey !== undefined) {
        const same = peerKeys.findIndex((k) => k.publicKey === publicKey);
        if (same >= 0) {
          p.add(['peers', i, 'publicKey'], `the same public key as another peer (${peerKeys[same].endpoint.address}): each host has its own key`);
          return;
        }
        peerKeys.push({ endpoint: ep, publicKey });
      }
      peers.push(ep);
      peerAt.push(i);
    });
  }

  // --- fdb ---
  let ageingSeconds = DEFAULT_FDB_AGEING_SECONDS;
  let maxEntries = DEFAULT_FDB_MAX_ENTRIES;
  let maxLocalPerNetwork = DEFAULT_FDB_MAX_LOCAL;
  if (top.fdb !== undefined) {
    const f = mapping(p, top.fdb, ['fdb'], ['ageingSeconds', 'maxEntries', 'maxLocalPerNetwork']);
    if (f) {
      if (f.maxLocalPerNetwork !== undefined) {
        maxLocalPerNetwork = integer(p, f.maxLocalPerNetwork, ['fdb', 'maxLocalPerNetwork'], 1, 1 << 20, 'MACs per network') ?? maxLocalPerNetwork;
      }
      if (f.ageingSeconds !== undefined) ageingSeconds = integer(p, f.ageingSeconds, ['fdb', 'ageingSeconds'], 1, 604800, 'seconds') ?? ageingSeconds;
      if (f.maxEntries !== undefined) maxEntries = integer(p, f.maxEntries, ['fdb', 'maxEntries'], 1, 1 << 20, 'entries per network') ?? maxEntries;
    }
  }

  // --- gossip ---
  const gossip = top.gossip === undefined ? null : validateGossip(p, top.gossip, uAddress, uPort);

  // --- api ---
  let listen = { ...DEFAULT_API_LISTEN };
  let metricsListen: { host: string; port: number } | null = null;
  let socket = DEFAULT_SOCKET;
  if (top.api !== undefined) {
    const a = mapping(p, top.api, ['api'], ['listen', 'metricsListen', 'socket']);
    if (a && a.listen !== undefined) listen = listenAddress(p, a.listen, ['api', 'listen']) ?? listen;
    if (a && a.metricsListen !== undefined) {
      metricsListen = listenAddress(p, a.metricsListen, ['api', 'metricsListen']) ?? null;
      if (metricsListen && metricsListen.port === listen.port && metricsListen.port !== 0 &&
          (metricsListen.host === listen.host || ['0.0.0.0', '::'].includes(metricsListen.host) || ['0.0.0.0', '::'].includes(listen.host))) {
        p.add(['api', 'metricsListen'], `${describe(a.metricsListen)} overlaps api.listen (same port): use another port`);
      }
    }
    if (a && a.socket !== undefined) socket = validateSocket(p, a.socket) ?? socket;
  }
  const stateDir = top.stateDir === undefined ? undefined
    : validateStateDir(p, top.stateDir, opts.source ? pathMod.dirname(pathMod.resolve(opts.source)) : null);

  const docker = top.docker === undefined ? undefined : validateDocker(p, top.docker);

  // --- log ---
  let level: Config['log']['level'] = 'info';
  if (top.log !== undefined) {
    const l = mapping(p, top.log, ['log'], ['level']);
    if (l && l.level !== undefined) level = oneOf(p, l.level, ['log', 'level'], LOG_LEVELS) ?? level;
  }

  if (p.count > 0 || !node || !family || !uAddress || uMtu === undefined) return undefined;
  // Relative key file paths are relative to the config file (a service's cwd is /).
  const base = opts.source ? pathMod.dirname(pathMod.resolve(opts.source)) : null;
  const abs = (f: string | null) => (f !== null && base !== null ? pathMod.resolve(base, f) : f);
  return {
    node: { ...node, keyFile: abs(node.keyFile) },
    underlay: { address: uAddress, family, port: uPort, mtu: uMtu, sourcePorts, offload, tapThreads, busyPollUs, maxLearnedPeers, handshakeGuard },
    networks,
    peers,
    peerKeys,
    fdb: { ageingSeconds, maxEntries, maxLocalPerNetwork },
    gossip: gossip ? { ...gossip, keyFile: abs(gossip.keyFile) } : null,
    api: { listen, metricsListen, socket },
    log: { level },
    localNetworks,
    ...(stateDir !== undefined ? { stateDir } : {}),
    ...(docker !== undefined ? { docker } : {}),
    source: opts.source ? pathMod.resolve(opts.source) : null,
  };
}

/** Reports a missing required key; returns whether it is present. */
function need(p: Problems, o: Record<string, unknown>, key: string, at: Path, what: string): boolean {
  if (o[key] !== undefined) return true;
  p.add([...at, key], `missing; expected ${what}`);
  return false;
}

function validateNode(p: Problems, v: unknown, hostname: string): Config['node'] | undefined {
  const name = (x: unknown, path: Path) => {
    if (typeof x !== 'string' || !NODE_NAME_RE.test(x)) {
      return p.add(path, `expected a node name (1..63 of A-Z a-z 0-9 . _ -, starting with a letter or digit), got ${describe(x)}`);
    }
    return x;
  };
  if (v === undefined) return { name: hostname, keyFile: null };
  if (typeof v === 'string') {
    const n = name(v, ['node']);
    return n ? { name: n, keyFile: null } : undefined;
  }
  const o = mapping(p, v, ['node'], ['name', 'keyFile'], 'a node name or a mapping {name, keyFile}');
  if (!o) return undefined;
  const n = o.name === undefined ? hostname : name(o.name, ['node', 'name']);
  const keyFile = o.keyFile === undefined ? null : string(p, o.keyFile, ['node', 'keyFile'], 'a file path');
  if (n === undefined || keyFile === undefined) return undefined;
  return { name: n, keyFile };
}

const NETWORK_KEYS = ['name', 'vni', 'bridge', 'tap', 'mtu', 'encrypted', 'acceptFrom', 'defaultPolicy', 'policyMode', ...ENDPOINT_NETWORK_KEYS];

function validateNetwork(
  p: Problems,
  v: unknown,
  i: number,
  family: AddressFamily | undefined,
  uMtu: number | undefined,
  mtuDerived: boolean,
  gossip = false,
): NetworkConfig | undefined {
  const at: Path = ['networks', i];
  const o = mapping(p, v, at, NETWORK_KEYS, 'a network mapping (name, vni, bridge)');
  if (!o) return undefined;
  const before = p.count;
  let name: string | undefined;
  if (need(p, o, 'name', at, 'a network name')) {
    if (typeof o.name !== 'string' || !NETWORK_NAME_RE.test(o.name)) {
      p.add([...at, 'name'], `expected a network name of 1..15 characters [a-z0-9-], starting with a letter or digit, got ${describe(o.name)}`);
    } else name = o.name;
  }
  const ep = validateEndpointFields(p, o, at, gossip);
  const local = ep.mode === 'bridge' || ep.mode === 'macvlan'; // no VXLAN: no VNI or TAP needed (vni 0, tap "")
  const vni = local && o.vni === undefined ? 0 : need(p, o, 'vni', at, `a VXLAN network identifier 1..${MAX_VNI}`)
    ? integer(p, o.vni, [...at, 'vni'], 1, MAX_VNI)
    : undefined;
  const bridge = ep.mode === 'macvlan' && o.bridge === undefined ? ''
    : need(p, o, 'bridge', at, 'a Linux bridge name') ? ifname(p, o.bridge, [...at, 'bridge']) : undefined;
  const tap = local ? '' : o.tap === undefined ? (name ? `vx-${name}`.slice(0, 15) : undefined) : ifname(p, o.tap, [...at, 'tap']);
  const encrypted = o.encrypted === undefined ? false : boolean(p, o.encrypted, [...at, 'encrypted']);
  const acceptFrom = o.acceptFrom === undefined ? 'known' : acceptFromValue(p, o.acceptFrom, [...at, 'acceptFrom'], family, encrypted);
  const defaultPolicy = o.defaultPolicy === undefined ? 'allow' : oneOf(p, o.defaultPolicy, [...at, 'defaultPolicy'], ['allow', 'deny'] as const);
  const policyMode = o.policyMode === undefined ? 'enforce' : oneOf(p, o.policyMode, [...at, 'policyMode'], ['enforce', 'audit'] as const);

  let mtu: number | undefined;
  if (family && uMtu !== undefined && encrypted !== undefined) {
    const overhead = VXLAN_OVERHEAD[family] + (encrypted ? ENCRYPTION_OVERHEAD : 0);
    const max = uMtu - overhead;
    const min = MIN_NETWORK_MTU[family];
    if (o.mtu !== undefined) {
      mtu = integer(p, o.mtu, [...at, 'mtu'], min, max,
        `bytes; at most underlay.mtu ${uMtu} − ${VXLAN_OVERHEAD[family]}${encrypted ? ` − ${ENCRYPTION_OVERHEAD} (encrypted)` : ''}`);
    } else if (max < min) {
      p.add(mtuDerived ? ['underlay'] : ['underlay', 'mtu'],
        `underlay MTU ${uMtu}${mtuDerived ? ' (found on the interface)' : ''} leaves a network MTU of ${max}, below the minimum ${min}`);
    } else {
      mtu = max;
    }
  }
  if (p.count > before || name === undefined || vni === undefined || bridge === undefined || tap === undefined || encrypted === undefined || mtu === undefined || acceptFrom === undefined || defaultPolicy === undefined || policyMode === undefined) {
    return undefined;
  }
  if (tap === bridge && !local) {
    p.add([...at, 'tap'], `must differ from the bridge name "${bridge}"`);
    return undefined;
  }
  return { name, vni, bridge, tap, mtu, encrypted, acceptFrom, defaultPolicy, policyMode, ...ep };
}

const ACCEPT_WORDS = ['known', 'any'] as const;

/**
 * `networks[].acceptFrom`: `known`, `any`, or a list of CIDRs of the underlay's family (a bare
 * address = one host), at most MAX_ACCEPT_CIDRS, no host bits set. Plaintext networks only.
 */
function acceptFromValue(p: Problems, v: unknown, at: Path, family: AddressFamily | undefined, encrypted: boolean | undefined): AcceptFrom | undefined {
  const what = `"known" (static peers and gossip members serving the network), "any", or a list of CIDRs such as [198.18.0.0/15]`;
  if (encrypted === true && v !== 'known') {
    return p.add(at, 'only for plaintext networks: an encrypted network accepts nothing but datagrams of an authenticated session');
  }
  if (typeof v === 'string') {
    if ((ACCEPT_WORDS as readonly string[]).includes(v)) return v as 'known' | 'any';
    const hint = didYouMean(v, ACCEPT_WORDS);
    // a single CIDR given without a list is a likely slip: say so
    const single = 'cidr' in parseCidr(v) ? ` (a list, e.g. [${v}]?)` : '';
    return p.add(at, `expected ${what}, got ${describe(v)}${hint ? ` (did you mean "${hint}"?)` : single}`);
  }
  const raws = list(p, v, at, 'CIDRs, or "known" / "any"');
  if (!raws) return undefined;
  if (raws.length > MAX_ACCEPT_CIDRS) return p.add(at, `at most ${MAX_ACCEPT_CIDRS} CIDRs, got ${raws.length}`);
  const out: string[] = [];
  const before = p.count;
  raws.forEach((r, i) => {
    if (typeof r !== 'string') return p.add([...at, i], `expected a CIDR (address/length), got ${describe(r)}`);
    const c = parseCidr(r);
    if ('error' in c) {
      if (c.error === 'host_bits') return p.add([...at, i], `${describe(r)} has bits set after the prefix length (did you mean "${c.hint}"?)`);
      if (c.error === 'length') return p.add([...at, i], `expected a prefix length 0..32 (IPv4) or 0..128 (IPv6) after "/", got ${describe(r)}`);
      return p.add([...at, i], `expected a CIDR (address/length, e.g. 198.18.0.0/15 or 2001:2::/48), got ${describe(r)}`);
    }
    if (family && c.cidr.family !== family) {
      return p.add([...at, i], `${describe(r)} is IPv${c.cidr.family} but the underlay is IPv${family}: it would never match`);
    }
    if (out.includes(c.cidr.text)) return p.add([...at, i], `${describe(r)} is listed twice`);
    out.push(c.cidr.text);
  });
  return p.count > before ? undefined : out;
}

/** Names, VNIs, bridges and TAPs are unique across networks; a TAP is never another network's bridge. */
function checkUnique(p: Problems, nets: NetworkConfig[], idx: number[], raws: unknown[]): void {
  const seen = new Map<string, number>();
  nets.forEach((n, k) => {
    const i = idx[k];
    const fields: Array<[keyof NetworkConfig, string, string]> = [
      ['name', `name:${n.name}`, `"${n.name}"`],
      ['vni', `vni:${n.vni}`, String(n.vni)],
      ['bridge', `if:${n.bridge}`, `"${n.bridge}"`],
      ['tap', `if:${n.tap}`, `"${n.tap}"`],
    ];
    const defaultTap = !(raws[i] as Record<string, unknown>).tap;
    let nameClash = false;
    for (const [field, key, shown] of fields) {
      const prev = seen.get(key);
      if (field === 'name' && prev !== undefined) nameClash = true;
      // A default TAP name clashes whenever the names do: report the name only.
      if (field === 'tap' && defaultTap && nameClash) continue;
      // Bridges and TAPs share one namespace of interface names.
      if (prev !== undefined) {
        p.add(['networks', i, field], `${shown} is already used by networks[${prev}]${field === 'tap' && defaultTap ? ' (the default TAP name is "vx-" + name, cut to 15 characters; set tap)' : ''}`);
      } else seen.set(key, i);
    }
  });
}

function validateGossip(p: Problems, v: unknown, uAddress: string | undefined, uPort: number): GossipConfig | null {
  const at: Path = ['gossip'];
  const o = mapping(p, v, at, ['port', 'address', 'seeds', 'keyFile', 'profile'], 'a mapping (omit the section to disable gossip)');
  if (!o) return null;
  const port = o.port === undefined ? DEFAULT_GOSSIP_PORT : integer(p, o.port, [...at, 'port'], 1, 65535);
  let address: string | undefined = uAddress;
  let family: AddressFamily | undefined = uAddress ? (uAddress.includes(':') ? 6 : 4) : undefined;
  if (o.address !== undefined) {
    const ip = unicastIp(p, o.address, [...at, 'address']);
    address = ip?.address;
    family = ip?.family;
  }
  if (port !== undefined && address !== undefined && address === uAddress && port === uPort) {
    p.add([...at, 'port'], `${port} is also the VXLAN port (underlay.port) on the same address`);
  }
  const seeds: Endpoint[] = [];
  if (o.seeds !== undefined) {
    const raws = list(p, o.seeds, [...at, 'seeds'], 'seed addresses (address or address:port)');
    raws?.forEach((r, i) => {
      const ep = endpoint(p, r, [...at, 'seeds', i], family, port ?? DEFAULT_GOSSIP_PORT);
      if (!ep) return;
      if (seeds.some((s) => s.address === ep.address && s.port === ep.port)) {
        p.add([...at, 'seeds', i], `${describe(r)} is listed twice`);
        return;
      }
      seeds.push(ep);
    });
  }
  // Required: every gossip packet is sealed with the cluster key (the agent cannot start without).
  const keyFile = o.keyFile === undefined
    ? p.add([...at, 'keyFile'], 'required: the cluster keyring file (every gossip packet is encrypted); create one with `vxmesh keygen cluster --out FILE`')
    : string(p, o.keyFile, [...at, 'keyFile'], 'a file path');
  const profile = o.profile === undefined ? 'lan' : oneOf(p, o.profile, [...at, 'profile'], GOSSIP_PROFILES);
  if (port === undefined || address === undefined || keyFile === undefined || profile === undefined) return null;
  return { port, address, seeds, keyFile, profile };
}

/**
 * Validates one network added to a running config (a runtime network, src/agent/runtime-networks.ts)
 * exactly like an entry of its `networks:` list — same checks, defaults (MTU from the underlay),
 * uniqueness of name, VNI, bridge and TAP against the networks already there — and, beyond the
 * file's checks, that its subnets overlap no other network's. Returns the network or the problems
 * (paths `networks[<index>].<field>`, index = the position it would take).
 */
export function validateAddedNetwork(config: Config, raw: Record<string, unknown>): { network: NetworkConfig | null; problems: { path: Path; message: string }[] } {
  const p = new Problems();
  const existing = [...config.networks, ...(config.localNetworks ?? [])];
  const i = existing.length;
  const net = validateNetwork(p, raw, i, config.underlay.family, config.underlay.mtu, false, config.gossip !== null);
  if (net) {
    const all = [...existing, net];
    const overlay = all.map((n, k) => [n, k] as const).filter(([n]) => (n.mode ?? 'overlay') === 'overlay');
    checkUnique(p, overlay.map(([n]) => n), overlay.map(([, k]) => k), all.map((n, k) => (k === i ? raw : { tap: n.tap })));
    existing.forEach((n, k) => {
      if (n.name === net.name && (n.mode ?? 'overlay') !== 'overlay') p.add(['networks', i, 'name'], `"${n.name}" is already used by networks[${k}]`);
      for (const s of net.ipam?.subnets ?? []) {
        const a = parseIpamCidr(s)!;
        const clash = (n.ipam?.subnets ?? []).find((t) => cidrOverlaps(a, parseIpamCidr(t)!));
        if (clash) p.add(['networks', i, 'subnet'], `${s} overlaps ${clash}, the subnet of networks[${k}]`);
      }
    });
  }
  return { network: p.count === 0 ? net ?? null : null, problems: p.list };
}
