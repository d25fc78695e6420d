/* ACPI tables: build into fake guest memory, then parse them back with
 * offsets taken from the ACPI 6.5 spec (not from firmware/acpi.c's
 * structures) and check checksums, pointers and contents. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "firmware/acpi.h"
#include "vmm/guest_mem.h"

#define RAM_SIZE (1u << 20) /* covers the 0xE0000-0xFFFFF table area */

struct fake {
	struct guest_mem gm;
	uint8_t *ram;
};

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->ram = calloc(1, RAM_SIZE);
	assert_non_null(f->ram);
	assert_int_equal(gm_add_region(&f->gm, 0, RAM_SIZE, f->ram), 0);
	return f;
}

static void fake_free(struct fake *f)
{
	free(f->ram);
	free(f);
}

static uint32_t rd16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* A table at gpa: in the table area, signature `sig`, its length inside
 * RAM and its bytes summing to 0 (§5.2.6).  Returns a pointer to it. */
static const uint8_t *table(struct fake *f, uint64_t gpa, const char *sig)
{
	assert_true(gpa >= ACPI_TABLES_GPA && gpa + 36 <= ACPI_TABLES_END);
	const uint8_t *t = f->ram + gpa;
	uint32_t len = rd32(t + 4);
	assert_true(len >= 36 && gpa + len <= ACPI_TABLES_END);
	assert_memory_equal(t, sig, 4);
	assert_int_equal(sum(t, len), 0);
	return t;
}

static uint64_t build(struct fake *f, unsigned ncpus)
{
	uint64_t rsdp = 0;
	assert_int_equal(acpi_build(&f->gm, ncpus, &rsdp), 0);
	return rsdp;
}

/* XSDT entry with signature sig, or fail. */
static const uint8_t *xsdt_find(struct fake *f, uint64_t rsdp, const char *sig)
{
	const uint8_t *x = table(f, rd64(f->ram + rsdp + 24), "XSDT");
	uint32_t n = (rd32(x + 4) - 36) / 8;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t a = rd64(x + 36 + 8 * i);
		if (a + 4 <= RAM_SIZE && memcmp(f->ram + a, sig, 4) == 0)
			return table(f, a, sig);
	}
	fail_msg("%s not in XSDT", sig);
	return NULL;
}

static void test_rsdp(void **state)
{
	struct fake *f = fake_new();
	uint64_t rsdp = build(f, 1);
	const uint8_t *r = f->ram + rsdp;

	/* §5.2.5: at 0xE0000, 16-byte aligned, found by the legacy scan. */
	assert_int_equal(rsdp, 0xE0000);
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(sum(r, 20), 0);     /* ACPI 1.0 checksum */
	assert_int_equal(r[15], 2);          /* revision */
	assert_int_equal(rd32(r + 20), 36);  /* length */
	assert_int_equal(sum(r, 36), 0);     /* extended checksum */
	uint64_t xsdt = rd64(r + 24);
	const uint8_t *x = table(f, xsdt, "XSDT");
	assert_int_equal(rd32(x + 4), 36 + 2 * 8);
	xsdt_find(f, rsdp, "FACP");
	xsdt_find(f, rsdp, "APIC");
	fake_free(f);
}

