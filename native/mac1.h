/*
 * native/mac1.h — batched mac1 check of handshake messages (src/crypto: noise.ts MAC = keyed
 * BLAKE2b-128; handshake.ts checkMac1). No Node headers: mac1_glue.c registers the JS function.
 * Used by the session layer to drop forged initiations/responses in one call per batch, before any
 * of them reaches per-message JS work or Diffie-Hellman.
 */
#ifndef VXMESH_MAC1_H
#define VXMESH_MAC1_H

#include <stddef.h>
#include <stdint.h>

#define VXM_MAC1_KEY 32
#define VXM_MAC1_LEN 16
#define VXM_MSG_INITIATION_LEN 148
#define VXM_MSG_RESPONSE_LEN 92

/* Keyed BLAKE2b (RFC 7693) with a digest of `outlen` (1..64) bytes and a key of `keylen` (0..64). */
void vxm_blake2b(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen, const uint8_t *in, size_t inlen);

/*
 * For each message i in [0, count) at slab[offs[i]], lens[i] bytes: status[i] = 1 when it is an
 * initiation (type 1, 148 bytes) or a response (type 2, 92 bytes) with three zero reserved bytes
 * and its mac1 (16 bytes at len − 32) equals MAC(key, message[0 .. len − 32)); else 0 (wrong
 * type/length, outside the slab, or a bad mac1). Constant-time compare. Returns the number of 1s.
 */
uint32_t vxm_mac1_check(const uint8_t *slab, size_t slab_len, const uint32_t *offs, const uint32_t *lens,
                        uint32_t count, const uint8_t key[VXM_MAC1_KEY], uint8_t *status);

#endif
