/* PCI host bridge (devices/pci.c): configuration mechanism #1 through the
 * real PIO bus, BAR sizing and relocation the way Linux does them, and the
 * MMIO bus mappings that follow.  No KVM: a struct vm with just buses and
 * a guest memory map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "vmm/vm.h"

struct ctx {
	struct vm vm;
	struct pci_host h;
	struct pci_dev d, d64;
	int hits;
	int maps, unmaps;
	uint64_t last_map;
	char ram[64];
};

static void bar_fn(void *opaque, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	struct ctx *x = opaque;

	x->hits++;
	if (!is_write)
		memset(data, 0x42, len);
}

static void bar_map(struct pci_dev *d, int i, uint64_t addr, bool map)
{
	struct ctx *x = d->opaque;

	if (map) {
		x->maps++;
		x->last_map = addr;
	} else {
		x->unmaps++;
	}
}

static void outl(struct ctx *x, uint16_t port, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	bus_dispatch(&x->vm.pio, port, b, 4, true);
}

static uint32_t inl(struct ctx *x, uint16_t port)
{
	uint8_t b[4];

	if (!bus_dispatch(&x->vm.pio, port, b, 4, false))
		return 0xffffffff;
	return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint32_t cfg_rd(struct ctx *x, int slot, int fn, int reg)
{
	outl(x, 0xcf8, 0x80000000u | slot << 11 | fn << 8 | reg);
	return inl(x, 0xcfc);
}

static void cfg_wr(struct ctx *x, int slot, int reg, uint32_t v)
{
	outl(x, 0xcf8, 0x80000000u | slot << 11 | reg);
	outl(x, 0xcfc, v);
}

static bool mmio_hit(struct ctx *x, uint64_t a)
{
	uint8_t b[4];
	int before = x->hits;

	return bus_dispatch(&x->vm.mmio, a, b, 4, false) && x->hits == before + 1;
}

static int setup(void **state)
{
	struct ctx *x = calloc(1, sizeof(*x));

	bus_init(&x->vm.pio, "pio");
	bus_init(&x->vm.mmio, "mmio");
	/* 512 MiB of "RAM" (never touched) */
	gm_add_region(&x->vm.mem, 0, 512ULL << 20, x->ram);
	assert_int_equal(pci_host_setup(&x->h, &x->vm), 0);
	pci_dev_init(&x->d, "test", 0x1af4, 0x1042, 0x018000, 0x1af4, 0x40);
	x->d.opaque = x;
	x->d.bar_map = bar_map;
	pci_dev_set_bar(&x->d, 0, 0x8000, false, false, bar_fn, x);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *x = *state;

	pci_host_teardown(&x->h);
	free(x);
	return 0;
}

static void test_conf1_probe(void **state)
{
	struct ctx *x = *state;
	uint8_t b = 1;

	/* Linux pci_check_type1: outb(1, 0xCFB) must not disturb the latch */
	outl(x, 0xcf8, 0);
	bus_dispatch(&x->vm.pio, 0xcfb, &b, 1, true);
	assert_int_equal(inl(x, 0xcf8), 0);
	outl(x, 0xcf8, 0x80000000u);
	assert_int_equal(inl(x, 0xcf8), 0x80000000u);
	/* host bridge at 00.0, class 06.00 */
	assert_int_equal(cfg_rd(x, 0, 0, 0x08) >> 16, 0x0600);
	assert_int_not_equal(cfg_rd(x, 0, 0, 0) & 0xffff, 0xffff);
	/* empty slot, function 1, bus 1, enable bit clear: all ones */
	assert_int_equal(cfg_rd(x, 5, 0, 0), 0xffffffff);
	assert_int_equal(cfg_rd(x, 0, 1, 0), 0xffffffff);
	outl(x, 0xcf8, 0x80010000u);
	assert_int_equal(inl(x, 0xcfc), 0xffffffff);
	outl(x, 0xcf8, 0x00000000u);
	assert_int_equal(inl(x, 0xcfc), 0xffffffff);
}

