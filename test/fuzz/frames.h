/*
 * Shared helpers of the libFuzzer harnesses: a frame builder (Ethernet, up to two VLAN tags,
 * IPv4 with options or IPv6, TCP with options or UDP) driven by fuzzer bytes, checksum fixing, and
 * a byte reader over the fuzzer's input. Structured inputs reach the deep paths of the parsers
 * (valid checksums, consecutive sequence numbers) that raw random bytes almost never do; raw
 * modes in each harness cover the rest.
 */
#ifndef VX_FUZZ_FRAMES_H
#define VX_FUZZ_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gso.h"

/* A violated invariant: abort so that libFuzzer records the input as a crash. */
#define FUZZ_ASSERT(c)                                                        \
  do {                                                                        \
    if (!(c)) {                                                               \
      fprintf(stderr, "invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #c); \
      __builtin_trap();                                                       \
    }                                                                         \
  } while (0)

typedef struct fz {
  const uint8_t *p;
  size_t n;
} fz;

static inline uint8_t fz_u8(fz *f) {
  if (f->n == 0) return 0;
  f->n--;
  return *f->p++;
}
static inline uint16_t fz_u16(fz *f) { return (uint16_t)(fz_u8(f) << 8 | fz_u8(f)); }

static inline void put16be(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline uint16_t get16be(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32be(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put32be(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* Frame shape chosen by the fuzzer. */
typedef struct shape {
  int v6, udp, tags, ipopt, tcpopt;
} shape;

static inline shape fz_shape(fz *f) {
  uint8_t b = fz_u8(f), c = fz_u8(f);
  shape s = {b & 1, (b >> 1) & 1, (b >> 2) % 3, ((c & 7) % 6) * 4, ((c >> 3) % 11) * 4};
  if (s.v6) s.ipopt = 0;
  if (s.udp) s.tcpopt = 0;
  return s;
}

/* Offsets of a built frame. */
typedef struct layout {
  uint32_t l3, l4, hlen;
} layout;

/* Writes the headers of a frame with `plen` payload bytes into out (room: hlen + plen). */
static inline layout build_headers(const shape *s, uint8_t *out, uint32_t plen, uint32_t seq, uint16_t id, uint8_t tcp_flags) {
  layout L;
  memcpy(out, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
  uint32_t at = 12;
  for (int t = 0; t < s->tags; t++) {
    put16be(out + at, t == 0 && s->tags == 2 ? 0x88a8 : 0x8100);
    put16be(out + at + 2, (uint16_t)(100 + t));
    at += 4;
  }
  put16be(out + at, s->v6 ? 0x86dd : 0x0800);
  L.l3 = at + 2;
  uint8_t *ip = out + L.l3;
  uint32_t l4len = (s->udp ? 8 : 20 + (uint32_t)s->tcpopt) + plen;
  if (s->v6) {
    memset(ip, 0, 40);
    ip[0] = 0x60;
    put16be(ip + 4, (uint16_t)l4len);
    ip[6] = s->udp ? 17 : 6;
    ip[7] = 64;
    memcpy(ip + 8, "\x20\x01\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 16);
    memcpy(ip + 24, "\x20\x01\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02", 16);
    L.l4 = L.l3 + 40;
  } else {
    uint32_t ihl = 20 + (uint32_t)s->ipopt;
    memset(ip, 0, ihl);
    ip[0] = (uint8_t)(0x40 | (ihl / 4));
    put16be(ip + 2, (uint16_t)(ihl + l4len));
    put16be(ip + 4, id);
    ip[6] = 0x40; /* DF */
    ip[8] = 64;
    ip[9] = s->udp ? 17 : 6;
    memcpy(ip + 12, "\xc6\x13\x00\x0b\xc6\x13\x00\x15", 8);
    for (int k = 20; k < (int)ihl; k++) ip[k] = 1; /* NOP options */
    L.l4 = L.l3 + ihl;
  }
  uint8_t *l4 = out + L.l4;
  put16be(l4, 40000);
  put16be(l4 + 2, 5201);
  if (s->udp) {
    put16be(l4 + 4, (uint16_t)l4len);
    put16be(l4 + 6, 0);
    L.hlen = L.l4 + 8;
  } else {
    uint32_t doff = 20 + (uint32_t)s->tcpopt;
    memset(l4 + 4, 0, doff - 4);
    put32be(l4 + 4, seq);
    put32be(l4 + 8, 0x01020304);
    l4[12] = (uint8_t)((doff / 4) << 4);
    l4[13] = tcp_flags;
    put16be(l4 + 14, 512);
    for (int k = 20; k < (int)doff; k++) l4[k] = 1; /* NOP options */
    L.hlen = L.l4 + doff;
  }
  return L;
}

/* Recomputes the IPv4 header checksum and the TCP/UDP checksum of a parsable frame; 0 or -1. */
static inline int fix_checksums(uint8_t *f, size_t len) {
  vx_l4 p;
  if (vx_parse_tcp(f, len, &p) < 0) {
    /* UDP: parse through the coalescing planner's rules is internal; do it by hand here. */
    size_t l3 = 14;
    uint16_t et = get16be(f + 12);
    for (int t = 0; t < 2 && (et == 0x8100 || et == 0x88a8) && len >= l3 + 4; t++) {
      et = get16be(f + l3 + 2);
      l3 += 4;
    }
    memset(&p, 0, sizeof p);
    p.l3 = (uint32_t)l3;
    if (et == 0x0800 && len >= l3 + 28 && f[l3 + 9] == 17) {
      uint32_t ihl = (uint32_t)(f[l3] & 15) * 4;
      uint32_t tot = get16be(f + l3 + 2);
      if (ihl < 20 || l3 + tot > len || tot < ihl + 8) return -1;
      p.l4 = (uint32_t)l3 + ihl;
      p.plen = tot - ihl - 8;
    } else if (et == 0x86dd && len >= l3 + 48 && f[l3 + 6] == 17) {
      uint32_t pl = get16be(f + l3 + 4);
      if (pl < 8 || l3 + 40 + pl > len) return -1;
      p.v6 = 1;
      p.l4 = (uint32_t)l3 + 40;
      p.plen = pl - 8;
    } else {
      return -1;
    }
    p.proto = 17;
    p.hlen = p.l4 + 8;
  }
  uint8_t *ip = f + p.l3;
  if (!p.v6) {
    uint32_t ihl = p.l4 - p.l3;
    ip[10] = ip[11] = 0;
    put16be(ip + 10, (uint16_t)~vx_csum_fold(vx_csum_add(ip, ihl, 0)));
  }
  uint32_t l4len = p.hlen - p.l4 + p.plen;
  uint32_t ps = p.v6 ? vx_csum_add(ip + 8, 32, 0) : vx_csum_add(ip + 12, 8, 0);
  ps += p.proto + (l4len >> 16) + (l4len & 0xffff);
  uint8_t *c = f + p.l4 + (p.proto == 6 ? 16 : 6);
  c[0] = c[1] = 0;
  uint16_t v = (uint16_t)~vx_csum_fold(vx_csum_add(f + p.l4, l4len, ps));
  if (p.proto == 17 && v == 0) v = 0xffff;
  put16be(c, v);
  return 0;
}

/* TCP checksum (and IPv4 header checksum) of a parsed TCP frame are valid. */
static inline int tcp_csums_ok(const uint8_t *f, const vx_l4 *p) {
  const uint8_t *ip = f + p->l3;
  if (!p->v6 && vx_csum_fold(vx_csum_add(ip, p->l4 - p->l3, 0)) != 0xffff) return 0;
  uint32_t l4len = p->hlen - p->l4 + p->plen;
  uint32_t ps = p->v6 ? vx_csum_add(ip + 8, 32, 0) : vx_csum_add(ip + 12, 8, 0);
  ps += p->proto + (l4len >> 16) + (l4len & 0xffff);
  return vx_csum_fold(vx_csum_add(f + p->l4, l4len, ps)) == 0xffff;
}

/* A heap copy of exactly n bytes (so that ASan sees any read past the end). */
static inline uint8_t *dup_exact(const uint8_t *p, size_t n) {
  uint8_t *d = malloc(n ? n : 1);
  if (n) memcpy(d, p, n);
  return d;
}

#endif
