/* AML writer: byte sequences worked out by hand from ACPI 6.5 §20
 * (the whole DSDT is also compared with iasl's output in
 * test_acpi_iasl.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "firmware/aml.h"

static uint8_t buf[8192];
static struct aml a;

static void reset(void)
{
	memset(buf, 0xAA, sizeof(buf));
	aml_init(&a, buf, sizeof(buf));
}

#define EXPECT(...)                                                        \
	do {                                                               \
		static const uint8_t want_[] = { __VA_ARGS__ };            \
		assert_int_equal(aml_finish(&a), sizeof(want_));          \
		assert_memory_equal(buf, want_, sizeof(want_));           \
	} while (0)

static void test_integers(void **state)
{
	reset(); aml_integer(&a, 0); EXPECT(0x00);            /* ZeroOp */
	reset(); aml_integer(&a, 1); EXPECT(0x01);            /* OneOp */
	reset(); aml_integer(&a, 2); EXPECT(0x0A, 0x02);
	reset(); aml_integer(&a, 0xFF); EXPECT(0x0A, 0xFF);
	reset(); aml_integer(&a, 0x100); EXPECT(0x0B, 0x00, 0x01);
	reset(); aml_integer(&a, 0x12345678); EXPECT(0x0C, 0x78, 0x56, 0x34, 0x12);
	reset(); aml_integer(&a, 0x100000000ULL);
	EXPECT(0x0E, 0, 0, 0, 0, 1, 0, 0, 0);
	reset(); aml_string(&a, "AB"); EXPECT(0x0D, 'A', 'B', 0x00);
}

static void test_names(void **state)
{
	reset(); aml_name_string(&a, "_S5"); EXPECT('_', 'S', '5', '_');
	reset(); aml_name_string(&a, "\\_SB.PCI0");
	EXPECT(0x5C, 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0');
	reset(); aml_name_string(&a, "A.B.C");
	EXPECT(0x2F, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_');
	reset(); aml_name(&a, "X"); aml_integer(&a, 0);
	EXPECT(0x08, 'X', '_', '_', '_', 0x00);

	static const char *bad[] = { "", "1ABC", "ABCDE", "abc", "A..B", "\\", "A." };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reset();
		aml_name_string(&a, bad[i]);
		assert_int_equal(aml_finish(&a), -EINVAL);
	}
}

static void test_eisaid(void **state)
{
	reset(); aml_eisaid(&a, "PNP0A03"); EXPECT(0x0C, 0x41, 0xD0, 0x0A, 0x03);
	reset(); aml_eisaid(&a, "PNP0501"); EXPECT(0x0C, 0x41, 0xD0, 0x05, 0x01);
	static const char *bad[] = { "pnp0a03", "PNP0A0", "PNP0A0G", "PNP0A033" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reset();
		aml_eisaid(&a, bad[i]);
		assert_int_equal(aml_finish(&a), -EINVAL);
	}
}

static void test_device_and_buffer(void **state)
{
	/* PkgLength counts itself and the name: 1 + 4 = 5. */
	reset(); aml_device_begin(&a, "PCI0"); aml_end(&a);
	EXPECT(0x5B, 0x82, 0x05, 'P', 'C', 'I', '0');
	/* Buffer: PkgLength (1) + BufferSize (0A 03) + 3 bytes = 6. */
	reset(); aml_buffer_begin(&a); aml_bytes(&a, "xyz", 3); aml_end(&a);
	EXPECT(0x11, 0x06, 0x0A, 0x03, 'x', 'y', 'z');
	/* Package (2) { 5, 0 }: PkgLength 1 + NumElements 1 + 3 = 5. */
	reset(); aml_package_begin(&a, 2); aml_integer(&a, 5); aml_integer(&a, 0);
	aml_end(&a);
	EXPECT(0x12, 0x05, 0x02, 0x0A, 0x05, 0x00);
	reset(); aml_res_irq(&a, 4); EXPECT(0x22, 0x10, 0x00);
	reset(); aml_res_io(&a, 0x3F8, 1, 8);
	EXPECT(0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08);
}

/* PkgLength encodings around the 1/2 and 2/3 byte boundaries (§20.2.4). */
static void test_pkglength(void **state)
{
	/* Package of 61 ZeroOps: body 62 bytes, total 63: one byte 0x3F. */
	reset(); aml_package_begin(&a, 61);
	for (int i = 0; i < 61; i++)
		aml_integer(&a, 0);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 1 + 1 + 62);
	assert_int_equal(buf[1], 0x3F);
	assert_int_equal(buf[2], 61);

	/* 62 ZeroOps: body 63, total 65 with a 2-byte PkgLength:
	 * lead 0x40 | (65 & 0xF), then 65 >> 4. */
	reset(); aml_package_begin(&a, 62);
	for (int i = 0; i < 62; i++)
		aml_integer(&a, 0);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 1 + 2 + 63);
	assert_int_equal(buf[1], 0x41);
	assert_int_equal(buf[2], 0x04);
	assert_int_equal(buf[3], 62);
	assert_int_equal(buf[4], 0x00);

	/* Buffer of 4090 bytes: BufferSize 0B FA 0F, total 2+3+4090 = 4095,
	 * the largest 2-byte PkgLength. */
	static uint8_t data[4092];
	memset(data, 0x5A, sizeof(data));
	reset(); aml_buffer_begin(&a); aml_bytes(&a, data, 4090); aml_end(&a);
	assert_int_equal(aml_finish(&a), 1 + 4095);
	static const uint8_t h2[] = { 0x11, 0x4F, 0xFF, 0x0B, 0xFA, 0x0F, 0x5A };
	assert_memory_equal(buf, h2, sizeof(h2));

	/* 4092 bytes: 3+4092+2 = 4097 does not fit 2 bytes; with 3 bytes the
	 * total is 4098 = 0x1002: lead 0x82, then 0x00, 0x01. */
	reset(); aml_buffer_begin(&a); aml_bytes(&a, data, 4092); aml_end(&a);
	assert_int_equal(aml_finish(&a), 1 + 4098);
	static const uint8_t h3[] = { 0x11, 0x82, 0x00, 0x01, 0x0B, 0xFC, 0x0F, 0x5A };
	assert_memory_equal(buf, h3, sizeof(h3));
	assert_int_equal(buf[4098], 0x5A);
	assert_int_equal(buf[4099], 0xAA); /* nothing written past the end */
}

