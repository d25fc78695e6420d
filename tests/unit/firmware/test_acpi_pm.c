/* devices/acpi_pm.c with the bus and vm_request_exit() replaced by
 * recording fakes: the writes Linux's ACPICA makes for poweroff and reboot
 * (§4.8.3.7 SLP_TYP << 2 | SLP_EN; RESET_VALUE to RESET_REG) must end the VM
 * with the right reason, everything else must be ignored. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/acpi_pm.h"
#include "firmware/acpi.h"
#include "vmm/bus.h"
#include "vmm/vm.h"

/* ---- fakes ---- */
static struct {
	uint64_t base, len;
	bus_handler_fn fn;
	void *opaque;
	int registered;
	int fail;
} fake_bus;
static int exit_calls;
static enum vm_exit last_exit;

int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_handler_fn fn,
		 void *opaque, const char *name)
{
	if (fake_bus.fail)
		return fake_bus.fail;
	fake_bus.base = base;
	fake_bus.len = len;
	fake_bus.fn = fn;
	fake_bus.opaque = opaque;
	fake_bus.registered = 1;
	return 0;
}

int bus_unregister(struct bus *b, uint64_t base, void *opaque)
{
	assert_int_equal(base, fake_bus.base);
	assert_ptr_equal(opaque, fake_bus.opaque);
	fake_bus.registered = 0;
	return 0;
}

void vm_request_exit(struct vm *vm, enum vm_exit why)
{
	exit_calls++;
	last_exit = why;
}

/* ---- helpers ---- */
static struct vm vm;

static int setup(void **state)
{
	memset(&fake_bus, 0, sizeof(fake_bus));
	memset(&vm, 0, sizeof(vm));
	exit_calls = 0;
	last_exit = VM_EXIT_NONE;
	return acpi_pm_init(&vm);
}

static int teardown(void **state)
{
	acpi_pm_exit(&vm);
	assert_null(vm.acpi_pm);
	assert_int_equal(fake_bus.registered, 0);
	return 0;
}

/* An access the way the bus would dispatch it: port -> range offset. */
static void outb(uint16_t port, uint8_t v)
{
	assert_true(port >= fake_bus.base && port < fake_bus.base + fake_bus.len);
	fake_bus.fn(fake_bus.opaque, port - fake_bus.base, &v, 1, true);
}

static uint8_t inb(uint16_t port)
{
	uint8_t v = 0xEE;
	fake_bus.fn(fake_bus.opaque, port - fake_bus.base, &v, 1, false);
	return v;
}

/* ---- tests ---- */
static void test_ports(void **state)
{
	assert_int_equal(fake_bus.registered, 1);
	assert_non_null(vm.acpi_pm);
	assert_true(ACPI_SLEEP_CTL_PORT >= fake_bus.base &&
		    ACPI_SLEEP_CTL_PORT < fake_bus.base + fake_bus.len);
	assert_true(ACPI_SLEEP_STS_PORT >= fake_bus.base &&
		    ACPI_SLEEP_STS_PORT < fake_bus.base + fake_bus.len);
	assert_true(ACPI_RESET_PORT >= fake_bus.base &&
		    ACPI_RESET_PORT < fake_bus.base + fake_bus.len);
	/* Sleep status reads WAK_STS = 0 (ACPICA polls it after SLP_EN). */
	assert_int_equal(inb(ACPI_SLEEP_STS_PORT), 0);
	assert_int_equal(inb(ACPI_SLEEP_CTL_PORT), 0);
}

static void test_poweroff(void **state)
{
	/* ACPICA first clears WAK_STS, then writes SLP_TYP=5 without and with
	 * SLP_EN (acpi_hw_extended_sleep): only the latter powers off. */
	outb(ACPI_SLEEP_STS_PORT, 0x80);
	outb(ACPI_SLEEP_CTL_PORT, 5 << 2);
	assert_int_equal(exit_calls, 0);
	outb(ACPI_SLEEP_CTL_PORT, (5 << 2) | 0x20);
	assert_int_equal(exit_calls, 1);
	assert_int_equal(last_exit, VM_EXIT_POWEROFF);
}

static void test_other_sleep_states_ignored(void **state)
{
	for (unsigned typ = 0; typ < 8; typ++) {
		if (typ == 5)
			continue;
		outb(ACPI_SLEEP_CTL_PORT, (uint8_t)(typ << 2 | 0x20));
	}
	outb(ACPI_SLEEP_CTL_PORT, 0xFF & ~0x20); /* everything but SLP_EN */
	assert_int_equal(exit_calls, 0);
}

static void test_reset(void **state)
{
	outb(ACPI_RESET_PORT, 0x00);
	outb(ACPI_RESET_PORT, ACPI_RESET_VALUE ^ 1);
	assert_int_equal(exit_calls, 0);
	outb(ACPI_RESET_PORT, ACPI_RESET_VALUE);
	assert_int_equal(exit_calls, 1);
	assert_int_equal(last_exit, VM_EXIT_REBOOT);
}

static void test_wide_access(void **state)
{
	/* A 2-byte write at the base reaches control (byte 0) and status. */
	uint8_t d[2] = { (5 << 2) | 0x20, 0x80 };
	fake_bus.fn(fake_bus.opaque, 0, d, 2, true);
	assert_int_equal(exit_calls, 1);
	assert_int_equal(last_exit, VM_EXIT_POWEROFF);
	uint8_t r[3] = { 0xEE, 0xEE, 0xEE };
	fake_bus.fn(fake_bus.opaque, 0, r, 3, false);
	assert_int_equal(r[0] | r[1] | r[2], 0);
}

static void test_init_failure(void **state)
{
	struct vm v2;
	memset(&v2, 0, sizeof(v2));
	fake_bus.fail = -EEXIST;
	assert_int_equal(acpi_pm_init(&v2), -EEXIST);
	assert_null(v2.acpi_pm);
	fake_bus.fail = 0;
	acpi_pm_exit(&v2); /* nothing to do, must not crash */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poweroff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_sleep_states_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wide_access, setup, teardown),
		cmocka_unit_test(test_init_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
