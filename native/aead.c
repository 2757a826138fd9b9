/*
 * native/aead.c — batched AEAD seal/open in place over Node's bundled OpenSSL (EVP).
 *
 * One N-API crossing per batch. JS owns the memory: packets sit in a slab, described by
 * (offset, length, key slot) arrays; C transforms them in place. Keys live in a key table (one
 * EVP_CIPHER_CTX per slot, key schedule done once in aeadSetKey), so the per-packet cost is a
 * nonce set, AAD, one update, final and the tag.
 *
 * Packet layout (see docs/wire-format.md, "data message"):
 *   [off, off+16)          header, authenticated as AAD; bytes 8..15 = 64-bit counter, little-endian
 *   [off+16, off+16+n)     plaintext (seal) / ciphertext (open), transformed in place
 *   [off+16+n, off+32+n)   16-byte tag (written by seal, checked by open)
 * Nonce (96 bits) = 4 zero bytes || counter (8 bytes, little-endian), as WireGuard.
 *
 * Symbols (EVP_*) resolve against the node binary at load time; no libcrypto is linked.
 *
 * JS API (registered on the addon's exports by vxm_aead_init):
 *   aeadCreateTable(alg: 0 = AES-256-GCM | 1 = ChaCha20-Poly1305, slots: number): External
 *   aeadSetKey(table, slot, key: 32-byte Uint8Array): void
 *   aeadClearKey(table, slot): void
 *   aeadSealBatch(table, slab, offs: Uint32Array, lens: Uint32Array, slots: Uint32Array,
 *                 count, status: Uint8Array): number   // lens = plaintext lengths; returns #sealed
 *   aeadOpenBatch(table, slab, offs, lens, slots, count, status): number
 *                 // lens = whole packet lengths (header + ciphertext + tag); returns #opened;
 *                 // status[i] = 1 when packet i authenticated and was decrypted in place, else 0.
 *   aeadSealTso(table, slot, frame: Uint8Array, gsoType, mss, prefix: 24-byte Uint8Array,
 *               out: Uint8Array, outLens: Uint32Array): number
 *                 // Cuts a TSO super-frame into MSS-sized TCP segments (gso.c's vx_tso_segment) and
 *                 // seals each as a data message: prefix = data header (16, counter = base) + VXLAN
 *                 // header (8); segment i gets counter base + i. Sealed datagram i is at
 *                 // out[i * stride], outLens[i] bytes; every one but the last is exactly `stride`
 *                 // bytes (the UDP GSO layout); stride is stored in outLens[outLens.length - 1].
 *                 // Returns the segment count; -1 not a segmentable frame; -2 out/outLens too small;
 *                 // -3 no key in slot.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aead.h"
#include "gso.h"

#define VXM_AEAD_HDR 16
#define VXM_AEAD_TAG 16
#define VXM_AEAD_KEY 32
#define VXM_AEAD_MAX_SLOTS 65536

typedef struct {
  int alg;
  uint32_t nslots;
  EVP_CIPHER_CTX **ctx; /* NULL = no key in slot */
} vxm_aead_table;

static const EVP_CIPHER *vxm_cipher(int alg) {
  return alg == 1 ? EVP_chacha20_poly1305() : EVP_aes_256_gcm();
}

static napi_value vxm_throw(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) return vxm_throw(env, "ERR_VXMESH_AEAD", "napi call failed: " #call); \
  } while (0)

static void vxm_table_free(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  vxm_aead_table *t = data;
  if (!t) return;
  for (uint32_t i = 0; i < t->nslots; i++)
    if (t->ctx[i]) EVP_CIPHER_CTX_free(t->ctx[i]);
  free(t->ctx);
  free(t);
}

static int get_u8(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  napi_typedarray_type type; size_t n; void *d; napi_value ab; size_t bo;
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return -1;
  if (napi_get_typedarray_info(env, v, &type, &n, &d, &ab, &bo) != napi_ok) return -1;
  if (type != napi_uint8_array) return -1;
  *data = d; *len = n;
  return 0;
}

static int get_u32(napi_env env, napi_value v, uint32_t **data, size_t *len) {
  napi_typedarray_type type; size_t n; void *d; napi_value ab; size_t bo;
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return -1;
  if (napi_get_typedarray_info(env, v, &type, &n, &d, &ab, &bo) != napi_ok) return -1;
  if (type != napi_uint32_array) return -1;
  *data = d; *len = n;
  return 0;
}

static int get_table(napi_env env, napi_value v, vxm_aead_table **t) {
  napi_valuetype vt;
  if (napi_typeof(env, v, &vt) != napi_ok || vt != napi_external) return -1;
  if (napi_get_value_external(env, v, (void **)t) != napi_ok || !*t) return -1;
  return 0;
}

