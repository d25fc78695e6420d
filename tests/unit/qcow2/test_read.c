/* Reads through our qcow2 backend must be byte-identical to
 * `qemu-img convert -O raw` for images qemu made in every layout we
 * support. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/unit/qcow2/qtest.h"

/* A mix of data, zeroed and discarded ranges, unaligned to clusters. */
#define IO_OPS "-c 'write -P 0x11 0 64k' -c 'write -P 0x22 100k 200k' " \
	"-c 'write -P 0x33 1M 3M' -c 'write -z 2M 512k' -c 'discard 3M 128k' " \
	"-c 'write -P 0x44 31M 1M' -c 'write -P 0x55 17k 1k'"

static void make_and_compare(const char *name, const char *opts)
{
	const char *p = qt_path(name);
	qt_must("qemu-img create -q -f qcow2 %s '%s' 32M", opts, p);
	qt_must("qemu-io -f qcow2 " IO_OPS " '%s' >/dev/null", p);
	qt_assert_same_as_qemu(p);
}

static void test_v2(void **s) { make_and_compare("v2.qcow2", "-o compat=0.10"); }
static void test_v3_64k(void **s) { make_and_compare("v3.qcow2", "-o compat=1.1"); }
static void test_512(void **s) { make_and_compare("c512.qcow2", "-o cluster_size=512"); }
static void test_2m(void **s) { make_and_compare("c2m.qcow2", "-o cluster_size=2M"); }
static void test_4k(void **s) { make_and_compare("c4k.qcow2", "-o cluster_size=4k"); }
static void test_rc1(void **s) { make_and_compare("rc1.qcow2", "-o refcount_bits=1"); }
static void test_rc2(void **s) { make_and_compare("rc2.qcow2", "-o refcount_bits=2"); }
static void test_rc4(void **s) { make_and_compare("rc4.qcow2", "-o refcount_bits=4"); }
static void test_rc8(void **s) { make_and_compare("rc8.qcow2", "-o refcount_bits=8"); }
static void test_rc32(void **s) { make_and_compare("rc32.qcow2", "-o refcount_bits=32"); }
static void test_rc64(void **s) { make_and_compare("rc64.qcow2", "-o refcount_bits=64"); }
static void test_lazy(void **s) { make_and_compare("lazy.qcow2", "-o lazy_refcounts=on"); }
static void test_prealloc_meta(void **s) { make_and_compare("pm.qcow2", "-o preallocation=metadata"); }
static void test_prealloc_full(void **s) { make_and_compare("pf.qcow2", "-o preallocation=full"); }

static void compressed(const char *name, const char *opts)
{
	const char *raw = qt_path("src.raw"), *p = qt_path(name);
	qt_must("qemu-img create -q -f raw '%s' 8M", raw);
	/* Compressible and incompressible data, partial last cluster. */
	qt_must("qemu-io -f raw -c 'write -P 0x61 0 1M' -c 'write -P 0x00 1M 1M' '%s' >/dev/null", raw);
	qt_must("head -c 2000000 /dev/urandom | dd of='%s' bs=1000 seek=3000 iflag=fullblock conv=notrunc status=none", raw);
	qt_must("qemu-img convert -c -O qcow2 %s '%s' '%s'", opts, raw, p);
	qt_assert_same_as_qemu(p);
}

static void test_zlib(void **s) { compressed("zlib.qcow2", ""); }
static void test_zlib_512(void **s) { compressed("zlib512.qcow2", "-o cluster_size=512"); }
static void test_zlib_2m(void **s) { compressed("zlib2m.qcow2", "-o cluster_size=2M"); }
static void test_zstd(void **s) { compressed("zstd.qcow2", "-o compression_type=zstd"); }
static void test_zstd_4k(void **s) { compressed("zstd4k.qcow2", "-o compression_type=zstd,cluster_size=4k"); }

static void test_backing_chain(void **s)
{
	const char *base = qt_path("base.raw"), *mid = qt_path("mid.qcow2");
	const char *top = qt_path("top.qcow2"), *top2 = qt_path("top2.qcow2");
	qt_must("qemu-img create -q -f raw '%s' 24M", base);   /* smaller than top */
	qt_must("qemu-io -f raw -c 'write -P 0xa1 0 24M' '%s' >/dev/null", base);
	qt_must("qemu-img create -q -f qcow2 -b base.raw -F raw '%s' 28M", mid);
	qt_must("qemu-io -f qcow2 -c 'write -P 0xb2 1M 2M' -c 'write -z 8M 1M' '%s' >/dev/null", mid);
	qt_must("qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 '%s' 32M", top);
	qt_must("qemu-io -f qcow2 -c 'write -P 0xc3 2M 64k' -c 'write -P 0xc4 9000k 4k' "
		"-c 'write -z 20M 2M' -c 'discard 1M 64k' -c 'write -P 0xc5 30M 1M' '%s' >/dev/null", top);
	qt_assert_same_as_qemu(top);
	/* Format probed (no backing format extension), v2 on top. */
	qt_must("qemu-img create -q -f qcow2 -o compat=0.10 -b top.qcow2 -F qcow2 '%s' 32M", top2);
	qt_must("qemu-io -f qcow2 -c 'write -P 0xd6 5M 3k' '%s' >/dev/null", top2);
	qt_assert_same_as_qemu(top2);
}

static void test_snapshots(void **s)
{
	const char *p = qt_path("snap.qcow2");
	qt_must("qemu-img create -q -f qcow2 '%s' 32M", p);
	qt_must("qemu-io -f qcow2 " IO_OPS " '%s' >/dev/null", p);
	qt_must("qemu-img snapshot -c one '%s'", p);
	qt_must("qemu-io -f qcow2 -c 'write -P 0x77 0 96k' -c 'write -z 1M 64k' '%s' >/dev/null", p);
	qt_must("qemu-img snapshot -c two '%s'", p);
	qt_must("qemu-io -f qcow2 -c 'write -P 0x78 1M 32k' '%s' >/dev/null", p);
	qt_assert_same_as_qemu(p);
}

static void test_empty_and_odd_size(void **s)
{
	const char *p = qt_path("odd.qcow2");
	qt_must("qemu-img create -q -f qcow2 '%s' 1000001", p);  /* not sector aligned */
	qt_must("qemu-io -f qcow2 -c 'write -P 0x19 999424 512' '%s' >/dev/null", p);
	qt_assert_same_as_qemu(p);
	p = qt_path("empty.qcow2");
	qt_must("qemu-img create -q -f qcow2 '%s' 64M", p);
	qt_assert_same_as_qemu(p);
}

static int teardown(void **s) { qt_cleanup(); return 0; }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v2),
		cmocka_unit_test(test_v3_64k),
		cmocka_unit_test(test_512),
		cmocka_unit_test(test_4k),
		cmocka_unit_test(test_2m),
		cmocka_unit_test(test_rc1),
		cmocka_unit_test(test_rc2),
		cmocka_unit_test(test_rc4),
		cmocka_unit_test(test_rc8),
		cmocka_unit_test(test_rc32),
		cmocka_unit_test(test_rc64),
		cmocka_unit_test(test_lazy),
		cmocka_unit_test(test_prealloc_meta),
		cmocka_unit_test(test_prealloc_full),
		cmocka_unit_test(test_zlib),
		cmocka_unit_test(test_zlib_512),
		cmocka_unit_test(test_zlib_2m),
		cmocka_unit_test(test_zstd),
		cmocka_unit_test(test_zstd_4k),
		cmocka_unit_test(test_backing_chain),
		cmocka_unit_test(test_snapshots),
		cmocka_unit_test(test_empty_and_odd_size),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
