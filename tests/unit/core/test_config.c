/* Option value parsing (vmm/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/config.h"

static void test_sizes(void **state)
{
	uint64_t v;

	assert_int_equal(parse_size("512M", &v), 0); assert_int_equal(v, 512ULL << 20);
	assert_int_equal(parse_size("512", &v), 0);  assert_int_equal(v, 512ULL << 20);
	assert_int_equal(parse_size("2G", &v), 0);   assert_int_equal(v, 2ULL << 30);
	assert_int_equal(parse_size("2g", &v), 0);   assert_int_equal(v, 2ULL << 30);
	assert_int_equal(parse_size("4096K", &v), 0); assert_int_equal(v, 4ULL << 20);
	assert_int_equal(parse_size("1GiB", &v), 0); assert_int_equal(v, 1ULL << 30);
	assert_int_equal(parse_size("1T", &v), 0);   assert_int_equal(v, 1ULL << 40);
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("M", &v), -EINVAL);
	assert_int_equal(parse_size("-1G", &v), -EINVAL);
	assert_int_equal(parse_size("12Q", &v), -EINVAL);
	assert_int_equal(parse_size("1.5G", &v), -EINVAL);
	assert_int_equal(parse_size("5G5", &v), -EINVAL);
	assert_int_equal(parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(parse_size("17179869184G", &v), -ERANGE); /* 2^34 GiB overflows */
}

static void test_uints(void **state)
{
	unsigned long v;

	assert_int_equal(parse_uint("4", 1, 64, &v), 0); assert_int_equal(v, 4);
	assert_int_equal(parse_uint("0", 1, 64, &v), -ERANGE);
	assert_int_equal(parse_uint("65", 1, 64, &v), -ERANGE);
	assert_int_equal(parse_uint("two", 1, 64, &v), -EINVAL);
	assert_int_equal(parse_uint("3x", 1, 64, &v), -EINVAL);
	assert_int_equal(parse_uint("-3", 1, 64, &v), -EINVAL);
	assert_int_equal(parse_uint("", 1, 64, &v), -EINVAL);
}

static void test_disk(void **state)
{
	struct disk_opts d;
	char err[256];
	char s1[] = "a.qcow2,ro,format=qcow2,cache=none,serial=XYZ,snapshot=on";
	char s2[] = "b.img";
	char s3[] = "c.img,format=vmdk";
	char s4[] = "c.img,serial=123456789012345678901";
	char s5[] = "";
	char s6[] = "d.img,frob";

	assert_int_equal(parse_disk(s1, &d, err, sizeof(err)), 0);
	assert_string_equal(d.path, "a.qcow2");
	assert_true(d.readonly);
	assert_int_equal(d.format, DISK_FMT_QCOW2);
	assert_int_equal(d.cache, DISK_CACHE_NONE);
	assert_string_equal(d.serial, "XYZ");
	assert_true(d.snapshot);
	assert_int_equal(parse_disk(s2, &d, err, sizeof(err)), 0);
	assert_int_equal(d.format, DISK_FMT_PROBE);
	assert_false(d.readonly);
	assert_int_equal(parse_disk(s3, &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "format=vmdk"));
	assert_int_equal(parse_disk(s4, &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than 20"));
	assert_int_equal(parse_disk(s5, &d, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_disk(s6, &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "frob"));
}

static void test_net(void **state)
{
	struct net_config n;
	char err[256];
	char s1[] = "tap=tap0,mac=52:54:00:12:34:56,vhost=on,queues=2";
	char s2[] = "mac=52:54:00:12:34:56";
	char s3[] = "tap=tap0,mac=01:54:00:12:34:56";      /* multicast */
	char s4[] = "tap=tap0,mac=52:54:00:12:34";         /* short */
	char s5[] = "tap=averyveryverylongname0";
	char s6[] = "tap=t,queues=0";
	char s7[] = "tap=t,mac=52:54:00:12:34:5g";

	assert_int_equal(parse_net(s1, &n, err, sizeof(err)), 0);
	assert_string_equal(n.ifname, "tap0");
	assert_true(n.mac_set);
	assert_int_equal(n.mac[5], 0x56);
	assert_true(n.vhost);
	assert_int_equal(n.queues, 2);
	assert_int_equal(parse_net(s2, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "tap=IFNAME"));
	assert_int_equal(parse_net(s3, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_net(s4, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_net(s5, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_net(s6, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_net(s7, &n, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_uints),
		cmocka_unit_test(test_disk),
		cmocka_unit_test(test_net),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
