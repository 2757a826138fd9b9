/*
 * UDP glue: udpOpen, udpRecv, udpSend, udpSendGso, udpSetGso, udpSetGro (syscalls in udp.c), groRunsSplit
 * (udpRecv's GRO run split without a socket).
 * Sends take an optional trailing `status: Int32Array` (length >= count): see udp.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * The run arrays of udpRecv / groRunsSplit (udp.h vx_rx_runs): offs Uint32Array, gso Uint16Array
 * (2 per slot), segs Uint16Array, wire Uint32Array (each at least `slots` long), superOff, maxFrame;
 * the slab must hold the run area (VX_GRO_BUFS * VX_GRO_BUFSZ bytes from superOff).
 */
static int get_runs(napi_env env, napi_value *argv, size_t slab_len, uint32_t slots, uint32_t area, vx_rx_runs *r) {
  void *offs, *gso, *segs, *wire;
  size_t offs_len, gso_len, segs_len, wire_len;
  if (vx_get_typed(env, argv[0], napi_uint32_array, "runOffs", &offs, &offs_len) < 0) return -1;
  if (vx_get_typed(env, argv[1], napi_uint16_array, "runGso", &gso, &gso_len) < 0) return -1;
  if (vx_get_typed(env, argv[2], napi_uint16_array, "runSegs", &segs, &segs_len) < 0) return -1;
  if (vx_get_typed(env, argv[3], napi_uint32_array, "runWire", &wire, &wire_len) < 0) return -1;
  if (vx_get_u32(env, argv[4], "superOff", &r->super_off) < 0) return -1;
  if (vx_get_u32(env, argv[5], "maxFrame", &r->max_frame) < 0) return -1;
  r->used = 0;
  if (offs_len < slots || segs_len < slots || wire_len < slots || gso_len < (size_t)slots * 2)
    return vx_range_error(env, "run arrays are shorter than slots"), -1;
  if ((uint64_t)r->super_off + area > slab_len) return vx_range_error(env, "slab has no room for the run area"), -1;
  r->offs = offs;
  r->gso = gso;
  r->segs = segs;
  r->wire = wire;
  return 0;
}

/*
 * udpRecv(handle, slab, slotSize, headroom, slots, lens, addrs[, runOffs, runGso, runSegs, runWire, superOff, maxFrame]) → n
 * With the run arrays: GRO runs as one descriptor each (udp.h vx_rx_runs).
 */