static void test_add_device_maps_bar(void **state)
{
	struct ctx *x = *state;
	uint32_t bar;

	assert_int_equal(pci_add_device(&x->h, &x->d), 0);
	assert_int_equal(x->d.slot, 1);
	assert_int_equal(cfg_rd(x, 1, 0, 0), 0x10421af4);
	bar = cfg_rd(x, 1, 0, 0x10);
	assert_true(bar >= PCI_MMIO_START && bar < PCI_MMIO_END);
	assert_int_equal(bar % 0x8000, 0);
	assert_true(cfg_rd(x, 1, 0, 0x04) & PCI_COMMAND_MEMORY);
	assert_true(mmio_hit(x, bar));
	assert_true(mmio_hit(x, bar + 0x7ffc));
	assert_false(mmio_hit(x, bar + 0x8000));
	assert_int_equal(x->maps, 1);
	assert_int_equal(x->last_map, bar);
}

/* pci_read_bases: decode off, write ~0, read size, restore, decode on. */
static void test_bar_sizing_linux_style(void **state)
{
	struct ctx *x = *state;
	uint32_t bar, cmd;

	assert_int_equal(pci_add_device(&x->h, &x->d), 0);
	bar = cfg_rd(x, 1, 0, 0x10);
	cmd = cfg_rd(x, 1, 0, 0x04) & 0xffff;
	cfg_wr(x, 1, 0x04, cmd & ~PCI_COMMAND_MEMORY);
	assert_false(mmio_hit(x, bar));
	cfg_wr(x, 1, 0x10, 0xffffffff);
	assert_int_equal(cfg_rd(x, 1, 0, 0x10), 0xffff8000); /* 32 KiB, 32-bit mem */
	cfg_wr(x, 1, 0x10, bar);
	cfg_wr(x, 1, 0x04, cmd);
	assert_true(mmio_hit(x, bar));
	assert_int_equal(x->last_map, bar);
}

/* Sizing with decode left on must not map the BAR just below 4 GiB. */
static void test_bar_sizing_decode_on(void **state)
{
	struct ctx *x = *state;
	uint32_t bar;

	assert_int_equal(pci_add_device(&x->h, &x->d), 0);
	bar = cfg_rd(x, 1, 0, 0x10);
	cfg_wr(x, 1, 0x10, 0xffffffff);
	assert_false(mmio_hit(x, 0xffff8000));
	assert_false(mmio_hit(x, bar));
	cfg_wr(x, 1, 0x10, bar);
	assert_true(mmio_hit(x, bar));
}

static void test_bar_relocation(void **state)
{
	struct ctx *x = *state;
	uint32_t bar;

	assert_int_equal(pci_add_device(&x->h, &x->d), 0);
	bar = cfg_rd(x, 1, 0, 0x10);
	cfg_wr(x, 1, 0x10, 0xd0000000);
	assert_int_equal(cfg_rd(x, 1, 0, 0x10), 0xd0000000);
	assert_false(mmio_hit(x, bar));
	assert_true(mmio_hit(x, 0xd0000000));
	assert_int_equal(x->last_map, 0xd0000000);
	assert_int_equal(x->unmaps, 1);
	/* unaligned address: low bits dropped */
	cfg_wr(x, 1, 0x10, 0xd0001234);
	assert_int_equal(cfg_rd(x, 1, 0, 0x10), 0xd0000000);
	/* into RAM, or over the IOAPIC: not decoded */
	cfg_wr(x, 1, 0x10, 0x00100000);
	assert_false(mmio_hit(x, 0x00100000));
	assert_false(mmio_hit(x, 0xd0000000));
	cfg_wr(x, 1, 0x10, (uint32_t)IOAPIC_ADDR);
	assert_false(mmio_hit(x, IOAPIC_ADDR));
	/* back to a sane place */
	cfg_wr(x, 1, 0x10, 0xe0000000);
	assert_true(mmio_hit(x, 0xe0000000));
}

