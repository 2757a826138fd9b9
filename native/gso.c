/*
 * Fast-path packet work: checksums, virtio partial-checksum completion, TSO segmentation, and the
 * TCP coalescing plan. Pure functions over memory (see gso.h); the syscalls that use them are in
 * tap.c (readv/writev with a virtio_net_hdr) and udp.c (UDP_SEGMENT / sendmmsg).
 */
#define _GNU_SOURCE
#include "gso.h"

#include <arpa/inet.h>
#include <string.h>

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_CWR 0x80

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define VX_CSUM_AVX2 1
/* Sum of the 32-bit words of n 32-byte blocks, each widened into a 64-bit lane (exact for n < 2^32). */
__attribute__((target("avx2"))) static uint64_t sum_blocks_avx2(const uint8_t *p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, z = a0;
  for (size_t i = 0; i < n; i++) {
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * i));
    a0 = _mm256_add_epi64(a0, _mm256_unpacklo_epi32(v, z));
    a1 = _mm256_add_epi64(a1, _mm256_unpackhi_epi32(v, z));
  }
  a0 = _mm256_add_epi64(a0, a1);
  uint64_t t[4];
  _mm256_storeu_si256((__m256i *)(void *)t, a0);
  return t[0] + t[1] + t[2] + t[3];
}
/* sum_blocks_avx2 that also stores every block to dst. */
__attribute__((target("avx2"))) static uint64_t copy_sum_blocks_avx2(uint8_t *dst, const uint8_t *p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, z = a0;
  for (size_t i = 0; i < n; i++) {
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * i));
    _mm256_storeu_si256((__m256i *)(void *)(dst + 32 * i), v);
    a0 = _mm256_add_epi64(a0, _mm256_unpacklo_epi32(v, z));
    a1 = _mm256_add_epi64(a1, _mm256_unpackhi_epi32(v, z));
  }
  a0 = _mm256_add_epi64(a0, a1);
  uint64_t t[4];
  _mm256_storeu_si256((__m256i *)(void *)t, a0);
  return t[0] + t[1] + t[2] + t[3];
}
static int have_avx2 = -1; /* probed once (a benign race: every thread computes the same value) */
#endif

/*
 * Sum of native-endian words; the one's-complement sum is byte-order independent up to a final
 * swap, and 32-bit words summed into 64-bit accumulators fold to the same 16-bit sum (2^16 ≡ 1
 * mod 0xffff). Independent accumulators (and AVX2 lanes where the CPU has them) instead of one
 * add-with-carry chain: 2–3× faster on the 64 KiB super-frames the fast path sums (TSO segments
 * on send, the coalescing check on receive).
 */
/* The scalar words of p[0, len) summed onto the 64-bit accumulator `a`, folded, added to `sum`. */
static uint32_t csum_finish(const uint8_t *p, size_t len, uint64_t a, uint32_t sum) {
  uint64_t b = 0, c = 0, d = 0;
  while (len >= 16) {
    uint32_t w[4];
    memcpy(w, p, 16);
    a += w[0];
    b += w[1];
    c += w[2];
    d += w[3];
    p += 16;
    len -= 16;
  }
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    a += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t v;
    memcpy(&v, p, 2);
    b += v;
    p += 2;
    len -= 2;
  }
  if (len) {
    uint16_t v = 0;
    memcpy(&v, p, 1); /* the odd byte is the high byte of a big-endian word: memory position 0 */
    c += v;
  }
  /* Each accumulator holds < 2^62 for any buffer below 2^30 words; the pair sums cannot wrap twice. */
  uint64_t s = a + b, t = c + d;
  s += t;
  s += (s < t);
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return sum + ntohs((uint16_t)s);
}

uint32_t vx_csum_add(const uint8_t *p, size_t len, uint32_t sum) {
  uint64_t a = 0;
#ifdef VX_CSUM_AVX2
  if (len >= 256) {
    if (have_avx2 < 0) have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    if (have_avx2) {
      size_t n = len / 32;
      a = sum_blocks_avx2(p, n);
      p += n * 32;
      len -= n * 32;
    }
  }
#endif
  return csum_finish(p, len, a, sum);
}

