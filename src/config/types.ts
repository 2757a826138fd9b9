/**
 * The validated, typed configuration. `src/config/load.ts` turns YAML/JSON into this shape once
 * at start (and on reload); nothing else reads raw config. Every field is filled in: defaults are
 * applied by the loader, documented in README's config reference.
 */

export type AddressFamily = 4 | 6;

export interface Endpoint {
  /** IPv4 or IPv6 address, textual, canonical form. */
  address: string;
  port: number;
  family: AddressFamily;
}

/**
 * Which hosts a plaintext network accepts VXLAN from (issue 18; src/dataplane/admission.ts):
 * `known` (default) = its static peers and the live gossip members serving its VNI; `any` = every
 * sender; a list of CIDRs = the known hosts plus senders inside these prefixes (canonical text,
 * e.g. `198.18.0.0/15`, `2001:2::/48`). Unknown senders that are let in are learned as peers,
 * bounded by `underlay.maxLearnedPeers`.
 */
export type AcceptFrom = 'known' | 'any' | string[];

export interface NetworkConfig {
  /** Unique name, [a-z0-9-]{1,15}; also used in TAP names and metrics labels. */
  name: string;
  /** VXLAN network identifier, 1..16777215 (0 is reserved here); unique. */
  vni: number;
  /** Linux bridge to attach to; created if missing (then removed on exit). Unique. */
  bridge: string;
  /** TAP device name; default `vx-<name>` truncated to 15 chars. */
  tap: string;
  /** Inner MTU (IP MTU of the containers); default underlay.mtu − 50 (IPv4) or − 70 (IPv6). */
  mtu: number;
  /** Encrypt this network's traffic (issue: encrypted networks). Default false. */
  encrypted: boolean;
  /**
   * Senders accepted on a plaintext network (see `AcceptFrom`); default `known`. Not allowed on an
   * encrypted network (a session is the admission there). Always set by the loader; absent
   * (hand-built configs) means `known`.
   */
  acceptFrom?: AcceptFrom;
  /**
   * `deny`: every endpoint of the network is isolated in both directions until a policy allows
   * (src/policy); default `allow` (Kubernetes: only what policies select is isolated). Applied live.
   */
  defaultPolicy?: 'allow' | 'deny';
  /** `audit`: policies count and report what they would deny, and deny nothing; default `enforce`. Applied live. */
  policyMode?: 'enforce' | 'audit';
  /** Addresses for endpoints (`subnet`, `gateway`, `hostBlock`, `range`); absent: no IPAM. */
  ipam?: NetworkIpam;
  /** `overlay` (default; VXLAN between hosts), `bridge` (one host, no VXLAN), `macvlan` (on `parent`). */
  mode?: NetworkMode;
  /** mode macvlan: the host interface whose macvlans the endpoints are. */
  parent?: string;
  /** Give the host itself an address on the network at start (a host endpoint). Default false. */
  hostEndpoint?: boolean;
}

export type NetworkMode = 'overlay' | 'bridge' | 'macvlan';

/** A network's IPAM settings (src/ipam/README.md). */
export interface NetworkIpam {
  /** At most one IPv4 and one IPv6 subnet, canonical CIDR, IPv4 first. */
  subnets: string[];
  /** Gateway per subnet (same order; null: none): default route of endpoints, never allocated. */
  gateways: (string | null)[];
  /** Prefix length of the blocks hosts lease per subnet (same order): IPv4 default 26, IPv6 112 (never shorter than the subnet). */
  hostBlocks: number[];
  /** Static per-host range per subnet (same order; null: none) used when there is no gossip. */
  ranges: (string | null)[];
}

export interface FdbConfig {
  /** Seconds a learned MAC stays without being seen again; default 300. */
  ageingSeconds: number;
  /** Most entries per network; the oldest is evicted (and counted) beyond it. Default 16384. */
  maxEntries: number;
  /**
   * Most MACs learned on this host's bridge per network (what this host announces); a new one
   * beyond it is not learned (its frames still go out; counted `fdb_refused{reason=local_limit}`).
   * Default 512 (the loader always sets it).
   */
  maxLocalPerNetwork?: number;
}

