/*
 * libFuzzer target: AEAD open/seal of data messages (aead.c, over OpenSSL EVP) — the parser of
 * sealed datagrams from the network — and aeadSealTso (TSO segmentation + seal).
 *
 * Input: byte 0 picks the algorithm (bit 0: AES-256-GCM / ChaCha20-Poly1305) and the mode:
 *  - open: the rest is a batch of (offset, length, slot) descriptors over a slab built from the
 *    input (any offsets/lengths: bounds are aead.c's to check), opened in place;
 *  - round trip: the rest is a plaintext; sealed, it must open to the same bytes; one byte flipped
 *    (position from the input) must no longer open, and must leave status 0;
 *  - tso: a TCP super-frame (frames.h builder) sealed as segments; each must open to exactly the
 *    segment vx_tso_segment cuts, with counters base + i.
 */
#include "aead.h"
#include "frames.h"

static vxm_aead_table *tables[2];

static void init(void) {
  static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  for (int a = 0; a < 2; a++) {
    tables[a] = vxm_aead_table_new(a, 4);
    FUZZ_ASSERT(tables[a] != NULL);
    FUZZ_ASSERT(vxm_aead_set_key(tables[a], 0, key) == 0);
    FUZZ_ASSERT(vxm_aead_set_key(tables[a], 2, key) == 0);
    /* slots 1 and 3: no key */
  }
}

static void mode_open(vxm_aead_table *t, fz *in) {
  uint32_t count = 1 + fz_u8(in) % 8;
  uint32_t offs[8], lens[8], slots[8];
  uint8_t status[8];
  for (uint32_t i = 0; i < count; i++) {
    offs[i] = fz_u16(in);
    lens[i] = fz_u16(in);
    slots[i] = fz_u8(in) % 6; /* 4, 5: out of the table */
  }
  uint8_t *slab = dup_exact(in->p, in->n);
  uint32_t ok = vxm_aead_batch(t, 0, slab, in->n, offs, lens, slots, count, status);
  uint32_t ones = 0;
  for (uint32_t i = 0; i < count; i++) {
    FUZZ_ASSERT(status[i] <= 1);
    ones += status[i];
    if (status[i]) FUZZ_ASSERT(slots[i] == 0 || slots[i] == 2);
  }
  FUZZ_ASSERT(ok == ones);
  free(slab);
}

static void mode_roundtrip(vxm_aead_table *t, fz *in) {
  uint16_t flip = fz_u16(in);
  uint8_t xr = fz_u8(in) | 1;
  size_t n = in->n;
  size_t len = VXM_AEAD_HDR + n + VXM_AEAD_TAG;
  uint8_t *pkt = malloc(len);
  memset(pkt, 0x04, VXM_AEAD_HDR);
  for (int b = 0; b < 8; b++) pkt[8 + b] = (uint8_t)(n >> b);
  memcpy(pkt + VXM_AEAD_HDR, in->p, n);
  uint32_t off = 0, plen = (uint32_t)n, slot = 0, wlen = (uint32_t)len;
  uint8_t st = 9;
  FUZZ_ASSERT(vxm_aead_batch(t, 1, pkt, len, &off, &plen, &slot, 1, &st) == 1 && st == 1);
  uint8_t *copy = dup_exact(pkt, len);
  FUZZ_ASSERT(vxm_aead_batch(t, 0, copy, len, &off, &wlen, &slot, 1, &st) == 1 && st == 1);
  FUZZ_ASSERT(memcmp(copy + VXM_AEAD_HDR, in->p, n) == 0);
  memcpy(copy, pkt, len);
  copy[flip % len] ^= xr;
  FUZZ_ASSERT(vxm_aead_batch(t, 0, copy, len, &off, &wlen, &slot, 1, &st) == 0 && st == 0);
  /* A key-less slot never opens. */
  slot = 1;
  memcpy(copy, pkt, len);
  FUZZ_ASSERT(vxm_aead_batch(t, 0, copy, len, &off, &wlen, &slot, 1, &st) == 0 && st == 0);
  free(copy);
  free(pkt);
}

static void mode_tso(vxm_aead_table *t, fz *in) {
  shape s = fz_shape(in);
  s.udp = 0;
  uint32_t plen = fz_u16(in) % 20000;
  uint16_t mss = (uint16_t)(1 + fz_u16(in) % 9000);
  uint8_t *frame = calloc(1, 200 + plen);
  layout L = build_headers(&s, frame, plen, 1000, 7, 0x18);
  for (uint32_t b = 0; b < plen; b++) frame[L.hlen + b] = (uint8_t)(b ^ 0x5a);
  size_t flen = L.hlen + plen;
  fix_checksums(frame, flen);
  for (int m = 0; m < 8 && in->n >= 2; m++) {
    uint8_t off = fz_u8(in), val = fz_u8(in);
    if (off < L.hlen) frame[off] = val;
  }
  uint8_t prefix[VXM_TSO_PREFIX] = {4, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 42, 0};
  size_t out_cap = (size_t)fz_u16(in) * 16;
  uint32_t nl = 2 + fz_u8(in);
  uint8_t *out = malloc(out_cap ? out_cap : 1);
  uint32_t *out_lens = calloc(nl, sizeof *out_lens);
  uint8_t *exact = dup_exact(frame, flen);
  int n = vxm_aead_seal_tso(t, 0, exact, flen, s.v6 ? VX_GSO_TCPV6 : VX_GSO_TCPV4, mss, prefix, out, out_cap, out_lens, nl);
  if (n > 0) {
    uint32_t sstride = out_lens[nl - 1];
    static uint8_t plain[512 * 1024];
    uint32_t seg_lens[256], stride = 0;
    int m = vx_tso_segment(exact, flen, s.v6 ? VX_GSO_TCPV6 : VX_GSO_TCPV4, mss, prefix, VXM_TSO_PREFIX, plain,
                           sizeof plain, seg_lens, 256, &stride);
    FUZZ_ASSERT(m == n && sstride == stride + VXM_AEAD_TAG);
    for (int i = 0; i < n; i++) {
      uint8_t *p = out + (size_t)i * sstride;
      uint32_t off = 0, len = out_lens[i], slot = 0;
      uint8_t st = 0;
      FUZZ_ASSERT(len == seg_lens[i] + VXM_AEAD_TAG);
      uint64_t c = 0;
      for (int b = 7; b >= 0; b--) c = c << 8 | p[8 + b];
      FUZZ_ASSERT(c == 0x10 + (uint64_t)i);
      uint8_t *copy = dup_exact(p, len);
      FUZZ_ASSERT(vxm_aead_batch(t, 0, copy, len, &off, &len, &slot, 1, &st) == 1);
      FUZZ_ASSERT(memcmp(copy + VXM_AEAD_HDR, plain + (size_t)i * stride + VXM_AEAD_HDR, seg_lens[i] - VXM_AEAD_HDR) == 0);
      free(copy);
    }
  } else {
    FUZZ_ASSERT(n == -1 || n == -2);
  }
  free(exact);
  free(out);
  free(out_lens);
  free(frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (tables[0] == NULL) init();
  fz in = {data, size};
  uint8_t b = fz_u8(&in);
  vxm_aead_table *t = tables[b & 1];
  switch ((b >> 1) % 3) {
    case 0: mode_open(t, &in); break;
    case 1: mode_roundtrip(t, &in); break;
    default: mode_tso(t, &in); break;
  }
  return 0;
}
