/*
 * Handshake socket beside the underlay's main socket (no Node headers). A flood of forged handshake
 * initiations sent to the underlay port used to share the main socket's receive queue with the
 * data messages of established sessions: every forgery was received (recvmmsg), copied into a slot
 * and checked (mac1) by the agent, so the agent's CPU share on a busy machine went to forgeries
 * instead of data, and data waited behind them in the queue.
 *
 * The split: a second socket bound to the same address:port (SO_REUSEPORT on both) and a classic
 * BPF reuseport program that picks the socket by the first payload byte: 1 (handshake initiation,
 * the only message a stranger can send unprompted) → the handshake socket; everything else (data 4,
 * handshake response 2 and cookie reply 3 — answers to our own initiations —, plaintext VXLAN,
 * probes) → the main socket. The handshake socket has a small receive buffer, so a flood overflows
 * there, in the kernel (counted in /proc/net/snmp RcvbufErrors), not in the main socket's queue, and
 * it is read with a budget: the main socket first, then at most `tokens` handshake datagrams
 * (a token bucket, VX_HS_RATE per second, VX_HS_BURST at most), into the same batch, so the
 * JS/C boundary is still crossed once per batch. Readiness of both (and of a timerfd that ends a
 * pause when the budget ran out) comes through one epoll fd, which is what the handle polls.
 *
 * A second agent on the same port still fails with EADDRINUSE: the port is first bound by a socket
 * without SO_REUSEPORT, which fails when anything holds it. VXMESH_UDP_SPLIT=0 in the environment
 * turns the split off (one socket, as before: A/B measurements, kernels without reuseport BPF).
 */
#ifndef VX_UDP_SPLIT_H
#define VX_UDP_SPLIT_H

#include <stdint.h>

/* Handshake datagrams admitted per second, and at most at once (token bucket). */
#define VX_HS_RATE 16384
#define VX_HS_BURST 2048
/* Handshake reads pause until this many tokens are back (at most VX_HS_RATE / VX_HS_CHUNK wake-ups per second). */
#define VX_HS_CHUNK 64
/* Receive buffer of the handshake socket (bytes asked; the kernel doubles it). */
#define VX_HS_RCVBUF (1024 * 1024)
/* Slots kept for handshakes in a batch the main socket would fill, every VX_HS_EVERY-th full batch. */
#define VX_HS_EVERY 8

struct vx_udp;

typedef struct vx_split {
  int hs;        /* handshake socket, -1 when not split */
  int epfd;      /* epoll over fd, hs, tfd: polled by the handle */
  int tfd;       /* timerfd: wakes the loop when the budget refills */
  int armed;     /* hs is in the epoll set */
  double tokens;
  uint64_t last_ns;
  uint32_t full; /* consecutive batches the main socket filled */
} vx_split;

/*
 * Opens the split for the main socket u->fd, already bound to ss/sl (or ephemeral). Called by
 * vx_udp_open after the plain bind succeeded: rebinding with SO_REUSEPORT is done here. 0 (also
 * when the split is off or unsupported: then s->hs == -1 and nothing changes) or -errno.
 */
int vx_split_open(struct vx_udp *u, const void *ss, unsigned sl, int bufbytes, const char **syscall);
void vx_split_close(vx_split *s);
/* The fd to poll for readability: the epoll fd when split, else `fd`. */
int vx_split_pollfd(const vx_split *s, int fd);
/* Slots of a batch of `slots` the main socket may fill now (the rest is kept for handshakes). */
uint32_t vx_split_data_slots(vx_split *s, uint32_t slots);
/*
 * After the main socket's read filled `done` slots: handshake datagrams into [done, slots) within
 * the budget; returns the new count. stats: VX_STAT_HS_READ, VX_STAT_HS_PAUSED.
 */
uint32_t vx_split_recv(struct vx_udp *u, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots,
                       uint32_t done, uint32_t *lens, uint8_t *addrs, uint64_t *stats);

#endif
