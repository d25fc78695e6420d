/* Split virtqueue, device side (virtio 1.2 §2.7).  See virtio/queue.h. */
#include "virtio/queue.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "vmm/log.h"

_Static_assert(__BYTE_ORDER == __LITTLE_ENDIAN,
	       "virtio 1.x rings are little-endian; add conversions for BE hosts");
_Static_assert(sizeof(struct vring_desc) == 16, "descriptor layout");
_Static_assert((VQ_MAX_SIZE & (VQ_MAX_SIZE - 1)) == 0, "max size power of two");

/* Barriers (§2.7.7.1, §2.7.13).  The driver runs on other CPUs:
 *  - read avail.idx, then rmb, then the ring entries and descriptors;
 *  - write used entries, then wmb, then used.idx;
 *  - store used.idx (or avail_event), then a full mb, then load used_event
 *    (or avail.idx): store->load ordering needs a real fence even on x86. */
#define vq_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define vq_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#define vq_mb()  __atomic_thread_fence(__ATOMIC_SEQ_CST)

static inline uint16_t ld16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void st16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

void vq_reset(struct virtq *q)
{
	const struct guest_mem *gm = q->gm;

	memset(q, 0, sizeof(*q));
	q->gm = gm;
}

int vq_enable(struct virtq *q)
{
	uint64_t n = q->size;

	/* §2.7: size is a power of two up to what the device offered (our
	 * max); alignment 16 / 2 / 4 for desc / avail / used (§2.7.1 table). */
	if (n == 0 || n > VQ_MAX_SIZE || (n & (n - 1)))
		return -EINVAL;
	if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
		return -EINVAL;
	q->desc = gm_ptr(q->gm, q->desc_gpa, 16 * n);
	/* avail: flags, idx, ring[n], used_event (6 + 2n bytes) */
	q->avail = gm_ptr(q->gm, q->avail_gpa, 6 + 2 * n);
	/* used: flags, idx, ring[n] of 8 bytes, avail_event (6 + 8n bytes) */
	q->used_hdr = gm_ptr(q->gm, q->used_gpa, 6 + 8 * n);
	if (!q->desc || !q->avail || !q->used_hdr) {
		q->desc = NULL;
		q->avail = q->used_hdr = NULL;
		return -EINVAL;
	}
	q->used_ring = (struct vring_used_elem *)(q->used_hdr + 2);
	q->avail_event = (uint16_t *)(q->used_ring + n);
	q->last_avail = 0;
	q->used_idx = 0;
	q->signalled_valid = false;
	q->broken = false;
	memset(q->inflight, 0, sizeof(q->inflight));
	q->ready = true;
	return 0;
}

unsigned vq_inflight(const struct virtq *q)
{
	unsigned c = 0;

	for (unsigned i = 0; i < VQ_MAX_SIZE / 64; i++)
		c += (unsigned)__builtin_popcountll(q->inflight[i]);
	return c;
}

/* Append one descriptor's buffer to the chain.  Returns 0 or -EBADMSG. */
static int chain_add(struct virtq *q, struct vq_chain *c, const struct vring_desc *d,
		     uint64_t *total)
{
	bool wr = d->flags & VRING_DESC_F_WRITE;
	void *p;

	if (d->len == 0) {
		log_guest("virtq: zero-length descriptor in chain %u", c->head);
		return -EBADMSG;
	}
	if (!wr && c->nr_in) {
		log_guest("virtq: readable descriptor after a writable one in chain %u", c->head);
		return -EBADMSG;
	}
	if (c->nr_out + c->nr_in >= VQ_MAX_IOV) {
		log_guest("virtq: chain %u has more than %d buffers", c->head, VQ_MAX_IOV);
		return -EBADMSG;
	}
	*total += d->len;
	if (*total > UINT32_MAX) {
		log_guest("virtq: chain %u longer than 4 GiB", c->head);
		return -EBADMSG;
	}
	p = gm_ptr(q->gm, d->addr, d->len);
	if (!p) {
		log_guest("virtq: buffer 0x%llx+%u of chain %u is not guest RAM",
			  (unsigned long long)d->addr, d->len, c->head);
		return -EBADMSG;
	}
	c->iov[c->nr_out + c->nr_in] = (struct iovec){ .iov_base = p, .iov_len = d->len };
	if (wr) {
		c->nr_in++;
		c->in_len += d->len;
	} else {
		c->nr_out++;
		c->out_len += d->len;
	}
	return 0;
}