/*
 * memcpy(dst, src, len) and vx_csum_add(src, len, sum) in one pass over the source (AVX2: each
 * 32-byte block is stored and summed from the same load); the buffers must not overlap.
 */
uint32_t vx_csum_copy(uint8_t *dst, const uint8_t *src, size_t len, uint32_t sum) {
  uint64_t a = 0;
#ifdef VX_CSUM_AVX2
  if (len >= 256) {
    if (have_avx2 < 0) have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    if (have_avx2) {
      size_t n = len / 32;
      a = copy_sum_blocks_avx2(dst, src, n);
      dst += n * 32;
      src += n * 32;
      len -= n * 32;
    }
  }
#endif
  memcpy(dst, src, len);
  return csum_finish(src, len, a, sum);
}

uint16_t vx_csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

/* Parses Ethernet (+ up to two VLAN tags) / IPv4|IPv6 / `proto` (6 TCP, 17 UDP); see vx_parse_tcp. */
static int parse_l4(const uint8_t *f, size_t len, uint8_t proto, vx_l4 *o) {
  if (len < 14) return -1;
  /* Up to two VLAN tags (802.1Q / 802.1ad) between the MAC addresses and the EtherType. */
  size_t l3 = 14;
  uint16_t et = get16(f + 12);
  for (int tags = 0; (et == 0x8100 || et == 0x88a8) && tags < 2; tags++) {
    if (len < l3 + 4) return -1;
    et = get16(f + l3 + 2);
    l3 += 4;
  }
  const uint8_t *ip = f + l3;
  uint32_t end; /* end of the IP packet within the frame */
  if (et == 0x0800) {
    if (len < l3 + 20 || (ip[0] >> 4) != 4) return -1;
    uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
    uint32_t tot = get16(ip + 2);
    if (ihl < 20 || tot < ihl + (proto == 6 ? 20 : 8) || l3 + (size_t)tot > len) return -1;
    if (ip[9] != proto || (get16(ip + 6) & 0x3fff) != 0) return -1; /* proto, not a fragment */
    o->v6 = 0;
    o->l4 = (uint32_t)l3 + ihl;
    end = (uint32_t)l3 + tot;
  } else if (et == 0x86dd) {
    if (len < l3 + 40 || (ip[0] >> 4) != 6 || ip[6] != proto) return -1; /* proto right after the header */
    uint32_t pl = get16(ip + 4);
    if (pl < (proto == 6 ? 20u : 8u) || l3 + 40 + (size_t)pl > len) return -1;
    o->v6 = 1;
    o->l4 = (uint32_t)l3 + 40;
    end = (uint32_t)l3 + 40 + pl;
  } else {
    return -1;
  }
  o->l3 = (uint32_t)l3;
  o->proto = proto;
  if (proto == 17) {
    if (get16(f + o->l4 + 4) != end - o->l4) return -1; /* UDP length = IP payload */
    o->hlen = o->l4 + 8;
  } else {
    uint32_t doff = (uint32_t)(f[o->l4 + 12] >> 4) * 4;
    if (doff < 20 || o->l4 + doff > end) return -1;
    o->hlen = o->l4 + doff;
  }
  o->plen = end - o->hlen;
  return 0;
}

int vx_parse_tcp(const uint8_t *f, size_t len, vx_l4 *o) { return parse_l4(f, len, 6, o); }

int vx_complete_csum(uint8_t *f, size_t len, uint16_t start, uint16_t off) {
  if ((size_t)start + off + 2 > len) return -1;
  /* The field already holds the pseudo-header sum: it is part of the sum, not zeroed. */
  put16(f + start + off, (uint16_t)~vx_csum_fold(vx_csum_add(f + start, len - start, 0)));
  return 0;
}

/* Pseudo-header sum (RFC 793 / RFC 768 / RFC 8200 §8.1) for p->proto of l4len bytes. */
static uint32_t pseudo_sum(const uint8_t *f, const vx_l4 *p, uint32_t l4len) {
  const uint8_t *ip = f + p->l3;
  uint32_t s = p->v6 ? vx_csum_add(ip + 8, 32, 0) : vx_csum_add(ip + 12, 8, 0);
  return s + p->proto + (l4len >> 16) + (l4len & 0xffff);
}

