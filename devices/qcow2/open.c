/* Opening a qcow2 image (validate, load tables, caches, backing chain) and
 * the small public query functions of qcow2.h. */
#include "devices/qcow2/qcow2_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_L2_CACHE_MAX (32ull << 20)

static int cache_slots(const struct qcow2 *q, uint64_t bytes, uint64_t dflt)
{
	uint64_t n = (bytes ? bytes : dflt) >> q->cluster_bits;

	if (n < 4)
		n = 4;
	if (n > 65536)
		n = 65536;
	return (int)n;
}

int qcow2_open_depth(struct disk **out, int fd, const struct disk_opts *opts,
		     const struct qcow2_opts *qo, struct qchain *chain,
		     char *err, size_t errlen)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	struct qcow2_opts dq = { 0 };
	struct disk *d = NULL;
	uint8_t *hb = NULL;
	struct stat st;
	int r, flags;

	if (!q)
		return qerr(err, errlen, ENOMEM, "%s: out of memory", opts->path);
	if (!qo)
		qo = &dq;
	q->fd = q->mfd = fd;
	q->readonly = opts->readonly;
	q->path = strdup(opts->path ? opts->path : "");
	q->depth = chain->n;
	if (!q->path) {
		r = -ENOMEM;
		goto fail_msg;
	}
	if (fstat(fd, &st)) {
		r = -errno;
		goto fail_msg;
	}
	q->file_size = (uint64_t)st.st_size;
	if (chain->n <= QCOW2_MAX_BACKING_DEPTH) {
		chain->dev[chain->n] = st.st_dev;
		chain->ino[chain->n] = st.st_ino;
		chain->n++;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags >= 0 && (flags & O_DIRECT)) {
		/* Metadata goes through the page cache (unaligned, small);
		 * guest data through the O_DIRECT fd. */
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		q->mfd = open(p, (flags & O_ACCMODE) | O_CLOEXEC);
		if (q->mfd < 0) {
			r = -errno;
			goto fail_msg;
		}
		q->direct = true;
	} else if (flags >= 0 && opts->cache == DISK_CACHE_NONE) {
		/* cache=none: a second, O_DIRECT fd for guest data. */
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		int dfd = open(p, (flags & O_ACCMODE) | O_DIRECT | O_CLOEXEC);
		if (dfd >= 0) {
			q->fd = dfd;
			q->direct = true;
		}
	}
	q->unsafe = opts->cache == DISK_CACHE_UNSAFE;

	/* The header cluster: 4 KiB first, the whole cluster once its size
	 * is known to be sane. */
	size_t hlen = 4096;
	hb = qc_alloc(hlen);
	if (!hb) {
		r = -ENOMEM;
		goto fail_msg;
	}
	r = qc_pread(q, hb, 4096, 0, true);
	if (r)
		goto fail_msg;
	{
		uint32_t cb;
		memcpy(&cb, hb + 20, 4);
		cb = be32toh(cb);
		if (cb > 12 && cb <= QCOW2_MAX_CLUSTER_BITS) {
			free(hb);
			hlen = (size_t)1 << cb;
			hb = qc_alloc(hlen);
			if (!hb) {
				r = -ENOMEM;
				goto fail_msg;
			}
			r = qc_pread(q, hb, hlen, 0, true);
			if (r)
				goto fail_msg;
		}
	}
	char sub[200];
	r = qcow2_parse_header(q, hb, hlen, sub, sizeof(sub));
	if (r) {
		qerr(err, errlen, -r, "%s: %s", q->path, sub);
		goto fail;
	}
	if (!q->readonly && !qo->for_check && (q->incompat & QCOW2_INCOMPAT_CORRUPT)) {
		r = qerr(err, errlen, EROFS,
			 "%s: image is marked corrupt; it can only be opened read-only "
			 "(repair with `qemu-img check -r all`)", q->path);
		goto fail;
	}
	r = qcow2_load_tables(q, sub, sizeof(sub));
	if (r) {
		qerr(err, errlen, -r, "%s: %s", q->path, sub);
		goto fail;
	}

	uint64_t l2_need = (uint64_t)q->l1_size << q->cluster_bits;
	if (l2_need > DEFAULT_L2_CACHE_MAX)
		l2_need = DEFAULT_L2_CACHE_MAX;
	int l2n = cache_slots(q, qo->l2_cache_bytes, l2_need);
	int rbn = cache_slots(q, qo->rb_cache_bytes, ((uint64_t)l2n << q->cluster_bits) / 4);
	if (qcache_init(&q->l2c, q, "L2", l2n) || qcache_init(&q->rbc, q, "refcount", rbn)) {
		r = -ENOMEM;
		goto fail_msg;
	}
	/* Rules 1 and 2: before an L2 table is written, refcounts are
	 * written and refcounts + data synced. */
	q->l2c.depends = &q->rbc;
	q->l2c.need_sync = true;
	q->zbuf = qc_alloc(q->cluster_size);
	q->hbuf = qc_alloc(q->cluster_size);
	q->tbuf = qc_alloc(q->cluster_size);
	q->zeros = qc_alloc(q->cluster_size);
	if (!q->zbuf || !q->hbuf || !q->tbuf || !q->zeros) {
		r = -ENOMEM;
		goto fail_msg;
	}
	q->free_hint = 1;

	if (!qo->for_check && !qo->no_backing) {
		r = qcow2_open_backing(q, chain, err, errlen);
		if (r)
			goto fail;
	}

	d = calloc(1, sizeof(*d));
	if (!d) {
		r = -ENOMEM;
		goto fail_msg;
	}
	d->ops = &qcow2_ops;
	d->size = q->size;
	d->readonly = q->readonly;
	d->block_size = 512;
	d->align = q->direct ? 512 : 1;
	d->fd = fd;
	d->priv = q;
	q->disk = d;
	if (opts->serial)
		snprintf(d->serial, sizeof(d->serial), "%s", opts->serial);

	if (!q->readonly && !qo->for_check && (q->incompat & QCOW2_INCOMPAT_DIRTY)) {
		/* Refcounts may be stale (qcow2.txt, dirty bit): repair
		 * before the first allocation can trust them. */
		r = qcow2_repair_dirty(q, sub, sizeof(sub));
		if (r) {
			qerr(err, errlen, -r, "%s: image is dirty and could not be repaired: %s",
			     q->path, sub);
			goto fail;
		}
	}
	free(hb);
	*out = d;
	return 0;

