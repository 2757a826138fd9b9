/*
 * mac1 glue (mac1.c). Argument errors are thrown with code ERR_VXMESH_MAC1.
 *
 *   mac1Check(slab: Uint8Array, offs: Uint32Array, lens: Uint32Array, count, key: 32-byte Uint8Array,
 *             status: Uint8Array): number
 *       // status[i] = 1 when message i is an initiation/response whose mac1 verifies under `key`
 *       // (HASH("mac1----" ‖ our static public key)); returns the number of 1s. One call per batch.
 *   blake2b(out: Uint8Array (1..64 bytes), key: Uint8Array (0..64 bytes), data: Uint8Array): void
 *       // keyed BLAKE2b, for tests against libsodium's crypto_generichash
 */
#include "mac1.h"
#include "napi_util.h"

#define MAC1_ERR "ERR_VXMESH_MAC1"

static napi_value mac1_check(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  void *slab, *offs, *lens, *key, *status;
  size_t slab_len, n_offs, n_lens, key_len, n_status;
  uint32_t count;
  if (vx_args(env, info, 6, 6, argv, NULL) < 0 ||
      vx_get_typed(env, argv[0], napi_uint8_array, "slab", &slab, &slab_len) < 0 ||
      vx_get_typed(env, argv[1], napi_uint32_array, "offs", &offs, &n_offs) < 0 ||
      vx_get_typed(env, argv[2], napi_uint32_array, "lens", &lens, &n_lens) < 0 ||
      vx_get_u32(env, argv[3], "count", &count) < 0 ||
      vx_get_typed(env, argv[4], napi_uint8_array, "key", &key, &key_len) < 0 ||
      vx_get_typed(env, argv[5], napi_uint8_array, "status", &status, &n_status) < 0)
    return vx_recode_pending(env, MAC1_ERR);
  if (key_len != VXM_MAC1_KEY) return vx_error(env, MAC1_ERR, "mac1Check: key must be a 32-byte Uint8Array");
  if (count > n_offs || count > n_lens || count > n_status)
    return vx_error(env, MAC1_ERR, "mac1Check: count exceeds descriptor arrays");
  return vx_u32(env, vxm_mac1_check(slab, slab_len, offs, lens, count, key, status));
}

static napi_value blake2b_fn(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  void *out, *key, *data;
  size_t out_len, key_len, data_len;
  if (vx_args(env, info, 3, 3, argv, NULL) < 0 ||
      vx_get_typed(env, argv[0], napi_uint8_array, "out", &out, &out_len) < 0 ||
      vx_get_typed(env, argv[1], napi_uint8_array, "key", &key, &key_len) < 0 ||
      vx_get_typed(env, argv[2], napi_uint8_array, "data", &data, &data_len) < 0)
    return vx_recode_pending(env, MAC1_ERR);
  if (out_len < 1 || out_len > 64 || key_len > 64) return vx_error(env, MAC1_ERR, "blake2b: out 1..64 bytes, key 0..64 bytes");
  vxm_blake2b(out, out_len, key, key_len, data, data_len);
  return NULL;
}

int vx_mac1_glue_init(napi_env env, napi_value exports) {
  static const vx_fn fns[] = {{"mac1Check", mac1_check}, {"blake2b", blake2b_fn}};
  return vx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
