/* Shared helpers of the `minivmm img` subcommands. */
#ifndef MINIVMM_IMG_INT_H
#define MINIVMM_IMG_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/disk.h"

int img_create(int argc, char **argv);
int img_info(int argc, char **argv);
int img_check(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_bench(int argc, char **argv);

/* "1G", "512M", "4k", "1000" (bytes), like qemu-img.  0 or -EINVAL. */
int img_parse_size(const char *s, uint64_t *out);
/* "raw" / "qcow2" -> format; -EINVAL otherwise. */
int img_parse_format(const char *s, enum disk_format *f);
/* "none" / "writeback" / "unsafe". */
int img_parse_cache(const char *s, enum disk_cache *c);
/* Open an image (format probed unless given) with our disk layer.
 * Prints the error and returns -errno on failure. */
int img_open(struct disk **d, const char *path, enum disk_format fmt, bool readonly,
	     enum disk_cache cache);
/* qemu's human sizes: "1 GiB", "196 KiB", "0 B". */
void img_human_size(uint64_t v, char *buf, size_t len);

#endif
