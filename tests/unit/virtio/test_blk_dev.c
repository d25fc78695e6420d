/* The whole virtio-blk device (virtio/blk.c + transport + raw backend)
 * with its real I/O thread, no KVM: the test is the guest driver (rings in
 * fake RAM, registers through the MMIO bus), stands in for KVM by writing
 * the queue's kick eventfd, and counts interrupts on the MSI-X vector's
 * irqfd eventfd.  The vm_* KVM calls are recorders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/pci.h"
#include "virtio/blk.h"
#include "virtio/pci.h"
#include "vmm/vm.h"
#include "vq_driver.h"

int vm_msi_route_add(struct vm *vm, uint64_t addr, uint32_t data, uint32_t *gsi)
{
	static uint32_t next = 40;
	*gsi = next++;
	return 0;
}
int vm_msi_route_update(struct vm *vm, uint32_t gsi, uint64_t addr, uint32_t data) { return 0; }
int vm_msi_route_del(struct vm *vm, uint32_t gsi) { return 0; }
int vm_irqfd(struct vm *vm, int efd, uint32_t gsi, bool assign) { return 0; }
int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data) { return 0; }
int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, bool pio, bool match,
		 uint64_t datamatch, int efd, bool assign) { return 0; }

#define DISK_SIZE (4u << 20)

struct ctx {
	struct vm vm;
	struct vm_config cfg;
	struct pci_host h;
	struct fake_vm fm;
	struct vq_driver d;
	struct virtio_pci *v;
	uint64_t bar;
	char path[64];
	int fd;
};

struct hdr { uint32_t type, reserved; uint64_t sector; };

static void w(struct ctx *x, uint32_t off, uint32_t len, uint64_t val)
{
	uint8_t b[8];
	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(val >> (8 * i));
	assert_true(bus_dispatch(&x->vm.mmio, x->bar + off, b, len, true));
}

static uint8_t status(struct ctx *x)
{
	uint8_t b;
	assert_true(bus_dispatch(&x->vm.mmio, x->bar + 0x14, &b, 1, false));
	return b;
}

static uint64_t efd_count(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static void kick(struct ctx *x)
{
	uint64_t one = 1;
	assert_int_equal(write(x->v->kick_fd[0], &one, 8), 8);
}

/* Wait until `want` more used entries arrived; returns how many did. */
static int wait_used(struct ctx *x, int want, uint32_t *ids, uint32_t *lens)
{
	int got = 0;
	for (int t = 0; t < 500 && got < want; t++) {
		while (got < want && vqd_get_used(&x->d, &ids[got], &lens[got]))
			got++;
		if (got < want)
			usleep(10000);
	}
	return got;
}

static int setup(void **state)
{
	struct ctx *x = calloc(1, sizeof(*x));
	struct virtq dummy;

	strcpy(x->path, "/var/tmp/minivmm-blkdev-XXXXXX");
	x->fd = mkstemp(x->path);
	assert_int_equal(ftruncate(x->fd, DISK_SIZE), 0);
	fake_vm_init(&x->fm);
	x->vm.mem = x->fm.gm;
	bus_init(&x->vm.pio, "pio");
	bus_init(&x->vm.mmio, "mmio");
	assert_int_equal(pci_host_setup(&x->h, &x->vm), 0);
	x->vm.pci = &x->h;
	x->cfg.ncpus = 1;
	x->cfg.ndisks = 1;
	x->cfg.disks[0] = (struct disk_opts){ .path = x->path, .format = DISK_FMT_RAW,
					      .serial = "blkdev" };
	x->vm.cfg = &x->cfg;
	assert_int_equal(virtio_blk_init(&x->vm), 0);
	x->v = x->h.dev[1]->opaque;
	x->bar = pci_cfg_r32(&x->v->pdev, PCI_BAR0) & ~0xfULL;

	/* driver bring-up, as Linux does it */
	w(x, 0x14, 1, 0);
	w(x, 0x14, 1, 3);
	w(x, 0x08, 4, 0);
	w(x, 0x0c, 4, 1u << VIRTIO_BLK_F_FLUSH | 1u << VIRTIO_F_EVENT_IDX | 1u << VIRTIO_F_INDIRECT_DESC);
	w(x, 0x08, 4, 1);
	w(x, 0x0c, 4, 1);
	w(x, 0x14, 1, 0xb);
	assert_int_equal(status(x), 0xb);
	/* MSI-X: vector 0 config, vector 1 queue 0 */
	for (int v = 0; v < 2; v++) {
		w(x, VPCI_MSIX_OFF + 16 * v + 0, 4, 0xfee00000);
		w(x, VPCI_MSIX_OFF + 16 * v + 8, 4, 0x40u + v);
		w(x, VPCI_MSIX_OFF + 16 * v + 12, 4, 0);
	}
	uint8_t en[2] = { 0, 0x80 };
	pci_cfg_access(&x->h, 1, 0, x->v->msix_cap + 2, en, 2, true);
	w(x, 0x10, 2, 0);
	vqd_init(&x->d, &x->fm, 64, &dummy);
	w(x, 0x16, 2, 0);
	w(x, 0x18, 2, 64);
	w(x, 0x1a, 2, 1);
	w(x, 0x20, 8, x->d.desc);
	w(x, 0x28, 8, x->d.avail);
	w(x, 0x30, 8, x->d.used);
	w(x, 0x1c, 2, 1);
	w(x, 0x14, 1, 0xf); /* DRIVER_OK: the I/O thread starts */
	assert_int_equal(status(x), 0xf);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *x = *state;

	virtio_blk_exit(&x->vm);
	pci_host_teardown(&x->h);
	close(x->fd);
	unlink(x->path);
	fake_vm_free(&x->fm);
	free(x);
	return 0;
}

