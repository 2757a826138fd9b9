/*
 * AEAD glue (aead.c). Every argument error is thrown with code ERR_VXMESH_AEAD (src/crypto/aead.ts
 * relies on it); tables are type-tagged externals, so no other handle can be passed for one.
 *
 *   aeadCreateTable(alg: 0 = AES-256-GCM | 1 = ChaCha20-Poly1305, slots: number): External
 *   aeadSetKey(table, slot, key: 32-byte Uint8Array): void
 *   aeadClearKey(table, slot): void
 *   aeadSealBatch(table, slab, offs: Uint32Array, lens: Uint32Array, slots: Uint32Array,
 *                 count, status: Uint8Array): number   // lens = plaintext lengths; returns #sealed
 *   aeadOpenBatch(table, slab, offs, lens, slots, count, status): number
 *                 // lens = whole packet lengths (header + ciphertext + tag); returns #opened;
 *                 // status[i] = 1 when packet i authenticated and was decrypted in place, else 0.
 *   aeadSealTso(table, slot, frame: Uint8Array, gsoType, mss, prefix: 24-byte Uint8Array,
 *               out: Uint8Array, outLens: Uint32Array): number   // see vxm_aead_seal_tso (aead.h)
 */
#include <stdio.h>
#include <stdlib.h>

#include "aead.h"
#include "napi_util.h"

#define AEAD_ERR "ERR_VXMESH_AEAD"

static const napi_type_tag vxm_table_tag = {0x76786d6165616474ULL, 0x61626c652d763100ULL};

/* The argument error pending gets code ERR_VXMESH_AEAD and the function's name in front. */
static napi_value aead_fail(napi_env env) { return vx_recode_pending(env, AEAD_ERR); }

static napi_value aead_error(napi_env env, const char *msg) { return vx_error(env, AEAD_ERR, msg); }

/* Drops the pending exception (if any) and throws aead_error(msg) instead. */
static napi_value replace_pending(napi_env env, const char *msg) {
  bool pending = false;
  napi_value exc;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
      napi_get_and_clear_last_exception(env, &exc) != napi_ok)
    return NULL; /* cannot clear it: it stays the error */
  return aead_error(env, msg);
}

static void table_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  vxm_aead_table_free(data);
}

static int get_table(napi_env env, napi_value v, vxm_aead_table **t) {
  return vx_get_tagged(env, v, &vxm_table_tag, "an AEAD table", (void **)t);
}

static napi_value aead_create_table(napi_env env, napi_callback_info info) {
  napi_value argv[2], ext;
  int32_t alg;
  uint32_t slots;
  if (vx_args(env, info, 2, 2, argv, NULL) < 0) return aead_fail(env);
  /* One message per argument, whatever was wrong with it (type, range, value). */
  if (vx_get_i32(env, argv[0], "alg", &alg) < 0 || (alg != 0 && alg != 1))
    return replace_pending(env, "aeadCreateTable: alg must be 0 (AES-256-GCM) or 1 (ChaCha20-Poly1305)");
  if (vx_get_u32(env, argv[1], "slots", &slots) < 0 || slots == 0 || slots > VXM_AEAD_MAX_SLOTS)
    return replace_pending(env, "aeadCreateTable: slots must be 1..65536");
  vxm_aead_table *t = vxm_aead_table_new(alg, slots);
  if (!t) return aead_error(env, "aeadCreateTable: out of memory");
  if (napi_create_external(env, t, table_finalize, NULL, &ext) != napi_ok) {
    vxm_aead_table_free(t);
    vx_throw_napi(env, "napi_create_external");
    return NULL;
  }
  VX_CHECK(env, napi_type_tag_object(env, ext, &vxm_table_tag));
  return ext;
}

static napi_value aead_set_key(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  vxm_aead_table *t;
  uint32_t slot;
  void *key;
  size_t klen;
  if (vx_args(env, info, 3, 3, argv, NULL) < 0 || get_table(env, argv[0], &t) < 0 ||
      vx_get_u32(env, argv[1], "slot", &slot) < 0 || vx_get_typed(env, argv[2], napi_uint8_array, "key", &key, &klen) < 0)
    return aead_fail(env);
  if (slot >= vxm_aead_slots(t)) return aead_error(env, "aeadSetKey: slot out of range");
  if (klen != VXM_AEAD_KEY) return aead_error(env, "aeadSetKey: key must be a 32-byte Uint8Array");
  if (vxm_aead_set_key(t, slot, key) < 0) return aead_error(env, "aeadSetKey: EVP init failed");
  return NULL;
}

