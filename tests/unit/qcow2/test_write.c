/* Writes through our backend: random writes / zeroes / discards mirrored
 * on a raw file; afterwards `qemu-img check` must be clean and
 * `qemu-img compare` must find the images equal. */
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

struct variant {
	const char *name;
	const char *create;    /* qemu-img create options */
	const char *backing;   /* NULL or a chain setup command run in the dir */
	uint64_t cluster;
	bool v2;
	bool compressed;
	bool snapshot;
	int nops;
	bool tiny_cache;       /* 4-slot caches: eviction and write-back order */
};

static void do_ops(struct disk *d, uint8_t *mirror, const struct variant *v, bool has_backing)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)strlen(v->name) * 7919;
	uint64_t size = d->size;
	uint8_t *buf = malloc(1 << 20);
	assert_non_null(buf);
	for (int i = 0; i < v->nops; i++) {
		uint64_t kind = qt_rand(&seed) % 100;
		uint64_t len = ((qt_rand(&seed) % 512) + 1) * 512;
		if (qt_rand(&seed) % 4 == 0)
			len = (qt_rand(&seed) % 8 + 1) * v->cluster;  /* whole clusters */
		if (len > (1 << 20))
			len = 1 << 20;
		uint64_t off = (qt_rand(&seed) % (size / 512)) * 512;
		if (qt_rand(&seed) % 3 == 0)
			off &= ~(v->cluster - 1);
		if (off + len > size)
			len = size - off;
		if (!len)
			continue;
		if (kind < 75) {
			for (uint64_t j = 0; j < len; j += 8) {
				uint64_t x = qt_rand(&seed);
				memcpy(buf + j, &x, 8);
			}
			struct iovec iov[2] = { { buf, len / 2 }, { buf + len / 2, len - len / 2 } };
			assert_int_equal(disk_pwritev(d, iov, 2, off), (ssize_t)len);
			memcpy(mirror + off, buf, len);
		} else if (kind < 85) {
			bool unmap = qt_rand(&seed) & 1;
			assert_int_equal(d->ops->write_zeroes(d, off, len, unmap), 0);
			memset(mirror + off, 0, len);
		} else if (kind < 95) {
			if (v->v2 && has_backing)
				continue;   /* discard exposes backing data in v2 */
			assert_int_equal(d->ops->discard(d, off, len), 0);
			/* Whole clusters inside the range read as zeros now. */
			uint64_t a = (off + v->cluster - 1) & ~(v->cluster - 1);
			uint64_t b = (off + len) & ~(v->cluster - 1);
			if (off + len == size)
				b = off + len;
			if (b > a)
				memset(mirror + a, 0, b - a);
		} else {
			assert_int_equal(disk_flush(d), 0);
		}
	}
	free(buf);
}

static void run_variant(const struct variant *v)
{
	const char *img = qt_path("w.qcow2"), *mir = qt_path("w.raw");
	const char *snapa = qt_path("snap-before.raw"), *snapb = qt_path("snap-after.raw");
	char err[256] = "";
	struct disk *d;

	qt_sh("rm -f %s/*", qt_dir());
	if (v->backing)
		qt_must("cd '%s' && %s", qt_dir(), v->backing);
	if (v->compressed) {
		qt_must("qemu-img create -q -f raw '%s' 16M", mir);
		qt_must("qemu-io -f raw -c 'write -P 0x61 0 3M' -c 'write -P 0x62 5M 4M' '%s' >/dev/null", mir);
		qt_must("qemu-img convert -c -O qcow2 %s '%s' '%s'", v->create, mir, img);
	} else {
		qt_must("qemu-img create -q -f qcow2 %s '%s' 16M", v->create, img);
		qt_must("qemu-io -f qcow2 -c 'write -P 0x11 0 1M' -c 'write -P 0x12 3M 2M' "
			"-c 'write -z 4M 128k' '%s' >/dev/null", img);
	}
	if (v->snapshot) {
		qt_must("qemu-img snapshot -c one '%s'", img);
		qt_must("qemu-img convert -O raw -l snapshot.name=one '%s' '%s'", img, snapa);
	}
	size_t mlen;
	uint8_t *mirror = qt_read_qemu(img, &mlen);

	int r;
	if (v->tiny_cache) {
		struct qcow2_opts qo = { .l2_cache_bytes = 1, .rb_cache_bytes = 1 };
		struct disk_opts o = { .path = img, .format = DISK_FMT_QCOW2 };
		int fd = open(img, O_RDWR);
		r = qcow2_open_ex(&d, fd, &o, &qo, err, sizeof(err));
	} else {
		r = qt_open(&d, img, false, err, sizeof(err));
	}
	if (r)
		fprintf(stderr, "%s\n", err);
	assert_int_equal(r, 0);
	do_ops(d, mirror, v, v->backing != NULL);
	uint8_t *ours = qt_read_ours(d);
	assert_memory_equal(ours, mirror, mlen);
	free(ours);
	d->ops->close(d);

	FILE *f = fopen(mir, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(mirror, 1, mlen, f), mlen);
	fclose(f);
	free(mirror);
	qt_must("qemu-img check -q '%s'", img);
	qt_must("qemu-img compare -q -f qcow2 -F raw '%s' '%s'", img, mir);
	if (v->snapshot) {
		qt_must("qemu-img convert -O raw -l snapshot.name=one '%s' '%s'", img, snapb);
		qt_must("cmp -s '%s' '%s'", snapa, snapb);
	}
	/* The dirty bit is clear again after a clean close. */
	if (!v->v2)
		qt_must("qemu-img info '%s' | grep -q 'corrupt: false'", img);
}

