/* qcow2 backend internals shared by the files of devices/qcow2/.
 *
 * Spec: QEMU docs/interop/qcow2.txt ("qcow2.txt" below).  All on-disk
 * numbers are big endian; everything in struct qcow2 is host order.
 *
 * Crash-safety rules (the whole design follows from them):
 *  1. A refcount increment reaches the disk before any table that points at
 *     the cluster (refblock cache is flushed + fdatasync before a dirty L2
 *     table or an L1 entry is written).
 *  2. Guest data reaches the disk before the L2 entry that exposes it, and a
 *     new L2 table before the L1 entry pointing at it (same fdatasync).
 *  3. A refcount decrement reaches the disk only after the reference it
 *     drops is gone on disk: decrements are queued (pending_free) and applied
 *     at flush time after the L2 cache was written and synced.  Hence freed
 *     clusters are only reused after a flush.
 * A crash can therefore leak clusters (refcount > references) but never
 * leave a reference to a cluster with a too small refcount. */
#ifndef MINIVMM_QCOW2_INT_H
#define MINIVMM_QCOW2_INT_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "devices/disk.h"
#include "devices/qcow2/qcow2.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

/* Header field offsets (qcow2.txt "Header"). */
#define QH_V2_LEN          72
#define QH_V3_MIN_LEN      104
#define QH_OFF_BACKING_OFF 8
#define QH_OFF_L1_SIZE     36
#define QH_OFF_L1_OFF      40
#define QH_OFF_RT_OFF      48
#define QH_OFF_INCOMPAT    72
#define QH_OFF_AUTOCLEAR   88

/* Incompatible feature bits. */
#define QCOW2_INCOMPAT_DIRTY     (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT   (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESS  (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2     (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN     (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | \
				  QCOW2_INCOMPAT_COMPRESS)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

/* Header extension types. */
#define QEXT_END          0x00000000u
#define QEXT_BACKING_FMT  0xe2792acau
#define QEXT_FEATURE_NAME 0x6803f857u
#define QEXT_BITMAPS      0x23852875u
#define QEXT_CRYPTO       0x0537be77u
#define QEXT_DATA_FILE    0x44415441u

/* Table entry bits (qcow2.txt "Cluster mapping"). */
#define QCOW_OFLAG_COPIED     (1ull << 63)
#define QCOW_OFLAG_COMPRESSED (1ull << 62)
#define QCOW_OFLAG_ZERO       (1ull << 0)
#define L1E_OFFSET_MASK       0x00fffffffffffe00ull
#define L2E_OFFSET_MASK       0x00fffffffffffe00ull
#define RT_OFFSET_MASK        0xfffffffffffffe00ull

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_BACKING_DEPTH 16
/* Same implementation limits as qemu so that any image it made opens, and
 * so that a hostile header cannot make us allocate gigabytes. */
#define QCOW2_MAX_L1_BYTES   (32u << 20)
#define QCOW2_MAX_RT_BYTES   (8u << 20)
#define QCOW2_MAX_SNAPSHOTS  65536
#define QCOW2_MAX_HOST_OFF   (1ull << 56)  /* 64 PB, bits 9-55 */

enum qcow2_ctype { QCOW2_CTYPE_ZLIB = 0, QCOW2_CTYPE_ZSTD = 1 };

/* ------------------------------------------------------------------ */
/* Metadata cache: fixed number of cluster-sized slots, LRU eviction.  */

struct qcow2;

struct qc_entry {
	uint64_t off;      /* host offset of the cached cluster, 0 = empty */
	uint64_t lru;      /* last use tick */
	int next;          /* hash chain */
	int pin;           /* in use by a caller: not evictable */
	bool dirty;
	void *data;
};

struct qcache {
	struct qcow2 *q;
	const char *name;
	int n;
	int nbuckets;
	int *bucket;
	struct qc_entry *e;
	char *mem;
	uint64_t tick;
	/* Flushing a dirty entry first needs this other cache written and
	 * the file synced (rule 1: L2 cache depends on refblock cache). */
	struct qcache *depends;
	bool need_sync;       /* fdatasync before writing our dirty entries */
	uint64_t hits, misses;
};

/* ------------------------------------------------------------------ */

struct qfree {            /* queued refcount decrement (rule 3) */
	uint64_t off;
	uint64_t nclusters;
};