static void test_fadt(void **state)
{
	struct fake *f = fake_new();
	uint64_t rsdp = build(f, 2);
	const uint8_t *t = xsdt_find(f, rsdp, "FACP");

	assert_int_equal(rd32(t + 4), 276);  /* FADT revision 6 size */
	assert_int_equal(t[8], 6);
	uint32_t flags = rd32(t + 112);
	assert_true(flags & (1u << 20));     /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10));     /* RESET_REG_SUP */
	/* IAPC_BOOT_ARCH at 109: MSI must not be disabled (bit 3); no 8042
	 * (bit 1: devices/i8042.c is only a reset line); VGA not present. */
	assert_int_equal(rd16(t + 109) & 0x2E, 0x04);

	/* RESET_REG GAS at 116: system I/O, 8 bits, byte access. */
	assert_int_equal(t[116], 1);
	assert_int_equal(t[117], 8);
	assert_int_equal(rd64(t + 120), ACPI_RESET_PORT);
	assert_int_equal(t[128], ACPI_RESET_VALUE);
	/* SLEEP_CONTROL_REG at 244, SLEEP_STATUS_REG at 256. */
	assert_int_equal(t[244], 1);
	assert_int_equal(t[245], 8);
	assert_int_equal(rd64(t + 248), ACPI_SLEEP_CTL_PORT);
	assert_int_equal(t[256], 1);
	assert_int_equal(t[257], 8);
	assert_int_equal(rd64(t + 260), ACPI_SLEEP_STS_PORT);
	assert_int_not_equal(ACPI_SLEEP_CTL_PORT, ACPI_SLEEP_STS_PORT);

	/* X_DSDT at 140 points at a valid DSDT. */
	const uint8_t *d = table(f, rd64(t + 140), "DSDT");
	assert_int_equal(d[8], 2);
	/* Hypervisor vendor identity at 268 is set. */
	assert_memory_not_equal(t + 268, "\0\0\0\0\0\0\0\0", 8);
	fake_free(f);
}

static void check_madt(unsigned ncpus)
{
	struct fake *f = fake_new();
	uint64_t rsdp = build(f, ncpus);
	const uint8_t *t = xsdt_find(f, rsdp, "APIC");
	uint32_t len = rd32(t + 4);
	uint8_t *seen = calloc(ncpus, 1);
	unsigned nlapic = 0, nioapic = 0, nnmi = 0;

	assert_non_null(seen);
	assert_int_equal(rd32(t + 36), 0xFEE00000); /* local APIC address */
	for (uint32_t off = 44; off < len;) {
		const uint8_t *e = t + off;
		assert_true(off + 2 <= len && e[1] >= 2 && off + e[1] <= len);
		uint32_t id = 0, flags = 0;
		switch (e[0]) {
		case 0: /* Processor Local APIC */
			assert_int_equal(e[1], 8);
			id = e[3];
			flags = rd32(e + 4);
			assert_int_equal(e[2], id); /* UID == APIC id */
			goto cpu;
		case 9: /* Processor Local x2APIC */
			assert_int_equal(e[1], 16);
			id = rd32(e + 4);
			flags = rd32(e + 8);
			assert_true(id > 254);
		cpu:
			assert_true(flags & 1);  /* enabled */
			assert_true(id < ncpus);
			assert_false(seen[id]);
			seen[id] = 1;
			nlapic++;
			break;
		case 1: /* I/O APIC */
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], ACPI_IOAPIC_ID);
			assert_int_equal(rd32(e + 4), 0xFEC00000);
			assert_int_equal(rd32(e + 8), 0); /* GSI base */
			nioapic++;
			break;
		case 4: /* Local APIC NMI: all processors, LINT1 */
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xFF);
			assert_int_equal(e[5], 1);
			nnmi++;
			break;
		case 10: /* Local x2APIC NMI */
			assert_int_equal(e[1], 12);
			assert_true(ncpus > 255);
			break;
		default:
			/* Notably no type 2, Interrupt Source Override. */
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(nlapic, ncpus);
	assert_int_equal(nioapic, 1);
	assert_int_equal(nnmi, 1);
	free(seen);
	fake_free(f);
}

static void test_madt(void **state)
{
	static const unsigned n[] = { 1, 2, 4, 64, 255, 256, 300 };
	for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++)
		check_madt(n[i]);
}

static void test_errors(void **state)
{
	struct fake *f = fake_new();
	uint64_t rsdp = 0x1234;

	assert_int_equal(acpi_build(&f->gm, 0, &rsdp), -EINVAL);
	/* 16 bytes per x2APIC: 100000 CPUs cannot fit in 128 KiB. */
	assert_int_equal(acpi_build(&f->gm, 100000, &rsdp), -ENOSPC);
	assert_int_equal(rsdp, 0x1234);
	/* Guest memory that does not cover the table area. */
	struct guest_mem small = { 0 };
	assert_int_equal(gm_add_region(&small, 0, 0xE0000, f->ram), 0);
	assert_int_equal(acpi_build(&small, 1, &rsdp), -EFAULT);
	assert_int_equal(rsdp, 0x1234);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsdp),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_madt),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
