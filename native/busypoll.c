/* Busy-poll syscalls: the clock and the zero-timeout poll (busypoll.h). */
#define _GNU_SOURCE
#include "busypoll.h"

#include <errno.h>
#include <sched.h>
#include <time.h>

uint64_t vx_busy_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int vx_busy_poll(struct pollfd *fds, int n) {
  int r = poll(fds, (nfds_t)n, 0);
  return r < 0 ? -errno : r;
}

void vx_busy_yield(void) { sched_yield(); }