#define V(n, ...) static void test_##n(void **s) { struct variant v = { #n, __VA_ARGS__ }; run_variant(&v); }

V(v3_64k, "", NULL, 65536, .nops = 400)
V(v2_64k, "-o compat=0.10", NULL, 65536, .v2 = true, .nops = 400)
V(c512, "-o cluster_size=512", NULL, 512, .nops = 300)
V(c512_rc64, "-o cluster_size=512,refcount_bits=64", NULL, 512, .nops = 300)
V(c512_tiny_cache, "-o cluster_size=512,refcount_bits=2", NULL, 512, .nops = 300, .tiny_cache = true)
V(c4k_tiny_cache_snapshot, "-o cluster_size=4k", NULL, 4096, .snapshot = true, .nops = 300,
  .tiny_cache = true)
V(c2m, "-o cluster_size=2M", NULL, 2 << 20, .nops = 200)
V(rc1, "-o refcount_bits=1", NULL, 65536, .nops = 300)
V(rc64, "-o refcount_bits=64", NULL, 65536, .nops = 300)
V(prealloc, "-o preallocation=metadata", NULL, 65536, .nops = 300)
V(compressed_zlib, "", NULL, 65536, .compressed = true, .nops = 300)
V(compressed_zstd, "-o compression_type=zstd", NULL, 65536, .compressed = true, .nops = 300)
V(snapshot, "", NULL, 65536, .snapshot = true, .nops = 300)
V(snapshot_v2, "-o compat=0.10", NULL, 65536, .v2 = true, .snapshot = true, .nops = 300)
V(backing, "-b mid.qcow2 -F qcow2",
  "qemu-img create -q -f raw base.raw 12M && "
  "qemu-io -f raw -c 'write -P 0xa1 0 12M' base.raw >/dev/null && "
  "qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2 16M && "
  "qemu-io -f qcow2 -c 'write -P 0xb2 1M 2M' mid.qcow2 >/dev/null", 65536, .nops = 300)
V(backing_v2, "-o compat=0.10 -b base.raw -F raw",
  "qemu-img create -q -f raw base.raw 16M && "
  "qemu-io -f raw -c 'write -P 0xa1 0 16M' base.raw >/dev/null", 65536, .v2 = true, .nops = 300)

/* Sequential fill of a 512-byte-cluster, 64-bit-refcount image: the
 * refcount table has to grow many times. */
static void test_refcount_table_growth(void **s)
{
	const char *img = qt_path("grow.qcow2"), *mir = qt_path("grow.raw");
	char err[256];
	struct disk *d;
	qt_must("qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 '%s' 24M", img);
	assert_int_equal(qt_open(&d, img, false, err, sizeof(err)), 0);
	uint8_t *buf = malloc(24 << 20);
	for (size_t i = 0; i < (24u << 20); i++)
		buf[i] = (uint8_t)(i * 7 + (i >> 9));
	for (uint64_t off = 0; off < (24u << 20); off += 192 * 1024) {
		struct iovec v = { buf + off, 192 * 1024 };
		assert_int_equal(disk_pwritev(d, &v, 1, off), 192 * 1024);
	}
	d->ops->close(d);
	FILE *f = fopen(mir, "w");
	fwrite(buf, 1, 24 << 20, f);
	fclose(f);
	free(buf);
	qt_must("qemu-img check -q '%s'", img);
	qt_must("qemu-img compare -q -f qcow2 -F raw '%s' '%s'", img, mir);
}

