/*
 * Network-device glue (netdev.c): bridgeAdd/Del/Port, setMtu/getMtu, getFlags/setUp, getMac,
 * ifIndex, and the ethtool offload calls ethtoolValue, ethtoolFeatures, ethtoolSetFeature.
 */
#define _GNU_SOURCE
#include <linux/ethtool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "napi_util.h"
#include "netdev.h"

#define NAME_ARG(i, var, what) \
  char var[256];               \
  if (vx_get_string(env, argv[i], what, var, sizeof var) < 0) return NULL;

static napi_value js_bridge_add(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  const char *sc = "ioctl(SIOCBRADDBR)";
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  NAME_ARG(0, br, "bridge");
  int rc = vx_bridge_add(br, &sc);
  return vx_result_or_throw(env, rc, sc);
}

static napi_value js_bridge_del(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  const char *sc = "ioctl(SIOCBRDELBR)";
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  NAME_ARG(0, br, "bridge");
  int rc = vx_bridge_del(br, &sc);
  return vx_result_or_throw(env, rc, sc);
}

/* bridgePort(bridge, ifname, add) */
static napi_value js_bridge_port(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  const char *sc = "ioctl(SIOCBRADDIF)";
  bool add;
  if (vx_args(env, info, 3, 3, argv, NULL) < 0) return NULL;
  NAME_ARG(0, br, "bridge");
  NAME_ARG(1, ifn, "ifname");
  if (vx_get_bool(env, argv[2], &add) < 0) return NULL;
  int rc = vx_bridge_port(br, ifn, add, &sc);
  return vx_result_or_throw(env, rc, sc);
}

static napi_value js_set_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  const char *sc = "ioctl(SIOCSIFMTU)";
  uint32_t mtu;
  if (vx_args(env, info, 2, 2, argv, NULL) < 0) return NULL;
  NAME_ARG(0, name, "name");
  if (vx_get_u32(env, argv[1], "mtu", &mtu) < 0) return NULL;
  if (mtu > 0x7fffffff) return vx_range_error(env, "mtu out of range");
  int rc = vx_set_mtu(name, (int)mtu, &sc);
  return vx_result_or_throw(env, rc, sc);
}

static napi_value js_get_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  const char *sc = "ioctl(SIOCGIFMTU)";
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  NAME_ARG(0, name, "name");
  int rc = vx_get_mtu(name, &sc);
  return vx_result_or_throw(env, rc, sc);
}

static napi_value js_get_flags(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  const char *sc = "ioctl(SIOCGIFFLAGS)";
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  NAME_ARG(0, name, "name");
  int rc = vx_get_flags(name, &sc);
  return vx_result_or_throw(env, rc, sc);
}

static napi_value js_set_up(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  const char *sc = "ioctl(SIOCSIFFLAGS)";
  bool up;
  if (vx_args(env, info, 2, 2, argv, NULL) < 0) return NULL;
  NAME_ARG(0, name, "name");
  if (vx_get_bool(env, argv[1], &up) < 0) return NULL;
  int rc = vx_set_up(name, up, &sc);
  return vx_result_or_throw(env, rc, sc);
}

/* getMac(name) → Buffer(6) */
static napi_value js_get_mac(napi_env env, napi_callback_info info) {
  napi_value argv[1], buf;
  const char *sc = "ioctl(SIOCGIFHWADDR)";
  uint8_t mac[6];
  void *data;
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  NAME_ARG(0, name, "name");
  int rc = vx_get_mac(name, mac, &sc);
  if (rc < 0) {
    vx_throw_errno(env, -rc, sc);
    return NULL;
  }
  VX_CHECK(env, napi_create_buffer_copy(env, 6, mac, &data, &buf));
  return buf;
}

static napi_value js_if_index(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  const char *sc = "if_nametoindex";
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  NAME_ARG(0, name, "name");
  int rc = vx_ifindex(name, &sc);
  return vx_result_or_throw(env, rc, sc);
}

