/*
 * libFuzzer target: the split of UDP GRO receive buffers WITH runs (udp.c vx_gro_split_runs, which
 * udpRecv uses with run arrays, through gso.c vx_gro_run and vx_csum_copy): a buffer's run of
 * plaintext VXLAN datagrams of one VNI carrying consecutive TCP segments of one flow is handed out
 * as one descriptor holding the merged frame; everything else one datagram per slot as vx_gro_split.
 *
 * Input: buffer count; per buffer, a mode (bit 1: same sender as the previous buffer, and the same
 * flow going on when both are structured), structured (bit 0 clear: VXLAN + TCP segments of one flow
 * built by frames.h, contiguous sequence numbers, then (datagram, offset, value) mutations anywhere
 * — VXLAN header, inner headers, payload — checksums fixed afterwards unless a flag says not) or
 * raw bytes; the UDP_GRO segment size (structured: the datagram size, or a fuzzed one); slot size,
 * headroom, slots per call, max_frame.
 *
 * Oracle: calls are repeated until nothing is pending; the descriptors account, in order, for
 * exactly the datagrams of every buffer cut at its segment size (segs[i] each, wire[i] = their
 * bytes as handed out); a single one is the datagram (truncated to the slot and counted when
 * longer) at its slot; a run (segs >= 2: the next datagrams, on into later buffers of the same
 * sender) lies in the run area after the runs handed out before it in the same call (the split
 * stops, the rest pending, only with the slots or the run area full), its
 * datagrams all have its 8-byte VXLAN header (I flag only),
 * each inner segment valid checksums and at most max_frame bytes, none longer than a slot, and
 * segmenting the merged frame again (vx_tso_segment) gives back exactly the inner segments (but
 * the IPv4 ID and header checksum, which segmentation renumbers). Slot bytes outside what was
 * handed out stay untouched.
 */
#include "frames.h"
#include "udp.h"

#define SLOTS_MAX 64
#define AREA ((size_t)VX_GRO_BUFS * VX_GRO_BUFSZ)

static uint8_t seg_out[512 * 1024];

/* Length of the frame up to the end of its IP packet (padding after it is dropped by a merge). */
static uint32_t ip_end(const uint8_t *f, uint32_t len) {
  uint32_t l3 = 14;
  while (l3 <= 22 && (get16be(f + l3 - 2) == 0x8100 || get16be(f + l3 - 2) == 0x88a8)) l3 += 4;
  uint32_t end = get16be(f + l3 - 2) == 0x86dd ? l3 + 40 + get16be(f + l3 + 4) : l3 + get16be(f + l3 + 2);
  FUZZ_ASSERT(end <= len);
  return end;
}

/* The flow of the previous structured buffer (a continuation goes on with it). */
typedef struct flow {
  shape s;
  uint32_t plen, seq;
} flow;

/*
 * One structured buffer: n datagrams of VXLAN (vni) + a TCP segment of plen bytes; returns its
 * length, *seg its UDP_GRO size. `cont`: the same flow as the previous buffer, sequence numbers going on.
 */
