/* Consistency check (like `qemu-img check`): count every reference to
 * every host cluster (header, L1/L2 tables, data, snapshots, refcount
 * structures, bitmaps) and compare with the stored refcounts; check the
 * COPIED flags of the active tables.  Optionally repair leaks and
 * too-small refcounts. */
#include "devices/qcow2/qcow2_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Refuse to build a reference array bigger than this many clusters. */
#define CHECK_MAX_CLUSTERS (1ull << 26)   /* 256 MiB of counters */

struct chk {
	struct qcow2 *q;
	FILE *rep;
	struct qcow2_check_result *res;
	uint32_t *ref;
	uint64_t n;        /* entries in ref */
	void *tbl;         /* one cluster scratch */
	uint64_t last_data;
};

static void say(struct chk *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct chk *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->rep)
		return;
	va_start(ap, fmt);
	vfprintf(c->rep, fmt, ap);
	va_end(ap);
	fputc('\n', c->rep);
}

static void inc_range(struct chk *c, uint64_t off, uint64_t len)
{
	struct qcow2 *q = c->q;

	if (!len)
		return;
	/* The last cluster may be partly beyond EOF, a whole one may not. */
	if (off > UINT64_MAX - len || off + len >= q->file_size + q->cluster_size) {
		say(c, "ERROR: counting reference for region exceeding the end of the file "
		       "by one cluster or more: offset 0x%llx size 0x%llx",
		    (unsigned long long)off, (unsigned long long)len);
		c->res->corruptions++;
		return;
	}
	uint64_t first = off >> q->cluster_bits, last = (off + len - 1) >> q->cluster_bits;
	for (uint64_t i = first; i <= last && i < c->n; i++)
		if (c->ref[i] < UINT32_MAX)
			c->ref[i]++;
}

static int read_cluster(struct chk *c, uint64_t off, void *buf)
{
	return qc_pread(c->q, buf, c->q->cluster_size, off, true);
}

/* Walk one L2 table: count the data clusters it references. */
static int walk_l2(struct chk *c, uint64_t l2off, bool active)
{
	struct qcow2 *q = c->q;
	uint64_t *l2 = c->tbl;
	int r = read_cluster(c, l2off, l2);

	if (r)
		return r;
	for (uint64_t i = 0; i < q->l2_entries; i++) {
		uint64_t e = be64toh(l2[i]);

		if (e & QCOW_OFLAG_COMPRESSED) {
			uint64_t off, len;
			if (e & QCOW_OFLAG_COPIED) {
				say(c, "ERROR: coffset=0x%llx: copied flag must never be set for "
				       "compressed clusters", (unsigned long long)(e & q->coffset_mask));
				c->res->corruptions++;
			}
			qcow2_compressed_extent(q, e, &off, &len);
			inc_range(c, off & ~511ull, len + (off & 511));
			if (active) {
				c->res->allocated_clusters++;
				c->res->compressed_clusters++;
			}
			continue;
		}
		uint64_t host = e & L2E_OFFSET_MASK;
		if (!host)
			continue;
		if (host & (q->cluster_size - 1)) {
			/* Reported, and still counted over the clusters the bad
			 * range touches, as qemu-img does. */
			say(c, "ERROR offset=%llx: Data cluster is not properly aligned; L2 entry corrupted.",
			    (unsigned long long)host);
			c->res->corruptions++;
		}
		if (active && !(q->version >= 3 && (e & QCOW_OFLAG_ZERO))) {
			c->res->allocated_clusters++;
			if (c->last_data && host != c->last_data + q->cluster_size)
				c->res->fragmented_clusters++;
			c->last_data = host;
		}
		inc_range(c, host, q->cluster_size);
	}
	return 0;
}

