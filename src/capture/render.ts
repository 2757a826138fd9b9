/**
 * Capture entries (ring.ts) → pcapng blocks (pcapng.ts) and readable flow lines (logs). Control
 * plane only.
 *
 * Dropped frames keep what the data path had at the drop point: an inner Ethernet frame
 * (KIND_FRAME), or a VXLAN datagram dropped before its inner frame was known (KIND_DATAGRAM:
 * truncated, bad header, unknown VNI, decrypt failure, a send the transport skipped). A datagram
 * is written as an Ethernet + IPv4/IPv6 + UDP frame built around the bytes kept (source = the
 * sender's record, destination port = the VXLAN port; addresses we do not know are zero), so
 * Wireshark decodes its VXLAN header too. Each packet's comment says what happened:
 *
 *     vxmesh drop: reason=unknown_vni dir=rx network=- peer=h3 endpoint=198.18.0.3:4789
 *
 * (`peer` is the node name where gossip knows it, else the underlay endpoint, as the metrics'
 * `peer` label; `endpoint` is added when `peer` is a name; both absent when no sender was known;
 * `len=` when the copy is shorter than the frame.)
 */
import { recordToEndpoint, endpointToString, isV4Mapped } from '../dataplane/addr';
import { csumAdd, csumFold } from '../dataplane/checksum';
import { RX_DROP_REASONS, TX_DROP_REASONS } from '../dataplane/counters';
import { EPB_INBOUND, EPB_OUTBOUND, enhancedPacket, interfaceDescription } from './pcapng';
import { DIR_RX, KIND_DATAGRAM, type FrameEntry } from './ring';

export interface RenderContext {
  /** Wall-clock ms minus clock ms (entries carry the data path's clock). */
  wallOffsetMs: number;
  /** Node name of an underlay endpoint ("addr:port"), when known. */
  nodeName(endpoint: string): string | null;
  /** The VXLAN port (destination port of the datagrams written around dropped VXLAN payloads). */
  vxlanPort: number;
}

export function reasonName(dir: number, reason: number): string {
  const list: readonly string[] = dir === DIR_RX ? RX_DROP_REASONS : TX_DROP_REASONS;
  return list[reason] ?? `reason_${reason}`;
}

/** "name (endpoint)" style fields of an entry's peer: [peer, endpoint] or null. */
export function peerOf(e: FrameEntry, ctx: Pick<RenderContext, 'nodeName'>): { peer: string; endpoint: string } | null {
  if (e.addr === null) return null;
  const ep = endpointToString(recordToEndpoint(e.addr, 0));
  return { peer: ctx.nodeName(ep) ?? ep, endpoint: ep };
}

/** The comment of a dropped frame. */
export function dropComment(e: FrameEntry, network: string | null, ctx: Pick<RenderContext, 'nodeName'>): string {
  const p = peerOf(e, ctx);
  let s = `vxmesh drop: reason=${reasonName(e.dir, e.reason)} dir=${e.dir === DIR_RX ? 'rx' : 'tx'} network=${network ?? '-'}`;
  if (p !== null) s += p.peer === p.endpoint ? ` peer=${p.peer}` : ` peer=${p.peer} endpoint=${p.endpoint}`;
  if (e.data.length < e.origLen) s += ` len=${e.origLen}`;
  return s;
}

/**
 * Ethernet + IP + UDP headers around a VXLAN payload: rx from the record's address to ours (0),
 * tx from ours to the record's. Returns [frame, original length of the frame].
 */
export function datagramFrame(e: FrameEntry, vxlanPort: number): [Buffer, number] {
  const v6 = e.addr !== null && !isV4Mapped(e.addr, 0);
  const ipLen = v6 ? 40 : 20;
  const hdr = 14 + ipLen + 8;
  const b = Buffer.alloc(hdr + e.data.length);
  b.writeUInt16BE(v6 ? 0x86dd : 0x0800, 12);
  const udpLen = 8 + e.origLen;
  const peerPort = e.addr === null ? 0 : (e.addr[16] << 8) | e.addr[17];
  const rx = e.dir === DIR_RX;
  if (v6) {
    b[14] = 0x60;
    b.writeUInt16BE(Math.min(0xffff, udpLen), 18);
    b[20] = 17;
    b[21] = 64;
    e.addr!.copy(b, rx ? 22 : 38, 0, 16);
  } else {
    b[14] = 0x45;
    b.writeUInt16BE(Math.min(0xffff, 20 + udpLen), 16);
    b[22] = 64;
    b[23] = 17;
    if (e.addr !== null) e.addr.copy(b, rx ? 26 : 30, 12, 16);
    b.writeUInt16BE(csumFold(csumAdd(0, b, 14, 20)), 24);
  }
  const u = 14 + ipLen;
  b.writeUInt16BE(rx ? peerPort : vxlanPort, u);
  b.writeUInt16BE(rx ? vxlanPort : peerPort, u + 2);
  b.writeUInt16BE(Math.min(0xffff, udpLen), u + 4);
  e.data.copy(b, hdr);
  return [b, hdr + e.origLen];
}

