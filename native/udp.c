/*
 * Underlay UDP syscalls: open (main socket + ECMP source sockets, DF, big buffers), recvmmsg into
 * slab slots with address records, sendmmsg of descriptors grouped by source socket. See udp.h.
 */
#define _GNU_SOURCE
#include "udp.h"
#include "gso.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define VX_CHUNK 64

static void set_buffers(int fd, int bufbytes) {
  if (bufbytes <= 0) return;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufbytes, sizeof bufbytes) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufbytes, sizeof bufbytes);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufbytes, sizeof bufbytes) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufbytes, sizeof bufbytes);
}

/* Socket with DF always set; fd or -errno. */
int vx_udp_socket(int family, int bufbytes, const char **syscall) {
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) {
    *syscall = "socket";
    return -errno;
  }
  int rc;
  if (family == AF_INET) {
    int v = IP_PMTUDISC_DO;
    rc = setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v);
    *syscall = "setsockopt(IP_MTU_DISCOVER)";
  } else {
    int one = 1, v = IPV6_PMTUDISC_DO;
    rc = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    *syscall = "setsockopt(IPV6_V6ONLY)";
    if (rc == 0) {
      rc = setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v, sizeof v);
      *syscall = "setsockopt(IPV6_MTU_DISCOVER)";
    }
    if (rc == 0) {
      rc = setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &one, sizeof one);
      *syscall = "setsockopt(IPV6_DONTFRAG)";
    }
  }
  if (rc < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  set_buffers(fd, bufbytes);
  return fd;
}

static socklen_t make_sockaddr(int family, const void *ip, uint16_t port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    memcpy(&s4->sin_addr, ip, 4);
    return sizeof *s4;
  }
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons(port);
  memcpy(&s6->sin6_addr, ip, 16);
  return sizeof *s6;
}

static uint16_t bound_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Source sockets are never read: a filter drops anything that arrives on them. */
static void drop_all_input(int fd) {
  struct sock_filter code[] = {{BPF_RET | BPF_K, 0, 0, 0}};
  struct sock_fprog prog = {1, code};
  (void)setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
}

void vx_udp_close(vx_udp *u) {
  vx_split_close(&u->split);
  if (u->g) {
    free(u->g->buf);
    free(u->g);
    u->g = NULL;
  }
  for (int i = 0; i < u->nsrc; i++)
    if (u->src[i] >= 0 && u->src[i] != u->fd) close(u->src[i]);
  if (u->fd >= 0) close(u->fd);
  u->fd = -1;
  u->nsrc = 0;
}

int vx_udp_open(vx_udp *u, int family, const char *address, uint16_t port, int nsrc, int bufbytes,
                const char **syscall) {
  memset(u, 0, sizeof *u);
  u->fd = -1;
  u->split.hs = u->split.epfd = u->split.tfd = -1;
  u->family = family == 6 ? AF_INET6 : AF_INET;
  if (nsrc < 1 || nsrc > VX_UDP_MAX_SRC) {
    *syscall = "socket";
    return -EINVAL;
  }
  unsigned char ip[16];
  if (inet_pton(u->family, address, ip) != 1) {
    *syscall = "inet_pton";
    return -EINVAL;
  }
  struct sockaddr_storage ss;
  int fd = vx_udp_socket(u->family, bufbytes, syscall);
  if (fd < 0) return fd;
  socklen_t sl = make_sockaddr(u->family, ip, port, &ss);
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
    int e = errno;
    close(fd);
    *syscall = "bind";
    return -e;
  }
  u->fd = fd;
  u->port = bound_port(fd);
  {
    /* The handshake socket on the same port (udp_split.c); may replace u->fd by a SO_REUSEPORT twin. */
    int rc = vx_split_open(u, &ss, (unsigned)sl, bufbytes, syscall);
    if (rc < 0) {
      vx_udp_close(u);
      return rc;
    }
    fd = u->fd;
  }
  {
    /* UDP GSO available (Linux >= 4.18)? Setting a 0 segment size is a no-op probe. */
    int zero = 0;
    u->gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
  }
  if (nsrc == 1) {
    u->nsrc = 1;
    u->src[0] = fd;
    u->src_port[0] = u->port;
    return 0;
  }
  for (int i = 0; i < nsrc; i++) {
    int s = vx_udp_socket(u->family, bufbytes, syscall);
    if (s < 0) {
      vx_udp_close(u);
      return s;
    }
    u->src[i] = s;
    u->nsrc = i + 1;
    int bound = 0, e = EADDRINUSE;
    for (int attempt = 0; attempt < 256 && !bound; attempt++) {
      uint16_t r;
      if (getrandom(&r, sizeof r, 0) != sizeof r) r = (uint16_t)(attempt * 7919 + i * 104729);
      uint16_t p = (uint16_t)(VX_SRC_PORT_MIN + r % (65536 - VX_SRC_PORT_MIN));
      sl = make_sockaddr(u->family, ip, p, &ss);
      if (bind(s, (struct sockaddr *)&ss, sl) == 0) {
        bound = 1;
        u->src_port[i] = p;
      } else {
        e = errno;
        if (e != EADDRINUSE) break;
      }
    }
    if (!bound) {
      vx_udp_close(u);
      *syscall = "bind";
      return -e;
    }
    drop_all_input(s);
  }
  return 0;
}

