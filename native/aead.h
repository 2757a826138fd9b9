/*
 * native/aead.h — batched AEAD seal/open in place, over Node's bundled OpenSSL (libcrypto EVP).
 * No Node headers: aead_glue.c registers the JS functions (documented there and in
 * src/crypto/aead.ts).
 */
#ifndef VXMESH_AEAD_H
#define VXMESH_AEAD_H

#include <stddef.h>
#include <stdint.h>

#define VXM_AEAD_HDR 16
#define VXM_AEAD_TAG 16
#define VXM_AEAD_KEY 32
#define VXM_AEAD_MAX_SLOTS 65536
#define VXM_TSO_PREFIX (VXM_AEAD_HDR + 8) /* data header + VXLAN header */
#define VXM_TSO_MAX_SEGS 256

typedef struct vxm_aead_table vxm_aead_table;

/* alg 0 = AES-256-GCM, 1 = ChaCha20-Poly1305; slots in [1, 65536]. NULL on bad arguments / ENOMEM. */
vxm_aead_table *vxm_aead_table_new(int alg, uint32_t slots);
void vxm_aead_table_free(vxm_aead_table *t);
uint32_t vxm_aead_slots(const vxm_aead_table *t);
/* 0; -1 slot out of range; -2 EVP failure (the slot is then empty). */
int vxm_aead_set_key(vxm_aead_table *t, uint32_t slot, const uint8_t key[VXM_AEAD_KEY]);
/* 0; -1 slot out of range. */
int vxm_aead_clear_key(vxm_aead_table *t, uint32_t slot);

/*
 * Seals (enc = 1; lens = plaintext lengths) or opens (enc = 0; lens = whole packet lengths, header
 * + ciphertext + tag) packets [0, count) in place. status[i] = 1 when packet i was sealed /
 * authenticated and decrypted, else 0 (no key in its slot, outside the slab, too short, bad tag).
 * Returns the number of 1s. The caller checks count against the array lengths.
 */
uint32_t vxm_aead_batch(vxm_aead_table *t, int enc, uint8_t *slab, size_t slab_len, const uint32_t *offs,
                        const uint32_t *lens, const uint32_t *slots, uint32_t count, uint8_t *status);

/*
 * Cuts TSO super-frame `frame` into MSS-sized TCP segments (gso.c's vx_tso_segment_gap, a tag gap after each) and seals each in place
 * as a data message: prefix = data header (16, counter = base) + VXLAN header (8); segment i gets
 * counter base + i. Sealed datagram i is at out[i * stride], out_lens[i] bytes; every one but the
 * last is exactly `stride` bytes (the UDP GSO layout); stride is stored in out_lens[n_lens - 1].
 * Returns the segment count; -1 not a segmentable frame; -2 out/out_lens too small; -3 no key.
 */
int vxm_aead_seal_tso(vxm_aead_table *t, uint32_t slot, const uint8_t *frame, size_t frame_len, uint8_t gso_type,
                      uint16_t mss, const uint8_t prefix[VXM_TSO_PREFIX], uint8_t *out, size_t out_len,
                      uint32_t *out_lens, size_t n_lens);

#endif
