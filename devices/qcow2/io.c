/* The qcow2 disk_ops: read, write (allocation and copy-on-write), discard,
 * write-zeroes, flush and close.  Ordering rules: see qcow2_int.h. */
#include "devices/qcow2/qcow2_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/log.h"

/* Upper bound of queued refcount decrements before we force a metadata
 * flush, so that discarded space becomes reusable. */
#define QCOW2_MAX_PENDING 4096

static void classify_l2e(const struct qcow2 *q, uint64_t e, struct qmap *m)
{
	memset(m, 0, sizeof(*m));
	if (e & QCOW_OFLAG_COMPRESSED) {
		m->type = QMAP_COMPRESSED;
		m->l2e = e;
		return;
	}
	m->host = e & L2E_OFFSET_MASK;
	m->copied = !!(e & QCOW_OFLAG_COPIED);
	if (q->version >= 3 && (e & QCOW_OFLAG_ZERO))
		m->type = QMAP_ZERO;
	else
		m->type = m->host ? QMAP_DATA : QMAP_UNALLOC;
}

static bool iov_aligned(const struct iovec *v, int n, uint64_t off)
{
	if (off & 511)
		return false;
	for (int i = 0; i < n; i++)
		if (((uintptr_t)v[i].iov_base | v[i].iov_len) & 511)
			return false;
	return true;
}

/* Full-length data I/O at host offset; reads past EOF give zeros.  v is
 * modified. */
static int data_io(struct qcow2 *q, struct iovec *v, int n, uint64_t host, bool write)
{
	int fd = q->direct && iov_aligned(v, n, host) ? q->fd : q->mfd;

	while (n > 0) {
		ssize_t r = write ? pwritev(fd, v, n, (off_t)host) : preadv(fd, v, n, (off_t)host);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* O_DIRECT needing more than 512-byte alignment (4K
			 * sector device): use the buffered fd. */
			if (errno == EINVAL && fd != q->mfd) {
				fd = q->mfd;
				continue;
			}
			return -errno;
		}
		if (r == 0) {
			if (write)
				return -EIO;
			for (int i = 0; i < n; i++)
				memset(v[i].iov_base, 0, v[i].iov_len);
			return 0;
		}
		host += (uint64_t)r;
		while (n > 0 && (size_t)r >= v->iov_len) {
			r -= (ssize_t)v->iov_len;
			v++;
			n--;
		}
		if (n > 0) {
			v->iov_base = (char *)v->iov_base + r;
			v->iov_len -= (size_t)r;
		}
	}
	if (write && host > q->file_size)
		q->file_size = host;
	return 0;
}

struct scratch {
	struct iovec stack[64];
	struct iovec *v;
	int max;
};

static int scratch_init(struct scratch *s, int cnt)
{
	s->max = cnt + 3;
	s->v = s->max <= 64 ? s->stack : malloc(sizeof(struct iovec) * s->max);
	return s->v ? 0 : -ENOMEM;
}

static void scratch_free(struct scratch *s)
{
	if (s->v != s->stack)
		free(s->v);
}

static ssize_t q_preadv(struct disk *d, const struct iovec *iov, int cnt, uint64_t off)
{
	struct qcow2 *q = disk_qcow2(d);
	size_t total = iov_total(iov, cnt), left = total;
	uint64_t pos = off;
	struct scratch s;
	struct iovc c;
	int r = 0, k;

	if (off > q->size || total > q->size - off)
		return -EINVAL;
	if (scratch_init(&s, cnt))
		return -ENOMEM;
	iovc_init(&c, iov, cnt);
	while (left && !r) {
		struct qmap m;

		r = qcow2_map(q, pos, left, &m);
		if (r)
			break;
		switch (m.type) {
		case QMAP_UNALLOC:
			if (!q->backing) {
				iovc_zero(&c, m.len);
				break;
			}
			k = iovc_take(&c, m.len, s.v, s.max);
			r = k < 0 ? k : qcow2_read_backing(q, s.v, k, pos);
			break;
		case QMAP_ZERO:
			iovc_zero(&c, m.len);
			break;
		case QMAP_DATA:
			k = iovc_take(&c, m.len, s.v, s.max);
			r = k < 0 ? k : data_io(q, s.v, k, m.host, false);
			break;
		case QMAP_COMPRESSED:
			r = qcow2_decompress_cluster(q, m.l2e, q->zbuf);
			if (!r)
				iovc_from_buf(&c, (char *)q->zbuf + (pos & (q->cluster_size - 1)),
					      m.len);
			break;
		}
		pos += m.len;
		left -= m.len;
	}
	scratch_free(&s);
	return r ? r : (ssize_t)total;
}