static napi_value aead_create_table(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t alg = -1; uint32_t slots = 0;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &alg) != napi_ok || (alg != 0 && alg != 1))
    return vxm_throw(env, "ERR_VXMESH_AEAD", "aeadCreateTable: alg must be 0 (AES-256-GCM) or 1 (ChaCha20-Poly1305)");
  if (napi_get_value_uint32(env, argv[1], &slots) != napi_ok || slots == 0 || slots > VXM_AEAD_MAX_SLOTS)
    return vxm_throw(env, "ERR_VXMESH_AEAD", "aeadCreateTable: slots must be 1..65536");
  vxm_aead_table *t = calloc(1, sizeof *t);
  if (!t) return vxm_throw(env, "ERR_VXMESH_AEAD", "out of memory");
  t->ctx = calloc(slots, sizeof *t->ctx);
  if (!t->ctx) { free(t); return vxm_throw(env, "ERR_VXMESH_AEAD", "out of memory"); }
  t->alg = alg; t->nslots = slots;
  napi_value ext;
  if (napi_create_external(env, t, vxm_table_free, NULL, &ext) != napi_ok) {
    vxm_table_free(env, t, NULL);
    return vxm_throw(env, "ERR_VXMESH_AEAD", "napi_create_external failed");
  }
  return ext;
}

static napi_value aead_set_key(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  vxm_aead_table *t; uint32_t slot; uint8_t *key; size_t klen;
  if (argc < 3 || get_table(env, argv[0], &t) != 0)
    return vxm_throw(env, "ERR_VXMESH_AEAD", "aeadSetKey: bad table");
  if (napi_get_value_uint32(env, argv[1], &slot) != napi_ok || slot >= t->nslots)
    return vxm_throw(env, "ERR_VXMESH_AEAD", "aeadSetKey: slot out of range");
  if (get_u8(env, argv[2], &key, &klen) != 0 || klen != VXM_AEAD_KEY)
    return vxm_throw(env, "ERR_VXMESH_AEAD", "aeadSetKey: key must be a 32-byte Uint8Array");
  EVP_CIPHER_CTX *c = t->ctx[slot];
  if (!c) {
    c = EVP_CIPHER_CTX_new();
    if (!c) return vxm_throw(env, "ERR_VXMESH_AEAD", "EVP_CIPHER_CTX_new failed");
    t->ctx[slot] = c;
  } else {
    EVP_CIPHER_CTX_reset(c);
  }
  if (EVP_CipherInit_ex(c, vxm_cipher(t->alg), NULL, NULL, NULL, 1) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1 ||
      EVP_CipherInit_ex(c, NULL, NULL, key, NULL, 1) != 1) {
    EVP_CIPHER_CTX_free(c);
    t->ctx[slot] = NULL;
    return vxm_throw(env, "ERR_VXMESH_AEAD", "aeadSetKey: EVP init failed");
  }
  return NULL;
}

static napi_value aead_clear_key(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  vxm_aead_table *t; uint32_t slot;
  if (argc < 2 || get_table(env, argv[0], &t) != 0)
    return vxm_throw(env, "ERR_VXMESH_AEAD", "aeadClearKey: bad table");
  if (napi_get_value_uint32(env, argv[1], &slot) != napi_ok || slot >= t->nslots)
    return vxm_throw(env, "ERR_VXMESH_AEAD", "aeadClearKey: slot out of range");
  if (t->ctx[slot]) { EVP_CIPHER_CTX_free(t->ctx[slot]); t->ctx[slot] = NULL; }
  return NULL;
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

static napi_value aead_batch(napi_env env, napi_callback_info info, int enc) {
  size_t argc = 7; napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  vxm_aead_table *t; uint8_t *slab; size_t slab_len;
  uint32_t *offs, *lens, *slots; size_t n_offs, n_lens, n_slots;
  uint32_t count; uint8_t *status; size_t n_status;
  if (argc < 7 || get_table(env, argv[0], &t) != 0 || get_u8(env, argv[1], &slab, &slab_len) != 0 ||
      get_u32(env, argv[2], &offs, &n_offs) != 0 || get_u32(env, argv[3], &lens, &n_lens) != 0 ||
      get_u32(env, argv[4], &slots, &n_slots) != 0 ||
      napi_get_value_uint32(env, argv[5], &count) != napi_ok ||
      get_u8(env, argv[6], &status, &n_status) != 0)
    return vxm_throw(env, "ERR_VXMESH_AEAD", "aead batch: bad arguments (table, slab, offs, lens, slots, count, status)");
  if (count > n_offs || count > n_lens || count > n_slots || count > n_status)
    return vxm_throw(env, "ERR_VXMESH_AEAD", "aead batch: count exceeds descriptor arrays");
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
    if (vxm_one(t->ctx[s], enc, slab + off, body)) { status[i] = 1; done++; }
  }
  napi_value r;
  CHECK(napi_create_uint32(env, done, &r));
  return r;
}

