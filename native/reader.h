/*
 * A TAP reader thread (the "addon thread" option of the fast path): one pthread per TAP reads
 * batches of frames into a ring of caller-owned slabs, so that the TAP's per-frame read syscalls
 * run on the other core while the JS thread processes the previous batch. Single producer (the
 * thread) / single consumer (the JS thread): `head` counts published batches, `tail` released ones;
 * slab `k % nslabs` belongs to the thread while it is not published, to JS from publication to
 * release. The thread blocks in poll() when the TAP is empty or every slab is published, and is
 * woken by an eventfd (release, stop). After every publication it calls `notify` (uv_async_send,
 * which coalesces), so JS wakes at most once per drained ring. A read error other than
 * EAGAIN/EINTR (the device was deleted: EBADFD, EIO…) ends the thread: it stores the errno
 * (vx_reader_error) and calls `notify` once more, so the owner learns of it without polling.
 */
#ifndef VX_READER_H
#define VX_READER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define VX_READER_MAX_SLABS 8

typedef struct vx_reader {
  int fd;      /* the TAP (read only by the thread while it runs) */
  int vnet;    /* IFF_VNET_HDR device: vx_tap_read_vnet, else vx_tap_read_batch */
  int efd;     /* eventfd: space released / stop */
  uint32_t nslabs, slot_size, headroom, slots;
  uint8_t *slab[VX_READER_MAX_SLABS];
  uint32_t *lens[VX_READER_MAX_SLABS];
  uint16_t *gso[VX_READER_MAX_SLABS];
  uint32_t count[VX_READER_MAX_SLABS];
  _Atomic uint32_t head, tail;
  _Atomic int stop, waiting, err;
  _Atomic uint64_t wakeups, full_waits; /* thread wake-ups from poll(); waits for a free slab */
  uint64_t *stats; /* the handle's stats (read counters only: truncated, bad gso) */
  void (*notify)(void *arg);
  void *notify_arg;
  pthread_t th;
  int started;
} vx_reader;

/* Starts the thread (fields above filled by the caller). 0, or -errno with *syscall set. */
int vx_reader_start(vx_reader *r, const char **syscall);
/* Stops and joins the thread; the slabs are the caller's again. Idempotent. */
void vx_reader_stop(vx_reader *r);
/* Next published batch: 1 with k and n set, 0 when none. */
int vx_reader_next(vx_reader *r, uint32_t *k, uint32_t *n);
/* The errno the thread stopped on (read/readv error, EIO for POLLERR/POLLNVAL), 0 while it runs. */
int vx_reader_error(vx_reader *r);
/* Releases the oldest published batch (its slab goes back to the thread). */
void vx_reader_release(vx_reader *r);

#endif
