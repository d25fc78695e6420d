/* e820 map and zero-page layout (firmware/boot_params.c) for several
 * memory sizes, checked against the layout rules, not against our output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <asm/bootparam.h>

#include "firmware/boot_params.h"
#include "firmware/layout.h"
#include "vmm/vm.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static uint64_t ram_of(const struct boot_e820_entry *t, int n)
{
	uint64_t sum = 0;
	for (int i = 0; i < n; i++)
		if (t[i].type == 1)
			sum += t[i].size;
	return sum;
}

static void check_map(uint64_t mem)
{
	struct boot_e820_entry t[8];
	uint64_t low = mem < MEM_32BIT_GAP_START ? mem : MEM_32BIT_GAP_START;
	int n = e820_build(t, 8, low, mem - low);

	assert_true(n >= 3);
	/* Sorted, non-overlapping. */
	for (int i = 1; i < n; i++)
		assert_true(t[i - 1].addr + t[i - 1].size <= t[i].addr);
	/* All RAM is there, minus the 0x9FC00-0x100000 hole. */
	assert_int_equal(ram_of(t, n), mem - (HIGH_MEM_START - EBDA_START));
	/* Nothing usable in the PCI hole [3 GiB, 4 GiB). */
	for (int i = 0; i < n; i++)
		if (t[i].type == 1)
			assert_true(t[i].addr + t[i].size <= MEM_32BIT_GAP_START ||
				    t[i].addr >= MEM_4G);
	/* The BIOS area holding the ACPI tables is reserved. */
	int found = 0;
	for (int i = 0; i < n; i++)
		if (t[i].type == 2 && t[i].addr <= BIOS_AREA_START &&
		    t[i].addr + t[i].size >= HIGH_MEM_START)
			found = 1;
	assert_true(found);
	/* Above 3 GiB, the remainder starts exactly at 4 GiB. */
	if (mem > MEM_32BIT_GAP_START) {
		assert_int_equal(t[n - 1].addr, MEM_4G);
		assert_int_equal(t[n - 1].size, mem - MEM_32BIT_GAP_START);
	}
}

static void test_e820_sizes(void **state)
{
	check_map(64 * MiB);
	check_map(512 * MiB);
	check_map(3 * GiB);
	check_map(3 * GiB + 4096);
	check_map(5 * GiB);
	check_map(64 * GiB);
}

static void test_e820_too_small_table(void **state)
{
	struct boot_e820_entry t[2];
	assert_int_equal(e820_build(t, 2, 512 * MiB, 0), -ENOSPC);
}

/* A synthetic bzImage (see test_bzimage.c) loaded into fake guest RAM. */
static uint8_t *image(size_t *len)
{
	size_t n = 5 * 512 + 8192;
	uint8_t *b = calloc(1, n);
	uint16_t v16; uint32_t v32; uint64_t v64;

	b[0x1f1] = 4;
	v16 = 0xAA55; memcpy(b + 0x1fe, &v16, 2);
	b[0x200] = 0xeb; b[0x201] = 0x6a;
	memcpy(b + 0x202, "HdrS", 4);
	v16 = 0x020f; memcpy(b + 0x206, &v16, 2);
	v32 = 0x7fffffff; memcpy(b + 0x22c, &v32, 4);
	v32 = 0x200000; memcpy(b + 0x230, &v32, 4);
	b[0x234] = 1;
	v16 = 3; memcpy(b + 0x236, &v16, 2);
	v32 = 255; memcpy(b + 0x238, &v32, 4);
	v64 = 0x1000000; memcpy(b + 0x258, &v64, 8);
	v32 = 0x400000; memcpy(b + 0x260, &v32, 4);
	memset(b + 5 * 512, 0xAB, 8192); /* "kernel" payload */
	*len = n;
	return b;
}

static void test_load(void **state)
{
	struct guest_mem gm = { 0 };
	uint64_t ram = 64 * MiB;
	uint8_t *host = calloc(1, ram);
	uint8_t initrd[10000];
	size_t klen;
	uint8_t *k = image(&klen);
	struct boot_info bi;
	struct boot_params bp;
	char err[256];

	memset(initrd, 0x5A, sizeof(initrd));
	assert_int_equal(gm_add_region(&gm, 0, ram, host), 0);
	assert_int_equal(boot_load(&gm, ram, 0, k, klen, initrd, sizeof(initrd),
				   "console=ttyS0 x=1", 0xE0000, &bi, err, sizeof(err)), 0);
	assert_int_equal(bi.entry, bi.kernel_addr + 0x200);
	assert_int_equal(bi.kernel_addr % 0x200000, 0);
	assert_int_equal(host[bi.kernel_addr], 0xAB);
	assert_int_equal(host[bi.kernel_addr + 8191], 0xAB);
	memcpy(&bp, host + bi.zero_page, sizeof(bp));
	assert_memory_equal(&bp.hdr.header, "HdrS", 4);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_string_equal((char *)host + bp.hdr.cmd_line_ptr, "console=ttyS0 x=1");
	assert_int_equal(bp.acpi_rsdp_addr, 0xE0000);
	/* initrd page aligned, below RAM end, above the kernel's init_size. */
	assert_int_equal(bp.hdr.ramdisk_image % 4096, 0);
	assert_int_equal(bp.hdr.ramdisk_size, sizeof(initrd));
	assert_true(bp.hdr.ramdisk_image + sizeof(initrd) <= ram);
	assert_true(bp.hdr.ramdisk_image >= bi.kernel_addr + 0x400000);
	assert_int_equal(host[bp.hdr.ramdisk_image], 0x5A);
	assert_true(bp.e820_entries >= 3);
	free(host);
	free(k);
}

static void test_load_errors(void **state)
{
	struct guest_mem gm = { 0 };
	uint64_t ram = 64 * MiB;
	uint8_t *host = calloc(1, ram);
	size_t klen;
	uint8_t *k = image(&klen);
	char longcmd[400], err[256];
	struct boot_info bi;

	assert_int_equal(gm_add_region(&gm, 0, ram, host), 0);
	/* cmdline longer than the kernel's cmdline_size (255). */
	memset(longcmd, 'a', sizeof(longcmd) - 1);
	longcmd[sizeof(longcmd) - 1] = 0;
	assert_int_equal(boot_load(&gm, ram, 0, k, klen, NULL, 0, longcmd, 0, &bi, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "command line"));
	/* Too little memory for kernel + init_size at 16 MiB. */
	assert_int_equal(boot_load(&gm, 18 * MiB, 0, k, klen, NULL, 0, "", 0, &bi, err, sizeof(err)), -ENOMEM);
	assert_non_null(strstr(err, "-m"));
	/* An initrd that cannot fit next to the kernel. */
	uint8_t *big = calloc(1, 48 * MiB);
	assert_int_equal(boot_load(&gm, ram, 0, k, klen, big, 48 * MiB, "", 0, &bi, err, sizeof(err)), -ENOMEM);
	assert_non_null(strstr(err, "initrd"));
	free(big);
	free(host);
	free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_e820_sizes),
		cmocka_unit_test(test_e820_too_small_table),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_load_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
