/*
 * Network-device ioctls (no Node headers): bridges, ports, MTU, up/down, MAC, ifindex.
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

#endif
