/** Small builders of Ethernet/IPv4 frames for policy tests (checksums left zero: not checked there). */
export function ip4(s: string): number[] {
  return s.split('.').map(Number);
}
export function macBytes(n: number): number[] {
  return [Math.floor(n / 2 ** 40) & 255, Math.floor(n / 2 ** 32) & 255, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}
export function eth(type: number, payload: number[], dst = 0x020000000002, src = 0x020000000001): Buffer {
  return Buffer.from([...macBytes(dst), ...macBytes(src), type >> 8, type & 255, ...payload]);
}
export function ipv4(src: string, dst: string, proto: number, l4: number[]): number[] {
  const len = 20 + l4.length;
  return [0x45, 0, len >> 8, len & 255, 0, 0, 0x40, 0, 64, proto, 0, 0, ...ip4(src), ...ip4(dst), ...l4];
}
export const tcp = (sp: number, dp: number): number[] => [sp >> 8, sp & 255, dp >> 8, dp & 255, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0];
export const udp = (sp: number, dp: number): number[] => [sp >> 8, sp & 255, dp >> 8, dp & 255, 0, 8, 0, 0];
export const icmpEcho = (type: number, id: number): number[] => [type, 0, 0, 0, id >> 8, id & 255, 0, 1];
export function frame4(src: string, dst: string, proto: number, l4: number[], dstMac?: number, srcMac?: number): Buffer {
  return eth(0x0800, ipv4(src, dst, proto, l4), dstMac, srcMac);
}