static uint16_t ipv4_hdr_csum(const uint8_t *ip, uint32_t ihl) {
  /* with the checksum field included the fold is 0xffff when valid; callers zero it to compute */
  return (uint16_t)~vx_csum_fold(vx_csum_add(ip, ihl, 0));
}

/* Parses and checks a TSO super-frame; the segment count (> 0), -1 not a TCP frame of the announced family, -2 too many. */
static int tso_prepare(const uint8_t *f, size_t len, uint8_t gso_type, uint16_t mss, int max_segs, vx_l4 *p) {
  if (mss == 0 || vx_parse_tcp(f, len, p) < 0) return -1;
  uint8_t t = gso_type & (uint8_t)~VX_GSO_ECN;
  if ((t == VX_GSO_TCPV4 && p->v6) || (t == VX_GSO_TCPV6 && !p->v6) || (t != VX_GSO_TCPV4 && t != VX_GSO_TCPV6))
    return -1;
  uint32_t n = p->plen == 0 ? 1 : (p->plen + mss - 1) / mss;
  if (n > (uint32_t)max_segs) return -2;
  return (int)n;
}

/*
 * Segment i of n: the super-frame's headers (p->hlen bytes of f) copied to g and rewritten, the TCP
 * checksum summed over those headers and the `chunk` payload bytes at `payload` (anywhere: after
 * the headers in the same buffer, or still inside the super-frame).
 */
/*
 * Segment i's rewritten headers at g, and its full TCP checksum over `payload` (chunk bytes). With
 * `copy_to` non-NULL the payload is copied there in the same pass that sums it (vx_csum_copy).
 */
static void tso_segment_headers(uint8_t *g, const uint8_t *f, const vx_l4 *p, uint32_t i, uint32_t n, uint16_t mss,
                                uint32_t chunk, const uint8_t *payload, uint8_t *copy_to) {
  memcpy(g, f, p->hlen);
  uint8_t *ip = g + p->l3;
  if (p->v6) {
    put16(ip + 4, (uint16_t)(p->hlen - p->l4 + chunk));
  } else {
    uint32_t ihl = p->l4 - p->l3;
    put16(ip + 2, (uint16_t)(ihl + p->hlen - p->l4 + chunk));
    put16(ip + 4, (uint16_t)(get16(f + p->l3 + 4) + i));
    ip[10] = ip[11] = 0;
    put16(ip + 10, ipv4_hdr_csum(ip, ihl));
  }
  uint8_t *th = g + p->l4;
  put32(th + 4, get32(f + p->l4 + 4) + i * mss);
  uint8_t fl = f[p->l4 + 13];
  if (i + 1 < n) fl &= (uint8_t)~(TCP_FIN | TCP_PSH);
  if (i > 0) fl &= (uint8_t)~TCP_CWR;
  th[13] = fl;
  th[16] = th[17] = 0;
  uint32_t thlen = p->hlen - p->l4; /* a multiple of 4: the payload's words continue the header's */
  uint32_t l4len = thlen + chunk;
  uint32_t h = vx_csum_add(th, thlen, pseudo_sum(g, p, l4len));
  uint32_t s = copy_to != NULL ? vx_csum_copy(copy_to, payload, chunk, h) : vx_csum_add(payload, chunk, h);
  put16(th + 16, (uint16_t)~vx_csum_fold(s));
}

