/*
 * TAP reader-thread glue (reader.c): readerStart, readerNext, readerRelease, readerStop, readerStats.
 *
 * Errors: when the thread stops on a read error (the TAP was deleted, the device broke), the
 * reader callback is called once with an Error (`code` errno name, `errno`, `syscall` 'readv')
 * after any batches published before it; readerStats()[2] keeps that errno until the next
 * readerStart. Nothing about the thread is ever thrown from readerNext.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "handle.h"
#include "napi_util.h"
#include "reader.h"
#include "tap.h"

#define free_uv ((uv_close_cb)(void (*)(void))free) /* see handle_glue.c */

/* Stops polling, drops the JS references. Teardown statuses are not checked (see handle_glue.c). */
void vx_reader_teardown(vx_handle *h) {
  if (h->reader != NULL) {
    vx_reader_stop(h->reader); /* joined: the thread no longer touches the slabs or the async */
    free(h->reader);
    h->reader = NULL;
  }
  if (h->async != NULL) {
    h->async->data = NULL;
    uv_close((uv_handle_t *)h->async, free_uv);
    h->async = NULL;
  }
  for (int i = 0; i < 3; i++) {
    if (h->reader_refs[i] != NULL) {
      napi_delete_reference(h->env, h->reader_refs[i]);
      h->reader_refs[i] = NULL;
    }
  }
}

static int reader_pending(vx_handle *h) {
  uint32_t k, n;
  return h->reader != NULL && vx_reader_next(h->reader, &k, &n) > 0;
}

static void on_reader_async(uv_async_t *a) {
  vx_handle *h = a->data;
  if (h == NULL || h->closed || h->cb_ref == NULL || h->reader == NULL) return;
  int err = vx_reader_error(h->reader);
  /* Batches published before the error first (the callback may stop the reader or close the handle). */
  if (err == 0 || reader_pending(h)) vx_handle_invoke(h, 0, NULL);
  if (err != 0 && h->reader_errno == 0 && !h->closed && h->cb_ref != NULL && h->reader != NULL) {
    h->reader_errno = err;
    vx_handle_invoke(h, -err, "readv");
  }
}

static void reader_notify(void *arg) { uv_async_send((uv_async_t *)arg); }

/*
 * readerStart(handle, slab, slotSize, headroom, slots, nslabs, lens: Uint32Array(nslabs*slots),
 *             gso: Uint16Array(nslabs*2*slots), cb): starts a thread that reads the TAP into slab
 * k (bytes [k*slots*slotSize, (k+1)*slots*slotSize)) and calls cb on the loop when batches are
 * ready (take them with readerNext/readerRelease), or cb(err) once when it stopped on an error.
 * The TAP is then no longer polled by the loop.
 */
static napi_value js_reader_start(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  vx_handle *h;
  void *slab, *lens, *gso;
  size_t slab_len, lens_len, gso_len;
  uint32_t slot_size, headroom, slots, nslabs;
  if (vx_args(env, info, 9, 9, argv, NULL) < 0) return NULL;
  if (vx_handle_get_open(env, argv[0], VX_KIND_TAP, "readerStart", &h) < 0) return NULL;
  if (vx_get_typed(env, argv[1], napi_uint8_array, "slab", &slab, &slab_len) < 0) return NULL;
  if (vx_get_u32(env, argv[2], "slotSize", &slot_size) < 0) return NULL;
  if (vx_get_u32(env, argv[3], "headroom", &headroom) < 0) return NULL;
  if (vx_get_u32(env, argv[4], "slots", &slots) < 0) return NULL;
  if (vx_get_u32(env, argv[5], "nslabs", &nslabs) < 0) return NULL;
  if (vx_get_typed(env, argv[6], napi_uint32_array, "lens", &lens, &lens_len) < 0) return NULL;
  if (vx_get_typed(env, argv[7], napi_uint16_array, "gso", &gso, &gso_len) < 0) return NULL;
  if (nslabs < 1 || nslabs > VX_READER_MAX_SLABS) return vx_range_error(env, "nslabs must be in [1, 8]");
  if (vx_check_rx(env, slab_len / nslabs, slot_size, headroom, slots, lens_len / nslabs) < 0) return NULL;
  if (gso_len < (size_t)nslabs * slots * 2) return vx_range_error(env, "gso is shorter than 2 * slots * nslabs");
  if (h->reader != NULL) return vx_type_error(env, "ERR_VXMESH_READER", "the reader thread is already running");
  if (vx_handle_set_callback(env, h, argv[8], "vxmesh:tap-reader") < 0) return NULL;
  if (h->poll != NULL) {
    uv_poll_stop(h->poll);
    h->polling = 0;
    vx_busy_changed(h);
  }
  uv_loop_t *loop;
  VX_CHECK(env, napi_get_uv_event_loop(env, &loop));
  vx_reader *r = calloc(1, sizeof *r);
  uv_async_t *a = calloc(1, sizeof *a);
  int rc = (r == NULL || a == NULL) ? -ENOMEM : uv_async_init(loop, a, on_reader_async);
  if (rc < 0) {
    free(r);
    free(a);
    vx_throw_errno(env, -rc, "uv_async_init");
    return NULL;
  }
  a->data = h;
  h->async = a;
  for (int i = 0; i < 3; i++) {
    if (napi_create_reference(env, argv[i == 0 ? 1 : 5 + i], 1, &h->reader_refs[i]) != napi_ok) {
      free(r);
      vx_reader_teardown(h);
      vx_throw_napi(env, "napi_create_reference");
      return NULL;
    }
  }
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
    vx_reader_teardown(h);
    vx_throw_errno(env, -rc, sc);
    return NULL;
  }
  h->reader = r;
  h->reader_errno = 0;
  return NULL;
}