struct qcow2 {
	int fd;               /* data fd, may be O_DIRECT */
	int mfd;              /* metadata fd (buffered); == fd unless O_DIRECT */
	bool direct;
	bool unsafe;          /* cache=unsafe: no fdatasync at all */
	bool readonly;
	char *path;
	int depth;            /* 0 = top image of the chain */

	/* Header, validated. */
	uint32_t version;
	uint32_t cluster_bits;
	uint64_t cluster_size;
	uint64_t size;
	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t rt_offset;
	uint32_t rt_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompat, compat, autoclear;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type;
	uint64_t backing_offset;
	uint32_t backing_size;
	char *backing_name;       /* NULL if none */
	char backing_fmt[32];     /* "" if not given */
	bool has_bitmaps;
	uint64_t bitmaps_dir_off, bitmaps_dir_size;
	uint32_t nb_bitmaps;

	/* Derived. */
	uint32_t l2_bits;         /* log2(entries per L2 table) */
	uint64_t l2_entries;
	uint32_t rb_bits;         /* log2(entries per refblock) */
	uint64_t refcount_max;
	uint64_t rt_entries;
	uint32_t csize_shift;     /* compressed descriptor: x = 62-(cb-8) */
	uint64_t csize_mask, coffset_mask;

	uint64_t *l1;             /* host order, l1_size entries */
	uint64_t *rt;             /* host order, rt_entries entries */

	struct qcache l2c, rbc;

	uint64_t file_size;       /* physical size of the image file */
	uint64_t free_hint;       /* lowest cluster index that may be free */

	struct qfree *pending;    /* rule 3 queue */
	size_t npending, cap_pending;

	bool dirty_marked;        /* we set the dirty bit in the header */
	bool header_touched;      /* autoclear bits cleared etc. */

	struct disk *backing;

	struct disk *disk;        /* our struct disk */
	void *cbuf;               /* compressed input buffer (2 clusters) */
	void *zbuf;               /* one cluster scratch (aligned) */
	void *hbuf, *tbuf;        /* COW head/tail, one cluster each */
	void *zeros;              /* one cluster of zeros */
	void *zstd_dctx;
	void *zstream;            /* z_stream */

	char err[256];            /* last error message for callers */
};

/* Error helper: format into err (may be NULL) and return -e. */
int qerr(char *err, size_t errlen, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline uint64_t qc_align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }
static inline uint64_t qc_offset_in_cluster(const struct qcow2 *q, uint64_t o)
{ return o & (q->cluster_size - 1); }

/* Aligned allocation usable for O_DIRECT (4 KiB), zeroed. */
void *qc_alloc(size_t n);

/* Raw file I/O on the metadata fd, full length or -errno (-EIO on EOF for
 * reads unless zero_eof, then the missing tail reads as zeros). */
int qc_pread(struct qcow2 *q, void *buf, size_t len, uint64_t off, bool zero_eof);
int qc_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off);
int qc_sync(struct qcow2 *q);

/* header.c */
int qcow2_parse_header(struct qcow2 *q, const uint8_t *buf, size_t buflen,
		       char *err, size_t errlen);
int qcow2_load_tables(struct qcow2 *q, char *err, size_t errlen);
int qcow2_write_incompat(struct qcow2 *q, uint64_t incompat);
int qcow2_write_autoclear(struct qcow2 *q, uint64_t autoclear);
/* Check that [off, off+len) is a sane, cluster-aligned host range. */
int qcow2_check_range(const struct qcow2 *q, uint64_t off, uint64_t len, bool aligned);

/* cache.c */
int qcache_init(struct qcache *c, struct qcow2 *q, const char *name, int n);
void qcache_destroy(struct qcache *c);
/* Get the cluster at host offset off (reading it unless fresh: then zeroed
 * without I/O).  Pins the entry; qcache_put unpins. */
int qcache_get(struct qcache *c, uint64_t off, bool fresh, void **data);
void qcache_put(struct qcache *c, void *data, bool dirty);
int qcache_flush(struct qcache *c);
/* Drop a cached cluster (it was freed); dirty contents are discarded. */
void qcache_discard(struct qcache *c, uint64_t off);

/* refcount.c */
int qcow2_get_refcount(struct qcow2 *q, uint64_t cluster_index, uint64_t *rc);
/* Allocate 1..n contiguous clusters with refcount 1: host offset in *off,
 * count in *got. */
