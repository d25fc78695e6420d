/* Creating images: `img create`, the snapshot=on overlay, and image facts
 * for `img info`.
 *
 * Layout of a new image: header cluster, refcount table, refcount blocks,
 * L1 table, then (preallocation) all L2 tables and all data clusters so a
 * preallocated disk is host-contiguous. */
#include "devices/qcow2/qcow2_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void put32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }

static int wr(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)r;
	}
	return 0;
}

static const struct { uint8_t type, bit; const char *name; } feature_names[] = {
	{ 0, 0, "dirty bit" },
	{ 0, 1, "corrupt bit" },
	{ 0, 3, "compression type" },
	{ 1, 0, "lazy refcounts" },
	{ 2, 0, "bitmaps" },
};

/* Header cluster: header, extensions, backing name. */
static int build_header(uint8_t *h, uint64_t cs, const struct qcow2_create_opts *o,
			uint64_t l1_size, uint64_t l1_off, uint64_t rt_off, uint64_t rt_cl,
			char *err, size_t errlen)
{
	uint32_t hlen = o->version == 2 ? QH_V2_LEN : 112;
	size_t blen = o->backing ? strlen(o->backing) : 0;
	size_t flen = o->backing_fmt ? strlen(o->backing_fmt) : 0;
	size_t ftbl = sizeof(feature_names) / sizeof(feature_names[0]) * 48;
	size_t pos = hlen;

	if (blen > 1023)
		return qerr(err, errlen, EINVAL, "backing file name too long");
	/* Feature names are optional: drop them if the cluster is small. */
	if (hlen + (flen ? 8 + qc_align_up(flen, 8) : 0) + 8 + ftbl + 8 + blen > cs)
		ftbl = 0;
	if (hlen + (flen ? 8 + qc_align_up(flen, 8) : 0) + (ftbl ? 8 + ftbl : 0) + 8 + blen > cs)
		return qerr(err, errlen, EINVAL, "backing file name does not fit in the header cluster");

	memset(h, 0, cs);
	put32(h, QCOW2_MAGIC);
	put32(h + 4, (uint32_t)o->version);
	put32(h + 20, (uint32_t)__builtin_ctzll(cs));
	put64(h + 24, o->size);
	put32(h + 36, (uint32_t)l1_size);
	put64(h + 40, l1_off);
	put64(h + 48, rt_off);
	put32(h + 56, (uint32_t)rt_cl);
	if (o->version >= 3) {
		uint64_t incompat = o->compression_type ? QCOW2_INCOMPAT_COMPRESS : 0;
		put64(h + 72, incompat);
		put64(h + 80, o->lazy_refcounts ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
		put32(h + 96, (uint32_t)__builtin_ctz(o->refcount_bits));
		put32(h + 100, hlen);
		h[104] = (uint8_t)o->compression_type;
	}
	if (flen) {
		put32(h + pos, QEXT_BACKING_FMT);
		put32(h + pos + 4, (uint32_t)flen);
		memcpy(h + pos + 8, o->backing_fmt, flen);
		pos += 8 + qc_align_up(flen, 8);
	}
	if (ftbl && o->version >= 3) {
		put32(h + pos, QEXT_FEATURE_NAME);
		put32(h + pos + 4, (uint32_t)ftbl);
		for (size_t i = 0; i * 48 < ftbl; i++) {
			uint8_t *e = h + pos + 8 + i * 48;
			e[0] = feature_names[i].type;
			e[1] = feature_names[i].bit;
			memcpy(e + 2, feature_names[i].name, strlen(feature_names[i].name));
		}
		pos += 8 + ftbl;
	}
	pos += 8;  /* end-of-extensions marker (zeros) */
	if (blen) {
		put64(h + 8, pos);
		put32(h + 16, (uint32_t)blen);
		memcpy(h + pos, o->backing, blen);
	}
	return 0;
}

int qcow2_create_fd(int fd, const struct qcow2_create_opts *in, char *err, size_t errlen)
{
	struct qcow2_create_opts o = *in;
	uint8_t *buf = NULL;
	int r;

	if (!o.cluster_size)
		o.cluster_size = 65536;
	if (!o.version)
		o.version = 3;
	if (!o.refcount_bits)
		o.refcount_bits = 16;
	if (o.cluster_size < 512 || o.cluster_size > (2u << 20) ||
	    (o.cluster_size & (o.cluster_size - 1)))
		return qerr(err, errlen, EINVAL,
			    "cluster size must be a power of two between 512 and 2M");
	if (o.version != 2 && o.version != 3)
		return qerr(err, errlen, EINVAL, "compat must be 0.10 (v2) or 1.1 (v3)");
	if (o.refcount_bits > 64 || (o.refcount_bits & (o.refcount_bits - 1)))
		return qerr(err, errlen, EINVAL, "refcount_bits must be a power of two up to 64");
	if (o.version == 2 && (o.refcount_bits != 16 || o.lazy_refcounts || o.compression_type))
		return qerr(err, errlen, EINVAL,
			    "compat=0.10 supports neither refcount_bits other than 16, "
			    "lazy refcounts nor compression types");
	if (o.size > (1ull << 61))
		return qerr(err, errlen, EFBIG, "size too large");

	uint64_t cs = o.cluster_size;
	uint32_t cb = (uint32_t)__builtin_ctz(o.cluster_size);
	uint64_t span = cs * (cs / 8);                    /* bytes per L2 table */
	uint64_t l1_size = (o.size + span - 1) / span;
	if (l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return qerr(err, errlen, EFBIG, "size too large for this cluster size");
	uint64_t l1_cl = qc_align_up(l1_size ? l1_size * 8 : 8, cs) / cs;
	uint64_t data_cl = (o.size + cs - 1) / cs;
	uint64_t pre = o.prealloc == QCOW2_PREALLOC_OFF ? 0 : l1_size + data_cl;
	uint32_t rorder = (uint32_t)__builtin_ctz(o.refcount_bits);
	uint64_t rb_ent = (cs * 8) >> rorder;
	uint64_t RB = 1, RT = 1, total;
	for (;;) {
		total = 1 + RT + RB + l1_cl + pre;
		uint64_t nRB = (total + rb_ent - 1) / rb_ent;
		uint64_t nRT = (nRB * 8 + cs - 1) / cs;
		if (nRB <= RB && nRT <= RT)
			break;
		RB = nRB > RB ? nRB : RB;
		RT = nRT > RT ? nRT : RT;
	}
	if (RT * cs > QCOW2_MAX_RT_BYTES)
		return qerr(err, errlen, EFBIG, "preallocated image too large for its refcount table");
	uint64_t rt_off = cs, rb_off = rt_off + RT * cs, l1_off = rb_off + RB * cs;
	uint64_t l2_off = l1_off + l1_cl * cs, data_off = l2_off + (pre ? l1_size * cs : 0);

	buf = qc_alloc(cs > 4096 ? cs : 4096);
	if (!buf)
		return qerr(err, errlen, ENOMEM, "out of memory");
	if (ftruncate(fd, 0)) {
		r = qerr(err, errlen, errno, "truncate: %s", strerror(errno));
		goto out;
	}
	r = build_header(buf, cs, &o, l1_size, l1_off, rt_off, RT, err, errlen);
	if (r)
		goto out;
	r = wr(fd, buf, cs, 0);
	/* Refcount table. */
	for (uint64_t c = 0; !r && c < RT; c++) {
		memset(buf, 0, cs);
		for (uint64_t i = 0; i < cs / 8; i++) {
			uint64_t b = c * (cs / 8) + i;
			if (b < RB)
				put64(buf + i * 8, rb_off + b * cs);
		}
		r = wr(fd, buf, cs, rt_off + c * cs);
	}
	/* Refcount blocks: every cluster below total has refcount 1. */
	struct qcow2 fake = { .refcount_order = rorder };
	for (uint64_t b = 0; !r && b < RB; b++) {
		memset(buf, 0, cs);
		for (uint64_t i = 0; i < rb_ent && b * rb_ent + i < total; i++)
			rb_set(&fake, buf, i, 1);
		r = wr(fd, buf, cs, rb_off + b * cs);
	}
	/* L1 table. */
	for (uint64_t c = 0; !r && c < l1_cl; c++) {
		memset(buf, 0, cs);
		for (uint64_t i = 0; pre && i < cs / 8 && c * (cs / 8) + i < l1_size; i++)
			put64(buf + i * 8, (l2_off + (c * (cs / 8) + i) * cs) | QCOW_OFLAG_COPIED);
		r = wr(fd, buf, cs, l1_off + c * cs);
	}
	/* L2 tables of a preallocated image. */
	for (uint64_t t = 0; !r && pre && t < l1_size; t++) {
		memset(buf, 0, cs);
		for (uint64_t i = 0; i < cs / 8 && t * (cs / 8) + i < data_cl; i++)
			put64(buf + i * 8, (data_off + (t * (cs / 8) + i) * cs) | QCOW_OFLAG_COPIED);
		r = wr(fd, buf, cs, l2_off + t * cs);
	}
	if (r) {
		qerr(err, errlen, -r, "writing the image: %s", strerror(-r));
		goto out;
	}
	uint64_t end = pre ? data_off + data_cl * cs : l1_off + l1_cl * cs;
	if (o.prealloc == QCOW2_PREALLOC_FULL && data_cl) {
		r = posix_fallocate(fd, (off_t)data_off, (off_t)(data_cl * cs));
		if (r) {
			/* No fallocate: write the zeros. */
			memset(buf, 0, cs);
			r = 0;
			for (uint64_t c = 0; !r && c < data_cl; c++)
				r = wr(fd, buf, cs, data_off + c * cs);
		}
		if (r) {
			qerr(err, errlen, r > 0 ? r : -r, "preallocating: %s", strerror(r > 0 ? r : -r));
			r = r > 0 ? -r : r;
			goto out;
		}
	}
	if (ftruncate(fd, (off_t)end) || fsync(fd)) {
		r = qerr(err, errlen, errno, "finishing the image: %s", strerror(errno));
		goto out;
	}
	(void)cb;
out:
	free(buf);
	return r;
}

/* Size of an image: qcow2 header field or raw file size. */
static int image_size(const char *path, const char *fmt, uint64_t *size, char *err, size_t errlen)
{
	struct qchain chain = { 0 };
	struct disk *d;
	int r = qcow2_open_chain(&d, path, fmt, &chain, err, errlen);

	if (r)
		return r;
	*size = d->size;
	d->ops->close(d);
	return 0;
}

int qcow2_create(const char *path, const struct qcow2_create_opts *in, char *err, size_t errlen)
{
	struct qcow2_create_opts o = *in;
	int fd, r;

	if (o.backing && !o.size) {
		/* Relative backing names are relative to the new image. */
		char *full = NULL;
		const char *slash = strrchr(path, '/');
		if (o.backing[0] != '/' && slash) {
			if (asprintf(&full, "%.*s/%s", (int)(slash - path), path, o.backing) < 0)
				return -ENOMEM;
		}
		r = image_size(full ? full : o.backing, o.backing_fmt, &o.size, err, errlen);
		free(full);
		if (r)
			return r;
	}
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return qerr(err, errlen, errno, "%s: %s", path, strerror(errno));
	r = qcow2_create_fd(fd, &o, err, errlen);
	if (close(fd) && !r)
		r = qerr(err, errlen, errno, "%s: %s", path, strerror(errno));
	return r;
}

int qcow2_open_snapshot(struct disk **out, const struct disk_opts *opts, char *err, size_t errlen)
{
	char real[PATH_MAX], tmpl[PATH_MAX];
	const char *dir = getenv("TMPDIR");
	const char *fmt = opts->format == DISK_FMT_RAW ? "raw" :
			  opts->format == DISK_FMT_QCOW2 ? "qcow2" : NULL;
	struct qcow2_create_opts co = { 0 };
	int fd, r;

	if (!realpath(opts->path, real))
		return qerr(err, errlen, errno, "%s: %s", opts->path, strerror(errno));
	if (!fmt) {
		bool isq;
		int bfd = open(real, O_RDONLY | O_CLOEXEC);
		if (bfd < 0)
			return qerr(err, errlen, errno, "%s: %s", opts->path, strerror(errno));
		r = qcow2_probe_fd(bfd, &isq);
		close(bfd);
		if (r)
			return qerr(err, errlen, -r, "%s: %s", opts->path, strerror(-r));
		fmt = isq ? "qcow2" : "raw";
	}
	r = image_size(real, fmt, &co.size, err, errlen);
	if (r)
		return r;
	snprintf(tmpl, sizeof(tmpl), "%s/minivmm-snapshot-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0)
		return qerr(err, errlen, errno, "creating the snapshot overlay in %s: %s",
			    dir && *dir ? dir : "/tmp", strerror(errno));
	unlink(tmpl);   /* gone when we close it, even after a crash */
	co.backing = real;
	co.backing_fmt = fmt;
	r = qcow2_create_fd(fd, &co, err, errlen);
	if (!r) {
		struct disk_opts o = *opts;
		o.path = tmpl;
		o.readonly = false;
		o.snapshot = false;
		o.format = DISK_FMT_QCOW2;
		if (o.cache == DISK_CACHE_NONE)
			o.cache = DISK_CACHE_WRITEBACK;
		r = qcow2_open(out, fd, &o, err, errlen);
	}
	if (r)
		close(fd);
	return r;
}

int qcow2_get_info(struct disk *d, struct qcow2_info *info)
{
	struct qcow2 *q;
	uint64_t pos;

	if (!qcow2_is_qcow2(d))
		return -EINVAL;
	q = disk_qcow2(d);
	memset(info, 0, sizeof(*info));
	info->version = q->version;
	info->cluster_size = q->cluster_size;
	info->size = q->size;
	info->refcount_bits = 1u << q->refcount_order;
	info->compression_type = q->compression_type;
	info->lazy_refcounts = !!(q->compat & QCOW2_COMPAT_LAZY_REFCOUNTS);
	info->corrupt = !!(q->incompat & QCOW2_INCOMPAT_CORRUPT);
	info->dirty = !!(q->incompat & QCOW2_INCOMPAT_DIRTY);
	if (q->backing_name)
		snprintf(info->backing, sizeof(info->backing), "%s", q->backing_name);
	snprintf(info->backing_fmt, sizeof(info->backing_fmt), "%s", q->backing_fmt);
	info->nb_bitmaps = q->nb_bitmaps;
	if (!q->nb_snapshots)
		return 0;
	info->snapshots = calloc(q->nb_snapshots, sizeof(*info->snapshots));
	if (!info->snapshots)
		return -ENOMEM;
	pos = q->snapshots_offset;
	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		uint8_t h[56] = { 0 };
		uint32_t extra, vms32, ds, dn;
		uint16_t idl, nml;
		uint64_t vmc, vms64 = 0, dsz = q->size;
		if (pos + 40 > q->file_size || qc_pread(q, h, 40, pos, false))
			break;
		memcpy(&idl, h + 12, 2); memcpy(&nml, h + 14, 2);
		memcpy(&ds, h + 16, 4); memcpy(&dn, h + 20, 4); memcpy(&vmc, h + 24, 8);
		memcpy(&vms32, h + 32, 4); memcpy(&extra, h + 36, 4);
		idl = be16toh(idl); nml = be16toh(nml); extra = be32toh(extra);
		if (extra > 1024)
			break;
		if (extra >= 16 && !qc_pread(q, h + 40, 16, pos + 40, false)) {
			memcpy(&vms64, h + 40, 8); vms64 = be64toh(vms64);
			memcpy(&dsz, h + 48, 8); dsz = be64toh(dsz);
		} else {
			vms64 = be32toh(vms32);
		}
		struct qcow2_snapshot_info *s = &info->snapshots[i];
		char tmp[1024];
		uint64_t sp = pos + 40 + extra;
		size_t n = idl < sizeof(s->id) - 1 ? idl : sizeof(s->id) - 1;
		if (!qc_pread(q, tmp, n, sp, true)) { memcpy(s->id, tmp, n); s->id[n] = 0; }
		n = nml < sizeof(s->name) - 1 ? nml : sizeof(s->name) - 1;
		if (!qc_pread(q, tmp, n, sp + idl, true)) { memcpy(s->name, tmp, n); s->name[n] = 0; }
		s->date_sec = be32toh(ds);
		s->date_nsec = be32toh(dn);
		s->vm_clock_nsec = be64toh(vmc);
		s->vm_state_size = vms64;
		s->disk_size = dsz;
		info->nb_snapshots = i + 1;
		pos += qc_align_up(40ull + extra + idl + nml, 8);
	}
	return 0;
}
