/* Refcounts and cluster allocation (qcow2.txt "Host cluster management").
 *
 * Refcount block entries are refcount_bits = 1 << refcount_order wide;
 * sub-byte widths are packed starting at the least significant bit, wider
 * ones are big endian. */
#include "devices/qcow2/qcow2_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/log.h"

uint64_t rb_get(const struct qcow2 *q, const void *blk, uint64_t idx)
{
	const uint8_t *b = blk;
	uint16_t v16; uint32_t v32; uint64_t v64;

	switch (q->refcount_order) {
	case 0: return (b[idx / 8] >> (idx % 8)) & 1;
	case 1: return (b[idx / 4] >> (2 * (idx % 4))) & 3;
	case 2: return (b[idx / 2] >> (4 * (idx % 2))) & 15;
	case 3: return b[idx];
	case 4: memcpy(&v16, b + 2 * idx, 2); return be16toh(v16);
	case 5: memcpy(&v32, b + 4 * idx, 4); return be32toh(v32);
	default: memcpy(&v64, b + 8 * idx, 8); return be64toh(v64);
	}
}

void rb_set(const struct qcow2 *q, void *blk, uint64_t idx, uint64_t v)
{
	uint8_t *b = blk;
	uint16_t v16; uint32_t v32; uint64_t v64;
	unsigned sh;

	switch (q->refcount_order) {
	case 0: sh = idx % 8; b[idx / 8] = (b[idx / 8] & ~(1u << sh)) | (uint8_t)((v & 1) << sh); break;
	case 1: sh = 2 * (idx % 4); b[idx / 4] = (b[idx / 4] & ~(3u << sh)) | (uint8_t)((v & 3) << sh); break;
	case 2: sh = 4 * (idx % 2); b[idx / 2] = (b[idx / 2] & ~(15u << sh)) | (uint8_t)((v & 15) << sh); break;
	case 3: b[idx] = (uint8_t)v; break;
	case 4: v16 = htobe16((uint16_t)v); memcpy(b + 2 * idx, &v16, 2); break;
	case 5: v32 = htobe32((uint32_t)v); memcpy(b + 4 * idx, &v32, 4); break;
	default: v64 = htobe64(v); memcpy(b + 8 * idx, &v64, 8); break;
	}
}

/* Validated refblock offset for refcount table index i (0 = none). */
static int rb_offset(struct qcow2 *q, uint64_t i, uint64_t *off)
{
	uint64_t o;

	*off = 0;
	if (i >= q->rt_entries)
		return 0;
	o = q->rt[i] & RT_OFFSET_MASK;
	if (!o)
		return 0;
	if ((q->rt[i] & 0x1ff) || qcow2_check_range(q, o, q->cluster_size, true) ||
	    o >= q->file_size) {
		log_guest("qcow2 %s: refcount table entry %llu invalid (%#llx)", q->path,
			  (unsigned long long)i, (unsigned long long)q->rt[i]);
		return -EIO;
	}
	*off = o;
	return 0;
}

int qcow2_get_refcount(struct qcow2 *q, uint64_t ci, uint64_t *rc)
{
	uint64_t off;
	void *blk;
	int r = rb_offset(q, ci >> q->rb_bits, &off);

	*rc = 0;
	if (r || !off)
		return r;
	r = qcache_get(&q->rbc, off, false, &blk);
	if (r)
		return r;
	*rc = rb_get(q, blk, ci & ((1ull << q->rb_bits) - 1));
	qcache_put(&q->rbc, blk, false);
	return 0;
}

static void note_file_end(struct qcow2 *q, uint64_t end)
{
	if (end > q->file_size)
		q->file_size = end;
}

/* Grow the refcount table so that index need_idx exists.  The new table
 * and the refblocks describing it go to a fresh region beyond both the old
 * coverage and the end of file, so nothing there is referenced yet; the
 * header switch (one 12-byte write) is the commit point. */