/* Old contents of bytes [in, in+len) of the guest cluster starting at gc,
 * whose previous L2 entry is described by m. */
static int read_old(struct qcow2 *q, const struct qmap *m, uint64_t gc, uint64_t in,
		    uint64_t len, void *buf)
{
	struct iovec v = { buf, len };
	int r;

	switch (m->type) {
	case QMAP_UNALLOC:
		if (q->backing)
			return qcow2_read_backing(q, &v, 1, gc + in);
		/* fallthrough */
	case QMAP_ZERO:
		memset(buf, 0, len);
		return 0;
	case QMAP_DATA:
		return qc_pread(q, buf, len, m->host + in, true);
	case QMAP_COMPRESSED:
		r = qcow2_decompress_cluster(q, m->l2e, q->zbuf);
		if (!r)
			memcpy(buf, (char *)q->zbuf + in, len);
		return r;
	}
	return -EIO;
}

static bool reads_zero(const struct qcow2 *q, const struct qmap *m)
{
	return m->type == QMAP_ZERO || (m->type == QMAP_UNALLOC && !q->backing);
}

/* Queue the release of whatever the old L2 entry pointed at. */
static int release_old(struct qcow2 *q, uint64_t e)
{
	if (e & QCOW_OFLAG_COMPRESSED)
		return qcow2_free_compressed_later(q, e);
	if (e & L2E_OFFSET_MASK)
		return qcow2_free_later(q, e & L2E_OFFSET_MASK, 1);
	return 0;
}

int qcow2_mark_dirty(struct qcow2 *q)
{
	int r;

	if (q->dirty_marked || q->version < 3)
		return 0;
	/* Unknown autoclear features must be cleared before writing
	 * (qcow2.txt); we maintain none of them (bitmaps included). */
	if (q->autoclear) {
		r = qcow2_write_autoclear(q, 0);
		if (r)
			return r;
	}
	r = qcow2_write_incompat(q, q->incompat | QCOW2_INCOMPAT_DIRTY);
	if (!r)
		r = qc_sync(q);
	if (!r)
		q->dirty_marked = true;
	return r;
}

/* Write len bytes from c at guest offset pos, all inside one L2 table
 * whose pinned table is l2 (entry idx).  Returns bytes written or -errno. */
static ssize_t write_in_l2(struct qcow2 *q, uint64_t *l2, uint64_t idx, uint64_t pos,
			   uint64_t left, struct iovc *c, struct scratch *s)
{
	uint64_t cs = q->cluster_size, cin = pos & (cs - 1);
	uint64_t room = ((q->l2_entries - idx) << q->cluster_bits) - cin;
	struct qmap m, m2;
	uint64_t n, j;
	int k, r;

	if (left > room)
		left = room;
	classify_l2e(q, be64toh(l2[idx]), &m);
	if (m.type == QMAP_DATA && qcow2_check_range(q, m.host, cs, true))
		return -EIO;
	if (m.type == QMAP_DATA && m.copied) {
		/* In place, extended over host-contiguous writable clusters. */
		n = cs - cin < left ? cs - cin : left;
		for (j = idx + 1; n < left; j++) {
			classify_l2e(q, be64toh(l2[j]), &m2);
			if (m2.type != QMAP_DATA || !m2.copied ||
			    m2.host != m.host + ((j - idx) << q->cluster_bits))
				break;
			n += cs < left - n ? cs : left - n;
		}
		k = iovc_take(c, n, s->v, s->max);
		if (k < 0)
			return k;
		r = data_io(q, s->v, k, m.host + cin, true);
		return r ? r : (ssize_t)n;
	}

	/* Allocate a run of clusters that all need it. */
	uint64_t nclu = 1, got;
	n = cs - cin < left ? cs - cin : left;
	while (n < left && nclu < 1024) {
		classify_l2e(q, be64toh(l2[idx + nclu]), &m2);
		if (m2.type == QMAP_DATA && m2.copied)
			break;
		n += cs < left - n ? cs : left - n;
		nclu++;
	}
	uint64_t old_end = q->file_size, host;
	r = qcow2_alloc_clusters(q, nclu, &host, &got);
	if (r)
		return r;
	if (got < nclu) {
		nclu = got;
		n = (nclu << q->cluster_bits) - cin;
		if (n > left)
			n = left;
	}
	bool fresh = host >= old_end;   /* beyond the old EOF: reads as zeros */
	uint64_t tail_in = (cin + n) - ((nclu - 1) << q->cluster_bits);
	uint64_t tail_len = cs - tail_in;
	struct qmap mlast;
	classify_l2e(q, be64toh(l2[idx + nclu - 1]), &mlast);
	if (tail_in == cs)
		tail_len = 0;
	bool do_head = cin && !(fresh && reads_zero(q, &m));
	bool do_tail = tail_len && !(fresh && reads_zero(q, &mlast));
	uint64_t gc0 = pos - cin;

	int nv = 0;
	if (do_head) {
		r = read_old(q, &m, gc0, 0, cin, q->hbuf);
		if (r)
			return r;
		s->v[nv++] = (struct iovec){ q->hbuf, cin };
	}
	k = iovc_take(c, n, s->v + nv, s->max - nv - 1);
	if (k < 0)
		return k;
	nv += k;
	if (do_tail) {
		r = read_old(q, &mlast, gc0 + ((nclu - 1) << q->cluster_bits), tail_in,
			     tail_len, q->tbuf);
		if (r)
			return r;
		s->v[nv++] = (struct iovec){ q->tbuf, tail_len };
	}
	r = data_io(q, s->v, nv, host + (do_head ? 0 : cin), true);
	if (r)
		return r;
	for (uint64_t i = 0; i < nclu; i++) {
		uint64_t old = be64toh(l2[idx + i]);
		l2[idx + i] = htobe64((host + (i << q->cluster_bits)) | QCOW_OFLAG_COPIED);
		r = release_old(q, old);
		if (r)
			return r;
	}
	return (ssize_t)n;
}