/* Walk an indirect table (§2.7.5.3).  The hop budget restarts at the queue
 * size for the table; a descriptor inside it may not be indirect again. */
static int walk_indirect(struct virtq *q, struct vq_chain *c, const struct vring_desc *ind,
			 uint64_t *total)
{
	const struct vring_desc *tbl;
	uint32_t entries, i = 0, budget = q->size;

	if (!q->indirect) {
		log_guest("virtq: indirect descriptor without VIRTIO_F_INDIRECT_DESC");
		return -EBADMSG;
	}
	if (ind->flags & VRING_DESC_F_NEXT) {
		log_guest("virtq: descriptor has both INDIRECT and NEXT");
		return -EBADMSG;
	}
	if (ind->len == 0 || ind->len % 16) {
		log_guest("virtq: indirect table length %u is not a multiple of 16", ind->len);
		return -EBADMSG;
	}
	if (ind->addr & 15) {
		log_guest("virtq: indirect table 0x%llx misaligned",
			  (unsigned long long)ind->addr);
		return -EBADMSG;
	}
	entries = ind->len / 16;
	tbl = gm_ptr(q->gm, ind->addr, ind->len);
	if (!tbl) {
		log_guest("virtq: indirect table 0x%llx+%u is not guest RAM",
			  (unsigned long long)ind->addr, ind->len);
		return -EBADMSG;
	}
	for (;;) {
		struct vring_desc d;
		int r;

		if (budget-- == 0) {
			log_guest("virtq: indirect chain %u loops or exceeds the queue size",
				  c->head);
			return -EBADMSG;
		}
		memcpy(&d, &tbl[i], sizeof(d)); /* copy once, validate the copy */
		if (d.flags & VRING_DESC_F_INDIRECT) {
			log_guest("virtq: nested indirect table in chain %u", c->head);
			return -EBADMSG;
		}
		r = chain_add(q, c, &d, total);
		if (r)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= entries) {
			log_guest("virtq: indirect next %u >= %u entries", d.next, entries);
			return -EBADMSG;
		}
		i = d.next;
	}
}

static int walk_chain(struct virtq *q, struct vq_chain *c)
{
	uint32_t budget = q->size;
	uint64_t total = 0;
	uint16_t i = c->head;

	for (;;) {
		struct vring_desc d;
		int r;

		if (budget-- == 0) {
			log_guest("virtq: chain %u loops or exceeds the queue size", c->head);
			return -EBADMSG;
		}
		memcpy(&d, &q->desc[i], sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT)
			/* An indirect descriptor ends the chain (no NEXT). */
			return walk_indirect(q, c, &d, &total);
		r = chain_add(q, c, &d, &total);
		if (r)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= q->size) {
			log_guest("virtq: next %u >= queue size %u", d.next, q->size);
			return -EBADMSG;
		}
		i = d.next;
	}
}

