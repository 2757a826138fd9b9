/*
 * native/aead_module.c — standalone module wrapper around aead.c, used only when the AEAD code is
 * built on its own (bench/micro/aead.ts via scripts in that file, or `gcc` by hand) before or
 * without the main addon (compile it with native/aead.c and native/gso.c). The main addon
 * (native/addon.c) calls vxm_aead_init() itself and does not compile this file.
 */
#include "aead.h"

static napi_value vxm_aead_module_init(napi_env env, napi_value exports) {
  if (vxm_aead_init(env, exports) != napi_ok) {
    napi_throw_error(env, "ERR_VXMESH_AEAD", "vxm_aead_init failed");
    return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, vxm_aead_module_init)
