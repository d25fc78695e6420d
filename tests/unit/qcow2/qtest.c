#include "tests/unit/qcow2/qtest.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/qcow2/qcow2.h"

static char dir[256];

const char *qt_dir(void)
{
	if (!dir[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/qcow2test-XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(dir))
			abort();
	}
	return dir;
}

void qt_cleanup(void)
{
	if (dir[0]) {
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd)) {
		}
		dir[0] = 0;
	}
}

const char *qt_path(const char *name)
{
	static char bufs[8][512];
	static int i;
	char *b = bufs[i++ % 8];
	snprintf(b, 512, "%s/%s", qt_dir(), name);
	return b;
}

static int vsh(const char *fmt, va_list ap)
{
	char cmd[4096];
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	int st = system(cmd);
	if (st == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int qt_sh(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsh(fmt, ap);
	va_end(ap);
	return r;
}

void qt_must(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsh(fmt, ap);
	va_end(ap);
	if (r) {
		va_start(ap, fmt);
		fprintf(stderr, "command failed (%d): ", r);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	assert_int_equal(r, 0);
}

uint8_t *qt_read_file(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *b = malloc(st.st_size ? st.st_size : 1);
	assert_non_null(b);
	size_t done = 0;
	while (done < (size_t)st.st_size) {
		ssize_t r = pread(fd, b + done, st.st_size - done, done);
		assert_true(r > 0);
		done += r;
	}
	close(fd);
	*len = st.st_size;
	return b;
}

int qt_open(struct disk **d, const char *path, bool readonly, char *err, size_t errlen)
{
	struct disk_opts o = { .path = path, .format = DISK_FMT_QCOW2, .readonly = readonly };
	int fd = open(path, readonly ? O_RDONLY : O_RDWR);
	if (fd < 0)
		return -errno;
	int r = qcow2_open(d, fd, &o, err, errlen);
	if (r)
		close(fd);
	return r;
}

uint64_t qt_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

uint8_t *qt_read_ours(struct disk *d)
{
	uint8_t *b = malloc(d->size ? d->size : 1);
	uint64_t seed = 12345, off = 0;
	assert_non_null(b);
	while (off < d->size) {
		/* 1..256 sectors, split over up to 3 iovecs */
		uint64_t n = ((qt_rand(&seed) % 256) + 1) * 512;
		if (n > d->size - off)
			n = d->size - off;
		struct iovec v[3];
		uint64_t a = n / 3 / 512 * 512, c = n / 4;
		v[0] = (struct iovec){ b + off, a };
		v[1] = (struct iovec){ b + off + a, c };
		v[2] = (struct iovec){ b + off + a + c, n - a - c };
		ssize_t r = disk_preadv(d, v, 3, off);
		if (r != (ssize_t)n)
			fprintf(stderr, "read at %llu len %llu: %zd\n", (unsigned long long)off,
				(unsigned long long)n, r);
		assert_int_equal(r, (ssize_t)n);
		off += n;
	}
	return b;
}

uint8_t *qt_read_qemu(const char *path, size_t *len)
{
	const char *raw = qt_path("qemu-view.raw");
	qt_must("qemu-img convert -U -O raw '%s' '%s'", path, raw);
	uint8_t *b = qt_read_file(raw, len);
	unlink(raw);
	return b;
}

void qt_assert_same_as_qemu(const char *path)
{
	struct disk *d;
	char err[256] = "";
	size_t qlen;
	int r = qt_open(&d, path, true, err, sizeof(err));
	if (r)
		fprintf(stderr, "open %s: %s\n", path, err);
	assert_int_equal(r, 0);
	uint8_t *ours = qt_read_ours(d);
	uint8_t *theirs = qt_read_qemu(path, &qlen);
	assert_int_equal(qlen, d->size);
	if (memcmp(ours, theirs, qlen)) {
		for (size_t i = 0; i < qlen; i++)
			if (ours[i] != theirs[i]) {
				fprintf(stderr, "%s: first difference at byte %zu: ours %02x qemu %02x\n",
					path, i, ours[i], theirs[i]);
				break;
			}
		fail();
	}
	free(ours);
	free(theirs);
	d->ops->close(d);
}
