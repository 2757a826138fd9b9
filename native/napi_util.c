/* N-API helpers shared by every glue file: see napi_util.h. */
#define _GNU_SOURCE
#include "napi_util.h"

#include <stdio.h>
#include <string.h>

#include <uv.h>

napi_value vx_errno_error(napi_env env, int err, const char *syscall) {
  char msg[256], name[64];
  snprintf(msg, sizeof msg, "%s failed: %s", syscall, strerror(err));
  uv_err_name_r(-err, name, sizeof name);
  napi_value m, e, code, num, sc;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) != napi_ok) return NULL;
  if (napi_create_error(env, NULL, m, &e) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_int32(env, err, &num) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc) != napi_ok) return NULL;
  if (napi_set_named_property(env, e, "code", code) != napi_ok) return NULL;
  if (napi_set_named_property(env, e, "errno", num) != napi_ok) return NULL;
  if (napi_set_named_property(env, e, "syscall", sc) != napi_ok) return NULL;
  return e;
}

static bool pending(napi_env env) {
  bool p = false;
  if (napi_is_exception_pending(env, &p) != napi_ok) return true; /* cannot tell: do not throw over it */
  return p;
}

void vx_throw_errno(napi_env env, int err, const char *syscall) {
  napi_value e = vx_errno_error(env, err, syscall);
  if (e != NULL) {
    if (napi_throw(env, e) == napi_ok) return;
  }
  if (!pending(env)) napi_throw_error(env, NULL, syscall);
}

void vx_throw_napi(napi_env env, const char *what) {
  if (pending(env)) return;
  const napi_extended_error_info *info = NULL;
  char msg[256];
  if (napi_get_last_error_info(env, &info) != napi_ok) info = NULL;
  snprintf(msg, sizeof msg, "vxmesh addon: %s failed: %s", what,
           info && info->error_message ? info->error_message : "napi error");
  napi_throw_error(env, "ERR_VXMESH_NAPI", msg);
}

napi_value vx_type_error(napi_env env, const char *code, const char *msg) {
  if (napi_throw_type_error(env, code, msg) != napi_ok) vx_throw_napi(env, "napi_throw_type_error");
  return NULL;
}

napi_value vx_range_error(napi_env env, const char *msg) {
  if (napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg) != napi_ok) vx_throw_napi(env, "napi_throw_range_error");
  return NULL;
}

napi_value vx_error(napi_env env, const char *code, const char *msg) {
  if (napi_throw_error(env, code, msg) != napi_ok) vx_throw_napi(env, "napi_throw_error");
  return NULL;
}

napi_value vx_recode_pending(napi_env env, const char *code) {
  napi_value exc, c;
  if (!pending(env)) return NULL;
  if (napi_get_and_clear_last_exception(env, &exc) != napi_ok) return NULL;
  napi_valuetype t;
  if (napi_typeof(env, exc, &t) == napi_ok && t == napi_object &&
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c) == napi_ok)
    (void)napi_set_named_property(env, exc, "code", c); /* best effort: the exception is rethrown either way */
  if (napi_throw(env, exc) != napi_ok) vx_throw_napi(env, "napi_throw");
  return NULL;
}

int vx_args(napi_env env, napi_callback_info info, size_t min, size_t max, napi_value *argv, size_t *argc_out) {
  size_t argc = max;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return vx_throw_napi(env, "napi_get_cb_info"), -1;
  if (argc < min) {
    char msg[96];
    snprintf(msg, sizeof msg, "expected %zu arguments, got %zu", min, argc);
    vx_type_error(env, "ERR_MISSING_ARGS", msg);
    return -1;
  }
  /* napi fills argv[argc..max) with undefined. */
  if (argc_out != NULL) *argc_out = argc < max ? argc : max;
  return 0;
}

static int expect_type(napi_env env, napi_value v, napi_valuetype want, const char *what, const char *kind) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return vx_throw_napi(env, "napi_typeof"), -1;
  if (t != want) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a %s", what, kind);
    vx_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  return 0;
}

static int get_integer(napi_env env, napi_value v, const char *what, double lo, double hi, const char *range, double *out) {
  if (expect_type(env, v, napi_number, what, "number") < 0) return -1;
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return vx_throw_napi(env, "napi_get_value_double"), -1;
  if (!(d >= lo && d <= hi) || d != (double)(int64_t)d) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be an integer in %s", what, range);
    vx_range_error(env, msg);
    return -1;
  }
  *out = d;
  return 0;
}

int vx_get_u32(napi_env env, napi_value v, const char *what, uint32_t *out) {
  double d;
  if (get_integer(env, v, what, 0, 4294967295.0, "[0, 2^32)", &d) < 0) return -1;
  *out = (uint32_t)d;
  return 0;
}

int vx_get_i32(napi_env env, napi_value v, const char *what, int32_t *out) {
  double d;
  if (get_integer(env, v, what, -2147483648.0, 2147483647.0, "[-2^31, 2^31)", &d) < 0) return -1;
  *out = (int32_t)d;
  return 0;
}

int vx_get_bool(napi_env env, napi_value v, bool *out) {
  napi_value b;
  if (napi_coerce_to_bool(env, v, &b) != napi_ok) return vx_throw_napi(env, "napi_coerce_to_bool"), -1;
  if (napi_get_value_bool(env, b, out) != napi_ok) return vx_throw_napi(env, "napi_get_value_bool"), -1;
  return 0;
}

