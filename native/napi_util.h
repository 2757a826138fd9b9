/*
 * The N-API helpers every glue file uses (the *_glue.c files are the only ones that include
 * node_api.h; the syscall and packet files stay buildable without Node headers).
 *
 * Conventions:
 *  - Every napi call's status is checked. VX_CHECK(env, call) throws (unless an exception is
 *    already pending) "vxmesh addon: <call> failed: <napi message>" with code ERR_VXMESH_NAPI and
 *    returns NULL from the calling function.
 *  - Argument getters return 0, or -1 with a TypeError (ERR_INVALID_ARG_TYPE / ERR_MISSING_ARGS /
 *    ERR_INVALID_ARG_VALUE) or RangeError (ERR_OUT_OF_RANGE) pending.
 *  - A negative errno from a syscall wrapper becomes a JS Error with `code` (errno name, e.g.
 *    'EPERM'), `errno` (number), `syscall` and the message "<syscall> failed: <strerror>".
 */
#ifndef VX_NAPI_UTIL_H
#define VX_NAPI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <node_api.h>

/* Error object for errno `err` (positive) from `syscall`, or NULL (an exception is then pending). */
napi_value vx_errno_error(napi_env env, int err, const char *syscall);
/* Throws vx_errno_error(err, syscall). */
void vx_throw_errno(napi_env env, int err, const char *syscall);
/* A napi call failed: throws a description of `what` (unless an exception is already pending). */
void vx_throw_napi(napi_env env, const char *what);
/* Throws TypeError(code, msg) / RangeError(ERR_OUT_OF_RANGE, msg) / Error(code, msg); return NULL. */
napi_value vx_type_error(napi_env env, const char *code, const char *msg);
napi_value vx_range_error(napi_env env, const char *msg);
napi_value vx_error(napi_env env, const char *code, const char *msg);
/* Replaces the `code` of the pending exception by `code` (keeps its message); returns NULL. */
napi_value vx_recode_pending(napi_env env, const char *code);

#define VX_CHECK(env, call)        \
  do {                             \
    if ((call) != napi_ok) {       \
      vx_throw_napi((env), #call); \
      return NULL;                 \
    }                              \
  } while (0)

/* argv[0..max): at least `min` arguments (else TypeError ERR_MISSING_ARGS); missing ones are
   undefined. *argc (may be NULL) gets the number actually passed. */
int vx_args(napi_env env, napi_callback_info info, size_t min, size_t max, napi_value *argv, size_t *argc);
/* A number that is an integer in [0, 2^32). */
int vx_get_u32(napi_env env, napi_value v, const char *what, uint32_t *out);
/* A number that is an integer in [-2^31, 2^31). */
int vx_get_i32(napi_env env, napi_value v, const char *what, int32_t *out);
/* Any value, coerced to a boolean. */
int vx_get_bool(napi_env env, napi_value v, bool *out);
/* A string of at most cap-1 bytes without NUL. */
int vx_get_string(napi_env env, napi_value v, const char *what, char *buf, size_t cap);
/* A typed array of type `want` (napi_uint8_array also accepts a Buffer); length in elements. */
int vx_get_typed(napi_env env, napi_value v, napi_typedarray_type want, const char *what, void **data, size_t *length);
/* Like vx_get_typed, but undefined (or null) gives *data = NULL, *length = 0. */
int vx_get_typed_opt(napi_env env, napi_value v, napi_typedarray_type want, const char *what, void **data,
                     size_t *length);
/* Whether v is undefined or null. 1/0, or -1 (exception pending). */
int vx_is_nullish(napi_env env, napi_value v);
/* A type-tagged external; *out is its pointer. `what` names the expected kind in the TypeError. */
int vx_get_tagged(napi_env env, napi_value v, const napi_type_tag *tag, const char *what, void **out);

/* Batch shape checks (RangeError on failure). */
/* rx: headroom < slotSize, slots * slotSize <= slab, lens.length >= slots. */
int vx_check_rx(napi_env env, size_t slab_len, uint32_t slot_size, uint32_t headroom, uint32_t slots, size_t lens_len);
/* tx: count <= offs/lens lengths; every [offs[j], offs[j] + lens[j]) inside the slab. */
int vx_check_tx(napi_env env, size_t slab_len, const uint32_t *offs, size_t offs_len, const uint32_t *lens,
                size_t lens_len, uint32_t count);
/* Optional per-descriptor status array: NULL, or length >= count. */
int vx_check_status(napi_env env, const void *status, size_t status_len, uint32_t count);

/* Values (NULL with an exception pending on failure). */
napi_value vx_u32(napi_env env, uint32_t v);
napi_value vx_i32(napi_env env, int32_t v);
napi_value vx_bool(napi_env env, bool v);
/* rc < 0: throws errno -rc from `syscall`, returns NULL; else vx_u32(rc). */
napi_value vx_result_or_throw(napi_env env, int rc, const char *syscall);
/* obj[name] = v; 0 or -1. */
int vx_set_u32_prop(napi_env env, napi_value obj, const char *name, uint32_t v);

/* A function table entry, registered with vx_define. */
typedef struct vx_fn {
  const char *name;
  napi_callback fn;
} vx_fn;
/* Defines fns[0..n) on exports; 0 or -1 (exception pending). */
int vx_define(napi_env env, napi_value exports, const vx_fn *fns, size_t n);

/* Module parts: each glue file registers its functions (0, or -1 with an exception pending). */
int vx_handle_glue_init(napi_env env, napi_value exports);
int vx_tap_glue_init(napi_env env, napi_value exports);
int vx_udp_glue_init(napi_env env, napi_value exports);
int vx_gso_glue_init(napi_env env, napi_value exports);
int vx_reader_glue_init(napi_env env, napi_value exports);
int vx_netdev_glue_init(napi_env env, napi_value exports);
int vx_notify_glue_init(napi_env env, napi_value exports);
int vx_aead_glue_init(napi_env env, napi_value exports);
int vx_mac1_glue_init(napi_env env, napi_value exports);
int vx_busy_glue_init(napi_env env, napi_value exports);

#endif
