/* Small helpers: aligned buffers, full-length file I/O, iovec cursors. */
#include "devices/qcow2/qcow2_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *qc_alloc(size_t n)
{
	void *p;

	if (posix_memalign(&p, 4096, n ? n : 1))
		return NULL;
	memset(p, 0, n);
	return p;
}

int qc_pread(struct qcow2 *q, void *buf, size_t len, uint64_t off, bool zero_eof)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(q->mfd, (char *)buf + done, len - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0) {
			if (!zero_eof)
				return -EIO;
			memset((char *)buf + done, 0, len - done);
			return 0;
		}
		done += (size_t)r;
	}
	return 0;
}

int qc_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pwrite(q->mfd, (const char *)buf + done, len - done,
				   (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		done += (size_t)r;
	}
	if (off + len > q->file_size)
		q->file_size = off + len;
	return 0;
}

int qc_sync(struct qcow2 *q)
{
	if (q->unsafe)
		return 0;
	return fdatasync(q->mfd) ? -errno : 0;
}

size_t iov_total(const struct iovec *iov, int cnt)
{
	size_t t = 0;

	for (int i = 0; i < cnt; i++)
		t += iov[i].iov_len;
	return t;
}

void iovc_init(struct iovc *c, const struct iovec *iov, int cnt)
{
	c->iov = iov;
	c->cnt = cnt;
	c->idx = 0;
	c->off = 0;
}

int iovc_take(struct iovc *c, size_t len, struct iovec *out, int max)
{
	int n = 0;

	while (len) {
		if (c->idx >= c->cnt || n >= max)
			return -EINVAL;
		size_t avail = c->iov[c->idx].iov_len - c->off;
		size_t k = avail < len ? avail : len;
		if (k) {
			out[n].iov_base = (char *)c->iov[c->idx].iov_base + c->off;
			out[n].iov_len = k;
			n++;
		}
		c->off += k;
		len -= k;
		if (c->off == c->iov[c->idx].iov_len) {
			c->idx++;
			c->off = 0;
		}
	}
	return n;
}

static void iovc_walk(struct iovc *c, size_t len, void *buf, int mode)
{
	char *b = buf;

	while (len && c->idx < c->cnt) {
		size_t avail = c->iov[c->idx].iov_len - c->off;
		size_t k = avail < len ? avail : len;
		char *p = (char *)c->iov[c->idx].iov_base + c->off;
		if (mode == 0)
			memset(p, 0, k);
		else if (mode == 1)
			memcpy(b, p, k);
		else
			memcpy(p, b, k);
		if (b)
			b += k;
		c->off += k;
		len -= k;
		if (c->off == c->iov[c->idx].iov_len) {
			c->idx++;
			c->off = 0;
		}
	}
}

void iovc_zero(struct iovc *c, size_t len) { iovc_walk(c, len, NULL, 0); }
void iovc_to_buf(struct iovc *c, void *buf, size_t len) { iovc_walk(c, len, buf, 1); }
void iovc_from_buf(struct iovc *c, const void *buf, size_t len) { iovc_walk(c, len, (void *)buf, 2); }