int vq_pop(struct virtq *q, struct vq_chain *c)
{
	uint16_t avail_idx, head, pending;
	uint64_t bit;

	if (!q->ready || q->broken)
		return q->broken ? -EIO : 0;
	avail_idx = ld16(&q->avail[1]);
	pending = (uint16_t)(avail_idx - q->last_avail);
	if (pending == 0)
		return 0;
	if (pending > q->size) {
		/* §2.7.13.3: the driver cannot have more than size buffers
		 * available; a larger distance is a corrupt or hostile ring. */
		log_guest("virtq: avail.idx %u is %u ahead (size %u)", avail_idx, pending, q->size);
		q->broken = true;
		return -EIO;
	}
	vq_rmb(); /* avail.idx before the ring entry and the descriptors */
	head = ld16(&q->avail[2 + (q->last_avail & (q->size - 1))]);
	if (head >= q->size) {
		log_guest("virtq: head %u >= queue size %u", head, q->size);
		q->broken = true;
		return -EIO;
	}
	bit = 1ULL << (head % 64);
	if (q->inflight[head / 64] & bit) {
		log_guest("virtq: head %u made available while still in flight", head);
		q->broken = true;
		return -EIO;
	}
	q->last_avail++;
	q->inflight[head / 64] |= bit;
	c->head = head;
	c->nr_out = c->nr_in = 0;
	c->out_len = c->in_len = 0;
	if (walk_chain(q, c))
		return -EBADMSG;
	return 1;
}

void vq_unpop(struct virtq *q, uint16_t head)
{
	if (!q->ready || head >= q->size)
		return;
	q->inflight[head / 64] &= ~(1ULL << (head % 64));
	q->last_avail--;
}

void vq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	struct vring_used_elem *e;

	if (!q->ready || head >= q->size)
		return;
	q->inflight[head / 64] &= ~(1ULL << (head % 64));
	e = &q->used_ring[q->used_idx & (q->size - 1)];
	__atomic_store_n(&e->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, len, __ATOMIC_RELAXED);
	q->used_idx++;
	vq_wmb(); /* the element before the index that publishes it */
	st16(&q->used_hdr[1], q->used_idx);
}

bool vq_should_notify(struct virtq *q)
{
	uint16_t old, new, event;

	if (!q->ready)
		return false;
	vq_mb(); /* used.idx store before reading the driver's suppression */
	if (!q->event_idx)
		return !(ld16(&q->avail[0]) & VRING_AVAIL_F_NO_INTERRUPT);
	/* §2.7.10: interrupt when used.idx moved past used_event since the
	 * last interrupt (vring_need_event in the spec's example code). */
	new = q->used_idx;
	old = q->signalled_used;
	event = ld16(&q->avail[2 + q->size]);
	if (!q->signalled_valid) {
		q->signalled_valid = true;
		q->signalled_used = new;
		return true;
	}
	q->signalled_used = new;
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

void vq_disable_notify(struct virtq *q)
{
	if (!q->ready || q->event_idx)
		return; /* with EVENT_IDX a stale avail_event already suppresses */
	st16(&q->used_hdr[0], ld16(&q->used_hdr[0]) | VRING_USED_F_NO_NOTIFY);
}

bool vq_enable_notify_at(struct virtq *q, uint16_t seen)
{
	if (!q->ready || q->broken)
		return false;
	if (q->event_idx)
		st16(q->avail_event, seen);
	else
		st16(&q->used_hdr[0], ld16(&q->used_hdr[0]) & ~VRING_USED_F_NO_NOTIFY);
	vq_mb(); /* publish before re-reading avail.idx, or we miss a kick */
	return ld16(&q->avail[1]) != seen;
}

bool vq_enable_notify(struct virtq *q)
{
	return vq_enable_notify_at(q, q->last_avail);
}

uint16_t vq_avail_idx(const struct virtq *q)
{
	if (!q->ready)
		return q->last_avail;
	vq_rmb();
	return ld16(&q->avail[1]);
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len - done)
			l = len - done;
		memcpy((char *)buf + done, (char *)iov[i].iov_base + off, l);
		done += l;
		off = 0;
	}
	return done;
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len - done)
			l = len - done;
		memcpy((char *)iov[i].iov_base + off, (const char *)buf + done, l);
		done += l;
		off = 0;
	}
	return done;
}

int iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len,
	      struct iovec *dst, unsigned maxdst)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		size_t l = src[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		if (k == maxdst)
			return -1;
		dst[k++] = (struct iovec){ .iov_base = (char *)src[i].iov_base + off, .iov_len = l };
		len -= l;
		off = 0;
	}
	return len ? -1 : (int)k;
}