static void to_record(const struct sockaddr_storage *ss, uint8_t *rec) {
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    memset(rec, 0, 10);
    rec[10] = 0xff;
    rec[11] = 0xff;
    memcpy(rec + 12, &s4->sin_addr, 4);
    memcpy(rec + 16, &s4->sin_port, 2);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    memcpy(rec, &s6->sin6_addr, 16);
    memcpy(rec + 16, &s6->sin6_port, 2);
  } else {
    memset(rec, 0, VX_ADDR_LEN);
  }
}

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Record → sockaddr for this socket's family; 0 when the record does not fit the family. */
static socklen_t from_record(int family, const uint8_t *rec, struct sockaddr_storage *ss) {
  uint16_t port = (uint16_t)(rec[16] << 8 | rec[17]);
  int mapped = memcmp(rec, v4mapped_prefix, 12) == 0;
  if (family == AF_INET) {
    if (!mapped) return 0;
    return make_sockaddr(AF_INET, rec + 12, port, ss);
  }
  if (mapped) return 0;
  return make_sockaddr(AF_INET6, rec, port, ss);
}

static int recv_gro(vx_udp *u, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots, uint32_t *lens,
                    uint8_t *addrs, uint64_t *stats, vx_rx_runs *runs);

int vx_udp_recv_fd(int fd, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t start, uint32_t slots,
                   uint32_t *lens, uint8_t *addrs, uint64_t *stats) {
  struct mmsghdr msgs[VX_CHUNK];
  struct iovec iov[VX_CHUNK];
  struct sockaddr_storage names[VX_CHUNK];
  uint32_t cap = slot_size - headroom;
  uint32_t done = start; /* slots filled */
  while (done < slots) {
    uint32_t want = slots - done;
    if (want > VX_CHUNK) want = VX_CHUNK;
    for (uint32_t k = 0; k < want; k++) {
      iov[k].iov_base = slab + (size_t)(done + k) * slot_size + headroom;
      iov[k].iov_len = cap;
      memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
      msgs[k].msg_hdr.msg_name = &names[k];
      msgs[k].msg_hdr.msg_namelen = sizeof names[k];
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
      msgs[k].msg_len = 0;
    }
    int n = recvmmsg(fd, msgs, want, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || done > start) break;
      return -errno;
    }
    if (n == 0) break;
    /* A datagram larger than its slot arrives truncated (MSG_TRUNC): delivered as such, counted. */
    for (int k = 0; k < n; k++) {
      if (msgs[k].msg_hdr.msg_flags & MSG_TRUNC) stats[VX_STAT_RX_TRUNCATED]++;
      lens[done + (uint32_t)k] = msgs[k].msg_len;
      to_record(&names[k], addrs + (size_t)(done + (uint32_t)k) * VX_ADDR_LEN);
    }
    done += (uint32_t)n;
    if ((uint32_t)n < want) break;
  }
  return (int)done;
}

