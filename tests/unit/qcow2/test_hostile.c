/* Crafted, hostile images: each must be refused with a message naming the
 * problem (or, for bad table entries, fail the I/O with -EIO), never crash
 * or read/write out of bounds. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/qcow2/qcow2.h"
#include "tests/unit/qcow2/qtest.h"

static const char *img;

static void patch(uint64_t off, int bytes, uint64_t val)
{
	uint8_t b[8];
	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(val >> (8 * (bytes - 1 - i)));
	int fd = open(img, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, bytes, off), bytes);
	close(fd);
}

static uint64_t peek(uint64_t off, int bytes)
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

static int setup(void **s)
{
	img = qt_path("h.qcow2");
	qt_must("qemu-img create -q -f qcow2 '%s' 64M && qemu-io -f qcow2 -c 'write -P 1 0 1M' '%s' >/dev/null",
		img, img);
	return 0;
}

static void expect_open_error(bool readonly, const char *msg)
{
	struct disk *d = NULL;
	char err[512] = "";
	int r = qt_open(&d, img, readonly, err, sizeof(err));
	if (r == 0) {
		fprintf(stderr, "opened unexpectedly (want '%s')\n", msg);
		d->ops->close(d);
	}
	assert_true(r < 0);
	if (!strstr(err, msg))
		fprintf(stderr, "message '%s' lacks '%s'\n", err, msg);
	assert_non_null(strstr(err, msg));
}

#define FIELD_TEST(name, off, bytes, val, msg) \
	static void test_##name(void **s) { patch(off, bytes, val); expect_open_error(true, msg); }

FIELD_TEST(bad_magic, 0, 4, 0x51464900, "bad magic")
FIELD_TEST(version4, 4, 4, 4, "unsupported qcow2 version 4")
FIELD_TEST(version1, 4, 4, 1, "unsupported qcow2 version")
FIELD_TEST(cluster_bits_small, 20, 4, 8, "cluster_bits 8")
FIELD_TEST(cluster_bits_big, 20, 4, 22, "cluster_bits 22")
FIELD_TEST(cluster_bits_huge, 20, 4, 0xffffffff, "cluster_bits")
FIELD_TEST(crypt, 32, 4, 1, "encrypted")
FIELD_TEST(l1_too_small, 36, 4, 0, "L1 table too small")
FIELD_TEST(l1_too_large, 36, 4, 0x10000000, "L1 table too large")
FIELD_TEST(l1_unaligned, 40, 8, 0x30200, "invalid L1 table offset")
FIELD_TEST(l1_in_header, 40, 8, 0, "invalid L1 table offset")
FIELD_TEST(l1_beyond_eof, 40, 8, 0x100000000ull, "beyond end of file")
FIELD_TEST(l1_wraps, 40, 8, 0xfffffffffff00000ull, "invalid L1 table offset")
FIELD_TEST(rt_zero, 48, 8, 0, "invalid refcount table offset")
FIELD_TEST(rt_beyond_eof, 48, 8, 0x100000000ull, "beyond end of file")
FIELD_TEST(rt_clusters_zero, 56, 4, 0, "invalid refcount table size")
FIELD_TEST(rt_clusters_huge, 56, 4, 0xffffffff, "invalid refcount table size")
FIELD_TEST(snapshots_many, 60, 4, 0x7fffffff, "too many snapshots")
FIELD_TEST(snapshots_unaligned, 60, 4, 1, "invalid snapshot table offset")
FIELD_TEST(data_file, 72, 8, 4, "external data files")
FIELD_TEST(extended_l2, 72, 8, 16, "extended L2")
FIELD_TEST(unknown_incompat, 72, 8, 1ull << 40, "bit 40")
FIELD_TEST(compress_bit_no_field, 72, 8, 8, "compression")
FIELD_TEST(refcount_order7, 96, 4, 7, "refcount_order 7")
FIELD_TEST(header_length_short, 100, 4, 96, "invalid header_length")
FIELD_TEST(header_length_odd, 100, 4, 108, "invalid header_length")
FIELD_TEST(header_length_huge, 100, 4, 0x7ffffff8, "invalid header_length")
FIELD_TEST(compression_type_unknown, 104, 1, 7, "compression_type")
FIELD_TEST(backing_offset_beyond, 8, 8, 0x10000, "backing file name")

static void test_l1_overlaps_rt(void **s)
{
	patch(40, 8, peek(48, 8));   /* L1 offset := refcount table offset */
	expect_open_error(true, "overlaps");
}

static void test_unknown_feature_named(void **s)
{
	/* Rename the feature-name-table entry of incompatible bit 0 to an
	 * unknown bit 9 called "fancy feature", then set bit 9. */
	uint64_t pos = peek(100, 4);
	bool found = false;
	while (pos + 8 < 65536) {
		uint32_t type = (uint32_t)peek(pos, 4), len = (uint32_t)peek(pos + 4, 4);
		if (type == 0)
			break;
		if (type == 0x6803f857) {
			patch(pos + 8, 1, 0);
			patch(pos + 9, 1, 9);
			int fd = open(img, O_WRONLY);
			char name[46] = "fancy feature";
			assert_int_equal(pwrite(fd, name, 46, pos + 10), 46);
			close(fd);
			found = true;
			break;
		}
		pos += 8 + ((len + 7) & ~7u);
	}
	assert_true(found);
	patch(72, 8, 1u << 9);
	expect_open_error(true, "fancy feature");
}

static void test_truncated(void **s)
{
	assert_int_equal(truncate(img, 50), 0);
	expect_open_error(true, "");
	assert_int_equal(truncate(img, 0), 0);
	expect_open_error(true, "bad magic");
}