static void test_errors(void **state)
{
	reset(); aml_end(&a);
	assert_int_equal(aml_finish(&a), -EINVAL);   /* end without begin */
	reset(); aml_scope_begin(&a, "\\_SB");
	assert_int_equal(aml_finish(&a), -EINVAL);   /* begin without end */
	reset(); aml_res_irq(&a, 16);
	assert_int_equal(aml_finish(&a), -EINVAL);
	reset(); aml_res_mem32_window(&a, 2, 1);
	assert_int_equal(aml_finish(&a), -EINVAL);
	reset();
	for (int i = 0; i <= AML_MAX_DEPTH; i++)
		aml_scope_begin(&a, "S");
	assert_int_equal(aml_finish(&a), -EINVAL);

	/* Too small: 10-byte buffer, and the header insert that overflows. */
	uint8_t small[12];
	memset(small, 0xAA, sizeof(small));
	aml_init(&a, small, 10);
	aml_integer(&a, 0x100000000ULL);   /* 9 bytes */
	aml_integer(&a, 0x1234);           /* 3 more: does not fit */
	aml_integer(&a, 0);                /* sticky: ignored */
	assert_int_equal(aml_finish(&a), -ENOSPC);
	assert_int_equal(small[10], 0xAA);
	aml_init(&a, small, 10);
	aml_buffer_begin(&a);
	aml_bytes(&a, "12345678", 8);      /* 9 bytes used */
	aml_end(&a);                       /* needs 3 more for the header */
	assert_int_equal(aml_finish(&a), -ENOSPC);
	assert_int_equal(small[10], 0xAA);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_eisaid),
		cmocka_unit_test(test_device_and_buffer),
		cmocka_unit_test(test_pkglength),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
