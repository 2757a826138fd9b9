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

export function newTransportStats(): TransportStats {
  return {
    packetsSent: 0, packetBytesSent: 0, packetsReceived: 0, packetBytesReceived: 0,
    streamsOpened: 0, streamBytesSent: 0, streamBytesReceived: 0, streamErrors: 0,
  };
}