fail_msg:
	qerr(err, errlen, -r, "%s: %s", opts->path ? opts->path : "qcow2", strerror(-r));
fail:
	free(hb);
	free(d);
	/* The caller still owns fd on failure. */
	if (q->fd >= 0 && q->fd != fd)
		close(q->fd);
	if (q->mfd >= 0 && q->mfd != fd)
		close(q->mfd);
	q->fd = q->mfd = -1;
	qcow2_free(q);
	return r;
}

int qcow2_open_ex(struct disk **out, int fd, const struct disk_opts *opts,
		  const struct qcow2_opts *qo, char *err, size_t errlen)
{
	struct qchain chain = { 0 };

	return qcow2_open_depth(out, fd, opts, qo, &chain, err, errlen);
}

int qcow2_open(struct disk **out, int fd, const struct disk_opts *opts,
	       char *err, size_t errlen)
{
	return qcow2_open_ex(out, fd, opts, NULL, err, errlen);
}

bool qcow2_is_qcow2(const struct disk *d)
{
	return d && d->ops == &qcow2_ops;
}

int qcow2_data_fd(struct disk *d)
{
	return qcow2_is_qcow2(d) ? disk_qcow2(d)->fd : d->fd;
}

int qcow2_map_extent(struct disk *d, uint64_t off, uint64_t len, struct qcow2_extent *e)
{
	struct qcow2 *q = disk_qcow2(d);
	struct qmap m;
	int r;

	if (!qcow2_is_qcow2(d) || off >= q->size)
		return -EINVAL;
	if (len > q->size - off)
		len = q->size - off;
	r = qcow2_map(q, off, len, &m);
	if (r)
		return r;
	memset(e, 0, sizeof(*e));
	e->len = m.len;
	switch (m.type) {
	case QMAP_UNALLOC: e->type = QCOW2_EXT_UNALLOC; break;
	case QMAP_ZERO: e->type = QCOW2_EXT_ZERO; break;
	case QMAP_COMPRESSED: e->type = QCOW2_EXT_COMPRESSED; break;
	case QMAP_DATA:
		e->type = QCOW2_EXT_DATA;
		e->host = m.host;
		e->writable = m.copied && !q->readonly;
		break;
	}
	return 0;
}
