/**
 * The network-namespace testbed ("lab") used by the netns integration tests, `vxmesh demo` and the
 * benchmark harness. One `Lab` is a set of namespaces that belong to one run:
 *
 *   switch netns `<prefix>-sw`   bridge `sw0`, one port `p<i>` per host          (the underlay)
 *   host netns   `<prefix>-h<i>` `ul0` at 198.18.0.<i>/24 (or 2001:2::<i>/64), container bridges
 *   container    `<prefix>-<name>` `eth0` at an overlay address (198.19.x.y), MTU = overlay MTU,
 *                                  its peer `<name>` in the host netns enslaved to a host bridge
 *
 * Names: the run prefix is `vxl<pid>-<4 hex>` so parallel test files never collide on
 * namespace names. Every interface lives inside one of the run's own namespaces (veth pairs are
 * created directly in their target namespaces), so interface names are unique per run by
 * construction; all of them are ≤ 15 characters (checked).
 *
 * Lifecycle: `Lab.create()` builds the underlay; `addBridge()`, `addContainer()`,
 * `addKernelVxlan()` add to it; `spawn()` starts long-running processes inside a namespace (the
 * PID is the program's own: `ip netns exec` execs it), `stop()` / `destroy()` kill exactly those
 * PIDs. `destroy()` removes everything the lab made and is safe to call more than once; it also
 * runs on SIGINT/SIGTERM (then the process exits 130/143) and, synchronously, at process exit,
 * so a crashed test leaves nothing behind.
 *
 * The underlay behaves like a wire: veth offloads are off on `ul0` (see `underlayOffloads`).
 *
 * Every wait is bounded (`waitFor` polls with a deadline); every exec has a timeout.
 * Addresses: only 198.18.0.0/15 (IPv4) and 2001:2::/48 (IPv6), inside the lab's namespaces.
 *
 * Requires root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2 (tcpdump for `capture`); offloads are
 * set with lab/ethtool.ts (the addon's SIOCETHTOOL calls), not the ethtool binary;
 * `labSkipReason()` says why a test must skip. Agents: see `vxmesh.ts`; TCP transfers: `xfer.ts`.
 */

import { execFile, spawn as spawnChild, spawnSync, ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VxmeshError } from '../src/errors';

/** Error raised by lab operations (a command failed, a wait timed out). */
export class LabError extends VxmeshError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('ERR_VXMESH_LAB', message, details);
  }
}

/** Repository root (dist/lab/netns.js → ../../..; src/lab/netns.ts when run by ts tools). */
export const REPO_ROOT = (() => {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..', '..');
})();

/** Why netns tests cannot run here, or null when they can (Linux, root, `ip`, netns support). */
export function labSkipReason(): string | null {
  if (process.platform !== 'linux') return 'netns tests need Linux';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'netns tests need root';
  const r = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return 'iproute2 (`ip`) is not installed';
  if (!fs.existsSync('/proc/self/ns/net')) return 'kernel without network namespaces';
  return null;
}

/** Is `tool` on PATH? (for tests that need tcpdump/tshark/iperf3 and skip with a reason otherwise) */
export function haveTool(tool: string): boolean {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '';
}

/** lab/ethtool.ts compiled next to this file (dist/lab/ethtool.js). */
export const ETHTOOL_SCRIPT = path.join(__dirname, 'ethtool.js');

const MAX_IFNAME = 15;
function checkIfname(name: string): string {
  if (name.length === 0 || name.length > MAX_IFNAME || !/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new LabError(`interface name '${name}' must be 1..${MAX_IFNAME} chars of [A-Za-z0-9_.-]`);
  }
  return name;
}

export interface LabOptions {
  /** Number of hosts on the underlay (1..200). */
  hosts: number;
  /** Underlay address family: 4 → 198.18.0.<i>/24, 6 → 2001:2::<i>/64. Default 4. */
  family?: 4 | 6;
  /** MTU of the underlay links (host `ul0` and switch ports). Default 1500. */
  underlayMtu?: number;
  /**
   * Keep br_netfilter's hooks on the underlay switch (default false: a switch does not run the
   * hosts' firewall, see create()). Needed where a switch port's MTU must be exact: without them a
   * Linux bridge forwards frames up to MTU + 4 bytes (its VLAN allowance, is_skb_forwardable), with
   * them bridged IPv4 leaves through br_nf_dev_queue_xmit, which holds a DF packet to the MTU.
   */
  switchNetfilter?: boolean;
  /** Namespace name prefix; default `vxl<pid>-<4 hex>` (unique per run). */
  prefix?: string;
  /** Trace every command (default: when VXMESH_LAB_TRACE=1, to stderr). */
  trace?: (line: string) => void;
  /** Destroy on SIGINT/SIGTERM, then exit 130/143. Default true. */
  handleSignals?: boolean;
  /** Keep IPv6 enabled in container namespaces (router solicitations, DAD, MLD). Default false: quiet. */
  containerIpv6?: boolean;
  /**
   * Keep veth offloads on the hosts' `ul0` (default false). veth pairs hand checksum-partial and
   * 64 KiB GSO packets across namespaces, which a real wire never carries: a kernel VXLAN peer's
   * packets would reach a userspace socket with the inner TCP checksum unfinished and unsegmented.
   * With offloads off (`ethtool -K ul0 tx off tso off gso off`, done by lab/ethtool.ts), `ul0` finishes checksums and
   * segments in software as a NIC would, so the underlay carries what a real wire carries.
   */
  underlayOffloads?: boolean;
}

