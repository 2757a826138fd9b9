/*
 * TAP device syscalls: open by name (create or attach to a persistent device), batched read into
 * slab slots at a headroom, batched write of descriptors. See tap.h for the contracts.
 */
#define _GNU_SOURCE
#include "tap.h"
#include "udp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
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
                      uint32_t *lens, uint64_t *truncated) {
  uint32_t i = 0;
  size_t cap = slot_size - headroom;
  while (i < slots) {
    ssize_t r = read(fd, slab + (size_t)i * slot_size + headroom, cap);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || i > 0) break;
      return -errno;
    }
    /* The kernel cuts a frame that does not fit and returns the cut length: a frame filling the
       whole slot may have been cut (callers size slots above the largest valid frame). */
    if ((size_t)r >= cap) (*truncated)++;
    lens[i++] = (uint32_t)((size_t)r > cap ? cap : (size_t)r);
  }
  return (int)i;
}

uint32_t vx_tap_write_batch(int fd, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens,
                            uint32_t count, int32_t *status, uint64_t *stats) {
  uint32_t j = 0;
  while (j < count) {
    ssize_t r = write(fd, slab + offs[j], lens[j]);
    int e = 0;
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        stats[VX_STAT_TX_EAGAIN]++;
        break;
      }
      e = errno;
      stats[VX_STAT_TX_SKIPPED]++;
      stats[VX_STAT_TX_LAST_ERRNO] = (uint64_t)e;
    }
    if (status != NULL) status[j] = e;
    j++;
  }
  return j;
}

/* ---- phase 2: IFF_VNET_HDR fast path ---- */

int vx_vnet_rx(vx_vnet_hdr *h, uint8_t *frame, size_t len, size_t cap, uint16_t *gso, uint64_t *stats) {
  if (len == cap) {
    /* Filled the slot: possibly cut. Useless as a super-frame; a plain frame is delivered as is. */
    stats[VX_STAT_RX_TRUNCATED]++;
    if (h->gso_type != VX_GSO_NONE) return 0;
    h->flags &= (uint8_t)~VX_VNET_F_NEEDS_CSUM;
  }
  uint8_t type = h->gso_type & (uint8_t)~VX_GSO_ECN;
  if (type == VX_GSO_NONE) {
    if ((h->flags & VX_VNET_F_NEEDS_CSUM) && vx_complete_csum(frame, len, h->csum_start, h->csum_offset) < 0) {
      stats[VX_STAT_BAD_GSO]++;
      return 0;
    }
    gso[0] = 0;
    gso[1] = 0;
  } else if ((type == VX_GSO_TCPV4 || type == VX_GSO_TCPV6) && h->gso_size > 0) {
    gso[0] = h->gso_type;
    gso[1] = h->gso_size;
  } else {
    stats[VX_STAT_BAD_GSO]++;
    return 0;
  }
  return 1;
}

int vx_tap_read_vnet(int fd, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots, uint32_t *lens,
                     uint16_t *gso, uint64_t *stats) {
  uint32_t i = 0;
  size_t cap = slot_size - headroom;
  while (i < slots) {
    vx_vnet_hdr h;
    uint8_t *frame = slab + (size_t)i * slot_size + headroom;
    struct iovec iov[2] = {{&h, sizeof h}, {frame, cap}};
    ssize_t r = readv(fd, iov, 2);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || i > 0) break;
      return -errno;
    }
    if ((size_t)r < sizeof h) {
      stats[VX_STAT_BAD_GSO]++;
      continue;
    }
    size_t len = (size_t)r - sizeof h;
    if (len > cap) len = cap;
    if (!vx_vnet_rx(&h, frame, len, cap, gso + 2 * i, stats)) continue;
    lens[i++] = (uint32_t)len;
  }
  return (int)i;
}

static const vx_vnet_hdr zero_vnet;

