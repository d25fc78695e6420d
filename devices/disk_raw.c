/* Raw image backend: the guest's disk is the file, byte for byte.
 *
 * cache=writeback: buffered fd; flush = fdatasync.
 * cache=none:      a second fd with O_DIRECT (bypasses the host page cache)
 *                  for aligned requests; guest buffers that are not aligned
 *                  for O_DIRECT go through an aligned bounce buffer, and
 *                  requests whose offset or length are not aligned use the
 *                  buffered fd (Linux keeps the two coherent: O_DIRECT writes
 *                  invalidate cached pages, O_DIRECT reads write back dirty
 *                  ones first).  flush still fdatasyncs (device caches,
 *                  file metadata).
 * cache=unsafe:    buffered, flush is a no-op.
 *
 * Discard punches holes (FALLOC_FL_PUNCH_HOLE) so the file gets sparse
 * again; write-zeroes uses PUNCH_HOLE when unmapping is allowed, else
 * FALLOC_FL_ZERO_RANGE, and falls back to writing zeroes. */
#include "devices/disk_raw.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

struct raw {
	struct disk d;
	int dfd;          /* O_DIRECT fd for cache=none, else -1 */
	uint32_t dalign;  /* O_DIRECT memory and offset alignment */
	bool unsafe;
};

static const struct disk_ops raw_ops;

bool disk_is_raw(const struct disk *d)
{
	return d && d->ops == &raw_ops;
}

static struct raw *to_raw(struct disk *d)
{
	return (struct raw *)d;
}

static bool iov_aligned(const struct iovec *iov, int n, uint64_t off, uint32_t a)
{
	if (off % a)
		return false;
	for (int i = 0; i < n; i++)
		if ((uintptr_t)iov[i].iov_base % a || iov[i].iov_len % a)
			return false;
	return true;
}

