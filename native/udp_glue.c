/*
 * UDP glue: udpOpen, udpRecv, udpSend, udpSendGso, udpSetGso, udpSetGro (syscalls in udp.c).
 * Sends take an optional trailing `status: Int32Array` (length >= count): see udp.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "handle.h"
#include "napi_util.h"
#include "udp.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/* udpOpen(family, address, port, sourcePorts, bufBytes, stats) → [handle, port, srcPorts[]] */
static napi_value js_udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  char address[INET6_ADDRSTRLEN + 8];
  uint32_t family, port, nsrc, buf;
  if (vx_args(env, info, 6, 6, argv, NULL) < 0) return NULL;
  if (vx_get_u32(env, argv[0], "family", &family) < 0) return NULL;
  if (family != 4 && family != 6) return vx_range_error(env, "family must be 4 or 6");
  if (vx_get_string(env, argv[1], "address", address, sizeof address) < 0) return NULL;
  if (vx_get_u32(env, argv[2], "port", &port) < 0) return NULL;
  if (port > 65535) return vx_range_error(env, "port must be in [0, 65535]");
  if (vx_get_u32(env, argv[3], "sourcePorts", &nsrc) < 0) return NULL;
  if (nsrc < 1 || nsrc > VX_UDP_MAX_SRC) return vx_range_error(env, "sourcePorts must be in [1, 64]");
  if (vx_get_u32(env, argv[4], "bufBytes", &buf) < 0) return NULL;
  if (buf > 0x40000000u) return vx_range_error(env, "bufBytes must be at most 1 GiB");
  vx_handle *h = vx_handle_new(VX_KIND_UDP);
  if (h == NULL) {
    vx_throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  const char *syscall = "socket";
  int rc = vx_udp_open(&h->udp, (int)family, address, (uint16_t)port, (int)nsrc, (int)buf, &syscall);
  if (rc < 0) {
    free(h);
    vx_throw_errno(env, -rc, syscall);
    return NULL;
  }
  napi_value ext = vx_handle_wrap(env, h, argv[5]);
  if (ext == NULL) return NULL;
  napi_value arr, ports, v;
  VX_CHECK(env, napi_create_array_with_length(env, 3, &arr));
  VX_CHECK(env, napi_create_array_with_length(env, (size_t)h->udp.nsrc, &ports));
  for (int i = 0; i < h->udp.nsrc; i++) {
    VX_CHECK(env, napi_create_uint32(env, h->udp.src_port[i], &v));
    VX_CHECK(env, napi_set_element(env, ports, (uint32_t)i, v));
  }
  VX_CHECK(env, napi_set_element(env, arr, 0, ext));
  VX_CHECK(env, napi_create_uint32(env, h->udp.port, &v));
  VX_CHECK(env, napi_set_element(env, arr, 1, v));
  VX_CHECK(env, napi_set_element(env, arr, 2, ports));
  return arr;
}