static ssize_t q_pwritev(struct disk *d, const struct iovec *iov, int cnt, uint64_t off)
{
	struct qcow2 *q = disk_qcow2(d);
	size_t total = iov_total(iov, cnt), left = total;
	uint64_t pos = off;
	struct scratch s;
	struct iovc c;
	int r = 0;

	if (q->readonly)
		return -EROFS;
	if (off > q->size || total > q->size - off)
		return -EINVAL;
	r = qcow2_mark_dirty(q);
	if (r)
		return r;
	if (scratch_init(&s, cnt))
		return -ENOMEM;
	iovc_init(&c, iov, cnt);
	while (left) {
		uint64_t *l2, idx;
		ssize_t n;

		r = qcow2_get_l2_for_write(q, pos, &l2, &idx);
		if (r)
			break;
		n = write_in_l2(q, l2, idx, pos, left, &c, &s);
		qcow2_put_l2(q, l2, n > 0);
		if (n < 0) {
			r = (int)n;
			break;
		}
		pos += (uint64_t)n;
		left -= (size_t)n;
	}
	scratch_free(&s);
	if (!r && q->npending > QCOW2_MAX_PENDING)
		r = qcow2_flush_meta(q);
	return r ? r : (ssize_t)total;
}

/* Zero [off, off+len) by writing explicit zeros (partial clusters, v2). */
static int write_zero_bytes(struct qcow2 *q, uint64_t off, uint64_t len)
{
	while (len) {
		uint64_t n = len < q->cluster_size ? len : q->cluster_size;
		struct iovec v = { q->zeros, n };
		ssize_t r = q_pwritev(q->disk, &v, 1, off);
		if (r < 0)
			return (int)r;
		off += n;
		len -= n;
	}
	return 0;
}

enum zmode { ZM_DISCARD, ZM_ZERO, ZM_ZERO_UNMAP };

/* New L2 entry for whole-cluster discard / zeroing (v3 zero flag). */
static uint64_t zero_entry(struct qcow2 *q, uint64_t old, enum zmode mode, bool *release)
{
	struct qmap m;

	classify_l2e(q, old, &m);
	*release = false;
	if (mode == ZM_DISCARD) {
		*release = true;
		return q->backing && q->version >= 3 ? QCOW_OFLAG_ZERO : 0;
	}
	if (m.type == QMAP_ZERO)
		return old;
	if (mode == ZM_ZERO && m.type == QMAP_DATA && m.copied)
		return old | QCOW_OFLAG_ZERO;   /* keep the allocation */
	*release = true;
	return QCOW_OFLAG_ZERO;
}

static int zero_clusters(struct qcow2 *q, uint64_t pos, uint64_t end, enum zmode mode)
{
	int r = 0;

	while (pos < end && !r) {
		struct qmap m;
		uint64_t *l2, idx;

		r = qcow2_map(q, pos, end - pos, &m);
		if (r)
			break;
		/* Like qemu, a discard over a backing file reads as zeros
		 * afterwards (v3); v2 can only expose the backing data. */
		if (m.type == QMAP_ZERO ||
		    (m.type == QMAP_UNALLOC && (!q->backing || q->version < 3))) {
			pos += m.len;   /* nothing to change */
			continue;
		}
		r = qcow2_get_l2_for_write(q, pos, &l2, &idx);
		if (r)
			break;
		bool dirty = false;
		for (; pos < end && idx < q->l2_entries && !r; idx++, pos += q->cluster_size) {
			uint64_t old = be64toh(l2[idx]);
			bool rel;
			uint64_t ne = zero_entry(q, old, mode, &rel);
			if (ne == old)
				continue;
			l2[idx] = htobe64(ne);
			dirty = true;
			if (rel)
				r = release_old(q, old);
		}
		qcow2_put_l2(q, l2, dirty);
	}
	return r;
}

