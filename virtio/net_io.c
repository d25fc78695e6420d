/* virtio-net packet movement between a virtqueue and a tap fd (virtio 1.2
 * §5.1.6.3 receive, §5.1.6.2 transmit).  See virtio/net.h. */
#include "virtio/net.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "vmm/log.h"

/* Give back every chain popped for a packet that did not fit, newest
 * first, so the ring is exactly as before. */
static void unpop_all(struct virtq *q, const uint16_t *heads, unsigned n)
{
	while (n--)
		vq_unpop(q, heads[n]);
}

static void push_all(struct virtq *q, const uint16_t *heads, const uint32_t *lens, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		vq_push(q, heads[i], lens ? lens[i] : 0);
}

int net_rx_deliver(struct virtq *q, struct vq_chain *c, const uint8_t *pkt, size_t len,
		   bool mrg_rxbuf)
{
	uint16_t heads[VQ_MAX_SIZE];
	uint32_t lens[VQ_MAX_SIZE];
	struct iovec hdr_iov[VNET_HDR_LEN]; /* where the first header went */
	int nhdr = 0;
	unsigned n = 0;
	size_t off = 0;
	uint16_t one = 1;

	if (len < VNET_HDR_LEN)
		return -EMSGSIZE;
	while (off < len) {
		int r;
		size_t take;
		struct iovec *in;

		if (n == q->size) {
			/* Every buffer of the ring is ours and it still does
			 * not fit: it never will. */
			unpop_all(q, heads, n);
			return -EMSGSIZE;
		}
		r = vq_pop(q, c);
		if (r == 0) {
			unpop_all(q, heads, n);
			return 0;
		}
		if (r == -EIO)
			return -EIO;
		if (r == -EBADMSG || c->nr_out || c->in_len < (n ? 1 : VNET_HDR_LEN)) {
			/* §5.1.6.3: receive buffers are device-writable and
			 * (with MRG_RXBUF) each holds at least a header. */
			if (r != -EBADMSG)
				log_guest("virtio-net: rx chain %u: %u readable bytes, %u writable",
					  c->head, c->out_len, c->in_len);
			push_all(q, heads, NULL, n);
			vq_push(q, c->head, 0);
			return -EBADMSG;
		}
		if (!mrg_rxbuf && c->in_len < len) {
			vq_unpop(q, c->head);
			return -EMSGSIZE;
		}
		in = c->iov + c->nr_out;
		take = len - off < c->in_len ? len - off : c->in_len;
		if (n == 0) {
			nhdr = iov_slice(in, c->nr_in, 0, VNET_HDR_LEN, hdr_iov, VNET_HDR_LEN);
			iov_from_buf(in, c->nr_in, 0, pkt, VNET_HDR_LEN - 2);
			iov_from_buf(in, c->nr_in, VNET_HDR_LEN - 2, &one, 2);
			iov_from_buf(in, c->nr_in, VNET_HDR_LEN, pkt + VNET_HDR_LEN,
				     take - VNET_HDR_LEN);
		} else {
			iov_from_buf(in, c->nr_in, 0, pkt + off, take);
		}
		heads[n] = c->head;
		lens[n] = (uint32_t)take;
		n++;
		off += take;
	}
	if (n > 1) {
		/* §5.1.6.3.1: num_buffers in the first buffer's header. */
		uint16_t nb = (uint16_t)n;
		iov_from_buf(hdr_iov, (unsigned)nhdr, VNET_HDR_LEN - 2, &nb, 2);
	}
	push_all(q, heads, lens, n);
	return 1;
}

ssize_t net_tx_send(int fd, const struct vq_chain *c)
{
	ssize_t w;

	/* §5.1.6.2: the header then the packet, all device-readable. */
	if (c->nr_in || c->out_len < VNET_HDR_LEN || c->out_len > NET_MAX_PKT) {
		log_guest("virtio-net: tx chain %u: %u readable bytes, %u writable", c->head,
			  c->out_len, c->in_len);
		return -EBADMSG;
	}
	/* The tap parses (and validates) the header itself: it has the same
	 * layout (IFF_VNET_HDR, TUNSETVNETHDRSZ 12).  The guest may change
	 * the buffers meanwhile; the kernel copies them once. */
	w = writev(fd, c->iov, c->nr_out);
	if (w < 0)
		return -errno;
	return w >= VNET_HDR_LEN ? w - VNET_HDR_LEN : 0;
}