int vx_get_string(napi_env env, napi_value v, const char *what, char *buf, size_t cap) {
  if (expect_type(env, v, napi_string, what, "string") < 0) return -1;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok)
    return vx_throw_napi(env, "napi_get_value_string_utf8"), -1;
  if (len >= cap) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s is too long (%zu bytes, at most %zu)", what, len, cap - 1);
    vx_range_error(env, msg);
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok)
    return vx_throw_napi(env, "napi_get_value_string_utf8"), -1;
  if (strlen(buf) != len) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must not contain NUL", what);
    vx_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return -1;
  }
  return 0;
}

int vx_get_typed(napi_env env, napi_value v, napi_typedarray_type want, const char *what, void **data, size_t *length) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok) return vx_throw_napi(env, "napi_is_typedarray"), -1;
  napi_typedarray_type type = napi_int8_array;
  size_t len = 0;
  void *d = NULL;
  if (is && napi_get_typedarray_info(env, v, &type, &len, &d, NULL, NULL) != napi_ok)
    return vx_throw_napi(env, "napi_get_typedarray_info"), -1;
  if (!is || type != want) {
    static const char *names[] = {"Int8Array", "Uint8Array (or Buffer)", "Uint8ClampedArray",
                                  "Int16Array", "Uint16Array", "Int32Array", "Uint32Array",
                                  "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"};
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a %s", what, (unsigned)want < 11 ? names[want] : "typed array");
    vx_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  *data = d;
  *length = len;
  return 0;
}

int vx_is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return vx_throw_napi(env, "napi_typeof"), -1;
  return t == napi_undefined || t == napi_null;
}

int vx_get_typed_opt(napi_env env, napi_value v, napi_typedarray_type want, const char *what, void **data,
                     size_t *length) {
  int n = vx_is_nullish(env, v);
  if (n < 0) return -1;
  if (n) {
    *data = NULL;
    *length = 0;
    return 0;
  }
  return vx_get_typed(env, v, want, what, data, length);
}

int vx_get_tagged(napi_env env, napi_value v, const napi_type_tag *tag, const char *what, void **out) {
  napi_valuetype t;
  bool tagged = false;
  if (napi_typeof(env, v, &t) != napi_ok) return vx_throw_napi(env, "napi_typeof"), -1;
  if (t == napi_external && napi_check_object_type_tag(env, v, tag, &tagged) != napi_ok)
    return vx_throw_napi(env, "napi_check_object_type_tag"), -1;
  void *p = NULL;
  if (tagged && napi_get_value_external(env, v, &p) != napi_ok) return vx_throw_napi(env, "napi_get_value_external"), -1;
  if (!tagged || p == NULL) {
    char msg[96];
    snprintf(msg, sizeof msg, "expected %s", what);
    vx_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  *out = p;
  return 0;
}

int vx_check_rx(napi_env env, size_t slab_len, uint32_t slot_size, uint32_t headroom, uint32_t slots, size_t lens_len) {
  if (slot_size == 0 || headroom >= slot_size) return vx_range_error(env, "headroom must be < slotSize"), -1;
  if ((uint64_t)slot_size * slots > slab_len) return vx_range_error(env, "slots * slotSize exceeds the slab"), -1;
  if (lens_len < slots) return vx_range_error(env, "lens is shorter than slots"), -1;
  return 0;
}

int vx_check_tx(napi_env env, size_t slab_len, const uint32_t *offs, size_t offs_len, const uint32_t *lens,
                size_t lens_len, uint32_t count) {
  if (count > offs_len || count > lens_len) return vx_range_error(env, "count exceeds offs/lens"), -1;
  for (uint32_t j = 0; j < count; j++)
    if ((uint64_t)offs[j] + lens[j] > slab_len) {
      char msg[96];
      snprintf(msg, sizeof msg, "descriptor %u is outside the slab", j);
      return vx_range_error(env, msg), -1;
    }
  return 0;
}

int vx_check_status(napi_env env, const void *status, size_t status_len, uint32_t count) {
  if (status != NULL && status_len < count) return vx_range_error(env, "status is shorter than count"), -1;
  return 0;
}

napi_value vx_u32(napi_env env, uint32_t v) {
  napi_value r;
  VX_CHECK(env, napi_create_uint32(env, v, &r));
  return r;
}

napi_value vx_i32(napi_env env, int32_t v) {
  napi_value r;
  VX_CHECK(env, napi_create_int32(env, v, &r));
  return r;
}

napi_value vx_bool(napi_env env, bool v) {
  napi_value r;
  VX_CHECK(env, napi_get_boolean(env, v, &r));
  return r;
}

napi_value vx_result_or_throw(napi_env env, int rc, const char *syscall) {
  if (rc < 0) {
    vx_throw_errno(env, -rc, syscall);
    return NULL;
  }
  return vx_u32(env, (uint32_t)rc);
}

int vx_set_u32_prop(napi_env env, napi_value obj, const char *name, uint32_t v) {
  napi_value n;
  if (napi_create_uint32(env, v, &n) != napi_ok) return vx_throw_napi(env, "napi_create_uint32"), -1;
  if (napi_set_named_property(env, obj, name, n) != napi_ok) return vx_throw_napi(env, "napi_set_named_property"), -1;
  return 0;
}

int vx_define(napi_env env, napi_value exports, const vx_fn *fns, size_t n) {
  napi_property_descriptor d[48];
  size_t done = 0;
  while (done < n) {
    size_t k = n - done < 48 ? n - done : 48;
    for (size_t i = 0; i < k; i++) {
      napi_property_descriptor p = {fns[done + i].name, NULL, fns[done + i].fn, NULL, NULL, NULL, napi_enumerable, NULL};
      d[i] = p;
    }
    if (napi_define_properties(env, exports, k, d) != napi_ok) return vx_throw_napi(env, "napi_define_properties"), -1;
    done += k;
  }
  return 0;
}