/* ethtoolValue(name, cmd, on?) → 0/1 for ETHTOOL_G* commands, 0 for ETHTOOL_S* (constants.ETHTOOL_*) */
static napi_value js_ethtool_value(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  const char *sc = "ioctl(SIOCETHTOOL)";
  uint32_t cmd;
  bool on = false;
  if (vx_args(env, info, 2, 3, argv, NULL) < 0) return NULL;
  NAME_ARG(0, name, "name");
  if (vx_get_u32(env, argv[1], "cmd", &cmd) < 0) return NULL;
  if (vx_get_bool(env, argv[2], &on) < 0) return NULL;
  int rc = vx_ethtool_value(name, cmd, on, &sc);
  return vx_result_or_throw(env, rc, sc);
}

/* ethtoolFeatures(name) → [[featureName, active, requested, changeable], ...] (`ethtool -k`) */
static napi_value js_ethtool_features(napi_env env, napi_callback_info info) {
  napi_value argv[1], arr, row, v;
  const char *sc = "ioctl(SIOCETHTOOL)";
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  NAME_ARG(0, name, "name");
  vx_feature *f = calloc(VX_FEATURES_MAX, sizeof *f);
  if (f == NULL) {
    vx_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  int n = vx_features_get(name, f, VX_FEATURES_MAX, &sc);
  if (n < 0) {
    free(f);
    vx_throw_errno(env, -n, sc);
    return NULL;
  }
  napi_status st = napi_create_array_with_length(env, (size_t)n, &arr);
  for (int i = 0; i < n && st == napi_ok; i++) {
    st = napi_create_array_with_length(env, 4, &row);
    if (st == napi_ok) st = napi_create_string_utf8(env, f[i].name, NAPI_AUTO_LENGTH, &v);
    if (st == napi_ok) st = napi_set_element(env, row, 0, v);
    if (st == napi_ok) st = napi_get_boolean(env, f[i].active, &v);
    if (st == napi_ok) st = napi_set_element(env, row, 1, v);
    if (st == napi_ok) st = napi_get_boolean(env, f[i].requested, &v);
    if (st == napi_ok) st = napi_set_element(env, row, 2, v);
    if (st == napi_ok) st = napi_get_boolean(env, f[i].changeable, &v);
    if (st == napi_ok) st = napi_set_element(env, row, 3, v);
    if (st == napi_ok) st = napi_set_element(env, arr, (uint32_t)i, row);
  }
  free(f);
  if (st != napi_ok) {
    vx_throw_napi(env, "ethtoolFeatures result");
    return NULL;
  }
  return arr;
}

/* ethtoolSetFeature(name, featureName, on) → ETHTOOL_F_* flags (0 done, 1 unsupported, 2 wish) */
static napi_value js_ethtool_set_feature(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  const char *sc = "ioctl(SIOCETHTOOL)";
  char feature[VX_FEATURE_NAME_LEN];
  bool on;
  if (vx_args(env, info, 3, 3, argv, NULL) < 0) return NULL;
  NAME_ARG(0, name, "name");
  if (vx_get_string(env, argv[1], "feature", feature, sizeof feature) < 0) return NULL;
  if (vx_get_bool(env, argv[2], &on) < 0) return NULL;
  vx_feature *f = calloc(VX_FEATURES_MAX, sizeof *f);
  if (f == NULL) {
    vx_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  int n = vx_features_get(name, f, VX_FEATURES_MAX, &sc);
  int index = -1;
  for (int i = 0; i < n; i++)
    if (strcmp(f[i].name, feature) == 0) index = i;
  free(f);
  if (n < 0) {
    vx_throw_errno(env, -n, sc);
    return NULL;
  }
  if (index < 0) {
    char msg[384];
    snprintf(msg, sizeof msg, "%s has no feature named '%s'", name, feature);
    return vx_error(env, "ERR_VXMESH_NO_FEATURE", msg);
  }
  int rc = vx_feature_set(name, index, on, &sc);
  return vx_result_or_throw(env, rc, sc);
}

int vx_netdev_glue_init(napi_env env, napi_value exports) {
  static const vx_fn fns[] = {
      {"bridgeAdd", js_bridge_add},       {"bridgeDel", js_bridge_del},
      {"bridgePort", js_bridge_port},     {"setMtu", js_set_mtu},
      {"getMtu", js_get_mtu},             {"getFlags", js_get_flags},
      {"setUp", js_set_up},               {"getMac", js_get_mac},
      {"ifIndex", js_if_index},           {"ethtoolValue", js_ethtool_value},
      {"ethtoolFeatures", js_ethtool_features}, {"ethtoolSetFeature", js_ethtool_set_feature},
  };
  return vx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
