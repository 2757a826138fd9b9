/*
 * libFuzzer target: the coalescing planner of TAP writes (gso.c vx_coalesce_plan through tap.c
 * vx_tap_vnet_iov, as tapWriteVnet and groCoalesce use it): runs of TCP segments and UDP
 * datagrams of one flow merged into one GSO frame with a virtio header.
 *
 * Input: structured (byte 0 even): a flow shape, frame count, payload size and merge bound, then
 * per-frame header-byte mutations (checksums fixed afterwards unless a flag says not) — so merges
 * are reachable; raw (byte 0 odd): length-prefixed frames as they are. Oracle for every merge:
 * segmenting the merged frame again (TCP: vx_tso_segment; UDP_L4: the kernel's rules, done here)
 * gives back exactly the input frames — all bytes, except the IPv4 ID and header checksum for TCP,
 * which the kernel's segmentation renumbers — and the plan consumes every frame exactly once.
 */
#include <sys/uio.h>

#include "frames.h"
#include "tap.h"

#define MAX_FRAMES 64

static uint8_t seg_out[256 * 1024];

/* The merged frame of one plan: hdr + payloads. */
static size_t flatten(const struct iovec *iov, int niov, uint8_t *out, size_t cap) {
  size_t at = 0;
  for (int k = 1; k < niov; k++) { /* iov[0] is the virtio header */
    FUZZ_ASSERT(at + iov[k].iov_len <= cap);
    memcpy(out + at, iov[k].iov_base, iov[k].iov_len);
    at += iov[k].iov_len;
  }
  return at;
}

/* Length of the frame up to the end of its IP packet: bytes after it are link-layer padding,
   which a merge drops (the receiving stack trims them too). */
static uint32_t ip_end(const uint8_t *f, uint32_t len) {
  uint32_t l3 = 14;
  while (l3 <= 22 && (get16be(f + l3 - 2) == 0x8100 || get16be(f + l3 - 2) == 0x88a8)) l3 += 4;
  uint32_t end = get16be(f + l3 - 2) == 0x86dd ? l3 + 40 + get16be(f + l3 + 4) : l3 + get16be(f + l3 + 2);
  FUZZ_ASSERT(end <= len);
  return end;
}

static void check_tcp(const vx_merge *m, const uint8_t *merged, size_t mlen, const uint8_t *const *frames,
                      const uint32_t *lens) {
  uint32_t seg_lens[256], stride = 0;
  FUZZ_ASSERT(m->vnet.flags == VX_VNET_F_NEEDS_CSUM && m->vnet.csum_offset == 16);
  int n = vx_tso_segment(merged, mlen, m->vnet.gso_type, m->vnet.gso_size, NULL, 0, seg_out, sizeof seg_out, seg_lens,
                         256, &stride);
  FUZZ_ASSERT(n == m->count);
  vx_l4 p;
  FUZZ_ASSERT(vx_parse_tcp(merged, mlen, &p) == 0);
  for (int k = 0; k < n; k++) {
    const uint8_t *s = seg_out + (size_t)k * stride;
    FUZZ_ASSERT(seg_lens[k] == ip_end(frames[k], lens[k]));
    for (uint32_t b = 0; b < seg_lens[k]; b++) {
      if (!p.v6 && (b == p.l3 + 4 || b == p.l3 + 5 || b == p.l3 + 10 || b == p.l3 + 11)) continue;
      FUZZ_ASSERT(s[b] == frames[k][b]);
    }
  }
}

