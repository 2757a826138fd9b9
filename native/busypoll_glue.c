/*
 * Busy-poll group glue (busypoll.h): busyPollConfigure(windowUs, turnUs, stats), busyPollJoin(handle, on).
 *
 * One group per napi_env (= per event loop), kept as the addon's instance data. Members are device
 * handles (TAP, UDP) that JS put in the group; handle_glue.c's on_poll calls vx_busy_after() once
 * the member's callback returned, and that spins (see busypoll.h for the bounds):
 *
 *   loop: poll(members' fds, 0) → each ready member (or UDP with GRO leftovers): its callback, as
 *         on_poll would run it; none ready: sched_yield() (unless off) → until `window` µs without
 *         a hit, or the turn's cap, or an error event (left to libuv to report), or a yield that
 *         found the CPU contended (then no spinning for 50 ms) → back to libuv.
 *
 * Safety: everything runs on the loop thread. A callback may close or remove any member (its own
 * handle included) or pause it: every change of membership or of a member's polling bumps `gen`,
 * and after each callback the spin checks `gen` before touching a member again (it rebuilds its
 * fd list instead); a handle leaves the group in handle_close(), before anything frees it. No
 * recursion: callbacks run from the spin do not start a spin of their own. A uv_prepare handle
 * (unreferenced) resets the turn's budget before each poll phase.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "busypoll.h"
#include "handle.h"
#include "napi_util.h"

#define free_uv ((uv_close_cb)(void (*)(void))free) /* see handle_glue.c */
/* A sched_yield() that returned within this did not give the CPU away (counted as spin time). */
#define VX_BUSY_YIELD_OWN_NS 20000u
/*
 * A sched_yield() that gave the CPU away for longer than this met a task that does not block soon
 * (a CPU-bound process, a busy-waiting one), not the container or peer agent woken by the last
 * batch (those run for tens of µs and block): the CPU is contended. The window ends and no window
 * starts for VX_BUSY_BACKOFF_NS: sleeping in epoll is better then (a task woken from a sleep may
 * preempt a CPU hog; a task that yielded waits for the hog's slice).
 */
#define VX_BUSY_CONTENDED_NS 200000u
#define VX_BUSY_BACKOFF_NS 50000000u

struct vx_busy_group {
  uv_prepare_t *prepare;  /* resets turn_start_ns before each poll phase */
  uint32_t window_us;     /* 0 = off */
  uint32_t turn_us;       /* cap of the spinning of one loop turn, callbacks included */
  int yield;              /* sched_yield() after a poll that found nothing */
  uint64_t turn_start_ns; /* when this turn's first window started, 0 = none yet */
  uint64_t backoff_until_ns; /* contended CPU (VX_BUSY_CONTENDED_NS): no window before this */
  int spinning;
  unsigned gen;           /* bumped by every change of members or of their polling */
  vx_handle **members;
  int n, cap;
  struct pollfd *fds;     /* built from the members that poll, `of` = their handles */
  vx_handle **of;
  uint64_t *stats;
  napi_ref stats_ref;
  napi_env env;
  uint64_t local_stats[VX_BUSY_STAT_COUNT];
};

static void on_prepare(uv_prepare_t *p) {
  vx_busy_group *g = p->data;
  if (g != NULL) g->turn_start_ns = 0;
}

/* Instance-data finalizer (env teardown): members still in the group forget it. */
static void group_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  vx_busy_group *g = data;
  for (int i = 0; i < g->n; i++) g->members[i]->busy = NULL;
  if (g->prepare != NULL) {
    uv_prepare_stop(g->prepare);
    g->prepare->data = NULL;
    uv_close((uv_handle_t *)g->prepare, free_uv);
  }
  if (g->stats_ref != NULL) napi_delete_reference(env, g->stats_ref);
  free(g->members);
  free(g->fds);
  free(g->of);
  free(g);
}

