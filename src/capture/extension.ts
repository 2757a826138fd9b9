/**
 * The capture extension of the agent: serves the drop rings and live captures as pcapng on the
 * root-only control socket (`api.socket`; frames carry container traffic, so never on api.listen),
 * and exports the per-peer drop series (metrics.ts) in the ops registry.
 *
 *   GET /v1/capture/drops[?network=N][&count=K]
 *       pcapng (application/x-pcapng): one interface per drop ring (each network's; without
 *       `network` also the global ring of datagrams dropped before their network was known), the
 *       newest K frames of each (default all, at most DROP_RING_FRAMES), oldest first, each with
 *       its reason, direction, network and peer as the packet comment.
 *   GET /v1/capture/live?network=N[&count=K][&snap=S][&queue=Q]
 *       a pcapng stream of the frames network N forwards, both directions (inner Ethernet frames:
 *       written to its TAP = inbound, sent to a peer or flooded = outbound), until the client goes
 *       or K frames were sent (then an Interface Statistics Block and the end). A session queues
 *       at most Q frames (default 4096) of at most S bytes (default 2048); when the client is slow
 *       the queue fills and further frames are missed — counted, and written as the next packet's
 *       epb_dropcount — the data path never waits. Drained every `drainMs` (default 20 ms), at
 *       most 512 frames (and about 1 MiB) a time, and only while the socket is writable.
 *
 * The control socket belongs to the endpoints extension (it runs when `api.socket` is set, or a
 * network uses IPAM / endpoint modes); without it the capture routes are not served (logged once
 * at start) — the per-peer drop series and the drop rings (for the logs) work regardless.
 */
import type * as http from 'node:http';
import type { Metric, Registry } from 'prom-client';
import type { Agent, AgentExtension } from '../agent/agent';
import { sendError, type Handler } from '../api/server';
import type { TimerHandle } from '../clock';
import type { Config } from '../config/types';
import type { Logger } from '../log';
import { nullLogger } from '../log';
import { Family } from '../metrics/family';
import type { CaptureHub, CaptureNetwork, LiveSession } from './drops';
import { DROP_RING_FRAMES } from './drops';
import { PEER_DROPS_FAMILY, PEER_DROPS_HELP, PEER_DROPS_LABELS, emitPeerDrops } from './metrics';
import { interfaceDescription, interfaceStatistics, sectionHeader } from './pcapng';
import { dropInterface, dropPacket, livePacket, type RenderContext } from './render';

export const PCAPNG_TYPE = 'application/x-pcapng';
const LIVE_QUEUE_DEFAULT = 4096;
const LIVE_QUEUE_MAX = 65_536;
const LIVE_SNAP_DEFAULT = 2048;
const LIVE_SNAP_MAX = 65_535;
const DRAIN_BATCH = 512;
const DRAIN_BYTES = 1 << 20;

/** A router to register routes on (ApiServer / the control socket's). */
export interface CaptureRouter {
  route(method: string, path: string, handler: Handler): unknown;
  unroute(method: string, path: string): void;
}

export interface CaptureExtensionOptions {
  logger?: Logger;
  /** The control socket's router (the endpoints extension's); absent: this extension opens api.socket. */
  control?: CaptureRouter | null;
  /** Live drain interval, ms (default 20). */
  drainMs?: number;
}

class BadQuery extends Error {}

