/* Check the generated tables with the real ACPICA tools (acpica-tools):
 *  - `iasl -d` disassembles FACP, APIC, XSDT and DSDT without errors or
 *    checksum complaints, and decodes the fields we meant to set;
 *  - the DSDT is byte-identical to what `iasl` compiles from the ASL
 *    written in firmware/acpi_dsdt.c's header comment;
 *  - `acpiexec` loads the DSDT into ACPICA's interpreter (the same code as
 *    Linux's) and evaluates \_S5 and the _CRS of PCI0 and COM1.
 * The tools are found on PATH, or through $IASL / $ACPIEXEC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "firmware/acpi.h"
#include "vmm/guest_mem.h"
#include "vmm/vm.h"

#define RAM_SIZE (1u << 20)
#define NCPUS 4

static char dir[] = "/tmp/minivmm-acpi-XXXXXX";
static uint8_t *ram;
static const char *iasl, *acpiexec;

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void write_file(const char *name, const void *p, size_t n)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* The whole file, NUL-terminated, with runs of blanks collapsed to one
 * space so that the column alignment of iasl's output does not matter. */
static char *read_text(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("%s not produced", path);
	char *s = calloc(1, 1 << 20);
	assert_non_null(s);
	size_t n = fread(s, 1, (1 << 20) - 1, f);
	fclose(f);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if ((s[i] == ' ' || s[i] == '\t') && o > 0 && s[o - 1] == ' ')
			continue;
		s[o++] = s[i] == '\t' ? ' ' : s[i];
	}
	s[o] = 0;
	return s;
}

