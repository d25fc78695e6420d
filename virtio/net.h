/* virtio-net (virtio 1.2 §5.1) over a Linux tap device.
 *
 * virtio/net_io.c: one packet at a time between a virtqueue and a tap fd:
 *   TX chains are written to the tap as they are (virtio-net header +
 *   frame, one writev, no copy); RX packets read from the tap are spread
 *   over one or, with MRG_RXBUF, several guest buffers (num_buffers set in
 *   the first header).  No threads, no transport: unit-tested.
 * virtio/net.c: the device: features, config space, the control queue, an
 *   I/O thread per queue pair (epoll on the tap fd and the queues' kick
 *   eventfds), tap offloads matching what the guest negotiated.
 * virtio/vhost_net.c: the same queues served by the kernel (/dev/vhost-net);
 *   kicks and interrupts then never reach minivmm.
 * devices/tap.c: opening, creating and configuring the tap. */
#ifndef MINIVMM_VIRTIO_NET_H
#define MINIVMM_VIRTIO_NET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "virtio/queue.h"

struct vm;

#define VIRTIO_ID_NET 1

/* §5.1.3 feature bits */
#define VIRTIO_NET_F_CSUM           0
#define VIRTIO_NET_F_GUEST_CSUM     1
#define VIRTIO_NET_F_MTU            3
#define VIRTIO_NET_F_MAC            5
#define VIRTIO_NET_F_GUEST_TSO4     7
#define VIRTIO_NET_F_GUEST_TSO6     8
#define VIRTIO_NET_F_GUEST_ECN      9
#define VIRTIO_NET_F_GUEST_UFO      10
#define VIRTIO_NET_F_HOST_TSO4      11
#define VIRTIO_NET_F_HOST_TSO6      12
#define VIRTIO_NET_F_HOST_ECN       13
#define VIRTIO_NET_F_HOST_UFO       14
#define VIRTIO_NET_F_MRG_RXBUF      15
#define VIRTIO_NET_F_STATUS         16
#define VIRTIO_NET_F_CTRL_VQ        17
#define VIRTIO_NET_F_MQ             22

#define VIRTIO_NET_S_LINK_UP 1

/* §5.1.6.5 control queue */
#define VIRTIO_NET_OK  0
#define VIRTIO_NET_ERR 1
#define VIRTIO_NET_CTRL_MQ 4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN 1
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX 0x8000

/* §5.1.6 struct virtio_net_hdr.  With VERSION_1 num_buffers is always
 * present: the header is 12 bytes (and so is the tap's, TUNSETVNETHDRSZ). */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
#define VNET_HDR_LEN 12
_Static_assert(sizeof(struct virtio_net_hdr) == VNET_HDR_LEN, "virtio_net_hdr layout");

/* Largest frame a tap hands us: a 64 KiB GSO super-packet plus Ethernet
 * and VLAN headers, behind the virtio-net header. */
#define NET_MAX_PKT (VNET_HDR_LEN + 65535 + 14 + 4)

/* Deliver one packet (virtio-net header + frame, `len` bytes, as read from
 * the tap) into the RX queue q.  c is scratch space.  Returns:
 *   1         delivered and pushed (num_buffers set in the first header);
 *   0         not enough buffers yet: nothing consumed, keep the packet and
 *             wait for the driver to add buffers;
 *   -EMSGSIZE the packet cannot fit (larger than one buffer without
 *             MRG_RXBUF, or than the whole ring): nothing consumed, drop it;
 *   -EBADMSG  malformed chain (readable buffers, header split too small):
 *             heads returned with length 0, the device needs a reset;
 *   -EIO      the ring is broken (see virtio/queue.h). */
int net_rx_deliver(struct virtq *q, struct vq_chain *c, const uint8_t *pkt, size_t len,
		   bool mrg_rxbuf);

/* Write one popped TX chain to fd (header + frame, one writev).  Returns
 * the frame length (without header), -EBADMSG for a malformed chain
 * (writable buffers, shorter than the header, longer than NET_MAX_PKT),
 * or -errno from writev (the packet is dropped). */
ssize_t net_tx_send(int fd, const struct vq_chain *c);

struct net_stats {
	atomic_ulong rx_packets, rx_bytes, tx_packets, tx_bytes;
	atomic_ulong rx_kicks, tx_kicks;
	atomic_ulong rx_dropped;   /* did not fit the guest's buffers */
	atomic_ulong rx_stalls;    /* waited for the guest to add buffers */
	atomic_ulong tx_errors;    /* the tap refused a frame */
};

/* Device-table hooks (vmm/devices.c): one device per cfg->nets[]. */
int virtio_net_init(struct vm *vm);
void virtio_net_exit(struct vm *vm);
void virtio_net_stats(struct vm *vm);

#endif
