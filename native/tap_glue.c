/*
 * TAP glue: tapOpen, tapSetOffload, tapRead, tapWrite, tapReadVnet, tapWriteVnet (syscalls in tap.c).
 * Writes take an optional trailing `status: Int32Array` (length >= count): see tap.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <unistd.h>

#include "handle.h"
#include "napi_util.h"
#include "tap.h"

/* tapOpen(name, flags, stats) → [handle, kernelName, created] */
static napi_value js_tap_open(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char name[256], out_name[IFNAMSIZ];
  uint32_t flags;
  if (vx_args(env, info, 3, 3, argv, NULL) < 0) return NULL;
  if (vx_get_string(env, argv[0], "name", name, sizeof name) < 0) return NULL;
  if (vx_get_u32(env, argv[1], "flags", &flags) < 0) return NULL;
  if (flags & ~(VX_TAP_F_VNET_HDR | VX_TAP_F_MULTI_QUEUE | VX_TAP_F_EXCL)) return vx_range_error(env, "unknown TAP flags");
  const char *syscall = "open";
  int created = 0;
  int fd = vx_tap_open(name, flags, out_name, &created, &syscall);
  if (fd < 0) {
    vx_throw_errno(env, -fd, syscall);
    return NULL;
  }
  vx_handle *h = vx_handle_new(VX_KIND_TAP);
  if (h == NULL) {
    close(fd);
    vx_throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  h->tap_fd = fd;
  h->tap_flags = flags;
  napi_value ext = vx_handle_wrap(env, h, argv[2]);
  if (ext == NULL) return NULL;
  napi_value arr, nm, cr;
  VX_CHECK(env, napi_create_array_with_length(env, 3, &arr));
  VX_CHECK(env, napi_create_string_utf8(env, out_name, NAPI_AUTO_LENGTH, &nm));
  VX_CHECK(env, napi_get_boolean(env, created != 0, &cr));
  VX_CHECK(env, napi_set_element(env, arr, 0, ext));
  VX_CHECK(env, napi_set_element(env, arr, 1, nm));
  VX_CHECK(env, napi_set_element(env, arr, 2, cr));
  return arr;
}

/* tapSetOffload(handle, offloads) */
static napi_value js_tap_set_offload(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  vx_handle *h;
  uint32_t off;
  if (vx_args(env, info, 2, 2, argv, NULL) < 0) return NULL;
  if (vx_handle_get_open(env, argv[0], VX_KIND_TAP, "ioctl(TUNSETOFFLOAD)", &h) < 0) return NULL;
  if (vx_get_u32(env, argv[1], "offloads", &off) < 0) return NULL;
  /* Without virtio headers the kernel would hand over GSO frames we could not recognise. */
  if (!(h->tap_flags & VX_TAP_F_VNET_HDR)) return vx_error(env, "ERR_VXMESH_VNET", "offloads need a TAP opened with vnetHdr");
  const char *syscall = "ioctl(TUNSETOFFLOAD)";
  int rc = vx_tap_set_offload(h->tap_fd, off, &syscall);
  if (rc < 0) vx_throw_errno(env, -rc, syscall);
  return NULL;
}

/* The arguments of a read: (handle, slab, slotSize, headroom, slots, lens). */
typedef struct rx_args {
  vx_handle *h;
  void *slab, *lens;
  size_t slab_len, lens_len;
  uint32_t slot_size, headroom, slots;
} rx_args;

static int get_rx(napi_env env, napi_value *argv, const char *syscall, rx_args *a) {
  if (vx_handle_get_open(env, argv[0], VX_KIND_TAP, syscall, &a->h) < 0) return -1;
  if (vx_get_typed(env, argv[1], napi_uint8_array, "slab", &a->slab, &a->slab_len) < 0) return -1;
  if (vx_get_u32(env, argv[2], "slotSize", &a->slot_size) < 0) return -1;
  if (vx_get_u32(env, argv[3], "headroom", &a->headroom) < 0) return -1;
  if (vx_get_u32(env, argv[4], "slots", &a->slots) < 0) return -1;
  if (vx_get_typed(env, argv[5], napi_uint32_array, "lens", &a->lens, &a->lens_len) < 0) return -1;
  return vx_check_rx(env, a->slab_len, a->slot_size, a->headroom, a->slots, a->lens_len);
}

/* The arguments of a write: (handle, slab, offs, lens, count, ...). */
typedef struct tx_args {
  vx_handle *h;
  void *slab, *offs, *lens;
  size_t slab_len, offs_len, lens_len;
  uint32_t count;
} tx_args;

static int get_tx(napi_env env, napi_value *argv, const char *syscall, tx_args *a) {
  if (vx_handle_get_open(env, argv[0], VX_KIND_TAP, syscall, &a->h) < 0) return -1;
  if (vx_get_typed(env, argv[1], napi_uint8_array, "slab", &a->slab, &a->slab_len) < 0) return -1;
  if (vx_get_typed(env, argv[2], napi_uint32_array, "offs", &a->offs, &a->offs_len) < 0) return -1;
  if (vx_get_typed(env, argv[3], napi_uint32_array, "lens", &a->lens, &a->lens_len) < 0) return -1;
  if (vx_get_u32(env, argv[4], "count", &a->count) < 0) return -1;
  return vx_check_tx(env, a->slab_len, a->offs, a->offs_len, a->lens, a->lens_len, a->count);
}

static int get_status(napi_env env, napi_value v, uint32_t count, int32_t **status) {
  size_t n = 0;
  if (vx_get_typed_opt(env, v, napi_int32_array, "status", (void **)status, &n) < 0) return -1;
  return vx_check_status(env, *status, n, count);
}

/* tapRead(handle, slab, slotSize, headroom, slots, lens) → n */
static napi_value js_tap_read(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  rx_args a;
  if (vx_args(env, info, 6, 6, argv, NULL) < 0) return NULL;
  if (get_rx(env, argv, "read", &a) < 0) return NULL;
  if (a.h->tap_flags & VX_TAP_F_VNET_HDR)
    return vx_error(env, "ERR_VXMESH_VNET", "this TAP was opened with vnetHdr: read it with tapReadVnet");
  int n = vx_tap_read_batch(a.h->tap_fd, a.slab, a.slot_size, a.headroom, a.slots, a.lens,
                            &a.h->stats[VX_STAT_RX_TRUNCATED]);
  return vx_result_or_throw(env, n, "read");
}

/* tapWrite(handle, slab, offs, lens, count, status?) → consumed */
static napi_value js_tap_write(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  tx_args a;
  int32_t *status;
  if (vx_args(env, info, 5, 6, argv, NULL) < 0) return NULL;
  if (get_tx(env, argv, "write", &a) < 0) return NULL;
  if (get_status(env, argv[5], a.count, &status) < 0) return NULL;
  uint32_t n;
  if (a.h->tap_flags & VX_TAP_F_VNET_HDR) {
    /* Every write needs a virtio header: plain frames, coalesced where possible. */
    n = vx_tap_write_vnet(a.h->tap_fd, a.slab, a.offs, a.lens, a.count, 64, &a.h->udp_coalescing, status, a.h->stats);
  } else {
    n = vx_tap_write_batch(a.h->tap_fd, a.slab, a.offs, a.lens, a.count, status, a.h->stats);
  }
  return vx_u32(env, n);
}

/* tapReadVnet(handle, slab, slotSize, headroom, slots, lens, gso: Uint16Array(2*slots)) → n */
static napi_value js_tap_read_vnet(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  rx_args a;
  void *gso;
  size_t gso_len;
  if (vx_args(env, info, 7, 7, argv, NULL) < 0) return NULL;
  if (get_rx(env, argv, "readv", &a) < 0) return NULL;
  if (vx_get_typed(env, argv[6], napi_uint16_array, "gso", &gso, &gso_len) < 0) return NULL;
  if (gso_len < (size_t)a.slots * 2) return vx_range_error(env, "gso is shorter than 2 * slots");
  if (!(a.h->tap_flags & VX_TAP_F_VNET_HDR))
    return vx_error(env, "ERR_VXMESH_VNET", "this TAP was opened without vnetHdr: read it with tapRead");
  int n = vx_tap_read_vnet(a.h->tap_fd, a.slab, a.slot_size, a.headroom, a.slots, a.lens, gso, a.h->stats);
  return vx_result_or_throw(env, n, "readv");
}

/* tapWriteVnet(handle, slab, offs, lens, count, maxMerge, status?) → consumed (maxMerge 1 = no coalescing) */
static napi_value js_tap_write_vnet(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  tx_args a;
  uint32_t max_merge;
  int32_t *status;
  if (vx_args(env, info, 6, 7, argv, NULL) < 0) return NULL;
  if (get_tx(env, argv, "writev", &a) < 0) return NULL;
  if (vx_get_u32(env, argv[5], "maxMerge", &max_merge) < 0) return NULL;
  if (max_merge < 1 || max_merge > 64) return vx_range_error(env, "maxMerge must be in [1, 64]");
  if (get_status(env, argv[6], a.count, &status) < 0) return NULL;
  if (!(a.h->tap_flags & VX_TAP_F_VNET_HDR))
    return vx_error(env, "ERR_VXMESH_VNET", "this TAP was opened without vnetHdr: write it with tapWrite");
  return vx_u32(env, vx_tap_write_vnet(a.h->tap_fd, a.slab, a.offs, a.lens, a.count, (int)max_merge,
                                       &a.h->udp_coalescing, status, a.h->stats));
}

/* tapWriteGso(handle, slab, offs, lens, gso: Uint16Array(2*count), count, maxMerge, status?) → consumed (tap.h vx_tap_write_gso) */
static napi_value js_tap_write_gso(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  tx_args a;
  void *gso;
  size_t gso_len;
  uint32_t max_merge;
  int32_t *status;
  if (vx_args(env, info, 7, 8, argv, NULL) < 0) return NULL;
  napi_value txv[5] = {argv[0], argv[1], argv[2], argv[3], argv[5]};
  if (get_tx(env, txv, "writev", &a) < 0) return NULL;
  if (vx_get_typed(env, argv[4], napi_uint16_array, "gso", &gso, &gso_len) < 0) return NULL;
  if (gso_len < (size_t)a.count * 2) return vx_range_error(env, "gso is shorter than 2 * count");
  if (vx_get_u32(env, argv[6], "maxMerge", &max_merge) < 0) return NULL;
  if (max_merge < 1 || max_merge > 64) return vx_range_error(env, "maxMerge must be in [1, 64]");
  if (get_status(env, argv[7], a.count, &status) < 0) return NULL;
  if (!(a.h->tap_flags & VX_TAP_F_VNET_HDR))
    return vx_error(env, "ERR_VXMESH_VNET", "this TAP was opened without vnetHdr: write it with tapWrite");
  return vx_u32(env, vx_tap_write_gso(a.h->tap_fd, a.slab, a.offs, a.lens, gso, a.count, (int)max_merge,
                                      &a.h->udp_coalescing, status, a.h->stats));
}

int vx_tap_glue_init(napi_env env, napi_value exports) {
  static const vx_fn fns[] = {
      {"tapOpen", js_tap_open},         {"tapSetOffload", js_tap_set_offload}, {"tapRead", js_tap_read},
      {"tapWrite", js_tap_write},       {"tapReadVnet", js_tap_read_vnet},     {"tapWriteVnet", js_tap_write_vnet},
      {"tapWriteGso", js_tap_write_gso},
  };
  return vx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