int vx_udp_recv_batch(vx_udp *u, uint8_t *slab, uint32_t slot_size, uint32_t headroom,
                      uint32_t slots, uint32_t *lens, uint8_t *addrs, uint64_t *stats, vx_rx_runs *runs) {
  uint32_t dslots = vx_split_data_slots(&u->split, slots); /* = slots unless handshakes are owed room */
  int n;
  if (runs != NULL) runs->used = 0; /* the caller is done with the previous call's runs */
  if (u->g && (u->gro || vx_udp_gro_pending(u))) {
    n = recv_gro(u, slab, slot_size, headroom, dslots, lens, addrs, stats, runs);
  } else {
    n = vx_udp_recv_fd(u->fd, slab, slot_size, headroom, 0, dslots, lens, addrs, stats);
    if (runs != NULL && n > 0) vx_rx_runs_plain(runs, 0, (uint32_t)n, slot_size, headroom, lens);
  }
  if (n < 0 || u->split.hs < 0) return n;
  u->split.full = (uint32_t)n == slots ? u->split.full + 1 : 0;
  uint32_t total = vx_split_recv(u, slab, slot_size, headroom, slots, (uint32_t)n, lens, addrs, stats);
  if (runs != NULL) vx_rx_runs_plain(runs, (uint32_t)n, total, slot_size, headroom, lens);
  return (int)total;
}

void vx_rx_runs_plain(const vx_rx_runs *r, uint32_t from, uint32_t to, uint32_t slot_size, uint32_t headroom,
                      const uint32_t *lens) {
  for (uint32_t i = from; i < to; i++) {
    r->offs[i] = i * slot_size + headroom;
    r->gso[2 * i] = 0;
    r->gso[2 * i + 1] = 0;
    r->segs[i] = 1;
    r->wire[i] = lens[i];
  }
}

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#define VX_GSO_MAX_PER_SEND 64 /* UDP_MAX_SEGMENTS of older kernels */
#define VX_GSO_MAX_BYTES 65000 /* UDP payload of one GSO send (IP length limit, with headers) */
#define VX_IOV_MAX 256

/*
 * sendmmsg of descriptors; with `batching`, a run of consecutive descriptors to the same destination
 * from the same socket whose lengths are equal (the last may be shorter) becomes ONE message with
 * UDP_SEGMENT set to that length: the kernel cuts it into exactly those datagrams (same bytes on the
 * wire), and the whole run crosses the stack, the veth and a UDP_GRO receiver as one skb. A run the
 * kernel refuses as a whole is resent one datagram per descriptor (per-descriptor error semantics).
 */
#define SET_STATUS(st, j, v) \
  do {                         \
    if ((st) != NULL) (st)[j] = (v); \
  } while (0)

/* A skipped descriptor: counted, and its errno in status. */
static void skip_desc(uint64_t *stats, int32_t *status, uint32_t j, int e) {
  stats[VX_STAT_TX_SKIPPED]++;
  if (e == EMSGSIZE) stats[VX_STAT_TX_EMSGSIZE]++;
  stats[VX_STAT_TX_LAST_ERRNO] = (uint64_t)e;
  SET_STATUS(status, j, e);
}

