/* TAP reader thread: see reader.h. */
#define _GNU_SOURCE
#include "reader.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tap.h"
#include "udp.h"

static void drain_efd(int efd) {
  uint64_t v;
  while (read(efd, &v, sizeof v) == (ssize_t)sizeof v) {
  }
}

static void *reader_main(void *arg) {
  vx_reader *r = arg;
  /* Signals belong to the JS thread (SIGTERM/SIGHUP handlers). */
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h - t >= r->nslabs) {
      /* Every slab is with JS: wait for a release. `waiting` is set before re-checking, and JS
         writes the eventfd after moving `tail` when it sees `waiting`: no lost wake-up. */
      atomic_store_explicit(&r->waiting, 1, memory_order_seq_cst);
      t = atomic_load_explicit(&r->tail, memory_order_seq_cst);
      if (h - t >= r->nslabs && !atomic_load(&r->stop)) {
        struct pollfd p = {r->efd, POLLIN, 0};
        atomic_fetch_add_explicit(&r->full_waits, 1, memory_order_relaxed);
        poll(&p, 1, -1);
        drain_efd(r->efd);
      }
      atomic_store_explicit(&r->waiting, 0, memory_order_relaxed);
      continue;
    }
    uint32_t k = h % r->nslabs;
    int n = r->vnet ? vx_tap_read_vnet(r->fd, r->slab[k], r->slot_size, r->headroom, r->slots, r->lens[k], r->gso[k],
                                       r->stats)
                    : vx_tap_read_batch(r->fd, r->slab[k], r->slot_size, r->headroom, r->slots, r->lens[k],
                                        &r->stats[VX_STAT_RX_TRUNCATED]);
    if (n > 0) {
      r->count[k] = (uint32_t)n;
      atomic_store_explicit(&r->head, h + 1, memory_order_release);
      r->notify(r->notify_arg);
      continue;
    }
    if (n < 0 && n != -EAGAIN && n != -EINTR) {
      /* The device is gone or broken: hand the error to JS and end (no busy loop). */
      atomic_store_explicit(&r->err, -n, memory_order_release);
      r->notify(r->notify_arg);
      break;
    }
    struct pollfd p[2] = {{r->fd, POLLIN, 0}, {r->efd, POLLIN, 0}};
    int pr = poll(p, 2, -1);
    atomic_fetch_add_explicit(&r->wakeups, 1, memory_order_relaxed);
    if (pr > 0 && (p[1].revents & POLLIN)) drain_efd(r->efd);
    if (pr > 0 && (p[0].revents & (POLLERR | POLLNVAL))) {
      atomic_store_explicit(&r->err, EIO, memory_order_release);
      r->notify(r->notify_arg);
      break;
    }
  }
  return NULL;
}

int vx_reader_start(vx_reader *r, const char **syscall) {
  if (r->nslabs == 0 || r->nslabs > VX_READER_MAX_SLABS) {
    *syscall = "vx_reader_start";
    return -EINVAL;
  }
  r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (r->efd < 0) {
    *syscall = "eventfd";
    return -errno;
  }
  atomic_store(&r->head, 0);
  atomic_store(&r->tail, 0);
  atomic_store(&r->stop, 0);
  atomic_store(&r->waiting, 0);
  atomic_store(&r->err, 0);
  int e = pthread_create(&r->th, NULL, reader_main, r);
  if (e != 0) {
    close(r->efd);
    r->efd = -1;
    *syscall = "pthread_create";
    return -e;
  }
  r->started = 1;
  return 0;
}

void vx_reader_stop(vx_reader *r) {
  if (!r->started) return;
  atomic_store_explicit(&r->stop, 1, memory_order_release);
  uint64_t one = 1;
  ssize_t w = write(r->efd, &one, sizeof one);
  (void)w;
  pthread_join(r->th, NULL);
  close(r->efd);
  r->efd = -1;
  r->started = 0;
}

int vx_reader_next(vx_reader *r, uint32_t *k, uint32_t *n) {
  uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);
  if (h != t) {
    *k = t % r->nslabs;
    *n = r->count[*k];
    return 1;
  }
  return 0;
}

int vx_reader_error(vx_reader *r) { return atomic_load_explicit(&r->err, memory_order_acquire); }

void vx_reader_release(vx_reader *r) {
  uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  if (t == atomic_load_explicit(&r->head, memory_order_acquire)) return;
  atomic_store_explicit(&r->tail, t + 1, memory_order_seq_cst);
  if (atomic_load_explicit(&r->waiting, memory_order_seq_cst)) {
    uint64_t one = 1;
    ssize_t w = write(r->efd, &one, sizeof one);
    (void)w;
  }
}