/* The env's group, created on first use; NULL with an exception pending. */
static vx_busy_group *group_of(napi_env env) {
  void *d = NULL;
  if (napi_get_instance_data(env, &d) != napi_ok) return vx_throw_napi(env, "napi_get_instance_data"), NULL;
  if (d != NULL) return d;
  vx_busy_group *g = calloc(1, sizeof *g);
  uv_prepare_t *p = calloc(1, sizeof *p);
  uv_loop_t *loop;
  int rc = -ENOMEM;
  if (g != NULL && p != NULL) {
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
      free(g);
      free(p);
      return vx_throw_napi(env, "napi_get_uv_event_loop"), NULL;
    }
    rc = uv_prepare_init(loop, p);
  }
  if (rc < 0) {
    free(g);
    free(p);
    return vx_throw_errno(env, -rc, "uv_prepare_init"), NULL;
  }
  p->data = g;
  uv_unref((uv_handle_t *)p);
  g->prepare = p;
  g->env = env;
  g->turn_us = 1000;
  g->yield = 1;
  g->stats = g->local_stats;
  if (napi_set_instance_data(env, g, group_free, NULL) != napi_ok) {
    p->data = NULL;
    uv_close((uv_handle_t *)p, free_uv);
    free(g);
    return vx_throw_napi(env, "napi_set_instance_data"), NULL;
  }
  return g;
}

void vx_busy_changed(vx_handle *h) {
  if (h->busy != NULL) h->busy->gen++;
}

void vx_busy_leave(vx_handle *h) {
  vx_busy_group *g = h->busy;
  if (g == NULL) return;
  for (int i = 0; i < g->n; i++) {
    if (g->members[i] != h) continue;
    g->members[i] = g->members[--g->n];
    break;
  }
  h->busy = NULL;
  g->gen++;
  if (g->n == 0 && g->prepare != NULL) uv_prepare_stop(g->prepare);
}

static int join(vx_busy_group *g, vx_handle *h) {
  if (h->busy == g) return 0;
  if (g->n == g->cap) {
    int cap = g->cap ? g->cap * 2 : 8;
    vx_handle **m = realloc(g->members, (size_t)cap * sizeof *m);
    if (m == NULL) return -ENOMEM;
    g->members = m;
    struct pollfd *f = realloc(g->fds, (size_t)cap * sizeof *f);
    if (f == NULL) return -ENOMEM;
    g->fds = f;
    vx_handle **o = realloc(g->of, (size_t)cap * sizeof *o);
    if (o == NULL) return -ENOMEM;
    g->of = o;
    g->cap = cap;
  }
  g->members[g->n++] = h;
  h->busy = g;
  g->gen++;
  if (g->prepare != NULL && !uv_is_active((uv_handle_t *)g->prepare)) uv_prepare_start(g->prepare, on_prepare);
  return 0;
}

static int callable(const vx_handle *h) { return !h->closed && h->polling && h->cb_ref != NULL && h->poll != NULL; }

/* The fds of the members that poll now; their count. */
static int rebuild(vx_busy_group *g) {
  int k = 0;
  for (int i = 0; i < g->n; i++) {
    vx_handle *m = g->members[i];
    if (!callable(m)) continue;
    g->fds[k].fd = vx_handle_fd(m);
    g->fds[k].events = POLLIN;
    g->fds[k].revents = 0;
    g->of[k++] = m;
  }
  return k;
}

void vx_busy_after(vx_busy_group *g) {
  if (g == NULL || g->window_us == 0 || g->spinning || g->n == 0) return;
  uint64_t now = vx_busy_now_ns();
  if (now < g->backoff_until_ns) return;
  if (g->turn_start_ns == 0) g->turn_start_ns = now;
  const uint64_t window = (uint64_t)g->window_us * 1000u, turn_end = g->turn_start_ns + (uint64_t)g->turn_us * 1000u;
  if (now >= turn_end) {
    g->stats[VX_BUSY_STAT_CAPPED]++;
    return;
  }
  g->spinning = 1;
  g->stats[VX_BUSY_STAT_SPINS]++;
  uint64_t last = now, polled_ns = 0;
  unsigned built = g->gen - 1;
  int nf = 0;
  for (;;) {
    if (now - last >= window) break;
    if (now >= turn_end) {
      g->stats[VX_BUSY_STAT_CAPPED]++;
      break;
    }
    if (built != g->gen) {
      built = g->gen;
      nf = rebuild(g);
      if (nf == 0) break;
    }
    int r = vx_busy_poll(g->fds, nf);
    g->stats[VX_BUSY_STAT_POLLS]++;
    uint64_t t = vx_busy_now_ns();
    polled_ns += t - now;
    if (r < 0 && r != -EINTR) break;
    int found = 0, stop = 0;
    for (int i = 0; i < nf && built == g->gen; i++) {
      vx_handle *m = g->of[i];
      short re = r > 0 ? g->fds[i].revents : 0;
      g->fds[i].revents = 0;
      if ((re & (POLLERR | POLLHUP | POLLNVAL)) && !(re & POLLIN)) {
        stop = 1; /* libuv's poll reports it to the callback as an error */
        continue;
      }
      if (!(re & POLLIN) && !(m->kind == VX_KIND_UDP && vx_udp_gro_pending(&m->udp))) continue;
      if (!callable(m)) continue;
      found++;
      g->stats[VX_BUSY_STAT_CALLBACKS]++;
      vx_handle_invoke(m, 0, NULL); /* may close, pause or remove any member: `gen` tells */
    }
    if (found) {
      now = vx_busy_now_ns();
      g->stats[VX_BUSY_STAT_HITS]++;
      last = now;
    } else if (g->yield && !stop) {
      vx_busy_yield();
      g->stats[VX_BUSY_STAT_YIELDS]++;
      now = vx_busy_now_ns();
      /* the spin's own cost; a longer yield is another task's turn on this CPU, not ours */
      if (now - t < VX_BUSY_YIELD_OWN_NS) polled_ns += now - t;
      if (now - t > VX_BUSY_CONTENDED_NS) {
        g->stats[VX_BUSY_STAT_CONTENDED]++;
        g->backoff_until_ns = now + VX_BUSY_BACKOFF_NS;
        break;
      }
    } else {
      now = t;
    }
    if (stop) break;
  }
  g->stats[VX_BUSY_STAT_SPIN_NS] += polled_ns;
  g->spinning = 0;
}