static napi_value aead_seal_batch(napi_env env, napi_callback_info info) { return aead_batch(env, info, 1); }
static napi_value aead_open_batch(napi_env env, napi_callback_info info) { return aead_batch(env, info, 0); }

#define VXM_TSO_PREFIX (VXM_AEAD_HDR + 8)
#define VXM_TSO_MAX_SEGS 256

static napi_value aead_seal_tso(napi_env env, napi_callback_info info) {
  size_t argc = 8; napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  vxm_aead_table *t; uint32_t slot, gso_type, mss;
  uint8_t *frame, *prefix, *out; size_t frame_len, prefix_len, out_len;
  uint32_t *out_lens; size_t n_lens;
  if (argc < 8 || get_table(env, argv[0], &t) != 0 || napi_get_value_uint32(env, argv[1], &slot) != napi_ok ||
      get_u8(env, argv[2], &frame, &frame_len) != 0 || napi_get_value_uint32(env, argv[3], &gso_type) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &mss) != napi_ok || get_u8(env, argv[5], &prefix, &prefix_len) != 0 ||
      get_u8(env, argv[6], &out, &out_len) != 0 || get_u32(env, argv[7], &out_lens, &n_lens) != 0 ||
      prefix_len != VXM_TSO_PREFIX || n_lens < 2 || gso_type > 255 || mss == 0 || mss > 65535)
    return vxm_throw(env, "ERR_VXMESH_AEAD", "aeadSealTso: bad arguments (table, slot, frame, gsoType, mss, prefix[24], out, outLens)");
  int32_t rc;
  napi_value r;
  if (slot >= t->nslots || !t->ctx[slot]) {
    rc = -3;
  } else {
    vx_l4 l4;
    if (vx_parse_tcp(frame, frame_len, &l4) != 0) {
      rc = -1;
    } else {
      size_t nseg = l4.plen == 0 ? 1 : (l4.plen + mss - 1) / mss;
      size_t max_segs = n_lens - 1 < VXM_TSO_MAX_SEGS ? n_lens - 1 : VXM_TSO_MAX_SEGS;
      size_t seg_stride = VXM_TSO_PREFIX + l4.hlen + mss;
      if (nseg > max_segs || nseg * (seg_stride + VXM_AEAD_TAG) > out_len) {
        rc = -2;
      } else {
        uint32_t stride = 0;
        int n = vx_tso_segment(frame, frame_len, (uint8_t)gso_type, (uint16_t)mss, prefix, VXM_TSO_PREFIX, out,
                               out_len, out_lens, (int)max_segs, &stride);
        if (n <= 0) {
          rc = n == -2 ? -2 : -1;
        } else {
          /* Open a 16-byte gap after every segment for its tag, last segment first (memmove). */
          uint32_t sstride = stride + VXM_AEAD_TAG;
          if ((size_t)n * sstride > out_len) {
            napi_create_int32(env, -2, &r);
            return r;
          }
          for (int i = n - 1; i > 0; i--) memmove(out + (size_t)i * sstride, out + (size_t)i * stride, out_lens[i]);
          uint64_t base = 0;
          for (int b = 7; b >= 0; b--) base = (base << 8) | prefix[8 + b];
          rc = n;
          for (int i = 0; i < n; i++) {
            uint8_t *p = out + (size_t)i * sstride;
            uint64_t c = base + (uint64_t)i;
            for (int b = 0; b < 8; b++) p[8 + b] = (uint8_t)(c >> (8 * b));
            if (!vxm_one(t->ctx[slot], 1, p, out_lens[i] - VXM_AEAD_HDR)) { rc = -3; break; }
            out_lens[i] += VXM_AEAD_TAG;
          }
          out_lens[n_lens - 1] = sstride;
        }
      }
    }
  }
  CHECK(napi_create_int32(env, rc, &r));
  return r;
}

napi_status vxm_aead_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "aeadCreateTable", NULL, aead_create_table, NULL, NULL, NULL, napi_enumerable, NULL },
    { "aeadSetKey", NULL, aead_set_key, NULL, NULL, NULL, napi_enumerable, NULL },
    { "aeadClearKey", NULL, aead_clear_key, NULL, NULL, NULL, napi_enumerable, NULL },
    { "aeadSealBatch", NULL, aead_seal_batch, NULL, NULL, NULL, napi_enumerable, NULL },
    { "aeadOpenBatch", NULL, aead_open_batch, NULL, NULL, NULL, napi_enumerable, NULL },
    { "aeadSealTso", NULL, aead_seal_tso, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