int vx_tso_segment_gap(const uint8_t *f, size_t len, uint8_t gso_type, uint16_t mss, const uint8_t *prefix,
                       size_t prefix_len, uint32_t gap, uint8_t *out, size_t out_cap, uint32_t *seg_lens, int max_segs,
                       uint32_t *stride_out) {
  vx_l4 p;
  int r = tso_prepare(f, len, gso_type, mss, max_segs, &p);
  if (r < 0) return r;
  uint32_t n = (uint32_t)r;
  uint32_t stride = (uint32_t)prefix_len + p.hlen + mss + gap;
  uint32_t last = p.plen - (n - 1) * mss;
  if ((uint64_t)(n - 1) * stride + prefix_len + p.hlen + last + gap > out_cap) return -2;
  *stride_out = stride;
  for (uint32_t i = 0; i < n; i++) {
    uint8_t *o = out + (size_t)i * stride;
    uint32_t chunk = i + 1 < n ? mss : last;
    if (prefix_len > 0) memcpy(o, prefix, prefix_len); /* prefix may be NULL when empty (a 0-length typed array) */
    uint8_t *g = o + prefix_len;
    /* one pass over the payload: copied into the segment and summed for its checksum */
    tso_segment_headers(g, f, &p, i, n, mss, chunk, f + p.hlen + (size_t)i * mss, g + p.hlen);
    seg_lens[i] = (uint32_t)prefix_len + p.hlen + chunk;
  }
  return (int)n;
}

int vx_tso_segment(const uint8_t *f, size_t len, uint8_t gso_type, uint16_t mss, const uint8_t *prefix,
                   size_t prefix_len, uint8_t *out, size_t out_cap, uint32_t *seg_lens, int max_segs,
                   uint32_t *stride_out) {
  return vx_tso_segment_gap(f, len, gso_type, mss, prefix, prefix_len, 0, out, out_cap, seg_lens, max_segs, stride_out);
}

int vx_tso_headers(const uint8_t *f, size_t len, uint8_t gso_type, uint16_t mss, const uint8_t *prefix,
                   size_t prefix_len, uint8_t *hdrs, size_t hdrs_cap, uint32_t *pay_lens, int max_segs,
                   uint32_t *hlen_out) {
  vx_l4 p;
  int r = tso_prepare(f, len, gso_type, mss, max_segs, &p);
  if (r < 0) return r;
  uint32_t n = (uint32_t)r;
  uint32_t hstride = (uint32_t)prefix_len + p.hlen;
  if ((uint64_t)n * hstride > hdrs_cap) return -2;
  uint32_t last = p.plen - (n - 1) * mss;
  *hlen_out = p.hlen;
  for (uint32_t i = 0; i < n; i++) {
    uint8_t *o = hdrs + (size_t)i * hstride;
    uint32_t chunk = i + 1 < n ? mss : last;
    if (prefix_len > 0) memcpy(o, prefix, prefix_len);
    tso_segment_headers(o + prefix_len, f, &p, i, n, mss, chunk, f + p.hlen + (size_t)i * mss, NULL);
    pay_lens[i] = chunk;
  }
  return (int)n;
}

/* IPv4 header checksum and TCP/UDP checksum of a (non-GSO) frame are valid. */
static int csums_ok(const uint8_t *f, const vx_l4 *p) {
  if (!p->v6 && vx_csum_fold(vx_csum_add(f + p->l3, p->l4 - p->l3, 0)) != 0xffff) return 0;
  uint32_t l4len = p->hlen - p->l4 + p->plen;
  return vx_csum_fold(vx_csum_add(f + p->l4, l4len, pseudo_sum(f, p, l4len))) == 0xffff;
}

/* A merged frame's headers: f0's copied to m->hdr with the IP length(s) set for an L4 segment of l4len bytes. */
static void merge_ip_header(vx_merge *m, const uint8_t *f0, const vx_l4 *p0, uint32_t l4len) {
  memcpy(m->hdr, f0, p0->hlen);
  uint8_t *ip = m->hdr + p0->l3;
  if (p0->v6) {
    put16(ip + 4, (uint16_t)l4len);
  } else {
    const uint32_t ihl = p0->l4 - p0->l3;
    put16(ip + 2, (uint16_t)(ihl + l4len));
    ip[10] = ip[11] = 0;
    put16(ip + 10, ipv4_hdr_csum(ip, ihl));
  }
}

