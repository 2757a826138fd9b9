/*
 * Network-device glue (netdev.c): bridgeAdd/Del/Port, setMtu/getMtu, getFlags/setUp, getMac,
 * ifIndex, and the ethtool offload calls ethtoolFeatures, ethtoolSetFeatures.
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

/* ethtoolSetFeatures(name, features: string[], on: boolean[]) → ETHTOOL_F_* flags (0 done, 1 fixed, 2 wish).
 * One ETHTOOL_SFEATURES request for all of them (as `ethtool -K` makes one). */
static napi_value js_ethtool_set_features(napi_env env, napi_callback_info info) {
  napi_value argv[3], v;
  const char *sc = "ioctl(SIOCETHTOOL)";
  uint32_t n, m;
  if (vx_args(env, info, 3, 3, argv, NULL) < 0) return NULL;
  NAME_ARG(0, name, "name");
  bool is_a, is_b;
  VX_CHECK(env, napi_is_array(env, argv[1], &is_a));
  VX_CHECK(env, napi_is_array(env, argv[2], &is_b));
  if (!is_a || !is_b) return vx_type_error(env, "ERR_INVALID_ARG_TYPE", "features and on must be arrays");
  VX_CHECK(env, napi_get_array_length(env, argv[1], &n));
  VX_CHECK(env, napi_get_array_length(env, argv[2], &m));
  if (n != m || n > VX_FEATURES_MAX) return vx_range_error(env, "features and on must have the same length (at most 256)");
  vx_feature *f = calloc(VX_FEATURES_MAX, sizeof *f);
  int *index = calloc(VX_FEATURES_MAX, sizeof *index);
  uint8_t *on = calloc(VX_FEATURES_MAX, 1);
  if (f == NULL || index == NULL || on == NULL) {
    free(f), free(index), free(on);
    vx_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  napi_value result = NULL;
  int count = vx_features_get(name, f, VX_FEATURES_MAX, &sc);
  if (count < 0) {
    vx_throw_errno(env, -count, sc);
    goto out;
  }
  for (uint32_t k = 0; k < n; k++) {
    char feature[VX_FEATURE_NAME_LEN];
    bool b;
    if (napi_get_element(env, argv[1], k, &v) != napi_ok) {
      vx_throw_napi(env, "napi_get_element");
      goto out;
    }
    if (vx_get_string(env, v, "feature", feature, sizeof feature) < 0) goto out;
    if (napi_get_element(env, argv[2], k, &v) != napi_ok) {
      vx_throw_napi(env, "napi_get_element");
      goto out;
    }
    if (vx_get_bool(env, v, &b) < 0) goto out;
    index[k] = -1;
    for (int i = 0; i < count && feature[0] != 0; i++)
      if (strcmp(f[i].name, feature) == 0) index[k] = i;
    if (index[k] < 0) {
      char msg[384];
      snprintf(msg, sizeof msg, "%s has no feature named '%s'", name, feature);
      vx_error(env, "ERR_VXMESH_NO_FEATURE", msg);
      goto out;
    }
    on[k] = b;
  }
  result = vx_result_or_throw(env, n == 0 ? 0 : vx_features_set(name, index, on, (int)n, &sc), sc);
out:
  free(f);
  free(index);
  free(on);
  return result;
}

int vx_netdev_glue_init(napi_env env, napi_value exports) {
  static const vx_fn fns[] = {
      {"bridgeAdd", js_bridge_add},       {"bridgeDel", js_bridge_del},
      {"bridgePort", js_bridge_port},     {"setMtu", js_set_mtu},
      {"getMtu", js_get_mtu},             {"getFlags", js_get_flags},
      {"setUp", js_set_up},               {"getMac", js_get_mac},
      {"ifIndex", js_if_index},           {"ethtoolFeatures", js_ethtool_features},
      {"ethtoolSetFeatures", js_ethtool_set_features},
  };
  return vx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
