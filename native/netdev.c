/*
 * Network-device ioctls on a throwaway AF_INET datagram socket: bridge add/delete (SIOCBRADDBR /
 * SIOCBRDELBR), bridge ports (SIOCBRADDIF / SIOCBRDELIF), MTU, flags (up/down), hardware address,
 * and if_nametoindex. See netdev.h.
 */
#define _GNU_SOURCE
#include "netdev.h"

#include <errno.h>
#include <linux/ethtool.h>
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

/* ---- ethtool (SIOCETHTOOL) ---- */

static int ethtool_ioctl(const char *name, void *data, const char *call, const char **syscall) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_data = data;
  return ifreq_ioctl(name, SIOCETHTOOL, &ifr, call, syscall);
}

/* Number of ETH_SS_FEATURES strings of the device, or -errno. */
static int features_count(const char *name, const char **syscall) {
  struct {
    struct ethtool_sset_info hdr;
    uint32_t len;
  } info;
  memset(&info, 0, sizeof info);
  info.hdr.cmd = ETHTOOL_GSSET_INFO;
  info.hdr.sset_mask = 1ULL << ETH_SS_FEATURES;
  int rc = ethtool_ioctl(name, &info, "ioctl(SIOCETHTOOL, ETHTOOL_GSSET_INFO)", syscall);
  if (rc < 0) return rc;
  if (!(info.hdr.sset_mask & (1ULL << ETH_SS_FEATURES))) {
    *syscall = "ioctl(SIOCETHTOOL, ETHTOOL_GSSET_INFO)";
    return -EOPNOTSUPP;
  }
  if (info.len > VX_FEATURES_MAX) {
    *syscall = "ioctl(SIOCETHTOOL, ETHTOOL_GSSET_INFO)";
    return -E2BIG;
  }
  return (int)info.len;
}

#define FEATURE_BLOCKS ((VX_FEATURES_MAX + 31) / 32)

int vx_features_get(const char *name, vx_feature *out, int cap, const char **syscall) {
  int n = features_count(name, syscall);
  if (n < 0) return n;
  /* Static sizes (VX_FEATURES_MAX): no allocation, and a count that changed in between is harmless. */
  struct {
    struct ethtool_gstrings hdr;
    uint8_t data[VX_FEATURES_MAX * ETH_GSTRING_LEN];
  } strs;
  memset(&strs, 0, sizeof strs);
  strs.hdr.cmd = ETHTOOL_GSTRINGS;
  strs.hdr.string_set = ETH_SS_FEATURES;
  strs.hdr.len = (uint32_t)n;
  int rc = ethtool_ioctl(name, &strs, "ioctl(SIOCETHTOOL, ETHTOOL_GSTRINGS)", syscall);
  if (rc < 0) return rc;
  struct {
    struct ethtool_gfeatures hdr;
    struct ethtool_get_features_block blocks[FEATURE_BLOCKS];
  } feat;
  memset(&feat, 0, sizeof feat);
  feat.hdr.cmd = ETHTOOL_GFEATURES;
  feat.hdr.size = (uint32_t)((n + 31) / 32);
  rc = ethtool_ioctl(name, &feat, "ioctl(SIOCETHTOOL, ETHTOOL_GFEATURES)", syscall);
  if (rc < 0) return rc;
  int m = n < (int)strs.hdr.len ? n : (int)strs.hdr.len;
  for (int i = 0; i < m && i < cap; i++) {
    memcpy(out[i].name, strs.data + (size_t)i * ETH_GSTRING_LEN, ETH_GSTRING_LEN); /* "" for an unused bit */
    out[i].name[VX_FEATURE_NAME_LEN - 1] = 0;
    const struct ethtool_get_features_block *b = &feat.blocks[i / 32];
    uint32_t bit = 1u << (i % 32);
    out[i].active = (b->active & bit) != 0;
    out[i].requested = (b->requested & bit) != 0;
    out[i].changeable = (b->available & bit) != 0 && !(b->never_changed & bit);
  }
  return m;
}

int vx_features_set(const char *name, const int *index, const uint8_t *on, int n, const char **syscall) {
  int count = features_count(name, syscall);
  if (count < 0) return count;
  struct {
    struct ethtool_sfeatures hdr;
    struct ethtool_set_features_block blocks[FEATURE_BLOCKS];
  } req;
  memset(&req, 0, sizeof req);
  req.hdr.cmd = ETHTOOL_SFEATURES;
  req.hdr.size = (uint32_t)((count + 31) / 32);
  for (int k = 0; k < n; k++) {
    if (index[k] < 0 || index[k] >= count) {
      *syscall = "ioctl(SIOCETHTOOL, ETHTOOL_SFEATURES)";
      return -EINVAL;
    }
    uint32_t bit = 1u << (index[k] % 32);
    struct ethtool_set_features_block *b = &req.blocks[index[k] / 32];
    b->valid |= bit;
    if (on[k])
      b->requested |= bit;
    else
      b->requested &= ~bit;
  }
  int rc = check_name(name, syscall, "ioctl(SIOCETHTOOL, ETHTOOL_SFEATURES)");
  if (rc < 0) return rc;
  int fd = ctl_socket(syscall);
  if (fd < 0) return fd;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  ifr.ifr_data = (void *)&req;
  /* SFEATURES returns its ETHTOOL_F_* flags as the ioctl's (non-negative) result. */
  rc = ioctl(fd, SIOCETHTOOL, &ifr);
  int e = errno;
  close(fd);
  if (rc < 0) {
    *syscall = "ioctl(SIOCETHTOOL, ETHTOOL_SFEATURES)";
    return -e;
  }
  return rc;
}