function intParam(q: URLSearchParams, name: string, dflt: number, min: number, max: number): number {
  const v = q.get(name);
  if (v === null || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new BadQuery(`${name}: expected an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  return Number(v);
}

export class CaptureExtension implements AgentExtension {
  readonly name = 'capture';
  private agent: Agent | null = null;
  private readonly log: Logger;
  private control: CaptureRouter | null;
  private readonly live = new Set<{ session: LiveSession; hub: CaptureHub; timer: TimerHandle | null; res: http.ServerResponse }>();
  private registered: { registry: Registry } | null = null;
  /** The registry of /metrics (the ops extension's), when it runs. */
  private registry: Registry | null = null;

  constructor(_config: Config, private readonly opts: CaptureExtensionOptions = {}) {
    this.log = (opts.logger ?? nullLogger).child({ component: 'capture' });
    this.control = opts.control ?? null;
  }

  /** Typed connections made once by buildExtensions: the control socket, the registry of /metrics. */
  connect(parts: { control?: CaptureRouter | null; registry?: Registry | null }): void {
    if (parts.control !== undefined) this.control = parts.control;
    if (parts.registry !== undefined) this.registry = parts.registry;
  }

  start(agent: Agent): void {
    this.agent = agent;
    const router = this.control;
    if (router !== null) {
      router.route('GET', '/v1/capture/drops', (req, res) => this.drops(req, res));
      router.route('GET', '/v1/capture/live', (req, res) => this.startLive(req, res));
    } else {
      this.log.info({}, 'no control socket (set api.socket in the config): vxmesh capture is not served');
    }
    // the per-peer drop series, in the ops extension's registry when it runs
    const reg = this.registry;
    if (reg && !reg.getSingleMetric(PEER_DROPS_FAMILY)) {
      reg.registerMetric(new Family(PEER_DROPS_FAMILY, PEER_DROPS_HELP, 'counter', PEER_DROPS_LABELS, (emit) => {
        const dp = this.agent?.datapath;
        if (!dp || !this.agent) return;
        const a = this.agent;
        const hub = dp.capture;
        emitPeerDrops({
          tables: () => [{ network: null, vni: null, table: hub.globalTable }, ...hub.networks().map((n) => ({ network: n.config.name, vni: n.config.vni, table: n.counters.peerDrops }))],
          nodeName: (ep) => a.nodeName(ep),
        }, emit);
      }) as unknown as Metric);
      this.registered = { registry: reg };
    }
  }

  async stop(): Promise<void> {
    for (const l of [...this.live]) this.endLive(l, false);
    if (this.control) {
      this.control.unroute('GET', '/v1/capture/drops');
      this.control.unroute('GET', '/v1/capture/live');
    }
    this.registered?.registry.removeSingleMetric(PEER_DROPS_FAMILY);
    this.registered = null;
    this.agent = null;
  }

  status(): unknown {
    return { liveSessions: [...this.live].map((l) => ({ network: l.session.vni, queued: l.session.queue.length, captured: l.session.queue.accepted, missed: l.session.queue.missed })) };
  }

  private renderContext(): RenderContext {
    const a = this.agent!;
    return { wallOffsetMs: Date.now() - a.clock.now(), nodeName: (ep) => a.nodeName(ep), vxlanPort: a.config.underlay.port };
  }

  private hub(res: http.ServerResponse): CaptureHub | null {
    const dp = this.agent?.datapath;
    if (!dp || !dp.isRunning) {
      sendError(res, 503, 'the data path is not running');
      return null;
    }
    return dp.capture;
  }

  private findNetwork(hub: CaptureHub, name: string): CaptureNetwork | undefined {
    return hub.networks().find((n) => n.config.name === name || String(n.config.vni) === name);
  }

  private drops(req: http.IncomingMessage, res: http.ServerResponse): void {
    const hub = this.hub(res);
    if (!hub) return;
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    let count: number;
    try {
      count = intParam(q, 'count', DROP_RING_FRAMES, 1, 1_000_000);
    } catch (e) {
      sendError(res, 400, (e as Error).message);
      return;
    }
    const name = q.get('network');
    const scopes: (CaptureNetwork | null)[] = [];
    if (name !== null) {
      const n = this.findNetwork(hub, name);
      if (!n) {
        sendError(res, 404, `no network ${JSON.stringify(name)} on this host`);
        return;
      }
      scopes.push(n);
    } else {
      scopes.push(null, ...hub.networks());
    }
    const ctx = this.renderContext();
    const blocks: Buffer[] = [sectionHeader()];
    scopes.forEach((n) => blocks.push(dropInterface(n === null ? null : n.config.name, hub.snapLen)));
    // frames of all rings in time order
    const all: { t: number; b: Buffer }[] = [];
    scopes.forEach((n, ifId) => {
      const ring = hub.ring(n);
      if (!ring) return;
      for (const e of ring.entries(count)) all.push({ t: e.time, b: dropPacket(ifId, e, n === null ? null : n.config.name, ctx) });
    });
    all.sort((a, b) => a.t - b.t);
    for (const x of all) blocks.push(x.b);
    const body = Buffer.concat(blocks);
    res.writeHead(200, { 'content-type': PCAPNG_TYPE, 'content-length': body.length, 'cache-control': 'no-store', 'x-vxmesh-frames': String(all.length) });
    res.end(body);
  }

  private startLive(req: http.IncomingMessage, res: http.ServerResponse): void {
    const hub = this.hub(res);
    if (!hub) return;
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    let count: number, snap: number, queue: number;
    try {
      count = intParam(q, 'count', 0, 0, Number.MAX_SAFE_INTEGER);
      snap = intParam(q, 'snap', LIVE_SNAP_DEFAULT, 64, LIVE_SNAP_MAX);
      queue = intParam(q, 'queue', LIVE_QUEUE_DEFAULT, 1, LIVE_QUEUE_MAX);
    } catch (e) {
      sendError(res, 400, (e as Error).message);
      return;
    }
    const name = q.get('network');
    if (name === null || name === '') {
      sendError(res, 400, 'network: required (the network to capture)');
      return;
    }
    const net = this.findNetwork(hub, name);
    if (!net) {
      sendError(res, 404, `no network ${JSON.stringify(name)} on this host`);
      return;
    }
    let session: LiveSession;
    try {
      session = hub.open(net.config.vni, queue, snap, count);
    } catch (e) {
      sendError(res, 503, (e as Error).message);
      return;
    }
    res.writeHead(200, { 'content-type': PCAPNG_TYPE, 'cache-control': 'no-store' });
    res.write(Buffer.concat([sectionHeader(), interfaceDescription({ snapLen: snap, name: `vxmesh:${net.config.name}`, description: `vxmesh: frames forwarded on network ${net.config.name} (VNI ${net.config.vni})` })]));
    const l = { session, hub, timer: null as TimerHandle | null, res };
    this.live.add(l);
    this.log.info({ network: net.config.name, count: count || null, snap, queue }, 'live capture started');
    // at most 512 frames and about 1 MiB per drain: the response buffer holds at most that beyond its high-water mark
    const perDrain = Math.max(1, Math.min(DRAIN_BATCH, Math.floor(DRAIN_BYTES / snap)));
    let lastMissed = 0;
    let waiting = false;
    const ctx = this.renderContext();
    const drain = () => {
      if (waiting || res.destroyed) return;
      const entries = session.queue.take(perDrain);
      if (entries.length > 0) {
        const missed = session.queue.missed;
        const blocks = entries.map((e, i) => livePacket(0, e, i === 0 ? missed - lastMissed : 0, ctx));
        lastMissed = missed;
        if (!res.write(Buffer.concat(blocks))) {
          waiting = true;
          res.once('drain', () => { waiting = false; });
        }
      }
      if (session.remaining === 0 && session.queue.length === 0) this.endLive(l, true);
    };
    l.timer = this.agent!.clock.setInterval(this.opts.drainMs ?? 20, drain);
    res.on('close', () => this.endLive(l, false));
  }

  private endLive(l: { session: LiveSession; hub: CaptureHub; timer: TimerHandle | null; res: http.ServerResponse }, finished: boolean): void {
    if (!this.live.delete(l)) return;
    l.timer?.cancel();
    l.hub.close(l.session);
    const q = l.session.queue;
    this.log.info({ network: l.session.vni, captured: q.accepted, missed: q.missed }, 'live capture ended');
    if (!l.res.destroyed) {
      if (finished) l.res.end(interfaceStatistics(0, Date.now() * 1000, q.accepted, q.missed));
      else l.res.end();
    }
  }
}

/** The factory line for src/cli/extensions.ts. */
export function createCaptureExtension(config: Config, logger: Logger): CaptureExtension {
  return new CaptureExtension(config, { logger });
}

