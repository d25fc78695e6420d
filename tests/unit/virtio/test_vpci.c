/* virtio-pci transport (virtio/pci.c) without KVM: the vm_* interrupt and
 * ioeventfd functions are replaced by recorders below, and the test plays
 * the driver through the BAR and config space like Linux's virtio_pci. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/pci.h"
#include "virtio/pci.h"
#include "vmm/vm.h"
#include "vq_driver.h"

/* ---- recorders standing in for vmm/vm_irq.c ---- */
static struct { uint64_t addr; uint32_t data; bool used; } routes[64];
static int ioev_assigned, ioev_last_len;
static uint64_t ioev_last_addr;
static int signal_msi_calls;
static int route_updates;

int vm_msi_route_add(struct vm *vm, uint64_t addr, uint32_t data, uint32_t *gsi)
{
	for (uint32_t i = 0; i < 64; i++)
		if (!routes[i].used) {
			routes[i].used = true;
			routes[i].addr = addr;
			routes[i].data = data;
			*gsi = i;
			return 0;
		}
	return -ENOSPC;
}
int vm_msi_route_update(struct vm *vm, uint32_t gsi, uint64_t addr, uint32_t data)
{
	route_updates++;
	routes[gsi].addr = addr;
	routes[gsi].data = data;
	return 0;
}
int vm_msi_route_del(struct vm *vm, uint32_t gsi)
{
	routes[gsi].used = false;
	return 0;
}
static int irqfd_attached;
int vm_irqfd(struct vm *vm, int efd, uint32_t gsi, bool assign)
{
	irqfd_attached += assign ? 1 : -1;
	return 0;
}
int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	signal_msi_calls++;
	return 0;
}
int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, bool pio, bool match,
		 uint64_t datamatch, int efd, bool assign)
{
	ioev_assigned += assign ? 1 : -1;
	if (assign) {
		ioev_last_addr = addr;
		ioev_last_len = (int)len;
	}
	return 0;
}

/* ---- a dummy device ---- */
struct ctx {
	struct vm vm;
	struct pci_host h;
	struct virtio_pci v;
	struct fake_vm fm;
	struct vq_driver d;
	int starts, stops, start_ret;
	uint64_t bar;
};

static void dcfg_read(void *o, uint32_t off, uint8_t *data, uint32_t len) { memset(data, 0x11, len); }
static void dcfg_write(void *o, uint32_t off, const uint8_t *data, uint32_t len) {}
static int dstart(void *o) { struct ctx *x = o; x->starts++; return x->start_ret; }
static void dstop(void *o) { struct ctx *x = o; x->stops++; }
static const struct virtio_dev_ops ops = { dcfg_read, dcfg_write, dstart, dstop };

static void w(struct ctx *x, uint32_t off, uint32_t len, uint64_t val)
{
	uint8_t b[8];
	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(val >> (8 * i));
	assert_true(bus_dispatch(&x->vm.mmio, x->bar + off, b, len, true));
}

