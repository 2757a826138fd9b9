/*
 * native/aead.h — batched AEAD seal/open in place, over Node's bundled OpenSSL (libcrypto EVP).
 * Owned by the crypto work (src/crypto). The main addon calls vxm_aead_init() once from its
 * module init; the functions it registers are documented in native/aead.c and src/crypto/aead.ts.
 */
#ifndef VXMESH_AEAD_H
#define VXMESH_AEAD_H

#include <node_api.h>

/* Adds aeadCreateTable/aeadSetKey/aeadClearKey/aeadSealBatch/aeadOpenBatch to `exports`. */
napi_status vxm_aead_init(napi_env env, napi_value exports);

#endif