int vx_tap_vnet_iov(const uint8_t *slab, const uint32_t *offs, const uint32_t *lens, uint32_t count, int max_merge,
                    int udp, vx_merge *m, uint32_t *plens, struct iovec *iov) {
  const uint8_t *frames[64];
  int n = count < 64 ? (int)count : 64;
  if (max_merge > n) max_merge = n;
  for (int k = 0; k < n && k < max_merge; k++) frames[k] = slab + offs[k];
  if (max_merge >= 2)
    vx_coalesce_plan(frames, lens, n, max_merge, udp, m, plens);
  else {
    memset(&m->vnet, 0, sizeof m->vnet);
    m->count = 1;
  }
  if (m->count == 1) {
    iov[0].iov_base = (void *)&zero_vnet;
    iov[0].iov_len = sizeof zero_vnet;
    iov[1].iov_base = (void *)(slab + offs[0]);
    iov[1].iov_len = lens[0];
    return 2;
  }
  iov[0].iov_base = &m->vnet;
  iov[0].iov_len = sizeof m->vnet;
  iov[1].iov_base = m->hdr;
  iov[1].iov_len = m->hlen;
  for (int k = 0; k < m->count; k++) {
    iov[2 + k].iov_base = (void *)(frames[k] + m->hlen);
    iov[2 + k].iov_len = plens[k];
  }
  return 2 + m->count;
}

uint32_t vx_tap_write_vnet(int fd, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens, uint32_t count,
                           int max_merge, int *udp_coalescing, int32_t *status, uint64_t *stats) {
  uint32_t j = 0;
  vx_merge m;
  uint32_t plens[64];
  struct iovec iov[2 + 64];
  while (j < count) {
    int niov = vx_tap_vnet_iov(slab, offs + j, lens + j, count - j, max_merge, *udp_coalescing, &m, plens, iov);
    ssize_t r = writev(fd, iov, niov);
    int e = 0;
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        stats[VX_STAT_TX_EAGAIN]++;
        break;
      }
      if (errno == EINVAL && m.count > 1 && m.vnet.gso_type == VX_GSO_UDP_L4 && *udp_coalescing) {
        /* A kernel without UDP_L4 GSO on tun writes (before Linux 6.2): stop merging UDP on this
           device, resend the same descriptors unmerged. */
        *udp_coalescing = 0;
        continue;
      }
      e = errno;
      stats[VX_STAT_TX_SKIPPED] += (uint64_t)m.count;
      stats[VX_STAT_TX_LAST_ERRNO] = (uint64_t)e;
    } else if (m.count > 1) {
      stats[VX_STAT_GSO_WRITES]++;
      stats[VX_STAT_COALESCED] += (uint64_t)(m.count - 1);
    }
    if (status != NULL)
      for (int k = 0; k < m.count; k++) status[j + (uint32_t)k] = e;
    j += (uint32_t)m.count;
  }
  return j;
}

uint32_t vx_tap_write_gso(int fd, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens, const uint16_t *gso,
                          uint32_t count, int max_merge, int *udp_coalescing, int32_t *status, uint64_t *stats) {
  uint32_t j = 0;
  while (j < count) {
    if (gso[2 * j] == 0) {
      /* A run of plain frames: coalesced as by vx_tap_write_vnet. */
      uint32_t end = j;
      while (end < count && gso[2 * end] == 0) end++;
      uint32_t done = vx_tap_write_vnet(fd, slab, offs + j, lens + j, end - j, max_merge, udp_coalescing,
                                        status != NULL ? status + j : NULL, stats);
      j += done;
      if (j < end) return j; /* EAGAIN */
      continue;
    }
    const uint8_t *f = slab + offs[j];
    uint8_t type = (uint8_t)gso[2 * j];
    uint8_t t = type & (uint8_t)~VX_GSO_ECN;
    vx_l4 p;
    int e = 0;
    if (gso[2 * j + 1] == 0 || (t != VX_GSO_TCPV4 && t != VX_GSO_TCPV6) || vx_parse_tcp(f, lens[j], &p) < 0 ||
        (t == VX_GSO_TCPV6) != (p.v6 != 0)) {
      e = EINVAL;
    } else {
      vx_vnet_hdr h = {VX_VNET_F_NEEDS_CSUM, type, (uint16_t)p.hlen, gso[2 * j + 1], (uint16_t)p.l4, 16};
      struct iovec iov[2] = {{&h, sizeof h}, {(void *)f, lens[j]}};
      ssize_t r;
      do r = writev(fd, iov, 2);
      while (r < 0 && errno == EINTR);
      if (r < 0 && errno == EAGAIN) {
        stats[VX_STAT_TX_EAGAIN]++;
        return j;
      }
      if (r < 0) e = errno;
      else stats[VX_STAT_GSO_WRITES]++;
    }
    if (e != 0) {
      stats[VX_STAT_TX_SKIPPED]++;
      stats[VX_STAT_TX_LAST_ERRNO] = (uint64_t)e;
    }
    if (status != NULL) status[j] = e;
    j++;
  }
  return j;
}
