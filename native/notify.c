/* sd_notify: one datagram to $NOTIFY_SOCKET (a path, or '@name' in the abstract namespace). */
#define _GNU_SOURCE
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int vx_notify(const char *path, const char *msg, size_t len, const char **syscall) {
  struct sockaddr_un sa;
  size_t plen = strlen(path);
  if (plen == 0 || plen >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@')) {
    *syscall = "sendto";
    return -EINVAL;
  }
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, plen);
  socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  if (path[0] == '@')
    sa.sun_path[0] = 0; /* abstract: length is exact, no terminator */
  else
    sl += 1;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *syscall = "socket";
    return -errno;
  }
  ssize_t r;
  do {
    r = sendto(fd, msg, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, sl);
  } while (r < 0 && errno == EINTR);
  int e = errno;
  close(fd);
  if (r < 0) {
    *syscall = "sendto";
    return -e;
  }
  return (int)r;
}