static void test_bar_overlap_refused(void **state)
{
	struct ctx *x = *state;
	struct pci_dev d2;
	uint32_t b1;

	pci_dev_init(&d2, "test2", 0x1af4, 0x1041, 0x020000, 0x1af4, 0x40);
	d2.opaque = x;
	pci_dev_set_bar(&d2, 0, 0x8000, false, false, bar_fn, x);
	assert_int_equal(pci_add_device(&x->h, &x->d), 0);
	assert_int_equal(pci_add_device(&x->h, &d2), 0);
	b1 = cfg_rd(x, 1, 0, 0x10);
	assert_int_not_equal(cfg_rd(x, 2, 0, 0x10), b1);
	/* guest moves device 2 on top of device 1: it stays unmapped */
	cfg_wr(x, 2, 0x10, b1);
	assert_true(mmio_hit(x, b1)); /* still device 1 */
	pci_remove_device(&x->h, &d2);
	assert_int_equal(cfg_rd(x, 2, 0, 0), 0xffffffff);
}

static void test_bar64_sizing(void **state)
{
	struct ctx *x = *state;
	struct pci_dev *d = &x->d64;

	pci_dev_init(d, "test64", 0x1af4, 0x1041, 0x020000, 0x1af4, 0x40);
	d->opaque = x;
	pci_dev_set_bar(d, 2, 0x4000, false, true, bar_fn, x);
	assert_int_equal(pci_add_device(&x->h, d), 0);
	uint32_t lo = cfg_rd(x, 1, 0, 0x18);
	assert_int_equal(lo & 0xf, PCI_BAR_MEM_64);
	assert_int_equal(cfg_rd(x, 1, 0, 0x1c), 0);
	cfg_wr(x, 1, 0x04, 0);
	cfg_wr(x, 1, 0x18, 0xffffffff);
	cfg_wr(x, 1, 0x1c, 0xffffffff);
	assert_int_equal(cfg_rd(x, 1, 0, 0x18), 0xffffc004);
	assert_int_equal(cfg_rd(x, 1, 0, 0x1c), 0xffffffff);
	/* place it above 4 GiB (outside RAM) */
	cfg_wr(x, 1, 0x18, 0x00000000);
	cfg_wr(x, 1, 0x1c, 0x00000010);
	cfg_wr(x, 1, 0x04, PCI_COMMAND_MEMORY);
	assert_true(mmio_hit(x, 0x1000000000ULL));
}

static void test_caps_and_readonly(void **state)
{
	struct ctx *x = *state;
	uint8_t c1[4] = { 0x09, 0xaa, 4, 0 }, c2[8] = { 0x11, 0, 0, 0 };
	uint8_t o1 = pci_dev_add_cap(&x->d, c1, 4), o2 = pci_dev_add_cap(&x->d, c2, 8);

	assert_int_equal(pci_add_device(&x->h, &x->d), 0);
	assert_true(cfg_rd(x, 1, 0, 0x04) >> 16 & PCI_STATUS_CAP_LIST);
	assert_int_equal(cfg_rd(x, 1, 0, 0x34) & 0xff, o1);
	assert_int_equal(cfg_rd(x, 1, 0, o1) & 0xffff, 0x09 | o2 << 8);
	assert_int_equal(cfg_rd(x, 1, 0, o2) & 0xffff, 0x11);
	/* ids are read-only */
	cfg_wr(x, 1, 0x00, 0x12345678);
	assert_int_equal(cfg_rd(x, 1, 0, 0), 0x10421af4);
	/* interrupt line is the OS's scratch byte */
	cfg_wr(x, 1, 0x3c, 0x0b);
	assert_int_equal(cfg_rd(x, 1, 0, 0x3c) & 0xff, 0x0b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_conf1_probe),
		T(test_add_device_maps_bar),
		T(test_bar_sizing_linux_style),
		T(test_bar_sizing_decode_on),
		T(test_bar_relocation),
		T(test_bar_overlap_refused),
		T(test_bar64_sizing),
		T(test_caps_and_readonly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
