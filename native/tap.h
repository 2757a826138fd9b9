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
 * slot_size - headroom bytes; lens[i] gets its length. Stops at EAGAIN or when slots are full.
 * Returns the number of frames read (>= 0); when an error other than EAGAIN/EINTR stops the batch
 * before any frame was read returns -errno.
 */
int vx_tap_read_batch(int fd, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots,
                      uint32_t *lens);

/*
 * Writes descriptors [0, count): descriptor j is lens[j] bytes at slab + offs[j] (bounds checked
 * by the caller). A per-frame error other than EAGAIN skips that frame (*skipped++, *last_errno set);
 * EAGAIN stops. Returns the number of descriptors consumed (written or skipped).
 */
uint32_t vx_tap_write_batch(int fd, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens,
                            uint32_t count, uint64_t *skipped, uint64_t *last_errno);

#endif
