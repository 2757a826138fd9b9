/*
 * libFuzzer target: the split of UDP GRO receive buffers into one datagram per caller slot (udp.c
 * vx_gro_split, used by udpRecv when UDP GRO is on). The buffers hold datagrams from the network
 * coalesced by the kernel, cut at the UDP_GRO segment size it reports (any value here).
 *
 * Input: buffer count, per buffer a length, a segment size and bytes; slot size, headroom and
 * slots per call. Oracle: calls are repeated until nothing is pending; the datagrams handed out
 * are, in order, exactly each buffer cut at its segment size (every piece but the last of a
 * buffer `seg` bytes, an empty buffer one empty datagram), each truncated to the slot and counted
 * when longer, and the bytes around every slot's datagram are untouched.
 */
#include "frames.h"
#include "udp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static vx_gro g;
  if (g.buf == NULL) g.buf = malloc((size_t)VX_GRO_BUFS * VX_GRO_BUFSZ);
  fz in = {data, size};
  g.n = 1 + fz_u8(&in) % VX_GRO_BUFS;
  g.cur = 0;
  g.off = 0;
  for (int i = 0; i < g.n; i++) {
    uint32_t len = fz_u16(&in) % (VX_GRO_BUFSZ + 1);
    g.len[i] = len;
    g.seg[i] = fz_u16(&in);
    for (int a = 0; a < VX_ADDR_LEN; a++) g.addr[i][a] = (uint8_t)(i * 17 + a);
    for (uint32_t b = 0; b < len; b++) g.buf[(size_t)i * VX_GRO_BUFSZ + b] = (uint8_t)(b * 13 + i);
  }
  uint32_t slot_size = 1 + fz_u16(&in) % 9000;
  uint32_t headroom = fz_u8(&in) % slot_size;
  uint32_t slots = 1 + fz_u8(&in) % 64;
  uint32_t cap = slot_size - headroom;
  uint8_t *slab = malloc((size_t)slot_size * slots);
  uint32_t lens[64];
  uint8_t addrs[64 * VX_ADDR_LEN];
  uint64_t stats[VX_STAT_COUNT] = {0};
  /* Expected sequence: walk the buffers. */
  int bi = 0;
  uint32_t boff = 0, truncated = 0;
  memset(slab, 0xee, (size_t)slot_size * slots); /* restored after each check: O(bytes handed out) */
  /* at most one datagram per byte (segment size 1) of every buffer, at least one per call */
  for (int call = 0; call < VX_GRO_BUFS * (VX_GRO_BUFSZ + 1) + 1 && vx_udp_gro_pending(&(vx_udp){.g = &g}); call++) {
    uint32_t done = vx_gro_split(&g, slab, slot_size, headroom, slots, 0, lens, addrs, stats);
    FUZZ_ASSERT(done >= 1 && done <= slots);
    for (uint32_t k = 0; k < done; k++) {
      FUZZ_ASSERT(bi < g.n);
      uint32_t L = g.len[bi], seg = g.seg[bi] ? g.seg[bi] : L;
      uint32_t chunk = L - boff < seg ? L - boff : seg;
      uint32_t want = chunk < cap ? chunk : cap;
      if (chunk > cap) truncated++;
      FUZZ_ASSERT(lens[k] == want);
      const uint8_t *slot = slab + (size_t)k * slot_size;
      for (uint32_t b = 0; b < headroom; b++) FUZZ_ASSERT(slot[b] == 0xee);
      FUZZ_ASSERT(memcmp(slot + headroom, g.buf + (size_t)bi * VX_GRO_BUFSZ + boff, want) == 0);
      if (headroom + want < slot_size) FUZZ_ASSERT(slot[headroom + want] == 0xee && slot[slot_size - 1] == 0xee);
      memset((uint8_t *)slot + headroom, 0xee, want);
      FUZZ_ASSERT(memcmp(addrs + (size_t)k * VX_ADDR_LEN, g.addr[bi], VX_ADDR_LEN) == 0);
      boff += chunk;
      if (boff >= L) {
        bi++;
        boff = 0;
      }
    }
  }
  FUZZ_ASSERT(bi == g.n && g.cur == g.n);
  FUZZ_ASSERT(stats[VX_STAT_RX_TRUNCATED] == truncated);
  free(slab);
  return 0;
}