static napi_value js_udp_recv(napi_env env, napi_callback_info info) {
  napi_value argv[13];
  size_t argc = 0;
  vx_handle *h;
  void *slab, *lens, *addrs;
  size_t slab_len, lens_len, addrs_len;
  uint32_t slot_size, headroom, slots;
  vx_rx_runs runs;
  if (vx_args(env, info, 7, 13, argv, &argc) < 0) return NULL;
  if (vx_handle_get_open(env, argv[0], VX_KIND_UDP, "recvmmsg", &h) < 0) return NULL;
  if (vx_get_typed(env, argv[1], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (vx_get_u32(env, argv[2], "slotSize", &slot_size) < 0) return NULL;
  if (vx_get_u32(env, argv[3], "headroom", &headroom) < 0) return NULL;
  if (vx_get_u32(env, argv[4], "slots", &slots) < 0) return NULL;
  if (vx_get_typed(env, argv[5], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (vx_get_typed(env, argv[6], napi_uint8_array, "addrs", &addrs, &addrs_len) < 0) return NULL;
  if (vx_check_rx(env, slab_len, slot_size, headroom, slots, lens_len) < 0) return NULL;
  if ((uint64_t)slots * VX_ADDR_LEN > addrs_len) return vx_range_error(env, "addrs is shorter than slots * 18");
  int with_runs = argc > 7 && !vx_is_nullish(env, argv[7]);
  if (with_runs) {
    if (argc < 13) return vx_range_error(env, "udpRecv: runs need runOffs, runGso, runSegs, runWire, superOff, maxFrame");
    if (get_runs(env, argv + 7, slab_len, slots, VX_GRO_BUFS * VX_GRO_BUFSZ, &runs) < 0) return NULL;
    if ((uint64_t)slots * slot_size > runs.super_off) return vx_range_error(env, "the run area overlaps the slots");
  }
  int n = vx_udp_recv_batch(&h->udp, slab, slot_size, headroom, slots, lens, addrs, h->stats, with_runs ? &runs : NULL);
  vx_handle_arm_idle(h);
  return vx_result_or_throw(env, n, "recvmmsg");
}

/*
 * groRunsSplit(bufs, blens, bsegs, baddrs, nbufs, slab, slotSize, headroom, slots, done, lens, addrs, runOffs,
 * runGso, runSegs, runWire, superOff, maxFrame, stats, state) → descriptors filled: udpRecv's split of nbufs
 * (<= 8) UDP GRO buffers with runs, without a socket (the in-memory twin, tests). Buffer b is
 * bufs[b * GRO_BUF_SIZE, + blens[b]), cut at bsegs[b] (0 = one datagram), from the sender record
 * baddrs[b * 18]. Descriptors from `done` on; state (Uint32Array(3): buffer, offset, run area bytes used in
 * this receive call) is where the split starts and, on return, where it stopped (state[0] == nbufs: every
 * datagram handed out).
 */
static napi_value js_gro_runs_split(napi_env env, napi_callback_info info) {
  napi_value argv[20];
  void *bufs, *blens, *bsegs, *baddrs, *slab, *lens, *addrs, *stats, *state;
  size_t bufs_len, blens_len, bsegs_len, baddrs_len, slab_len, lens_len, addrs_len, stats_len, state_len;
  uint32_t nbufs, slot_size, headroom, slots, done;
  vx_rx_runs runs;
  if (vx_args(env, info, 20, 20, argv, NULL) < 0) return NULL;
  if (vx_get_typed(env, argv[0], napi_uint8_array, "bufs", &bufs, &bufs_len) < 0) return NULL;
  if (vx_get_typed(env, argv[1], napi_uint32_array, "blens", &blens, &blens_len) < 0) return NULL;
  if (vx_get_typed(env, argv[2], napi_uint16_array, "bsegs", &bsegs, &bsegs_len) < 0) return NULL;
  if (vx_get_typed(env, argv[3], napi_uint8_array, "baddrs", &baddrs, &baddrs_len) < 0) return NULL;
  if (vx_get_u32(env, argv[4], "nbufs", &nbufs) < 0) return NULL;
  if (vx_get_typed(env, argv[5], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (vx_get_u32(env, argv[6], "slotSize", &slot_size) < 0) return NULL;
  if (vx_get_u32(env, argv[7], "headroom", &headroom) < 0) return NULL;
  if (vx_get_u32(env, argv[8], "slots", &slots) < 0) return NULL;
  if (vx_get_u32(env, argv[9], "done", &done) < 0) return NULL;
  if (vx_get_typed(env, argv[10], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (vx_get_typed(env, argv[11], napi_uint8_array, "addrs", &addrs, &addrs_len) < 0) return NULL;
  if (vx_get_typed(env, argv[18], napi_biguint64_array, "stats", &stats, &stats_len) < 0) return NULL;
  if (vx_get_typed(env, argv[19], napi_uint32_array, "state", &state, &state_len) < 0) return NULL;
  if (state_len < 3) return vx_range_error(env, "state needs 3 elements");
  if (nbufs < 1 || nbufs > VX_GRO_BUFS) return vx_range_error(env, "nbufs must be in [1, 8]");
  if (bufs_len < (size_t)nbufs * VX_GRO_BUFSZ || blens_len < nbufs || bsegs_len < nbufs || baddrs_len < (size_t)nbufs * VX_ADDR_LEN)
    return vx_range_error(env, "bufs, blens, bsegs or baddrs are shorter than nbufs");
  if (stats_len < VX_STAT_COUNT) return vx_range_error(env, "stats is shorter than STAT_COUNT");
  if (vx_check_rx(env, slab_len, slot_size, headroom, slots, lens_len) < 0) return NULL;
  if ((uint64_t)slots * VX_ADDR_LEN > addrs_len) return vx_range_error(env, "addrs is shorter than slots * 18");
  if (get_runs(env, argv + 12, slab_len, slots, VX_GRO_BUFS * VX_GRO_BUFSZ, &runs) < 0) return NULL;
  if ((uint64_t)slots * slot_size > runs.super_off) return vx_range_error(env, "the run area overlaps the slots");
  vx_gro g;
  memset(&g, 0, sizeof g);
  g.buf = bufs;
  g.n = (int)nbufs;
  for (uint32_t b = 0; b < nbufs; b++) {
    uint32_t L = ((uint32_t *)blens)[b], seg = ((uint16_t *)bsegs)[b];
    if (L > VX_GRO_BUFSZ) return vx_range_error(env, "a buffer is longer than GRO_BUF_SIZE");
    g.len[b] = L;
    g.seg[b] = seg && seg < L ? (uint16_t)seg : 0;
    memcpy(g.addr[b], (uint8_t *)baddrs + (size_t)b * VX_ADDR_LEN, VX_ADDR_LEN);
  }
  uint32_t *st = state;
  if (done > slots || st[0] > nbufs || (st[0] < nbufs && st[1] > g.len[st[0]]) || (st[0] == nbufs && st[1] != 0) ||
      st[2] > VX_GRO_BUFS * VX_GRO_BUFSZ)
    return vx_range_error(env, "done or state out of range");
  g.cur = (int)st[0];
  g.off = st[1];
  runs.used = st[2];
  uint32_t n = vx_gro_split_runs(&g, slab, slot_size, headroom, slots, done, lens, addrs, stats, &runs);
  st[0] = (uint32_t)g.cur;
  st[1] = g.off;
  st[2] = runs.used;
  return vx_u32(env, n);
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
      {"groRunsSplit", js_gro_runs_split},
  };
  return vx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
