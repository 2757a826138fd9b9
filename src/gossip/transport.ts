/**
 * The gossip transport seam (memberlist's Transport): best-effort datagrams for probes and
 * piggybacked broadcasts, and a reliable request/response stream for push-pull state exchange.
 * Addresses are "host:port" strings. Two implementations: `udp-transport.ts` (node:dgram +
 * node:net) and `memory-transport.ts` (deterministic, seeded, for tests and the simulator).
 *
 * Contract:
 * - `sendPacket` never throws on network errors; the packet is simply lost (counted by the
 *   implementation). Payloads are opaque (already encrypted by the keyring).
 * - `request` calls `cb` exactly once: with the peer's reply, or with an Error (refused,
 *   unreachable, timed out after `timeoutMs`, reply larger than the stream limit).
 * - Handlers are called asynchronously (never re-entrantly from inside `sendPacket`/`request`).
 * - A handler's `reply(null)` closes the stream without an answer (the requester gets an Error).
 */

export interface TransportHandler {
  onPacket(from: string, data: Uint8Array): void;
  onRequest(from: string, data: Uint8Array, reply: (data: Uint8Array | null) => void): void;
}

export interface Transport {
  /** This node's advertised address ("host:port"). */
  readonly address: string;
  /** Registers the one handler (before any traffic arrives). */
  listen(handler: TransportHandler): void;
  sendPacket(to: string, data: Uint8Array): void;
  request(to: string, data: Uint8Array, timeoutMs: number, cb: (err: Error | null, reply?: Uint8Array) => void): void;
  /** Stops receiving; pending requests fail. Idempotent. */
  close(): void | Promise<void>;
}

/** Transport-level counters every implementation keeps. */
export interface TransportStats {
  packetsSent: number;
  packetBytesSent: number;
  packetsReceived: number;
  packetBytesReceived: number;
  streamsOpened: number;
  streamBytesSent: number;
  streamBytesReceived: number;
  streamErrors: number;
}

/**
 * Why a `request` failed, from the Error's `code` (both transports set it): the peer refused the
 * connection or is unreachable (`refused`), did not answer in time (`timeout`), or accepted it and
 * closed it without a reply (`closed`: e.g. it could not open our message — another cluster key),
 * or answered with something no cluster key of ours opens (`bad_key`, set by push-pull).
 */
export type StreamFailure = 'refused' | 'timeout' | 'closed' | 'bad_key' | 'other';

export function streamFailure(err: Error): StreamFailure {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'refused';
  if (code === 'ETIMEDOUT') return 'timeout';
  if (code === 'EBADKEY') return 'bad_key';
  if (code === 'ECONNRESET' || code === 'ECLOSED' || code === 'EPIPE') return 'closed';
  return 'other';
}

/** An Error with a `code` (`streamFailure` reads it). */
export function streamError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

export function newTransportStats(): TransportStats {
  return {
    packetsSent: 0, packetBytesSent: 0, packetsReceived: 0, packetBytesReceived: 0,
    streamsOpened: 0, streamBytesSent: 0, streamBytesReceived: 0, streamErrors: 0,
  };
}
