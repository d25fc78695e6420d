#include "devices/qcow2/qcow2.h"

#include <errno.h>
#include <stdio.h>

/* Placeholder until the qcow2 backend lands. */
int qcow2_open(struct disk **out, int fd, const struct disk_opts *opts,
	       char *err, size_t errlen)
{
	(void)out; (void)fd;
	snprintf(err, errlen, "%s: qcow2 images are not supported yet", opts->path);
	return -ENOTSUP;
}