static int q_zero_or_discard(struct disk *d, uint64_t off, uint64_t len, enum zmode mode)
{
	struct qcow2 *q = disk_qcow2(d);
	uint64_t cs = q->cluster_size, a, b;
	int r;

	if (q->readonly)
		return -EROFS;
	if (off > q->size || len > q->size - off)
		return -EINVAL;
	if (!len)
		return 0;
	r = qcow2_mark_dirty(q);
	if (r)
		return r;
	a = qc_align_up(off, cs);
	b = (off + len) & ~(cs - 1);
	/* The last cluster may be partial at the end of the disk. */
	if (off + len == q->size)
		b = qc_align_up(q->size, cs);
	if (mode != ZM_DISCARD && q->version < 3)
		return write_zero_bytes(q, off, len);  /* v2: no zero flag */
	if (a >= b) {
		/* Inside one cluster. */
		return mode == ZM_DISCARD ? 0 : write_zero_bytes(q, off, len);
	}
	if (mode != ZM_DISCARD) {
		r = write_zero_bytes(q, off, a - off);
		if (!r && b < off + len)
			r = write_zero_bytes(q, b, off + len - b);
		if (r)
			return r;
	}
	r = zero_clusters(q, a, b, mode);
	if (!r && q->npending > QCOW2_MAX_PENDING)
		r = qcow2_flush_meta(q);
	return r;
}

static int q_discard(struct disk *d, uint64_t off, uint64_t len)
{
	return q_zero_or_discard(d, off, len, ZM_DISCARD);
}

static int q_write_zeroes(struct disk *d, uint64_t off, uint64_t len, bool may_unmap)
{
	return q_zero_or_discard(d, off, len, may_unmap ? ZM_ZERO_UNMAP : ZM_ZERO);
}

int qcow2_flush_meta(struct qcow2 *q)
{
	int r;

	if (q->readonly)
		return 0;
	/* Tables first (after their refcounts and data, see cache deps). */
	r = qcache_flush(&q->l2c);
	if (r)
		return r;
	if (q->npending) {
		/* Rule 3: dropped references durable before the decrements. */
		r = qc_sync(q);
		if (!r)
			r = qcow2_apply_pending_frees(q);
		if (r)
			return r;
	}
	r = qcache_flush(&q->rbc);
	if (!r)
		r = qc_sync(q);
	return r;
}

static int q_flush(struct disk *d)
{
	struct qcow2 *q = disk_qcow2(d);
	int r = qcow2_flush_meta(q);

	if (!r && q->direct && !q->unsafe && fdatasync(q->fd))
		r = -errno;
	return r;
}

void qcow2_free(struct qcow2 *q)
{
	if (q->backing)
		q->backing->ops->close(q->backing);
	qcache_destroy(&q->l2c);
	qcache_destroy(&q->rbc);
	qcow2_compress_free(q);
	if (q->mfd >= 0 && q->mfd != q->fd)
		close(q->mfd);
	free(q->l1);
	free(q->rt);
	free(q->pending);
	free(q->zbuf);
	free(q->hbuf);
	free(q->tbuf);
	free(q->zeros);
	free(q->backing_name);
	free(q->path);
	free(q);
}

static void q_close(struct disk *d)
{
	struct qcow2 *q = disk_qcow2(d);
	int r = 0;

	if (!q->readonly) {
		r = qcow2_flush_meta(q);
		/* Refcounts are exact now: the image is clean again. */
		if (!r && q->dirty_marked) {
			r = qcow2_write_incompat(q, q->incompat & ~QCOW2_INCOMPAT_DIRTY);
			if (!r)
				r = qc_sync(q);
		}
		if (r)
			log_err("qcow2 %s: flushing on close failed: %s", q->path, strerror(-r));
	}
	if (q->mfd != q->fd)
		close(q->mfd);
	close(q->fd);
	q->mfd = q->fd = -1;
	qcow2_free(q);
	free(d);
}

const struct disk_ops qcow2_ops = {
	.name = "qcow2",
	.preadv = q_preadv,
	.pwritev = q_pwritev,
	.flush = q_flush,
	.discard = q_discard,
	.write_zeroes = q_write_zeroes,
	.close = q_close,
};