/* Queue one request: header, one data buffer, status; returns the head. */
static uint16_t post(struct ctx *x, uint32_t type, uint64_t sector, uint64_t data,
		     uint32_t len, bool data_write, uint64_t *st)
{
	uint64_t h = vqd_alloc(&x->d, 16);
	struct hdr hd = { type, 0, sector };
	struct vqd_buf b[3];
	int n = 0;

	*st = vqd_alloc(&x->d, 1);
	memcpy(fake_host(&x->fm, h), &hd, sizeof(hd));
	*(uint8_t *)fake_host(&x->fm, *st) = 0xee;
	b[n++] = (struct vqd_buf){ h, 16, false };
	if (len)
		b[n++] = (struct vqd_buf){ data, len, data_write };
	b[n++] = (struct vqd_buf){ *st, 1, true };
	uint16_t head = vqd_chain(&x->d, b, n);
	vqd_publish(&x->d, head);
	return head;
}

static void test_batch_one_interrupt(void **state)
{
	struct ctx *x = *state;
	int irq = x->v->msix[1].efd;
	uint64_t st[8], buf[8];
	uint32_t ids[8], lens[8];
	uint8_t file[4096];

	/* 8 writes published at once, one kick; the driver asks to be
	 * interrupted when used.idx passes 7 */
	vqd_set_used_event(&x->d, 7);
	for (int i = 0; i < 8; i++) {
		buf[i] = vqd_alloc(&x->d, 4096);
		memset(fake_host(&x->fm, buf[i]), 'a' + i, 4096);
		post(x, VIRTIO_BLK_T_OUT, 8u * i, buf[i], 4096, false, &st[i]);
	}
	kick(x);
	assert_int_equal(wait_used(x, 8, ids, lens), 8);
	usleep(20000);
	assert_int_equal(efd_count(irq), 1);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(*(uint8_t *)fake_host(&x->fm, st[i]), VIRTIO_BLK_S_OK);
		assert_int_equal(lens[i], 1);
		assert_int_equal(pread(x->fd, file, 4096, 4096 * i), 4096);
		assert_memory_equal(file, fake_host(&x->fm, buf[i]), 4096);
	}
	/* the device asked to be kicked when avail.idx passes 8 */
	assert_int_equal(vqd_avail_event(&x->d), 8);

	/* used_event far ahead: completions, but no interrupt */
	vqd_set_used_event(&x->d, 1000);
	for (int i = 0; i < 4; i++)
		post(x, VIRTIO_BLK_T_IN, 8u * i, buf[i], 4096, true, &st[i]);
	post(x, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, &st[4]);
	kick(x);
	assert_int_equal(wait_used(x, 5, ids, lens), 5);
	usleep(20000);
	assert_int_equal(efd_count(irq), 0);
	assert_int_equal(lens[0], 4097);
	assert_int_equal(*(uint8_t *)fake_host(&x->fm, st[4]), VIRTIO_BLK_S_OK);
	/* used.idx is 13; three more cross used_event 14: one interrupt */
	vqd_set_used_event(&x->d, 14);
	for (int i = 0; i < 3; i++)
		post(x, VIRTIO_BLK_T_IN, 8u * i, buf[i], 4096, true, &st[i]);
	kick(x);
	assert_int_equal(wait_used(x, 3, ids, lens), 3);
	usleep(20000);
	assert_int_equal(efd_count(irq), 1);
	assert_int_equal(status(x), 0xf);
}

static void test_malformed_chain_needs_reset(void **state)
{
	struct ctx *x = *state;
	int cfgirq = x->v->msix[0].efd;
	uint64_t st, buf = vqd_alloc(&x->d, 512);
	uint32_t ids[2], lens[2];

	/* zero-length data descriptor */
	uint16_t head = post(x, VIRTIO_BLK_T_IN, 0, buf, 512, true, &st);
	vqd_desc(&x->d, (uint16_t)(head + 1))->len = 0;
	kick(x);
	assert_int_equal(wait_used(x, 1, ids, lens), 1);
	assert_int_equal(ids[0], head);
	assert_int_equal(lens[0], 0);             /* head returned, nothing written */
	usleep(20000);
	assert_true(status(x) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(efd_count(cfgirq), 1);    /* config interrupt */
	/* the device stops processing until reset */
	post(x, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, &st);
	kick(x);
	assert_int_equal(wait_used(x, 1, ids, lens), 0);
	/* reset: the I/O thread is stopped and the queue forgotten */
	w(x, 0x14, 1, 0);
	assert_int_equal(status(x), 0);
	assert_false(x->v->vq[0].ready);
}

static void test_bad_sector_is_ioerr(void **state)
{
	struct ctx *x = *state;
	uint64_t st, buf = vqd_alloc(&x->d, 512);
	uint32_t ids[1], lens[1];

	post(x, VIRTIO_BLK_T_IN, DISK_SIZE / 512, buf, 512, true, &st);
	kick(x);
	assert_int_equal(wait_used(x, 1, ids, lens), 1);
	assert_int_equal(*(uint8_t *)fake_host(&x->fm, st), VIRTIO_BLK_S_IOERR);
	assert_false(status(x) & VIRTIO_STATUS_NEEDS_RESET); /* a status, not a reset */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_batch_one_interrupt),
		T(test_malformed_chain_needs_reset),
		T(test_bad_sector_is_ioerr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
