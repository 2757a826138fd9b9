/* sd_notify without libsystemd (no Node headers). */
#ifndef VX_NOTIFY_H
#define VX_NOTIFY_H

#include <stddef.h>

/*
 * Sends `len` bytes as one datagram to the AF_UNIX SOCK_DGRAM socket `path` ('@' first = abstract
 * namespace). Returns the bytes sent or -errno.
 */
int vx_notify(const char *path, const char *msg, size_t len, const char **syscall);

#endif