static int grow_refcount_table(struct qcow2 *q, uint64_t need_idx)
{
	uint64_t cs = q->cluster_size, ent_per_cl = cs / 8;
	uint64_t cover_end = q->rt_entries << q->rb_bits;
	uint64_t s = qc_align_up(q->file_size, cs) >> q->cluster_bits;
	uint64_t T, R = 1, last_blk, new_entries;
	uint8_t *blk = NULL;
	uint64_t *tbl = NULL;
	int r;

	if (s < cover_end)
		s = cover_end;
	T = q->rt_clusters + q->rt_clusters / 2 + 1;
	for (;;) {
		last_blk = (s + R + T - 1) >> q->rb_bits;
		uint64_t need_R = last_blk - (s >> q->rb_bits) + 1;
		uint64_t max_idx = need_idx > last_blk ? need_idx : last_blk;
		uint64_t need_T = (max_idx + 1 + ent_per_cl - 1) / ent_per_cl;
		if (need_R <= R && need_T <= T)
			break;
		if (need_R > R)
			R = need_R;
		if (need_T > T)
			T = need_T;
	}
	if ((T << q->cluster_bits) > QCOW2_MAX_RT_BYTES)
		return -EFBIG;
	if (qcow2_check_range(q, s << q->cluster_bits, (R + T) << q->cluster_bits, true))
		return -EFBIG;
	new_entries = T * ent_per_cl;

	blk = qc_alloc(cs);
	tbl = qc_alloc(T << q->cluster_bits);
	if (!blk || !tbl) {
		r = -ENOMEM;
		goto out;
	}
	uint64_t first_blk = s >> q->rb_bits;
	for (uint64_t k = 0; k < R; k++) {
		uint64_t b = first_blk + k;
		memset(blk, 0, cs);
		for (uint64_t c = s; c < s + R + T; c++)
			if ((c >> q->rb_bits) == b)
				rb_set(q, blk, c & ((1ull << q->rb_bits) - 1), 1);
		r = qc_pwrite(q, blk, cs, (s + k) << q->cluster_bits);
		if (r)
			goto out;
	}
	for (uint64_t i = 0; i < new_entries; i++) {
		uint64_t v = i < q->rt_entries ? q->rt[i] : 0;
		if (i >= first_blk && i < first_blk + R)
			v = (s + (i - first_blk)) << q->cluster_bits;
		tbl[i] = htobe64(v);
	}
	r = qc_pwrite(q, tbl, T << q->cluster_bits, (s + R) << q->cluster_bits);
	if (!r)
		r = qc_sync(q);
	if (r)
		goto out;
	{
		uint8_t hdr[12];
		uint64_t o = htobe64((s + R) << q->cluster_bits);
		uint32_t n = htobe32((uint32_t)T);
		memcpy(hdr, &o, 8);
		memcpy(hdr + 8, &n, 4);
		r = qc_pwrite(q, hdr, 12, QH_OFF_RT_OFF);
		if (!r)
			r = qc_sync(q);
		if (r)
			goto out;
	}
	note_file_end(q, (s + R + T) << q->cluster_bits);

	uint64_t old_off = q->rt_offset, old_len = (uint64_t)q->rt_clusters << q->cluster_bits;
	for (uint64_t i = 0; i < new_entries; i++)
		tbl[i] = be64toh(tbl[i]);
	free(q->rt);
	q->rt = tbl;
	tbl = NULL;
	q->rt_offset = (s + R) << q->cluster_bits;
	q->rt_clusters = (uint32_t)T;
	q->rt_entries = new_entries;
	/* The header no longer points at the old table (synced above). */
	r = qcow2_update_refcount(q, old_off, old_len, -1);
out:
	free(blk);
	free(tbl);
	return r;
}

/* Make sure cluster ci has a refcount block.  Returns 0 if it already had
 * one, 1 if the layout changed (caller must rescan), or -errno.  ci must be
 * free: a missing block is placed at ci itself and describes itself. */
static int ensure_refblock(struct qcow2 *q, uint64_t ci)
{
	uint64_t i = ci >> q->rb_bits, off, be;
	void *blk;
	int r;

	if (i >= q->rt_entries) {
		r = grow_refcount_table(q, i);
		return r ? r : 1;
	}
	r = rb_offset(q, i, &off);
	if (r || off)
		return r;
	off = ci << q->cluster_bits;
	r = qcache_get(&q->rbc, off, true, &blk);
	if (r)
		return r;
	rb_set(q, blk, ci & ((1ull << q->rb_bits) - 1), 1);
	/* The block must be on disk before the table entry points at it. */
	r = qc_pwrite(q, blk, q->cluster_size, off);
	qcache_put(&q->rbc, blk, false);
	if (!r)
		r = qc_sync(q);
	if (r)
		return r;
	note_file_end(q, off + q->cluster_size);
	be = htobe64(off);
	r = qc_pwrite(q, &be, 8, q->rt_offset + i * 8);
	if (r)
		return r;
	q->rt[i] = off;
	return 1;
}

/* Refcount of ci, treating a missing block or table slot as 0. */
static int peek_refcount(struct qcow2 *q, uint64_t ci, uint64_t *rc)
{
	if ((ci >> q->rb_bits) >= q->rt_entries) {
		*rc = 0;
		return 0;
	}
	return qcow2_get_refcount(q, ci, rc);
}

/* Has cluster ci a refcount block already? */
static bool has_refblock(const struct qcow2 *q, uint64_t ci)
{
	uint64_t i = ci >> q->rb_bits;

	return i < q->rt_entries && (q->rt[i] & RT_OFFSET_MASK);
}