static uint64_t r(struct ctx *x, uint32_t off, uint32_t len)
{
	uint8_t b[8];
	uint64_t v = 0;
	assert_true(bus_dispatch(&x->vm.mmio, x->bar + off, b, len, false));
	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static void cfgw16(struct ctx *x, uint32_t off, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	pci_cfg_access(&x->h, (uint8_t)x->v.pdev.slot, 0, off, b, 2, true);
}

static uint64_t efd_count(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static int setup(void **state)
{
	struct ctx *x = calloc(1, sizeof(*x));

	memset(routes, 0, sizeof(routes));
	ioev_assigned = signal_msi_calls = route_updates = irqfd_attached = 0;
	fake_vm_init(&x->fm);
	x->vm.mem = x->fm.gm;
	bus_init(&x->vm.pio, "pio");
	bus_init(&x->vm.mmio, "mmio");
	assert_int_equal(pci_host_setup(&x->h, &x->vm), 0);
	x->vm.pci = &x->h;
	assert_int_equal(virtio_pci_init(&x->v, &x->vm, "vtest", 2, 2, 1ULL << 9, &ops, x), 0);
	x->bar = pci_cfg_r32(&x->v.pdev, PCI_BAR0) & ~0xfULL;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *x = *state;

	virtio_pci_exit(&x->v);
	pci_host_teardown(&x->h);
	fake_vm_free(&x->fm);
	free(x);
	return 0;
}

/* Linux's order: reset, ACK, DRIVER, features, FEATURES_OK, queues, DRIVER_OK */
static void negotiate(struct ctx *x, uint64_t feat)
{
	w(x, 0x14, 1, 0);
	w(x, 0x14, 1, 1);
	w(x, 0x14, 1, 3);
	w(x, 0x08, 4, 0);
	w(x, 0x0c, 4, (uint32_t)feat);
	w(x, 0x08, 4, 1);
	w(x, 0x0c, 4, (uint32_t)(feat >> 32));
	w(x, 0x14, 1, 0xb);
}

static void setup_queue(struct ctx *x, uint16_t q, uint16_t vec)
{
	struct virtq dummy;

	vqd_init(&x->d, &x->fm, 64, &dummy);
	w(x, 0x16, 2, q);
	w(x, 0x18, 2, 64);
	w(x, 0x1a, 2, vec);
	w(x, 0x20, 4, (uint32_t)x->d.desc);  /* two-part writes, like Linux */
	w(x, 0x24, 4, 0);
	w(x, 0x28, 4, (uint32_t)x->d.avail);
	w(x, 0x2c, 4, 0);
	w(x, 0x30, 4, (uint32_t)x->d.used);
	w(x, 0x34, 4, 0);
	w(x, 0x1c, 2, 1);
}

static void test_ids_and_caps(void **state)
{
	struct ctx *x = *state;
	struct pci_dev *d = &x->v.pdev;

	assert_int_equal(pci_cfg_r16(d, 0), 0x1af4);
	assert_int_equal(pci_cfg_r16(d, 2), 0x1042);
	assert_true(d->cfg[PCI_REVISION_ID] >= 1);
	/* walk the capability list: 4 virtio caps (types 1-4) + MSI-X */
	int seen = 0, msix = 0;
	for (uint8_t p = d->cfg[PCI_CAP_PTR]; p; p = d->cfg[p + 1]) {
		if (d->cfg[p] == 0x09)
			seen |= 1 << d->cfg[p + 3];
		if (d->cfg[p] == 0x11)
			msix = p;
	}
	assert_int_equal(seen, 0x1e);
	assert_int_not_equal(msix, 0);
	assert_int_equal(pci_cfg_r16(d, msix + 2) & 0x7ff, 2); /* 3 vectors */
	assert_int_equal(r(x, 0x12, 2), 2);   /* num_queues */
	assert_int_equal(r(x, 0x18, 2), 256); /* max queue size */
	assert_int_equal(r(x, 0x1e, 2), 0);   /* queue_notify_off of queue 0 */
	assert_int_equal(ioev_assigned, 2);   /* one ioeventfd per queue */
	assert_int_equal(ioev_last_len, 2);
	assert_int_equal(ioev_last_addr, x->bar + VPCI_NOTIFY_OFF + 4);
}

static void test_features(void **state)
{
	struct ctx *x = *state;

	w(x, 0x00, 4, 1);
	assert_true(r(x, 0x04, 4) & 1); /* VERSION_1 is bit 32 */
	w(x, 0x00, 4, 0);
	assert_true(r(x, 0x04, 4) & (1u << 9));
	/* legacy-only driver (no VERSION_1): FEATURES_OK does not stick */
	negotiate(x, 1ULL << 9);
	assert_false(r(x, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
	/* a feature we never offered */
	negotiate(x, 1ULL << 32 | 1ULL << 20);
	assert_false(r(x, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
	negotiate(x, 1ULL << 32 | 1ULL << 9 | 1ULL << VIRTIO_F_EVENT_IDX);
	assert_true(r(x, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
	assert_true(virtio_pci_has(&x->v, VIRTIO_F_EVENT_IDX));
	/* frozen after FEATURES_OK */
	w(x, 0x08, 4, 0);
	w(x, 0x0c, 4, 0);
	assert_true(virtio_pci_has(&x->v, 9));
}

static void test_queue_setup_and_start(void **state)
{
	struct ctx *x = *state;

	negotiate(x, 1ULL << 32 | 1ULL << VIRTIO_F_EVENT_IDX);
	setup_queue(x, 0, 1);
	assert_true(x->v.vq[0].ready);
	assert_true(x->v.vq[0].event_idx);
	assert_int_equal(r(x, 0x20, 4), (uint32_t)x->d.desc);
	assert_int_equal(r(x, 0x1a, 2), 1);
	/* vector out of range reads back NO_VECTOR */
	w(x, 0x16, 2, 1);
	w(x, 0x1a, 2, 7);
	assert_int_equal(r(x, 0x1a, 2), VIRTIO_MSI_NO_VECTOR);
	w(x, 0x14, 1, 0xf);
	assert_int_equal(x->starts, 1);
	assert_int_equal(r(x, 0x14, 1), 0xf);
	/* reset stops the device and forgets the queues */
	w(x, 0x14, 1, 0);
	assert_int_equal(x->stops, 1);
	assert_false(x->v.vq[0].ready);
	assert_int_equal(r(x, 0x14, 1), 0);
	assert_int_equal(r(x, 0x1a, 2), VIRTIO_MSI_NO_VECTOR);
}

static void test_bad_ring_needs_reset(void **state)
{
	struct ctx *x = *state;

	negotiate(x, 1ULL << 32);
	w(x, 0x16, 2, 0);
	w(x, 0x18, 2, 100); /* not a power of two */
	w(x, 0x1c, 2, 1);
	assert_false(x->v.vq[0].ready);
	assert_true(r(x, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(r(x, VPCI_ISR_OFF, 1) & 2); /* config change */
	assert_int_equal(r(x, VPCI_ISR_OFF, 1), 0); /* read clears */
	w(x, 0x14, 1, 0);
	assert_int_equal(r(x, 0x14, 1), 0);
	/* ring outside RAM */
	negotiate(x, 1ULL << 32);
	w(x, 0x16, 2, 0);
	w(x, 0x20, 4, 0x10);
	w(x, 0x1c, 2, 1);
	assert_true(r(x, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

static void msix_entry(struct ctx *x, int vec, uint32_t addr, uint32_t data, bool masked)
{
	w(x, VPCI_MSIX_OFF + 16 * vec + 0, 4, addr);
	w(x, VPCI_MSIX_OFF + 16 * vec + 4, 4, 0);
	w(x, VPCI_MSIX_OFF + 16 * vec + 8, 4, data);
	w(x, VPCI_MSIX_OFF + 16 * vec + 12, 4, masked);
}

static void test_msix_route_mask_pba(void **state)
{
	struct ctx *x = *state;
	uint8_t cap = x->v.msix_cap;
	int efd = x->v.msix[1].efd;

	negotiate(x, 1ULL << 32);
	setup_queue(x, 0, 1);
	/* entries written while the function is disabled: no route yet */
	msix_entry(x, 1, 0xfee00000, 0x41, false);
	assert_false(x->v.msix[1].routed);
	cfgw16(x, cap + 2, 0x8000); /* enable */
	assert_true(x->v.msix[1].routed);
	assert_int_equal(routes[x->v.msix[1].gsi].addr, 0xfee00000);
	assert_int_equal(routes[x->v.msix[1].gsi].data, 0x41);
	/* an interrupt goes to the irqfd, not through userspace injection */
	virtio_pci_signal_queue(&x->v, 0);
	assert_int_equal(efd_count(efd), 1);
	assert_int_equal(signal_msi_calls, 0);
	assert_int_equal(irqfd_attached, 1);
	/* mask the entry: the interrupt becomes pending in the PBA, and the
	 * irqfd is detached (holds back writers that bypass us, e.g. vhost) */
	w(x, VPCI_MSIX_OFF + 16 + 12, 4, 1);
	assert_int_equal(irqfd_attached, 0);
	virtio_pci_signal_queue(&x->v, 0);
	assert_int_equal(efd_count(efd), 0);
	assert_int_equal(r(x, VPCI_PBA_OFF, 4), 1u << 1);
	/* rewrite the entry while masked (CPU affinity change), unmask:
	 * route updated, pending message delivered once, PBA clear */
	w(x, VPCI_MSIX_OFF + 16 + 0, 4, 0xfee01000);
	w(x, VPCI_MSIX_OFF + 16 + 8, 4, 0x42);
	w(x, VPCI_MSIX_OFF + 16 + 12, 4, 0);
	assert_int_equal(routes[x->v.msix[1].gsi].addr, 0xfee01000);
	assert_int_equal(routes[x->v.msix[1].gsi].data, 0x42);
	assert_int_equal(irqfd_attached, 1);
	assert_int_equal(efd_count(efd), 1);
	assert_int_equal(r(x, VPCI_PBA_OFF, 4), 0);
	/* function mask works the same way */
	cfgw16(x, cap + 2, 0xc000);
	virtio_pci_signal_queue(&x->v, 0);
	assert_int_equal(efd_count(efd), 0);
	assert_int_equal(r(x, VPCI_PBA_OFF, 4), 1u << 1);
	cfgw16(x, cap + 2, 0x8000);
	assert_int_equal(efd_count(efd), 1);
	/* table reads back what was written */
	assert_int_equal(r(x, VPCI_MSIX_OFF + 16 + 8, 4), 0x42);
	/* queue without a vector: nothing */
	w(x, 0x16, 2, 0);
	w(x, 0x1a, 2, VIRTIO_MSI_NO_VECTOR);
	virtio_pci_signal_queue(&x->v, 0);
	assert_int_equal(efd_count(efd), 0);
}

static void test_needs_reset_config_irq(void **state)
{
	struct ctx *x = *state;
	int efd = x->v.msix[0].efd;

	negotiate(x, 1ULL << 32);
	w(x, 0x10, 2, 0); /* config vector 0 */
	assert_int_equal(r(x, 0x10, 2), 0);
	msix_entry(x, 0, 0xfee00000, 0x30, false);
	cfgw16(x, x->v.msix_cap + 2, 0x8000);
	setup_queue(x, 0, 1);
	w(x, 0x14, 1, 0xf);
	virtio_pci_needs_reset(&x->v);
	assert_true(r(x, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(efd_count(efd), 1);
	virtio_pci_needs_reset(&x->v); /* once */
	assert_int_equal(efd_count(efd), 0);
	/* the driver cannot clear it except by reset */
	w(x, 0x14, 1, 0xf);
	assert_true(r(x, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	w(x, 0x14, 1, 0);
	assert_int_equal(r(x, 0x14, 1), 0);
}

static void test_bar_move_moves_ioeventfds(void **state)
{
	struct ctx *x = *state;
	uint8_t b[4] = { 0, 0, 0, 0xd0 };
	uint64_t one;

	pci_cfg_access(&x->h, (uint8_t)x->v.pdev.slot, 0, PCI_BAR0, b, 4, true);
	assert_int_equal(ioev_assigned, 2);
	assert_int_equal(ioev_last_addr, 0xd0000000ULL + VPCI_NOTIFY_OFF + 4);
	x->bar = 0xd0000000ULL;
	/* a notify write that reached userspace still kicks the queue */
	w(x, VPCI_NOTIFY_OFF + 4, 4, 1);
	assert_int_equal(read(x->v.kick_fd[1], &one, 8), 8);
	assert_int_equal(x->v.stat_notify_exits, 1);
	/* decode off: ioeventfds gone */
	cfgw16(x, PCI_COMMAND, 0);
	assert_int_equal(ioev_assigned, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_ids_and_caps),
		T(test_features),
		T(test_queue_setup_and_start),
		T(test_bad_ring_needs_reset),
		T(test_msix_route_mask_pba),
		T(test_needs_reset_config_irq),
		T(test_bar_move_moves_ioeventfds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
