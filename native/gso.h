/*
 * Fast-path packet work (no Node headers, no syscalls): Internet checksums, completion of
 * virtio-net partial checksums, TCP segmentation of a TSO super-frame into MSS-sized inner frames
 * (each behind a copied prefix, e.g. the VXLAN header), and the planning of TCP segment coalescing
 * (consecutive inner segments of one flow → one GSO frame with a virtio_net_hdr; TCP, and UDP
 * datagram runs as UDP_L4 GSO).
 *
 * Frames are Ethernet II with up to two VLAN tags (802.1Q / 802.1ad); IPv4 (options allowed) or
 * IPv6 without extension headers; TCP. Anything else is "not ours": segmentation fails (the caller drops and counts),
 * coalescing leaves the frame alone.
 */
#ifndef VX_GSO_H
#define VX_GSO_H

#include <stddef.h>
#include <stdint.h>

/* struct virtio_net_hdr (legacy, host byte order on the TAP, 10 bytes). */
typedef struct vx_vnet_hdr {
  uint8_t flags;       /* VX_VNET_F_* */
  uint8_t gso_type;    /* VX_GSO_* */
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
} __attribute__((packed)) vx_vnet_hdr;

#define VX_VNET_F_NEEDS_CSUM 1
#define VX_VNET_F_DATA_VALID 2
#define VX_GSO_NONE 0
#define VX_GSO_TCPV4 1
#define VX_GSO_UDP 3
#define VX_GSO_TCPV6 4
#define VX_GSO_UDP_L4 5
#define VX_GSO_ECN 0x80

/* Parsed Ethernet/IP/TCP layout of a frame. */
typedef struct vx_l4 {
  int v6;          /* 0 IPv4, 1 IPv6 */
  uint32_t l3;     /* offset of the IP header (14, 18 or 22 with VLAN tags) */
  uint32_t l4;     /* offset of the TCP header */
  uint32_t hlen;   /* Ethernet + IP + TCP headers */
  uint32_t plen;   /* TCP/UDP payload bytes (from the IP length, never beyond the frame) */
  uint8_t proto;   /* 6 TCP, 17 UDP */
} vx_l4;

/* One's-complement 32-bit accumulation of buf (big-endian 16-bit words) onto sum. */
uint32_t vx_csum_add(const uint8_t *buf, size_t len, uint32_t sum);
/* Folds to 16 bits (not complemented). */
uint16_t vx_csum_fold(uint32_t sum);

/* Parses an Ethernet/IPv4|IPv6/TCP frame; 0 on success, -1 if not such a frame. */
int vx_parse_tcp(const uint8_t *f, size_t len, vx_l4 *out);

/*
 * Completes a VIRTIO_NET_HDR_F_NEEDS_CSUM checksum in place (sum from csum_start to the end,
 * complemented, stored at csum_start + csum_offset). 0, or -1 if the offsets are out of range.
 */
int vx_complete_csum(uint8_t *f, size_t len, uint16_t csum_start, uint16_t csum_offset);

/*
 * Segments TSO super-frame `f` (gso_type VX_GSO_TCPV4/TCPV6, possibly | VX_GSO_ECN) into frames of
 * at most `mss` payload bytes. Segment i is written to out + i*stride as `prefix` (prefix_len bytes)
 * then the frame: headers copied with IPv4 total length / ID+i / header checksum, IPv6 payload
 * length, TCP sequence, flags (FIN/PSH only on the last, CWR only on the first) and a full TCP
 * checksum. stride = prefix_len + hlen + mss: every segment but the last fills it exactly (the
 * layout UDP GSO needs). seg_lens[i] gets each segment's length (prefix included).
 * Returns the number of segments, -1 if the frame is not a TCP frame of the announced family or
 * mss is 0, -2 if more than max_segs segments or out_cap bytes would be needed.
 */
int vx_tso_segment(const uint8_t *f, size_t len, uint8_t gso_type, uint16_t mss, const uint8_t *prefix,
                   size_t prefix_len, uint8_t *out, size_t out_cap, uint32_t *seg_lens, int max_segs,
                   uint32_t *stride);

/*
 * vx_tso_segment with `gap` bytes left free after every segment (stride = prefix_len + hlen + mss +
 * gap; the last segment's gap must fit in out_cap too): room for an AEAD tag behind each segment, so
 * that the segments can be sealed where they are. *stride gets the stride, gap included.
 */
int vx_tso_segment_gap(const uint8_t *f, size_t len, uint8_t gso_type, uint16_t mss, const uint8_t *prefix,
                       size_t prefix_len, uint32_t gap, uint8_t *out, size_t out_cap, uint32_t *seg_lens, int max_segs,
                       uint32_t *stride);

