/*
 * Adaptive busy-polling of the data path's devices (issue 15 §3), the userspace twin of Linux's
 * SO_BUSY_POLL / net.core.busy_poll: after a data-path callback returned, the loop thread keeps
 * checking the group's fds with poll(…, 0) for up to `window` µs since the last packet and runs the
 * ready device's callback itself (once per batch, as libuv would), instead of going back to
 * epoll_wait and sleeping. On a guest whose vCPU halts when idle, that sleep and the wake-up after
 * it cost more than the hop itself (bench/results/experiments-20261202b.md, -20261202c.md).
 *
 * Bounds: a window is started only by a packet (an idle agent never spins) and ends `window` µs
 * after the last batch found; the spinning of one loop turn is capped (`turn` µs, callbacks
 * included), after which the loop runs its timers and other handles.
 *
 * Politeness (on by default): after a poll that found nothing the spin calls sched_yield(), so a
 * task woken on this CPU meanwhile (the container the last batch was written to, the peer agent
 * on a shared host) runs at once instead of waiting for the spinner's slice or window to end;
 * the spin then uses only CPU time nobody else wants. Without it a spinner on a small machine
 * delays the very wake-ups whose answer it waits for (experiments-20261202c.md). A yield that
 * lost the CPU for long (a CPU-bound or busy-waiting task shares it) ends the window and stops
 * spinning for 50 ms: a task that yielded waits for such a task's whole slice, one woken from
 * epoll may preempt it.
 *
 * This file: the clock and the non-blocking poll (no Node headers). busypoll_glue.c: the group
 * (one per event loop / napi_env), the spin, its counters and the JS calls busyPollConfigure /
 * busyPollJoin.
 */
#ifndef VX_BUSYPOLL_H
#define VX_BUSYPOLL_H

#include <poll.h>
#include <stdint.h>

/* Counters of a group (BigUint64Array slots; constants BUSY_STAT_*). */
enum {
  VX_BUSY_STAT_SPINS = 0,     /* windows started (a data-path callback returned, busy-poll on) */
  VX_BUSY_STAT_POLLS = 1,     /* poll(…, 0) calls */
  VX_BUSY_STAT_HITS = 2,      /* polls that found a device ready (its callback ran without a loop wake-up) */
  VX_BUSY_STAT_CALLBACKS = 3, /* callbacks run from the spin (a hit may find several devices ready) */
  VX_BUSY_STAT_SPIN_NS = 4,   /* ns spent polling and yielding (callbacks and other tasks' turns excluded): the spin's cost */
  VX_BUSY_STAT_CAPPED = 5,    /* windows cut short by the cap per loop turn */
  VX_BUSY_STAT_YIELDS = 6,    /* sched_yield calls after a poll that found nothing */
  VX_BUSY_STAT_CONTENDED = 7, /* yields that gave the CPU away > 200 µs: window ended, none for 50 ms */
  VX_BUSY_STAT_COUNT = 8
};

/* CLOCK_MONOTONIC in ns (vDSO). */
uint64_t vx_busy_now_ns(void);
/* poll(fds, n, 0): the number of fds with revents, 0, or -errno. */
int vx_busy_poll(struct pollfd *fds, int n);
/* sched_yield(): lets any other runnable task of this CPU run first (the spin uses only idle CPU). */
void vx_busy_yield(void);

#endif
