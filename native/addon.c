/*
 * The N-API glue of the vxmesh addon: the only file that includes node_api.h. It validates
 * arguments (bounds of every slab access), calls the syscall wrappers in tap.c / udp.c / netdev.c /
 * notify.c, and turns each negative errno into a JS Error with `code` (errno name), `errno`
 * (number), `syscall` and the message "<syscall> failed: <strerror>".
 *
 * Handles (TAP fd, UDP transport) are napi external objects tagged with a type tag; close() is
 * idempotent and also runs from an env cleanup hook (process/worker exit) and from the GC finalizer.
 * Readiness: one uv_poll per handle (level-triggered, UV_READABLE), whose JS callback is registered
 * once with pollStart() and invoked through napi_make_callback; an exception thrown by it is
 * reported as an uncaught exception.
 *
 * Hot-path calls (tapRead/tapWrite/udpRecv/udpSend) move a whole batch per crossing and never
 * allocate; per-handle statistics go to a caller-provided BigUint64Array (see udp.h VX_STAT_*).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "netdev.h"
#include "notify.h"
#include "gso.h"
#include "tap.h"
#include "udp.h"
#include "reader.h"
#include "aead.h" /* crypto engineer: AEAD batch functions (native/aead.c) */

/* ---- CRYPTO HOOK (owned by the crypto engineer) -------------------------------------------------
 * native/aead.c (in binding.gyp) registers the AEAD functions on `exports` through
 *   napi_status vxm_aead_init(napi_env env, napi_value exports);   (aead.h)
 * called once at the end of the module init, at the line marked "CRYPTO HOOK" below.
 * ------------------------------------------------------------------------------------------------ */

enum { VX_KIND_TAP = 1, VX_KIND_UDP = 2 };

static const napi_type_tag vx_handle_tag = {0x76786d6573682d68ULL, 0x616e646c652d7631ULL};

typedef struct vx_handle {
  int kind;
  int closed;
  napi_env env;
  int tap_fd;     /* VX_KIND_TAP */
  unsigned tap_flags;
  vx_udp udp;     /* VX_KIND_UDP */
  uint64_t *stats;
  napi_ref stats_ref;
  uint64_t local_stats[VX_STAT_COUNT];
  uv_poll_t *poll;
  uv_idle_t *idle;  /* UDP GRO: re-runs the callback while split datagrams are still buffered */
  int polling;      /* poll started and not paused */
  napi_ref cb_ref;
  napi_async_context actx;
  uint8_t *scratch; /* VX_GSO_SCRATCH bytes for segmentation (UDP, allocated on first use) */
  vx_reader *reader;  /* TAP reader thread (readerStart), or NULL */
  uv_async_t *async;  /* wakes the loop when the reader published a batch */
  napi_ref reader_refs[3]; /* slab, lens, gso of the reader ring (kept alive while it runs) */
} vx_handle;

/* ---- errors --------------------------------------------------------------------------------- */

static napi_value make_errno_error(napi_env env, int err, const char *syscall) {
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

static void throw_errno(napi_env env, int err, const char *syscall) {
  napi_value e = make_errno_error(env, err, syscall);
  if (e != NULL) {
    napi_throw(env, e);
  } else {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, NULL, syscall);
  }
}

/* A failed napi call: throw (unless something is already pending) describing which call failed. */
static void throw_napi(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info *info = NULL;
  char msg[256];
  napi_get_last_error_info(env, &info);
  snprintf(msg, sizeof msg, "vxmesh addon: %s failed: %s", what,
           info && info->error_message ? info->error_message : "napi error");
  napi_throw_error(env, "ERR_VXMESH_NAPI", msg);
}

/* Every napi call goes through CHECK: on failure it throws and returns NULL from the caller. */
#define CHECK(env, call)              \
  do {                                \
    if ((call) != napi_ok) {          \
      throw_napi((env), #call);       \
      return NULL;                    \
    }                                 \
  } while (0)

static napi_value arg_error(napi_env env, const char *code, const char *msg) {
  napi_throw_type_error(env, code, msg);
  return NULL;
}

static napi_value range_error(napi_env env, const char *msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

/* ---- argument helpers (return 0 on success; on failure an exception is pending) ------------- */

static int get_u32(napi_env env, napi_value v, const char *what, uint32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return throw_napi(env, "napi_typeof"), -1;
  if (t != napi_number) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a number", what);
    arg_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return throw_napi(env, "napi_get_value_double"), -1;
  if (!(d >= 0 && d <= 4294967295.0) || d != (double)(uint32_t)d) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be an integer in [0, 2^32)", what);
    range_error(env, msg);
    return -1;
  }
  *out = (uint32_t)d;
  return 0;
}

static int get_bool(napi_env env, napi_value v, bool *out) {
  napi_value b;
  if (napi_coerce_to_bool(env, v, &b) != napi_ok || napi_get_value_bool(env, b, out) != napi_ok)
    return throw_napi(env, "napi_coerce_to_bool"), -1;
  return 0;
}

/* A string of at most cap-1 bytes (longer → RangeError). */
static int get_string(napi_env env, napi_value v, const char *what, char *buf, size_t cap) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return throw_napi(env, "napi_typeof"), -1;
  if (t != napi_string) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a string", what);
    arg_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok)
    return throw_napi(env, "napi_get_value_string_utf8"), -1;
  if (len >= cap) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s is too long (%zu bytes, at most %zu)", what, len, cap - 1);
    range_error(env, msg);
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok)
    return throw_napi(env, "napi_get_value_string_utf8"), -1;
  if (strlen(buf) != len) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must not contain NUL", what);
    arg_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return -1;
  }
  return 0;
}

/* A typed array of the given type (napi_uint8_array also accepts Buffer). */
static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, const char *what, void **data,
                     size_t *length) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok) return throw_napi(env, "napi_is_typedarray"), -1;
  napi_typedarray_type type;
  size_t len = 0;
  void *d = NULL;
  if (is && napi_get_typedarray_info(env, v, &type, &len, &d, NULL, NULL) != napi_ok)
    return throw_napi(env, "napi_get_typedarray_info"), -1;
  if (!is || type != want) {
    static const char *names[] = {"Int8Array", "Uint8Array (or Buffer)", "Uint8ClampedArray",
                                  "Int16Array", "Uint16Array", "Int32Array", "Uint32Array",
                                  "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"};
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a %s", what, (unsigned)want < 11 ? names[want] : "typed array");
    arg_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  *data = d;
  *length = len;
  return 0;
}

static int get_handle(napi_env env, napi_value v, int kind, vx_handle **out) {
  bool tagged = false;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return throw_napi(env, "napi_typeof"), -1;
  if (t == napi_external && napi_check_object_type_tag(env, v, &vx_handle_tag, &tagged) != napi_ok)
    return throw_napi(env, "napi_check_object_type_tag"), -1;
  vx_handle *h = NULL;
  if (tagged && napi_get_value_external(env, v, (void **)&h) != napi_ok)
    return throw_napi(env, "napi_get_value_external"), -1;
  if (!tagged || h == NULL || (kind != 0 && h->kind != kind)) {
    arg_error(env, "ERR_INVALID_ARG_TYPE",
              kind == VX_KIND_TAP ? "expected a TAP handle" : kind == VX_KIND_UDP ? "expected a UDP handle" : "expected a vxmesh handle");
    return -1;
  }
  *out = h;
  return 0;
}