/*
 * UDP: a run of datagrams of one flow (same Ethernet header, IP header but for the IPv4 ID, which
 * must count up by one as the kernel's segmentation will rewrite it, the lengths and the header
 * checksum; same ports), every payload the first one's size but the last (which may be shorter),
 * each with a valid non-zero UDP checksum → one UDP_L4 GSO frame. The kernel's segmentation then
 * gives back exactly these datagrams (lengths, IDs and checksums recomputed to the same values).
 */
static void udp_plan(const uint8_t *const *frames, const uint32_t *lens, int n, int max_count, vx_merge *m,
                     uint32_t *plens, const vx_l4 *p0) {
  const uint8_t *f0 = frames[0];
  if (p0->plen == 0 || p0->hlen > sizeof m->hdr || get16(f0 + p0->l4 + 6) == 0) return;
  const uint32_t seg = p0->plen;
  const uint32_t ihl = p0->l4 - p0->l3;
  const uint8_t *b = f0 + p0->l3;
  uint32_t total = seg;
  plens[0] = seg;
  int k = 1;
  while (k < n && k < max_count) {
    const uint8_t *f = frames[k];
    vx_l4 p;
    if (parse_l4(f, lens[k], 17, &p) < 0 || p.v6 != p0->v6 || p.l3 != p0->l3 || p.l4 != p0->l4) break;
    if (p.plen == 0 || p.plen > seg || memcmp(f, f0, p.l3) != 0) break;
    const uint8_t *a = f + p.l3;
    if (p.v6) {
      if (memcmp(a, b, 4) != 0 || memcmp(a + 6, b + 6, 34) != 0) break;
      if (8 + total + p.plen > 65535) break;
    } else {
      if (a[0] != b[0] || a[1] != b[1] || memcmp(a + 6, b + 6, 4) != 0 || memcmp(a + 12, b + 12, ihl - 12) != 0) break;
      if (get16(a + 4) != (uint16_t)(get16(b + 4) + k)) break;
      if (ihl + 8 + total + p.plen > 65535) break;
    }
    if (memcmp(f + p.l4, f0 + p0->l4, 4) != 0 || get16(f + p.l4 + 6) == 0) break;
    /* The first datagram's checksum only once a second one could join it (a lone one is never summed). */
    if ((k == 1 && !csums_ok(f0, p0)) || !csums_ok(f, &p)) break;
    plens[k] = p.plen;
    total += p.plen;
    k++;
    if (p.plen < seg) break; /* a shorter datagram ends the run */
  }
  if (k < 2) return;
  m->count = k;
  m->hlen = p0->hlen;
  m->total = p0->hlen + total;
  uint32_t l4len = 8 + total;
  merge_ip_header(m, f0, p0, l4len);
  uint8_t *uh = m->hdr + p0->l4;
  put16(uh + 4, (uint16_t)l4len);
  /* CHECKSUM_PARTIAL convention: the folded pseudo-header sum, not complemented. */
  put16(uh + 6, vx_csum_fold(pseudo_sum(m->hdr, p0, l4len)));
  m->vnet.flags = VX_VNET_F_NEEDS_CSUM;
  m->vnet.gso_type = VX_GSO_UDP_L4;
  m->vnet.hdr_len = (uint16_t)p0->hlen;
  m->vnet.gso_size = (uint16_t)seg;
  m->vnet.csum_start = (uint16_t)p0->l4;
  m->vnet.csum_offset = 6;
}

/* The merged frame's headers in m->hdr: f0's, with the IP length(s) for `total` payload bytes, the last segment's flags and the partial checksum. */
static void tcp_merge_header(vx_merge *m, const uint8_t *f0, const vx_l4 *p0, int count, uint32_t total, uint8_t last_flags,
                             uint32_t mss) {
  m->count = count;
  m->hlen = p0->hlen;
  m->total = p0->hlen + total;
  uint32_t l4len = p0->hlen - p0->l4 + total;
  merge_ip_header(m, f0, p0, l4len);
  uint8_t *th = m->hdr + p0->l4;
  th[13] = last_flags;
  /* CHECKSUM_PARTIAL convention: the field holds the folded pseudo-header sum, not complemented. */
  put16(th + 16, vx_csum_fold(pseudo_sum(m->hdr, p0, l4len)));
  memset(&m->vnet, 0, sizeof m->vnet);
  m->vnet.flags = VX_VNET_F_NEEDS_CSUM;
  m->vnet.gso_type = p0->v6 ? VX_GSO_TCPV6 : VX_GSO_TCPV4;
  m->vnet.hdr_len = (uint16_t)p0->hlen;
  m->vnet.gso_size = (uint16_t)mss;
  m->vnet.csum_start = (uint16_t)p0->l4;
  m->vnet.csum_offset = 16;
}

