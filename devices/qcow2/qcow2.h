/* qcow2 disk backend (spec: QEMU docs/interop/qcow2.txt).
 *
 * Files: header.c (parse/validate), cache.c (L2/refblock cache),
 * refcount.c (refcounts, allocation), cluster.c (L1/L2 mapping),
 * compress.c (zlib/zstd), backing.c (backing chain), io.c (disk_ops),
 * create.c (new images, snapshot overlay), check.c (consistency check). */
#ifndef MINIVMM_QCOW2_H
#define MINIVMM_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "devices/disk.h"

/* Open opts->path as qcow2 (fd already opened by disk.c with the right
 * mode; ownership passes to the backend on success).  -errno and a one-line
 * message in err on failure. */
int qcow2_open(struct disk **out, int fd, const struct disk_opts *opts,
	       char *err, size_t errlen);

/* Tunables; 0 means default.  Cache sizes are in bytes and rounded to
 * whole clusters (at least 4 clusters each). */
struct qcow2_opts {
	uint64_t l2_cache_bytes;    /* default: covers the whole disk, <= 32 MiB */
	uint64_t rb_cache_bytes;    /* default: l2 cache / 4 */
	bool for_check;             /* internal (qcow2_check): no backing, no
	                               dirty repair, corrupt images writable */
	bool no_backing;            /* do not open the backing file (fuzzing):
	                               unallocated clusters read as zeros */
};
int qcow2_open_ex(struct disk **out, int fd, const struct disk_opts *opts,
		  const struct qcow2_opts *qo, char *err, size_t errlen);

/* -d FILE,snapshot=on: create an unlinked temporary qcow2 overlay in
 * $TMPDIR (default /tmp) whose backing file is opts->path (absolute path,
 * format opts->format or probed), and open it read-write.  Writes go to the
 * overlay and vanish on close. */
int qcow2_open_snapshot(struct disk **out, const struct disk_opts *opts,
			char *err, size_t errlen);

enum qcow2_prealloc { QCOW2_PREALLOC_OFF, QCOW2_PREALLOC_METADATA, QCOW2_PREALLOC_FULL };

struct qcow2_create_opts {
	uint64_t size;               /* virtual size; 0 with backing: backing's size */
	uint32_t cluster_size;       /* default 65536 */
	int version;                 /* 2 or 3 (default 3) */
	uint32_t refcount_bits;      /* default 16 */
	const char *backing;         /* stored as given */
	const char *backing_fmt;     /* "raw"/"qcow2"; NULL: probe */
	enum qcow2_prealloc prealloc;
	bool lazy_refcounts;
	int compression_type;        /* 0 zlib, 1 zstd */
};
/* Create (truncate) path.  -errno and message on failure. */
int qcow2_create(const char *path, const struct qcow2_create_opts *o,
		 char *err, size_t errlen);
/* Same on an already open, empty fd. */
int qcow2_create_fd(int fd, const struct qcow2_create_opts *o, char *err, size_t errlen);

/* Consistency check like `qemu-img check`. */
enum { QCOW2_FIX_LEAKS = 1, QCOW2_FIX_ERRORS = 2 };
struct qcow2_check_result {
	uint64_t corruptions, leaks, check_errors;
	uint64_t corruptions_fixed, leaks_fixed;
	uint64_t allocated_clusters, total_clusters;
	uint64_t fragmented_clusters, compressed_clusters;
	uint64_t image_end_offset;
};
/* Check the image at path; messages (one per problem) go to report (may be
 * NULL).  fix is a mask of QCOW2_FIX_*.  Returns 0 if the check ran (see r
 * for the findings) or -errno if it could not run. */
int qcow2_check(const char *path, int fix, struct qcow2_check_result *r, FILE *report,
		char *err, size_t errlen);

/* Image facts for `img info`. */
struct qcow2_snapshot_info {
	char id[32];
	char name[64];
	uint64_t vm_state_size;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t disk_size;
};
struct qcow2_info {
	uint32_t version;
	uint64_t cluster_size;
	uint64_t size;
	uint32_t refcount_bits;
	int compression_type;
	bool lazy_refcounts, corrupt, dirty, extended_l2, data_file;
	char backing[1024];
	char backing_fmt[32];
	uint32_t nb_snapshots;
	struct qcow2_snapshot_info *snapshots;   /* malloc'd, caller frees */
	uint32_t nb_bitmaps;
};
int qcow2_get_info(struct disk *d, struct qcow2_info *info);
bool qcow2_is_qcow2(const struct disk *d);

/* Guest -> host mapping for callers that do their own (async) data I/O
 * such as `img bench`.  Returns the extent at off (<= len bytes). */
enum qcow2_extent_type { QCOW2_EXT_UNALLOC, QCOW2_EXT_ZERO, QCOW2_EXT_DATA,
			 QCOW2_EXT_COMPRESSED };
struct qcow2_extent {
	enum qcow2_extent_type type;
	uint64_t host;      /* DATA: host offset */
	uint64_t len;
	bool writable;      /* DATA: may be overwritten in place */
};
int qcow2_map_extent(struct disk *d, uint64_t off, uint64_t len, struct qcow2_extent *e);
/* The fd data should be read/written with (O_DIRECT if cache=none). */
int qcow2_data_fd(struct disk *d);

#endif