static int walk_l1(struct chk *c, uint64_t l1off, uint32_t l1n, const uint64_t *l1_host,
		   bool active)
{
	struct qcow2 *q = c->q;
	uint64_t *l1 = NULL;
	int r = 0;

	inc_range(c, l1off, (uint64_t)l1n * 8);
	if (!l1_host) {
		if ((uint64_t)l1n * 8 > QCOW2_MAX_L1_BYTES || l1off + (uint64_t)l1n * 8 > q->file_size) {
			say(c, "ERROR: snapshot L1 table at 0x%llx (%u entries) is invalid",
			    (unsigned long long)l1off, l1n);
			c->res->corruptions++;
			return 0;
		}
		l1 = malloc((size_t)l1n * 8 + 8);
		if (!l1)
			return -ENOMEM;
		r = qc_pread(q, l1, (size_t)l1n * 8, l1off, false);
		if (r)
			goto out;
		for (uint32_t i = 0; i < l1n; i++)
			l1[i] = be64toh(l1[i]);
		l1_host = l1;
	}
	for (uint32_t i = 0; i < l1n && !r; i++) {
		uint64_t l2off = l1_host[i] & L1E_OFFSET_MASK;
		if (!l2off)
			continue;
		if (l2off & (q->cluster_size - 1)) {
			say(c, "ERROR l2_offset=%llx: Table is not cluster aligned; L1 entry corrupted",
			    (unsigned long long)l2off);
			c->res->corruptions++;
			continue;
		}
		inc_range(c, l2off, q->cluster_size);
		if (l2off >= q->file_size)
			continue;
		r = walk_l2(c, l2off, active);
	}
out:
	free(l1);
	return r;
}

static int walk_snapshots(struct chk *c)
{
	struct qcow2 *q = c->q;
	uint64_t pos = q->snapshots_offset;
	uint8_t h[40];
	int r;

	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		if (pos + 40 > q->file_size) {
			say(c, "ERROR: snapshot table extends beyond end of file");
			c->res->corruptions++;
			return 0;
		}
		r = qc_pread(q, h, 40, pos, false);
		if (r)
			return r;
		uint64_t l1off; uint32_t l1n, extra; uint16_t idl, nml;
		memcpy(&l1off, h, 8); memcpy(&l1n, h + 8, 4);
		memcpy(&idl, h + 12, 2); memcpy(&nml, h + 14, 2); memcpy(&extra, h + 36, 4);
		l1off = be64toh(l1off); l1n = be32toh(l1n);
		idl = be16toh(idl); nml = be16toh(nml); extra = be32toh(extra);
		if (extra > 1024) {
			say(c, "ERROR: snapshot %u: extra data too large", i);
			c->res->corruptions++;
			return 0;
		}
		if (l1off & (q->cluster_size - 1)) {
			say(c, "ERROR: snapshot %u: L1 table is not cluster aligned", i);
			c->res->corruptions++;
		} else if (l1n) {
			r = walk_l1(c, l1off, l1n, NULL, false);
			if (r)
				return r;
		}
		pos += qc_align_up(40ull + extra + idl + nml, 8);
	}
	inc_range(c, q->snapshots_offset, pos - q->snapshots_offset);
	return 0;
}