export interface UnderlayConfig {
  /** Local underlay address: bound and sent from. */
  address: string;
  family: AddressFamily;
  /** VXLAN UDP destination port (and the port we listen on); default 4789. */
  port: number;
  /** Underlay MTU used to derive network MTUs; default: the MTU of the interface holding `address`, else 1500. */
  mtu: number;
  /**
   * Number of UDP source ports (sockets) that outbound flows are hashed over for ECMP entropy
   * (RFC 7348 §5); default 8. 1 = send from `port` itself.
   */
  sourcePorts: number;
  /**
   * Fast path (issue 5): open plaintext networks' TAPs with IFF_VNET_HDR + checksum/TSO offloads and
   * the UDP socket with UDP GRO, so the kernel hands over 64 KiB TCP super-frames that are sent as
   * UDP GSO segments. Default true; false = one frame per read/datagram (phase-1 behaviour), e.g.
   * to rule the offloads out when debugging. Encrypted networks never use it. Always set by the
   * loader; absent (hand-built configs) means true.
   */
  offload?: boolean;
  /**
   * Read each fast-path TAP on an addon thread (a second core does the per-frame read syscalls
   * while the agent's JS thread processes the previous batch). Default false: on the reference
   * 2-core machine it did not pay (bench/results/threads-*.md). Needs `offload`.
   */
  tapThreads?: boolean;
  /**
   * Busy-poll window of the data path in µs (native/busypoll.h; 0 = off): after a readiness
   * callback of a TAP or of the UDP transport returned, the agent keeps polling them with a zero
   * timeout until `busyPollUs` µs passed without a packet (at most 1 ms per event-loop turn)
   * before its loop sleeps in epoll, yielding the CPU between polls (and not spinning for 50 ms
   * after a yield found the CPU shared with a busy task). Saves the sleep and wake-up of a hop
   * when the next packet comes soon (request/response: RTT p50 about halved in the bench), at a CPU
   * cost of up to one window per batch at low rates; an idle agent does not spin. Default load.ts DEFAULT_BUSY_POLL_US; the environment's
   * VXMESH_BUSY_POLL_US overrides it (A/B). Always set by the loader; absent (hand-built
   * configs) means the default. Not used for TAPs read by reader threads (`tapThreads`).
   */
  busyPollUs?: number;
  /**
   * Most peers learned from traffic (senders a network's `acceptFrom` lets in); beyond it the
   * longest-idle learned peer is evicted and counted. Static peers and gossip members are not
   * counted. Default 1024. Always set by the loader; absent (hand-built configs) means 1024.
   */
  maxLearnedPeers?: number;
  /**
   * Kernel flood guard for handshake initiations (src/crypto/flood-guard.ts): an nftables table
   * `inet vxmesh-guard-<port>` drops initiations over 64/s per source address and 16,384/s in
   * total before the IP stack routes them; made at start when the host has encrypted networks or a
   * host key, deleted at stop. Default true; without nft or root the agent warns and goes on.
   * Always set by the loader; absent (hand-built configs) means true.
   */
  handshakeGuard?: boolean;
}

export interface GossipConfig {
  /** Gossip UDP/TCP port; default 7946. */
  port: number;
  /** Gossip bind address; default underlay.address. */
  address: string;
  /** Seed hosts: address or address:port (port defaults to gossip.port). */
  seeds: Endpoint[];
  /** File holding the cluster keyring (one base64 key per line, first = primary). */
  keyFile: string | null;
  /** Named timing profile: lan (default), wan, test. */
  profile: 'lan' | 'wan' | 'test';
}

export interface ApiConfig {
  /** host:port of the metrics/status HTTP listener; default 127.0.0.1:9469. */
  listen: { host: string; port: number };
  /**
   * host:port of a second listener serving only GET /metrics (no status, FDB or members: those
   * are unauthenticated on `listen`), for exposing metrics to a Prometheus server off the host.
   * Default none (null). Absent (hand-built configs) means none.
   */
  metricsListen?: { host: string; port: number } | null;
  /** Root-only control socket (attach/detach/endpoints); default /run/vxmesh/vxmesh.sock. Set by the loader. */
  socket?: string;
}

/** A static peer's host public key (base64 X25519, as `vxmesh keygen host` prints it). */
export interface PeerKey {
  endpoint: Endpoint;
  publicKey: string;
}

export interface Config {
  /** Node name; default: the hostname. */
  node: { name: string; keyFile: string | null };
  underlay: UnderlayConfig;
  networks: NetworkConfig[];
  /** Static peers (all serve every network). */
  peers: Endpoint[];
  /**
   * Static peers given with their host public key (`peers: [{address, publicKey}]`): encrypted
   * networks can then run without gossip (sessions authenticated by these pinned keys). Absent or
   * empty when none.
   */
  peerKeys?: PeerKey[];
  fdb: FdbConfig;
  /** Present when the `gossip` section is given. */
  gossip: GossipConfig | null;
  api: ApiConfig;
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' };
  /** Networks with `mode: bridge` or `mode: macvlan` (no VXLAN: never given to the data path). */
  localNetworks?: NetworkConfig[];
  /** Where IPAM and endpoint state lives when given; else the agent's --state-dir ($STATE_DIRECTORY, /var/lib/vxmesh). */
  stateDir?: string;
  /** The Docker network + IPAM driver (src/runtimes/docker); absent: off. */
  docker?: { enabled: boolean; socket: string };
  /** Where the config came from (absolute path), for reload. */
  source: string | null;
}