/*
 * The TCP run starting at frames[0] (rules: vx_coalesce_plan). With `verify` 0 the segments'
 * checksums are not summed here (vx_gro_run sums them while copying); *p0 gets frame 0's layout.
 * Returns the frames in the run (1: none merges), plens filled for them.
 */
static int tcp_plan(const uint8_t *const *frames, const uint32_t *lens, int n, int max_count, uint32_t *plens,
                    int verify, vx_l4 *p0out, uint32_t *total_out, uint8_t *last_out) {
  const uint8_t *f0 = frames[0];
  vx_l4 p0;
  if (vx_parse_tcp(f0, lens[0], &p0) < 0) return 0;
  *p0out = p0;
  if (p0.plen == 0 || p0.hlen > VX_MERGE_HDR_MAX) return 1;
  if (f0[p0.l4 + 13] != TCP_ACK) return 1; /* only plain data segments start a merge */
  const uint32_t mss = p0.plen;
  const uint32_t ihl = p0.l4 - p0.l3;
  const uint32_t iplen_max = 65535;
  uint32_t total = p0.plen;
  uint32_t next_seq = get32(f0 + p0.l4 + 4) + p0.plen;
  uint8_t last_flags = TCP_ACK;
  plens[0] = p0.plen;
  int k = 1;
  while (k < n && k < max_count) {
    const uint8_t *f = frames[k];
    vx_l4 p;
    if (vx_parse_tcp(f, lens[k], &p) < 0 || p.v6 != p0.v6 || p.hlen != p0.hlen || p.l4 != p0.l4) break;
    if (p.plen == 0 || p.plen > mss) break;
    if (p.l3 != p0.l3 || memcmp(f, f0, p.l3) != 0) break; /* MACs and VLAN tags */
    const uint8_t *a = f + p.l3, *b = f0 + p0.l3;
    if (p.v6) {
      if (memcmp(a, b, 4) != 0 || memcmp(a + 6, b + 6, 34) != 0) break;
      if (40 + p.hlen - p.l4 + total + p.plen > iplen_max + 40) break; /* payload length field */
    } else {
      if (memcmp(a, b, 2) != 0 || memcmp(a + 6, b + 6, 4) != 0 || memcmp(a + 12, b + 12, ihl - 12) != 0) break;
      if (ihl + p.hlen - p.l4 + total + p.plen > iplen_max) break;
    }
    const uint8_t *ta = f + p.l4, *tb = f0 + p0.l4;
    uint8_t fl = ta[13];
    if (memcmp(ta, tb, 4) != 0 || get32(ta + 4) != next_seq || memcmp(ta + 8, tb + 8, 5) != 0) break;
    if (fl != TCP_ACK && fl != (TCP_ACK | TCP_PSH)) break;
    if (memcmp(ta + 14, tb + 14, 2) != 0 || memcmp(ta + 18, tb + 18, p.hlen - p.l4 - 18) != 0) break;
    /* The first segment's checksums only once a second one could join it (a lone one is never summed). */
    if (verify && ((k == 1 && !csums_ok(f0, &p0)) || !csums_ok(f, &p))) break;
    plens[k] = p.plen;
    total += p.plen;
    next_seq += p.plen;
    last_flags = fl;
    k++;
    if (p.plen < mss || (fl & TCP_PSH)) break; /* a short or pushed segment ends the run */
  }
  *total_out = total;
  *last_out = last_flags;
  return k;
}

