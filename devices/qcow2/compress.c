/* Compressed clusters (qcow2.txt "Compressed Clusters Descriptor",
 * header field compression_type): zlib as raw deflate (no zlib header,
 * 4 KiB window as qemu writes it) or a zstd frame.  The stored length is
 * rounded up to sectors, so decompression stops once a full cluster has
 * been produced and trailing bytes are ignored. */
#include "devices/qcow2/qcow2_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "vmm/log.h"

static int inflate_cluster(struct qcow2 *q, const void *in, size_t inlen, void *out)
{
	z_stream *z = q->zstream;
	int r;

	if (!z) {
		z = calloc(1, sizeof(*z));
		if (!z)
			return -ENOMEM;
		/* Negative window bits: raw deflate.  15 accepts any window. */
		if (inflateInit2(z, -15) != Z_OK) {
			free(z);
			return -ENOMEM;
		}
		q->zstream = z;
	} else {
		inflateReset(z);
	}
	z->next_in = (Bytef *)in;
	z->avail_in = (uInt)inlen;
	z->next_out = out;
	z->avail_out = (uInt)q->cluster_size;
	r = inflate(z, Z_FINISH);
	if ((r == Z_STREAM_END || r == Z_BUF_ERROR || r == Z_OK) && z->avail_out == 0)
		return 0;
	return -EIO;
}

static int zstd_cluster(struct qcow2 *q, const void *in, size_t inlen, void *out)
{
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { out, q->cluster_size, 0 };

	if (!q->zstd_dctx) {
		q->zstd_dctx = ZSTD_createDCtx();
		if (!q->zstd_dctx)
			return -ENOMEM;
	} else {
		ZSTD_DCtx_reset(q->zstd_dctx, ZSTD_reset_session_only);
	}
	while (ob.pos < ob.size) {
		size_t last_in = ib.pos, last_out = ob.pos;
		size_t r = ZSTD_decompressStream(q->zstd_dctx, &ob, &ib);
		if (ZSTD_isError(r))
			return -EIO;
		if (r == 0 && ob.pos < ob.size)
			return -EIO;      /* frame ended early */
		if (ib.pos == last_in && ob.pos == last_out)
			return -EIO;      /* no progress: input exhausted */
	}
	return 0;
}

int qcow2_decompress_cluster(struct qcow2 *q, uint64_t l2e, void *out)
{
	uint64_t off, len;
	int r;

	qcow2_compressed_extent(q, l2e, &off, &len);
	if (qcow2_check_range(q, off & ~511ull, len + (off & 511), false) || off >= q->file_size) {
		log_guest("qcow2 %s: compressed cluster descriptor %#llx invalid", q->path,
			  (unsigned long long)l2e);
		return -EIO;
	}
	if (!q->cbuf) {
		/* At most 2^(cluster_bits-8) sectors: 2 clusters. */
		q->cbuf = qc_alloc(2 * q->cluster_size + 512);
		if (!q->cbuf)
			return -ENOMEM;
	}
	r = qc_pread(q, q->cbuf, len, off, true);
	if (r)
		return r;
	r = q->compression_type == QCOW2_CTYPE_ZSTD ? zstd_cluster(q, q->cbuf, len, out)
						    : inflate_cluster(q, q->cbuf, len, out);
	if (r == -EIO)
		log_guest("qcow2 %s: compressed cluster at %#llx does not decompress", q->path,
			  (unsigned long long)off);
	return r;
}

void qcow2_compress_free(struct qcow2 *q)
{
	if (q->zstream) {
		inflateEnd(q->zstream);
		free(q->zstream);
		q->zstream = NULL;
	}
	if (q->zstd_dctx) {
		ZSTD_freeDCtx(q->zstd_dctx);
		q->zstd_dctx = NULL;
	}
	free(q->cbuf);
	q->cbuf = NULL;
}
