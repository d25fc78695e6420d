/* minivmm img convert: copy the virtual disk of IN into a new image OUT
 * (raw or qcow2).  All-zero blocks are not written, so the output is thin
 * (raw: holes; qcow2: unallocated clusters). */
#include "vmm/img/img_int.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/qcow2/qcow2.h"

#define CHUNK (2u << 20)

static bool all_zero(const uint8_t *p, size_t n)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < n / 8; i++)
		if (w[i])
			return false;
	for (size_t i = n & ~7ul; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static int parse_out_opts(char *s, struct qcow2_create_opts *o)
{
	for (char *save = NULL, *kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		uint64_t n;
		if (!v)
			return -EINVAL;
		*v++ = 0;
		if (!strcmp(kv, "cluster_size") && !img_parse_size(v, &n) && n <= UINT32_MAX)
			o->cluster_size = (uint32_t)n;
		else if (!strcmp(kv, "compat") && (!strcmp(v, "0.10") || !strcmp(v, "1.1")))
			o->version = !strcmp(v, "0.10") ? 2 : 3;
		else if (!strcmp(kv, "refcount_bits") && !img_parse_size(v, &n) && n <= 64)
			o->refcount_bits = (uint32_t)n;
		else if (!strcmp(kv, "lazy_refcounts"))
			o->lazy_refcounts = !strcmp(v, "on");
		else if (!strcmp(kv, "compression_type") && (!strcmp(v, "zlib") || !strcmp(v, "zstd")))
			o->compression_type = !strcmp(v, "zstd");
		else {
			fprintf(stderr, "minivmm img convert: bad option '%s=%s'\n", kv, v);
			return -EINVAL;
		}
	}
	return 0;
}

/* Bytes from off that are known to read as zeros without reading them. */
static uint64_t known_zero(struct disk *in, bool no_backing, uint64_t off, uint64_t len)
{
	struct qcow2_extent e;

	if (!qcow2_is_qcow2(in) || qcow2_map_extent(in, off, len, &e))
		return 0;
	if (e.type == QCOW2_EXT_ZERO || (e.type == QCOW2_EXT_UNALLOC && no_backing))
		return e.len;
	return 0;
}

int img_convert(int argc, char **argv)
{
	enum disk_format ifmt = DISK_FMT_PROBE, ofmt = DISK_FMT_RAW;
	struct qcow2_create_opts co = { 0 };
	bool quiet = false;
	int c, ret = 1;

	optind = 1;
	while ((c = getopt(argc, argv, "f:O:o:qpUt:T:W")) != -1) {
		switch (c) {
		case 'f':
			if (img_parse_format(optarg, &ifmt))
				goto badfmt;
			break;
		case 'O':
			if (img_parse_format(optarg, &ofmt))
				goto badfmt;
			break;
		case 'o':
			if (parse_out_opts(optarg, &co))
				return 1;
			break;
		case 'q': quiet = true; break;
		case 'p': case 'U': case 't': case 'T': case 'W': break;
		default: return 1;
		}
	}
	if (optind != argc - 2) {
		fprintf(stderr, "minivmm img convert: IN and OUT expected\n");
		return 1;
	}
	const char *inp = argv[optind], *outp = argv[optind + 1];
	struct disk *in, *out;
	if (img_open(&in, inp, ifmt, true, DISK_CACHE_WRITEBACK))
		return 1;
	bool no_backing = true;
	if (qcow2_is_qcow2(in)) {
		struct qcow2_info qi;
		if (!qcow2_get_info(in, &qi)) {
			no_backing = !qi.backing[0];
			free(qi.snapshots);
		}
	}
	char err[512] = "";
	if (ofmt == DISK_FMT_QCOW2) {
		co.size = in->size;
		if (qcow2_create(outp, &co, err, sizeof(err))) {
			fprintf(stderr, "minivmm img convert: %s\n", err);
			goto out_in;
		}
	} else {
		int fd = open(outp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || ftruncate(fd, (off_t)in->size)) {
			fprintf(stderr, "minivmm img convert: %s: %s\n", outp, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out_in;
		}
		close(fd);
	}
	if (img_open(&out, outp, ofmt, false, DISK_CACHE_WRITEBACK))
		goto out_in;
	uint8_t *buf = aligned_alloc(4096, CHUNK);
	if (!buf)
		goto out_out;
	/* Zero detection granularity: the output cluster (4 KiB for raw). */
	size_t gran = ofmt == DISK_FMT_QCOW2 ? (co.cluster_size ? co.cluster_size : 65536) : 4096;
	if (gran > CHUNK)
		gran = CHUNK;
	uint64_t off = 0;
	while (off < in->size) {
		uint64_t n = in->size - off < CHUNK ? in->size - off : CHUNK;
		uint64_t z = known_zero(in, no_backing, off, n);
		if (z >= gran) {
			off += z / gran * gran < n ? z / gran * gran : n;
			continue;
		}
		struct iovec v = { buf, n };
		ssize_t r = disk_preadv(in, &v, 1, off);
		if (r < 0) {
			fprintf(stderr, "minivmm img convert: reading %s at %llu: %s\n", inp,
				(unsigned long long)off, strerror((int)-r));
			goto out_buf;
		}
		for (uint64_t p = 0; p < n;) {
			uint64_t g = n - p < gran ? n - p : gran;
			if (all_zero(buf + p, g)) {
				p += g;
				continue;
			}
			uint64_t q = p + g;   /* extend over the non-zero run */
			while (q < n) {
				uint64_t h = n - q < gran ? n - q : gran;
				if (all_zero(buf + q, h))
					break;
				q += h;
			}
			struct iovec w = { buf + p, q - p };
			r = disk_pwritev(out, &w, 1, off + p);
			if (r < 0) {
				fprintf(stderr, "minivmm img convert: writing %s: %s\n", outp,
					strerror((int)-r));
				goto out_buf;
			}
			p = q;
		}
		off += n;
	}
	if (disk_flush(out)) {
		fprintf(stderr, "minivmm img convert: flushing %s failed\n", outp);
		goto out_buf;
	}
	ret = 0;
	(void)quiet;
out_buf:
	free(buf);
out_out:
	out->ops->close(out);
out_in:
	in->ops->close(in);
	return ret;
badfmt:
	fprintf(stderr, "minivmm img convert: unknown format '%s'\n", optarg);
	return 1;
}
