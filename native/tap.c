/*
 * TAP device syscalls: open by name (create or attach to a persistent device), batched read into
 * slab slots at a headroom, batched write of descriptors. See tap.h for the contracts.
 */
#define _GNU_SOURCE
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int vx_tap_open(const char *name, unsigned flags, char *out_name, int *created, const char **syscall) {
  size_t n = strlen(name);
  if (n == 0 || n >= IFNAMSIZ) {
    *syscall = "ioctl(TUNSETIFF)";
    return n == 0 ? -EINVAL : -ENAMETOOLONG;
  }
  /* A name without a '%' pattern that resolves now is a device that pre-exists. */
  int existed = strchr(name, '%') == NULL && if_nametoindex(name) != 0;

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *syscall = "open(/dev/net/tun)";
    return -errno;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, n);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (flags & VX_TAP_F_VNET_HDR) ifr.ifr_flags |= IFF_VNET_HDR;
  if (flags & VX_TAP_F_MULTI_QUEUE) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (flags & VX_TAP_F_EXCL) ifr.ifr_flags |= IFF_TUN_EXCL;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    *syscall = "ioctl(TUNSETIFF)";
    return -e;
  }
  if (flags & VX_TAP_F_VNET_HDR) {
    int sz = VX_VNET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
      int e = errno;
      close(fd);
      *syscall = "ioctl(TUNSETVNETHDRSZ)";
      return -e;
    }
  }
  memcpy(out_name, ifr.ifr_name, IFNAMSIZ);
  out_name[IFNAMSIZ - 1] = 0;
  *created = !existed;
  return fd;
}

int vx_tap_set_offload(int fd, unsigned offloads, const char **syscall) {
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads) < 0) {
    *syscall = "ioctl(TUNSETOFFLOAD)";
    return -errno;
  }
  return 0;
}

int vx_tap_read_batch(int fd, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots,
                      uint32_t *lens) {
  uint32_t i = 0;
  size_t cap = slot_size - headroom;
  while (i < slots) {
    ssize_t r = read(fd, slab + (size_t)i * slot_size + headroom, cap);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || i > 0) break;
      return -errno;
    }
    lens[i++] = (uint32_t)((size_t)r > cap ? cap : (size_t)r);
  }
  return (int)i;
}

uint32_t vx_tap_write_batch(int fd, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens,
                            uint32_t count, uint64_t *skipped, uint64_t *last_errno) {
  uint32_t j = 0;
  while (j < count) {
    ssize_t r = write(fd, slab + offs[j], lens[j]);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      (*skipped)++;
      *last_errno = (uint64_t)errno;
    }
    j++;
  }
  return j;
}