static uint32_t send_plain(vx_udp *u, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens,
                           const uint8_t *addrs, const uint8_t *src_idx, uint32_t count, int32_t *status,
                           uint64_t *stats, int batching) {
  struct mmsghdr msgs[VX_CHUNK];
  struct iovec iov[VX_IOV_MAX];
  struct sockaddr_storage names[VX_CHUNK];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl[VX_CHUNK];
  uint32_t first[VX_CHUNK], ndesc[VX_CHUNK];
  uint32_t j = 0;
  while (j < count) {
    /* One run: consecutive descriptors with the same source socket, at most VX_CHUNK messages. */
    uint8_t si = src_idx[j];
    if (si >= u->nsrc) {
      skip_desc(stats, status, j, EINVAL);
      j++;
      continue;
    }
    uint32_t m = 0, end = j, used = 0;
    while (end < count && m < VX_CHUNK && src_idx[end] == si && used < VX_IOV_MAX) {
      socklen_t sl = from_record(u->family, addrs + (size_t)end * VX_ADDR_LEN, &names[m]);
      if (sl == 0) break; /* wrong family: handled below as a skipped descriptor */
      uint32_t g = 1, seg = lens[end], total = lens[end];
      if (batching && seg > 0) {
        const uint8_t *rec = addrs + (size_t)end * VX_ADDR_LEN;
        while (end + g < count && g < VX_GSO_MAX_PER_SEND && used + g < VX_IOV_MAX && src_idx[end + g] == si &&
               lens[end + g] > 0 && lens[end + g] <= seg && total + lens[end + g] <= VX_GSO_MAX_BYTES &&
               memcmp(addrs + (size_t)(end + g) * VX_ADDR_LEN, rec, VX_ADDR_LEN) == 0) {
          total += lens[end + g];
          g++;
          if (lens[end + g - 1] < seg) break; /* a shorter datagram ends the run */
        }
      }
      for (uint32_t k = 0; k < g; k++) {
        iov[used + k].iov_base = (void *)(slab + offs[end + k]);
        iov[used + k].iov_len = lens[end + k];
      }
      memset(&msgs[m].msg_hdr, 0, sizeof msgs[m].msg_hdr);
      msgs[m].msg_hdr.msg_name = &names[m];
      msgs[m].msg_hdr.msg_namelen = sl;
      msgs[m].msg_hdr.msg_iov = &iov[used];
      msgs[m].msg_hdr.msg_iovlen = g;
      if (g > 1) {
        memset(&ctl[m], 0, sizeof ctl[m]);
        msgs[m].msg_hdr.msg_control = ctl[m].buf;
        msgs[m].msg_hdr.msg_controllen = sizeof ctl[m].buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[m].msg_hdr);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t s16 = (uint16_t)seg;
        memcpy(CMSG_DATA(cm), &s16, sizeof s16);
      }
      first[m] = end;
      ndesc[m] = g;
      m++;
      end += g;
      used += g;
    }
    if (m == 0) {
      skip_desc(stats, status, j, EAFNOSUPPORT);
      j++;
      continue;
    }
    uint32_t sent = 0;
    while (sent < m) {
      int r = sendmmsg(u->src[si], msgs + sent, m - sent, MSG_DONTWAIT);
      if (r > 0) {
        for (uint32_t k = sent; k < sent + (uint32_t)r; k++) {
          if (ndesc[k] > 1) stats[VX_STAT_GSO_SENDS]++;
          if (status != NULL)
            for (uint32_t d = 0; d < ndesc[k]; d++) status[first[k] + d] = 0;
        }
        sent += (uint32_t)r;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno == EAGAIN) {
        stats[VX_STAT_TX_EAGAIN]++;
        return first[sent];
      }
      int e = r < 0 ? errno : EIO;
      if (ndesc[sent] > 1) {
        /* The kernel refused the run as a whole: one datagram per descriptor decides each one. */
        uint32_t f = first[sent];
        uint32_t done = send_plain(u, slab, offs + f, lens + f, addrs + (size_t)f * VX_ADDR_LEN, src_idx + f,
                                   ndesc[sent], status != NULL ? status + f : NULL, stats, 0);
        if (done < ndesc[sent]) return f + done; /* EAGAIN */
        if (e == ENOPROTOOPT || e == EOPNOTSUPP) u->gso = 0;
        sent++;
        continue;
      }
      /* The descriptor of this message failed: skip it and go on. */
      skip_desc(stats, status, first[sent], e);
      sent++;
    }
    j = end;
  }
  return j;
}

uint32_t vx_udp_send_batch(vx_udp *u, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens,
                           const uint8_t *addrs, const uint8_t *src_idx, uint32_t count, int32_t *status,
                           uint64_t *stats) {
  return send_plain(u, slab, offs, lens, addrs, src_idx, count, status, stats, u->gso);
}