static void test_ext_too_long(void **s)
{
	uint64_t pos = peek(100, 4);
	patch(pos + 4, 4, 0x7fffffff);    /* first extension's length */
	expect_open_error(true, "exceeds the header cluster");
}

/* Bad table entries: open works, the I/O that touches them fails. */
static void expect_read_eio(uint64_t off)
{
	struct disk *d;
	char err[256], buf[4096];
	assert_int_equal(qt_open(&d, img, true, err, sizeof(err)), 0);
	struct iovec v = { buf, sizeof(buf) };
	assert_int_equal(disk_preadv(d, &v, 1, off), -EIO);
	d->ops->close(d);
}

static void test_l1_entry_beyond_eof(void **s)
{
	uint64_t l1 = peek(40, 8);
	patch(l1, 8, 0x8000000100000000ull);
	expect_read_eio(0);
}

static void test_l2_entry_unaligned(void **s)
{
	uint64_t l2 = peek(peek(40, 8), 8) & 0x00fffffffffffe00ull;
	patch(l2, 8, 0x8000000000050200ull);
	expect_read_eio(0);
}

static void test_l2_entry_in_header(void **s)
{
	uint64_t l2 = peek(peek(40, 8), 8) & 0x00fffffffffffe00ull;
	patch(l2 + 8, 8, 0x8000000000000000ull | 0);      /* offset 0 + COPIED */
	patch(l2 + 8, 8, 0x4000000000000000ull | 0x10);   /* compressed at header */
	expect_read_eio(65536);
}

static void test_compressed_beyond_eof(void **s)
{
	uint64_t l2 = peek(peek(40, 8), 8) & 0x00fffffffffffe00ull;
	patch(l2 + 16, 8, 0x4000000000000000ull | 0x3fffffff00ull);
	expect_read_eio(2 * 65536);
}

static void test_compressed_garbage(void **s)
{
	/* A compressed descriptor over uncompressed data: must not decode. */
	uint64_t l2 = peek(peek(40, 8), 8) & 0x00fffffffffffe00ull;
	uint64_t data = peek(l2, 8) & 0x00fffffffffffe00ull;
	patch(l2 + 24, 8, 0x4000000000000000ull | (3ull << 54) | data);
	expect_read_eio(3 * 65536);
}

static void test_refblock_bad_write(void **s)
{
	/* Refcount table entry pointing into the header: writes that need
	 * an allocation fail, nothing is written there. */
	uint64_t rt = peek(48, 8);
	patch(rt, 8, 0x200);
	struct disk *d;
	char err[256], buf[4096] = { 1 };
	assert_int_equal(qt_open(&d, img, false, err, sizeof(err)), 0);
	struct iovec v = { buf, sizeof(buf) };
	assert_int_equal(disk_pwritev(d, &v, 1, 32 << 20), -EIO);
	d->ops->close(d);
	assert_int_equal(peek(0, 4), 0x514649fb);
}

static void test_backing_loop(void **s)
{
	const char *a = qt_path("loop-a.qcow2"), *b = qt_path("loop-b.qcow2");
	qt_must("qemu-img create -q -f qcow2 -u -b loop-a.qcow2 -F qcow2 '%s' 1M", a);
	img = a;
	expect_open_error(true, "loop");
	qt_must("qemu-img create -q -f qcow2 -u -b loop-b.qcow2 -F qcow2 '%s' 1M", a);
	qt_must("qemu-img create -q -f qcow2 -u -b loop-a.qcow2 -F qcow2 '%s' 1M", b);
	expect_open_error(true, "loop");
}

static void test_backing_depth(void **s)
{
	/* top + 16 backing files open, one more level is refused. */
	qt_must("cd '%s' && qemu-img create -q -f qcow2 c0.qcow2 1M && "
		"for i in $(seq 1 17); do qemu-img create -q -f qcow2 -u -b c$((i-1)).qcow2 "
		"-F qcow2 c$i.qcow2 1M; done", qt_dir());
	struct disk *d;
	char err[512];
	img = qt_path("c16.qcow2");
	assert_int_equal(qt_open(&d, img, true, err, sizeof(err)), 0);
	d->ops->close(d);
	img = qt_path("c17.qcow2");
	expect_open_error(true, "deeper than 16");
}

static void test_backing_missing(void **s)
{
	img = qt_path("orphan.qcow2");
	qt_must("qemu-img create -q -f qcow2 -u -b nonexistent.raw -F raw '%s' 1M", img);
	expect_open_error(true, "nonexistent.raw");
}

static int teardown(void **s) { qt_cleanup(); return 0; }

#define T(n) cmocka_unit_test_setup(test_##n, setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(bad_magic), T(version4), T(version1), T(cluster_bits_small), T(cluster_bits_big),
		T(cluster_bits_huge), T(crypt), T(l1_too_small), T(l1_too_large), T(l1_unaligned),
		T(l1_in_header), T(l1_beyond_eof), T(l1_wraps), T(rt_zero), T(rt_beyond_eof),
		T(rt_clusters_zero), T(rt_clusters_huge), T(snapshots_many), T(snapshots_unaligned),
		T(data_file), T(extended_l2), T(unknown_incompat), T(compress_bit_no_field),
		T(refcount_order7), T(header_length_short), T(header_length_odd),
		T(header_length_huge), T(compression_type_unknown), T(backing_offset_beyond),
		T(l1_overlaps_rt), T(unknown_feature_named), T(truncated), T(ext_too_long),
		T(l1_entry_beyond_eof), T(l2_entry_unaligned), T(l2_entry_in_header),
		T(compressed_beyond_eof), T(compressed_garbage), T(refblock_bad_write),
		cmocka_unit_test(test_backing_loop), cmocka_unit_test(test_backing_depth),
		cmocka_unit_test(test_backing_missing),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
