/*
 * libFuzzer target: the batched mac1 check of handshake messages (mac1.c) — the first parser of a
 * received initiation/response. The input is a slab; descriptors (offset, length) come from its
 * first bytes (any values: bounds are mac1.c's to check). Each verdict is 0 or 1, the count equals
 * the 1s, a 1 only for a type-1/148 or type-2/92 message inside the slab with zero reserved bytes
 * whose mac1 equals keyed BLAKE2b-128 of its body; and a message whose mac1 field is set to that
 * MAC must pass.
 */
#include <string.h>

#include "frames.h"
#include "mac1.h"

static const uint8_t key[VXM_MAC1_KEY] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12, 13, 14, 15, 16,
                                          17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz in = {data, size};
  uint32_t count = 1 + fz_u8(&in) % 8;
  uint32_t offs[8], lens[8];
  uint8_t status[8];
  for (uint32_t i = 0; i < count; i++) {
    offs[i] = fz_u16(&in);
    lens[i] = fz_u16(&in);
  }
  uint8_t *slab = dup_exact(in.p, in.n);
  uint32_t ok = vxm_mac1_check(slab, in.n, offs, lens, count, key, status);
  uint32_t ones = 0;
  for (uint32_t i = 0; i < count; i++) {
    FUZZ_ASSERT(status[i] <= 1);
    ones += status[i];
    if (!status[i]) continue;
    FUZZ_ASSERT((size_t)offs[i] + lens[i] <= in.n);
    const uint8_t *m = slab + offs[i];
    FUZZ_ASSERT((m[0] == 1 && lens[i] == VXM_MSG_INITIATION_LEN) || (m[0] == 2 && lens[i] == VXM_MSG_RESPONSE_LEN));
    FUZZ_ASSERT(m[1] == 0 && m[2] == 0 && m[3] == 0);
    uint8_t want[VXM_MAC1_LEN];
    vxm_blake2b(want, VXM_MAC1_LEN, key, VXM_MAC1_KEY, m, lens[i] - 32);
    FUZZ_ASSERT(memcmp(want, m + lens[i] - 32, VXM_MAC1_LEN) == 0);
  }
  FUZZ_ASSERT(ok == ones);
  /* the first descriptor made well-formed with a genuine mac1 must pass */
  if (in.n >= VXM_MSG_RESPONSE_LEN) {
    uint32_t len = in.n >= VXM_MSG_INITIATION_LEN ? VXM_MSG_INITIATION_LEN : VXM_MSG_RESPONSE_LEN;
    uint32_t off = (uint32_t)((offs[0] % (in.n - len + 1)));
    uint8_t *m = slab + off;
    m[0] = len == VXM_MSG_INITIATION_LEN ? 1 : 2;
    m[1] = m[2] = m[3] = 0;
    vxm_blake2b(m + len - 32, VXM_MAC1_LEN, key, VXM_MAC1_KEY, m, len - 32);
    uint8_t st;
    FUZZ_ASSERT(vxm_mac1_check(slab, in.n, &off, &len, 1, key, &st) == 1 && st == 1);
    m[len - 20] ^= 1; /* one bit of mac1 flipped: refused */
    FUZZ_ASSERT(vxm_mac1_check(slab, in.n, &off, &len, 1, key, &st) == 0 && st == 0);
  }
  free(slab);
  return 0;
}