int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *off, uint64_t *got);
/* Add delta (+1/-1) to the refcount of the clusters in [off, off+len). */
int qcow2_update_refcount(struct qcow2 *q, uint64_t off, uint64_t len, int delta);
/* Queue a decrement for after the next metadata flush (rule 3). */
int qcow2_free_later(struct qcow2 *q, uint64_t off, uint64_t nclusters);
int qcow2_free_compressed_later(struct qcow2 *q, uint64_t l2e);
int qcow2_apply_pending_frees(struct qcow2 *q);
uint64_t rb_get(const struct qcow2 *q, const void *blk, uint64_t idx);
void rb_set(const struct qcow2 *q, void *blk, uint64_t idx, uint64_t v);

/* cluster.c: guest -> host mapping. */
enum qmap_type { QMAP_UNALLOC, QMAP_ZERO, QMAP_DATA, QMAP_COMPRESSED };
struct qmap {
	enum qmap_type type;
	uint64_t host;        /* DATA: host offset of the first byte */
	uint64_t len;         /* bytes of the run (same type, host-contiguous) */
	uint64_t l2e;         /* COMPRESSED: the raw L2 entry */
	bool copied;          /* DATA: writable in place (refcount 1) */
};
int qcow2_map(struct qcow2 *q, uint64_t off, uint64_t len, struct qmap *m);
/* Obtain a writable L2 table covering guest offset off (allocating or
 * COWing it as needed).  Returns the pinned L2 table and index. */
int qcow2_get_l2_for_write(struct qcow2 *q, uint64_t off, uint64_t **l2, uint64_t *idx);
void qcow2_put_l2(struct qcow2 *q, uint64_t *l2, bool dirty);
/* Compressed descriptor -> host byte offset and max length. */
void qcow2_compressed_extent(const struct qcow2 *q, uint64_t l2e, uint64_t *off, uint64_t *len);

/* compress.c */
int qcow2_decompress_cluster(struct qcow2 *q, uint64_t l2e, void *out);
void qcow2_compress_free(struct qcow2 *q);

/* backing.c */
struct qchain {           /* images already open in this chain (loops) */
	int n;
	dev_t dev[QCOW2_MAX_BACKING_DEPTH + 2];
	ino_t ino[QCOW2_MAX_BACKING_DEPTH + 2];
};
int qcow2_open_backing(struct qcow2 *q, struct qchain *chain, char *err, size_t errlen);
int qcow2_read_backing(struct qcow2 *q, const struct iovec *iov, int iovcnt, uint64_t off);
/* Open path read-only as fmt ("raw", "qcow2", NULL/"" = probe). */
int qcow2_open_chain(struct disk **out, const char *path, const char *fmt,
		     struct qchain *chain, char *err, size_t errlen);
int qcow2_probe_fd(int fd, bool *is_qcow2);

/* io.c */
int qcow2_open_depth(struct disk **out, int fd, const struct disk_opts *opts,
		     const struct qcow2_opts *qo, struct qchain *chain,
		     char *err, size_t errlen);
int qcow2_mark_dirty(struct qcow2 *q);
void qcow2_free(struct qcow2 *q);
/* check.c: fix refcounts of a dirty image opened read-write. */
int qcow2_repair_dirty(struct qcow2 *q, char *err, size_t errlen);
extern const struct disk_ops qcow2_ops;
int qcow2_flush_meta(struct qcow2 *q);

/* iov helpers (io.c) */
struct iovc {
	const struct iovec *iov;
	int cnt;
	int idx;
	size_t off;
};
void iovc_init(struct iovc *c, const struct iovec *iov, int cnt);
/* Slice the next len bytes into out[] (at most max entries); returns the
 * number of entries or -EINVAL if they do not fit / the iov is too short. */
int iovc_take(struct iovc *c, size_t len, struct iovec *out, int max);
void iovc_zero(struct iovc *c, size_t len);
void iovc_to_buf(struct iovc *c, void *buf, size_t len);
void iovc_from_buf(struct iovc *c, const void *buf, size_t len);
size_t iov_total(const struct iovec *iov, int cnt);

static inline struct qcow2 *disk_qcow2(struct disk *d) { return d->priv; }

#endif