int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *out, uint64_t *got)
{
	uint64_t max_ci = QCOW2_MAX_HOST_OFF >> q->cluster_bits;
	uint64_t s, run, rc;
	int r;

	if (n == 0 || n > (1u << 20))
		return -EINVAL;
	uint64_t eof_ci;
restart:
	/* First free cluster at or after the hint. */
	eof_ci = qc_align_up(q->file_size, q->cluster_size) >> q->cluster_bits;
	for (s = q->free_hint < 1 ? 1 : q->free_hint;; s++) {
		if (s >= max_ci)
			return -ENOSPC;
		/* Refcounts far beyond the end of file are bogus (a hostile
		 * image could claim 2^47 clusters and make us scan forever). */
		if (s > eof_ci + (1u << 20)) {
			log_guest("qcow2 %s: refcounts claim clusters far beyond the end of file",
				  q->path);
			return -EIO;
		}
		r = peek_refcount(q, s, &rc);
		if (r)
			return r;
		if (!rc)
			break;
	}
	q->free_hint = s;
	r = ensure_refblock(q, s);
	if (r < 0)
		return r;
	if (r > 0)
		goto restart;   /* s now holds a refblock (or the table moved) */
	/* Extend while free and described by an existing block: creating
	 * blocks inside the run would split it. */
	for (run = 1; run < n && s + run < max_ci && has_refblock(q, s + run); run++) {
		r = peek_refcount(q, s + run, &rc);
		if (r)
			return r;
		if (rc)
			break;
	}
	r = qcow2_update_refcount(q, s << q->cluster_bits, run << q->cluster_bits, 1);
	if (r)
		return r;
	q->free_hint = s + run;
	*out = s << q->cluster_bits;
	*got = run;
	if (*out + (run << q->cluster_bits) > q->file_size) {
		/* Extend so that partially written clusters read back as zeros
		 * and `qemu-img check` sees them inside the file. */
		uint64_t end = *out + (run << q->cluster_bits);
		if (ftruncate(q->mfd, (off_t)end))
			return -errno;
		q->file_size = end;
	}
	return 0;
}

int qcow2_update_refcount(struct qcow2 *q, uint64_t off, uint64_t len, int delta)
{
	uint64_t first, last;
	int r;

	if (!len)
		return 0;
	first = off >> q->cluster_bits;
	last = (off + len - 1) >> q->cluster_bits;
	for (uint64_t ci = first; ci <= last; ci++) {
		uint64_t boff, rc, idx = ci & ((1ull << q->rb_bits) - 1);
		void *blk;

		r = rb_offset(q, ci >> q->rb_bits, &boff);
		if (r)
			return r;
		if (!boff) {
			log_guest("qcow2 %s: no refcount block for cluster %#llx", q->path,
				  (unsigned long long)(ci << q->cluster_bits));
			return -EIO;
		}
		r = qcache_get(&q->rbc, boff, false, &blk);
		if (r)
			return r;
		rc = rb_get(q, blk, idx);
		if ((delta < 0 && rc == 0) || (delta > 0 && rc >= q->refcount_max)) {
			qcache_put(&q->rbc, blk, false);
			log_guest("qcow2 %s: refcount %s for cluster %#llx", q->path,
				  delta < 0 ? "underflow" : "overflow",
				  (unsigned long long)(ci << q->cluster_bits));
			return delta < 0 ? -EIO : -ERANGE;
		}
		rc += delta;
		rb_set(q, blk, idx, rc);
		qcache_put(&q->rbc, blk, true);
		if (rc == 0) {
			qcache_discard(&q->l2c, ci << q->cluster_bits);
			if (ci < q->free_hint)
				q->free_hint = ci;
		}
	}
	return 0;
}

int qcow2_free_later(struct qcow2 *q, uint64_t off, uint64_t ncl)
{
	if (q->npending == q->cap_pending) {
		size_t cap = q->cap_pending ? q->cap_pending * 2 : 64;
		struct qfree *p = realloc(q->pending, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		q->pending = p;
		q->cap_pending = cap;
	}
	/* Merge with the previous entry when contiguous (sequential discard). */
	if (q->npending) {
		struct qfree *l = &q->pending[q->npending - 1];
		if (l->off + (l->nclusters << q->cluster_bits) == off) {
			l->nclusters += ncl;
			return 0;
		}
	}
	q->pending[q->npending].off = off;
	q->pending[q->npending].nclusters = ncl;
	q->npending++;
	return 0;
}

int qcow2_free_compressed_later(struct qcow2 *q, uint64_t l2e)
{
	uint64_t off, len;

	qcow2_compressed_extent(q, l2e, &off, &len);
	/* One decrement per host cluster the sectors touch, like the
	 * increments made when the compressed cluster was written. */
	uint64_t first = off >> q->cluster_bits, last = (off + len - 1) >> q->cluster_bits;
	for (uint64_t c = first; c <= last; c++) {
		int r = qcow2_free_later(q, c << q->cluster_bits, 1);
		if (r)
			return r;
	}
	return 0;
}

int qcow2_apply_pending_frees(struct qcow2 *q)
{
	int r = 0;

	for (size_t i = 0; i < q->npending && !r; i++)
		r = qcow2_update_refcount(q, q->pending[i].off,
					  q->pending[i].nclusters << q->cluster_bits, -1);
	q->npending = 0;
	return r;
}