/* Handle for an I/O call: must be open. */
static int get_open_handle(napi_env env, napi_value v, int kind, const char *syscall, vx_handle **out) {
  if (get_handle(env, v, kind, out) < 0) return -1;
  if ((*out)->closed) {
    throw_errno(env, EBADF, syscall);
    return -1;
  }
  return 0;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return throw_napi(env, "napi_get_cb_info"), -1;
  if (argc < want) {
    char msg[64];
    snprintf(msg, sizeof msg, "expected %zu arguments, got %zu", want, argc);
    arg_error(env, "ERR_MISSING_ARGS", msg);
    return -1;
  }
  return 0;
}

/* ---- handle lifecycle ----------------------------------------------------------------------- */

static void cleanup_hook(void *arg);

/*
 * Close callback of our uv handles: libc's free itself, not a function of this library. At worker
 * exit Node unloads the addon before the loop runs the last close callbacks, so a callback inside
 * this .so would be called after it was unmapped. free(void *) called with a uv_handle_t * is the
 * usual idiom (same calling convention, pointer argument).
 */
#define free_poll ((uv_close_cb)(void (*)(void))free)

/*
 * Stops polling, drops the JS references and closes the fds. Runs from close(), the env cleanup
 * hook and the GC finalizer, where nothing can be reported: the statuses of these teardown calls
 * are deliberately not checked (each only fails for arguments that cannot occur here).
 */
static void reader_teardown(vx_handle *h) {
  if (h->reader != NULL) {
    vx_reader_stop(h->reader); /* joined: the thread no longer touches the slabs or the async */
    free(h->reader);
    h->reader = NULL;
  }
  if (h->async != NULL) {
    h->async->data = NULL;
    uv_close((uv_handle_t *)h->async, free_poll);
    h->async = NULL;
  }
  for (int i = 0; i < 3; i++) {
    if (h->reader_refs[i] != NULL) {
      napi_delete_reference(h->env, h->reader_refs[i]);
      h->reader_refs[i] = NULL;
    }
  }
}

static void handle_close(vx_handle *h, int from_hook) {
  if (h->closed) return;
  h->closed = 1;
  reader_teardown(h);
  if (h->poll != NULL) {
    uv_poll_stop(h->poll);
    h->poll->data = NULL;
    uv_close((uv_handle_t *)h->poll, free_poll);
    h->poll = NULL;
  }
  if (h->idle != NULL) {
    uv_idle_stop(h->idle);
    h->idle->data = NULL;
    uv_close((uv_handle_t *)h->idle, free_poll);
    h->idle = NULL;
  }
  h->polling = 0;
  if (h->cb_ref != NULL) {
    napi_delete_reference(h->env, h->cb_ref);
    h->cb_ref = NULL;
  }
  if (h->actx != NULL) {
    napi_async_destroy(h->env, h->actx);
    h->actx = NULL;
  }
  if (h->stats_ref != NULL) {
    napi_delete_reference(h->env, h->stats_ref);
    h->stats_ref = NULL;
  }
  h->stats = h->local_stats;
  if (h->kind == VX_KIND_TAP && h->tap_fd >= 0) {
    close(h->tap_fd);
    h->tap_fd = -1;
  } else if (h->kind == VX_KIND_UDP) {
    vx_udp_close(&h->udp);
  }
  if (!from_hook) napi_remove_env_cleanup_hook(h->env, cleanup_hook, h);
}

static void cleanup_hook(void *arg) { handle_close((vx_handle *)arg, 1); }

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  vx_handle *h = data;
  handle_close(h, 0);
  free(h->scratch);
  free(h);
}

/* Wraps `h` (fully initialised, fds open) in a tagged external; on failure closes and frees it. */
static napi_value wrap_handle(napi_env env, vx_handle *h, napi_value stats) {
  napi_value ext;
  h->env = env;
  if (napi_create_external(env, h, finalize_handle, NULL, &ext) != napi_ok) {
    h->closed = 0;
    handle_close(h, 1);
    free(h);
    throw_napi(env, "napi_create_external");
    return NULL;
  }
  /* From here the finalizer owns h. */
  CHECK(env, napi_add_env_cleanup_hook(env, cleanup_hook, h));
  CHECK(env, napi_type_tag_object(env, ext, &vx_handle_tag));
  if (stats != NULL) {
    void *d;
    size_t n;
    if (get_typed(env, stats, napi_biguint64_array, "stats", &d, &n) < 0) return NULL;
    if (n < VX_STAT_COUNT) return range_error(env, "stats must have at least STAT_COUNT elements");
    CHECK(env, napi_create_reference(env, stats, 1, &h->stats_ref));
    h->stats = d;
  }
  return ext;
}

static vx_handle *new_handle(int kind) {
  vx_handle *h = calloc(1, sizeof *h);
  if (h == NULL) return NULL;
  h->kind = kind;
  h->tap_fd = -1;
  h->udp.fd = -1;
  h->stats = h->local_stats;
  return h;
}

/* ---- readiness -------------------------------------------------------------------------------- */

static void invoke_cb(vx_handle *h, int status);

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)events;
  vx_handle *h = p->data;
  if (h == NULL || h->closed || h->cb_ref == NULL) return;
  if (status < 0) {
    /* The fd is in an error state: stop polling (no busy loop) and hand the error to JS. */
    uv_poll_stop(p);
    h->polling = 0;
  }
  invoke_cb(h, status);
}

static void on_idle(uv_idle_t *i) {
  vx_handle *h = i->data;
  if (h == NULL || h->closed || h->cb_ref == NULL || !h->polling || !vx_udp_gro_pending(&h->udp)) {
    uv_idle_stop(i);
    return;
  }
  invoke_cb(h, 0);
}

/* After a UDP receive: keep the callback coming while GRO leftovers exist (the socket may be empty). */
static void arm_idle(vx_handle *h) {
  if (h->idle != NULL && h->polling && vx_udp_gro_pending(&h->udp) && !uv_is_active((uv_handle_t *)h->idle))
    uv_idle_start(h->idle, on_idle);
}

