/*
 * Module init of the vxmesh addon: every glue file registers its functions, then the constants.
 *
 * Layout: napi_util.c (argument checks, errno → Error with `code`/`errno`/`syscall`, napi status
 * checks) is used by every glue file; handle_glue.c (device handles, readiness callbacks), one glue
 * file per device kind (tap_glue.c, udp_glue.c, reader_glue.c, netdev_glue.c, notify_glue.c), and
 * the packet work without a device (gso_glue.c, aead_glue.c), busy-polling of device groups
 * (busypoll_glue.c, which owns the addon's instance data: one group per env). The syscall and
 * packet files (tap.c, udp.c, reader.c, netdev.c, notify.c, gso.c, aead.c, busypoll.c) do not
 * include Node headers.
 *
 * Hot-path calls (tapRead/tapWrite/udpRecv/udpSend…) move a whole batch per crossing and never
 * allocate; per-handle statistics go to a caller-provided BigUint64Array (see udp.h VX_STAT_*).
 */
#define _GNU_SOURCE
#include "busypoll.h"
#include "gso.h"
#include "napi_util.h"
#include "tap.h"
#include "udp.h"

typedef struct vx_const {
  const char *name;
  uint32_t value;
} vx_const;

static const vx_const constants[] = {
    {"TAP_F_VNET_HDR", VX_TAP_F_VNET_HDR},
    {"TAP_F_MULTI_QUEUE", VX_TAP_F_MULTI_QUEUE},
    {"TAP_F_EXCL", VX_TAP_F_EXCL},
    {"TUN_F_CSUM", VX_TUN_F_CSUM},
    {"TUN_F_TSO4", VX_TUN_F_TSO4},
    {"TUN_F_TSO6", VX_TUN_F_TSO6},
    {"VNET_HDR_LEN", VX_VNET_HDR_LEN},
    {"STAT_TX_SKIPPED", VX_STAT_TX_SKIPPED},
    {"STAT_TX_EMSGSIZE", VX_STAT_TX_EMSGSIZE},
    {"STAT_TX_LAST_ERRNO", VX_STAT_TX_LAST_ERRNO},
    {"STAT_RX_TRUNCATED", VX_STAT_RX_TRUNCATED},
    {"STAT_TX_EAGAIN", VX_STAT_TX_EAGAIN},
    {"STAT_BAD_GSO", VX_STAT_BAD_GSO},
    {"STAT_COALESCED", VX_STAT_COALESCED},
    {"STAT_GSO_WRITES", VX_STAT_GSO_WRITES},
    {"STAT_GSO_SENDS", VX_STAT_GSO_SENDS},
    {"STAT_SEGMENTS", VX_STAT_SEGMENTS},
    {"STAT_GSO_FALLBACK", VX_STAT_GSO_FALLBACK},
    {"STAT_BAD_TSO", VX_STAT_BAD_TSO},
    {"STAT_GRO_BUFS", VX_STAT_GRO_BUFS},
    {"STAT_GRO_RUNS", VX_STAT_GRO_RUNS},
    {"GRO_RUN_AREA", VX_GRO_BUFS * VX_GRO_BUFSZ},
    {"GRO_BUF_SIZE", VX_GRO_BUFSZ},
    {"GSO_TCPV4", VX_GSO_TCPV4},
    {"GSO_TCPV6", VX_GSO_TCPV6},
    {"GSO_ECN", VX_GSO_ECN},
    {"STAT_COUNT", VX_STAT_COUNT},
    {"UDP_MAX_SOURCES", VX_UDP_MAX_SRC},
    {"ADDR_LEN", VX_ADDR_LEN},
    {"BUSY_STAT_SPINS", VX_BUSY_STAT_SPINS},
    {"BUSY_STAT_POLLS", VX_BUSY_STAT_POLLS},
    {"BUSY_STAT_HITS", VX_BUSY_STAT_HITS},
    {"BUSY_STAT_CALLBACKS", VX_BUSY_STAT_CALLBACKS},
    {"BUSY_STAT_SPIN_NS", VX_BUSY_STAT_SPIN_NS},
    {"BUSY_STAT_CAPPED", VX_BUSY_STAT_CAPPED},
    {"BUSY_STAT_YIELDS", VX_BUSY_STAT_YIELDS},
    {"BUSY_STAT_CONTENDED", VX_BUSY_STAT_CONTENDED},
    {"BUSY_STAT_COUNT", VX_BUSY_STAT_COUNT},
};

NAPI_MODULE_INIT() {
  if (vx_handle_glue_init(env, exports) < 0 || vx_tap_glue_init(env, exports) < 0 ||
      vx_udp_glue_init(env, exports) < 0 || vx_reader_glue_init(env, exports) < 0 ||
      vx_gso_glue_init(env, exports) < 0 || vx_netdev_glue_init(env, exports) < 0 ||
      vx_notify_glue_init(env, exports) < 0 || vx_aead_glue_init(env, exports) < 0 ||
      vx_mac1_glue_init(env, exports) < 0 || vx_busy_glue_init(env, exports) < 0)
    return NULL;
  napi_value k;
  VX_CHECK(env, napi_create_object(env, &k));
  for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
    if (vx_set_u32_prop(env, k, constants[i].name, constants[i].value) < 0) return NULL;
  VX_CHECK(env, napi_set_named_property(env, exports, "constants", k));
  return exports;
}
