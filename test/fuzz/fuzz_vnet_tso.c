/*
 * libFuzzer target: the virtio-net header of a frame read from a TAP (tap.c vx_vnet_rx: GSO type,
 * MSS, partial-checksum offsets) and the TSO segmentation of accepted super-frames (gso.c
 * vx_tso_segment, as udpSendGso and aeadSealTso use it).
 *
 * Input: byte 0 selects raw (odd: the rest is a 10-byte virtio header then the frame, as the
 * kernel hands it over) or structured (even: a TCP super-frame built from shape/length/MSS bytes,
 * then up to 16 header-byte mutations). Oracle for every segmentation that succeeds: each segment
 * is a TCP frame of the same family with valid checksums, at most MSS payload, the prefix copied,
 * sequence numbers contiguous, and the payloads concatenated equal the super-frame's payload.
 */
#include "frames.h"
#include "tap.h"
#include "udp.h"

#define OUT_CAP (512 * 1024)
#define MAX_SEGS 256

static uint8_t *out_buf;

static void check_segments(const uint8_t *f, size_t len, uint8_t gso_type, uint16_t mss) {
  static const uint8_t prefix[8] = {0x08, 0, 0, 0, 0, 0, 42, 0};
  uint32_t seg_lens[MAX_SEGS], stride = 0;
  vx_l4 p;
  int n = vx_tso_segment(f, len, gso_type, mss, prefix, sizeof prefix, out_buf, OUT_CAP, seg_lens, MAX_SEGS, &stride);
  if (n <= 0) return;
  FUZZ_ASSERT(vx_parse_tcp(f, len, &p) == 0);
  uint32_t seq = get32be(f + p.l4 + 4), got = 0;
  for (int i = 0; i < n; i++) {
    const uint8_t *s = out_buf + (size_t)i * stride;
    FUZZ_ASSERT(memcmp(s, prefix, sizeof prefix) == 0);
    FUZZ_ASSERT(seg_lens[i] >= sizeof prefix && seg_lens[i] <= stride);
    vx_l4 q;
    FUZZ_ASSERT(vx_parse_tcp(s + sizeof prefix, seg_lens[i] - sizeof prefix, &q) == 0);
    FUZZ_ASSERT(q.v6 == p.v6 && q.hlen == p.hlen && q.plen <= mss);
    FUZZ_ASSERT(q.hlen + q.plen == seg_lens[i] - sizeof prefix);
    FUZZ_ASSERT(tcp_csums_ok(s + sizeof prefix, &q));
    FUZZ_ASSERT(get32be(s + sizeof prefix + q.l4 + 4) == seq + got);
    FUZZ_ASSERT(memcmp(s + sizeof prefix + q.hlen, f + p.hlen + got, q.plen) == 0);
    if (i + 1 < n) FUZZ_ASSERT(seg_lens[i] == stride);
    got += q.plen;
  }
  FUZZ_ASSERT(got == p.plen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (out_buf == NULL) out_buf = malloc(OUT_CAP);
  fz in = {data, size};
  uint8_t mode = fz_u8(&in);
  uint64_t stats[VX_STAT_COUNT] = {0};
  uint16_t gso[2] = {0xdead, 0xbeef};
  if (mode & 1) {
    if (in.n < sizeof(vx_vnet_hdr)) return 0;
    vx_vnet_hdr h;
    memcpy(&h, in.p, sizeof h);
    size_t len = in.n - sizeof h;
    uint8_t *frame = dup_exact(in.p + sizeof h, len);
    size_t cap = (mode & 2) ? len : len + 1; /* len == cap: the slot was filled (possibly cut) */
    if (vx_vnet_rx(&h, frame, len, cap, gso, stats)) {
      if (gso[0] != 0) {
        FUZZ_ASSERT(gso[1] > 0 && len < cap);
        check_segments(frame, len, (uint8_t)gso[0], gso[1]);
      } else {
        FUZZ_ASSERT(gso[1] == 0);
      }
    } else {
      FUZZ_ASSERT(stats[VX_STAT_BAD_GSO] + stats[VX_STAT_RX_TRUNCATED] >= 1);
    }
    free(frame);
    return 0;
  }
  shape s = fz_shape(&in);
  s.udp = 0;
  uint32_t plen = fz_u16(&in) % 66000;
  uint16_t mss = fz_u16(&in);
  uint8_t flags = fz_u8(&in);
  uint8_t *frame = calloc(1, 200 + plen);
  layout L = build_headers(&s, frame, plen, 0x7ffffff0u, 0xfff0, (uint8_t)(0x10 | (flags & 0xe9)));
  size_t len = L.hlen + plen;
  for (uint32_t k = 0; k < plen; k++) frame[L.hlen + k] = (uint8_t)(k * 7 + 3);
  if (len > 65535 + L.l3) len = L.hlen; /* IP length field limit: shrink to headers */
  fix_checksums(frame, len);
  for (int m = 0; m < 16 && in.n >= 2; m++) {
    uint8_t off = fz_u8(&in), val = fz_u8(&in);
    if (off < L.hlen) frame[off] = val;
  }
  vx_vnet_hdr h = {0, (uint8_t)((flags & 0x10 ? VX_GSO_TCPV6 : VX_GSO_TCPV4) | (flags & 0x80 ? VX_GSO_ECN : 0)), (uint16_t)L.hlen,
                   mss, (uint16_t)L.l4, 16};
  if (flags & 0x20) h.flags = VX_VNET_F_NEEDS_CSUM;
  uint8_t *exact = dup_exact(frame, len);
  if (vx_vnet_rx(&h, exact, len, len + 1, gso, stats) && gso[0] != 0) check_segments(exact, len, (uint8_t)gso[0], gso[1]);
  free(exact);
  free(frame);
  return 0;
}