static uint32_t build_buffer(fz *in, uint8_t *b, uint16_t *seg, flow *fl, int cont) {
  if (!cont) {
    fl->s = fz_shape(in);
    fl->s.udp = 0;
    fl->s.tcpopt = fl->s.tcpopt % 16;
    fl->plen = 1 + fz_u16(in) % 1600;
    fl->seq = 0xffffff00u;
  }
  shape s = fl->s;
  uint32_t plen = fl->plen;
  uint8_t flags = fz_u8(in);
  uint32_t hl = 14 + 4 * (uint32_t)s.tags + (s.v6 ? 40 : 20 + (uint32_t)s.ipopt) + 20 + (uint32_t)s.tcpopt;
  uint32_t dg = 8 + hl + plen;
  uint32_t n = 1 + fz_u8(in) % 64;
  if ((uint64_t)n * dg > VX_GRO_BUFSZ) n = VX_GRO_BUFSZ / dg;
  if (n == 0) return 0;
  uint32_t last = (flags & 4) ? 1 + fz_u16(in) % plen : plen; /* a shorter last segment */
  uint32_t at = 0, seq = fl->seq;
  for (uint32_t k = 0; k < n; k++) {
    uint32_t pl = k + 1 == n ? last : plen;
    uint8_t *v = b + at;
    memcpy(v, "\x08\x00\x00\x00\x00\x00\x2a\x00", 8);
    layout L = build_headers(&s, v + 8, pl, seq, (uint16_t)(0x1000 + k), (uint8_t)(k + 1 == n && (flags & 8) ? 0x18 : 0x10));
    for (uint32_t x = 0; x < pl; x++) v[8 + L.hlen + x] = (uint8_t)(k * 29 + x);
    seq += pl;
    at += 8 + L.hlen + pl;
  }
  fl->seq = seq;
  /* Mutations: (datagram, offset, value) triples. */
  int muts = fz_u8(in) % 16;
  for (int m = 0; m < muts && in->n >= 3; m++) {
    uint8_t k = fz_u8(in), off = fz_u8(in), val = fz_u8(in);
    if (k < n) {
      uint32_t o = (uint32_t)k * dg + off;
      if (o < at) b[o] = val;
    }
  }
  if (!(flags & 1))
    for (uint32_t k = 0; k < n; k++) {
      uint32_t o = k * dg;
      uint32_t len = k + 1 == n ? at - o : dg;
      fix_checksums(b + o + 8, len - 8);
    }
  *seg = (flags & 2) ? fz_u16(in) : (uint16_t)dg;
  return at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static vx_gro g;
  static uint8_t orig[VX_GRO_BUFS][VX_GRO_BUFSZ];
  if (g.buf == NULL) g.buf = malloc(AREA);
  fz in = {data, size};
  g.n = 1 + fz_u8(&in) % VX_GRO_BUFS;
  g.cur = 0;
  g.off = 0;
  flow fl;
  memset(&fl, 0, sizeof fl);
  for (int i = 0; i < g.n; i++) {
    uint8_t *b = g.buf + (size_t)i * VX_GRO_BUFSZ;
    uint8_t mode = fz_u8(&in);
    uint32_t len;
    uint16_t seg;
    /* mode bit 1: the previous buffer's sender (and flow, when both are structured); bit 0: raw bytes */
    int same = i > 0 && (mode & 2);
    if ((mode & 1) == 0) {
      len = build_buffer(&in, b, &seg, &fl, same && fl.plen != 0);
    } else {
      len = fz_u16(&in) % (VX_GRO_BUFSZ + 1);
      seg = fz_u16(&in);
      for (uint32_t x = 0; x < len; x++) b[x] = fz_u8(&in);
    }
    g.len[i] = len;
    g.seg[i] = seg && seg < len ? seg : 0;
    for (int a = 0; a < VX_ADDR_LEN; a++) g.addr[i][a] = same ? g.addr[i - 1][a] : (uint8_t)(i * 17 + a);
    if (mode & 1) fl.plen = 0; /* no flow to go on with */
    memcpy(orig[i], b, len);
  }
  uint32_t slot_size = 1 + fz_u16(&in) % 9000;
  uint32_t headroom = fz_u8(&in) % slot_size;
  uint32_t slots = 1 + fz_u8(&in) % SLOTS_MAX;
  uint32_t max_frame = fz_u8(&in) & 1 ? 0 : fz_u16(&in);
  uint32_t cap = slot_size - headroom;
  size_t slab_len = (size_t)slot_size * slots + AREA;
  uint8_t *slab = malloc(slab_len);
  memset(slab, 0xee, slab_len);
  uint32_t lens[SLOTS_MAX], offs[SLOTS_MAX], wire[SLOTS_MAX];
  uint16_t gso[2 * SLOTS_MAX], segs[SLOTS_MAX];
  uint8_t addrs[SLOTS_MAX * VX_ADDR_LEN];
  uint64_t stats[VX_STAT_COUNT] = {0};
  vx_rx_runs r = {(uint32_t)((size_t)slot_size * slots), 0, max_frame, offs, gso, segs, wire};
  int bi = 0;
  uint32_t boff = 0, truncated = 0, runs = 0, across = 0;
  for (int call = 0; call < VX_GRO_BUFS * (VX_GRO_BUFSZ + 1) + 1 && vx_udp_gro_pending(&(vx_udp){.g = &g}); call++) {
    r.used = 0; /* as vx_udp_recv_batch: a new receive call */
    uint32_t expect_used = 0;
    uint32_t done = vx_gro_split_runs(&g, slab, slot_size, headroom, slots, 0, lens, addrs, stats, &r);
    FUZZ_ASSERT(done >= 1 && done <= slots);
    FUZZ_ASSERT(done == slots || g.cur == g.n || r.used > AREA - VX_GRO_RUN_ROOM); /* stops only when full */
    for (uint32_t k = 0; k < done; k++) {
      FUZZ_ASSERT(bi < g.n);
      const uint8_t *ob = orig[bi];
      uint32_t L = g.len[bi];
      const uint32_t seg = g.seg[bi] ? g.seg[bi] : L;
      FUZZ_ASSERT(memcmp(addrs + (size_t)k * VX_ADDR_LEN, g.addr[bi], VX_ADDR_LEN) == 0);
      if (segs[k] == 1) {
        uint32_t chunk = L - boff < seg ? L - boff : seg;
        uint32_t want = chunk < cap ? chunk : cap;
        if (chunk > cap) truncated++;
        FUZZ_ASSERT(gso[2 * k] == 0 && lens[k] == want && wire[k] == want);
        FUZZ_ASSERT(offs[k] == k * slot_size + headroom);
        uint8_t *slot = slab + (size_t)k * slot_size;
        for (uint32_t b = 0; b < headroom; b++) FUZZ_ASSERT(slot[b] == 0xee);
        FUZZ_ASSERT(memcmp(slot + headroom, ob + boff, want) == 0);
        if (headroom + want < slot_size) FUZZ_ASSERT(slot[headroom + want] == 0xee && slot[slot_size - 1] == 0xee);
        memset(slot + headroom, 0xee, want);
        boff += chunk;
      } else {
        runs++;
        uint32_t n = segs[k];
        FUZZ_ASSERT(n >= 2 && n <= VX_GRO_RUN_MAX);
        FUZZ_ASSERT(gso[2 * k] == VX_GSO_TCPV4 || gso[2 * k] == VX_GSO_TCPV6);
        /* runs of one call one after the other in the run area, never over another */
        FUZZ_ASSERT(offs[k] == r.super_off + expect_used && expect_used + lens[k] <= AREA);
        expect_used += (lens[k] + 7) & ~7u;
        /* The datagrams it replaces: the next n of the buffers, on into later buffers of the same sender. */
        uint32_t span = 0;
        const uint8_t *frames[VX_GRO_RUN_MAX];
        uint32_t flens[VX_GRO_RUN_MAX];
        const uint8_t *v = ob + boff;
        const int first_bi = bi;
        for (uint32_t d = 0; d < n; d++) {
          FUZZ_ASSERT(bi < g.n && memcmp(g.addr[bi], g.addr[first_bi], VX_ADDR_LEN) == 0);
          const uint32_t Lb = g.len[bi], sb = g.seg[bi] ? g.seg[bi] : Lb;
          FUZZ_ASSERT(boff < Lb);
          uint32_t chunk = Lb - boff < sb ? Lb - boff : sb;
          FUZZ_ASSERT(chunk <= cap && chunk >= 8);
          const uint8_t *dg = orig[bi] + boff;
          FUZZ_ASSERT(memcmp(dg, v, 8) == 0);
          frames[d] = dg + 8;
          flens[d] = chunk - 8;
          vx_l4 p;
          FUZZ_ASSERT(vx_parse_tcp(frames[d], flens[d], &p) == 0 && tcp_csums_ok(frames[d], &p));
          if (max_frame != 0) FUZZ_ASSERT(p.hlen + p.plen <= max_frame);
          span += chunk;
          boff += chunk;
          if (boff >= Lb && d + 1 < n) {
            bi++;
            boff = 0;
          }
        }
        L = g.len[bi];
        if (bi != first_bi) across++;
        FUZZ_ASSERT(wire[k] == span && lens[k] <= span);
        FUZZ_ASSERT(v[0] == 0x08 && (v[1] | v[2] | v[3] | v[7]) == 0);
        const uint8_t *merged = slab + offs[k];
        FUZZ_ASSERT(memcmp(merged, v, 8) == 0);
        uint32_t seg_lens[VX_GRO_RUN_MAX + 1], stride = 0;
        int got = vx_tso_segment(merged + 8, lens[k] - 8, (uint8_t)gso[2 * k], gso[2 * k + 1], NULL, 0, seg_out,
                                 sizeof seg_out, seg_lens, VX_GRO_RUN_MAX + 1, &stride);
        FUZZ_ASSERT(got == (int)n);
        vx_l4 pm;
        FUZZ_ASSERT(vx_parse_tcp(merged + 8, lens[k] - 8, &pm) == 0);
        for (uint32_t d = 0; d < n; d++) {
          const uint8_t *s = seg_out + (size_t)d * stride;
          FUZZ_ASSERT(seg_lens[d] == ip_end(frames[d], flens[d]));
          for (uint32_t b = 0; b < seg_lens[d]; b++) {
            if (!pm.v6 && (b == pm.l3 + 4 || b == pm.l3 + 5 || b == pm.l3 + 10 || b == pm.l3 + 11)) continue;
            FUZZ_ASSERT(s[b] == frames[d][b]);
          }
        }
        memset(slab + offs[k], 0xee, lens[k]);
      }
      if (boff >= L) {
        bi++;
        boff = 0;
      }
    }
  }
  FUZZ_ASSERT(bi == g.n && g.cur == g.n);
  FUZZ_ASSERT(stats[VX_STAT_RX_TRUNCATED] == truncated && stats[VX_STAT_GRO_RUNS] == runs);
#ifdef FUZZ_TRACE
  fprintf(stderr, "runs %u across %u\n", runs, across);
#endif
  /* The slots are as they were (the run area is scratch: a run given up halfway leaves bytes there). */
  for (size_t b = 0; b < (size_t)slot_size * slots; b++) FUZZ_ASSERT(slab[b] == 0xee);
  free(slab);
  return 0;
}