export interface LabHost {
  /** 1-based host number. */
  readonly index: number;
  /** Short name (`h1`). */
  readonly name: string;
  /** Network namespace name. */
  readonly ns: string;
  /** Underlay interface in `ns` (`ul0`). */
  readonly underlayIf: string;
  /** Underlay address without prefix length (198.18.0.<i> or 2001:2::<i>). */
  readonly address: string;
  readonly prefixLen: number;
  readonly family: 4 | 6;
  /** Bridges created by `addBridge` on this host. */
  readonly bridges: string[];
}

export interface LabContainer {
  /** Short name, also the host-side veth name (≤ 15 chars). */
  readonly name: string;
  readonly ns: string;
  readonly host: LabHost;
  /** Interface inside the container (`eth0`). */
  readonly ifname: string;
  /** Host-side veth, enslaved to `bridge`. */
  readonly hostIf: string;
  readonly bridge: string;
  /** Overlay address without prefix length. */
  readonly address: string;
  readonly prefixLen: number;
  readonly mac: string;
  readonly mtu: number;
}

export interface ContainerOptions {
  /** Host bridge to attach to (must exist: `addBridge`). */
  bridge: string;
  /** Overlay address with prefix length, e.g. `198.19.0.11/24`. */
  address: string;
  /** Short name (≤ 15 chars); default `h<host>c<n>`. */
  name?: string;
  /** MTU of both veth ends; default `lab.overlayMtu`. */
  mtu?: number;
  /** Fixed MAC of `eth0`; default a deterministic locally administered `02:76:78:00:xx:yy`. */
  mac?: string;
}

