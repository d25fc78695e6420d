/* Disk backends (raw, qcow2) behind one ops table.
 *
 * virtio/blk.c only ever calls these functions; it never knows the image
 * format.  Offsets and lengths are in bytes; virtio-blk has already checked
 * them against disk->size and sector alignment before calling.
 *
 * Threading: a disk is used by one I/O thread at a time (the blk device's);
 * a backend that needs more must lock internally. */
#ifndef MINIVMM_DISK_H
#define MINIVMM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

enum disk_format { DISK_FMT_PROBE = 0, DISK_FMT_RAW, DISK_FMT_QCOW2 };
enum disk_cache { DISK_CACHE_WRITEBACK = 0, DISK_CACHE_NONE, DISK_CACHE_UNSAFE };

struct disk_opts {
	const char *path;
	enum disk_format format;  /* DISK_FMT_PROBE: look at the header */
	enum disk_cache cache;
	bool readonly;
	bool snapshot;            /* qcow2 overlay in a temp file, deleted on close */
	const char *serial;       /* virtio-blk GET_ID, may be NULL */
};

struct disk;

struct disk_ops {
	const char *name;
	/* Return bytes transferred (always the full length) or -errno. */
	ssize_t (*preadv)(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t off);
	ssize_t (*pwritev)(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t off);
	/* All acknowledged writes durable on return (fdatasync + metadata). */
	int (*flush)(struct disk *d);
	/* May be NULL: -EOPNOTSUPP.  Ranges are byte ranges inside the disk. */
	int (*discard)(struct disk *d, uint64_t off, uint64_t len);
	int (*write_zeroes)(struct disk *d, uint64_t off, uint64_t len, bool may_unmap);
	void (*close)(struct disk *d);
};

struct disk {
	const struct disk_ops *ops;
	uint64_t size;          /* virtual size in bytes */
	bool readonly;
	bool probed_raw;        /* format was probed as raw: refuse writes that
	                           would put a qcow2 magic into sector 0 */
	uint32_t block_size;    /* logical block size advertised (512) */
	uint32_t align;         /* required buffer/offset alignment (O_DIRECT), 1 if none */
	int fd;                 /* main file (for locking/fstat), -1 if none */
	char serial[21];        /* VIRTIO_BLK_ID_BYTES = 20, NUL terminated */
	void *priv;             /* backend state */
};

/* Open per opts.  On failure returns -errno and writes a one-line message a
 * person can act on into err (e.g. "disk.img: locked by another process"). */
int disk_open(struct disk **out, const struct disk_opts *opts, char *err, size_t errlen);
void disk_close(struct disk *d);

static inline ssize_t disk_preadv(struct disk *d, const struct iovec *iov, int n, uint64_t off)
{ return d->ops->preadv(d, iov, n, off); }
static inline ssize_t disk_pwritev(struct disk *d, const struct iovec *iov, int n, uint64_t off)
{ return d->ops->pwritev(d, iov, n, off); }
static inline int disk_flush(struct disk *d) { return d->ops->flush(d); }

#endif
