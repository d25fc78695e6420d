/* `minivmm img COMMAND ...`: an image tool in the spirit of qemu-img,
 * built on the same disk backends the VMM uses. */
#include "vmm/img/img.h"
#include "vmm/img/img_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: minivmm img COMMAND [options]\n"
		"  create [-f qcow2|raw] [-b BACKING [-F FMT]] [-o OPTS] [-q] FILE [SIZE]\n"
		"         OPTS: cluster_size=,preallocation=off|metadata|full,compat=0.10|1.1,\n"
		"               refcount_bits=,lazy_refcounts=on|off,compression_type=zlib|zstd\n"
		"  info [-f FMT] [--output=human|json] [--json] FILE\n"
		"  check [-f FMT] [-r leaks|all] [-q] FILE\n"
		"         exit: 0 clean, 1 check failed, 2 corruptions, 3 leaks only\n"
		"  convert [-f FMT] [-O raw|qcow2] [-o OPTS] [-q] IN OUT\n"
		"  bench [-c N] [-d DEPTH] [-f FMT] [-s SIZE] [-S STEP] [-o OFFSET] [-w]\n"
		"        [-t none|writeback] [--flush-interval=N] [-q] FILE\n");
}

int img_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 1 : 0;
	}
	const char *cmd = argv[1];
	/* Subcommands see argv[0] = command name, like a program. */
	if (!strcmp(cmd, "create"))
		return img_create(argc - 1, argv + 1);
	if (!strcmp(cmd, "info"))
		return img_info(argc - 1, argv + 1);
	if (!strcmp(cmd, "check"))
		return img_check(argc - 1, argv + 1);
	if (!strcmp(cmd, "convert"))
		return img_convert(argc - 1, argv + 1);
	if (!strcmp(cmd, "bench"))
		return img_bench(argc - 1, argv + 1);
	fprintf(stderr, "minivmm img: unknown command '%s'\n", cmd);
	usage(stderr);
	return 1;
}

int img_parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	uint64_t mul = 1;

	if (errno || end == s || v < 0)
		return -EINVAL;
	switch (*end) {
	case 0: break;
	case 'b': case 'B': mul = 1; end++; break;
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
	case 't': case 'T': mul = 1ull << 40; end++; break;
	case 'p': case 'P': mul = 1ull << 50; end++; break;
	case 'e': case 'E': mul = 1ull << 60; end++; break;
	default: return -EINVAL;
	}
	if (*end && strcmp(end, "iB") && strcmp(end, "B"))
		return -EINVAL;
	if (v * (double)mul >= 18446744073709551616.0)
		return -ERANGE;
	*out = (uint64_t)(v * (double)mul);
	return 0;
}

int img_parse_format(const char *s, enum disk_format *f)
{
	if (!strcmp(s, "raw"))
		*f = DISK_FMT_RAW;
	else if (!strcmp(s, "qcow2"))
		*f = DISK_FMT_QCOW2;
	else
		return -EINVAL;
	return 0;
}

int img_parse_cache(const char *s, enum disk_cache *c)
{
	if (!strcmp(s, "none") || !strcmp(s, "directsync"))
		*c = DISK_CACHE_NONE;
	else if (!strcmp(s, "writeback") || !strcmp(s, "writethrough"))
		*c = DISK_CACHE_WRITEBACK;
	else if (!strcmp(s, "unsafe"))
		*c = DISK_CACHE_UNSAFE;
	else
		return -EINVAL;
	return 0;
}

int img_open(struct disk **d, const char *path, enum disk_format fmt, bool readonly,
	     enum disk_cache cache)
{
	struct disk_opts o = { .path = path, .format = fmt, .readonly = readonly, .cache = cache };
	char err[512] = "";
	int r = disk_open(d, &o, err, sizeof(err));

	if (r)
		fprintf(stderr, "minivmm img: %s\n", err[0] ? err : strerror(-r));
	return r;
}

void img_human_size(uint64_t v, char *buf, size_t len)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double x = (double)v;
	int i = 0;

	while (x >= 1024 && i < 6) {
		x /= 1024;
		i++;
	}
	/* qemu prints three significant digits. */
	snprintf(buf, len, "%0.3g %s", x, u[i]);
}
