/*
 * Underlay UDP syscalls (no Node headers): one main socket bound to address:port (the only one read),
 * plus N source sockets on random high ports for ECMP entropy (RFC 7348 §5); DF always; batched
 * recvmmsg into slab slots with 18-byte address records; batched sendmmsg of descriptors grouped by
 * consecutive source index. Every function returns a count or a negative errno.
 *
 * Address record (18 bytes, shared with src/dataplane/io.ts): 16-byte IPv6 address (IPv4 as
 * ::ffff:a.b.c.d), then the port big-endian.
 */
#ifndef VX_UDP_H
#define VX_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "udp_split.h"

struct vx_rx_runs;

#define VX_ADDR_LEN 18
#define VX_UDP_MAX_SRC 64
/* Source ports are chosen at random in [VX_SRC_PORT_MIN, 65535]. */
#define VX_SRC_PORT_MIN 49152

/* UDP GRO receive area: coalesced buffers are split back into datagrams for the caller's slots. */
#define VX_GRO_BUFS 8
#define VX_GRO_BUFSZ 65536
typedef struct vx_gro {
  uint8_t *buf;                        /* VX_GRO_BUFS * VX_GRO_BUFSZ bytes */
  uint32_t len[VX_GRO_BUFS];
  uint16_t seg[VX_GRO_BUFS];           /* segment size from the UDP_GRO cmsg; 0 = one datagram */
  uint8_t addr[VX_GRO_BUFS][VX_ADDR_LEN];
  int n, cur;                          /* buffers filled; the one being split */
  uint32_t off;                        /* offset of the next datagram in buffer `cur` */
} vx_gro;

typedef struct vx_udp {
  int family;                       /* AF_INET or AF_INET6 */
  int fd;                           /* main socket: bound to address:port, polled for reading */
  int nsrc;                         /* number of source sockets (>= 1) */
  int src[VX_UDP_MAX_SRC];          /* src[0] == fd when nsrc == 1 */
  uint16_t port;                    /* bound port of the main socket */
  uint16_t src_port[VX_UDP_MAX_SRC];
  int gso;                          /* UDP_SEGMENT usable (phase 2) */
  int gro;                          /* UDP_GRO enabled on the main socket (phase 2) */
  vx_gro *g;                        /* allocated when GRO is first enabled */
  vx_split split;                   /* handshake socket beside fd (udp_split.h) */
} vx_udp;

/* Per-handle statistics slots (the caller's BigUint64Array, see src/native/addon.ts). */
enum {
  VX_STAT_TX_SKIPPED = 0,   /* descriptors skipped for a per-descriptor error */
  VX_STAT_TX_EMSGSIZE = 1,  /* ... of which EMSGSIZE (over the path MTU, DF set) */
  VX_STAT_TX_LAST_ERRNO = 2,/* errno of the last skipped descriptor */
  VX_STAT_RX_TRUNCATED = 3, /* datagrams larger than a slot, delivered truncated */
  VX_STAT_TX_EAGAIN = 4,    /* batches stopped by EAGAIN */
  VX_STAT_HS_READ = 5,      /* datagrams read from the handshake socket (udp_split.h) */
  VX_STAT_HS_PAUSED = 6,    /* times its budget ran out with datagrams left (the rest waits, or overflows in the kernel) */
  VX_STAT_GRO_RUNS = 7,     /* GRO runs handed over as one descriptor (vx_rx_runs) */
  /* 8..10: TAP vnet slots (tap.h) */
  VX_STAT_GSO_SENDS = 11,   /* sendmsg calls with UDP_SEGMENT */
  VX_STAT_SEGMENTS = 12,    /* segments cut from TSO super-frames */
  VX_STAT_GSO_FALLBACK = 13,/* super-frames sent as one datagram per segment (sendmmsg) */
  VX_STAT_BAD_TSO = 14,     /* super-frames dropped: not segmentable (parse, size) */
  VX_STAT_GRO_BUFS = 15,    /* received buffers holding several coalesced datagrams (UDP GRO) */
  VX_STAT_COUNT = 16
};

/*
 * Opens the transport. `family` is 4 or 6; `address` textual (IPv4 for 4, IPv6 for 6); `port` may
 * be 0 (ephemeral). `nsrc` in [1, VX_UDP_MAX_SRC]. `bufbytes` is the SO_RCVBUF/SO_SNDBUF request
 * (forced when privileged, else best effort). On failure everything opened is closed.
 */
int vx_udp_open(vx_udp *u, int family, const char *address, uint16_t port, int nsrc, int bufbytes,
                const char **syscall);
void vx_udp_close(vx_udp *u);
/* A non-blocking UDP socket of `family` with DF set and `bufbytes` buffers; fd or -errno. */
int vx_udp_socket(int family, int bufbytes, const char **syscall);
/* recvmmsg on `fd` into slots [start, slots) (layout as vx_udp_recv_batch); the new count, or -errno
   when the first call fails with an error other than EAGAIN. */
int vx_udp_recv_fd(int fd, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t start, uint32_t slots,
                   uint32_t *lens, uint8_t *addrs, uint64_t *stats);

/*
 * recvmmsg on the main socket (then, when split, the handshake socket within its budget): datagram i goes to slab + i*slot_size + headroom (at most
 * slot_size - headroom bytes), lens[i] its length, addrs + i*18 the sender record. A datagram larger
 * than a slot is delivered truncated to the slot (lens[i] = slot_size - headroom, as recvmmsg does)
 * and counted in stats[VX_STAT_RX_TRUNCATED]: size slots larger than any valid datagram so that
 * truncation shows as an oversize length. Returns the count (>= 0) or
 * -errno when the first call fails with an error other than EAGAIN.
 */
