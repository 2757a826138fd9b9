/*
 * Handshake socket beside the main underlay socket: SO_REUSEPORT twin on the same port, classic
 * BPF reuseport program steering initiations (first payload byte 1) to it, budgeted reads, one
 * epoll fd for readiness. See udp_split.h.
 */
#define _GNU_SOURCE
#include "udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

/* Index in the reuseport group: 0 = main socket (joined first), 1 = handshake socket. */
static struct sock_filter steer_code[] = {
    /* A = first byte of the UDP payload (a datagram too short to load: 0 → main socket) */
    {BPF_LD | BPF_B | BPF_ABS, 0, 0, 0},
    {BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 1}, /* A == 1 (handshake initiation) → ret 1, else ret 0 */
    {BPF_RET | BPF_K, 0, 0, 0},
    {BPF_RET | BPF_K, 0, 0, 1},
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int split_wanted(void) {
  const char *v = getenv("VXMESH_UDP_SPLIT");
  return !(v != NULL && v[0] == '0' && v[1] == 0);
}

static int reuse(int fd) {
  int one = 1;
  return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
}

int vx_split_pollfd(const vx_split *s, int fd) { return s->hs >= 0 ? s->epfd : fd; }

void vx_split_close(vx_split *s) {
  if (s->hs >= 0) close(s->hs);
  if (s->epfd >= 0) close(s->epfd);
  if (s->tfd >= 0) close(s->tfd);
  s->hs = s->epfd = s->tfd = -1;
}

static int ep_add(int epfd, int fd, uint32_t events) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.fd = fd;
  return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void ep_mod(vx_split *s, uint32_t events) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.fd = s->hs;
  (void)epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->hs, &ev);
}

int vx_split_open(struct vx_udp *u, const void *ssv, unsigned sl, int bufbytes, const char **syscall) {
  vx_split *s = &u->split;
  s->hs = s->epfd = s->tfd = -1;
  if (!split_wanted()) return 0;
  struct sockaddr_storage ss;
  memcpy(&ss, ssv, sl);
  /* the port the plain socket got (ephemeral when 0 was asked) */
  if (ss.ss_family == AF_INET) ((struct sockaddr_in *)&ss)->sin_port = htons(u->port);
  else ((struct sockaddr_in6 *)&ss)->sin6_port = htons(u->port);
  int a = vx_udp_socket(u->family, bufbytes, syscall);
  if (a < 0) return a;
  int b = vx_udp_socket(u->family, VX_HS_RCVBUF, syscall);
  if (b < 0) {
    close(a);
    return b;
  }
  struct sock_fprog prog = {sizeof steer_code / sizeof steer_code[0], steer_code};
  int ok = reuse(a) == 0 && reuse(b) == 0;
  if (!ok) {
    /* no SO_REUSEPORT: keep the single socket */
    close(a);
    close(b);
    return 0;
  }
  /* The plain socket proved the port free; the twins take it over (a joins first: index 0). */
  close(u->fd);
  u->fd = -1;
  int rc = 0;
  if (bind(a, (struct sockaddr *)&ss, sl) < 0 || bind(b, (struct sockaddr *)&ss, sl) < 0) {
    rc = -errno;
    *syscall = "bind";
  } else if (setsockopt(a, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0) {
    /* No reuseport BPF (old kernel): without it the kernel would spread data over both sockets.
       Back to one plain socket on the port. */
    close(a);
    close(b);
    int fd = vx_udp_socket(u->family, bufbytes, syscall);
    if (fd < 0) return fd;
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
      int e = errno;
      close(fd);
      *syscall = "bind";
      return -e;
    }
    u->fd = fd;
    return 0;
  }
  if (rc == 0) {
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->epfd < 0 || s->tfd < 0 || ep_add(s->epfd, a, EPOLLIN) < 0 || ep_add(s->epfd, b, EPOLLIN) < 0 ||
        ep_add(s->epfd, s->tfd, EPOLLIN) < 0) {
      rc = -errno;
      *syscall = "epoll";
    }
  }
  if (rc < 0) {
    close(a);
    close(b);
    if (s->epfd >= 0) close(s->epfd);
    if (s->tfd >= 0) close(s->tfd);
    s->epfd = s->tfd = -1;
    return rc;
  }
  u->fd = a;
  s->hs = b;
  s->armed = 1;
  s->tokens = VX_HS_BURST;
  s->last_ns = now_ns();
  s->full = 0;
  return 0;
}

uint32_t vx_split_data_slots(vx_split *s, uint32_t slots) {
  if (s->hs < 0 || s->full < VX_HS_EVERY || s->tokens < 1 || slots < 4) return slots;
  return slots - slots / 4;
}

/* Stops reading the handshake socket until VX_HS_CHUNK tokens have refilled (the timerfd wakes the loop). */
static void pause_hs(vx_split *s, uint64_t *stats) {
  stats[VX_STAT_HS_PAUSED]++;
  ep_mod(s, 0);
  s->armed = 0;
  double need = VX_HS_CHUNK - s->tokens;
  uint64_t wait = (uint64_t)(need > 1 ? need : 1) * 1000000000ull / VX_HS_RATE;
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_sec = (time_t)(wait / 1000000000ull);
  its.it_value.tv_nsec = (long)(wait % 1000000000ull);
  (void)timerfd_settime(s->tfd, 0, &its, NULL);
}

uint32_t vx_split_recv(struct vx_udp *u, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots,
                       uint32_t done, uint32_t *lens, uint8_t *addrs, uint64_t *stats) {
  vx_split *s = &u->split;
  uint64_t t = now_ns();
  s->tokens += (double)(t - s->last_ns) * VX_HS_RATE / 1e9;
  if (s->tokens > VX_HS_BURST) s->tokens = VX_HS_BURST;
  s->last_ns = t;
  if (!s->armed) {
    uint64_t exp;
    (void)!read(s->tfd, &exp, sizeof exp); /* the pause timer, if it fired */
    if (s->tokens < VX_HS_CHUNK) return done;
    ep_mod(s, EPOLLIN);
    s->armed = 1;
  }
  uint32_t room = slots - done;
  uint32_t want = (uint32_t)s->tokens < room ? (uint32_t)s->tokens : room;
  if (want == 0) return done;
  int n = vx_udp_recv_fd(s->hs, slab, slot_size, headroom, done, done + want, lens, addrs, stats);
  if (n < 0) return done; /* an error on the handshake socket is not the transport's: read on */
  uint32_t got = (uint32_t)n - done;
  s->tokens -= got;
  stats[VX_STAT_HS_READ] += got;
  /* Budget below one chunk with datagrams maybe left: pause rather than wake the loop for a few
     datagrams at a time (a flood keeps the socket readable); meanwhile it overflows in the kernel. */
  if (got == want && s->tokens < VX_HS_CHUNK) pause_hs(s, stats);
  return (uint32_t)n;
}