/* A read-only open refuses writes; a corrupt image refuses read-write. */
static void test_readonly_and_corrupt(void **s)
{
	const char *img = qt_path("ro.qcow2");
	char err[256] = "";
	struct disk *d;
	qt_must("qemu-img create -q -f qcow2 '%s' 1M", img);
	assert_int_equal(qt_open(&d, img, true, err, sizeof(err)), 0);
	char b[512] = { 0 };
	struct iovec v = { b, 512 };
	assert_int_equal(disk_pwritev(d, &v, 1, 0), -EROFS);
	d->ops->close(d);
	/* Set the corrupt bit (incompatible_features bit 1, byte 79). */
	qt_must("printf '\\002' | dd of='%s' bs=1 seek=79 conv=notrunc status=none", img);
	assert_int_equal(qt_open(&d, img, false, err, sizeof(err)), -EROFS);
	assert_non_null(strstr(err, "corrupt"));
	assert_int_equal(qt_open(&d, img, true, err, sizeof(err)), 0);
	d->ops->close(d);
}

/* snapshot=on: writes go to an unlinked temporary overlay; the image
 * itself (qcow2 or raw) is unchanged and nothing is left behind. */
static void snapshot_on(const char *fmt)
{
	const char *img = qt_path("base-img"), *copy = qt_path("base-copy");
	const char *tmp = qt_path("tmpdir");
	char err[512] = "";
	struct disk *d;
	qt_sh("rm -rf '%s' && mkdir -p '%s'", tmp, tmp);
	qt_must("qemu-img create -q -f %s '%s' 8M && qemu-io -f %s -c 'write -P 0x31 0 8M' '%s' >/dev/null",
		fmt, img, fmt, img);
	qt_must("cp '%s' '%s'", img, copy);
	setenv("TMPDIR", tmp, 1);
	struct disk_opts o = { .path = img, .snapshot = true };
	int r = qcow2_open_snapshot(&d, &o, err, sizeof(err));
	unsetenv("TMPDIR");
	if (r)
		fprintf(stderr, "%s\n", err);
	assert_int_equal(r, 0);
	assert_int_equal(d->size, 8 << 20);
	assert_int_equal(qt_sh("ls -A '%s' | grep -q .", tmp), 1);  /* unlinked */
	uint8_t *buf = malloc(1 << 20), *rd = malloc(1 << 20);
	memset(buf, 0x77, 1 << 20);
	struct iovec v = { buf, 1 << 20 }, rv = { rd, 1 << 20 };
	assert_int_equal(disk_pwritev(d, &v, 1, 3 << 20), 1 << 20);
	assert_int_equal(disk_preadv(d, &rv, 1, 3 << 20), 1 << 20);
	assert_memory_equal(rd, buf, 1 << 20);
	assert_int_equal(disk_preadv(d, &rv, 1, 0), 1 << 20);
	memset(buf, 0x31, 1 << 20);
	assert_memory_equal(rd, buf, 1 << 20);
	assert_int_equal(disk_flush(d), 0);
	d->ops->close(d);
	free(buf);
	free(rd);
	qt_must("cmp -s '%s' '%s'", img, copy);
}

static void test_snapshot_on_qcow2(void **s) { snapshot_on("qcow2"); }
static void test_snapshot_on_raw(void **s) { snapshot_on("raw"); }

static int teardown(void **s) { qt_cleanup(); return 0; }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v3_64k),
		cmocka_unit_test(test_v2_64k),
		cmocka_unit_test(test_c512),
		cmocka_unit_test(test_c512_rc64),
		cmocka_unit_test(test_c512_tiny_cache),
		cmocka_unit_test(test_c4k_tiny_cache_snapshot),
		cmocka_unit_test(test_c2m),
		cmocka_unit_test(test_rc1),
		cmocka_unit_test(test_rc64),
		cmocka_unit_test(test_prealloc),
		cmocka_unit_test(test_compressed_zlib),
		cmocka_unit_test(test_compressed_zstd),
		cmocka_unit_test(test_snapshot),
		cmocka_unit_test(test_snapshot_v2),
		cmocka_unit_test(test_backing),
		cmocka_unit_test(test_backing_v2),
		cmocka_unit_test(test_refcount_table_growth),
		cmocka_unit_test(test_readonly_and_corrupt),
		cmocka_unit_test(test_snapshot_on_qcow2),
		cmocka_unit_test(test_snapshot_on_raw),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
