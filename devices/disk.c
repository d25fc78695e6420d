/* disk_open: open the image, lock it, probe the format, dispatch to the
 * backend (devices/disk_raw.c or devices/qcow2/).
 *
 * Locking: an OFD lock (F_OFD_SETLK, whole file) is taken on the fd before
 * the backend sees it: a write lock for a writable disk, a read lock for a
 * read-only one.  OFD locks belong to the open file description, so they
 * survive as long as the backend keeps the fd, are not dropped when some
 * other fd on the same file is closed (unlike POSIX locks), and conflict
 * between processes: a second minivmm on the same image is refused. */
#include "devices/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/disk_raw.h"
#include "devices/qcow2/qcow2.h"

static const unsigned char qcow2_magic[4] = { 'Q', 'F', 'I', 0xfb };

static int fail(char *err, size_t errlen, int e, const char *path, const char *what)
{
	snprintf(err, errlen, "%s: %s", path, what ? what : strerror(e));
	return -e;
}

static int disk_lock_fd(int fd, bool write)
{
	struct flock fl = {
		.l_type = write ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0, /* whole file */
	};

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return -errno;
}

int disk_open(struct disk **out, const struct disk_opts *o, char *err, size_t errlen)
{
	unsigned char hdr[4] = { 0 };
	bool is_qcow2, ro = o->readonly;
	struct stat st;
	ssize_t n;
	int fd, r;

	*out = NULL;
	if (!o->path || !*o->path)
		return fail(err, errlen, EINVAL, "disk", "empty file name");
	/* snapshot=on: a temporary qcow2 overlay over the image (which is
	 * then only read); the qcow2 backend opens and probes it. */
	if (o->snapshot)
		return qcow2_open_snapshot(out, o, err, errlen);
	fd = open(o->path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (!ro && (e == EACCES || e == EROFS)) {
			snprintf(err, errlen, "%s: %s (add ,ro for a read-only disk)",
				 o->path, strerror(e));
			return -e;
		}
		return fail(err, errlen, e, o->path, NULL);
	}
	if (fstat(fd, &st)) {
		r = errno;
		close(fd);
		return fail(err, errlen, r, o->path, NULL);
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		close(fd);
		return fail(err, errlen, EINVAL, o->path, "not a regular file or block device");
	}
	r = disk_lock_fd(fd, !ro);
	if (r) {
		close(fd);
		if (r == -EAGAIN || r == -EACCES)
			return fail(err, errlen, EBUSY, o->path,
				    "locked by another process (another minivmm using it?)");
		return fail(err, errlen, -r, o->path, NULL);
	}
	n = pread(fd, hdr, sizeof(hdr), 0);
	if (n < 0) {
		r = errno;
		close(fd);
		return fail(err, errlen, r, o->path, NULL);
	}
	is_qcow2 = n == (ssize_t)sizeof(hdr) && !memcmp(hdr, qcow2_magic, sizeof(hdr));

	switch (o->format) {
	case DISK_FMT_QCOW2:
		if (!is_qcow2) {
			close(fd);
			return fail(err, errlen, EINVAL, o->path,
				    "not a qcow2 image (no QFI\\xfb magic)");
		}
		/* fallthrough */
	case DISK_FMT_PROBE:
		if (is_qcow2 || o->format == DISK_FMT_QCOW2) {
			r = qcow2_open(out, fd, o, err, errlen);
			if (r)
				close(fd);
			return r;
		}
		r = raw_open(out, fd, o, true, err, errlen);
		break;
	case DISK_FMT_RAW:
		r = raw_open(out, fd, o, false, err, errlen);
		break;
	default:
		r = fail(err, errlen, EINVAL, o->path, "unknown format");
		break;
	}
	if (r)
		close(fd);
	return r;
}

void disk_close(struct disk *d)
{
	if (d)
		d->ops->close(d);
}
