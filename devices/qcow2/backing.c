/* Backing files (qcow2.txt: "If a cluster is unallocated, read requests
 * shall read the data from the backing file").  Backing images are opened
 * read-only; a relative name is relative to the directory of the image
 * that names it.  The chain is limited to QCOW2_MAX_BACKING_DEPTH images
 * and an image appearing twice (same device and inode) is a loop. */
#include "devices/qcow2/qcow2_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- minimal read-only raw backend for raw backing files ---- */

static ssize_t raw_preadv(struct disk *d, const struct iovec *iov, int n, uint64_t off)
{
	size_t total = iov_total(iov, n), done = 0;
	struct iovc c;

	iovc_init(&c, iov, n);
	while (done < total) {
		struct iovec tmp[64];
		size_t chunk = total - done;
		int k;
		ssize_t r;

		if (chunk > (1u << 20))
			chunk = 1u << 20;
		/* iovc_take may not fit: fall back to smaller pieces. */
		for (;;) {
			struct iovc save = c;
			k = iovc_take(&c, chunk, tmp, 64);
			if (k >= 0)
				break;
			c = save;
			chunk = chunk > 512 ? chunk / 2 : 1;
		}
		r = preadv(d->fd, tmp, k, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if ((size_t)r < chunk) {
			/* Past EOF (file shorter than it was): zeros. */
			struct iovc z;
			iovc_init(&z, tmp, k);
			iovc_take(&z, (size_t)r, (struct iovec[64]){0}, 64);
			iovc_zero(&z, chunk - (size_t)r);
		}
		done += chunk;
	}
	return (ssize_t)total;
}

static ssize_t raw_pwritev(struct disk *d, const struct iovec *iov, int n, uint64_t off)
{
	return -EROFS;
}

static int raw_flush(struct disk *d) { return 0; }

static void raw_close(struct disk *d)
{
	close(d->fd);
	free(d);
}

static const struct disk_ops raw_ro_ops = {
	.name = "raw",
	.preadv = raw_preadv,
	.pwritev = raw_pwritev,
	.flush = raw_flush,
	.close = raw_close,
};

static int raw_open_ro(struct disk **out, int fd)
{
	struct stat st;
	struct disk *d;

	if (fstat(fd, &st))
		return -errno;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->ops = &raw_ro_ops;
	d->size = (uint64_t)st.st_size;
	d->readonly = true;
	d->block_size = 512;
	d->align = 1;
	d->fd = fd;
	*out = d;
	return 0;
}

/* ---- chain ---- */

int qcow2_probe_fd(int fd, bool *is_qcow2)
{
	uint8_t m[4];
	ssize_t r = pread(fd, m, 4, 0);

	if (r < 0)
		return -errno;
	*is_qcow2 = r == 4 && !memcmp(m, "QFI\xfb", 4);
	return 0;
}

int qcow2_open_chain(struct disk **out, const char *path, const char *fmt,
		     struct qchain *chain, char *err, size_t errlen)
{
	struct stat st;
	bool isq;
	int fd, r;

	if (chain->n > QCOW2_MAX_BACKING_DEPTH)
		return qerr(err, errlen, ELOOP, "%s: backing chain deeper than %d images", path,
			    QCOW2_MAX_BACKING_DEPTH);
	/* O_NONBLOCK: a name from the image must not let a FIFO block us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return qerr(err, errlen, errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		r = -errno;
		close(fd);
		return qerr(err, errlen, -r, "%s: %s", path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		close(fd);
		return qerr(err, errlen, EINVAL, "%s: not a regular file or block device", path);
	}
	fcntl(fd, F_SETFL, 0);
	for (int i = 0; i < chain->n; i++) {
		if (chain->dev[i] == st.st_dev && chain->ino[i] == st.st_ino) {
			close(fd);
			return qerr(err, errlen, ELOOP, "%s: backing file loop", path);
		}
	}
	if (!fmt || !*fmt) {
		r = qcow2_probe_fd(fd, &isq);
		if (r) {
			close(fd);
			return qerr(err, errlen, -r, "%s: %s", path, strerror(-r));
		}
		fmt = isq ? "qcow2" : "raw";
	}
	if (!strcmp(fmt, "raw")) {
		chain->dev[chain->n] = st.st_dev;
		chain->ino[chain->n] = st.st_ino;
		r = raw_open_ro(out, fd);
		if (r) {
			close(fd);
			return qerr(err, errlen, -r, "%s: %s", path, strerror(-r));
		}
		return 0;
	}
	if (strcmp(fmt, "qcow2")) {
		close(fd);
		return qerr(err, errlen, ENOTSUP, "%s: unsupported backing format '%s'", path, fmt);
	}
	struct disk_opts o = { .path = path, .format = DISK_FMT_QCOW2, .readonly = true };
	r = qcow2_open_depth(out, fd, &o, NULL, chain, err, errlen);
	if (r)
		close(fd);
	return r;
}

int qcow2_open_backing(struct qcow2 *q, struct qchain *chain, char *err, size_t errlen)
{
	char *path;
	const char *slash;
	int r;

	if (!q->backing_name)
		return 0;
	if (q->backing_name[0] == '/' || !(slash = strrchr(q->path, '/'))) {
		path = strdup(q->backing_name);
	} else {
		int dl = (int)(slash - q->path);
		if (asprintf(&path, "%.*s/%s", dl, q->path, q->backing_name) < 0)
			path = NULL;
	}
	if (!path)
		return -ENOMEM;
	char sub[512];
	r = qcow2_open_chain(&q->backing, path, q->backing_fmt, chain, sub, sizeof(sub));
	/* Only the top image prefixes itself: the innermost failure is what
	 * matters, not every image in between. */
	if (r && q->depth == 0)
		qerr(err, errlen, -r, "%s: backing file: %s", q->path, sub);
	else if (r)
		qerr(err, errlen, -r, "%s", sub);
	free(path);
	return r;
}

int qcow2_read_backing(struct qcow2 *q, const struct iovec *iov, int iovcnt, uint64_t off)
{
	size_t len = iov_total(iov, iovcnt);
	uint64_t bsize = q->backing ? q->backing->size : 0;
	struct iovc c;
	ssize_t r;

	iovc_init(&c, iov, iovcnt);
	if (off >= bsize) {
		iovc_zero(&c, len);
		return 0;
	}
	if (off + len <= bsize) {
		r = disk_preadv(q->backing, iov, iovcnt, off);
		return r < 0 ? (int)r : 0;
	}
	/* Straddles the end of a smaller backing file: the rest is zeros. */
	size_t part = (size_t)(bsize - off);
	struct iovec *tmp = malloc(sizeof(*tmp) * (iovcnt + 1));
	if (!tmp)
		return -ENOMEM;
	int k = iovc_take(&c, part, tmp, iovcnt + 1);
	r = k < 0 ? k : disk_preadv(q->backing, tmp, k, off);
	free(tmp);
	if (r < 0)
		return (int)r;
	iovc_zero(&c, len - part);
	return 0;
}
