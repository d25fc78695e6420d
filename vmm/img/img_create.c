/* minivmm img create */
#include "vmm/img/img_int.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/qcow2/qcow2.h"

/* qemu-img rounds sizes up to whole sectors. */
static uint64_t qc_round_sector(uint64_t s) { return (s + 511) & ~511ull; }

/* Parse "k=v,k=v" into o; raw images accept only preallocation/size. */
static int parse_opts(char *s, struct qcow2_create_opts *o, uint64_t *size)
{
	for (char *save = NULL, *kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		uint64_t n;
		if (!v) {
			fprintf(stderr, "minivmm img: option '%s' needs a value\n", kv);
			return -EINVAL;
		}
		*v++ = 0;
		if (!strcmp(kv, "cluster_size")) {
			if (img_parse_size(v, &n) || n > UINT32_MAX)
				goto bad;
			o->cluster_size = (uint32_t)n;
		} else if (!strcmp(kv, "preallocation")) {
			if (!strcmp(v, "off"))
				o->prealloc = QCOW2_PREALLOC_OFF;
			else if (!strcmp(v, "metadata"))
				o->prealloc = QCOW2_PREALLOC_METADATA;
			else if (!strcmp(v, "full") || !strcmp(v, "falloc"))
				o->prealloc = QCOW2_PREALLOC_FULL;
			else
				goto bad;
		} else if (!strcmp(kv, "compat")) {
			if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
				o->version = 2;
			else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
				o->version = 3;
			else
				goto bad;
		} else if (!strcmp(kv, "refcount_bits")) {
			if (img_parse_size(v, &n) || n == 0 || n > 64)
				goto bad;
			o->refcount_bits = (uint32_t)n;
		} else if (!strcmp(kv, "lazy_refcounts")) {
			o->lazy_refcounts = !strcmp(v, "on") || !strcmp(v, "true");
		} else if (!strcmp(kv, "compression_type")) {
			if (!strcmp(v, "zlib"))
				o->compression_type = 0;
			else if (!strcmp(v, "zstd"))
				o->compression_type = 1;
			else
				goto bad;
		} else if (!strcmp(kv, "backing_file")) {
			o->backing = v;
		} else if (!strcmp(kv, "backing_fmt")) {
			o->backing_fmt = v;
		} else if (!strcmp(kv, "size")) {
			if (img_parse_size(v, size))
				goto bad;
		} else {
			fprintf(stderr, "minivmm img: unknown option '%s'\n", kv);
			return -EINVAL;
		}
		continue;
bad:
		fprintf(stderr, "minivmm img: invalid value '%s' for option '%s'\n", v, kv);
		return -EINVAL;
	}
	return 0;
}

static int create_raw(const char *path, uint64_t size, enum qcow2_prealloc pre)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), r = 0;

	if (fd < 0) {
		fprintf(stderr, "minivmm img: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (ftruncate(fd, (off_t)size))
		r = errno;
	if (!r && pre == QCOW2_PREALLOC_FULL && size)
		r = posix_fallocate(fd, 0, (off_t)size);
	if (!r && fsync(fd))
		r = errno;
	close(fd);
	if (r) {
		fprintf(stderr, "minivmm img: %s: %s\n", path, strerror(r));
		return 1;
	}
	return 0;
}

static int do_create(const char *path, const char *fmt, struct qcow2_create_opts *o,
		     bool quiet)
{
	if (!strcmp(fmt, "raw")) {
		if (o->backing) {
			fprintf(stderr, "minivmm img create: raw images have no backing file\n");
			return 1;
		}
		if (!quiet)
			printf("Formatting '%s', fmt=raw size=%llu\n", path, (unsigned long long)o->size);
		return create_raw(path, o->size, o->prealloc);
	}
	if (strcmp(fmt, "qcow2")) {
		fprintf(stderr, "minivmm img create: unsupported format '%s'\n", fmt);
		return 1;
	}
	if (o->backing && o->prealloc != QCOW2_PREALLOC_OFF) {
		fprintf(stderr, "minivmm img create: preallocation and a backing file cannot be combined\n");
		return 1;
	}
	char err[512] = "";
	int r = qcow2_create(path, o, err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivmm img create: %s: %s\n", path, err[0] ? err : strerror(-r));
		return 1;
	}
	if (!quiet)
		printf("Formatting '%s', fmt=qcow2 cluster_size=%u size=%llu%s%s\n", path,
		       o->cluster_size ? o->cluster_size : 65536, (unsigned long long)o->size,
		       o->backing ? " backing_file=" : "", o->backing ? o->backing : "");
	return 0;
}

int img_create(int argc, char **argv)
{
	struct qcow2_create_opts o = { 0 };
	const char *fmt = "qcow2";
	char *opts = NULL;
	uint64_t size = 0;
	bool quiet = false, have_size = false;
	int c;

	optind = 1;
	while ((c = getopt(argc, argv, "f:b:F:o:qu")) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'b': o.backing = optarg; break;
		case 'F': o.backing_fmt = optarg; break;
		case 'o': opts = optarg; break;
		case 'q': quiet = true; break;
		case 'u': break;
		default: return 1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "minivmm img create: FILE expected\n");
		return 1;
	}
	const char *path = argv[optind++];
	if (optind < argc) {
		if (img_parse_size(argv[optind], &size)) {
			fprintf(stderr, "minivmm img create: invalid size '%s'\n", argv[optind]);
			return 1;
		}
		have_size = true;
	}
	/* o's strings may point into copy: it lives until the image exists. */
	char *copy = NULL;
	int ret = 1;
	if (opts) {
		uint64_t osize = 0;
		copy = strdup(opts);
		if (!copy || parse_opts(copy, &o, &osize))
			goto out;
		if (osize && !have_size) {
			size = osize;
			have_size = true;
		}
	}
	if (!have_size && !o.backing) {
		fprintf(stderr, "minivmm img create: SIZE expected\n");
		goto out;
	}
	o.size = qc_round_sector(size);
	ret = do_create(path, fmt, &o, quiet);
out:
	free(copy);
	return ret;
}
