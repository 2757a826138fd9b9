/*
 * native/mac1.c — keyed BLAKE2b (RFC 7693, the same function as libsodium's crypto_generichash)
 * and the batched mac1 check of handshake messages (mac1.h). No allocation, no Node headers.
 */
#include "mac1.h"

#include <string.h>

static const uint64_t iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t rotr64(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

static inline uint64_t load64(const uint8_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
#else
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
#endif
}

#define G(a, b, c, d, x, y)    \
  do {                         \
    a = a + b + (x);           \
    d = rotr64(d ^ a, 32);     \
    c = c + d;                 \
    b = rotr64(b ^ c, 24);     \
    a = a + b + (y);           \
    d = rotr64(d ^ a, 16);     \
    c = c + d;                 \
    b = rotr64(b ^ c, 63);     \
  } while (0)

static void compress(uint64_t h[8], const uint8_t block[128], uint64_t t, int last) {
  uint64_t m[16], v[16];
  for (int i = 0; i < 16; i++) m[i] = load64(block + 8 * i);
  for (int i = 0; i < 8; i++) {
    v[i] = h[i];
    v[i + 8] = iv[i];
  }
  v[12] ^= t; /* messages here are far below 2^64 bytes: the high word of the counter stays 0 */
  if (last) v[14] = ~v[14];
  for (int r = 0; r < 12; r++) {
    const uint8_t *s = sigma[r];
    G(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]]);
    G(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]]);
    G(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]]);
    G(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]]);
    G(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]]);
    G(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]]);
    G(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]]);
    G(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]]);
  }
  for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* The state after the key block (keylen > 0, at least one input byte to follow): the same for
 * every message under one key, so a batch computes it once. */
static void keyed_start(uint64_t h[8], size_t outlen, const uint8_t *key, size_t keylen) {
  uint8_t block[128];
  for (int i = 0; i < 8; i++) h[i] = iv[i];
  h[0] ^= 0x01010000ULL ^ ((uint64_t)keylen << 8) ^ (uint64_t)outlen;
  memset(block, 0, sizeof block);
  memcpy(block, key, keylen);
  compress(h, block, 128, 0);
  memset(block, 0, sizeof block);
}

/* Absorbs `inlen` ≥ 1 bytes after `t` bytes already compressed; writes the digest. */
static void finish(uint64_t h[8], uint64_t t, uint8_t *out, size_t outlen, const uint8_t *in, size_t inlen) {
  uint8_t block[128];
  while (inlen > 128) {
    t += 128;
    compress(h, in, t, 0);
    in += 128;
    inlen -= 128;
  }
  memset(block, 0, sizeof block);
  memcpy(block, in, inlen);
  t += inlen;
  compress(h, block, t, 1);
  for (size_t i = 0; i < outlen; i++) out[i] = (uint8_t)(h[i >> 3] >> (8 * (i & 7)));
}

void vxm_blake2b(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen, const uint8_t *in, size_t inlen) {
  uint64_t h[8];
  uint8_t block[128];
  uint64_t t = 0;
  if (keylen > 0 && inlen > 0) {
    keyed_start(h, outlen, key, keylen);
    finish(h, 128, out, outlen, in, inlen);
    return;
  }
  for (int i = 0; i < 8; i++) h[i] = iv[i];
  h[0] ^= 0x01010000ULL ^ ((uint64_t)keylen << 8) ^ (uint64_t)outlen;
  if (keylen > 0) {
    memset(block, 0, sizeof block);
    memcpy(block, key, keylen);
    t = 128;
    /* the key block is the last one only when there is no input */
    compress(h, block, t, inlen == 0);
  }
  while (inlen > 128) {
    t += 128;
    compress(h, in, t, 0);
    in += 128;
    inlen -= 128;
  }
  if (inlen > 0 || keylen == 0) {
    memset(block, 0, sizeof block);
    memcpy(block, in, inlen);
    t += inlen;
    compress(h, block, t, 1);
  }
  for (size_t i = 0; i < outlen; i++) out[i] = (uint8_t)(h[i >> 3] >> (8 * (i & 7)));
  memset(block, 0, sizeof block);
}

uint32_t vxm_mac1_check(const uint8_t *slab, size_t slab_len, const uint32_t *offs, const uint32_t *lens,
                        uint32_t count, const uint8_t key[VXM_MAC1_KEY], uint8_t *status) {
  uint32_t ok = 0;
  uint8_t want[VXM_MAC1_LEN];
  uint64_t h0[8], h[8];
  keyed_start(h0, VXM_MAC1_LEN, key, VXM_MAC1_KEY);
  for (uint32_t i = 0; i < count; i++) {
    status[i] = 0;
    size_t off = offs[i], len = lens[i];
    if (off > slab_len || len > slab_len - off || len < VXM_MSG_RESPONSE_LEN) continue;
    const uint8_t *m = slab + off;
    size_t need = m[0] == 1 ? VXM_MSG_INITIATION_LEN : m[0] == 2 ? VXM_MSG_RESPONSE_LEN : 0;
    if (need == 0 || len != need || m[1] != 0 || m[2] != 0 || m[3] != 0) continue;
    memcpy(h, h0, sizeof h);
    finish(h, 128, want, VXM_MAC1_LEN, m, len - 32);
    uint8_t d = 0;
    for (int k = 0; k < VXM_MAC1_LEN; k++) d |= (uint8_t)(want[k] ^ m[len - 32 + k]);
    if (d == 0) {
      status[i] = 1;
      ok++;
    }
  }
  return ok;
}
