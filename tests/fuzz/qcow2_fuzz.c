/* libFuzzer target: the input is a qcow2 image.  Open it read-only and
 * read from it (start, end, offsets chosen by the input's own bytes, a
 * bounded amount in total); if it opens, also open it read-write and do a
 * few writes, write-zeroes and discards, then close (flush).  Any crash,
 * sanitizer report, hang or huge allocation is a bug. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/qcow2/qcow2.h"
#include "vmm/log.h"

static int memfd_with(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz.qcow2", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t done = 0;
	while (done < size) {
		ssize_t r = write(fd, data + done, size - done);
		if (r <= 0) {
			close(fd);
			return -1;
		}
		done += (size_t)r;
	}
	return fd;
}

static uint64_t pick(const uint8_t *data, size_t size, size_t i)
{
	uint64_t v = 0;
	for (int k = 0; k < 8; k++)
		v = v << 8 | (size ? data[(i * 8 + k) % size] : 0);
	return v;
}

static void exercise(struct disk *d, const uint8_t *data, size_t size, bool write)
{
	static uint8_t buf[256 << 10];
	uint64_t budget = 4u << 20;   /* bytes per input */

	for (size_t i = 0; i < 12 && budget && d->size; i++) {
		uint64_t len = (pick(data, size, i + 40) % (sizeof(buf) / 512) + 1) * 512;
		uint64_t off = i == 0 ? 0 : pick(data, size, i) % d->size;
		off &= ~511ull;
		if (i == 1 && d->size > len)
			off = (d->size - len) & ~511ull;
		if (off >= d->size)
			continue;
		if (len > d->size - off)
			len = d->size - off;
		if (len > budget)
			len = budget;
		budget -= len;
		struct iovec v[2] = { { buf, len / 2 }, { buf + len / 2, len - len / 2 } };
		if (!write) {
			disk_preadv(d, v, 2, off);
			continue;
		}
		switch (i % 4) {
		case 0: case 1: memset(buf, (int)i, len); disk_pwritev(d, v, 2, off); break;
		case 2: d->ops->write_zeroes(d, off, len, i & 1); break;
		case 3: d->ops->discard(d, off, len); break;
		}
		if (i == 6)
			disk_flush(d);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Tiny caches: exercise eviction and write-back. */
	struct qcow2_opts qo = { .no_backing = true, .l2_cache_bytes = 1,
				 .rb_cache_bytes = 1 };
	char err[256];
	struct disk *d;

	log_level = -1;   /* silence rate-limited complaints */
	for (int pass = 0; pass < 2; pass++) {
		int fd = memfd_with(data, size);
		if (fd < 0)
			return 0;
		struct disk_opts o = { .path = "/nonexistent/fuzz.qcow2", .format = DISK_FMT_QCOW2,
				       .readonly = pass == 0 };
		if (qcow2_open_ex(&d, fd, &o, &qo, err, sizeof(err))) {
			close(fd);
			return 0;
		}
		exercise(d, data, size, pass == 1);
		d->ops->close(d);
	}
	return 0;
}