/* ---- phase 2: TSO super-frames → UDP GSO (UDP_SEGMENT) or sendmmsg ---- */

/*
 * The n segments of one super-frame, scatter-gather: segment i is its headers at hdrs + i*hstride
 * (VXLAN prefix + rewritten Ethernet/IP/TCP headers) then its payload at pay + i*mss, still inside
 * the super-frame read from the TAP (no copy here: the kernel's copy into the skb is the only one).
 * UDP GSO cuts at hstride + mss, so every segment but the last of a send must be full.
 * 1 sent, 0 skipped (*err = its errno), -1 EAGAIN.
 */
static int send_segments(vx_udp *u, int fd, struct sockaddr_storage *dst, socklen_t dl, uint8_t *hdrs, uint32_t hstride,
                         const uint8_t *pay, uint32_t mss, const uint32_t *pay_lens, int n, uint64_t *stats, int *err) {
  int i = 0;
  int use_gso = u->gso;
  const uint32_t stride = hstride + mss;
  while (i < n) {
    if (use_gso) {
      int c = 0;
      size_t bytes = 0;
      struct iovec iov[2 * VX_GSO_MAX_PER_SEND];
      while (i + c < n && c < VX_GSO_MAX_PER_SEND && bytes + hstride + pay_lens[i + c] <= VX_GSO_MAX_BYTES) {
        iov[2 * c].iov_base = hdrs + (size_t)(i + c) * hstride;
        iov[2 * c].iov_len = hstride;
        iov[2 * c + 1].iov_base = (void *)(pay + (size_t)(i + c) * mss);
        iov[2 * c + 1].iov_len = pay_lens[i + c];
        bytes += hstride + pay_lens[i + c];
        c++;
        if (pay_lens[i + c - 1] != mss) break; /* a short segment must be the last of a send */
      }
      if (c == 0) {
        iov[0].iov_base = hdrs + (size_t)i * hstride;
        iov[0].iov_len = hstride;
        iov[1].iov_base = (void *)(pay + (size_t)i * mss);
        iov[1].iov_len = pay_lens[i];
        c = 1;
      }
      union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
      } ctl;
      struct msghdr mh;
      memset(&mh, 0, sizeof mh);
      mh.msg_name = dst;
      mh.msg_namelen = dl;
      mh.msg_iov = iov;
      mh.msg_iovlen = (size_t)(2 * c);
      if (c > 1) {
        memset(&ctl, 0, sizeof ctl);
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t seg = (uint16_t)stride;
        memcpy(CMSG_DATA(cm), &seg, sizeof seg);
      }
      ssize_t r = sendmsg(fd, &mh, MSG_DONTWAIT);
      if (r >= 0) {
        if (c > 1) stats[VX_STAT_GSO_SENDS]++;
        i += c;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return -1;
      if (c > 1 && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
        /* This route/device cannot take it (EIO: no checksum offload; EINVAL: segment over the MTU):
           this super-frame goes one datagram per segment; a kernel without UDP GSO, for good. */
        if (errno == ENOPROTOOPT || errno == EOPNOTSUPP) u->gso = 0;
        use_gso = 0;
        stats[VX_STAT_GSO_FALLBACK]++;
        continue;
      }
      *err = errno;
      return 0;
    }
    /* Fallback: one datagram per segment (two iovecs each). */
    struct mmsghdr msgs[VX_CHUNK];
    struct iovec iov[2 * VX_CHUNK];
    int c = n - i < VX_CHUNK ? n - i : VX_CHUNK;
    for (int k = 0; k < c; k++) {
      iov[2 * k].iov_base = hdrs + (size_t)(i + k) * hstride;
      iov[2 * k].iov_len = hstride;
      iov[2 * k + 1].iov_base = (void *)(pay + (size_t)(i + k) * mss);
      iov[2 * k + 1].iov_len = pay_lens[i + k];
      memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
      msgs[k].msg_hdr.msg_name = dst;
      msgs[k].msg_hdr.msg_namelen = dl;
      msgs[k].msg_hdr.msg_iov = &iov[2 * k];
      msgs[k].msg_hdr.msg_iovlen = 2;
    }
    int r = sendmmsg(fd, msgs, (unsigned)c, MSG_DONTWAIT);
    if (r > 0) {
      i += r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return -1;
    *err = r < 0 ? errno : EIO;
    return 0;
  }
  return 1;
}

uint32_t vx_udp_send_gso(vx_udp *u, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens,
                         const uint8_t *addrs, const uint8_t *src_idx, const uint16_t *gso, uint32_t prefix_len,
                         uint32_t count, int32_t *status, uint64_t *stats, uint8_t *scratch) {
  uint32_t j = 0;
  uint32_t pay_lens[VX_GSO_MAX_SEGS];
  while (j < count) {
    if (gso[2 * j] == 0) {
      /* A run of plain datagrams: the phase-1 path. */
      uint32_t end = j;
      while (end < count && gso[2 * end] == 0) end++;
      uint32_t done = vx_udp_send_batch(u, slab, offs + j, lens + j, addrs + (size_t)j * VX_ADDR_LEN, src_idx + j,
                                        end - j, status != NULL ? status + j : NULL, stats);
      j += done;
      if (j < end) return j; /* EAGAIN */
      continue;
    }
    uint8_t si = src_idx[j];
    struct sockaddr_storage dst;
    socklen_t dl = si < u->nsrc ? from_record(u->family, addrs + (size_t)j * VX_ADDR_LEN, &dst) : 0;
    if (dl == 0 || lens[j] < prefix_len) {
      skip_desc(stats, status, j, si < u->nsrc && lens[j] >= prefix_len ? EAFNOSUPPORT : EINVAL);
      j++;
      continue;
    }
    uint32_t hlen = 0;
    const uint8_t *f = slab + offs[j] + prefix_len;
    uint16_t mss = gso[2 * j + 1];
    int n = vx_tso_headers(f, lens[j] - prefix_len, (uint8_t)gso[2 * j], mss, slab + offs[j], prefix_len, scratch,
                           VX_GSO_SCRATCH, pay_lens, VX_GSO_MAX_SEGS, &hlen);
    if (n <= 0) {
      stats[VX_STAT_BAD_TSO]++;
      SET_STATUS(status, j, EINVAL);
      j++;
      continue;
    }
    stats[VX_STAT_SEGMENTS] += (uint64_t)n;
    if (!u->gso) stats[VX_STAT_GSO_FALLBACK]++;
    int e = 0;
    int r = send_segments(u, u->src[si], &dst, dl, scratch, prefix_len + hlen, f + hlen, mss, pay_lens, n, stats, &e);
    if (r == 0) skip_desc(stats, status, j, e);
    else SET_STATUS(status, j, r < 0 ? EAGAIN : 0);
    j++; /* a super-frame cut short by EAGAIN is consumed (status EAGAIN): TCP retransmits what was lost */
    if (r < 0) {
      stats[VX_STAT_TX_EAGAIN]++;
      return j;
    }
  }
  return j;
}

/* ---- phase 2: UDP GRO receive ---- */

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

int vx_udp_gro_pending(const vx_udp *u) { return u->g != NULL && u->g->cur < u->g->n; }

int vx_udp_set_gro(vx_udp *u, int on, const char **syscall) {
  if (on && u->g == NULL) {
    vx_gro *g = calloc(1, sizeof *g);
    if (g == NULL) return -ENOMEM;
    g->buf = malloc((size_t)VX_GRO_BUFS * VX_GRO_BUFSZ);
    if (g->buf == NULL) {
      free(g);
      return -ENOMEM;
    }
    u->g = g;
  }
  int v = on ? 1 : 0;
  if (setsockopt(u->fd, SOL_UDP, UDP_GRO, &v, sizeof v) < 0) {
    *syscall = "setsockopt(UDP_GRO)";
    return -errno;
  }
  u->gro = on;
  return 0;
}

uint32_t vx_gro_split(vx_gro *g, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots, uint32_t done,
                      uint32_t *lens, uint8_t *addrs, uint64_t *stats) {
  uint32_t cap = slot_size - headroom;
  while (done < slots && g->cur < g->n) {
    uint32_t L = g->len[g->cur];
    uint32_t seg = g->seg[g->cur] ? g->seg[g->cur] : L;
    uint32_t chunk = L - g->off < seg ? L - g->off : seg; /* 0 for an empty datagram: still one */
    uint32_t copy = chunk;
    if (copy > cap) {
      copy = cap; /* truncated like recvmmsg would */
      stats[VX_STAT_RX_TRUNCATED]++;
    }
    memcpy(slab + (size_t)done * slot_size + headroom, g->buf + (size_t)g->cur * VX_GRO_BUFSZ + g->off, copy);
    lens[done] = copy;
    memcpy(addrs + (size_t)done * VX_ADDR_LEN, g->addr[g->cur], VX_ADDR_LEN);
    done++;
    g->off += chunk;
    if (g->off >= L) {
      g->cur++;
      g->off = 0;
    }
  }
  return done;
}

/* Moves the split position past one datagram of `chunk` bytes. */
static void gro_advance(vx_gro *g, uint32_t chunk) {
  g->off += chunk;
  if (g->off >= g->len[g->cur]) {
    g->cur++;
    g->off = 0;
  }
}

uint32_t vx_gro_split_runs(vx_gro *g, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots,
                           uint32_t done, uint32_t *lens, uint8_t *addrs, uint64_t *stats, vx_rx_runs *r) {
  uint32_t cap = slot_size - headroom;
  const uint32_t area = VX_GRO_BUFS * VX_GRO_BUFSZ;
  while (done < slots && g->cur < g->n) {
    if (r->used > area - VX_GRO_RUN_ROOM && done > 0) break; /* the run area is full: the rest waits for the next call */
    const uint32_t L = g->len[g->cur];
    const uint32_t seg = g->seg[g->cur] ? g->seg[g->cur] : L;
    const uint8_t *b = g->buf + (size_t)g->cur * VX_GRO_BUFSZ;
    /*
     * Candidates for a run from here: the datagrams that follow, in this buffer and on into the next
     * buffers while they come from the same sender (the kernel ends a GRO buffer at each UDP GSO
     * send, one TSO super-frame of the peer; a flow's run goes on across them as the TAP write's
     * coalescer would merge it). None longer than a slot, none empty.
     */
    const uint8_t *dg[VX_GRO_RUN_MAX];
    uint32_t dl[VX_GRO_RUN_MAX];
    int n = 0;
    for (int bi = g->cur; bi < g->n && n < VX_GRO_RUN_MAX; bi++) {
      if (bi != g->cur && memcmp(g->addr[bi], g->addr[g->cur], VX_ADDR_LEN) != 0) break;
      const uint32_t Lb = g->len[bi], sb = g->seg[bi] ? g->seg[bi] : Lb;
      const uint8_t *bb = g->buf + (size_t)bi * VX_GRO_BUFSZ;
      uint32_t o = bi == g->cur ? g->off : 0;
      int stop = Lb == 0;
      for (; !stop && n < VX_GRO_RUN_MAX && o < Lb; n++) {
        uint32_t c = Lb - o < sb ? Lb - o : sb;
        if (c > cap) {
          stop = 1; /* one that would be truncated in a slot is never merged */
          break;
        }
        dg[n] = bb + o;
        dl[n] = c;
        o += c;
      }
      if (stop) break;
    }
    if (n >= 2) {
      vx_gro_out go = {.max_frame = r->max_frame};
      int k = r->used <= area ? vx_gro_run(dg, dl, n, n, slab + r->super_off + r->used, area - r->used, &go) : 1;
      if (k >= 2) {
        lens[done] = go.len;
        r->offs[done] = r->super_off + r->used;
        r->used += (go.len + 7) & ~7u;
        r->gso[2 * done] = go.gso_type;
        r->gso[2 * done + 1] = go.gso_size;
        r->segs[done] = (uint16_t)k;
        r->wire[done] = go.wire;
        memcpy(addrs + (size_t)done * VX_ADDR_LEN, g->addr[g->cur], VX_ADDR_LEN);
        stats[VX_STAT_GRO_RUNS]++;
        done++;
        for (int d = 0; d < k; d++) gro_advance(g, dl[d]);
        continue;
      }
    }
    uint32_t chunk = L - g->off < seg ? L - g->off : seg; /* 0 for an empty datagram: still one */
    uint32_t copy = chunk;
    if (copy > cap) {
      copy = cap; /* truncated like recvmmsg would */
      stats[VX_STAT_RX_TRUNCATED]++;
    }
    memcpy(slab + (size_t)done * slot_size + headroom, b + g->off, copy);
    lens[done] = copy;
    r->offs[done] = done * slot_size + headroom;
    r->gso[2 * done] = 0;
    r->gso[2 * done + 1] = 0;
    r->segs[done] = 1;
    r->wire[done] = copy;
    memcpy(addrs + (size_t)done * VX_ADDR_LEN, g->addr[g->cur], VX_ADDR_LEN);
    done++;
    gro_advance(g, chunk);
  }
  return done;
}

/*
 * recvmmsg into the GRO buffers, then one datagram per caller slot: a coalesced buffer holds
 * datagrams of `seg` bytes (the last may be shorter). What does not fit stays buffered
 * (vx_udp_gro_pending) for the next call.
 */
static int recv_gro(vx_udp *u, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots, uint32_t *lens,
                    uint8_t *addrs, uint64_t *stats, vx_rx_runs *runs) {
  vx_gro *g = u->g;
  uint32_t done = 0;
  int socket_empty = 0;
  for (;;) {
    done = runs != NULL ? vx_gro_split_runs(g, slab, slot_size, headroom, slots, done, lens, addrs, stats, runs)
                        : vx_gro_split(g, slab, slot_size, headroom, slots, done, lens, addrs, stats);
    if (vx_udp_gro_pending(u)) break; /* slots or the run area full: the rest is handed out next call */
    if (done == slots || socket_empty || !u->gro) break;
    struct mmsghdr msgs[VX_GRO_BUFS];
    struct iovec iov[VX_GRO_BUFS];
    struct sockaddr_storage names[VX_GRO_BUFS];
    union {
      char buf[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } ctl[VX_GRO_BUFS];
    for (int k = 0; k < VX_GRO_BUFS; k++) {
      iov[k].iov_base = g->buf + (size_t)k * VX_GRO_BUFSZ;
      iov[k].iov_len = VX_GRO_BUFSZ;
      memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
      msgs[k].msg_hdr.msg_name = &names[k];
      msgs[k].msg_hdr.msg_namelen = sizeof names[k];
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
      msgs[k].msg_hdr.msg_control = ctl[k].buf;
      msgs[k].msg_hdr.msg_controllen = sizeof ctl[k].buf;
    }
    int n = recvmmsg(u->fd, msgs, VX_GRO_BUFS, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || done > 0) break;
      return -errno;
    }
    if (n == 0) break;
    g->n = 0;
    g->cur = 0;
    g->off = 0;
    for (int k = 0; k < n; k++) {
      if (msgs[k].msg_hdr.msg_flags & MSG_TRUNC) {
        stats[VX_STAT_RX_TRUNCATED]++;
        continue;
      }
      uint16_t seg = 0;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[k].msg_hdr); c; c = CMSG_NXTHDR(&msgs[k].msg_hdr, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int v;
          memcpy(&v, CMSG_DATA(c), sizeof v);
          if (v > 0 && v < 65536) seg = (uint16_t)v;
        }
      }
      int w = g->n++;
      if (w != k) memmove(g->buf + (size_t)w * VX_GRO_BUFSZ, g->buf + (size_t)k * VX_GRO_BUFSZ, msgs[k].msg_len);
      g->len[w] = msgs[k].msg_len;
      g->seg[w] = seg && seg < msgs[k].msg_len ? seg : 0;
      if (g->seg[w]) stats[VX_STAT_GRO_BUFS]++;
      to_record(&names[k], g->addr[w]);
    }
    if (n < VX_GRO_BUFS) socket_empty = 1;
  }
  return (int)done;
}
