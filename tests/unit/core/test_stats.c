/* --stats counters (vmm/stats.c): per-port exit counts, the top-12 list
 * with owning device names, and that counting is off without stats_init. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/stats.h"
#include "vmm/vm.h"

static void nop(void *o, uint64_t a, uint8_t *d, uint32_t l, bool w)
{
	(void)o; (void)a; (void)d; (void)l; (void)w;
}

/* Run stats_print with stderr captured; returns a malloc'd string. */
static char *print_captured(struct vm *vm)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	char *buf = calloc(1, 8192);

	assert_non_null(tmp);
	assert_non_null(buf);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	stats_print(vm, 0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	assert_true(fread(buf, 1, 8191, tmp) > 0);
	fclose(tmp);
	return buf;
}

static struct vm *new_vm(void)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	assert_non_null(vm);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	assert_int_equal(bus_register(&vm->pio, 0x3f8, 8, nop, NULL, "serial"), 0);
	assert_int_equal(bus_register(&vm->pio, 0xcf8, 4, nop, NULL, "pci-cf8"), 0);
	return vm;
}

static void free_vm(struct vm *vm)
{
	stats_free(vm);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	free(vm);
}

static void test_top_ports(void **state)
{
	struct vm *vm = new_vm();
	char *out, *line, *eol;

	(void)state;
	stats_init(vm);
	assert_non_null(vm->stats.pio_port_exits);
	for (int i = 0; i < 3; i++)
		stats_pio_exit(vm, 0x2e);            /* nobody's port */
	for (int i = 0; i < 7; i++)
		stats_pio_exit(vm, 0x3fd);           /* inside serial's range */
	for (int i = 0; i < 50; i++)
		stats_pio_exit(vm, 0xcf8);
	for (unsigned p = 0x100; p < 0x10e; p++)  /* 14 ports, one exit each */
		stats_pio_exit(vm, (uint16_t)p);
	stats_pio_exit(vm, 0xffff);               /* the last port counts too */
	for (int i = 0; i < 2; i++)
		stats_pio_exit(vm, 0xffff);

	out = print_captured(vm);
	line = strstr(out, "pio exits by port");
	assert_non_null(line);
	eol = strchr(line, '\n');
	assert_non_null(eol);
	*eol = 0;
	/* Most exits first, ties in port order, 12 entries of 18 ports. */
	assert_non_null(strstr(line, "(18 ports used): 0xcf8(pci-cf8)=50 0x3fd(serial)=7 "
				     "0x2e(unhandled)=3 0xffff(unhandled)=3 0x100(unhandled)=1 "));
	assert_non_null(strstr(line, " 0x107(unhandled)=1\r"));
	assert_null(strstr(line, "0x108"));
	/* The first PIO exit is reported with its port, then the memory line. */
	assert_non_null(strstr(out, "first pio exit (port 0x2e)"));
	assert_non_null(strstr(eol + 1, "memory: peak RSS"));
	free(out);
	free_vm(vm);
}

static void test_off_without_init(void **state)
{
	struct vm *vm = new_vm();
	char *out;

	(void)state;
	stats_pio_exit(vm, 0x3f8);                /* no counters: a no-op */
	assert_null(vm->stats.pio_port_exits);
	out = print_captured(vm);
	assert_non_null(strstr(out, "exits total 0"));
	assert_null(strstr(out, "by port"));
	free(out);
	free_vm(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_top_ports),
		cmocka_unit_test(test_off_without_init),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
