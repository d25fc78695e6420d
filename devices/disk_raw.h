/* Raw image backend (devices/disk_raw.c) and its optional asynchronous
 * path over io_uring, used by virtio/blk.c's I/O thread to keep many guest
 * requests in flight (iodepth > 1) instead of one blocking preadv at a
 * time.  Everything else goes through the synchronous struct disk_ops. */
#ifndef MINIVMM_DISK_RAW_H
#define MINIVMM_DISK_RAW_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/disk.h"

/* Called by disk_open() with an open, locked fd (ownership passes on
 * success).  -errno and a one-line message on failure. */
int raw_open(struct disk **out, int fd, const struct disk_opts *opts, bool probed,
	     char *err, size_t errlen);

bool disk_is_raw(const struct disk *d);

struct disk_aio;

/* An io_uring of `depth` entries on d; NULL when d is not raw or io_uring
 * is unavailable (callers then use the synchronous ops). */
struct disk_aio *disk_aio_create(struct disk *d, unsigned depth);
void disk_aio_destroy(struct disk_aio *a);
/* eventfd that becomes readable when completions are waiting. */
int disk_aio_fd(const struct disk_aio *a);
/* Queue one read or write of the whole iovec at off.  0, -EAGAIN when the
 * ring is full, or -EINVAL when this request must take the synchronous
 * path (e.g. it is not aligned for O_DIRECT). */
int disk_aio_prep(struct disk_aio *a, bool write, const struct iovec *iov, int iovcnt,
		  uint64_t off, void *tag);
/* Submit everything prepared; 0 or -errno. */
int disk_aio_submit(struct disk_aio *a);
/* Up to max completions: tag and result (bytes or -errno).  Returns the
 * count (0 if none).  A short result is the caller's to retry. */
int disk_aio_reap(struct disk_aio *a, void **tags, int *res, int max);

#endif
