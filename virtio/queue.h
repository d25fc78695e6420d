/* Split virtqueue, device side (virtio 1.2 §2.7).
 *
 * Devices never see descriptors.  vq_pop() walks one chain and hands back a
 * bounded array of host iovecs, readable ones first, writable ones after
 * (§2.7.4.2: "the device-writable descriptors follow the device-readable
 * ones").  Every guest address goes through vmm/guest_mem.h; the three
 * rings are validated once at enable time (vq_enable) and only indexed
 * modulo the queue size afterwards.
 *
 * Error model (the guest is untrusted):
 *   - a malformed chain (loop, longer than the queue, nested indirect, zero
 *     length, buffer outside RAM, readable after writable, ...) is returned
 *     as -EBADMSG with c->head valid: the device must still complete that
 *     head (vq_push with len 0) and should set DEVICE_NEEDS_RESET;
 *   - a broken ring (avail.idx more than size ahead, head >= size, a head
 *     popped twice while in flight) returns -EIO: the queue refuses further
 *     work until it is reset (q->broken).
 *
 * Threading: one thread at a time may pop/push (the device's I/O thread);
 * enable/reset happen while that thread is stopped. */
#ifndef MINIVMM_VIRTIO_QUEUE_H
#define MINIVMM_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/guest_mem.h"

#define VQ_MAX_SIZE 256 /* largest queue size we offer (power of two) */
#define VQ_MAX_IOV  256 /* iovecs per chain, readable + writable */

/* §2.7.5 descriptor flags */
#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4
/* §2.7.6 / §2.7.8 ring flags */
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY     1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

/* One popped chain. */
struct vq_chain {
	uint16_t head;
	uint16_t nr_out;  /* readable iovecs: iov[0 .. nr_out) */
	uint16_t nr_in;   /* writable iovecs: iov[nr_out .. nr_out + nr_in) */
	uint32_t out_len; /* bytes readable */
	uint32_t in_len;  /* bytes writable */
	struct iovec iov[VQ_MAX_IOV];
};

struct virtq {
	const struct guest_mem *gm;
	/* Driver-written configuration (common cfg), applied by vq_enable. */
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Negotiated features that change ring behaviour. */
	bool event_idx;   /* VIRTIO_F_EVENT_IDX */
	bool indirect;    /* VIRTIO_F_INDIRECT_DESC */

	bool ready;       /* enabled and rings validated */
	bool broken;      /* -EIO was returned; nothing more until reset */

	/* Host views of the rings, valid while ready.  The guest may change
	 * them at any time: every field is loaded once, atomically. */
	struct vring_desc *desc;
	uint16_t *avail;                 /* flags, idx, ring[size], used_event */
	uint16_t *used_hdr;              /* flags, idx */
	struct vring_used_elem *used_ring;
	uint16_t *avail_event;           /* used->ring[size] */

	uint16_t last_avail;  /* next avail slot to pop */
	uint16_t used_idx;    /* our copy of used->idx */
	uint16_t signalled_used; /* used_idx at the last interrupt */
	bool signalled_valid;
	uint64_t inflight[VQ_MAX_SIZE / 64]; /* heads popped, not yet pushed */
};

/* Forget everything (device reset or queue reset); keeps gm. */
void vq_reset(struct virtq *q);
/* Validate size (power of two, 1..VQ_MAX_SIZE), alignment (16/2/4) and that
 * the three rings lie in guest RAM, then mark ready.  0 or -EINVAL. */
int vq_enable(struct virtq *q);

/* 1: a chain in *c; 0: nothing available; -EBADMSG: malformed chain, head in
 * c->head must be pushed with len 0; -EIO: ring broken (see above). */
int vq_pop(struct virtq *q, struct vq_chain *c);
/* Give back the chain popped last (head), as if it had not been popped:
 * for a device that found the buffers too small for what it holds (net RX
 * with a packet pending).  Call in reverse pop order. */
void vq_unpop(struct virtq *q, uint16_t head);
/* Return a head to the driver with `len` bytes written; publishes used.idx. */
void vq_push(struct virtq *q, uint16_t head, uint32_t len);
/* After one or more pushes: does the driver want an interrupt now?
 * Honours EVENT_IDX used_event or VRING_AVAIL_F_NO_INTERRUPT (§2.7.7). */
bool vq_should_notify(struct virtq *q);

/* Kick suppression (§2.7.10).  disable: the driver need not notify us while
 * we are draining.  enable: ask for a kick on the next buffer; returns true
 * when buffers arrived meanwhile (the caller must drain again). */
void vq_disable_notify(struct virtq *q);
bool vq_enable_notify(struct virtq *q);
/* The driver's avail.idx now, and the variant of vq_enable_notify for a
 * device that found the buffers up to `seen` insufficient (net RX with a
 * large packet): ask for a kick when the driver publishes past `seen`;
 * true when it already has (try again). */
uint16_t vq_avail_idx(const struct virtq *q);
bool vq_enable_notify_at(struct virtq *q, uint16_t seen);

/* Heads popped and not yet pushed. */
unsigned vq_inflight(const struct virtq *q);

/* iovec helpers for devices.  Copy up to len bytes starting `off` bytes
 * into the iovec array; return bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len);
/* Describe bytes [off, off+len) of src in dst (at most maxdst entries).
 * Returns the number of entries, or -1 when the range does not fit. */
int iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len,
	      struct iovec *dst, unsigned maxdst);

#endif
