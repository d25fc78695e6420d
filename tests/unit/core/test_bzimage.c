/* bzImage header validation (firmware/bzimage.c) on synthetic images built
 * from the field offsets in Documentation/arch/x86/boot.rst. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "firmware/bzimage.h"

#define SETUP_SECTS 4
#define IMG_SIZE ((SETUP_SECTS + 1) * 512 + 4096)

static void put16(uint8_t *p, size_t off, uint16_t v) { memcpy(p + off, &v, 2); }
static void put32(uint8_t *p, size_t off, uint32_t v) { memcpy(p + off, &v, 4); }
static void put64(uint8_t *p, size_t off, uint64_t v) { memcpy(p + off, &v, 8); }

/* A minimal valid image: protocol 2.15, relocatable, 64-bit entry. */
static uint8_t *make_image(void)
{
	uint8_t *b = calloc(1, IMG_SIZE);

	b[0x1f1] = SETUP_SECTS;
	put16(b, 0x1fe, 0xAA55);
	b[0x200] = 0xeb;             /* jmp */
	b[0x201] = 0x6a;             /* header ends at 0x26c */
	memcpy(b + 0x202, "HdrS", 4);
	put16(b, 0x206, 0x020f);
	put32(b, 0x22c, 0x7fffffff); /* initrd_addr_max */
	put32(b, 0x230, 0x200000);   /* kernel_alignment */
	b[0x234] = 1;                /* relocatable_kernel */
	put16(b, 0x236, 0x1 | 0x2);  /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
	put32(b, 0x238, 2047);       /* cmdline_size */
	put64(b, 0x258, 0x1000000);  /* pref_address */
	put32(b, 0x260, 0x800000);   /* init_size */
	return b;
}

static int parse(uint8_t *b, size_t len, struct bzimage *bz, char *err)
{
	return bzimage_parse(b, len, bz, err, 256);
}

static void test_good(void **state)
{
	uint8_t *b = make_image();
	struct bzimage bz;
	char err[256];

	assert_int_equal(parse(b, IMG_SIZE, &bz, err), 0);
	assert_int_equal(bz.version, 0x020f);
	assert_int_equal(bz.setup_size, (SETUP_SECTS + 1) * 512);
	assert_ptr_equal(bz.kernel, b + (SETUP_SECTS + 1) * 512);
	assert_int_equal(bz.kernel_size, 4096);
	assert_int_equal(bz.hdr_end, 0x26c);
	assert_true(bz.relocatable);
	assert_int_equal(bz.cmdline_size, 2047);
	assert_int_equal(bz.init_size, 0x800000);
	free(b);
}

static void test_truncated(void **state)
{
	uint8_t *b = make_image();
	struct bzimage bz;
	char err[256];

	/* Shorter than the header itself. */
	assert_int_equal(parse(b, 0x210, &bz, err), -ENOEXEC);
	assert_non_null(strstr(err, "too small"));
	/* Header fine but the file ends inside the setup sectors. */
	assert_int_equal(parse(b, 3 * 512, &bz, err), -ENOEXEC);
	assert_non_null(strstr(err, "truncated"));
	free(b);
}

static void test_wrong_magic(void **state)
{
	uint8_t *b = make_image();
	struct bzimage bz;
	char err[256];

	memcpy(b + 0x202, "HdrX", 4);
	assert_int_equal(parse(b, IMG_SIZE, &bz, err), -ENOEXEC);
	assert_non_null(strstr(err, "not a Linux bzImage"));
	memcpy(b + 0x202, "HdrS", 4);
	put16(b, 0x1fe, 0x1234);
	assert_int_equal(parse(b, IMG_SIZE, &bz, err), -ENOEXEC);
	free(b);
}

static void test_old_protocol(void **state)
{
	uint8_t *b = make_image();
	struct bzimage bz;
	char err[256];

	put16(b, 0x206, 0x020b); /* 2.11: no xloadflags */
	assert_int_equal(parse(b, IMG_SIZE, &bz, err), -ENOEXEC);
	assert_non_null(strstr(err, "2.11 is too old"));
	free(b);
}

static void test_no_64bit_entry(void **state)
{
	uint8_t *b = make_image();
	struct bzimage bz;
	char err[256];

	put16(b, 0x236, 0);
	assert_int_equal(parse(b, IMG_SIZE, &bz, err), -ENOEXEC);
	assert_non_null(strstr(err, "64-bit"));
	free(b);
}

static void test_bad_alignment_and_init_size(void **state)
{
	uint8_t *b = make_image();
	struct bzimage bz;
	char err[256];

	put32(b, 0x230, 0x300000); /* not a power of two */
	assert_int_equal(parse(b, IMG_SIZE, &bz, err), -ENOEXEC);
	assert_non_null(strstr(err, "kernel_alignment"));
	put32(b, 0x230, 0x200000);
	put32(b, 0x260, 100);      /* smaller than the payload */
	assert_int_equal(parse(b, IMG_SIZE, &bz, err), -ENOEXEC);
	assert_non_null(strstr(err, "init_size"));
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_wrong_magic),
		cmocka_unit_test(test_old_protocol),
		cmocka_unit_test(test_no_64bit_entry),
		cmocka_unit_test(test_bad_alignment_and_init_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
