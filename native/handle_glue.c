/*
 * Handle lifecycle and readiness shared by the TAP and UDP glue: see handle.h.
 * JS: pollStart(handle, cb), pollStop(handle), pollRef(handle, ref), close(handle), isClosed(handle).
 * A handle in a busy-poll group (busypoll_glue.c) is spun on after its callback returned.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handle.h"
#include "napi_util.h"
#include "tap.h"

static const napi_type_tag vx_handle_tag = {0x76786d6573682d68ULL, 0x616e646c652d7631ULL};

static void cleanup_hook(void *arg);

/*
 * Close callback of our uv handles: libc's free itself, not a function of this library. At worker
 * exit Node unloads the addon before the loop runs the last close callbacks, so a callback inside
 * this .so would be called after it was unmapped. free(void *) called with a uv_handle_t * is the
 * usual idiom (same calling convention, pointer argument).
 */
#define free_uv ((uv_close_cb)(void (*)(void))free)

/*
 * Stops polling, drops the JS references and closes the fds. Runs from close(), the env cleanup
 * hook and the GC finalizer, where nothing can be reported: the statuses of these teardown calls
 * are deliberately not checked (each only fails for arguments that cannot occur here).
 */
static void handle_close(vx_handle *h, int from_hook) {
  if (h->closed) return;
  h->closed = 1;
  vx_busy_leave(h); /* first: a spin in progress must not see it again */
  vx_reader_teardown(h);
  if (h->poll != NULL) {
    uv_poll_stop(h->poll);
    h->poll->data = NULL;
    uv_close((uv_handle_t *)h->poll, free_uv);
    h->poll = NULL;
  }
  if (h->idle != NULL) {
    uv_idle_stop(h->idle);
    h->idle->data = NULL;
    uv_close((uv_handle_t *)h->idle, free_uv);
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

vx_handle *vx_handle_new(int kind) {
  vx_handle *h = calloc(1, sizeof *h);
  if (h == NULL) return NULL;
  h->kind = kind;
  h->tap_fd = -1;
  h->udp.fd = -1;
  h->udp_coalescing = 1;
  h->stats = h->local_stats;
  return h;
}

napi_value vx_handle_wrap(napi_env env, vx_handle *h, napi_value stats) {
  napi_value ext;
  h->env = env;
  if (napi_create_external(env, h, finalize_handle, NULL, &ext) != napi_ok) {
    handle_close(h, 1);
    free(h);
    vx_throw_napi(env, "napi_create_external");
    return NULL;
  }
  /* From here the finalizer owns h. */
  VX_CHECK(env, napi_add_env_cleanup_hook(env, cleanup_hook, h));
  VX_CHECK(env, napi_type_tag_object(env, ext, &vx_handle_tag));
  if (stats != NULL) {
    void *d;
    size_t n;
    if (vx_get_typed(env, stats, napi_biguint64_array, "stats", &d, &n) < 0) return NULL;
    if (n < VX_STAT_COUNT) return vx_range_error(env, "stats must have at least STAT_COUNT elements");
    VX_CHECK(env, napi_create_reference(env, stats, 1, &h->stats_ref));
    h->stats = d;
  }
  return ext;
}

int vx_handle_get(napi_env env, napi_value v, int kind, vx_handle **out) {
  const char *what = kind == VX_KIND_TAP ? "a TAP handle" : kind == VX_KIND_UDP ? "a UDP handle" : "a vxmesh handle";
  vx_handle *h = NULL;
  if (vx_get_tagged(env, v, &vx_handle_tag, what, (void **)&h) < 0) return -1;
  if (kind != 0 && h->kind != kind) {
    char msg[64];
    snprintf(msg, sizeof msg, "expected %s", what);
    vx_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  *out = h;
  return 0;
}

int vx_handle_get_open(napi_env env, napi_value v, int kind, const char *syscall, vx_handle **out) {
  if (vx_handle_get(env, v, kind, out) < 0) return -1;
  if ((*out)->closed) {
    vx_throw_errno(env, EBADF, syscall);
    return -1;
  }
  return 0;
}

int vx_handle_set_callback(napi_env env, vx_handle *h, napi_value fn, const char *resource) {
  napi_valuetype t;
  if (napi_typeof(env, fn, &t) != napi_ok) return vx_throw_napi(env, "napi_typeof"), -1;
  if (t != napi_function) return vx_type_error(env, "ERR_INVALID_ARG_TYPE", "callback must be a function"), -1;
  if (h->cb_ref != NULL) {
    if (napi_delete_reference(env, h->cb_ref) != napi_ok) return vx_throw_napi(env, "napi_delete_reference"), -1;
    h->cb_ref = NULL;
  }
  if (napi_create_reference(env, fn, 1, &h->cb_ref) != napi_ok) return vx_throw_napi(env, "napi_create_reference"), -1;
  if (h->actx == NULL) {
    napi_value name;
    if (napi_create_string_utf8(env, resource, NAPI_AUTO_LENGTH, &name) != napi_ok)
      return vx_throw_napi(env, "napi_create_string_utf8"), -1;
    if (napi_async_init(env, NULL, name, &h->actx) != napi_ok) return vx_throw_napi(env, "napi_async_init"), -1;
  }
  return 0;
}

/*
 * Runs on the loop (no JS frame below): nothing can be thrown to a caller. A failure to build the
 * callback's arguments is itself an exception, reported like one thrown by the callback.
 */
void vx_handle_invoke(vx_handle *h, int status, const char *syscall) {
  napi_env env = h->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[1], result;
  size_t argc = 0;
  if (napi_get_reference_value(env, h->cb_ref, &cb) == napi_ok && cb != NULL && napi_get_global(env, &recv) == napi_ok) {
    napi_status st = napi_ok;
    if (status < 0) {
      argv[0] = vx_errno_error(env, -status, syscall);
      if (argv[0] != NULL) argc = 1;
      else st = napi_pending_exception;
    }
    if (st == napi_ok) st = napi_make_callback(env, h->actx, recv, cb, argc, argv, &result);
    if (st != napi_ok) {
      bool pending = false;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        napi_value exc;
        if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

/*
 * Readiness from libuv: the callback, then (busy-poll member, no error) the spin of busypoll_glue.c.
 * The group is read before the callback: the callback may close the handle.
 */
static void on_poll(uv_poll_t *p, int status, int events) {
  (void)events;
  vx_handle *h = p->data;
  if (h == NULL || h->closed || h->cb_ref == NULL) return;
  if (status < 0) {
    /* The fd is in an error state: stop polling (no busy loop) and hand the error to JS. */
    uv_poll_stop(p);
    h->polling = 0;
    vx_busy_changed(h);
  }
  vx_busy_group *g = status < 0 ? NULL : h->busy;
  vx_handle_invoke(h, status, "uv_poll");
  vx_busy_after(g);
}

static void on_idle(uv_idle_t *i) {
  vx_handle *h = i->data;
  if (h == NULL || h->closed || h->cb_ref == NULL || !h->polling || !vx_udp_gro_pending(&h->udp)) {
    uv_idle_stop(i);
    return;
  }
  vx_handle_invoke(h, 0, NULL);
}

void vx_handle_arm_idle(vx_handle *h) {
  if (h->idle != NULL && h->polling && vx_udp_gro_pending(&h->udp) && !uv_is_active((uv_handle_t *)h->idle))
    uv_idle_start(h->idle, on_idle);
}

/* A split UDP transport is polled through its epoll fd (main + handshake socket, udp_split.h). */
int vx_handle_fd(vx_handle *h) { return h->kind == VX_KIND_TAP ? h->tap_fd : vx_split_pollfd(&h->udp.split, h->udp.fd); }

/* pollStart(handle, cb): registers (or replaces) the readability callback and starts polling. */
static napi_value js_poll_start(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  vx_handle *h;
  if (vx_args(env, info, 2, 2, argv, NULL) < 0) return NULL;
  if (vx_handle_get_open(env, argv[0], 0, "uv_poll_start", &h) < 0) return NULL;
  if (vx_handle_set_callback(env, h, argv[1], h->kind == VX_KIND_TAP ? "vxmesh:tap" : "vxmesh:udp") < 0) return NULL;
  int rc;
  if (h->poll == NULL) {
    uv_loop_t *loop;
    VX_CHECK(env, napi_get_uv_event_loop(env, &loop));
    uv_poll_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
      vx_throw_errno(env, ENOMEM, "uv_poll_init");
      return NULL;
    }
    rc = uv_poll_init(loop, p, vx_handle_fd(h));
    if (rc < 0) {
      free(p);
      vx_throw_errno(env, -rc, "uv_poll_init");
      return NULL;
    }
    p->data = h;
    h->poll = p;
    if (h->kind == VX_KIND_UDP) {
      uv_idle_t *i = calloc(1, sizeof *i);
      if (i == NULL || (rc = uv_idle_init(loop, i)) < 0) {
        free(i);
        vx_throw_errno(env, i == NULL ? ENOMEM : -rc, "uv_idle_init");
        return NULL;
      }
      i->data = h;
      h->idle = i;
    }
  }
  rc = uv_poll_start(h->poll, UV_READABLE, on_poll);
  if (rc < 0) {
    vx_throw_errno(env, -rc, "uv_poll_start");
    return NULL;
  }
  h->polling = 1;
  vx_busy_changed(h);
  if (h->kind == VX_KIND_UDP) vx_handle_arm_idle(h);
  return NULL;
}

/* pollStop(handle): pauses readability callbacks (pollStart resumes). */
static napi_value js_poll_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  vx_handle *h;
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  if (vx_handle_get(env, argv[0], 0, &h) < 0) return NULL;
  if (!h->closed && h->poll != NULL) {
    uv_poll_stop(h->poll);
    if (h->idle != NULL) uv_idle_stop(h->idle);
    h->polling = 0;
    vx_busy_changed(h);
  }
  return NULL;
}

/* pollRef(handle, ref): whether an active poll keeps the event loop alive (default true). */
static napi_value js_poll_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  vx_handle *h;
  bool ref;
  if (vx_args(env, info, 2, 2, argv, NULL) < 0) return NULL;
  if (vx_handle_get(env, argv[0], 0, &h) < 0) return NULL;
  if (vx_get_bool(env, argv[1], &ref) < 0) return NULL;
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
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  if (vx_handle_get(env, argv[0], 0, &h) < 0) return NULL;
  handle_close(h, 0);
  return NULL;
}

/* isClosed(handle) → boolean. */
static napi_value js_is_closed(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  vx_handle *h;
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  if (vx_handle_get(env, argv[0], 0, &h) < 0) return NULL;
  return vx_bool(env, h->closed != 0);
}

/*
 * loopIdleMetrics(on: boolean) → the previous state (boolean), or null where it cannot be changed.
 *
 * Node configures its loop with UV_METRICS_IDLE_TIME (for performance.eventLoopUtilization), and
 * with that flag libuv's uv__io_poll first calls epoll_pwait with a zero timeout and only then,
 * if nothing was ready, again with the real one: every time the loop goes to sleep costs two
 * epoll_pwait calls instead of one. On a frame-at-a-time path (request/response through the
 * overlay) that is one extra syscall per hop. libuv has no call to unset the option; the flag is
 * bit UV_METRICS_IDLE_TIME of the first member (`unsigned int flags`) of the loop's internal
 * fields in every libuv 1.x that has them (1.39 and later), so this flips that bit there only.
 * With it off, eventLoopUtilization() stops counting idle time (nothing in vxmesh reads it).
 */
static napi_value js_loop_idle_metrics(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  bool on;
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  VX_CHECK(env, napi_get_value_bool(env, argv[0], &on));
  uv_loop_t *loop;
  VX_CHECK(env, napi_get_uv_event_loop(env, &loop));
  napi_value out;
  unsigned v = uv_version();
  if ((v >> 16) != 1 || ((v >> 8) & 0xff) < 39 || loop == NULL || loop->internal_fields == NULL) {
    VX_CHECK(env, napi_get_null(env, &out));
    return out;
  }
  unsigned int *flags = (unsigned int *)loop->internal_fields;
  const unsigned int bit = (unsigned int)UV_METRICS_IDLE_TIME; /* what uv_loop_configure ORs in */
  int was = (*flags & bit) != 0;
  if (on) *flags |= bit;
  else *flags &= ~bit;
  VX_CHECK(env, napi_get_boolean(env, was, &out));
  return out;
}

int vx_handle_glue_init(napi_env env, napi_value exports) {
  static const vx_fn fns[] = {
      {"pollStart", js_poll_start}, {"pollStop", js_poll_stop}, {"pollRef", js_poll_ref},
      {"close", js_close},          {"isClosed", js_is_closed}, {"loopIdleMetrics", js_loop_idle_metrics},
  };
  return vx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