static size_t iov_total(const struct iovec *iov, int n)
{
	size_t t = 0;

	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* preadv/pwritev until everything is transferred; advances a local copy of
 * the iovec on short transfers.  A read past the end of file is an error:
 * virtio-blk checked against the size, so the file shrank under us. */
static ssize_t rw_full(int fd, bool write, const struct iovec *iov, int n, uint64_t off)
{
	struct iovec local[1024]; /* >= UIO_MAXIOV, > VQ_MAX_IOV */
	size_t total = iov_total(iov, n), done = 0;
	int cnt, first = 0;

	if (n > (int)(sizeof(local) / sizeof(local[0])))
		return -EINVAL;
	memcpy(local, iov, (size_t)n * sizeof(*iov));
	cnt = n;
	while (done < total) {
		ssize_t r = write ? pwritev(fd, local + first, cnt - first, (off_t)(off + done))
				  : preadv(fd, local + first, cnt - first, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		done += (size_t)r;
		while (r > 0 && first < cnt) {
			if ((size_t)r >= local[first].iov_len) {
				r -= (ssize_t)local[first].iov_len;
				first++;
			} else {
				local[first].iov_base = (char *)local[first].iov_base + r;
				local[first].iov_len -= (size_t)r;
				r = 0;
			}
		}
	}
	return (ssize_t)total;
}

/* cache=none: pick O_DIRECT, O_DIRECT through a bounce buffer, or buffered. */
static ssize_t raw_rw(struct disk *d, bool write, const struct iovec *iov, int n, uint64_t off)
{
	struct raw *r = to_raw(d);
	size_t total = iov_total(iov, n);
	struct iovec bv;
	void *bounce;
	ssize_t ret;

	if (r->dfd < 0)
		return rw_full(d->fd, write, iov, n, off);
	if (iov_aligned(iov, n, off, r->dalign))
		return rw_full(r->dfd, write, iov, n, off);
	if (off % r->dalign || total % r->dalign)
		return rw_full(d->fd, write, iov, n, off);
	/* Only the guest buffers are misaligned: bounce. */
	if (posix_memalign(&bounce, r->dalign, total))
		return -ENOMEM;
	bv = (struct iovec){ .iov_base = bounce, .iov_len = total };
	if (write) {
		size_t o = 0;
		for (int i = 0; i < n; i++) {
			memcpy((char *)bounce + o, iov[i].iov_base, iov[i].iov_len);
			o += iov[i].iov_len;
		}
	}
	ret = rw_full(r->dfd, write, &bv, 1, off);
	if (!write && ret >= 0) {
		size_t o = 0;
		for (int i = 0; i < n; i++) {
			memcpy(iov[i].iov_base, (char *)bounce + o, iov[i].iov_len);
			o += iov[i].iov_len;
		}
	}
	free(bounce);
	return ret;
}

static ssize_t raw_preadv(struct disk *d, const struct iovec *iov, int n, uint64_t off)
{
	return raw_rw(d, false, iov, n, off);
}

static ssize_t raw_pwritev(struct disk *d, const struct iovec *iov, int n, uint64_t off)
{
	if (d->readonly)
		return -EROFS;
	return raw_rw(d, true, iov, n, off);
}

static int raw_flush(struct disk *d)
{
	if (to_raw(d)->unsafe)
		return 0;
	return fdatasync(d->fd) ? -errno : 0;
}

static int raw_discard(struct disk *d, uint64_t off, uint64_t len)
{
	if (d->readonly)
		return -EROFS;
	if (fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
		return -errno;
	return 0;
}

static int write_zero_buffers(struct disk *d, uint64_t off, uint64_t len)
{
	static const char zeroes[65536] __attribute__((aligned(4096)));

	while (len) {
		size_t l = len < sizeof(zeroes) ? len : sizeof(zeroes);
		struct iovec v = { .iov_base = (void *)zeroes, .iov_len = l };
		ssize_t r = raw_rw(d, true, &v, 1, off);

		if (r < 0)
			return (int)r;
		off += l;
		len -= l;
	}
	return 0;
}

static int raw_write_zeroes(struct disk *d, uint64_t off, uint64_t len, bool may_unmap)
{
	int mode = may_unmap ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE;

	if (d->readonly)
		return -EROFS;
	if (fallocate(d->fd, mode | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENODEV)
		return -errno;
	return write_zero_buffers(d, off, len);
}

static void raw_close(struct disk *d)
{
	struct raw *r = to_raw(d);

	if (r->dfd >= 0)
		close(r->dfd);
	close(d->fd);
	free(r);
}

static const struct disk_ops raw_ops = {
	.name = "raw",
	.preadv = raw_preadv,
	.pwritev = raw_pwritev,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.close = raw_close,
};

/* O_DIRECT alignment: statx STATX_DIOALIGN (Linux 6.1+), else the logical
 * block size of a block device, else 4096 (safe on every filesystem). */
static uint32_t dio_align(int fd, const struct stat *st)
{
	struct statx sx;
	int bs;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align) {
		uint32_t a = sx.stx_dio_offset_align;
		if (sx.stx_dio_mem_align > a)
			a = sx.stx_dio_mem_align;
		return a;
	}
	if (S_ISBLK(st->st_mode) && ioctl(fd, BLKSSZGET, &bs) == 0 && bs > 0)
		return (uint32_t)bs;
	return 4096;
}

int raw_open(struct disk **out, int fd, const struct disk_opts *o, bool probed,
	     char *err, size_t errlen)
{
	struct raw *r;
	struct stat st;
	uint64_t size;
	char procpath[64];

	if (fstat(fd, &st)) {
		snprintf(err, errlen, "%s: %s", o->path, strerror(errno));
		return -errno;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size)) {
			snprintf(err, errlen, "%s: BLKGETSIZE64: %s", o->path, strerror(errno));
			return -errno;
		}
	} else {
		size = (uint64_t)st.st_size;
	}
	if (size % 512) {
		snprintf(err, errlen, "%s: size %llu is not a multiple of 512 bytes",
			 o->path, (unsigned long long)size);
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "%s: out of memory", o->path);
		return -ENOMEM;
	}
	r->d.ops = &raw_ops;
	r->d.size = size;
	r->d.readonly = o->readonly;
	r->d.probed_raw = probed;
	r->d.block_size = 512;
	r->d.align = 1;
	r->d.fd = fd;
	r->d.priv = r;
	r->dfd = -1;
	r->dalign = 1;
	r->unsafe = o->cache == DISK_CACHE_UNSAFE;
	if (o->serial)
		snprintf(r->d.serial, sizeof(r->d.serial), "%s", o->serial);
	if (o->cache == DISK_CACHE_NONE) {
		/* Reopen through /proc so the O_DIRECT fd is the same file even
		 * if the path was renamed meanwhile. */
		snprintf(procpath, sizeof(procpath), "/proc/self/fd/%d", fd);
		r->dfd = open(procpath, (o->readonly ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
		if (r->dfd < 0) {
			int e = errno;
			snprintf(err, errlen, "%s: cache=none: O_DIRECT not supported here (%s)",
				 o->path, strerror(e));
			free(r);
			return -e;
		}
		r->dalign = dio_align(r->dfd, &st);
		r->d.align = r->dalign;
	}
	*out = &r->d;
	return 0;
}

/* ---- io_uring path ---- */

struct disk_aio {
	struct io_uring ring;
	struct raw *r;
	int efd;
	unsigned queued;
};

struct disk_aio *disk_aio_create(struct disk *d, unsigned depth)
{
	struct disk_aio *a;

	if (!disk_is_raw(d))
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->r = to_raw(d);
	a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->efd < 0 || io_uring_queue_init(depth, &a->ring, 0)) {
		if (a->efd >= 0)
			close(a->efd);
		free(a);
		return NULL;
	}
	if (io_uring_register_eventfd(&a->ring, a->efd)) {
		io_uring_queue_exit(&a->ring);
		close(a->efd);
		free(a);
		return NULL;
	}
	return a;
}

void disk_aio_destroy(struct disk_aio *a)
{
	if (!a)
		return;
	io_uring_queue_exit(&a->ring);
	close(a->efd);
	free(a);
}

int disk_aio_fd(const struct disk_aio *a)
{
	return a->efd;
}

int disk_aio_prep(struct disk_aio *a, bool write, const struct iovec *iov, int iovcnt,
		  uint64_t off, void *tag)
{
	struct raw *r = a->r;
	struct io_uring_sqe *sqe;
	int fd = r->d.fd;

	if (write && r->d.readonly)
		return -EINVAL;
	if (r->dfd >= 0) {
		if (!iov_aligned(iov, iovcnt, off, r->dalign))
			return -EINVAL; /* bounce/buffered: synchronous path */
		fd = r->dfd;
	}
	sqe = io_uring_get_sqe(&a->ring);
	if (!sqe)
		return -EAGAIN;
	if (write)
		io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, off);
	else
		io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, off);
	io_uring_sqe_set_data(sqe, tag);
	a->queued++;
	return 0;
}

int disk_aio_submit(struct disk_aio *a)
{
	int r;

	if (!a->queued)
		return 0;
	do {
		r = io_uring_submit(&a->ring);
	} while (r == -EINTR);
	if (r < 0)
		return r;
	a->queued = 0;
	return 0;
}

int disk_aio_reap(struct disk_aio *a, void **tags, int *res, int max)
{
	struct io_uring_cqe *cqe;
	uint64_t v;
	int n = 0;

	/* Drain the eventfd first so a completion arriving after the loop
	 * below re-arms epoll. */
	if (read(a->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	while (n < max && io_uring_peek_cqe(&a->ring, &cqe) == 0) {
		tags[n] = io_uring_cqe_get_data(cqe);
		res[n] = cqe->res;
		io_uring_cqe_seen(&a->ring, cqe);
		n++;
	}
	return n;
}
