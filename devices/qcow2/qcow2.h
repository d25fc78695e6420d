/* qcow2 disk backend (spec: QEMU docs/interop/qcow2.txt). */
#ifndef MINIVMM_QCOW2_H
#define MINIVMM_QCOW2_H

#include <stddef.h>
#include "devices/disk.h"

/* Open opts->path as qcow2 (fd already opened by disk.c with the right
 * mode; ownership passes to the backend on success).  -errno and a one-line
 * message in err on failure. */
int qcow2_open(struct disk **out, int fd, const struct disk_opts *opts,
	       char *err, size_t errlen);

#endif