static void check_udp(const vx_merge *m, const uint8_t *merged, size_t mlen, const uint8_t *const *frames,
                      const uint32_t *lens) {
  FUZZ_ASSERT(m->vnet.flags == VX_VNET_F_NEEDS_CSUM && m->vnet.csum_offset == 6 && m->vnet.gso_size > 0);
  uint32_t hlen = m->vnet.hdr_len, seg = m->vnet.gso_size, l3 = 14;
  while (get16be(merged + l3 - 2) == 0x8100 || get16be(merged + l3 - 2) == 0x88a8) l3 += 4;
  int v6 = get16be(merged + l3 - 2) == 0x86dd;
  size_t off = hlen;
  uint8_t f[70000];
  for (int k = 0; k < m->count; k++) {
    uint32_t chunk = (uint32_t)(mlen - off < seg ? mlen - off : seg);
    uint32_t want = ip_end(frames[k], lens[k]);
    FUZZ_ASSERT(chunk > 0 && hlen + chunk == want);
    memcpy(f, merged, hlen);
    memcpy(f + hlen, merged + off, chunk);
    uint8_t *ip = f + l3;
    if (v6) {
      put16be(ip + 4, (uint16_t)(8 + chunk));
    } else {
      uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
      put16be(ip + 2, (uint16_t)(ihl + 8 + chunk));
      put16be(ip + 4, (uint16_t)(get16be(merged + l3 + 4) + k));
    }
    put16be(f + hlen - 4, (uint16_t)(8 + chunk));
    FUZZ_ASSERT(fix_checksums(f, want) == 0);
    FUZZ_ASSERT(memcmp(f, frames[k], want) == 0);
    off += chunk;
  }
  FUZZ_ASSERT(off == mlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz in = {data, size};
  uint8_t mode = fz_u8(&in);
  uint8_t *slab = NULL;
  uint32_t offs[MAX_FRAMES], lens[MAX_FRAMES];
  int n = 0;
  int max_merge = 1 + fz_u8(&in) % 64;
  int udp = (mode >> 1) & 1;
  if (mode & 1) {
    size_t total = 0;
    slab = malloc(size ? size : 1);
    while (n < MAX_FRAMES && in.n >= 2) {
      uint16_t l = fz_u16(&in);
      if (l > in.n) l = (uint16_t)in.n;
      memcpy(slab + total, in.p, l);
      in.p += l;
      in.n -= l;
      offs[n] = (uint32_t)total;
      lens[n++] = l;
      total += l;
    }
    if (n == 0) {
      free(slab);
      return 0;
    }
    uint8_t *exact = dup_exact(slab, total);
    free(slab);
    slab = exact;
  } else {
    shape s = fz_shape(&in);
    n = 1 + fz_u8(&in) % MAX_FRAMES;
    uint32_t plen = 1 + fz_u16(&in) % 9000;
    uint8_t last_cut = fz_u8(&in);
    uint8_t nofix = fz_u8(&in);
    slab = calloc((size_t)n, 200 + plen);
    uint32_t at = 0, seq = 0xfffff000u;
    for (int k = 0; k < n; k++) {
      uint32_t pl = (k == n - 1 && last_cut) ? 1 + (plen * last_cut / 256) % plen : plen;
      uint8_t *f = slab + at;
      layout L = build_headers(&s, f, pl, seq, (uint16_t)(0xfff0 + k), (uint8_t)(k == n - 1 && (nofix & 2) ? 0x18 : 0x10));
      for (uint32_t b = 0; b < pl; b++) f[L.hlen + b] = (uint8_t)(k * 31 + b);
      offs[k] = at;
      lens[k] = L.hlen + pl;
      seq += pl;
      /* Mutations: (frame, offset, value) triples. */
      at += lens[k];
    }
    for (int m = 0; m < 32 && in.n >= 3; m++) {
      uint8_t k = fz_u8(&in), off = fz_u8(&in), val = fz_u8(&in);
      if (k < n && off < lens[k]) slab[offs[k] + off] = val;
    }
    if (!(nofix & 1))
      for (int k = 0; k < n; k++) fix_checksums(slab + offs[k], lens[k]);
    uint8_t *exact = dup_exact(slab, at);
    free(slab);
    slab = exact;
  }
  vx_merge m;
  uint32_t plens[64];
  struct iovec iov[2 + 64];
  static uint8_t merged[70000];
  int j = 0;
  while (j < n) {
    int niov = vx_tap_vnet_iov(slab, offs + j, lens + j, (uint32_t)(n - j), max_merge, udp, &m, plens, iov);
    FUZZ_ASSERT(m.count >= 1 && m.count <= n - j && m.count <= max_merge);
    FUZZ_ASSERT(niov == (m.count == 1 ? 2 : 2 + m.count));
    const uint8_t *frames[64];
    for (int k = 0; k < m.count; k++) frames[k] = slab + offs[j + k];
    size_t mlen = flatten(iov, niov, merged, sizeof merged);
    if (m.count == 1) {
      FUZZ_ASSERT(mlen == lens[j] && memcmp(merged, frames[0], mlen) == 0);
    } else {
      FUZZ_ASSERT(mlen == m.total);
      FUZZ_ASSERT(mlen <= 22 + 40 + 65535); /* l2 + (IPv6 header +) IP length limit */
      if (m.vnet.gso_type == VX_GSO_UDP_L4) {
        FUZZ_ASSERT(udp);
        check_udp(&m, merged, mlen, frames, lens + j);
      } else {
        check_tcp(&m, merged, mlen, frames, lens + j);
      }
    }
    j += m.count;
  }
  FUZZ_ASSERT(j == n);
  free(slab);
  return 0;
}
