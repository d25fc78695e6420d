/* `minivmm img check` must agree with `qemu-img check` (exit code, number
 * of leaks and of corruptions) on clean, leaky and corrupted images, and
 * its repairs must leave images qemu-img finds clean. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/unit/qcow2/qtest.h"
#include "devices/qcow2/qcow2.h"
#include "vmm/img/img.h"

struct res { int rc; long leaks, corruptions; };

static long json_num(const char *path, const char *key)
{
	size_t n;
	uint8_t *b = qt_read_file(path, &n);
	char *s = realloc(b, n + 1), k[64];
	s[n] = 0;
	snprintf(k, sizeof(k), "\"%s\": ", key);
	char *p = strstr(s, k);
	long v = p ? strtol(p + strlen(k), NULL, 10) : -1;
	free(s);
	return v;
}

static struct res qemu_check(const char *img, const char *fix)
{
	const char *out = qt_path("qemu.json");
	struct res r;
	r.rc = qt_sh("qemu-img check %s --output=json '%s' >'%s' 2>/dev/null", fix, img, out);
	r.leaks = json_num(out, "leaks");
	r.corruptions = json_num(out, "corruptions");
	if (r.leaks < 0) r.leaks = 0;
	if (r.corruptions < 0) r.corruptions = 0;
	return r;
}

/* Run img_main in-process with stdout redirected to a file. */
static struct res our_check(const char *img, const char *fix)
{
	const char *out = qt_path("ours.json");
	char *argv[8];
	int argc = 0;
	argv[argc++] = "img";
	argv[argc++] = "check";
	argv[argc++] = "--output=json";
	argv[argc++] = "-q";
	if (fix[0]) {
		argv[argc++] = "-r";
		argv[argc++] = (char *)(strstr(fix, "all") ? "all" : "leaks");
	}
	argv[argc++] = (char *)img;
	argv[argc] = NULL;
	fflush(stdout);
	int saved = dup(1), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dup2(fd, 1);
	close(fd);
	struct res r;
	r.rc = img_main(argc, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	r.leaks = json_num(out, "leaks");
	r.corruptions = json_num(out, "corruptions");
	return r;
}

static void agree(const char *img, int want_rc)
{
	/* Keep a copy: a check must not modify the image. */
	struct res q = qemu_check(img, ""), o = our_check(img, "");
	fprintf(stderr, "  qemu rc=%d leaks=%ld corruptions=%ld / ours rc=%d leaks=%ld corruptions=%ld\n",
		q.rc, q.leaks, q.corruptions, o.rc, o.leaks, o.corruptions);
	assert_int_equal(q.rc, want_rc);
	assert_int_equal(o.rc, q.rc);
	assert_int_equal(o.leaks, q.leaks);
	assert_int_equal(o.corruptions, q.corruptions);
}

static uint64_t peek(const char *img, uint64_t off, int bytes)
{
	uint8_t b[8];
	uint64_t v = 0;
	int fd = open(img, O_RDONLY);
	assert_int_equal(pread(fd, b, bytes, off), bytes);
	close(fd);
	for (int i = 0; i < bytes; i++)
		v = v << 8 | b[i];
	return v;
}

static void poke(const char *img, uint64_t off, int bytes, uint64_t val)
{
	uint8_t b[8];
	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(val >> (8 * (bytes - 1 - i)));
	int fd = open(img, O_WRONLY);
	assert_int_equal(pwrite(fd, b, bytes, off), bytes);
	close(fd);
}

/* 16-bit refcount of cluster ci (first refcount block only). */
static void set_rc16(const char *img, uint64_t ci, uint16_t v)
{
	uint64_t rb = peek(img, peek(img, 48, 8), 8);
	poke(img, rb + 2 * ci, 2, v);
}

static const char *make(const char *name)
{
	const char *p = qt_path(name);
	qt_must("qemu-img create -q -f qcow2 '%s' 64M && "
		"qemu-io -f qcow2 -c 'write -P 1 0 1M' -c 'write -P 2 5M 100k' '%s' >/dev/null", p, p);
	return p;
}

static void test_clean(void **s)
{
	const char *p = make("clean.qcow2");
	agree(p, 0);
	qt_must("qemu-img snapshot -c one '%s' && qemu-io -f qcow2 -c 'write -P 3 0 64k' '%s' >/dev/null", p, p);
	agree(p, 0);
	const char *raw = qt_path("c.raw"), *z = qt_path("z.qcow2");
	qt_must("qemu-img convert -O raw '%s' '%s' && qemu-img convert -c -O qcow2 '%s' '%s'", p, raw, raw, z);
	agree(z, 0);
}

static void test_leaks(void **s)
{
	const char *p = make("leak.qcow2");
	/* Two extra clusters at the end of the file with refcount 1. */
	uint64_t size = peek(p, 0, 0);
	(void)size;
	qt_must("truncate -s +128K '%s'", p);
	uint64_t end = 0;
	{
		FILE *f = fopen(p, "r");
		fseek(f, 0, SEEK_END);
		end = (uint64_t)ftell(f);
		fclose(f);
	}
	set_rc16(p, end / 65536 - 1, 1);
	set_rc16(p, end / 65536 - 2, 1);
	agree(p, 3);
	struct res o = our_check(p, "leaks");
	assert_int_equal(o.rc, 0);
	assert_int_equal(qemu_check(p, "").rc, 0);
}

static void test_corrupt_refcount_zero(void **s)
{
	const char *p = make("zero.qcow2");
	uint64_t l2 = peek(p, peek(p, 40, 8), 8) & 0x00fffffffffffe00ull;
	uint64_t data = peek(p, l2, 8) & 0x00fffffffffffe00ull;
	set_rc16(p, data / 65536, 0);
	agree(p, 2);
	struct res o = our_check(p, "all");
	assert_int_equal(o.rc, 0);
	assert_int_equal(qemu_check(p, "").rc, 0);
}

static void test_corrupt_refcount_two(void **s)
{
	const char *p = make("two.qcow2");
	uint64_t l2 = peek(p, peek(p, 40, 8), 8) & 0x00fffffffffffe00ull;
	uint64_t data = peek(p, l2 + 8, 8) & 0x00fffffffffffe00ull;
	set_rc16(p, data / 65536, 2);   /* leak + COPIED flag wrong */
	agree(p, 2);
	struct res o = our_check(p, "all");
	assert_int_equal(o.rc, 0);
	assert_int_equal(qemu_check(p, "").rc, 0);
}

static void test_corrupt_l2_refcount(void **s)
{
	const char *p = make("l2.qcow2");
	uint64_t l2 = peek(p, peek(p, 40, 8), 8) & 0x00fffffffffffe00ull;
	set_rc16(p, l2 / 65536, 0);
	agree(p, 2);
}

static void test_corrupt_unaligned(void **s)
{
	const char *p = make("unal.qcow2");
	uint64_t l2 = peek(p, peek(p, 40, 8), 8) & 0x00fffffffffffe00ull;
	uint64_t e = peek(p, l2 + 16, 8);
	poke(p, l2 + 16, 8, e | 0x200);
	agree(p, 2);
}

/* Persistent bitmaps: counted while consistent; once we wrote the image
 * (clearing autoclear bit 0, as qcow2.txt requires) qemu and we both
 * report their clusters as leaked. */
static void test_bitmaps(void **s)
{
	const char *p = make("bitmap.qcow2");
	qt_must("qemu-img bitmap --add '%s' b0 && qemu-io -f qcow2 -c 'write -P 9 9M 1M' '%s' >/dev/null",
		p, p);
	agree(p, 0);
	struct disk *d;
	char err[256], buf[4096] = { 1 };
	assert_int_equal(qt_open(&d, p, false, err, sizeof(err)), 0);
	struct iovec v = { buf, sizeof(buf) };
	assert_int_equal(disk_pwritev(d, &v, 1, 20 << 20), 4096);
	d->ops->close(d);
	agree(p, 3);
}

static void test_raw(void **s)
{
	const char *p = qt_path("x.raw");
	qt_must("qemu-img create -q -f raw '%s' 1M", p);
	struct res o = our_check(p, "");
	assert_int_equal(o.rc, 63);
}

static int teardown(void **s) { qt_cleanup(); return 0; }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_leaks),
		cmocka_unit_test(test_corrupt_refcount_zero),
		cmocka_unit_test(test_corrupt_refcount_two),
		cmocka_unit_test(test_corrupt_l2_refcount),
		cmocka_unit_test(test_corrupt_unaligned),
		cmocka_unit_test(test_bitmaps),
		cmocka_unit_test(test_raw),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