export interface ExecOptions {
  /** Throw on non-zero exit (default true). */
  check?: boolean;
  /** Kill after this many ms (default 30 000). */
  timeoutMs?: number;
  /** Written to stdin. */
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SpawnOptions {
  /** Label for logs and errors; default the command name. */
  name?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Also append the output to this file (e.g. inside `lab.dir`). */
  logFile?: string;
}

/** A long-running process started by `Lab.spawn`, killed only by its PID. */
export interface LabProcess {
  readonly name: string;
  readonly ns: string | null;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True until the exit event. */
  running(): boolean;
  /** The last 256 KiB of stdout+stderr, interleaved as received. */
  output(): string;
  /** Only stdout (last 256 KiB). */
  stdout(): string;
}

export interface PingResult {
  transmitted: number;
  received: number;
  /** Round-trip statistics in ms; null when nothing came back. */
  rtt: { min: number; avg: number; max: number; mdev: number } | null;
  output: string;
}

export interface LinkStats {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  rxDropped: number;
  txDropped: number;
  mtu: number;
  mac: string;
  up: boolean;
}

export interface TransferResult {
  bytes: number;
  /** sha256 of what the source sent and what the sink received (hex). */
  sentSha256: string;
  receivedSha256: string;
  receivedBytes: number;
}

export interface Capture {
  readonly file: string;
  /** Stops tcpdump (SIGINT, so the pcap is complete) and returns the file path. */
  stop(): Promise<string>;
}

export interface KernelVxlanOptions {
  vni: number;
  /** Host bridge to enslave the VXLAN device to. */
  bridge: string;
  /** Peers' underlay addresses: one all-zero FDB entry each (head-end replication). */
  peers: string[];
  /** Device name; default `kvx<vni>` (truncated to 15 chars). */
  name?: string;
  /** UDP destination port; default 4789. */
  port?: number;
  /** Learn remote MACs from received frames; default false (`nolearning`). */
  learning?: boolean;
  /** Device MTU; default `lab.overlayMtu`. */
  mtu?: number;
}

const liveLabs = new Set<Lab>();
let signalHandlersInstalled = false;
let exitHandlerInstalled = false;

function onSignal(sig: NodeJS.Signals): void {
  const code = sig === 'SIGINT' ? 130 : 143;
  const labs = [...liveLabs];
  process.stderr.write(`\nlab: ${sig}: tearing down ${labs.length} lab(s)\n`);
  Promise.allSettled(labs.map((l) => l.destroy())).finally(() => process.exit(code));
}

function installHandlers(signals: boolean): void {
  if (!exitHandlerInstalled) {
    exitHandlerInstalled = true;
    // Last resort: a test that crashed or called process.exit() still removes its namespaces.
    process.on('exit', () => {
      for (const lab of liveLabs) lab.destroySync();
    });
  }
  if (signals && !signalHandlersInstalled) {
    signalHandlersInstalled = true;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
}

function uninstallSignalHandlersIfIdle(): void {
  if (liveLabs.size === 0 && signalHandlersInstalled) {
    signalHandlersInstalled = false;
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const OUTPUT_LIMIT = 256 * 1024;

interface Tracked {
  proc: ChildProcess;
  info: LabProcess;
  done: boolean;
}

export class Lab {
  /** Namespace name prefix of this run. */
  readonly prefix: string;
  readonly family: 4 | 6;
  readonly underlayMtu: number;
  /** Default container/overlay MTU: underlay MTU − 50 (IPv4) or − 70 (IPv6). */
  readonly overlayMtu: number;
  /** The underlay switch namespace. */
  readonly switchNs: string;
  readonly hosts: LabHost[] = [];
  readonly containers: LabContainer[] = [];
  /** Per-run scratch directory (configs, logs, captures); removed by destroy(). */
  readonly dir: string;

  private readonly namespaces: string[] = [];
  private readonly procs: Tracked[] = [];
  /** Short commands in flight (exec): bounded by their timeout, killed by destroy(). */
  private readonly execs = new Set<ChildProcess>();
  private readonly trace: ((line: string) => void) | null;
  private readonly containerIpv6: boolean;
  private readonly underlayOffloads: boolean;
  private macCounter = 0;
  private destroyed = false;
  private destroying: Promise<void> | null = null;

  private constructor(opts: LabOptions) {
    const hosts = opts.hosts;
    if (!Number.isInteger(hosts) || hosts < 1 || hosts > 200) throw new LabError('hosts must be 1..200');
    this.family = opts.family ?? 4;
    this.underlayMtu = opts.underlayMtu ?? 1500;
    if (this.underlayMtu < 1280 || this.underlayMtu > 9000) throw new LabError('underlayMtu must be 1280..9000');
    this.overlayMtu = this.underlayMtu - (this.family === 4 ? 50 : 70);
    this.prefix = opts.prefix ?? `vxl${process.pid}-${randomBytes(2).toString('hex')}`;
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(this.prefix)) throw new LabError(`bad prefix '${this.prefix}'`);
    this.switchNs = `${this.prefix}-sw`;
    this.trace = opts.trace ?? (process.env.VXMESH_LAB_TRACE === '1' ? (l) => process.stderr.write(`lab: ${l}\n`) : null);
    this.containerIpv6 = opts.containerIpv6 ?? false;
    this.underlayOffloads = opts.underlayOffloads ?? false;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `${this.prefix}-`));
  }

  /**
   * Builds the underlay: the switch namespace with bridge `sw0`, `hosts` host namespaces each with
   * `ul0` (address, MTU, up) wired to a switch port. On any failure everything made so far is
   * removed and the error rethrown.
   */
  static async create(opts: LabOptions): Promise<Lab> {
    const skip = labSkipReason();
    if (skip) throw new LabError(skip);
    const lab = new Lab(opts);
    liveLabs.add(lab);
    installHandlers(opts.handleSignals ?? true);
    try {
      await lab.addNamespace(lab.switchNs, false);
      await lab.ip(lab.switchNs, 'link', 'add', 'sw0', 'type', 'bridge');
      await lab.ip(lab.switchNs, 'link', 'set', 'sw0', 'up');
      // A switch does not run the hosts' firewall: with br_netfilter in the kernel (built in here,
      // and loaded wherever Docker runs) every frame a Linux bridge forwards also goes through the
      // namespace's IPv4/IPv6/ARP netfilter hooks (bridge-nf-call-*, default 1 in every netns).
      // That is a cost of the testbed, not of any overlay: it was 36 % of the CPU a 100 kpps
      // handshake flood cost the machine (perf, chaos flood). The hosts' container bridges keep
      // the default, as on a Docker host. -e: no br_netfilter, nothing to turn off.
      // VXMESH_LAB_SWITCH_NF=1 keeps the hooks (for an A/B of the testbed itself).
      if (!opts.switchNetfilter && process.env.VXMESH_LAB_SWITCH_NF !== '1') await lab.exec(lab.switchNs, 'sysctl', ['-qew', 'net.bridge.bridge-nf-call-iptables=0', 'net.bridge.bridge-nf-call-ip6tables=0', 'net.bridge.bridge-nf-call-arptables=0']);
      for (let i = 1; i <= opts.hosts; i++) await lab.addHost(i);
      return lab;
    } catch (err) {
      await lab.destroy();
      throw err;
    }
  }

  private async addNamespace(ns: string, ipv6: boolean): Promise<void> {
    await this.run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await this.ip(ns, 'link', 'set', 'lo', 'up');
    if (!ipv6) {
      await this.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
  }

  private async addHost(i: number): Promise<void> {
    const ns = `${this.prefix}-h${i}`;
    const address = this.family === 4 ? `198.18.0.${i}` : `2001:2::${i.toString(16)}`;
    const prefixLen = this.family === 4 ? 24 : 64;
    await this.addNamespace(ns, this.family === 6);
    const port = checkIfname(`p${i}`);
    const mtu = String(this.underlayMtu);
    await this.ip(ns, 'link', 'add', 'ul0', 'mtu', mtu, 'type', 'veth', 'peer', 'name', port, 'netns', this.switchNs, 'mtu', mtu);
    await this.ip(this.switchNs, 'link', 'set', port, 'master', 'sw0', 'up');
    if (!this.underlayOffloads) await this.ethtool(ns, 'ul0', { tx: false, tso: false, gso: false });
    if (this.family === 4) await this.ip(ns, 'addr', 'add', `${address}/${prefixLen}`, 'dev', 'ul0');
    else await this.ip(ns, '-6', 'addr', 'add', `${address}/${prefixLen}`, 'dev', 'ul0', 'nodad');
    await this.ip(ns, 'link', 'set', 'ul0', 'up');
    this.hosts.push({ index: i, name: `h${i}`, ns, underlayIf: 'ul0', address, prefixLen, family: this.family, bridges: [] });
  }

  /**
   * `ethtool -K iface name on|off …` inside `ns`, without the ethtool binary: runs lab/ethtool.ts
   * (the addon's SIOCETHTOOL calls) there. Keys: rx, tx, sg, tso, gso, gro or kernel feature names.
   */
  async ethtool(ns: string, iface: string, features: Record<string, boolean>): Promise<void> {
    const args = Object.entries(features).flatMap(([k, on]) => [k, on ? 'on' : 'off']);
    await this.exec(ns, process.execPath, [ETHTOOL_SCRIPT, checkIfname(iface), ...args]);
  }

  /** Host by 1-based index or short name (`h2`). */
  host(which: number | string): LabHost {
    const h = typeof which === 'number' ? this.hosts[which - 1] : this.hosts.find((x) => x.name === which);
    if (!h) throw new LabError(`no host ${which}`);
    return h;
  }

  /** Container by short name. */
  container(name: string): LabContainer {
    const c = this.containers.find((x) => x.name === name);
    if (!c) throw new LabError(`no container ${name}`);
    return c;
  }

  /** Creates (and brings up) a Linux bridge in the host's namespace. Its MTU follows its ports. */
  async addBridge(host: LabHost, name: string): Promise<void> {
    checkIfname(name);
    await this.ip(host.ns, 'link', 'add', name, 'type', 'bridge');
    await this.ip(host.ns, 'link', 'set', name, 'up');
    host.bridges.push(name);
  }

  /**
   * Adds a container: a namespace with `eth0` (address, MAC, MTU, up, default route not set)
   * whose veth peer sits in the host namespace, enslaved to `opts.bridge`.
   */
  async addContainer(host: LabHost, opts: ContainerOptions): Promise<LabContainer> {
    const n = this.containers.filter((c) => c.host === host).length + 1;
    const name = checkIfname(opts.name ?? `h${host.index}c${n}`);
    if (this.containers.some((c) => c.name === name)) throw new LabError(`container ${name} exists`);
    const [address, plen] = opts.address.split('/');
    if (!address || !plen) throw new LabError(`container address '${opts.address}' needs a prefix length`);
    const mtu = opts.mtu ?? this.overlayMtu;
    this.macCounter++;
    const mac = opts.mac ?? `02:76:78:00:${((this.macCounter >> 8) & 0xff).toString(16).padStart(2, '0')}:${(this.macCounter & 0xff).toString(16).padStart(2, '0')}`;
    const ns = `${this.prefix}-${name}`;
    await this.addNamespace(ns, this.containerIpv6);
    await this.ip(host.ns, 'link', 'add', name, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns, 'mtu', String(mtu));
    await this.ip(host.ns, 'link', 'set', name, 'master', opts.bridge, 'up');
    await this.ip(ns, 'link', 'set', 'eth0', 'address', mac);
    await this.ip(ns, 'addr', 'add', opts.address, 'dev', 'eth0');
    await this.ip(ns, 'link', 'set', 'eth0', 'up');
    const c: LabContainer = { name, ns, host, ifname: 'eth0', hostIf: name, bridge: opts.bridge, address, prefixLen: Number(plen), mac, mtu };
    this.containers.push(c);
    return c;
  }

  /**
   * Creates a kernel VXLAN device on `host` (`ip link add … type vxlan id N dstport P local <host>
   * nolearning`), enslaves it to `opts.bridge`, and adds one all-zero FDB entry per peer
   * (`bridge fdb append 00:00:00:00:00:00 dst <peer>`: head-end replication of BUM traffic).
   * Returns the device name.
   */
  async addKernelVxlan(host: LabHost, opts: KernelVxlanOptions): Promise<string> {
    const name = checkIfname(opts.name ?? `kvx${opts.vni}`.slice(0, MAX_IFNAME));
    const port = opts.port ?? 4789;
    const args = ['link', 'add', name, 'type', 'vxlan', 'id', String(opts.vni), 'dstport', String(port), 'local', host.address];
    args.push(opts.learning ? 'learning' : 'nolearning');
    await this.ip(host.ns, ...args);
    await this.ip(host.ns, 'link', 'set', name, 'mtu', String(opts.mtu ?? this.overlayMtu));
    await this.ip(host.ns, 'link', 'set', name, 'master', opts.bridge, 'up');
    for (const peer of opts.peers) {
      await this.run('bridge', ['-n', host.ns, 'fdb', 'append', '00:00:00:00:00:00', 'dev', name, 'dst', peer]);
    }
    return name;
  }

  // ---------------------------------------------------------------------------------------------
  // Commands

  /** `ip -n <ns> <args…>` (ns null: the caller's namespace). */
  async ip(ns: string | null, ...args: string[]): Promise<ExecResult> {
    return this.run('ip', ns ? ['-n', ns, ...args] : args);
  }

  /** Runs `cmd args` inside `ns` (`ip netns exec`), or here when ns is null. */
  async exec(ns: string | null, cmd: string, args: string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    return ns ? this.run('ip', ['netns', 'exec', ns, cmd, ...args], opts) : this.run(cmd, args, opts);
  }

  private run(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.destroyed) return Promise.reject(new LabError(`lab ${this.prefix} is destroyed`));
    this.trace?.(`${cmd} ${args.join(' ')}`);
    const timeout = opts.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const child = execFile(
        cmd,
        args,
        { timeout, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env, encoding: 'utf8' },
        (err, stdout, stderr) => {
          const e = err as (NodeJS.ErrnoException & { killed?: boolean; code?: number | string }) | null;
          const code = e ? (typeof e.code === 'number' ? e.code : -1) : 0;
          const res = { code, stdout, stderr };
          if (e && e.killed) {
            reject(new LabError(`timed out after ${timeout} ms: ${cmd} ${args.join(' ')}`, { stdout, stderr }));
          } else if (e && typeof e.code !== 'number') {
            reject(new LabError(`cannot run ${cmd}: ${e.message}`));
          } else if (code !== 0 && opts.check !== false) {
            reject(new LabError(`exit ${code}: ${cmd} ${args.join(' ')}: ${stderr.trim() || stdout.trim()}`, { stdout, stderr, code }));
          } else {
            resolve(res);
          }
        },
      );
      this.execs.add(child);
      child.on('exit', () => this.execs.delete(child));
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      else child.stdin?.end();
    });
  }

  /**
   * Starts a long-running process inside `ns` (null: here). Its PID is tracked; `stop(p)` or
   * `destroy()` kill exactly that PID. Output is kept (last 256 KiB) and optionally logged to a file.
   */
  spawn(ns: string | null, cmd: string, args: string[] = [], opts: SpawnOptions = {}): LabProcess {
    if (this.destroyed) throw new LabError(`lab ${this.prefix} is destroyed`);
    const argv = ns ? ['netns', 'exec', ns, cmd, ...args] : args;
    const file = ns ? 'ip' : cmd;
    this.trace?.(`spawn ${file} ${argv.join(' ')}`);
    const child = spawnChild(file, argv, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) throw new LabError(`cannot spawn ${cmd}`);
    let all = '';
    let out = '';
    const log = opts.logFile ? fs.createWriteStream(opts.logFile, { flags: 'a' }) : null;
    const keep = (s: string, chunk: string) => {
      s += chunk;
      return s.length > OUTPUT_LIMIT ? s.slice(s.length - OUTPUT_LIMIT) : s;
    };
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      all = keep(all, d);
      out = keep(out, d);
      log?.write(d);
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      all = keep(all, d);
      log?.write(d);
    });
    const tracked: Tracked = { proc: child, done: false, info: undefined as unknown as LabProcess };
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('exit', (code, signal) => {
        tracked.done = true;
        log?.end();
        resolve({ code, signal });
      });
      child.on('error', () => {
        tracked.done = true;
        log?.end();
        resolve({ code: null, signal: null });
      });
    });
    tracked.info = {
      name: opts.name ?? path.basename(cmd),
      ns,
      pid: child.pid,
      exited,
      running: () => !tracked.done,
      output: () => all,
      stdout: () => out,
    };
    this.procs.push(tracked);
    return tracked.info;
  }

  /**
   * Stops a process started by `spawn`: `signal` (default SIGTERM) to its PID, then SIGKILL after
   * `timeoutMs` (default 5000). Resolves with its exit status.
   */
  async stop(p: LabProcess, opts: { signal?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const t = this.procs.find((x) => x.info === p);
    if (!t) throw new LabError(`process ${p.pid} was not started by this lab`);
    if (!t.done) {
      try {
        process.kill(p.pid, opts.signal ?? 'SIGTERM');
      } catch {
        /* already gone */
      }
      let handle: NodeJS.Timeout | undefined;
      const timer = new Promise<'timeout'>((r) => (handle = setTimeout(() => r('timeout'), opts.timeoutMs ?? 5000)));
      const first = await Promise.race([p.exited, timer]);
      clearTimeout(handle);
      if (first === 'timeout' && !t.done) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    return p.exited;
  }

  /** Waits until `p` prints `pattern` (on stdout or stderr); fails if it exits first or after timeoutMs. */
  async waitForOutput(p: LabProcess, pattern: RegExp | string, timeoutMs = 10_000): Promise<void> {
    const test = (s: string) => (typeof pattern === 'string' ? s.includes(pattern) : pattern.test(s));
    await this.waitFor(`${p.name} to print ${pattern}`, () => {
      if (test(p.output())) return true;
      if (!p.running()) throw new LabError(`${p.name} (pid ${p.pid}) exited before printing ${pattern}:\n${p.output()}`);
      return false;
    }, { timeoutMs, intervalMs: 20 });
  }

  /**
   * Polls `cond` every `intervalMs` (default 50) until it returns a truthy value, which is returned;
   * throws LabError after `timeoutMs` (default 10 000). `cond` may throw to abort early.
   */
  async waitFor<T>(what: string, cond: () => T | Promise<T>, opts: { timeoutMs?: number; intervalMs?: number } = {}): Promise<NonNullable<T>> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    const interval = opts.intervalMs ?? 50;
    let last: unknown;
    for (;;) {
      const v = await cond();
      if (v) return v as NonNullable<T>;
      last = v;
      if (Date.now() >= deadline) throw new LabError(`timed out waiting for ${what}`, { last });
      await sleep(interval);
    }
  }

  /** Writes a file in the lab's scratch directory; returns its absolute path. */
  writeFile(name: string, content: string | Buffer): string {
    if (name.includes('/') || name.startsWith('.')) throw new LabError(`bad file name '${name}'`);
    const p = path.join(this.dir, name);
    fs.writeFileSync(p, content, { mode: 0o600 });
    return p;
  }

  // ---------------------------------------------------------------------------------------------
  // Observations and traffic

  /** Interface counters and state (`ip -s -j link show`). */
  async linkStats(ns: string, ifname: string): Promise<LinkStats> {
    const r = await this.ip(ns, '-s', '-j', 'link', 'show', 'dev', ifname);
    const j = JSON.parse(r.stdout)[0];
    const s = j.stats64 ?? j.stats;
    return {
      rxPackets: s.rx.packets,
      rxBytes: s.rx.bytes,
      txPackets: s.tx.packets,
      txBytes: s.tx.bytes,
      rxDropped: s.rx.dropped,
      txDropped: s.tx.dropped,
      mtu: j.mtu,
      mac: j.address,
      up: Array.isArray(j.flags) && j.flags.includes('UP'),
    };
  }

  /** Does `ifname` exist in `ns`? */
  async linkExists(ns: string, ifname: string): Promise<boolean> {
    const r = await this.ip(ns, '-j', 'link', 'show');
    return (JSON.parse(r.stdout) as Array<{ ifname: string }>).some((l) => l.ifname === ifname);
  }

  async setMtu(ns: string, ifname: string, mtu: number): Promise<void> {
    await this.ip(ns, 'link', 'set', 'dev', ifname, 'mtu', String(mtu));
  }

  /**
   * `ping` from a container (or any namespace) to `to`. Never throws on loss: returns counts.
   * `dontFragment` adds `-M do`; `size` is the ICMP payload (-s).
   */
  async ping(from: LabContainer | string, to: string, opts: { count?: number; intervalS?: number; size?: number; dontFragment?: boolean; waitS?: number } = {}): Promise<PingResult> {
    const ns = typeof from === 'string' ? from : from.ns;
    const count = opts.count ?? 3;
    const args = ['-n', '-q', '-c', String(count), '-i', String(opts.intervalS ?? 0.2), '-W', String(opts.waitS ?? 2)];
    if (opts.size !== undefined) args.push('-s', String(opts.size));
    if (opts.dontFragment) args.push('-M', 'do');
    args.push(to);
    const timeoutMs = 10_000 + count * ((opts.intervalS ?? 0.2) * 1000 + 100) + (opts.waitS ?? 2) * 1000;
    const r = await this.exec(ns, 'ping', args, { check: false, timeoutMs });
    return parsePing(r.stdout + r.stderr);
  }

  /**
   * A ping without `ping` (iputils): `count` numbered UDP datagrams from `from` to an echo server
   * on `to` (port `port`), each echoed back (lab/echo.ts). Never throws on loss: returns counts and
   * round-trip times like `ping`.
   */
  async udpEcho(from: LabContainer, to: LabContainer, opts: { count?: number; intervalMs?: number; port?: number; waitMs?: number } = {}): Promise<PingResult> {
    const count = opts.count ?? 3;
    const intervalMs = opts.intervalMs ?? 200;
    const waitMs = opts.waitMs ?? 2000;
    const port = opts.port ?? 7;
    const echo = path.join(__dirname, 'echo.js');
    const total = count * intervalMs + waitMs + 10_000;
    const server = this.spawn(to.ns, process.execPath, [echo, 'server', to.address, String(port), String(total)], { name: `echo@${to.name}` });
    try {
      await this.waitForOutput(server, 'listening', 10_000);
      const r = await this.exec(from.ns, process.execPath, [echo, 'client', to.address, String(port), String(count), String(intervalMs), String(waitMs)], { timeoutMs: total });
      const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { transmitted: number; received: number; rttMs: number[] };
      const xs = j.rttMs;
      const avg = xs.length ? xs.reduce((x, y) => x + y, 0) / xs.length : 0;
      const rtt = xs.length
        ? { min: Math.min(...xs), avg, max: Math.max(...xs), mdev: Math.sqrt(xs.reduce((x, y) => x + (y - avg) ** 2, 0) / xs.length) }
        : null;
      return { transmitted: j.transmitted, received: j.received, rtt, output: r.stdout + r.stderr };
    } finally {
      if (server.running()) await this.stop(server, { timeoutMs: 1000 });
    }
  }

  /**
   * Sends `bytes` random bytes over TCP from `from` to `to` (a sink process in the receiver's
   * namespace listening on `port`), and returns both sides' sha256. Uses `lab/xfer.ts`.
   */
  async tcpTransfer(from: LabContainer, to: LabContainer, opts: { bytes?: number; port?: number; timeoutMs?: number } = {}): Promise<TransferResult> {
    const bytes = opts.bytes ?? 1 << 20;
    const port = opts.port ?? 5001;
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const xfer = path.join(__dirname, 'xfer.js');
    const sink = this.spawn(to.ns, process.execPath, [xfer, 'sink', to.address, String(port), String(timeoutMs)], { name: `sink@${to.name}` });
    try {
      await this.waitForOutput(sink, 'listening', 10_000);
      const src = await this.exec(from.ns, process.execPath, [xfer, 'source', to.address, String(port), String(bytes), String(timeoutMs)], { timeoutMs: timeoutMs + 5000 });
      const sent = JSON.parse(src.stdout.trim().split('\n').pop()!);
      let timer: NodeJS.Timeout | undefined;
      const exit = await Promise.race([sink.exited, new Promise<null>((r) => (timer = setTimeout(() => r(null), timeoutMs)))]);
      clearTimeout(timer);
      if (!exit) throw new LabError(`sink on ${to.name} did not finish`);
      const line = sink.stdout().trim().split('\n').filter((l) => l.startsWith('{')).pop();
      if (!line) throw new LabError(`sink on ${to.name} printed no result:\n${sink.output()}`);
      const got = JSON.parse(line);
      return { bytes: sent.bytes, sentSha256: sent.sha256, receivedSha256: got.sha256, receivedBytes: got.bytes };
    } finally {
      if (sink.running()) await this.stop(sink, { timeoutMs: 1000 });
    }
  }

  /**
   * Starts `tcpdump -w` on `ifname` in `ns` with an optional BPF filter; resolves once tcpdump is
   * listening. `stop()` ends it (SIGINT) and returns the pcap path (inside `lab.dir`).
   */
  async capture(ns: string, ifname: string, filter = '', opts: { name?: string; snaplen?: number } = {}): Promise<Capture> {
    const file = path.join(this.dir, `${opts.name ?? `${path.basename(ns)}-${ifname}`}-${randomBytes(3).toString('hex')}.pcap`);
    const args = ['-n', '-Z', 'root', '--immediate-mode', '-i', ifname, '-U', '-s', String(opts.snaplen ?? 256), '-w', file];
    if (filter) args.push(...filter.split(/\s+/).filter(Boolean));
    const p = this.spawn(ns, 'tcpdump', args, { name: `tcpdump@${ifname}` });
    await this.waitForOutput(p, 'listening on', 10_000);
    return {
      file,
      stop: async () => {
        await this.stop(p, { signal: 'SIGINT', timeoutMs: 3000 });
        return file;
      },
    };
  }

  /**
   * Reads a pcap with tcpdump (`-r file -nn [-v] [-e] filter`) and returns one string per packet
   * (tcpdump's continuation lines, e.g. a VXLAN packet's inner frame, joined with ' | ').
   */
  async readPcap(file: string, filter = '', opts: { verbose?: boolean; ether?: boolean } = {}): Promise<string[]> {
    const args = ['-r', file, '-nn'];
    if (opts.verbose) args.push('-v');
    if (opts.ether) args.push('-e');
    if (filter) args.push(...filter.split(/\s+/).filter(Boolean));
    const r = await this.run('tcpdump', args, { check: false });
    if (r.code !== 0) throw new LabError(`tcpdump -r ${file} failed: ${r.stderr.trim()}`);
    const packets: string[] = [];
    for (const line of r.stdout.split('\n')) {
      if (line.trim() === '') continue;
      if (/^\d{2}:\d{2}:\d{2}\.\d+ /.test(line) || packets.length === 0) packets.push(line);
      else packets[packets.length - 1] += ` | ${line.trim()}`;
    }
    return packets;
  }

  // ---------------------------------------------------------------------------------------------
  // Teardown

  /** Names of this run's namespaces that currently exist (for leak checks). */
  static listNamespaces(prefix: string): string[] {
    const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    return (r.stdout ?? '')
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n && n.startsWith(`${prefix}-`));
  }

  /**
   * Removes everything: kills the lab's processes (SIGTERM, then SIGKILL after 3 s), deletes its
   * namespaces (which deletes their interfaces and the veth peers), removes the scratch directory.
   * Idempotent; never throws (errors go to stderr).
   */
  destroy(): Promise<void> {
    if (this.destroying) return this.destroying;
    this.destroying = (async () => {
      const errors: string[] = [];
      await Promise.all(
        this.procs.filter((t) => !t.done).map((t) => this.stop(t.info, { timeoutMs: 3000 }).catch((e) => errors.push(String(e)))),
      );
      this.destroyed = true;
      this.killExecs();
      for (const ns of [...this.namespaces].reverse()) {
        const r = spawnSync('ip', ['netns', 'del', ns], { encoding: 'utf8' });
        if (r.status !== 0 && !/No such file/.test(r.stderr ?? '')) errors.push(`ip netns del ${ns}: ${r.stderr}`);
      }
      this.namespaces.length = 0;
      try {
        if (!process.env.VXMESH_LAB_KEEP_DIR) fs.rmSync(this.dir, { recursive: true, force: true });
      } catch (e) {
        errors.push(String(e));
      }
      liveLabs.delete(this);
      uninstallSignalHandlersIfIdle();
      if (errors.length) process.stderr.write(`lab ${this.prefix}: teardown problems:\n  ${errors.join('\n  ')}\n`);
    })();
    return this.destroying;
  }

  private killExecs(): void {
    for (const c of this.execs) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    this.execs.clear();
  }

  /** Synchronous teardown for the process 'exit' hook: SIGKILL tracked PIDs, delete namespaces. */
  destroySync(): void {
    this.destroyed = true;
    this.killExecs();
    for (const t of this.procs) {
      if (!t.done) {
        try {
          process.kill(t.info.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (const ns of [...this.namespaces].reverse()) spawnSync('ip', ['netns', 'del', ns]);
    this.namespaces.length = 0;
    try {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
    liveLabs.delete(this);
  }
}

/** Parses iputils `ping -q` output. */
export function parsePing(text: string): PingResult {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(text);
  const r = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(text);
  return {
    transmitted: m ? Number(m[1]) : 0,
    received: m ? Number(m[2]) : 0,
    rtt: r ? { min: Number(r[1]), avg: Number(r[2]), max: Number(r[3]), mdev: Number(r[4]) } : null,
    output: text,
  };
}