static int walk_bitmaps(struct chk *c)
{
	struct qcow2 *q = c->q;
	uint8_t *dir;
	int r = 0;

	/* Without autoclear bit 0 the extension is stale (a program without
	 * bitmap support wrote the image, e.g. us): its clusters count as
	 * leaked, as qemu-img check reports them. */
	if (!q->has_bitmaps || !q->bitmaps_dir_size || !(q->autoclear & 1))
		return 0;
	if (q->bitmaps_dir_size > (64u << 20) ||
	    q->bitmaps_dir_off + q->bitmaps_dir_size > q->file_size) {
		say(c, "ERROR: bitmap directory is invalid");
		c->res->corruptions++;
		return 0;
	}
	inc_range(c, q->bitmaps_dir_off, q->bitmaps_dir_size);
	dir = malloc(q->bitmaps_dir_size);
	if (!dir)
		return -ENOMEM;
	r = qc_pread(q, dir, q->bitmaps_dir_size, q->bitmaps_dir_off, false);
	for (uint64_t pos = 0; !r && pos + 24 <= q->bitmaps_dir_size;) {
		uint64_t toff; uint32_t tsz, extra; uint16_t nl;
		memcpy(&toff, dir + pos, 8); memcpy(&tsz, dir + pos + 8, 4);
		memcpy(&nl, dir + pos + 18, 2); memcpy(&extra, dir + pos + 20, 4);
		toff = be64toh(toff); tsz = be32toh(tsz); nl = be16toh(nl); extra = be32toh(extra);
		if ((uint64_t)tsz * 8 > (64u << 20) || toff + (uint64_t)tsz * 8 > q->file_size) {
			say(c, "ERROR: bitmap table is invalid");
			c->res->corruptions++;
			break;
		}
		inc_range(c, toff, (uint64_t)tsz * 8);
		uint64_t *t = malloc((size_t)tsz * 8 + 8);
		if (!t) {
			r = -ENOMEM;
			break;
		}
		r = qc_pread(q, t, (size_t)tsz * 8, toff, false);
		for (uint32_t i = 0; !r && i < tsz; i++) {
			uint64_t o = be64toh(t[i]) & L2E_OFFSET_MASK;
			if (o)
				inc_range(c, o, q->cluster_size);
		}
		free(t);
		pos += qc_align_up(24ull + extra + nl, 8);
	}
	free(dir);
	return r;
}

static int set_refcount(struct qcow2 *q, uint64_t ci, uint64_t v)
{
	uint64_t ri = ci >> q->rb_bits, boff;
	void *blk;
	int r;

	if (ri >= q->rt_entries)
		return -ENOSPC;
	boff = q->rt[ri] & RT_OFFSET_MASK;
	if (!boff || (boff & (q->cluster_size - 1)) || boff >= q->file_size)
		return -ENOSPC;
	r = qcache_get(&q->rbc, boff, false, &blk);
	if (r)
		return r;
	rb_set(q, blk, ci & ((1ull << q->rb_bits) - 1), v > q->refcount_max ? q->refcount_max : v);
	qcache_put(&q->rbc, blk, true);
	return 0;
}

static uint64_t stored_rc(struct qcow2 *q, uint64_t ci, int *err)
{
	uint64_t rc = 0;

	if ((ci >> q->rb_bits) < q->rt_entries) {
		int r = qcow2_get_refcount(q, ci, &rc);
		if (r)
			*err = r;
	}
	return rc;
}

/* Compare computed and stored refcounts; fix per mask. */
static int compare(struct chk *c, int fix)
{
	struct qcow2 *q = c->q;
	int r = 0;

	for (uint64_t i = 0; i < c->n; i++) {
		int e = 0;
		uint64_t st = stored_rc(q, i, &e), ref = c->ref[i];
		if (e) {
			say(c, "ERROR: cannot read the refcount of cluster %llu", (unsigned long long)i);
			c->res->check_errors++;
			continue;
		}
		if (st == ref)
			continue;
		bool leak = st > ref;
		if ((leak && (fix & QCOW2_FIX_LEAKS)) || (!leak && (fix & QCOW2_FIX_ERRORS))) {
			say(c, "Repairing %s %llu refcount=%llu reference=%llu",
			    leak ? "cluster" : "cluster", (unsigned long long)i,
			    (unsigned long long)st, (unsigned long long)ref);
			if (!set_refcount(q, i, ref)) {
				if (leak)
					c->res->leaks_fixed++;
				else
					c->res->corruptions_fixed++;
				continue;
			}
		}
		say(c, "%s cluster %llu refcount=%llu reference=%llu",
		    leak ? "Leaked" : "ERROR", (unsigned long long)i,
		    (unsigned long long)st, (unsigned long long)ref);
		if (leak)
			c->res->leaks++;
		else
			c->res->corruptions++;
	}
	if (fix)
		r = qcache_flush(&q->rbc);
	if (!r && fix)
		r = qc_sync(q);
	return r;
}