static napi_value aead_clear_key(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  vxm_aead_table *t;
  uint32_t slot;
  if (vx_args(env, info, 2, 2, argv, NULL) < 0 || get_table(env, argv[0], &t) < 0 ||
      vx_get_u32(env, argv[1], "slot", &slot) < 0)
    return aead_fail(env);
  if (vxm_aead_clear_key(t, slot) < 0) return aead_error(env, "aeadClearKey: slot out of range");
  return NULL;
}

static napi_value aead_batch(napi_env env, napi_callback_info info, int enc) {
  napi_value argv[7];
  vxm_aead_table *t;
  void *slab, *offs, *lens, *slots, *status;
  size_t slab_len, n_offs, n_lens, n_slots, n_status;
  uint32_t count;
  if (vx_args(env, info, 7, 7, argv, NULL) < 0 || get_table(env, argv[0], &t) < 0 ||
      vx_get_typed(env, argv[1], napi_uint8_array, "slab", &slab, &slab_len) < 0 ||
      vx_get_typed(env, argv[2], napi_uint32_array, "offs", &offs, &n_offs) < 0 ||
      vx_get_typed(env, argv[3], napi_uint32_array, "lens", &lens, &n_lens) < 0 ||
      vx_get_typed(env, argv[4], napi_uint32_array, "slots", &slots, &n_slots) < 0 ||
      vx_get_u32(env, argv[5], "count", &count) < 0 ||
      vx_get_typed(env, argv[6], napi_uint8_array, "status", &status, &n_status) < 0)
    return aead_fail(env);
  if (count > n_offs || count > n_lens || count > n_slots || count > n_status)
    return aead_error(env, "aead batch: count exceeds descriptor arrays");
  return vx_u32(env, vxm_aead_batch(t, enc, slab, slab_len, offs, lens, slots, count, status));
}

static napi_value aead_seal_batch(napi_env env, napi_callback_info info) { return aead_batch(env, info, 1); }
static napi_value aead_open_batch(napi_env env, napi_callback_info info) { return aead_batch(env, info, 0); }

static napi_value aead_seal_tso(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  vxm_aead_table *t;
  uint32_t slot, gso_type, mss;
  void *frame, *prefix, *out, *out_lens;
  size_t frame_len, prefix_len, out_len, n_lens;
  if (vx_args(env, info, 8, 8, argv, NULL) < 0 || get_table(env, argv[0], &t) < 0 ||
      vx_get_u32(env, argv[1], "slot", &slot) < 0 ||
      vx_get_typed(env, argv[2], napi_uint8_array, "frame", &frame, &frame_len) < 0 ||
      vx_get_u32(env, argv[3], "gsoType", &gso_type) < 0 || vx_get_u32(env, argv[4], "mss", &mss) < 0 ||
      vx_get_typed(env, argv[5], napi_uint8_array, "prefix", &prefix, &prefix_len) < 0 ||
      vx_get_typed(env, argv[6], napi_uint8_array, "out", &out, &out_len) < 0 ||
      vx_get_typed(env, argv[7], napi_uint32_array, "outLens", &out_lens, &n_lens) < 0)
    return aead_fail(env);
  if (prefix_len != VXM_TSO_PREFIX || n_lens < 2 || gso_type > 255 || mss == 0 || mss > 65535)
    return aead_error(env, "aeadSealTso: bad arguments (table, slot, frame, gsoType, mss, prefix[24], out, outLens)");
  return vx_i32(env, vxm_aead_seal_tso(t, slot, frame, frame_len, (uint8_t)gso_type, (uint16_t)mss, prefix, out,
                                       out_len, out_lens, n_lens));
}

int vx_aead_glue_init(napi_env env, napi_value exports) {
  static const vx_fn fns[] = {
      {"aeadCreateTable", aead_create_table}, {"aeadSetKey", aead_set_key},         {"aeadClearKey", aead_clear_key},
      {"aeadSealBatch", aead_seal_batch},     {"aeadOpenBatch", aead_open_batch},   {"aeadSealTso", aead_seal_tso},
  };
  return vx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