static size_t read_bin(const char *name, uint8_t *buf, size_t cap)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("%s not produced", path);
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/* Run a shell command in dir with output to `log`; returns exit status. */
static int run(const char *log, const char *fmt, ...)
{
	char cmd[1024], full[1400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "cd '%s' && %s >%s 2>&1", dir, cmd, log);
	int st = system(full);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect(const char *text, const char *what, const char *file)
{
	if (!strstr(text, what))
		fail_msg("%s: expected \"%s\"", file, what);
}

static void reject(const char *text, const char *what, const char *file)
{
	if (strstr(text, what))
		fail_msg("%s: unexpected \"%s\"", file, what);
}

static const uint8_t *dsdt; /* in ram */

static int setup(void **state)
{
	struct guest_mem gm = { 0 };
	uint64_t rsdp;

	iasl = getenv("IASL") ? getenv("IASL") : "iasl";
	acpiexec = getenv("ACPIEXEC") ? getenv("ACPIEXEC") : "acpiexec";
	if (!mkdtemp(dir))
		return -1;
	ram = calloc(1, RAM_SIZE);
	if (!ram || gm_add_region(&gm, 0, RAM_SIZE, ram) ||
	    acpi_build(&gm, NCPUS, &rsdp))
		return -1;
	/* Dump every table to <sig>.dat (what acpixtract would produce). */
	const uint8_t *x = ram + rd64(ram + rsdp + 24);
	write_file("xsdt.dat", x, rd32(x + 4));
	for (uint32_t i = 0; i < (rd32(x + 4) - 36) / 8; i++) {
		const uint8_t *t = ram + rd64(x + 36 + 8 * i);
		char name[16];
		snprintf(name, sizeof(name), "%c%c%c%c.dat", t[0] | 0x20,
			 t[1] | 0x20, t[2] | 0x20, t[3] | 0x20);
		write_file(name, t, rd32(t + 4));
		if (memcmp(t, "FACP", 4) == 0)
			dsdt = ram + rd64(t + 140);
	}
	if (!dsdt)
		return -1;
	write_file("dsdt.dat", dsdt, rd32(dsdt + 4));
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return -1;
	free(ram);
	return 0;
}

static void tool_present(const char *tool)
{
	if (run("which.log", "command -v '%s'", tool) != 0)
		fail_msg("%s not found: run scripts/install-deps (acpica-tools)", tool);
}

/* iasl's own messages about a table: none may be a warning or error. */
static void disassemble(const char *table, char **dsl)
{
	char dat[32], out[32], log[32];
	snprintf(dat, sizeof(dat), "%s.dat", table);
	snprintf(out, sizeof(out), "%s.dsl", table);
	snprintf(log, sizeof(log), "%s.log", table);
	assert_int_equal(run(log, "'%s' -d %s", iasl, dat), 0);
	char *l = read_text(log);
	reject(l, "Warning", log);
	reject(l, "Error", log);
	reject(l, "does not contain a valid ACPI table", log);
	free(l);
	*dsl = read_text(out);
	reject(*dsl, "Incorrect checksum", out);
	reject(*dsl, "Invalid", out);
}

static void test_iasl_fadt(void **state)
{
	char *s;
	tool_present(iasl);
	disassemble("facp", &s);
	expect(s, "Revision : 06", "facp.dsl");
	expect(s, "Hardware Reduced (V5) : 1", "facp.dsl");
	expect(s, "Reset Register Supported (V2) : 1", "facp.dsl");
	expect(s, "MSI Not Supported (V4) : 0", "facp.dsl");
	expect(s, "8042 Present on ports 60/64 (V2) : 0", "facp.dsl");
	expect(s, "VGA Not Present (V4) : 1", "facp.dsl");
	expect(s, "CMOS RTC Not Present (V5) : 0", "facp.dsl");
	expect(s, "Reset Register : [Generic Address Structure]", "facp.dsl");
	expect(s, "Value to cause reset : 0F", "facp.dsl");
	expect(s, "Sleep Control Register : [Generic Address Structure]", "facp.dsl");
	expect(s, "Sleep Status Register : [Generic Address Structure]", "facp.dsl");
	expect(s, "Address : 0000000000000600", "facp.dsl");
	expect(s, "Address : 0000000000000601", "facp.dsl");
	expect(s, "Address : 0000000000000602", "facp.dsl");
	free(s);
}

static void test_iasl_madt(void **state)
{
	char *s;
	tool_present(iasl);
	disassemble("apic", &s);
	int n = 0;
	for (char *p = s; (p = strstr(p, "[Processor Local APIC]")); p++)
		n++;
	assert_int_equal(n, NCPUS);
	expect(s, "Local Apic ID : 03", "apic.dsl");
	expect(s, "Processor Enabled : 1", "apic.dsl");
	reject(s, "Processor Enabled : 0", "apic.dsl");
	expect(s, "[I/O APIC]", "apic.dsl");
	expect(s, "Address : FEC00000", "apic.dsl");
	expect(s, "Interrupt Input LINT : 01", "apic.dsl");
	reject(s, "Interrupt Source Override", "apic.dsl");
	free(s);
	disassemble("xsdt", &s);
	expect(s, "ACPI Table Address 1 :", "xsdt.dsl");
	free(s);
}

/* 300 vCPUs: APIC ids 0-254 as Local APIC entries, 255-299 as x2APIC
 * entries plus an x2APIC NMI entry (§5.2.12.12-13), as iasl decodes them. */
static void test_iasl_madt_x2apic(void **state)
{
	struct guest_mem gm = { 0 };
	uint8_t *mem = calloc(1, RAM_SIZE);
	uint64_t rsdp;
	char *s;

	tool_present(iasl);
	assert_non_null(mem);
	assert_int_equal(gm_add_region(&gm, 0, RAM_SIZE, mem), 0);
	assert_int_equal(acpi_build(&gm, 300, &rsdp), 0);
	const uint8_t *x = mem + rd64(mem + rsdp + 24);
	const uint8_t *t = NULL;
	for (uint32_t i = 0; i < (rd32(x + 4) - 36) / 8; i++)
		if (memcmp(mem + rd64(x + 36 + 8 * i), "APIC", 4) == 0)
			t = mem + rd64(x + 36 + 8 * i);
	assert_non_null(t);
	write_file("apic300.dat", t, rd32(t + 4));
	free(mem);

	disassemble("apic300", &s);
	int nl = 0, nx = 0;
	for (char *p = s; (p = strstr(p, "[Processor Local APIC]")); p++)
		nl++;
	for (char *p = s; (p = strstr(p, "[Processor Local x2APIC]")); p++)
		nx++;
	assert_int_equal(nl, 255);
	assert_int_equal(nx, 45);
	expect(s, "Processor x2Apic ID : 0000012B", "apic300.dsl"); /* id 299 */
	expect(s, "[Local x2APIC NMI]", "apic300.dsl");
	free(s);
}

static void test_iasl_dsdt(void **state)
{
	char *s;
	tool_present(iasl);
	disassemble("dsdt", &s);
	expect(s, "Name (\\_S5, Package (0x04)", "dsdt.dsl");
	expect(s, "0x05,", "dsdt.dsl");
	expect(s, "Device (PCI0)", "dsdt.dsl");
	expect(s, "EisaId (\"PNP0A08\")", "dsdt.dsl");
	expect(s, "EisaId (\"PNP0A03\")", "dsdt.dsl");
	expect(s, "WordBusNumber (ResourceProducer", "dsdt.dsl");
	expect(s, "0x0CF8, // Range Minimum", "dsdt.dsl");
	expect(s, "0x0D00, // Range Minimum", "dsdt.dsl");
	expect(s, "0xC0000000, // Range Minimum", "dsdt.dsl");
	expect(s, "0xFEBFFFFF, // Range Maximum", "dsdt.dsl");
	expect(s, "EisaId (\"PNP0501\")", "dsdt.dsl");
	expect(s, "IRQNoFlags ()\n {4}", "dsdt.dsl");
	expect(s, "EisaId (\"PNP0B00\")", "dsdt.dsl");
	free(s);
}

/* Our AML must equal iasl's for the same ASL.  -on keeps "\_S5" as
 * written instead of shortening it to "_S5" (both mean the same at the
 * root; we emit the explicit root prefix). */
static void test_iasl_compile_matches(void **state)
{
	char asl[4096];
	tool_present(iasl);
	snprintf(asl, sizeof(asl),
		"DefinitionBlock (\"\", \"DSDT\", 2, \"MNVMM \", \"MINIVMM \", 1)\n"
		"{\n"
		"  Name (\\_S5, Package (4) { 5, 0, 0, 0 })\n"
		"  Scope (\\_SB) {\n"
		"    Device (PCI0) {\n"
		"      Name (_HID, EisaId (\"PNP0A08\"))\n"
		"      Name (_CID, EisaId (\"PNP0A03\"))\n"
		"      Name (_UID, 0)\n"
		"      Name (_SEG, 0)\n"
		"      Name (_BBN, 0)\n"
		"      Name (_CRS, ResourceTemplate () {\n"
		"        WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0, 0, 1)\n"
		"        IO (Decode16, 0xCF8, 0xCF8, 1, 8)\n"
		"        WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,\n"
		"                0, 0xD00, 0xFFFF, 0, 0xF300)\n"
		"        DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable,\n"
		"                     ReadWrite, 0, 0x%llX, 0x%llX, 0, 0x%llX)\n"
		"      })\n"
		"    }\n"
		"    Device (COM1) {\n"
		"      Name (_HID, EisaId (\"PNP0501\"))\n"
		"      Name (_UID, 1)\n"
		"      Name (_CRS, ResourceTemplate () {\n"
		"        IO (Decode16, 0x3F8, 0x3F8, 1, 8)\n"
		"        IRQNoFlags () {4}\n"
		"      })\n"
		"    }\n"
		"    Device (RTC) {\n"
		"      Name (_HID, EisaId (\"PNP0B00\"))\n"
		"      Name (_CRS, ResourceTemplate () {\n"
		"        IO (Decode16, 0x70, 0x70, 1, 2)\n"
		"      })\n"
		"    }\n"
		"  }\n"
		"}\n",
		(unsigned long long)PCI_MMIO_START, (unsigned long long)PCI_MMIO_END - 1,
		(unsigned long long)(PCI_MMIO_END - PCI_MMIO_START));
	write_file("ref.asl", asl, strlen(asl));
	assert_int_equal(run("ref.log", "'%s' -on -p ref ref.asl", iasl), 0);

	static uint8_t ref[65536];
	size_t n = read_bin("ref.aml", ref, sizeof(ref));
	uint32_t len = rd32(dsdt + 4);
	assert_true(n > 36);
	assert_int_equal(n, len);
	/* Skip the header: compiler id/version and checksum differ. */
	assert_memory_equal(ref + 36, dsdt + 36, len - 36);
}

static void test_acpiexec(void **state)
{
	tool_present(acpiexec);
	assert_int_equal(run("exec.log",
		"'%s' -b 'evaluate \\_S5; evaluate \\_SB.PCI0._CRS; evaluate \\_SB.PCI0._HID; evaluate \\_SB.COM1._CRS' dsdt.dat",
		acpiexec), 0);
	char *s = read_text("exec.log");
	reject(s, "Error", "exec.log");
	reject(s, "AE_", "exec.log");
	expect(s, "[Package] Contains 4 Elements:\n [Integer] = 0000000000000005", "exec.log");
	/* PCI0._CRS: 16 + 8 + 16 + 26 + 2 = 68 = 0x44 bytes. */
	expect(s, "[Buffer] Length 44", "exec.log");
	/* EisaId("PNP0A08") as an integer: 'P','N','P' and 0x0A08. */
	expect(s, "[Integer] = 00000000080AD041", "exec.log");
	/* COM1: IO 0x3F8/8, IRQ mask 1 << 4, end tag. */
	expect(s, "[Buffer] Length 0D", "exec.log"); /* acpiexec prints hex */
	expect(s, "47 01 F8 03 F8 03 01 08 22 10 00 79 00", "exec.log");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iasl_fadt),
		cmocka_unit_test(test_iasl_madt),
		cmocka_unit_test(test_iasl_madt_x2apic),
		cmocka_unit_test(test_iasl_dsdt),
		cmocka_unit_test(test_iasl_compile_matches),
		cmocka_unit_test(test_acpiexec),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