/*
 * The same segmentation without copying the payload: segment i's prefix + rewritten headers (with
 * its full TCP checksum) go to hdrs + i*(prefix_len + hlen); its payload stays in the super-frame at
 * f + hlen + i*mss, pay_lens[i] bytes (every one mss but the last). *hlen_out = hlen. For a
 * scatter-gather send (header, payload, header, payload, …). Same returns as vx_tso_segment (-2
 * also when hdrs_cap is too small).
 */
int vx_tso_headers(const uint8_t *f, size_t len, uint8_t gso_type, uint16_t mss, const uint8_t *prefix,
                   size_t prefix_len, uint8_t *hdrs, size_t hdrs_cap, uint32_t *pay_lens, int max_segs,
                   uint32_t *hlen_out);

/* Coalescing plan for a run of frames starting at frames[0]. */
#define VX_MERGE_HDR_MAX 192
typedef struct vx_merge {
  int count;             /* frames merged (1 = this frame goes alone, unmodified) */
  vx_vnet_hdr vnet;      /* header to write before the merged frame (all zero when count == 1) */
  uint8_t hdr[VX_MERGE_HDR_MAX]; /* rewritten headers of the merged frame (when count > 1) */
  uint32_t hlen;         /* bytes in hdr; payload k is frames[k] + hlen, plens[k] bytes */
  uint32_t total;        /* length of the merged frame (hlen + sum of payloads) */
} vx_merge;

/*
 * Plans how many of the n frames (frames[k], lens[k]) starting at 0 merge into one TCP GSO frame:
 * same Ethernet header, IP addresses and header fields, TCP ports/ack/window/options, contiguous
 * sequence numbers, flags ACK (PSH allowed on the last), every segment but the last exactly the
 * first one's size, each TCP checksum (and IPv4 header checksum) verified, merged IP length within
 * 65535 and at most max_count frames. With `udp` non-zero, a run of UDP datagrams of one flow
 * (IPv4 IDs counting up, equal payload sizes but the last, valid non-zero checksums) merges into
 * one UDP_L4 GSO frame the same way. plens[k] receives each merged frame's payload length.
 */
void vx_coalesce_plan(const uint8_t *const *frames, const uint32_t *lens, int n, int max_count, int udp, vx_merge *m,
                      uint32_t *plens);

/* memcpy(dst, src, len) and vx_csum_add(src, len, sum) in one pass over src (no overlap). */
uint32_t vx_csum_copy(uint8_t *dst, const uint8_t *src, size_t len, uint32_t sum);

/* Most datagrams one GRO run merges (the TAP write's coalescing bound). */
#define VX_GRO_RUN_MAX 64

/* A GRO run's descriptor (vx_gro_run). */
typedef struct vx_gro_out {
  uint32_t max_frame;  /* in: largest inner segment (Ethernet frame) a run may hold; 0 = no bound */
  uint32_t len;        /* out: bytes written at `out` (VXLAN header + merged frame) */
  uint32_t wire;       /* out: sum of the merged datagrams' lengths (what per-datagram counting saw) */
  uint16_t gso_type;   /* out: VX_GSO_TCPV4 / VX_GSO_TCPV6 */
  uint16_t gso_size;   /* out: payload bytes of every segment but the last (MSS) */
  uint16_t hdr_len;    /* out: inner Ethernet + IP + TCP header bytes */
} vx_gro_out;

/*
 * One run of a UDP GRO buffer: datagrams dgrams[k] (dlens[k] bytes, k < n, consecutive datagrams
 * of one buffer, hence one outer source) that are plaintext VXLAN with the same 8-byte header (I
 * flag only, reserved bits zero, same VNI) carrying consecutive TCP segments of one flow by the
 * rules of vx_coalesce_plan (same inner Ethernet header, IP and TCP fields, contiguous sequence
 * numbers, ACK only and PSH only on the last, every segment but the last the first one's size,
 * valid IPv4 header and TCP checksums) merge into one frame written to `out`: the VXLAN header,
 * the merged headers (IP length(s) and the last segment's flags, TCP checksum field = the folded
 * pseudo-header sum as CHECKSUM_PARTIAL), then every payload. Payloads are copied and their
 * checksums verified in the same pass; a segment that fails ends the run before it. At most
 * max_count (and VX_GRO_RUN_MAX) datagrams; the first segment's frame must be at most
 * o->max_frame bytes; the result must fit out_cap. Returns the datagrams merged (>= 2, `o`
 * filled), or 1: the first datagram goes on its own (nothing of `o` but max_frame is meaningful).
 */
int vx_gro_run(const uint8_t *const *dgrams, const uint32_t *dlens, int n, int max_count, uint8_t *out, size_t out_cap,
               vx_gro_out *o);

#endif
