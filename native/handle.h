/*
 * Device handles of the glue (TAP fd, UDP transport): napi externals tagged with vx_handle_tag.
 * close() is idempotent and also runs from an env cleanup hook (process/worker exit) and from the
 * GC finalizer. Readiness: one uv_poll per handle (level-triggered, UV_READABLE) whose JS callback
 * is registered with pollStart() (or readerStart()) and invoked through napi_make_callback; an
 * error of the fd (or of the reader thread) is passed to that callback as its argument, never
 * thrown; an exception thrown by the callback is reported as an uncaught exception.
 */
#ifndef VX_HANDLE_H
#define VX_HANDLE_H

#include <node_api.h>
#include <uv.h>

#include "reader.h"
#include "udp.h"

enum { VX_KIND_TAP = 1, VX_KIND_UDP = 2 };

typedef struct vx_busy_group vx_busy_group; /* busypoll_glue.c */

typedef struct vx_handle {
  int kind;
  int closed;
  napi_env env;
  int tap_fd; /* VX_KIND_TAP */
  unsigned tap_flags;
  int udp_coalescing; /* VX_KIND_TAP vnet writes: UDP runs merged into UDP_L4 GSO frames (off once refused) */
  vx_udp udp;         /* VX_KIND_UDP */
  uint64_t *stats;
  napi_ref stats_ref;
  uint64_t local_stats[VX_STAT_COUNT];
  uv_poll_t *poll;
  uv_idle_t *idle; /* UDP GRO: re-runs the callback while split datagrams are still buffered */
  int polling;     /* poll started and not paused */
  napi_ref cb_ref;
  napi_async_context actx;
  uint8_t *scratch;        /* VX_GSO_SCRATCH bytes for segmentation (UDP, allocated on first use) */
  vx_reader *reader;       /* TAP reader thread (readerStart), or NULL */
  uv_async_t *async;       /* wakes the loop when the reader published a batch */
  napi_ref reader_refs[3]; /* slab, lens, gso of the reader ring (kept alive while it runs) */
  int reader_errno;        /* errno the reader thread stopped on (sticky until readerStart), 0 = none */
  vx_busy_group *busy;     /* the busy-poll group it is in (busyPollJoin), or NULL */
} vx_handle;

/* A new, unwrapped handle of `kind` (fds -1), or NULL. */
vx_handle *vx_handle_new(int kind);
/* Wraps `h` (fully initialised, fds open) in a tagged external (stats: optional BigUint64Array of
   at least VX_STAT_COUNT elements, may be NULL); on failure closes and frees it and returns NULL. */
napi_value vx_handle_wrap(napi_env env, vx_handle *h, napi_value stats);
/* A handle of `kind` (0 = any kind). */
int vx_handle_get(napi_env env, napi_value v, int kind, vx_handle **out);
/* Like vx_handle_get, for an I/O call: a closed handle throws EBADF from `syscall`. */
int vx_handle_get_open(napi_env env, napi_value v, int kind, const char *syscall, vx_handle **out);
/* Registers (or replaces) the handle's JS callback (TypeError unless a function); 0 or -1. */
int vx_handle_set_callback(napi_env env, vx_handle *h, napi_value fn, const char *resource);
/* Calls the JS callback: status 0 → cb(), status -errno → cb(Error from `syscall`). */
void vx_handle_invoke(vx_handle *h, int status, const char *syscall);
/* UDP: after a receive, keeps the callback coming while GRO leftovers exist. */
void vx_handle_arm_idle(vx_handle *h);
/* The fd the loop polls for this handle (a split UDP transport: its epoll fd). */
int vx_handle_fd(vx_handle *h);
/* Busy-poll (busypoll_glue.c): spins after a member's callback returned (g may be NULL); a member's
   polling changed; the handle leaves its group (handle_close). */
void vx_busy_after(vx_busy_group *g);
void vx_busy_changed(vx_handle *h);
void vx_busy_leave(vx_handle *h);
/* Stops and frees the reader thread and its loop handles (reader_glue.c). */
void vx_reader_teardown(vx_handle *h);

#endif