/* readerNext(handle) → (k << 16 | n) for the oldest published batch, or -1. */
static napi_value js_reader_next(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  vx_handle *h;
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  if (vx_handle_get_open(env, argv[0], VX_KIND_TAP, "readerNext", &h) < 0) return NULL;
  if (h->reader == NULL) return vx_type_error(env, "ERR_VXMESH_READER", "no reader thread on this TAP");
  uint32_t k, n;
  int r = vx_reader_next(h->reader, &k, &n);
  return vx_i32(env, r == 0 ? -1 : (int32_t)(k << 16 | n));
}

/* readerRelease(handle): the oldest published batch's slab goes back to the thread. */
static napi_value js_reader_release(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  vx_handle *h;
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  if (vx_handle_get_open(env, argv[0], VX_KIND_TAP, "readerRelease", &h) < 0) return NULL;
  if (h->reader != NULL) vx_reader_release(h->reader);
  return NULL;
}

/* readerStop(handle): joins the thread (idempotent); the ring's memory is the caller's again. */
static napi_value js_reader_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  vx_handle *h;
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  if (vx_handle_get(env, argv[0], VX_KIND_TAP, &h) < 0) return NULL;
  if (!h->closed) {
    if (h->reader != NULL && h->reader_errno == 0) h->reader_errno = vx_reader_error(h->reader);
    vx_reader_teardown(h);
  }
  return NULL;
}

/* readerStats(handle) → [thread wake-ups from poll, waits for a free slab, errno the thread stopped
   on (0 = none)] (wake-ups and waits are 0 without a running reader). */
static napi_value js_reader_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], arr, v;
  vx_handle *h;
  if (vx_args(env, info, 1, 1, argv, NULL) < 0) return NULL;
  if (vx_handle_get(env, argv[0], VX_KIND_TAP, &h) < 0) return NULL;
  double w = 0, f = 0;
  int e = h->reader_errno;
  if (h->reader != NULL) {
    w = (double)atomic_load(&h->reader->wakeups);
    f = (double)atomic_load(&h->reader->full_waits);
    if (e == 0) e = vx_reader_error(h->reader);
  }
  VX_CHECK(env, napi_create_array_with_length(env, 3, &arr));
  VX_CHECK(env, napi_create_double(env, w, &v));
  VX_CHECK(env, napi_set_element(env, arr, 0, v));
  VX_CHECK(env, napi_create_double(env, f, &v));
  VX_CHECK(env, napi_set_element(env, arr, 1, v));
  VX_CHECK(env, napi_create_int32(env, e, &v));
  VX_CHECK(env, napi_set_element(env, arr, 2, v));
  return arr;
}

int vx_reader_glue_init(napi_env env, napi_value exports) {
  static const vx_fn fns[] = {
      {"readerStart", js_reader_start}, {"readerNext", js_reader_next},   {"readerRelease", js_reader_release},
      {"readerStop", js_reader_stop},   {"readerStats", js_reader_stats},
  };
  return vx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
