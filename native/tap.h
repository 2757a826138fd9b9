/*
 * TAP device syscalls (no Node headers): open a TAP by name, batched non-blocking read into slab
 * slots at a headroom, batched write of (offset, length) descriptors. Every function returns a
 * count or a negative errno and names the failing syscall through `*syscall`.
 */
#ifndef VX_TAP_H
#define VX_TAP_H

#include <stddef.h>
#include <stdint.h>

/* Open flags (bit set, stable ABI shared with src/native/addon.ts). */
#define VX_TAP_F_VNET_HDR    0x1u /* IFF_VNET_HDR: every frame carries a struct virtio_net_hdr */
#define VX_TAP_F_MULTI_QUEUE 0x2u /* IFF_MULTI_QUEUE: one fd per queue (phase 2) */
#define VX_TAP_F_EXCL        0x4u /* IFF_TUN_EXCL: fail with EBUSY if the device exists */

/* Offload flags for vx_tap_set_offload (same values as TUN_F_* in linux/if_tun.h). */
#define VX_TUN_F_CSUM 0x01u
#define VX_TUN_F_TSO4 0x02u
#define VX_TUN_F_TSO6 0x04u
#define VX_TUN_F_TSO_ECN 0x08u
#define VX_TUN_F_UFO 0x10u

/* Size of struct virtio_net_hdr (no mergeable buffers) as written before frames with VNET_HDR. */
#define VX_VNET_HDR_LEN 10

/*
 * Opens /dev/net/tun and attaches it to TAP `name` (IFF_TAP | IFF_NO_PI | flags), O_NONBLOCK and
 * O_CLOEXEC. `out_name` (IFNAMSIZ bytes) receives the kernel's name (`name` may hold "%d").
 * `*created` is 1 when the device did not exist before (it vanishes when the fd is closed unless
 * made persistent), 0 when an existing persistent device was attached.
 * Returns the fd or -errno.
 */
int vx_tap_open(const char *name, unsigned flags, char *out_name, int *created, const char **syscall);

/* Enables offloads (VX_TUN_F_*); requires VX_TAP_F_VNET_HDR. 0 or -errno. */
int vx_tap_set_offload(int fd, unsigned offloads, const char **syscall);

/*
 * Reads up to `slots` frames: frame i goes to slab + i*slot_size + headroom, at most
 * slot_size - headroom bytes; lens[i] gets its length. The kernel cuts a longer frame to the slot
 * and returns the cut length, so a frame that fills the slot is counted in *truncated (size slots
 * above the largest valid frame). Stops at EAGAIN or when slots are full.
 * Returns the number of frames read (>= 0); when an error other than EAGAIN/EINTR stops the batch
 * before any frame was read returns -errno.
 */
int vx_tap_read_batch(int fd, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots,
                      uint32_t *lens, uint64_t *truncated);

/*
 * Writes descriptors [0, count): descriptor j is lens[j] bytes at slab + offs[j] (bounds checked
 * by the caller). A per-frame error other than EAGAIN skips that frame (stats VX_STAT_TX_SKIPPED,
 * VX_STAT_TX_LAST_ERRNO); EAGAIN stops the batch (VX_STAT_TX_EAGAIN). Returns the number of
 * descriptors consumed; when `status` is not NULL, status[j] for each consumed j is 0 (written) or
 * the positive errno that skipped it. Descriptors [returned, count) were not attempted.
 */
uint32_t vx_tap_write_batch(int fd, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens,
                            uint32_t count, int32_t *status, uint64_t *stats);

#endif

/* ---- phase 2: IFF_VNET_HDR fast path (see gso.h) ---- */
#include <sys/uio.h>
#include "gso.h"

/* Statistics slots written by the vnet functions (indices into the caller's uint64 array). */
#define VX_STAT_BAD_GSO 8      /* frames dropped: unusable virtio header / checksum offsets / unparsable GSO */
#define VX_STAT_COALESCED 9    /* frames merged into a preceding one (TAP write) */
#define VX_STAT_GSO_WRITES 10  /* GSO frames written to the TAP */

/*
 * Like vx_tap_read_batch on a VX_TAP_F_VNET_HDR device: each frame's virtio_net_hdr is consumed;
 * a partial checksum (NEEDS_CSUM, no GSO) is completed in place; gso[2i] = gso_type (VX_GSO_TCPV4 /
 * VX_GSO_TCPV6, maybe | VX_GSO_ECN; 0 = a plain frame) and gso[2i+1] = gso_size (MSS). Frames with
 * an unusable header are dropped and counted in stats[VX_STAT_BAD_GSO].
 */
int vx_tap_read_vnet(int fd, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots, uint32_t *lens,
                     uint16_t *gso, uint64_t *stats);

/*
 * The per-frame part of vx_tap_read_vnet (no syscall; the fuzz harnesses call it): the frame's
 * virtio header `h` (as read) and its len bytes at `frame` (cap = the slot's room; len == cap means
 * possibly cut). Completes a partial checksum in place, sets gso[0..1] (type, MSS). Returns 1 to
 * deliver the frame, 0 to drop it (counted in stats).
 */
int vx_vnet_rx(vx_vnet_hdr *h, uint8_t *frame, size_t len, size_t cap, uint16_t *gso, uint64_t *stats);

/*
 * Builds the iovec of the next output frame from descriptors [0, count): the virtio header, then
 * either one whole frame (zero header) or a coalesced run (rewritten headers in m->hdr, then each
 * frame's payload). `max_merge` bounds the run (1 disables coalescing); `udp` also merges UDP
 * datagram runs (UDP_L4). Returns the iov count; m->count descriptors are used.
 */
int vx_tap_vnet_iov(const uint8_t *slab, const uint32_t *offs, const uint32_t *lens, uint32_t count, int max_merge,
                    int udp, vx_merge *m, uint32_t *plens, struct iovec *iov);

/*
 * Writes descriptors [0, count) (plain Ethernet frames) to a VX_TAP_F_VNET_HDR device, coalescing
 * runs of consecutive TCP segments of one flow into GSO frames (max_merge frames at most; 1 = never)
 * and, while *udp_coalescing (the device's own flag: cleared when its kernel refuses UDP_L4 GSO),
 * UDP datagram runs. Per-frame errors skip the frame (or the whole merged run) and are counted;
 * EAGAIN stops. Returns descriptors consumed; status as vx_tap_write_batch (a refused run gives
 * each of its descriptors the errno).
 */
uint32_t vx_tap_write_vnet(int fd, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens, uint32_t count,
                           int max_merge, int *udp_coalescing, int32_t *status, uint64_t *stats);

/*
 * vx_tap_write_vnet with per-descriptor gso info: gso[2j] = 0, a plain frame (runs of them are
 * coalesced as by vx_tap_write_vnet); else a TCP GSO frame (VX_GSO_TCPV4 / VX_GSO_TCPV6, maybe |
 * VX_GSO_ECN) of gso[2j+1]-byte segments, its TCP checksum field holding the pseudo-header sum
 * (CHECKSUM_PARTIAL, as vx_gro_run writes it): written with a NEEDS_CSUM virtio header derived from
 * its own headers. One that does not parse as TCP of that family is skipped with EINVAL.
 */
uint32_t vx_tap_write_gso(int fd, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens, const uint16_t *gso,
                          uint32_t count, int max_merge, int *udp_coalescing, int32_t *status, uint64_t *stats);