/*
 * busyPollConfigure(windowUs, turnUs, stats?: BigUint64Array(BUSY_STAT_COUNT), yield = true): the
 * window of this loop's group (0 = off: callbacks return to the loop at once, as without
 * busy-poll), the cap per loop turn, where its counters go (kept from an earlier call when
 * omitted or undefined), and whether an empty poll yields the CPU.
 */
static napi_value js_busy_configure(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint32_t window, turn;
  bool yield = true;
  if (vx_args(env, info, 2, 4, argv, NULL) < 0) return NULL;
  if (vx_get_u32(env, argv[0], "windowUs", &window) < 0) return NULL;
  if (vx_get_u32(env, argv[1], "turnUs", &turn) < 0) return NULL;
  if (window > 100000) return vx_range_error(env, "windowUs must be at most 100000");
  if (turn < 1 || turn > 1000000) return vx_range_error(env, "turnUs must be in [1, 1000000]");
  void *d = NULL;
  size_t n = 0;
  if (vx_get_typed_opt(env, argv[2], napi_biguint64_array, "stats", &d, &n) < 0) return NULL;
  if (d != NULL && n < VX_BUSY_STAT_COUNT) return vx_range_error(env, "stats must have at least BUSY_STAT_COUNT elements");
  int nullish = vx_is_nullish(env, argv[3]);
  if (nullish < 0 || (!nullish && vx_get_bool(env, argv[3], &yield) < 0)) return NULL;
  vx_busy_group *g = group_of(env);
  if (g == NULL) return NULL;
  if (d != NULL) {
    napi_ref ref;
    VX_CHECK(env, napi_create_reference(env, argv[2], 1, &ref));
    if (g->stats_ref != NULL) napi_delete_reference(env, g->stats_ref);
    g->stats_ref = ref;
    memcpy(d, g->stats, VX_BUSY_STAT_COUNT * sizeof(uint64_t)); /* counters carry over */
    g->stats = d;
  }
  g->window_us = window;
  g->turn_us = turn;
  g->yield = yield;
  return NULL;
}

/* busyPollJoin(handle, on): puts the device in (or takes it out of) this loop's group. */
static napi_value js_busy_join(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  vx_handle *h;
  bool on;
  if (vx_args(env, info, 2, 2, argv, NULL) < 0) return NULL;
  if (vx_handle_get_open(env, argv[0], 0, "busyPollJoin", &h) < 0) return NULL;
  if (vx_get_bool(env, argv[1], &on) < 0) return NULL;
  if (!on) {
    vx_busy_leave(h);
    return NULL;
  }
  vx_busy_group *g = group_of(env);
  if (g == NULL) return NULL;
  int rc = join(g, h);
  if (rc < 0) vx_throw_errno(env, -rc, "busyPollJoin");
  return NULL;
}

int vx_busy_glue_init(napi_env env, napi_value exports) {
  static const vx_fn fns[] = {{"busyPollConfigure", js_busy_configure}, {"busyPollJoin", js_busy_join}};
  return vx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