/* udpRecv(handle, slab, slotSize, headroom, slots, lens, addrs) → n */
static napi_value js_udp_recv(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  vx_handle *h;
  void *slab, *lens, *addrs;
  size_t slab_len, lens_len, addrs_len;
  uint32_t slot_size, headroom, slots;
  if (vx_args(env, info, 7, 7, argv, NULL) < 0) return NULL;
  if (vx_handle_get_open(env, argv[0], VX_KIND_UDP, "recvmmsg", &h) < 0) return NULL;
  if (vx_get_typed(env, argv[1], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (vx_get_u32(env, argv[2], "slotSize", &slot_size) < 0) return NULL;
  if (vx_get_u32(env, argv[3], "headroom", &headroom) < 0) return NULL;
  if (vx_get_u32(env, argv[4], "slots", &slots) < 0) return NULL;
  if (vx_get_typed(env, argv[5], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (vx_get_typed(env, argv[6], napi_uint8_array, "addrs", &addrs, &addrs_len) < 0) return NULL;
  if (vx_check_rx(env, slab_len, slot_size, headroom, slots, lens_len) < 0) return NULL;
  if ((uint64_t)slots * VX_ADDR_LEN > addrs_len) return vx_range_error(env, "addrs is shorter than slots * 18");
  int n = vx_udp_recv_batch(&h->udp, slab, slot_size, headroom, slots, lens, addrs, h->stats);
  vx_handle_arm_idle(h);
  return vx_result_or_throw(env, n, "recvmmsg");
}

/* The arguments every send shares: (handle, slab, offs, lens, addrs, srcIdx, ...). */
typedef struct tx_args {
  vx_handle *h;
  void *slab, *offs, *lens, *addrs, *src;
  size_t slab_len, offs_len, lens_len, addrs_len, src_len;
} tx_args;

static int get_tx(napi_env env, napi_value *argv, const char *syscall, tx_args *a) {
  if (vx_handle_get_open(env, argv[0], VX_KIND_UDP, syscall, &a->h) < 0) return -1;
  if (vx_get_typed(env, argv[1], napi_uint8_array, "slab", &a->slab, &a->slab_len) < 0) return -1;
  if (vx_get_typed(env, argv[2], napi_uint32_array, "offs", &a->offs, &a->offs_len) < 0) return -1;
  if (vx_get_typed(env, argv[3], napi_uint32_array, "lens", &a->lens, &a->lens_len) < 0) return -1;
  if (vx_get_typed(env, argv[4], napi_uint8_array, "addrs", &a->addrs, &a->addrs_len) < 0) return -1;
  if (vx_get_typed(env, argv[5], napi_uint8_array, "srcIdx", &a->src, &a->src_len) < 0) return -1;
  return 0;
}

static int check_tx(napi_env env, const tx_args *a, uint32_t count, napi_value status_v, int32_t **status) {
  size_t n = 0;
  if (vx_check_tx(env, a->slab_len, a->offs, a->offs_len, a->lens, a->lens_len, count) < 0) return -1;
  if ((uint64_t)count * VX_ADDR_LEN > a->addrs_len) return vx_range_error(env, "addrs is shorter than count * 18"), -1;
  if (count > a->src_len) return vx_range_error(env, "srcIdx is shorter than count"), -1;
  if (vx_get_typed_opt(env, status_v, napi_int32_array, "status", (void **)status, &n) < 0) return -1;
  return vx_check_status(env, *status, n, count);
}

/* udpSend(handle, slab, offs, lens, addrs, srcIdx, count, status?) → consumed */
static napi_value js_udp_send(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  tx_args a;
  uint32_t count;
  int32_t *status;
  if (vx_args(env, info, 7, 8, argv, NULL) < 0) return NULL;
  if (get_tx(env, argv, "sendmmsg", &a) < 0) return NULL;
  if (vx_get_u32(env, argv[6], "count", &count) < 0) return NULL;
  if (check_tx(env, &a, count, argv[7], &status) < 0) return NULL;
  return vx_u32(env, vx_udp_send_batch(&a.h->udp, a.slab, a.offs, a.lens, a.addrs, a.src, count, status, a.h->stats));
}

/* udpSendGso(handle, slab, offs, lens, addrs, srcIdx, gso: Uint16Array(2*count), prefixLen, count, status?) → consumed */
static napi_value js_udp_send_gso(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  tx_args a;
  void *gso;
  size_t gso_len;
  uint32_t prefix_len, count;
  int32_t *status;
  if (vx_args(env, info, 9, 10, argv, NULL) < 0) return NULL;
  if (get_tx(env, argv, "sendmsg", &a) < 0) return NULL;
  if (vx_get_typed(env, argv[6], napi_uint16_array, "gso", &gso, &gso_len) < 0) return NULL;
  if (vx_get_u32(env, argv[7], "prefixLen", &prefix_len) < 0) return NULL;
  if (vx_get_u32(env, argv[8], "count", &count) < 0) return NULL;
  if (prefix_len > 64) return vx_range_error(env, "prefixLen must be at most 64");
  if (check_tx(env, &a, count, argv[9], &status) < 0) return NULL;
  if ((uint64_t)count * 2 > gso_len) return vx_range_error(env, "gso is shorter than 2 * count");
  vx_handle *h = a.h;
  if (h->scratch == NULL) {
    h->scratch = malloc(VX_GSO_SCRATCH);
    if (h->scratch == NULL) {
      vx_throw_errno(env, ENOMEM, "malloc");
      return NULL;
    }
  }
  return vx_u32(env, vx_udp_send_gso(&h->udp, a.slab, a.offs, a.lens, a.addrs, a.src, gso, prefix_len, count, status,
                                     h->stats, h->scratch));
}

/* udpSetGso(handle, enabled) → whether UDP_SEGMENT will be used (false if the kernel lacks it). */
static napi_value js_udp_set_gso(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  vx_handle *h;
  bool on;
  if (vx_args(env, info, 2, 2, argv, NULL) < 0) return NULL;
  if (vx_handle_get_open(env, argv[0], VX_KIND_UDP, "setsockopt(UDP_SEGMENT)", &h) < 0) return NULL;
  if (vx_get_bool(env, argv[1], &on) < 0) return NULL;
  int zero = 0;
  h->udp.gso = on && setsockopt(h->udp.fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
  return vx_bool(env, h->udp.gso != 0);
}

/* udpSetGro(handle, enabled) → whether UDP GRO receive is on (datagrams are still handed out one per slot). */
static napi_value js_udp_set_gro(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  vx_handle *h;
  bool on;
  if (vx_args(env, info, 2, 2, argv, NULL) < 0) return NULL;
  if (vx_handle_get_open(env, argv[0], VX_KIND_UDP, "setsockopt(UDP_GRO)", &h) < 0) return NULL;
  if (vx_get_bool(env, argv[1], &on) < 0) return NULL;
  const char *sc = "setsockopt(UDP_GRO)";
  int rc = vx_udp_set_gro(&h->udp, on, &sc);
  if (rc < 0 && on) {
    vx_throw_errno(env, -rc, sc);
    return NULL;
  }
  return vx_bool(env, h->udp.gro != 0);
}

int vx_udp_glue_init(napi_env env, napi_value exports) {
  static const vx_fn fns[] = {
      {"udpOpen", js_udp_open},          {"udpRecv", js_udp_recv},         {"udpSend", js_udp_send},
      {"udpSendGso", js_udp_send_gso},   {"udpSetGso", js_udp_set_gso},    {"udpSetGro", js_udp_set_gro},
  };
  return vx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
