/*
 * native/aead.c — batched AEAD seal/open in place over Node's bundled OpenSSL (EVP). No Node
 * headers: the JS functions are in aead_glue.c (documented there and in src/crypto/aead.ts).
 *
 * JS owns the memory: packets sit in a slab, described by (offset, length, key slot) arrays; C
 * transforms them in place. Keys live in a key table (one EVP_CIPHER_CTX per slot, key schedule
 * done once in vxm_aead_set_key), so the per-packet cost is a nonce set, AAD, one update, final
 * and the tag.
 *
 * Packet layout (see docs/wire-format.md, "data message"):
 *   [off, off+16)          header, authenticated as AAD; bytes 8..15 = 64-bit counter, little-endian
 *   [off+16, off+16+n)     plaintext (seal) / ciphertext (open), transformed in place
 *   [off+16+n, off+32+n)   16-byte tag (written by seal, checked by open)
 * Nonce (96 bits) = 4 zero bytes || counter (8 bytes, little-endian), as WireGuard.
 *
 * Symbols (EVP_*) resolve against the node binary at load time; no libcrypto is linked (the
 * fuzz harnesses link the system's libcrypto instead).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aead.h"
#include "gso.h"

struct vxm_aead_table {
  int alg;
  uint32_t nslots;
  EVP_CIPHER_CTX **ctx; /* NULL = no key in slot */
};

static const EVP_CIPHER *vxm_cipher(int alg) {
  return alg == 1 ? EVP_chacha20_poly1305() : EVP_aes_256_gcm();
}

vxm_aead_table *vxm_aead_table_new(int alg, uint32_t slots) {
  if ((alg != 0 && alg != 1) || slots == 0 || slots > VXM_AEAD_MAX_SLOTS) return NULL;
  vxm_aead_table *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->ctx = calloc(slots, sizeof *t->ctx);
  if (!t->ctx) {
    free(t);
    return NULL;
  }
  t->alg = alg;
  t->nslots = slots;
  return t;
}

void vxm_aead_table_free(vxm_aead_table *t) {
  if (!t) return;
  for (uint32_t i = 0; i < t->nslots; i++)
    if (t->ctx[i]) EVP_CIPHER_CTX_free(t->ctx[i]);
  free(t->ctx);
  free(t);
}

uint32_t vxm_aead_slots(const vxm_aead_table *t) { return t->nslots; }

int vxm_aead_set_key(vxm_aead_table *t, uint32_t slot, const uint8_t key[VXM_AEAD_KEY]) {
  if (slot >= t->nslots) return -1;
  EVP_CIPHER_CTX *c = t->ctx[slot];
  if (!c) {
    c = EVP_CIPHER_CTX_new();
    if (!c) return -2;
    t->ctx[slot] = c;
  } else {
    EVP_CIPHER_CTX_reset(c);
  }
  if (EVP_CipherInit_ex(c, vxm_cipher(t->alg), NULL, NULL, NULL, 1) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1 ||
      EVP_CipherInit_ex(c, NULL, NULL, key, NULL, 1) != 1) {
    EVP_CIPHER_CTX_free(c);
    t->ctx[slot] = NULL;
    return -2;
  }
  return 0;
}

int vxm_aead_clear_key(vxm_aead_table *t, uint32_t slot) {
  if (slot >= t->nslots) return -1;
  if (t->ctx[slot]) {
    EVP_CIPHER_CTX_free(t->ctx[slot]);
    t->ctx[slot] = NULL;
  }
  return 0;
}

