/*
 * Packet-work glue without a device (gso.c, tap.c's iovec builder): gsoSegment and groCoalesce,
 * the segmentation of udpSendGso and the coalescing of tapWriteVnet on their own (tests,
 * micro-benchmarks).
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/uio.h>

#include "gso.h"
#include "napi_util.h"
#include "tap.h"

/* gsoSegment(frame, gsoType, mss, prefix, out, segLens) → segments (-1 not segmentable, -2 too big).
 * Segment i is at out[i * stride] where stride = prefix.length + headers + mss (returned in
 * segLens[segLens.length-1]). */
static napi_value js_gso_segment(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  void *frame, *prefix, *out, *seg_lens;
  size_t frame_len, prefix_len, out_len, seg_cap;
  uint32_t type, mss;
  if (vx_args(env, info, 6, 6, argv, NULL) < 0) return NULL;
  if (vx_get_typed(env, argv[0], napi_uint8_array, "frame", &frame, &frame_len) < 0) return NULL;
  if (vx_get_u32(env, argv[1], "gsoType", &type) < 0) return NULL;
  if (vx_get_u32(env, argv[2], "mss", &mss) < 0) return NULL;
  if (vx_get_typed(env, argv[3], napi_uint8_array, "prefix", &prefix, &prefix_len) < 0) return NULL;
  if (vx_get_typed(env, argv[4], napi_uint8_array, "out", &out, &out_len) < 0) return NULL;
  if (vx_get_typed(env, argv[5], napi_uint32_array, "segLens", &seg_lens, &seg_cap) < 0) return NULL;
  if (type > 255 || mss > 65535) return vx_range_error(env, "gsoType/mss out of range");
  if (seg_cap < 2) return vx_range_error(env, "segLens needs at least 2 elements");
  uint32_t stride = 0;
  int n = vx_tso_segment(frame, frame_len, (uint8_t)type, (uint16_t)mss, prefix, prefix_len, out, out_len, seg_lens,
                         (int)(seg_cap - 1 < 0x7fffffff ? seg_cap - 1 : 0x7fffffff), &stride);
  ((uint32_t *)seg_lens)[seg_cap - 1] = stride;
  return vx_i32(env, n);
}

/* groCoalesce(slab, offs, lens, count, maxMerge, out, info: Uint32Array(3*count)) → frames produced.
 * Output frame i is written to out at info[3i] (length info[3i+1], virtio_net_hdr first) and merged
 * info[3i+2] input frames (TCP runs and UDP datagram runs, as on a TAP whose kernel takes UDP_L4). */
static napi_value js_gro_coalesce(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  void *slab, *offs, *lens, *out, *oinfo;
  size_t slab_len, offs_len, lens_len, out_len, oinfo_len;
  uint32_t count, max_merge;
  if (vx_args(env, info, 7, 7, argv, NULL) < 0) return NULL;
  if (vx_get_typed(env, argv[0], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (vx_get_typed(env, argv[1], napi_uint32_array, "offs", &offs, &offs_len) < 0) return NULL;
  if (vx_get_typed(env, argv[2], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (vx_get_u32(env, argv[3], "count", &count) < 0) return NULL;
  if (vx_get_u32(env, argv[4], "maxMerge", &max_merge) < 0) return NULL;
  if (vx_get_typed(env, argv[5], napi_uint8_array, "out", &out, &out_len) < 0) return NULL;
  if (vx_get_typed(env, argv[6], napi_uint32_array, "info", &oinfo, &oinfo_len) < 0) return NULL;
  if (max_merge < 1 || max_merge > 64) return vx_range_error(env, "maxMerge must be in [1, 64]");
  if (vx_check_tx(env, slab_len, offs, offs_len, lens, lens_len, count) < 0) return NULL;
  if ((uint64_t)count * 3 > oinfo_len) return vx_range_error(env, "info is shorter than 3 * count");
  uint32_t j = 0, produced = 0;
  size_t at = 0;
  vx_merge m;
  uint32_t plens[64];
  struct iovec iov[2 + 64];
  uint32_t *inf = oinfo;
  while (j < count) {
    int niov = vx_tap_vnet_iov(slab, (uint32_t *)offs + j, (uint32_t *)lens + j, count - j, (int)max_merge, 1, &m,
                               plens, iov);
    size_t start = at;
    for (int k = 0; k < niov; k++) {
      if (at + iov[k].iov_len > out_len) return vx_range_error(env, "out is too small");
      memcpy((uint8_t *)out + at, iov[k].iov_base, iov[k].iov_len);
      at += iov[k].iov_len;
    }
    inf[3 * produced] = (uint32_t)start;
    inf[3 * produced + 1] = (uint32_t)(at - start);
    inf[3 * produced + 2] = (uint32_t)m.count;
    produced++;
    j += (uint32_t)m.count;
  }
  return vx_u32(env, produced);
}

int vx_gso_glue_init(napi_env env, napi_value exports) {
  static const vx_fn fns[] = {{"gsoSegment", js_gso_segment}, {"groCoalesce", js_gro_coalesce}};
  return vx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
