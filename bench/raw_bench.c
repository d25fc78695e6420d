/* Host-side benchmark of the raw backend's two data paths, as the
 * virtio-blk I/O thread uses them: synchronous preadv/pwritev (one request
 * at a time) versus io_uring with `depth` requests in flight.
 *
 *   raw_bench FILE cache(none|writeback) rw(randread|randwrite) SECONDS DEPTH
 *
 * Prints "sync IOPS" and "uring IOPS" for 4 KiB requests.  Built and run
 * by bench/raw-bench. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/disk_raw.h"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rnd_off(uint64_t size)
{
	return ((uint64_t)random() % (size / 4096)) * 4096;
}

int main(int argc, char **argv)
{
	struct disk_opts o = { 0 };
	struct disk *d;
	char err[256];
	double secs, t0;
	unsigned depth;
	bool wr;
	char *bufs;
	struct iovec *iov;
	unsigned long n;

	if (argc != 6)
		return 2;
	o.path = argv[1];
	o.format = DISK_FMT_RAW;
	o.cache = !strcmp(argv[2], "none") ? DISK_CACHE_NONE : DISK_CACHE_WRITEBACK;
	wr = !strcmp(argv[3], "randwrite");
	secs = atof(argv[4]);
	depth = (unsigned)atoi(argv[5]);
	if (disk_open(&d, &o, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (posix_memalign((void **)&bufs, 4096, (size_t)depth * 4096))
		return 1;
	memset(bufs, 0x5a, (size_t)depth * 4096);
	iov = calloc(depth, sizeof(*iov));
	for (unsigned i = 0; i < depth; i++)
		iov[i] = (struct iovec){ bufs + (size_t)i * 4096, 4096 };

	/* synchronous: what MINIVMM_BLK_AIO=0 does */
	n = 0;
	t0 = now();
	while (now() - t0 < secs) {
		for (int k = 0; k < 64; k++, n++)
			if ((wr ? disk_pwritev(d, iov, 1, rnd_off(d->size))
				: disk_preadv(d, iov, 1, rnd_off(d->size))) != 4096)
				return 1;
	}
	printf("sync  %s cache=%s: %.0f IOPS\n", argv[3], argv[2], (double)n / (now() - t0));

	/* io_uring, `depth` in flight */
	struct disk_aio *a = disk_aio_create(d, depth);
	void *tags[256];
	int res[256];
	unsigned inflight = 0;

	if (!a)
		return 1;
	n = 0;
	t0 = now();
	for (unsigned i = 0; i < depth; i++, inflight++)
		disk_aio_prep(a, wr, &iov[i], 1, rnd_off(d->size), &iov[i]);
	disk_aio_submit(a);
	while (now() - t0 < secs || inflight) {
		int c = disk_aio_reap(a, tags, res, 256);
		for (int i = 0; i < c; i++) {
			inflight--;
			n++;
			if (res[i] != 4096)
				return 1;
			if (now() - t0 < secs) {
				disk_aio_prep(a, wr, tags[i], 1, rnd_off(d->size), tags[i]);
				inflight++;
			}
		}
		disk_aio_submit(a);
	}
	printf("uring %s cache=%s depth %u: %.0f IOPS\n", argv[3], argv[2], depth,
	       (double)n / (now() - t0));
	disk_aio_destroy(a);
	disk_close(d);
	return 0;
}