/* COPIED must be set exactly when the refcount is 1 (active tables). */
static int check_copied(struct chk *c, int fix)
{
	struct qcow2 *q = c->q;
	uint64_t *l2 = c->tbl;
	int r = 0, e = 0;

	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t l1e = q->l1[i], l2off = l1e & L1E_OFFSET_MASK;
		if (!l2off || (l2off & (q->cluster_size - 1)) || l2off >= q->file_size)
			continue;
		uint64_t rc = stored_rc(q, l2off >> q->cluster_bits, &e);
		if ((rc == 1) != !!(l1e & QCOW_OFLAG_COPIED)) {
			say(c, "ERROR OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%llx refcount=%llu",
			    i, (unsigned long long)l1e, (unsigned long long)rc);
			if (fix & QCOW2_FIX_ERRORS) {
				uint64_t ne = rc == 1 ? l1e | QCOW_OFLAG_COPIED : l1e & ~QCOW_OFLAG_COPIED;
				uint64_t be = htobe64(ne);
				r = qc_pwrite(q, &be, 8, q->l1_offset + (uint64_t)i * 8);
				if (r)
					return r;
				q->l1[i] = ne;
				c->res->corruptions_fixed++;
			} else {
				c->res->corruptions++;
			}
		}
		r = read_cluster(c, l2off, l2);
		if (r)
			return r;
		bool changed = false;
		for (uint64_t j = 0; j < q->l2_entries; j++) {
			uint64_t le = be64toh(l2[j]), host = le & L2E_OFFSET_MASK;
			if ((le & QCOW_OFLAG_COMPRESSED) || !host || (host & (q->cluster_size - 1)))
				continue;
			rc = stored_rc(q, host >> q->cluster_bits, &e);
			if ((rc == 1) == !!(le & QCOW_OFLAG_COPIED))
				continue;
			say(c, "ERROR OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu",
			    (unsigned long long)le, (unsigned long long)rc);
			if (fix & QCOW2_FIX_ERRORS) {
				le = rc == 1 ? le | QCOW_OFLAG_COPIED : le & ~QCOW_OFLAG_COPIED;
				l2[j] = htobe64(le);
				changed = true;
				c->res->corruptions_fixed++;
			} else {
				c->res->corruptions++;
			}
		}
		if (changed) {
			qcache_discard(&q->l2c, l2off);
			r = qc_pwrite(q, l2, q->cluster_size, l2off);
			if (r)
				return r;
		}
	}
	return e;
}

