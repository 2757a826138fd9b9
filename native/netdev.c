/*
 * Network-device ioctls on a throwaway AF_INET datagram socket: bridge add/delete (SIOCBRADDBR /
 * SIOCBRDELBR), bridge ports (SIOCBRADDIF / SIOCBRDELIF), MTU, flags (up/down), hardware address,
 * and if_nametoindex. See netdev.h.
 */
#define _GNU_SOURCE
#include "netdev.h"

#include <errno.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int ctl_socket(const char **syscall) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *syscall = "socket";
    return -errno;
  }
  return fd;
}

static int check_name(const char *name, const char **syscall, const char *call) {
  size_t n = strlen(name);
  if (n == 0 || n >= IFNAMSIZ) {
    *syscall = call;
    return n == 0 ? -EINVAL : -ENAMETOOLONG;
  }
  return 0;
}

/* ioctl(req) with an ifreq naming `name`; ifr in/out. */
static int ifreq_ioctl(const char *name, unsigned long req, struct ifreq *ifr, const char *call,
                       const char **syscall) {
  int rc = check_name(name, syscall, call);
  if (rc < 0) return rc;
  int fd = ctl_socket(syscall);
  if (fd < 0) return fd;
  strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
  ifr->ifr_name[IFNAMSIZ - 1] = 0;
  rc = ioctl(fd, req, ifr);
  int e = errno;
  close(fd);
  if (rc < 0) {
    *syscall = call;
    return -e;
  }
  return 0;
}

static int bridge_ioctl(const char *br, unsigned long req, const char *call, const char **syscall) {
  int rc = check_name(br, syscall, call);
  if (rc < 0) return rc;
  int fd = ctl_socket(syscall);
  if (fd < 0) return fd;
  char name[IFNAMSIZ];
  memset(name, 0, sizeof name);
  strncpy(name, br, IFNAMSIZ - 1);
  rc = ioctl(fd, req, name);
  int e = errno;
  close(fd);
  if (rc < 0) {
    *syscall = call;
    return -e;
  }
  return 0;
}

int vx_bridge_add(const char *br, const char **syscall) {
  return bridge_ioctl(br, SIOCBRADDBR, "ioctl(SIOCBRADDBR)", syscall);
}

int vx_bridge_del(const char *br, const char **syscall) {
  return bridge_ioctl(br, SIOCBRDELBR, "ioctl(SIOCBRDELBR)", syscall);
}

int vx_bridge_port(const char *br, const char *ifname, int add, const char **syscall) {
  int idx = vx_ifindex(ifname, syscall);
  if (idx < 0) return idx;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_ifindex = idx;
  return ifreq_ioctl(br, add ? SIOCBRADDIF : SIOCBRDELIF, &ifr,
                     add ? "ioctl(SIOCBRADDIF)" : "ioctl(SIOCBRDELIF)", syscall);
}

int vx_set_mtu(const char *name, int mtu, const char **syscall) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_mtu = mtu;
  return ifreq_ioctl(name, SIOCSIFMTU, &ifr, "ioctl(SIOCSIFMTU)", syscall);
}

int vx_get_mtu(const char *name, const char **syscall) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  int rc = ifreq_ioctl(name, SIOCGIFMTU, &ifr, "ioctl(SIOCGIFMTU)", syscall);
  return rc < 0 ? rc : ifr.ifr_mtu;
}

int vx_get_flags(const char *name, const char **syscall) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  int rc = ifreq_ioctl(name, SIOCGIFFLAGS, &ifr, "ioctl(SIOCGIFFLAGS)", syscall);
  return rc < 0 ? rc : (int)(unsigned short)ifr.ifr_flags;
}

int vx_set_up(const char *name, int up, const char **syscall) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  int rc = ifreq_ioctl(name, SIOCGIFFLAGS, &ifr, "ioctl(SIOCGIFFLAGS)", syscall);
  if (rc < 0) return rc;
  if (up)
    ifr.ifr_flags |= IFF_UP;
  else
    ifr.ifr_flags &= ~IFF_UP;
  return ifreq_ioctl(name, SIOCSIFFLAGS, &ifr, "ioctl(SIOCSIFFLAGS)", syscall);
}

int vx_get_mac(const char *name, uint8_t *mac, const char **syscall) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  int rc = ifreq_ioctl(name, SIOCGIFHWADDR, &ifr, "ioctl(SIOCGIFHWADDR)", syscall);
  if (rc < 0) return rc;
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  return 0;
}

int vx_ifindex(const char *name, const char **syscall) {
  int rc = check_name(name, syscall, "if_nametoindex");
  if (rc < 0) return rc;
  unsigned idx = if_nametoindex(name);
  if (idx == 0) {
    *syscall = "if_nametoindex";
    return -errno;
  }
  return (int)idx;
}
