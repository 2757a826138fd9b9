/**
 * The real gossip transport: node:dgram for packets and node:net for push-pull / fallback-ping
 * streams, both bound to gossip.address:port. A stream carries one request and one reply, each
 * framed as u32 length + bytes; a length above the stream limit is refused before any buffer is
 * allocated for it, and every stream has a deadline.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { SystemError } from '../errors';
import { formatAddr, parseAddr } from './addr';
import { LIMITS } from './codec';
import { ENVELOPE_OVERHEAD } from './keyring';
import { Transport, TransportHandler, TransportStats, newTransportStats } from './transport';

export const ERR_GOSSIP_BIND = 'ERR_VXMESH_GOSSIP_BIND';
const MAX_FRAME = LIMITS.maxStream + ENVELOPE_OVERHEAD;
const MAX_DATAGRAM = LIMITS.maxPacket + ENVELOPE_OVERHEAD;
/** Concurrent inbound streams served; more are closed at once (counted as stream errors). */
const MAX_INBOUND_STREAMS = 32;

export interface UdpTransportStats extends TransportStats {
  /** Datagrams or stream frames refused for size, and send errors. */
  oversized: number;
  sendErrors: number;
}

/**
 * Reads one length-prefixed frame from `sock`; `cb` once with the frame or an error. A length
 * above the limit is refused at once; memory grows only with the bytes actually received.
 */
function readFrame(sock: net.Socket, cb: (err: Error | null, frame?: Buffer) => void): void {
  let head: Buffer | null = Buffer.alloc(0);
  let want = -1;
  const chunks: Buffer[] = [];
  let got = 0;
  let done = false;
  const finish = (err: Error | null, frame?: Buffer): void => {
    if (done) return;
    done = true;
    sock.removeListener('data', onData);
    cb(err, frame);
  };
  const onData = (chunk: Buffer): void => {
    let c = chunk;
    if (head) {
      const need = 4 - head.length;
      head = Buffer.concat([head, c.subarray(0, need)]);
      c = c.subarray(need);
      if (head.length < 4) return;
      want = head.readUInt32BE(0);
      head = null;
      if (want > MAX_FRAME) return finish(Object.assign(new Error(`stream frame of ${want} bytes exceeds ${MAX_FRAME}`), { code: 'oversized' }));
    }
    if (c.length > want - got) c = c.subarray(0, want - got);
    if (c.length > 0) {
      chunks.push(Buffer.from(c));
      got += c.length;
    }
    if (got === want) finish(null, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, got));
  };
  sock.on('data', onData);
  sock.once('end', () => finish(Object.assign(new Error('stream closed before a full frame'), { code: 'ECLOSED' })));
  sock.once('error', (e) => finish(e));
}

function frame(data: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(4 + data.length);
  b.writeUInt32BE(data.length, 0);
  b.set(data, 4);
  return b;
}

export class UdpGossipTransport implements Transport {
  readonly stats: UdpTransportStats = { ...newTransportStats(), oversized: 0, sendErrors: 0 };
  private handler: TransportHandler | null = null;
  private closed = false;
  private inbound = 0;
  private readonly open = new Set<net.Socket>();
  private readonly addrCache = new Map<string, { host: string; port: number }>();

  private constructor(
    readonly address: string,
    private readonly udp: dgram.Socket,
    private readonly tcp: net.Server,
    private readonly streamTimeoutMs: number,
  ) {}