static int run_check(struct qcow2 *q, int fix, struct qcow2_check_result *res, FILE *rep)
{
	struct chk c = { .q = q, .rep = rep, .res = res };
	uint64_t fcl = qc_align_up(q->file_size, q->cluster_size) >> q->cluster_bits;
	int r;

	memset(res, 0, sizeof(*res));
	c.n = fcl + 1;
	/* Refcounts of clusters beyond EOF (leaks) are compared too. */
	for (uint64_t i = 0; i < q->rt_entries; i++)
		if ((q->rt[i] & RT_OFFSET_MASK) && ((i + 1) << q->rb_bits) > c.n)
			c.n = (i + 1) << q->rb_bits;
	if (c.n > CHECK_MAX_CLUSTERS)
		return -EFBIG;
	c.ref = calloc(c.n, sizeof(*c.ref));
	c.tbl = qc_alloc(q->cluster_size);
	if (!c.ref || !c.tbl) {
		r = -ENOMEM;
		goto out;
	}
	inc_range(&c, 0, q->cluster_size);  /* header */
	r = walk_l1(&c, q->l1_offset, q->l1_size, q->l1, true);
	if (!r)
		r = walk_snapshots(&c);
	if (!r) {
		inc_range(&c, q->rt_offset, (uint64_t)q->rt_clusters << q->cluster_bits);
		for (uint64_t i = 0; i < q->rt_entries; i++) {
			uint64_t b = q->rt[i] & RT_OFFSET_MASK;
			if (!b)
				continue;
			if (b & (q->cluster_size - 1)) {
				say(&c, "ERROR refcount block %llu is not cluster aligned; refcount table entry corrupted",
				    (unsigned long long)i);
				res->corruptions++;
				q->rt[i] = 0;  /* do not use it below */
				continue;
			}
			if (b >= q->file_size) {
				say(&c, "ERROR refcount block %llu is outside image",
				    (unsigned long long)i);
				res->corruptions++;
				q->rt[i] = 0;
				continue;
			}
			inc_range(&c, b, q->cluster_size);
		}
	}
	if (!r)
		r = walk_bitmaps(&c);
	if (!r)
		r = compare(&c, fix);
	if (!r)
		r = check_copied(&c, fix);
	res->total_clusters = (q->size + q->cluster_size - 1) >> q->cluster_bits;
	res->image_end_offset = 0;
	for (uint64_t i = c.n; i-- > 0;) {
		if (c.ref[i]) {
			res->image_end_offset = (i + 1) << q->cluster_bits;
			break;
		}
	}
out:
	free(c.ref);
	free(c.tbl);
	return r;
}

int qcow2_check(const char *path, int fix, struct qcow2_check_result *res, FILE *rep,
		char *err, size_t errlen)
{
	struct qcow2_opts qo = { .for_check = true };
	struct disk_opts o = { .path = path, .format = DISK_FMT_QCOW2, .readonly = !fix };
	struct disk *d;
	int fd, r;

	fd = open(path, (fix ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return qerr(err, errlen, errno, "%s: %s", path, strerror(errno));
	r = qcow2_open_ex(&d, fd, &o, &qo, err, errlen);
	if (r) {
		close(fd);
		return r;
	}
	struct qcow2 *q = disk_qcow2(d);
	r = run_check(q, fix, res, rep);
	if (!r && fix && (res->leaks_fixed || res->corruptions_fixed)) {
		/* Double check, like qemu-img, so the numbers describe the
		 * repaired image. */
		struct qcow2_check_result again;
		r = run_check(q, 0, &again, NULL);
		if (!r) {
			again.leaks_fixed = res->leaks_fixed;
			again.corruptions_fixed = res->corruptions_fixed;
			*res = again;
		}
	}
	if (!r && fix && !res->corruptions && !res->leaks &&
	    (q->incompat & (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT))) {
		r = qcow2_write_incompat(q, q->incompat & ~(QCOW2_INCOMPAT_DIRTY |
							    QCOW2_INCOMPAT_CORRUPT));
		if (!r)
			r = qc_sync(q);
	}
	if (r)
		qerr(err, errlen, -r, "%s: check failed: %s", path, strerror(-r));
	q->readonly = true;  /* nothing left to flush; close must not touch it */
	disk_qcow2(d)->dirty_marked = false;
	d->ops->close(d);
	return r;
}

int qcow2_repair_dirty(struct qcow2 *q, char *err, size_t errlen)
{
	struct qcow2_check_result res;
	int r = run_check(q, QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &res, NULL);

	if (r)
		return qerr(err, errlen, -r, "%s", strerror(-r));
	if (res.corruptions)
		return qerr(err, errlen, EIO, "%llu refcount errors could not be fixed",
			    (unsigned long long)res.corruptions);
	r = qcow2_write_incompat(q, q->incompat & ~QCOW2_INCOMPAT_DIRTY);
	if (!r)
		r = qc_sync(q);
	return r ? qerr(err, errlen, -r, "%s", strerror(-r)) : 0;
}