/** One interface per drop ring: its IDB. */
export function dropInterface(network: string | null, snapLen: number): Buffer {
  return interfaceDescription({
    snapLen: snapLen + 62, // + the Ethernet/IPv6/UDP headers written around dropped datagrams
    name: network === null ? 'vxmesh-drops' : `vxmesh-drops:${network}`,
    description: network === null ? 'vxmesh: datagrams dropped before their network was known' : `vxmesh: frames dropped on network ${network}`,
  });
}

/** The EPB of a dropped frame on interface `ifId`. */
export function dropPacket(ifId: number, e: FrameEntry, network: string | null, ctx: RenderContext): Buffer {
  const [data, orig] = e.kind === KIND_DATAGRAM ? datagramFrame(e, ctx.vxlanPort) : [e.data, e.origLen];
  return enhancedPacket(ifId, (e.time + ctx.wallOffsetMs) * 1000, data, orig,
    { comment: dropComment(e, network, ctx), direction: e.dir === DIR_RX ? EPB_INBOUND : EPB_OUTBOUND });
}

/** The EPB of a forwarded frame (live capture); `missed` frames lost just before it. */
export function livePacket(ifId: number, e: FrameEntry, missed: number, ctx: RenderContext): Buffer {
  const p = peerOf(e, ctx);
  const comment = e.dir === DIR_RX ? 'vxmesh: delivered to the TAP' : p === null ? 'vxmesh: flooded'
    : p.peer === p.endpoint ? `vxmesh: sent to peer=${p.peer}` : `vxmesh: sent to peer=${p.peer} endpoint=${p.endpoint}`;
  return enhancedPacket(ifId, (e.time + ctx.wallOffsetMs) * 1000, e.data, e.origLen,
    { comment, direction: e.dir === DIR_RX ? EPB_INBOUND : EPB_OUTBOUND, dropCount: missed });
}

const MAC = (b: Buffer, o: number): string => [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
const PROTO: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' };

/** A short description of an inner Ethernet frame's flow (trace logs): MACs, addresses, protocol, ports. */
export function describeFrame(d: Buffer): string {
  if (d.length < 14) return `${d.length}-byte runt`;
  let s = `${MAC(d, 6)} > ${MAC(d, 0)}`;
  let et = d.readUInt16BE(12);
  let o = 14;
  if ((et === 0x8100 || et === 0x88a8) && d.length >= 18) {
    s += ` vlan ${d.readUInt16BE(14) & 0xfff}`;
    et = d.readUInt16BE(16);
    o = 18;
  }
  let proto = -1;
  let l4 = -1;
  if (et === 0x0800 && d.length >= o + 20) {
    s += ` ${[...d.subarray(o + 12, o + 16)].join('.')} > ${[...d.subarray(o + 16, o + 20)].join('.')}`;
    proto = d[o + 9];
    l4 = o + (d[o] & 15) * 4;
  } else if (et === 0x86dd && d.length >= o + 40) {
    const a = (p: number) => recordToEndpoint(Buffer.concat([d.subarray(p, p + 16), Buffer.alloc(2)]), 0).address;
    s += ` ${a(o + 8)} > ${a(o + 24)}`;
    proto = d[o + 6];
    l4 = o + 40;
  } else if (et === 0x0806) {
    return `${s} arp`;
  } else {
    return `${s} ethertype 0x${et.toString(16).padStart(4, '0')}`;
  }
  s += ` ${PROTO[proto] ?? `proto ${proto}`}`;
  if ((proto === 6 || proto === 17 || proto === 132) && d.length >= l4 + 4) s += ` ${d.readUInt16BE(l4)} > ${d.readUInt16BE(l4 + 2)}`;
  return s;
}