  /** Binds UDP and TCP on host:port. Throws SystemError ERR_VXMESH_GOSSIP_BIND when either fails. */
  static async bind(opts: { host: string; port: number; streamTimeoutMs?: number }): Promise<UdpGossipTransport> {
    const family = opts.host.includes(':') ? 'udp6' : 'udp4';
    const udp = dgram.createSocket({ type: family, reuseAddr: false });
    const fail = (what: string, e: NodeJS.ErrnoException): SystemError =>
      new SystemError(ERR_GOSSIP_BIND, `cannot bind gossip ${what} on ${formatAddr(opts.host, opts.port)}: ${e.code ?? e.message}`, 'bind', e.code ?? 'EIO');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', (e) => reject(fail('UDP', e)));
      udp.bind({ address: opts.host, port: opts.port, exclusive: true }, () => resolve());
    });
    const tcp = net.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', (e) => reject(fail('TCP', e as NodeJS.ErrnoException)));
        tcp.listen({ host: opts.host, port: opts.port, exclusive: true }, () => resolve());
      });
    } catch (e) {
      udp.close();
      throw e;
    }
    const t = new UdpGossipTransport(formatAddr(opts.host, opts.port), udp, tcp, opts.streamTimeoutMs ?? 10_000);
    t.wire();
    return t;
  }

  private wire(): void {
    this.udp.on('message', (msg, rinfo) => {
      if (this.closed) return;
      this.stats.packetsReceived++;
      this.stats.packetBytesReceived += msg.length;
      if (msg.length > MAX_DATAGRAM) {
        this.stats.oversized++;
        return;
      }
      this.handler?.onPacket(formatAddr(rinfo.address, rinfo.port), msg);
    });
    this.udp.on('error', () => {
      this.stats.sendErrors++;
    });
    this.tcp.on('connection', (sock) => this.serve(sock));
  }

  private serve(sock: net.Socket): void {
    if (this.inbound >= MAX_INBOUND_STREAMS) {
      this.stats.streamErrors++;
      sock.destroy();
      return;
    }
    this.inbound++;
    sock.once('close', () => this.inbound--);
    this.open.add(sock);
    sock.setNoDelay(true);
    sock.setTimeout(this.streamTimeoutMs, () => sock.destroy());
    sock.on('close', () => this.open.delete(sock));
    sock.on('error', () => {});
    const from = formatAddr(sock.remoteAddress ?? '0.0.0.0', sock.remotePort ?? 0);
    readFrame(sock, (err, req) => {
      if (err || !req || this.closed || !this.handler) {
        if (err && (err as NodeJS.ErrnoException).code === 'oversized') this.stats.oversized++;
        this.stats.streamErrors++;
        sock.destroy();
        return;
      }
      this.stats.streamBytesReceived += req.length;
      this.handler.onRequest(from, req, (reply) => {
        if (reply === null || sock.destroyed) {
          sock.destroy();
          return;
        }
        this.stats.streamBytesSent += reply.length;
        sock.end(frame(reply));
      });
    });
  }

  listen(handler: TransportHandler): void {
    this.handler = handler;
  }

  private resolve(to: string): { host: string; port: number } | null {
    let a = this.addrCache.get(to);
    if (!a) {
      const p = parseAddr(to);
      if (!p) return null;
      a = { host: p.host, port: p.port };
      if (this.addrCache.size > 10_000) this.addrCache.clear();
      this.addrCache.set(to, a);
    }
    return a;
  }

  sendPacket(to: string, data: Uint8Array): void {
    if (this.closed) return;
    const a = this.resolve(to);
    if (!a) {
      this.stats.sendErrors++;
      return;
    }
    this.stats.packetsSent++;
    this.stats.packetBytesSent += data.length;
    this.udp.send(data, a.port, a.host, (err) => {
      if (err) this.stats.sendErrors++;
    });
  }

  request(to: string, data: Uint8Array, timeoutMs: number, cb: (err: Error | null, reply?: Uint8Array) => void): void {
    const a = this.resolve(to);
    if (this.closed || !a) {
      setImmediate(() => cb(new Error(this.closed ? 'transport closed' : `bad address ${to}`)));
      return;
    }
    this.stats.streamsOpened++;
    let done = false;
    const sock = net.connect({ host: a.host, port: a.port, localAddress: this.localHost() });
    this.open.add(sock);
    const finish = (err: Error | null, reply?: Uint8Array): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      this.open.delete(sock);
      if (err) this.stats.streamErrors++;
      cb(err, reply);
    };
    const timer = setTimeout(() => finish(Object.assign(new Error(`stream to ${to} timed out`), { code: 'ETIMEDOUT' })), timeoutMs);
    timer.unref();
    sock.on('error', (e) => finish(e));
    sock.setNoDelay(true);
    sock.once('connect', () => {
      this.stats.streamBytesSent += data.length;
      sock.write(frame(data));
      readFrame(sock, (err, reply) => {
        if (err || !reply) return finish(err ?? new Error('no reply'));
        this.stats.streamBytesReceived += reply.length;
        finish(null, reply);
      });
    });
  }

  private localHost(): string {
    const p = parseAddr(this.address);
    return p ? p.host : '0.0.0.0';
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.open) s.destroy();
    this.open.clear();
    await new Promise<void>((r) => this.tcp.close(() => r()));
    await new Promise<void>((r) => {
      try {
        this.udp.close(() => r());
      } catch {
        r();
      }
    });
  }
}
