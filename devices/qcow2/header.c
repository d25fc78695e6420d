/* qcow2 header parsing and validation (qcow2.txt "Header", "Header
 * extensions", "Feature name table").
 *
 * Every field is checked before anything derived from it is used: a
 * hostile header must produce a clear message, never an out-of-bounds
 * access, a huge allocation or a shift by an invalid count. */
#include "devices/qcow2/qcow2_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t be32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint64_t be64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }

int qerr(char *err, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -e;
}

/* A cluster-aligned (if asked) range inside the addressable host space and
 * not touching the header cluster. */
int qcow2_check_range(const struct qcow2 *q, uint64_t off, uint64_t len, bool aligned)
{
	if (aligned && (off & (q->cluster_size - 1)))
		return -EINVAL;
	if (off < q->cluster_size)
		return -EINVAL;
	if (len > QCOW2_MAX_HOST_OFF || off > QCOW2_MAX_HOST_OFF - len)
		return -EINVAL;
	return 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/* Look up a feature name in the feature name table extension. */
static void feature_name(const uint8_t *tbl, uint32_t tbl_len, int type, int bit,
			 char *out, size_t outlen)
{
	for (uint32_t i = 0; i + 48 <= tbl_len; i += 48) {
		if (tbl[i] == type && tbl[i + 1] == bit) {
			char name[47];
			memcpy(name, tbl + i + 2, 46);
			name[46] = 0;
			snprintf(out, outlen, "%s", name);
			return;
		}
	}
	snprintf(out, outlen, "bit %d", bit);
}

static int check_features(struct qcow2 *q, const uint8_t *names, uint32_t names_len,
			  char *err, size_t errlen)
{
	uint64_t unknown = q->incompat & ~QCOW2_INCOMPAT_KNOWN;
	char msg[200] = "", nm[64];
	size_t used = 0;

	if (q->incompat & QCOW2_INCOMPAT_DATA_FILE)
		return qerr(err, errlen, ENOTSUP, "external data files are not supported");
	if (q->incompat & QCOW2_INCOMPAT_EXTL2)
		return qerr(err, errlen, ENOTSUP,
			    "extended L2 entries (subclusters) are not supported");
	if (unknown) {
		for (int b = 0; b < 64; b++) {
			if (!(unknown & (1ull << b)))
				continue;
			feature_name(names, names_len, 0, b, nm, sizeof(nm));
			int n = snprintf(msg + used, sizeof(msg) - used, "%s%s",
					 used ? ", " : "", nm);
			if (n < 0 || (size_t)n >= sizeof(msg) - used)
				break;
			used += n;
		}
		return qerr(err, errlen, ENOTSUP, "unsupported incompatible feature(s): %s", msg);
	}
	return 0;
}

/* Header extensions live between the header and the end of the first
 * cluster (or the backing file name, whichever comes first). */
static int parse_extensions(struct qcow2 *q, const uint8_t *buf, size_t buflen,
			    const uint8_t **names, uint32_t *names_len,
			    char *err, size_t errlen)
{
	uint64_t pos = q->version == 2 ? QH_V2_LEN : q->header_length;
	uint64_t end = q->cluster_size;
	bool seen_fmt = false, seen_names = false, seen_bitmaps = false;

	if (q->backing_offset && q->backing_offset < end)
		end = q->backing_offset;
	if (end > buflen)
		end = buflen;
	*names = NULL;
	*names_len = 0;
	while (pos + 8 <= end) {
		uint32_t type = be32(buf + pos), len = be32(buf + pos + 4);
		const uint8_t *data = buf + pos + 8;

		if (type == QEXT_END)
			return 0;
		if (len > end - pos - 8)
			return qerr(err, errlen, EINVAL,
				    "header extension 0x%08x at %llu: length %u exceeds the header cluster",
				    type, (unsigned long long)pos, len);
		switch (type) {
		case QEXT_BACKING_FMT:
			if (seen_fmt || len == 0 || len >= sizeof(q->backing_fmt))
				return qerr(err, errlen, EINVAL,
					    "invalid backing format header extension (length %u)", len);
			memcpy(q->backing_fmt, data, len);
			q->backing_fmt[len] = 0;
			if (strlen(q->backing_fmt) != len)
				return qerr(err, errlen, EINVAL, "backing format name contains NUL");
			seen_fmt = true;
			break;
		case QEXT_FEATURE_NAME:
			if (seen_names)
				return qerr(err, errlen, EINVAL, "duplicate feature name table");
			*names = data;
			*names_len = len;
			seen_names = true;
			break;
		case QEXT_BITMAPS:
			/* Ignored except for check/info: bitmaps are only valid
			 * with autoclear bit 0, which we clear before writing. */
			if (seen_bitmaps || len < 24)
				return qerr(err, errlen, EINVAL, "invalid bitmaps header extension");
			q->has_bitmaps = true;
			q->nb_bitmaps = be32(data);
			q->bitmaps_dir_size = be64(data + 8);
			q->bitmaps_dir_off = be64(data + 16);
			seen_bitmaps = true;
			break;
		case QEXT_CRYPTO:
			return qerr(err, errlen, ENOTSUP, "encrypted images are not supported");
		case QEXT_DATA_FILE:
			return qerr(err, errlen, ENOTSUP, "external data files are not supported");
		default:
			break; /* unknown extensions may be ignored (qcow2.txt) */
		}
		pos += 8 + qc_align_up(len, 8);
	}
	return 0;
}

int qcow2_parse_header(struct qcow2 *q, const uint8_t *buf, size_t buflen,
		       char *err, size_t errlen)
{
	const uint8_t *names;
	uint32_t names_len;
	int r;

	if (buflen < QH_V2_LEN || be32(buf) != QCOW2_MAGIC)
		return qerr(err, errlen, EINVAL, "not a qcow2 image (bad magic)");
	q->version = be32(buf + 4);
	if (q->version != 2 && q->version != 3)
		return qerr(err, errlen, ENOTSUP, "unsupported qcow2 version %u", q->version);
	q->backing_offset = be64(buf + 8);
	q->backing_size = be32(buf + 16);
	q->cluster_bits = be32(buf + 20);
	q->size = be64(buf + 24);
	uint32_t crypt = be32(buf + 32);
	q->l1_size = be32(buf + 36);
	q->l1_offset = be64(buf + 40);
	q->rt_offset = be64(buf + 48);
	q->rt_clusters = be32(buf + 56);
	q->nb_snapshots = be32(buf + 60);
	q->snapshots_offset = be64(buf + 64);

	if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS || q->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return qerr(err, errlen, EINVAL,
			    "cluster_bits %u out of range (9..21, 512 B..2 MiB clusters)",
			    q->cluster_bits);
	q->cluster_size = 1ull << q->cluster_bits;
	if (crypt)
		return qerr(err, errlen, ENOTSUP,
			    "encrypted images are not supported (crypt_method %u)", crypt);

	if (q->version == 2) {
		q->incompat = q->compat = q->autoclear = 0;
		q->refcount_order = 4;
		q->header_length = QH_V2_LEN;
		q->compression_type = 0;
	} else {
		if (buflen < QH_V3_MIN_LEN)
			return qerr(err, errlen, EINVAL, "truncated header");
		q->incompat = be64(buf + 72);
		q->compat = be64(buf + 80);
		q->autoclear = be64(buf + 88);
		q->refcount_order = be32(buf + 96);
		q->header_length = be32(buf + 100);
		if (q->header_length < QH_V3_MIN_LEN || q->header_length % 8 ||
		    q->header_length > q->cluster_size || q->header_length > buflen)
			return qerr(err, errlen, EINVAL, "invalid header_length %u",
				    q->header_length);
		q->compression_type = q->header_length > 104 ? buf[104] : 0;
		if (q->refcount_order > 6)
			return qerr(err, errlen, EINVAL,
				    "refcount_order %u out of range (0..6)", q->refcount_order);
	}

	if (q->backing_offset) {
		if (q->backing_size == 0 || q->backing_size > 1023 ||
		    q->backing_offset > q->cluster_size ||
		    q->backing_size > q->cluster_size - q->backing_offset ||
		    q->backing_offset + q->backing_size > buflen)
			return qerr(err, errlen, EINVAL,
				    "invalid backing file name location (offset %llu, size %u)",
				    (unsigned long long)q->backing_offset, q->backing_size);
		if (q->backing_offset < (q->version == 2 ? QH_V2_LEN : q->header_length))
			return qerr(err, errlen, EINVAL, "backing file name overlaps the header");
	}

	r = parse_extensions(q, buf, buflen, &names, &names_len, err, errlen);
	if (r)
		return r;
	r = check_features(q, names, names_len, err, errlen);
	if (r)
		return r;
	if (q->incompat & QCOW2_INCOMPAT_COMPRESS) {
		if (q->header_length <= 104 || q->compression_type == 0)
			return qerr(err, errlen, EINVAL,
				    "compression type bit set but no compression_type field");
	} else if (q->compression_type != 0) {
		return qerr(err, errlen, EINVAL,
			    "compression_type %u without the compression type feature bit",
			    q->compression_type);
	}
	if (q->compression_type > QCOW2_CTYPE_ZSTD)
		return qerr(err, errlen, ENOTSUP, "unknown compression type %u",
			    q->compression_type);

	if (q->backing_offset) {
		q->backing_name = malloc(q->backing_size + 1);
		if (!q->backing_name)
			return -ENOMEM;
		memcpy(q->backing_name, buf + q->backing_offset, q->backing_size);
		q->backing_name[q->backing_size] = 0;
		if (strlen(q->backing_name) != q->backing_size)
			return qerr(err, errlen, EINVAL, "backing file name contains NUL");
	}

	/* Derived values (cluster_bits and refcount_order are range-checked). */
	q->l2_bits = q->cluster_bits - 3;
	q->l2_entries = 1ull << q->l2_bits;
	q->rb_bits = q->cluster_bits + 3 - q->refcount_order;
	q->refcount_max = q->refcount_order == 6 ? UINT64_MAX
			  : (1ull << (1u << q->refcount_order)) - 1;
	q->csize_shift = 62 - (q->cluster_bits - 8);
	q->csize_mask = (1ull << (q->cluster_bits - 8)) - 1;
	q->coffset_mask = (1ull << q->csize_shift) - 1;

	/* Virtual size vs L1 size: every guest cluster must have an L1 slot.
	 * Computed by shifts so that no multiplication can overflow. */
	uint32_t span_bits = q->cluster_bits + q->l2_bits;   /* bytes per L1 entry */
	if (q->size > (1ull << 62))
		return qerr(err, errlen, EFBIG, "virtual size %llu too large",
			    (unsigned long long)q->size);
	uint64_t need = (q->size >> span_bits) + ((q->size & ((1ull << span_bits) - 1)) != 0);
	if (q->l1_size < need)
		return qerr(err, errlen, EINVAL, "L1 table too small (%u entries, need %llu)",
			    q->l1_size, (unsigned long long)need);
	if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return qerr(err, errlen, EFBIG, "L1 table too large (%u entries)", q->l1_size);
	if (q->l1_size && qcow2_check_range(q, q->l1_offset, (uint64_t)q->l1_size * 8, true))
		return qerr(err, errlen, EINVAL, "invalid L1 table offset %#llx",
			    (unsigned long long)q->l1_offset);

	if (q->rt_clusters == 0 ||
	    ((uint64_t)q->rt_clusters << q->cluster_bits) > QCOW2_MAX_RT_BYTES)
		return qerr(err, errlen, EINVAL, "invalid refcount table size (%u clusters)",
			    q->rt_clusters);
	q->rt_entries = ((uint64_t)q->rt_clusters << q->cluster_bits) / 8;
	if (qcow2_check_range(q, q->rt_offset, (uint64_t)q->rt_clusters << q->cluster_bits, true))
		return qerr(err, errlen, EINVAL, "invalid refcount table offset %#llx",
			    (unsigned long long)q->rt_offset);
	if (ranges_overlap(q->l1_offset, (uint64_t)q->l1_size * 8,
			   q->rt_offset, (uint64_t)q->rt_clusters << q->cluster_bits))
		return qerr(err, errlen, EINVAL, "L1 table overlaps the refcount table");

	if (q->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return qerr(err, errlen, EINVAL, "too many snapshots (%u)", q->nb_snapshots);
	if (q->nb_snapshots && qcow2_check_range(q, q->snapshots_offset, 40, true))
		return qerr(err, errlen, EINVAL, "invalid snapshot table offset %#llx",
			    (unsigned long long)q->snapshots_offset);
	return 0;
}

/* Read the L1 and refcount tables into memory, checking they lie inside
 * the file. */
int qcow2_load_tables(struct qcow2 *q, char *err, size_t errlen)
{
	uint64_t l1_bytes = (uint64_t)q->l1_size * 8;
	uint64_t rt_bytes = q->rt_entries * 8;
	int r;

	if (q->l1_size && q->l1_offset + l1_bytes > q->file_size)
		return qerr(err, errlen, EINVAL, "L1 table (%#llx+%llu) beyond end of file",
			    (unsigned long long)q->l1_offset, (unsigned long long)l1_bytes);
	if (q->rt_offset >= q->file_size)
		return qerr(err, errlen, EINVAL, "refcount table (%#llx) beyond end of file",
			    (unsigned long long)q->rt_offset);

	q->l1 = qc_alloc(qc_align_up(l1_bytes ? l1_bytes : 8, 4096));
	q->rt = qc_alloc(qc_align_up(rt_bytes, 4096));
	if (!q->l1 || !q->rt)
		return qerr(err, errlen, ENOMEM, "out of memory for the L1/refcount tables");
	if (l1_bytes) {
		r = qc_pread(q, q->l1, l1_bytes, q->l1_offset, false);
		if (r)
			return qerr(err, errlen, -r, "reading the L1 table: %s", strerror(-r));
	}
	/* qemu may leave the tail of the refcount table beyond EOF. */
	r = qc_pread(q, q->rt, rt_bytes, q->rt_offset, true);
	if (r)
		return qerr(err, errlen, -r, "reading the refcount table: %s", strerror(-r));
	for (uint32_t i = 0; i < q->l1_size; i++)
		q->l1[i] = be64toh(q->l1[i]);
	for (uint64_t i = 0; i < q->rt_entries; i++)
		q->rt[i] = be64toh(q->rt[i]);
	return 0;
}

int qcow2_write_incompat(struct qcow2 *q, uint64_t incompat)
{
	uint64_t v = htobe64(incompat);
	int r;

	if (q->version < 3)
		return 0;
	r = qc_pwrite(q, &v, 8, QH_OFF_INCOMPAT);
	if (!r)
		q->incompat = incompat;
	return r;
}

int qcow2_write_autoclear(struct qcow2 *q, uint64_t autoclear)
{
	uint64_t v = htobe64(autoclear);
	int r;

	if (q->version < 3)
		return 0;
	r = qc_pwrite(q, &v, 8, QH_OFF_AUTOCLEAR);
	if (!r)
		q->autoclear = autoclear;
	return r;
}