int vx_udp_recv_batch(vx_udp *u, uint8_t *slab, uint32_t slot_size, uint32_t headroom,
                      uint32_t slots, uint32_t *lens, uint8_t *addrs, uint64_t *stats, struct vx_rx_runs *runs);

/*
 * GRO runs (the receive side's super-frames): with a vx_rx_runs given, a UDP GRO buffer's run of
 * consecutive datagrams that vx_gro_run merges (plaintext VXLAN, one VNI, one inner TCP flow,
 * contiguous; the run may go on into the next GRO buffers of the same sender) is handed over as
 * ONE descriptor: the VXLAN header + merged frame at slab + offs[i] inside the run area (the runs
 * of one receive call one after the other from super_off: `used` bytes so far, reset by
 * vx_udp_recv_batch; when less than VX_GRO_RUN_ROOM is left the split stops and the rest waits
 * for the next call, so a run never overwrites another the caller still holds), lens[i] its
 * length, gso[2i] its gso type, gso[2i+1] its segment size, segs[i] the datagrams merged, wire[i]
 * their total length. Every other datagram is descriptor i as without runs: at slot i
 * (offs[i] = i * slot_size + headroom), gso 0, segs 1, wire = lens[i].
 */
/* Room the run area must have left for one more run (VXLAN header + merged headers + 64 KiB of IP packet). */
#define VX_GRO_RUN_ROOM (8 + 192 + 65536)

typedef struct vx_rx_runs {
  uint32_t super_off;   /* slab offset of the run area (VX_GRO_BUFS * VX_GRO_BUFSZ bytes) */
  uint32_t used;        /* bytes of the run area filled in this receive call */
  uint32_t max_frame;   /* largest inner segment a run may hold (vx_gro_out.max_frame) */
  uint32_t *offs;
  uint16_t *gso;        /* 2 per descriptor */
  uint16_t *segs;
  uint32_t *wire;
} vx_rx_runs;

/* Descriptors [from, to) as single datagrams at their slots (the vx_rx_runs defaults). */
void vx_rx_runs_plain(const vx_rx_runs *r, uint32_t from, uint32_t to, uint32_t slot_size, uint32_t headroom,
                      const uint32_t *lens);

/*
 * vx_gro_split with runs: the same datagrams in the same order, a run of them as one descriptor
 * (see vx_rx_runs). Datagrams longer than a slot are never part of a run.
 */
uint32_t vx_gro_split_runs(vx_gro *g, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots,
                           uint32_t done, uint32_t *lens, uint8_t *addrs, uint64_t *stats, vx_rx_runs *r);

/*
 * sendmmsg of descriptors [0, count): lens[j] bytes at slab + offs[j] to the record addrs + j*18,
 * from source socket src_idx[j] (a run of equal src_idx values is one sendmmsg call). A
 * per-descriptor error other than EAGAIN skips it (counted in stats); EAGAIN stops the batch.
 * Returns the number of descriptors consumed (sent or skipped). When `status` is not NULL,
 * status[j] for each consumed j is 0 (sent) or the positive errno that skipped it (EMSGSIZE,
 * ENETUNREACH, EHOSTUNREACH, EINVAL for a bad source index, EAFNOSUPPORT for an address of the
 * other family, ...). Descriptors [returned, count) were not attempted (EAGAIN).
 */
uint32_t vx_udp_send_batch(vx_udp *u, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens,
                           const uint8_t *addrs, const uint8_t *src_idx, uint32_t count, int32_t *status,
                           uint64_t *stats);


/* Scratch memory for segmentation, owned by the caller (per handle). */
#define VX_GSO_SCRATCH (512 * 1024)
#define VX_GSO_MAX_SEGS 256

/* Enables/disables UDP_GRO on the main socket; 0 or -errno. */
int vx_udp_set_gro(vx_udp *u, int on, const char **syscall);
/*
 * Hands out the datagrams of the GRO buffers (g->len[i] bytes each, cut at g->seg[i] when it is
 * non-zero: the kernel's UDP_GRO segment size; the last may be shorter; an empty datagram is one)
 * into caller slots [done, slots), truncating to the slot like recvmmsg (stats RX_TRUNCATED).
 * No syscall (the fuzz harness calls it). Returns the slots filled so far.
 */
uint32_t vx_gro_split(vx_gro *g, uint8_t *slab, uint32_t slot_size, uint32_t headroom, uint32_t slots, uint32_t done,
                      uint32_t *lens, uint8_t *addrs, uint64_t *stats);
/* Datagrams of a GRO buffer not yet handed out (the caller must call recv again without waiting). */
int vx_udp_gro_pending(const vx_udp *u);

/*
 * Like vx_udp_send_batch, but descriptor j may be a TSO super-frame: gso[2j] = gso_type
 * (0 = plain datagram), gso[2j+1] = MSS. Its first prefix_len bytes (the VXLAN header) are copied in
 * front of every segment; segments are sent with UDP_SEGMENT when u->gso, else one datagram each
 * (sendmmsg). A super-frame that cannot be segmented is skipped (stats[VX_STAT_BAD_TSO], status
 * EINVAL); one whose segments were refused gets the errno; one cut short by EAGAIN after some of
 * its segments went out is consumed with status EAGAIN (and ends the batch). `scratch` is the
 * caller's VX_GSO_SCRATCH bytes.
 */
uint32_t vx_udp_send_gso(vx_udp *u, const uint8_t *slab, const uint32_t *offs, const uint32_t *lens,
                         const uint8_t *addrs, const uint8_t *src_idx, const uint16_t *gso, uint32_t prefix_len,
                         uint32_t count, int32_t *status, uint64_t *stats, uint8_t *scratch);

#endif
