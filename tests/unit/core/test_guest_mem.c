/* The guest-memory accessor and the bus (vmm/guest_mem.c, vmm/bus.c):
 * every range rule a hostile address could probe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/bus.h"
#include "vmm/guest_mem.h"

static uint8_t low[0x10000], high[0x1000];

static void setup(struct guest_mem *gm)
{
	memset(gm, 0, sizeof(*gm));
	assert_int_equal(gm_add_region(gm, 0, sizeof(low), low), 0);
	assert_int_equal(gm_add_region(gm, 0x100000000ULL, sizeof(high), high), 0);
}

static void test_ptr_rules(void **state)
{
	struct guest_mem gm;

	setup(&gm);
	assert_ptr_equal(gm_ptr(&gm, 0, 1), low);
	assert_ptr_equal(gm_ptr(&gm, 0xffff, 1), low + 0xffff);
	assert_ptr_equal(gm_ptr(&gm, 0, sizeof(low)), low);
	assert_null(gm_ptr(&gm, 0, sizeof(low) + 1));     /* runs past the end */
	assert_null(gm_ptr(&gm, 0x10000, 1));             /* just outside */
	assert_null(gm_ptr(&gm, 0x100, 0));               /* zero length */
	assert_null(gm_ptr(&gm, UINT64_MAX, 2));          /* wraps */
	assert_null(gm_ptr(&gm, 0xffff, UINT64_MAX));     /* wraps */
	assert_ptr_equal(gm_ptr(&gm, 0x100000fffULL, 1), high + 0xfff);
	assert_null(gm_ptr(&gm, 0xfffffff0ULL, 0x20));    /* into the hole */
	assert_int_equal(gm.ram_size, sizeof(low) + sizeof(high));
}

static void test_overlap_refused(void **state)
{
	struct guest_mem gm;
	static uint8_t more[0x1000];

	setup(&gm);
	assert_int_equal(gm_add_region(&gm, 0x8000, sizeof(more), more), -EINVAL);
	assert_int_equal(gm_add_region(&gm, 0xfffffffffffff000ULL, 0x2000, more), -EINVAL);
	assert_int_equal(gm_add_region(&gm, 0x20000, 0, more), -EINVAL);
}

static void test_read_write(void **state)
{
	struct guest_mem gm;
	uint32_t v = 0xdeadbeef, r = 0;

	setup(&gm);
	assert_int_equal(gm_write(&gm, 0x1234, &v, 4), 0);
	assert_int_equal(gm_read(&gm, 0x1234, &r, 4), 0);
	assert_int_equal(r, v);
	assert_int_equal(gm_write(&gm, 0xfffe, &v, 4), -EFAULT);
	assert_int_equal(gm_read(&gm, 0x200000, &r, 4), -EFAULT);
}

static int hits;
static uint64_t last_off;
static void h(void *o, uint64_t off, uint8_t *d, uint32_t len, bool w)
{
	hits++;
	last_off = off;
	if (!w)
		memset(d, 0x42, len);
}

static void test_bus(void **state)
{
	struct bus b;
	uint8_t d[8];

	bus_init(&b, "pio");
	assert_int_equal(bus_register(&b, 0x3f8, 8, h, NULL, "a"), 0);
	assert_int_equal(bus_register(&b, 0x3fc, 8, h, NULL, "b"), -EEXIST);
	assert_int_equal(bus_register(&b, UINT64_MAX, 2, h, NULL, "c"), -EINVAL);
	assert_int_equal(bus_register(&b, 0x100, 0, h, NULL, "d"), -EINVAL);
	assert_true(bus_dispatch(&b, 0x3fd, d, 1, false));
	assert_int_equal(last_off, 5);
	assert_int_equal(d[0], 0x42);
	/* Straddling the end of the range: not dispatched, reads all-ones. */
	hits = 0;
	assert_false(bus_dispatch(&b, 0x3fe, d, 4, false));
	assert_int_equal(hits, 0);
	assert_int_equal(d[0], 0xff);
	assert_false(bus_dispatch(&b, 0x80, d, 1, true));
	assert_false(bus_dispatch(&b, UINT64_MAX, d, 4, false));
	assert_int_equal(b.unhandled, 3);
	assert_int_equal(bus_unregister(&b, 0x3f8, NULL), 0);
	assert_false(bus_dispatch(&b, 0x3f8, d, 1, false));
	bus_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ptr_rules),
		cmocka_unit_test(test_overlap_refused),
		cmocka_unit_test(test_read_write),
		cmocka_unit_test(test_bus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