/* Seals (enc = 1) or opens (enc = 0) one packet in place. Returns 1 on success. */
static int vxm_one(EVP_CIPHER_CTX *c, int enc, uint8_t *p, size_t n) {
  uint8_t iv[12];
  int outl = 0;
  memset(iv, 0, 4);
  memcpy(iv + 4, p + 8, 8);
  if (EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, enc) != 1) return 0;
  if (EVP_CipherUpdate(c, NULL, &outl, p, VXM_AEAD_HDR) != 1) return 0;
  uint8_t *body = p + VXM_AEAD_HDR;
  if (n > 0 && EVP_CipherUpdate(c, body, &outl, body, (int)n) != 1) return 0;
  if (enc) {
    if (EVP_CipherFinal_ex(c, body + n, &outl) != 1) return 0;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, VXM_AEAD_TAG, body + n) != 1) return 0;
    return 1;
  }
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, VXM_AEAD_TAG, body + n) != 1) return 0;
  return EVP_CipherFinal_ex(c, body + n, &outl) == 1;
}

uint32_t vxm_aead_batch(vxm_aead_table *t, int enc, uint8_t *slab, size_t slab_len, const uint32_t *offs,
                        const uint32_t *lens, const uint32_t *slots, uint32_t count, uint8_t *status) {
  uint32_t done = 0;
  for (uint32_t i = 0; i < count; i++) {
    status[i] = 0;
    uint32_t s = slots[i];
    if (s >= t->nslots || !t->ctx[s]) continue;
    size_t off = offs[i], len = lens[i], body;
    if (enc) {
      body = len;
      if (off > slab_len || slab_len - off < (size_t)VXM_AEAD_HDR + VXM_AEAD_TAG + body) continue;
    } else {
      if (len < VXM_AEAD_HDR + VXM_AEAD_TAG || off > slab_len || slab_len - off < len) continue;
      body = len - VXM_AEAD_HDR - VXM_AEAD_TAG;
    }
    if (body > 0x7fffffff) continue;
    if (vxm_one(t->ctx[s], enc, slab + off, body)) {
      status[i] = 1;
      done++;
    }
  }
  return done;
}

int vxm_aead_seal_tso(vxm_aead_table *t, uint32_t slot, const uint8_t *frame, size_t frame_len, uint8_t gso_type,
                      uint16_t mss, const uint8_t prefix[VXM_TSO_PREFIX], uint8_t *out, size_t out_len,
                      uint32_t *out_lens, size_t n_lens) {
  if (slot >= t->nslots || !t->ctx[slot]) return -3;
  if (n_lens < 2 || mss == 0) return -1;
  vx_l4 l4;
  if (vx_parse_tcp(frame, frame_len, &l4) != 0) return -1;
  size_t nseg = l4.plen == 0 ? 1 : (l4.plen + mss - 1) / mss;
  size_t max_segs = n_lens - 1 < VXM_TSO_MAX_SEGS ? n_lens - 1 : VXM_TSO_MAX_SEGS;
  size_t seg_stride = VXM_TSO_PREFIX + l4.hlen + mss;
  if (nseg > max_segs || nseg * (seg_stride + VXM_AEAD_TAG) > out_len) return -2;
  /* Segments are cut with a 16-byte gap after each for its tag, so they are sealed where they lie. */
  uint32_t sstride = 0;
  int n = vx_tso_segment_gap(frame, frame_len, gso_type, mss, prefix, VXM_TSO_PREFIX, VXM_AEAD_TAG, out, out_len,
                             out_lens, (int)max_segs, &sstride);
  if (n <= 0) return n == -2 ? -2 : -1;
  uint64_t base = 0;
  for (int b = 7; b >= 0; b--) base = (base << 8) | prefix[8 + b];
  int rc = n;
  for (int i = 0; i < n; i++) {
    uint8_t *p = out + (size_t)i * sstride;
    uint64_t c = base + (uint64_t)i;
    for (int b = 0; b < 8; b++) p[8 + b] = (uint8_t)(c >> (8 * b));
    if (!vxm_one(t->ctx[slot], 1, p, out_lens[i] - VXM_AEAD_HDR)) {
      rc = -3;
      break;
    }
    out_lens[i] += VXM_AEAD_TAG;
  }
  out_lens[n_lens - 1] = sstride;
  return rc;
}