static void invoke_cb(vx_handle *h, int status) {
  napi_env env = h->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[1], result;
  size_t argc = 0;
  if (napi_get_reference_value(env, h->cb_ref, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok) {
    if (status < 0) {
      argv[0] = make_errno_error(env, -status, "uv_poll");
      if (argv[0] != NULL) argc = 1;
    }
    napi_status st = napi_make_callback(env, h->actx, recv, cb, argc, argv, &result);
    if (st != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value exc;
        if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

static int handle_fd(vx_handle *h) { return h->kind == VX_KIND_TAP ? h->tap_fd : h->udp.fd; }

/* Registers (or replaces) the handle's JS callback `fn` (a function, else TypeError); 0 or -1 (thrown). */
static int set_callback(napi_env env, vx_handle *h, napi_value fn, const char *resource) {
  napi_valuetype t;
  if (napi_typeof(env, fn, &t) != napi_ok) {
    throw_napi(env, "napi_typeof");
    return -1;
  }
  if (t != napi_function) {
    arg_error(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return -1;
  }
  if (h->cb_ref != NULL) {
    if (napi_delete_reference(env, h->cb_ref) != napi_ok) {
      throw_napi(env, "napi_delete_reference");
      return -1;
    }
    h->cb_ref = NULL;
  }
  napi_value name;
  if (napi_create_reference(env, fn, 1, &h->cb_ref) != napi_ok ||
      (h->actx == NULL && (napi_create_string_utf8(env, resource, NAPI_AUTO_LENGTH, &name) != napi_ok ||
                           napi_async_init(env, NULL, name, &h->actx) != napi_ok))) {
    throw_napi(env, "callback registration");
    return -1;
  }
  return 0;
}

/* pollStart(handle, cb): registers (or replaces) the readability callback and starts polling. */
static napi_value js_poll_start(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  vx_handle *h;
  if (get_args(env, info, 2, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], 0, "uv_poll_start", &h) < 0) return NULL;
  if (set_callback(env, h, argv[1], h->kind == VX_KIND_TAP ? "vxmesh:tap" : "vxmesh:udp") < 0) return NULL;
  int rc;
  if (h->poll == NULL) {
    uv_loop_t *loop;
    CHECK(env, napi_get_uv_event_loop(env, &loop));
    uv_poll_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
      throw_errno(env, ENOMEM, "uv_poll_init");
      return NULL;
    }
    rc = uv_poll_init(loop, p, handle_fd(h));
    if (rc < 0) {
      free(p);
      throw_errno(env, -rc, "uv_poll_init");
      return NULL;
    }
    p->data = h;
    h->poll = p;
    if (h->kind == VX_KIND_UDP) {
      uv_idle_t *i = calloc(1, sizeof *i);
      if (i == NULL || (rc = uv_idle_init(loop, i)) < 0) {
        free(i);
        throw_errno(env, i == NULL ? ENOMEM : -rc, "uv_idle_init");
        return NULL;
      }
      i->data = h;
      h->idle = i;
    }
  }
  rc = uv_poll_start(h->poll, UV_READABLE, on_poll);
  if (rc < 0) {
    throw_errno(env, -rc, "uv_poll_start");
    return NULL;
  }
  h->polling = 1;
  if (h->kind == VX_KIND_UDP) arm_idle(h);
  return NULL;
}

/* pollStop(handle): pauses readability callbacks (pollStart resumes). */
static napi_value js_poll_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  vx_handle *h;
  if (get_args(env, info, 1, argv) < 0) return NULL;
  if (get_handle(env, argv[0], 0, &h) < 0) return NULL;
  if (!h->closed && h->poll != NULL) {
    uv_poll_stop(h->poll);
    if (h->idle != NULL) uv_idle_stop(h->idle);
    h->polling = 0;
  }
  return NULL;
}

/* pollRef(handle, ref): whether an active poll keeps the event loop alive (default true). */
static napi_value js_poll_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  vx_handle *h;
  bool ref;
  if (get_args(env, info, 2, argv) < 0) return NULL;
  if (get_handle(env, argv[0], 0, &h) < 0) return NULL;
  if (get_bool(env, argv[1], &ref) < 0) return NULL;
  if (!h->closed && h->poll != NULL) {
    if (ref) {
      uv_ref((uv_handle_t *)h->poll);
      if (h->idle) uv_ref((uv_handle_t *)h->idle);
    } else {
      uv_unref((uv_handle_t *)h->poll);
      if (h->idle) uv_unref((uv_handle_t *)h->idle);
    }
  }
  return NULL;
}

/* close(handle): idempotent. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  vx_handle *h;
  if (get_args(env, info, 1, argv) < 0) return NULL;
  if (get_handle(env, argv[0], 0, &h) < 0) return NULL;
  handle_close(h, 0);
  return NULL;
}

/* isClosed(handle) → boolean. */
static napi_value js_is_closed(napi_env env, napi_callback_info info) {
  napi_value argv[1], r;
  vx_handle *h;
  if (get_args(env, info, 1, argv) < 0) return NULL;
  if (get_handle(env, argv[0], 0, &h) < 0) return NULL;
  CHECK(env, napi_get_boolean(env, h->closed != 0, &r));
  return r;
}

/* ---- TAP -------------------------------------------------------------------------------------- */

/* tapOpen(name, flags, stats) → [handle, kernelName, created] */
static napi_value js_tap_open(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char name[256], out_name[IFNAMSIZ];
  uint32_t flags;
  if (get_args(env, info, 3, argv) < 0) return NULL;
  if (get_string(env, argv[0], "name", name, sizeof name) < 0) return NULL;
  if (get_u32(env, argv[1], "flags", &flags) < 0) return NULL;
  if (flags & ~(VX_TAP_F_VNET_HDR | VX_TAP_F_MULTI_QUEUE | VX_TAP_F_EXCL)) return range_error(env, "unknown TAP flags");
  const char *syscall = "open";
  int created = 0;
  int fd = vx_tap_open(name, flags, out_name, &created, &syscall);
  if (fd < 0) {
    throw_errno(env, -fd, syscall);
    return NULL;
  }
  vx_handle *h = new_handle(VX_KIND_TAP);
  if (h == NULL) {
    close(fd);
    throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  h->tap_fd = fd;
  h->tap_flags = flags;
  napi_value ext = wrap_handle(env, h, argv[2]);
  if (ext == NULL) return NULL;
  napi_value arr, nm, cr;
  CHECK(env, napi_create_array_with_length(env, 3, &arr));
  CHECK(env, napi_create_string_utf8(env, out_name, NAPI_AUTO_LENGTH, &nm));
  CHECK(env, napi_get_boolean(env, created != 0, &cr));
  CHECK(env, napi_set_element(env, arr, 0, ext));
  CHECK(env, napi_set_element(env, arr, 1, nm));
  CHECK(env, napi_set_element(env, arr, 2, cr));
  return arr;
}

/* tapSetOffload(handle, offloads) */
static napi_value js_tap_set_offload(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  vx_handle *h;
  uint32_t off;
  if (get_args(env, info, 2, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_TAP, "ioctl(TUNSETOFFLOAD)", &h) < 0) return NULL;
  if (get_u32(env, argv[1], "offloads", &off) < 0) return NULL;
  if (!(h->tap_flags & VX_TAP_F_VNET_HDR)) {
    /* Without virtio headers the kernel would hand over GSO frames we could not recognise. */
    napi_throw_error(env, "ERR_VXMESH_VNET", "offloads need a TAP opened with vnetHdr");
    return NULL;
  }
  const char *syscall = "ioctl(TUNSETOFFLOAD)";
  int rc = vx_tap_set_offload(h->tap_fd, off, &syscall);
  if (rc < 0) throw_errno(env, -rc, syscall);
  return NULL;
}

/* Validates an rx batch: slots*slotSize <= slab, lens.length >= slots, headroom < slotSize. */
static int check_rx(napi_env env, size_t slab_len, uint32_t slot_size, uint32_t headroom, uint32_t slots,
                    size_t lens_len) {
  if (slot_size == 0 || headroom >= slot_size) return range_error(env, "headroom must be < slotSize"), -1;
  if ((uint64_t)slot_size * slots > slab_len) return range_error(env, "slots * slotSize exceeds the slab"), -1;
  if (lens_len < slots) return range_error(env, "lens is shorter than slots"), -1;
  return 0;
}

/* Validates tx descriptors: count <= offs/lens length; every [off, off+len) inside the slab. */
static int check_tx(napi_env env, size_t slab_len, const uint32_t *offs, size_t offs_len, const uint32_t *lens,
                    size_t lens_len, uint32_t count) {
  if (count > offs_len || count > lens_len) return range_error(env, "count exceeds offs/lens"), -1;
  for (uint32_t j = 0; j < count; j++)
    if ((uint64_t)offs[j] + lens[j] > slab_len) {
      char msg[96];
      snprintf(msg, sizeof msg, "descriptor %u is outside the slab", j);
      return range_error(env, msg), -1;
    }
  return 0;
}

static napi_value make_u32(napi_env env, uint32_t v) {
  napi_value r;
  CHECK(env, napi_create_uint32(env, v, &r));
  return r;
}

/* tapRead(handle, slab, slotSize, headroom, slots, lens) → n */
static napi_value js_tap_read(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  vx_handle *h;
  void *slab, *lens;
  size_t slab_len, lens_len;
  uint32_t slot_size, headroom, slots;
  if (get_args(env, info, 6, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_TAP, "read", &h) < 0) return NULL;
  if (get_typed(env, argv[1], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (get_u32(env, argv[2], "slotSize", &slot_size) < 0) return NULL;
  if (get_u32(env, argv[3], "headroom", &headroom) < 0) return NULL;
  if (get_u32(env, argv[4], "slots", &slots) < 0) return NULL;
  if (get_typed(env, argv[5], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (check_rx(env, slab_len, slot_size, headroom, slots, lens_len) < 0) return NULL;
  if (h->tap_flags & VX_TAP_F_VNET_HDR) {
    napi_throw_error(env, "ERR_VXMESH_VNET", "this TAP was opened with vnetHdr: read it with tapReadVnet");
    return NULL;
  }
  int n = vx_tap_read_batch(h->tap_fd, slab, slot_size, headroom, slots, lens, &h->stats[VX_STAT_RX_TRUNCATED]);
  if (n < 0) {
    throw_errno(env, -n, "read");
    return NULL;
  }
  return make_u32(env, (uint32_t)n);
}

/* tapWrite(handle, slab, offs, lens, count) → consumed */
static napi_value js_tap_write(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  vx_handle *h;
  void *slab, *offs, *lens;
  size_t slab_len, offs_len, lens_len;
  uint32_t count;
  if (get_args(env, info, 5, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_TAP, "write", &h) < 0) return NULL;
  if (get_typed(env, argv[1], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (get_typed(env, argv[2], napi_uint32_array, "offs", &offs, &offs_len) < 0) return NULL;
  if (get_typed(env, argv[3], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (get_u32(env, argv[4], "count", &count) < 0) return NULL;
  if (check_tx(env, slab_len, offs, offs_len, lens, lens_len, count) < 0) return NULL;
  uint32_t n;
  if (h->tap_flags & VX_TAP_F_VNET_HDR) {
    /* Every write needs a virtio header: plain frames, coalesced where possible. */
    n = vx_tap_write_vnet(h->tap_fd, slab, offs, lens, count, 64, h->stats);
  } else {
    n = vx_tap_write_batch(h->tap_fd, slab, offs, lens, count, &h->stats[VX_STAT_TX_SKIPPED],
                           &h->stats[VX_STAT_TX_LAST_ERRNO]);
    if (n < count) h->stats[VX_STAT_TX_EAGAIN]++;
  }
  return make_u32(env, n);
}

/* tapReadVnet(handle, slab, slotSize, headroom, slots, lens, gso: Uint16Array(2*slots)) → n */
static napi_value js_tap_read_vnet(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  vx_handle *h;
  void *slab, *lens, *gso;
  size_t slab_len, lens_len, gso_len;
  uint32_t slot_size, headroom, slots;
  if (get_args(env, info, 7, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_TAP, "readv", &h) < 0) return NULL;
  if (get_typed(env, argv[1], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (get_u32(env, argv[2], "slotSize", &slot_size) < 0) return NULL;
  if (get_u32(env, argv[3], "headroom", &headroom) < 0) return NULL;
  if (get_u32(env, argv[4], "slots", &slots) < 0) return NULL;
  if (get_typed(env, argv[5], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (get_typed(env, argv[6], napi_uint16_array, "gso", &gso, &gso_len) < 0) return NULL;
  if (check_rx(env, slab_len, slot_size, headroom, slots, lens_len) < 0) return NULL;
  if (gso_len < (size_t)slots * 2) return range_error(env, "gso is shorter than 2 * slots");
  if (!(h->tap_flags & VX_TAP_F_VNET_HDR)) {
    napi_throw_error(env, "ERR_VXMESH_VNET", "this TAP was opened without vnetHdr: read it with tapRead");
    return NULL;
  }
  int n = vx_tap_read_vnet(h->tap_fd, slab, slot_size, headroom, slots, lens, gso, h->stats);
  if (n < 0) {
    throw_errno(env, -n, "readv");
    return NULL;
  }
  return make_u32(env, (uint32_t)n);
}

/* tapWriteVnet(handle, slab, offs, lens, count, maxMerge) → consumed (maxMerge 1 = no coalescing) */
static napi_value js_tap_write_vnet(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  vx_handle *h;
  void *slab, *offs, *lens;
  size_t slab_len, offs_len, lens_len;
  uint32_t count, max_merge;
  if (get_args(env, info, 6, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_TAP, "writev", &h) < 0) return NULL;
  if (get_typed(env, argv[1], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (get_typed(env, argv[2], napi_uint32_array, "offs", &offs, &offs_len) < 0) return NULL;
  if (get_typed(env, argv[3], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (get_u32(env, argv[4], "count", &count) < 0) return NULL;
  if (get_u32(env, argv[5], "maxMerge", &max_merge) < 0) return NULL;
  if (max_merge < 1 || max_merge > 64) return range_error(env, "maxMerge must be in [1, 64]");
  if (check_tx(env, slab_len, offs, offs_len, lens, lens_len, count) < 0) return NULL;
  if (!(h->tap_flags & VX_TAP_F_VNET_HDR)) {
    napi_throw_error(env, "ERR_VXMESH_VNET", "this TAP was opened without vnetHdr: write it with tapWrite");
    return NULL;
  }
  return make_u32(env, vx_tap_write_vnet(h->tap_fd, slab, offs, lens, count, (int)max_merge, h->stats));
}

/* ---- UDP -------------------------------------------------------------------------------------- */

/* udpOpen(family, address, port, sourcePorts, bufBytes, stats) → [handle, port, srcPorts[]] */
static napi_value js_udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  char address[INET6_ADDRSTRLEN + 8];
  uint32_t family, port, nsrc, buf;
  if (get_args(env, info, 6, argv) < 0) return NULL;
  if (get_u32(env, argv[0], "family", &family) < 0) return NULL;
  if (family != 4 && family != 6) return range_error(env, "family must be 4 or 6");
  if (get_string(env, argv[1], "address", address, sizeof address) < 0) return NULL;
  if (get_u32(env, argv[2], "port", &port) < 0) return NULL;
  if (port > 65535) return range_error(env, "port must be in [0, 65535]");
  if (get_u32(env, argv[3], "sourcePorts", &nsrc) < 0) return NULL;
  if (nsrc < 1 || nsrc > VX_UDP_MAX_SRC) return range_error(env, "sourcePorts must be in [1, 64]");
  if (get_u32(env, argv[4], "bufBytes", &buf) < 0) return NULL;
  if (buf > 0x40000000u) return range_error(env, "bufBytes must be at most 1 GiB");
  vx_handle *h = new_handle(VX_KIND_UDP);
  if (h == NULL) {
    throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  const char *syscall = "socket";
  int rc = vx_udp_open(&h->udp, (int)family, address, (uint16_t)port, (int)nsrc, (int)buf, &syscall);
  if (rc < 0) {
    free(h);
    throw_errno(env, -rc, syscall);
    return NULL;
  }
  napi_value ext = wrap_handle(env, h, argv[5]);
  if (ext == NULL) return NULL;
  napi_value arr, ports, v;
  CHECK(env, napi_create_array_with_length(env, 3, &arr));
  CHECK(env, napi_create_array_with_length(env, (size_t)h->udp.nsrc, &ports));
  for (int i = 0; i < h->udp.nsrc; i++) {
    CHECK(env, napi_create_uint32(env, h->udp.src_port[i], &v));
    CHECK(env, napi_set_element(env, ports, (uint32_t)i, v));
  }
  CHECK(env, napi_set_element(env, arr, 0, ext));
  CHECK(env, napi_create_uint32(env, h->udp.port, &v));
  CHECK(env, napi_set_element(env, arr, 1, v));
  CHECK(env, napi_set_element(env, arr, 2, ports));
  return arr;
}

/* udpRecv(handle, slab, slotSize, headroom, slots, lens, addrs) → n */
static napi_value js_udp_recv(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  vx_handle *h;
  void *slab, *lens, *addrs;
  size_t slab_len, lens_len, addrs_len;
  uint32_t slot_size, headroom, slots;
  if (get_args(env, info, 7, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_UDP, "recvmmsg", &h) < 0) return NULL;
  if (get_typed(env, argv[1], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (get_u32(env, argv[2], "slotSize", &slot_size) < 0) return NULL;
  if (get_u32(env, argv[3], "headroom", &headroom) < 0) return NULL;
  if (get_u32(env, argv[4], "slots", &slots) < 0) return NULL;
  if (get_typed(env, argv[5], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (get_typed(env, argv[6], napi_uint8_array, "addrs", &addrs, &addrs_len) < 0) return NULL;
  if (check_rx(env, slab_len, slot_size, headroom, slots, lens_len) < 0) return NULL;
  if ((uint64_t)slots * VX_ADDR_LEN > addrs_len) return range_error(env, "addrs is shorter than slots * 18");
  int n = vx_udp_recv_batch(&h->udp, slab, slot_size, headroom, slots, lens, addrs, h->stats);
  arm_idle(h);
  if (n < 0) {
    throw_errno(env, -n, "recvmmsg");
    return NULL;
  }
  return make_u32(env, (uint32_t)n);
}

/* udpSend(handle, slab, offs, lens, addrs, srcIdx, count) → consumed */
static napi_value js_udp_send(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  vx_handle *h;
  void *slab, *offs, *lens, *addrs, *src;
  size_t slab_len, offs_len, lens_len, addrs_len, src_len;
  uint32_t count;
  if (get_args(env, info, 7, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_UDP, "sendmmsg", &h) < 0) return NULL;
  if (get_typed(env, argv[1], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (get_typed(env, argv[2], napi_uint32_array, "offs", &offs, &offs_len) < 0) return NULL;
  if (get_typed(env, argv[3], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (get_typed(env, argv[4], napi_uint8_array, "addrs", &addrs, &addrs_len) < 0) return NULL;
  if (get_typed(env, argv[5], napi_uint8_array, "srcIdx", &src, &src_len) < 0) return NULL;
  if (get_u32(env, argv[6], "count", &count) < 0) return NULL;
  if (check_tx(env, slab_len, offs, offs_len, lens, lens_len, count) < 0) return NULL;
  if ((uint64_t)count * VX_ADDR_LEN > addrs_len) return range_error(env, "addrs is shorter than count * 18");
  if (count > src_len) return range_error(env, "srcIdx is shorter than count");
  uint32_t n = vx_udp_send_batch(&h->udp, slab, offs, lens, addrs, src, count, h->stats);
  return make_u32(env, n);
}

/* udpSendGso(handle, slab, offs, lens, addrs, srcIdx, gso: Uint16Array(2*count), prefixLen, count) → consumed */
static napi_value js_udp_send_gso(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  vx_handle *h;
  void *slab, *offs, *lens, *addrs, *src, *gso;
  size_t slab_len, offs_len, lens_len, addrs_len, src_len, gso_len;
  uint32_t prefix_len, count;
  if (get_args(env, info, 9, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_UDP, "sendmsg", &h) < 0) return NULL;
  if (get_typed(env, argv[1], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (get_typed(env, argv[2], napi_uint32_array, "offs", &offs, &offs_len) < 0) return NULL;
  if (get_typed(env, argv[3], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (get_typed(env, argv[4], napi_uint8_array, "addrs", &addrs, &addrs_len) < 0) return NULL;
  if (get_typed(env, argv[5], napi_uint8_array, "srcIdx", &src, &src_len) < 0) return NULL;
  if (get_typed(env, argv[6], napi_uint16_array, "gso", &gso, &gso_len) < 0) return NULL;
  if (get_u32(env, argv[7], "prefixLen", &prefix_len) < 0) return NULL;
  if (get_u32(env, argv[8], "count", &count) < 0) return NULL;
  if (prefix_len > 64) return range_error(env, "prefixLen must be at most 64");
  if (check_tx(env, slab_len, offs, offs_len, lens, lens_len, count) < 0) return NULL;
  if ((uint64_t)count * VX_ADDR_LEN > addrs_len) return range_error(env, "addrs is shorter than count * 18");
  if (count > src_len) return range_error(env, "srcIdx is shorter than count");
  if ((uint64_t)count * 2 > gso_len) return range_error(env, "gso is shorter than 2 * count");
  if (h->scratch == NULL) {
    h->scratch = malloc(VX_GSO_SCRATCH);
    if (h->scratch == NULL) {
      throw_errno(env, ENOMEM, "malloc");
      return NULL;
    }
  }
  uint32_t n = vx_udp_send_gso(&h->udp, slab, offs, lens, addrs, src, gso, prefix_len, count, h->stats, h->scratch);
  return make_u32(env, n);
}

/* udpSetGso(handle, enabled) → whether UDP_SEGMENT will be used (false if the kernel lacks it). */
static napi_value js_udp_set_gso(napi_env env, napi_callback_info info) {
  napi_value argv[2], r;
  vx_handle *h;
  bool on;
  if (get_args(env, info, 2, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_UDP, "setsockopt(UDP_SEGMENT)", &h) < 0) return NULL;
  if (get_bool(env, argv[1], &on) < 0) return NULL;
  int zero = 0;
  h->udp.gso = on && setsockopt(h->udp.fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
  CHECK(env, napi_get_boolean(env, h->udp.gso != 0, &r));
  return r;
}

/* udpSetGro(handle, enabled) → whether UDP GRO receive is on (datagrams are still handed out one per slot). */
static napi_value js_udp_set_gro(napi_env env, napi_callback_info info) {
  napi_value argv[2], r;
  vx_handle *h;
  bool on;
  if (get_args(env, info, 2, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_UDP, "setsockopt(UDP_GRO)", &h) < 0) return NULL;
  if (get_bool(env, argv[1], &on) < 0) return NULL;
  const char *sc = "setsockopt(UDP_GRO)";
  int rc = vx_udp_set_gro(&h->udp, on, &sc);
  if (rc < 0 && on) {
    throw_errno(env, -rc, sc);
    return NULL;
  }
  CHECK(env, napi_get_boolean(env, h->udp.gro != 0, &r));
  return r;
}

/* gsoSegment(frame, gsoType, mss, prefix, out, segLens) → segments (-1 not segmentable, -2 too big).
 * The segmentation of udpSendGso, exposed for tests and micro-benchmarks; segment i is at
 * out[i * stride] where stride = prefix.length + headers + mss (returned in segLens[segLens.length-1]). */
static napi_value js_gso_segment(napi_env env, napi_callback_info info) {
  napi_value argv[6], r;
  void *frame, *prefix, *out, *seg_lens;
  size_t frame_len, prefix_len, out_len, seg_cap;
  uint32_t type, mss;
  if (get_args(env, info, 6, argv) < 0) return NULL;
  if (get_typed(env, argv[0], napi_uint8_array, "frame", &frame, &frame_len) < 0) return NULL;
  if (get_u32(env, argv[1], "gsoType", &type) < 0) return NULL;
  if (get_u32(env, argv[2], "mss", &mss) < 0) return NULL;
  if (get_typed(env, argv[3], napi_uint8_array, "prefix", &prefix, &prefix_len) < 0) return NULL;
  if (get_typed(env, argv[4], napi_uint8_array, "out", &out, &out_len) < 0) return NULL;
  if (get_typed(env, argv[5], napi_uint32_array, "segLens", &seg_lens, &seg_cap) < 0) return NULL;
  if (type > 255 || mss > 65535) return range_error(env, "gsoType/mss out of range");
  if (seg_cap < 2) return range_error(env, "segLens needs at least 2 elements");
  uint32_t stride = 0;
  int n = vx_tso_segment(frame, frame_len, (uint8_t)type, (uint16_t)mss, prefix, prefix_len, out, out_len, seg_lens,
                         (int)(seg_cap - 1), &stride);
  ((uint32_t *)seg_lens)[seg_cap - 1] = stride;
  CHECK(env, napi_create_int32(env, n, &r));
  return r;
}

/* groCoalesce(slab, offs, lens, count, maxMerge, out, info: Uint32Array(3*count)) → frames produced.
 * The coalescing of tapWriteVnet without the TAP: output frame i is written to out at info[3i]
 * (length info[3i+1], virtio_net_hdr first) and merged info[3i+2] input frames. */
static napi_value js_gro_coalesce(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  void *slab, *offs, *lens, *out, *oinfo;
  size_t slab_len, offs_len, lens_len, out_len, oinfo_len;
  uint32_t count, max_merge;
  if (get_args(env, info, 7, argv) < 0) return NULL;
  if (get_typed(env, argv[0], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (get_typed(env, argv[1], napi_uint32_array, "offs", &offs, &offs_len) < 0) return NULL;
  if (get_typed(env, argv[2], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (get_u32(env, argv[3], "count", &count) < 0) return NULL;
  if (get_u32(env, argv[4], "maxMerge", &max_merge) < 0) return NULL;
  if (get_typed(env, argv[5], napi_uint8_array, "out", &out, &out_len) < 0) return NULL;
  if (get_typed(env, argv[6], napi_uint32_array, "info", &oinfo, &oinfo_len) < 0) return NULL;
  if (max_merge < 1 || max_merge > 64) return range_error(env, "maxMerge must be in [1, 64]");
  if (check_tx(env, slab_len, offs, offs_len, lens, lens_len, count) < 0) return NULL;
  if ((uint64_t)count * 3 > oinfo_len) return range_error(env, "info is shorter than 3 * count");
  uint32_t j = 0, produced = 0;
  size_t at = 0;
  vx_merge m;
  uint32_t plens[64];
  struct iovec iov[2 + 64];
  uint32_t *inf = oinfo;
  while (j < count) {
    int niov = vx_tap_vnet_iov(slab, (uint32_t *)offs + j, (uint32_t *)lens + j, count - j, (int)max_merge, &m, plens, iov);
    size_t start = at;
    for (int k = 0; k < niov; k++) {
      if (at + iov[k].iov_len > out_len) return range_error(env, "out is too small");
      memcpy((uint8_t *)out + at, iov[k].iov_base, iov[k].iov_len);
      at += iov[k].iov_len;
    }
    inf[3 * produced] = (uint32_t)start;
    inf[3 * produced + 1] = (uint32_t)(at - start);
    inf[3 * produced + 2] = (uint32_t)m.count;
    produced++;
    j += (uint32_t)m.count;
  }
  return make_u32(env, produced);
}

/* ---- netdev ----------------------------------------------------------------------------------- */

#define NAME_ARG(i, var, what)                                              \
  char var[256];                                                  \
  if (get_string(env, argv[i], what, var, sizeof var) < 0) return NULL;

static napi_value result_or_throw(napi_env env, int rc, const char *syscall) {
  if (rc < 0) {
    throw_errno(env, -rc, syscall);
    return NULL;
  }
  return make_u32(env, (uint32_t)rc);
}

static napi_value js_bridge_add(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  const char *sc = "ioctl(SIOCBRADDBR)";
  if (get_args(env, info, 1, argv) < 0) return NULL;
  NAME_ARG(0, br, "bridge");
  int rc = vx_bridge_add(br, &sc);
  return result_or_throw(env, rc, sc);
}

static napi_value js_bridge_del(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  const char *sc = "ioctl(SIOCBRDELBR)";
  if (get_args(env, info, 1, argv) < 0) return NULL;
  NAME_ARG(0, br, "bridge");
  int rc = vx_bridge_del(br, &sc);
  return result_or_throw(env, rc, sc);
}

/* bridgePort(bridge, ifname, add) */
static napi_value js_bridge_port(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  const char *sc = "ioctl(SIOCBRADDIF)";
  bool add;
  if (get_args(env, info, 3, argv) < 0) return NULL;
  NAME_ARG(0, br, "bridge");
  NAME_ARG(1, ifn, "ifname");
  if (get_bool(env, argv[2], &add) < 0) return NULL;
  int rc = vx_bridge_port(br, ifn, add, &sc);
  return result_or_throw(env, rc, sc);
}

static napi_value js_set_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  const char *sc = "ioctl(SIOCSIFMTU)";
  uint32_t mtu;
  if (get_args(env, info, 2, argv) < 0) return NULL;
  NAME_ARG(0, name, "name");
  if (get_u32(env, argv[1], "mtu", &mtu) < 0) return NULL;
  if (mtu > 0x7fffffff) return range_error(env, "mtu out of range");
  int rc = vx_set_mtu(name, (int)mtu, &sc);
  return result_or_throw(env, rc, sc);
}

static napi_value js_get_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  const char *sc = "ioctl(SIOCGIFMTU)";
  if (get_args(env, info, 1, argv) < 0) return NULL;
  NAME_ARG(0, name, "name");
  int rc = vx_get_mtu(name, &sc);
  return result_or_throw(env, rc, sc);
}

static napi_value js_get_flags(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  const char *sc = "ioctl(SIOCGIFFLAGS)";
  if (get_args(env, info, 1, argv) < 0) return NULL;
  NAME_ARG(0, name, "name");
  int rc = vx_get_flags(name, &sc);
  return result_or_throw(env, rc, sc);
}

static napi_value js_set_up(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  const char *sc = "ioctl(SIOCSIFFLAGS)";
  bool up;
  if (get_args(env, info, 2, argv) < 0) return NULL;
  NAME_ARG(0, name, "name");
  if (get_bool(env, argv[1], &up) < 0) return NULL;
  int rc = vx_set_up(name, up, &sc);
  return result_or_throw(env, rc, sc);
}

/* getMac(name) → Buffer(6) */
static napi_value js_get_mac(napi_env env, napi_callback_info info) {
  napi_value argv[1], buf;
  const char *sc = "ioctl(SIOCGIFHWADDR)";
  uint8_t mac[6];
  void *data;
  if (get_args(env, info, 1, argv) < 0) return NULL;
  NAME_ARG(0, name, "name");
  int rc = vx_get_mac(name, mac, &sc);
  if (rc < 0) {
    throw_errno(env, -rc, sc);
    return NULL;
  }
  CHECK(env, napi_create_buffer_copy(env, 6, mac, &data, &buf));
  return buf;
}

static napi_value js_if_index(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  const char *sc = "if_nametoindex";
  if (get_args(env, info, 1, argv) < 0) return NULL;
  NAME_ARG(0, name, "name");
  int rc = vx_ifindex(name, &sc);
  return result_or_throw(env, rc, sc);
}

/* ---- sd_notify -------------------------------------------------------------------------------- */

/* notify(socketPath, message: string) → bytes sent */
static napi_value js_notify(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[128], msg[4096];
  const char *sc = "sendto";
  if (get_args(env, info, 2, argv) < 0) return NULL;
  if (get_string(env, argv[0], "socketPath", path, sizeof path) < 0) return NULL;
  if (get_string(env, argv[1], "message", msg, sizeof msg) < 0) return NULL;
  int rc = vx_notify(path, msg, strlen(msg), &sc);
  return result_or_throw(env, rc, sc);
}

/* ---- TAP reader thread (reader.c) ---------------------------------------------------------------- */

static void on_reader_async(uv_async_t *a) {
  vx_handle *h = a->data;
  if (h == NULL || h->closed || h->cb_ref == NULL || h->reader == NULL) return;
  invoke_cb(h, 0);
}

static void reader_notify(void *arg) { uv_async_send((uv_async_t *)arg); }

/*
 * readerStart(handle, slab, slotSize, headroom, slots, nslabs, lens: Uint32Array(nslabs*slots),
 *             gso: Uint16Array(nslabs*2*slots), cb): starts a thread that reads the TAP into slab
 * k (bytes [k*slots*slotSize, (k+1)*slots*slotSize)) and calls cb on the loop when batches are
 * ready (take them with readerNext/readerRelease). The TAP is then no longer polled by the loop.
 */
static napi_value js_reader_start(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  vx_handle *h;
  void *slab, *lens, *gso;
  size_t slab_len, lens_len, gso_len;
  uint32_t slot_size, headroom, slots, nslabs;
  if (get_args(env, info, 9, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_TAP, "readerStart", &h) < 0) return NULL;
  if (get_typed(env, argv[1], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (get_u32(env, argv[2], "slotSize", &slot_size) < 0) return NULL;
  if (get_u32(env, argv[3], "headroom", &headroom) < 0) return NULL;
  if (get_u32(env, argv[4], "slots", &slots) < 0) return NULL;
  if (get_u32(env, argv[5], "nslabs", &nslabs) < 0) return NULL;
  if (get_typed(env, argv[6], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (get_typed(env, argv[7], napi_uint16_array, "gso", &gso, &gso_len) < 0) return NULL;
  if (nslabs < 1 || nslabs > VX_READER_MAX_SLABS) return range_error(env, "nslabs must be in [1, 8]");
  if (check_rx(env, slab_len / nslabs, slot_size, headroom, slots, lens_len / nslabs) < 0) return NULL;
  if (gso_len < (size_t)nslabs * slots * 2) return range_error(env, "gso is shorter than 2 * slots * nslabs");
  if (h->reader != NULL) return arg_error(env, "ERR_VXMESH_READER", "the reader thread is already running");
  if (set_callback(env, h, argv[8], "vxmesh:tap-reader") < 0) return NULL;
  if (h->poll != NULL) {
    uv_poll_stop(h->poll);
    h->polling = 0;
  }
  uv_loop_t *loop;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  vx_reader *r = calloc(1, sizeof *r);
  uv_async_t *a = calloc(1, sizeof *a);
  int rc = (r == NULL || a == NULL) ? -ENOMEM : uv_async_init(loop, a, on_reader_async);
  if (rc < 0) {
    free(r);
    free(a);
    throw_errno(env, -rc, "uv_async_init");
    return NULL;
  }
  a->data = h;
  h->async = a;
  for (int i = 0; i < 3; i++) CHECK(env, napi_create_reference(env, argv[i == 0 ? 1 : 5 + i], 1, &h->reader_refs[i]));
  r->fd = h->tap_fd;
  r->vnet = (h->tap_flags & VX_TAP_F_VNET_HDR) != 0;
  r->efd = -1;
  r->nslabs = nslabs;
  r->slot_size = slot_size;
  r->headroom = headroom;
  r->slots = slots;
  for (uint32_t k = 0; k < nslabs; k++) {
    r->slab[k] = (uint8_t *)slab + (size_t)k * slots * slot_size;
    r->lens[k] = (uint32_t *)lens + (size_t)k * slots;
    r->gso[k] = (uint16_t *)gso + (size_t)k * slots * 2;
  }
  r->stats = h->stats;
  r->notify = reader_notify;
  r->notify_arg = a;
  const char *sc = "readerStart";
  rc = vx_reader_start(r, &sc);
  if (rc < 0) {
    free(r);
    reader_teardown(h);
    throw_errno(env, -rc, sc);
    return NULL;
  }
  h->reader = r;
  return NULL;
}

/* readerNext(handle) → (k << 16 | n) for the oldest published batch, or -1; throws the thread's error once. */
static napi_value js_reader_next(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  vx_handle *h;
  if (get_args(env, info, 1, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_TAP, "readerNext", &h) < 0) return NULL;
  if (h->reader == NULL) return arg_error(env, "ERR_VXMESH_READER", "no reader thread on this TAP");
  uint32_t k, n;
  int r = vx_reader_next(h->reader, &k, &n);
  if (r < 0) {
    throw_errno(env, -r, "readv");
    return NULL;
  }
  CHECK(env, napi_create_int32(env, r == 0 ? -1 : (int32_t)(k << 16 | n), &out));
  return out;
}

/* readerRelease(handle): the oldest published batch's slab goes back to the thread. */
static napi_value js_reader_release(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  vx_handle *h;
  if (get_args(env, info, 1, argv) < 0) return NULL;
  if (get_open_handle(env, argv[0], VX_KIND_TAP, "readerRelease", &h) < 0) return NULL;
  if (h->reader != NULL) vx_reader_release(h->reader);
  return NULL;
}

/* readerStop(handle): joins the thread (idempotent); the ring's memory is the caller's again. */
static napi_value js_reader_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  vx_handle *h;
  if (get_args(env, info, 1, argv) < 0) return NULL;
  if (get_handle(env, argv[0], VX_KIND_TAP, &h) < 0) return NULL;
  if (!h->closed) reader_teardown(h);
  return NULL;
}

/* readerStats(handle) → [thread wake-ups from poll, waits for a free slab] (0s without a reader). */
static napi_value js_reader_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], arr, v;
  vx_handle *h;
  if (get_args(env, info, 1, argv) < 0) return NULL;
  if (get_handle(env, argv[0], VX_KIND_TAP, &h) < 0) return NULL;
  double w = 0, f = 0;
  if (h->reader != NULL) {
    w = (double)atomic_load(&h->reader->wakeups);
    f = (double)atomic_load(&h->reader->full_waits);
  }
  CHECK(env, napi_create_array_with_length(env, 2, &arr));
  CHECK(env, napi_create_double(env, w, &v));
  CHECK(env, napi_set_element(env, arr, 0, v));
  CHECK(env, napi_create_double(env, f, &v));
  CHECK(env, napi_set_element(env, arr, 1, v));
  return arr;
}

/* ---- module ----------------------------------------------------------------------------------- */

static napi_value set_u32_prop(napi_env env, napi_value obj, const char *name, uint32_t v) {
  napi_value n;
  CHECK(env, napi_create_uint32(env, v, &n));
  CHECK(env, napi_set_named_property(env, obj, name, n));
  return obj;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor fns[] = {
      {"tapOpen", NULL, js_tap_open, NULL, NULL, NULL, napi_default, NULL},
      {"tapSetOffload", NULL, js_tap_set_offload, NULL, NULL, NULL, napi_default, NULL},
      {"tapRead", NULL, js_tap_read, NULL, NULL, NULL, napi_default, NULL},
      {"tapWrite", NULL, js_tap_write, NULL, NULL, NULL, napi_default, NULL},
      {"udpOpen", NULL, js_udp_open, NULL, NULL, NULL, napi_default, NULL},
      {"udpRecv", NULL, js_udp_recv, NULL, NULL, NULL, napi_default, NULL},
      {"udpSend", NULL, js_udp_send, NULL, NULL, NULL, napi_default, NULL},
      {"tapReadVnet", NULL, js_tap_read_vnet, NULL, NULL, NULL, napi_default, NULL},
      {"tapWriteVnet", NULL, js_tap_write_vnet, NULL, NULL, NULL, napi_default, NULL},
      {"udpSendGso", NULL, js_udp_send_gso, NULL, NULL, NULL, napi_default, NULL},
      {"udpSetGso", NULL, js_udp_set_gso, NULL, NULL, NULL, napi_default, NULL},
      {"udpSetGro", NULL, js_udp_set_gro, NULL, NULL, NULL, napi_default, NULL},
      {"gsoSegment", NULL, js_gso_segment, NULL, NULL, NULL, napi_default, NULL},
      {"groCoalesce", NULL, js_gro_coalesce, NULL, NULL, NULL, napi_default, NULL},
      {"pollStart", NULL, js_poll_start, NULL, NULL, NULL, napi_default, NULL},
      {"readerStart", NULL, js_reader_start, NULL, NULL, NULL, napi_default, NULL},
      {"readerNext", NULL, js_reader_next, NULL, NULL, NULL, napi_default, NULL},
      {"readerRelease", NULL, js_reader_release, NULL, NULL, NULL, napi_default, NULL},
      {"readerStop", NULL, js_reader_stop, NULL, NULL, NULL, napi_default, NULL},
      {"readerStats", NULL, js_reader_stats, NULL, NULL, NULL, napi_default, NULL},
      {"pollStop", NULL, js_poll_stop, NULL, NULL, NULL, napi_default, NULL},
      {"pollRef", NULL, js_poll_ref, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"isClosed", NULL, js_is_closed, NULL, NULL, NULL, napi_default, NULL},
      {"bridgeAdd", NULL, js_bridge_add, NULL, NULL, NULL, napi_default, NULL},
      {"bridgeDel", NULL, js_bridge_del, NULL, NULL, NULL, napi_default, NULL},
      {"bridgePort", NULL, js_bridge_port, NULL, NULL, NULL, napi_default, NULL},
      {"setMtu", NULL, js_set_mtu, NULL, NULL, NULL, napi_default, NULL},
      {"getMtu", NULL, js_get_mtu, NULL, NULL, NULL, napi_default, NULL},
      {"getFlags", NULL, js_get_flags, NULL, NULL, NULL, napi_default, NULL},
      {"setUp", NULL, js_set_up, NULL, NULL, NULL, napi_default, NULL},
      {"getMac", NULL, js_get_mac, NULL, NULL, NULL, napi_default, NULL},
      {"ifIndex", NULL, js_if_index, NULL, NULL, NULL, napi_default, NULL},
      {"notify", NULL, js_notify, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns));

  napi_value k;
  CHECK(env, napi_create_object(env, &k));
  if (set_u32_prop(env, k, "TAP_F_VNET_HDR", VX_TAP_F_VNET_HDR) == NULL) return NULL;
  if (set_u32_prop(env, k, "TAP_F_MULTI_QUEUE", VX_TAP_F_MULTI_QUEUE) == NULL) return NULL;
  if (set_u32_prop(env, k, "TAP_F_EXCL", VX_TAP_F_EXCL) == NULL) return NULL;
  if (set_u32_prop(env, k, "TUN_F_CSUM", VX_TUN_F_CSUM) == NULL) return NULL;
  if (set_u32_prop(env, k, "TUN_F_TSO4", VX_TUN_F_TSO4) == NULL) return NULL;
  if (set_u32_prop(env, k, "TUN_F_TSO6", VX_TUN_F_TSO6) == NULL) return NULL;
  if (set_u32_prop(env, k, "VNET_HDR_LEN", VX_VNET_HDR_LEN) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_TX_SKIPPED", VX_STAT_TX_SKIPPED) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_TX_EMSGSIZE", VX_STAT_TX_EMSGSIZE) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_TX_LAST_ERRNO", VX_STAT_TX_LAST_ERRNO) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_RX_TRUNCATED", VX_STAT_RX_TRUNCATED) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_TX_EAGAIN", VX_STAT_TX_EAGAIN) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_BAD_GSO", VX_STAT_BAD_GSO) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_COALESCED", VX_STAT_COALESCED) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_GSO_WRITES", VX_STAT_GSO_WRITES) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_GSO_SENDS", VX_STAT_GSO_SENDS) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_SEGMENTS", VX_STAT_SEGMENTS) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_GSO_FALLBACK", VX_STAT_GSO_FALLBACK) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_BAD_TSO", VX_STAT_BAD_TSO) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_GRO_BUFS", VX_STAT_GRO_BUFS) == NULL) return NULL;
  if (set_u32_prop(env, k, "GSO_TCPV4", VX_GSO_TCPV4) == NULL) return NULL;
  if (set_u32_prop(env, k, "GSO_TCPV6", VX_GSO_TCPV6) == NULL) return NULL;
  if (set_u32_prop(env, k, "GSO_ECN", VX_GSO_ECN) == NULL) return NULL;
  if (set_u32_prop(env, k, "STAT_COUNT", VX_STAT_COUNT) == NULL) return NULL;
  if (set_u32_prop(env, k, "UDP_MAX_SOURCES", VX_UDP_MAX_SRC) == NULL) return NULL;
  if (set_u32_prop(env, k, "ADDR_LEN", VX_ADDR_LEN) == NULL) return NULL;
  CHECK(env, napi_set_named_property(env, exports, "constants", k));

  /* CRYPTO HOOK (crypto engineer): aeadCreateTable/aeadSetKey/aeadClearKey/aeadSealBatch/aeadOpenBatch */
  if (vxm_aead_init(env, exports) != napi_ok) return NULL;
  return exports;
}