void vx_coalesce_plan(const uint8_t *const *frames, const uint32_t *lens, int n, int max_count, int udp, vx_merge *m,
                      uint32_t *plens) {
  memset(&m->vnet, 0, sizeof m->vnet);
  m->count = 1;
  m->hlen = 0;
  m->total = lens[0];
  if (n < 2 || max_count < 2) return;
  vx_l4 p0;
  uint32_t total = 0;
  uint8_t last = 0;
  int k = tcp_plan(frames, lens, n, max_count, plens, 1, &p0, &total, &last);
  if (k == 0) {
    if (udp && parse_l4(frames[0], lens[0], 17, &p0) == 0) udp_plan(frames, lens, n, max_count, m, plens, &p0);
    return;
  }
  if (k < 2) return;
  tcp_merge_header(m, frames[0], &p0, k, total, last, plens[0]);
}

/* One TCP segment's checksums, its payload sum `pay` already taken (layout p0, payload plen bytes). */
static int seg_csums_ok(const uint8_t *f, const vx_l4 *p0, uint32_t plen, uint32_t pay) {
  if (!p0->v6 && vx_csum_fold(vx_csum_add(f + p0->l3, p0->l4 - p0->l3, 0)) != 0xffff) return 0;
  uint32_t thlen = p0->hlen - p0->l4; /* a multiple of 4: the payload's words continue the header's */
  uint32_t l4len = thlen + plen;
  return vx_csum_fold(vx_csum_add(f + p0->l4, thlen, pseudo_sum(f, p0, l4len) + pay)) == 0xffff;
}

int vx_gro_run(const uint8_t *const *dgrams, const uint32_t *dlens, int n, int max_count, uint8_t *out, size_t out_cap,
               vx_gro_out *o) {
  const uint8_t *frames[VX_GRO_RUN_MAX];
  uint32_t flens[VX_GRO_RUN_MAX], plens[VX_GRO_RUN_MAX];
  if (max_count > VX_GRO_RUN_MAX) max_count = VX_GRO_RUN_MAX;
  if (n > max_count) n = max_count;
  if (n < 2 || dlens[0] < 8) return 1;
  const uint8_t *v = dgrams[0];
  /* A plaintext VXLAN header that the data path would pass (I flag only, reserved bits zero). */
  if (v[0] != 0x08 || (v[1] | v[2] | v[3] | v[7]) != 0) return 1;
  int m = 0;
  while (m < n && dlens[m] >= 8 && memcmp(dgrams[m], v, 8) == 0) {
    frames[m] = dgrams[m] + 8;
    flens[m] = dlens[m] - 8;
    m++;
  }
  if (m < 2) return 1;
  vx_l4 p0;
  uint32_t total = 0;
  uint8_t last = 0;
  int k = tcp_plan(frames, flens, m, m, plens, 0, &p0, &total, &last);
  if (k < 2) return 1;
  if (o->max_frame != 0 && p0.hlen + plens[0] > o->max_frame) return 1; /* every segment must pass the size check */
  if ((size_t)8 + p0.hlen + total > out_cap) return 1;
  /* One pass: each payload copied behind the merged headers and summed; a bad checksum ends the run before it. */
  uint8_t *dst = out + 8 + p0.hlen;
  uint32_t done = 0;
  int good = 0;
  while (good < k) {
    uint32_t pay = vx_csum_copy(dst + done, frames[good] + p0.hlen, plens[good], 0);
    if (!seg_csums_ok(frames[good], &p0, plens[good], pay)) break;
    done += plens[good];
    good++;
  }
  if (good < 2) return 1;
  if (good < k) {
    total = done;
    last = frames[good - 1][p0.l4 + 13];
  }
  vx_merge mg;
  tcp_merge_header(&mg, frames[0], &p0, good, total, last, plens[0]);
  memcpy(out, v, 8);
  memcpy(out + 8, mg.hdr, p0.hlen);
  o->len = 8 + p0.hlen + total;
  o->gso_type = mg.vnet.gso_type;
  o->gso_size = mg.vnet.gso_size;
  o->hdr_len = (uint16_t)p0.hlen;
  o->wire = 0;
  for (int i = 0; i < good; i++) o->wire += dlens[i];
  return good;
}
