/*
 * Network-device ioctls (no Node headers): bridges, ports, MTU, up/down, MAC, ifindex, and the
 * ethtool offload settings (SIOCETHTOOL; what `ethtool -k/-K` does, without the binary).
 * Every function returns >= 0 on success or -errno and names the failing syscall in `*syscall`.
 */
#ifndef VX_NETDEV_H
#define VX_NETDEV_H

#include <stdint.h>

int vx_bridge_add(const char *br, const char **syscall);
int vx_bridge_del(const char *br, const char **syscall);
/* add = 1: enslave `ifname` to `br` (SIOCBRADDIF); add = 0: release it (SIOCBRDELIF). */
int vx_bridge_port(const char *br, const char *ifname, int add, const char **syscall);
int vx_set_mtu(const char *name, int mtu, const char **syscall);
/* Returns the MTU (> 0) or -errno. */
int vx_get_mtu(const char *name, const char **syscall);
/* Returns the interface flags (IFF_*) or -errno. */
int vx_get_flags(const char *name, const char **syscall);
int vx_set_up(const char *name, int up, const char **syscall);
/* Writes 6 bytes. */
int vx_get_mac(const char *name, uint8_t *mac, const char **syscall);
/* Returns the ifindex (> 0) or -errno (ENODEV when absent). */
int vx_ifindex(const char *name, const char **syscall);

#define VX_FEATURE_NAME_LEN 32 /* ETH_GSTRING_LEN */
#define VX_FEATURES_MAX 256    /* the kernel has < 100 netdev features */

/* One device feature (ETH_SS_FEATURES string set; `ethtool -k` lines). */
typedef struct vx_feature {
  char name[VX_FEATURE_NAME_LEN]; /* e.g. "tx-checksum-ip-generic", "rx-gro" (NUL-terminated) */
  uint8_t active;                 /* currently on */
  uint8_t requested;              /* wanted by the user (may differ from active while dependencies forbid it) */
  uint8_t changeable;             /* available: not [fixed] */
} vx_feature;

/* Fills out[0..min(n, cap)) with the device's features; returns n (their number) or -errno. */
int vx_features_get(const char *name, vx_feature *out, int cap, const char **syscall);

/*
 * One ETHTOOL_SFEATURES request: features index[0..n) (positions from vx_features_get) on (on[k]
 * non-zero) or off; every other feature is left alone. Returns the kernel's ETHTOOL_F_* flags
 * (0: done; 1 UNSUPPORTED: one is not changeable; 2 WISH: recorded but not all in effect, e.g. a
 * dependency is off) or -errno.
 */
int vx_features_set(const char *name, const int *index, const uint8_t *on, int n, const char **syscall);

#endif
