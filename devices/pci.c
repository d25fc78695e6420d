/* PCI host bridge, bus 0, configuration mechanism #1.  See devices/pci.h. */
#include "devices/pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/log.h"
#include "vmm/vm.h"

#define CF8_ENABLE 0x80000000u

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	put16(d->cfg + PCI_VENDOR_ID, vendor);
	put16(d->cfg + PCI_DEVICE_ID, device);
	d->cfg[PCI_REVISION_ID] = 1;
	d->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	put16(d->cfg + PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
	d->cfg[PCI_HEADER_TYPE] = 0;
	put16(d->cfg + PCI_SUBSYS_VENDOR, subsys_vendor);
	put16(d->cfg + PCI_SUBSYS_ID, subsys_id);
	/* command: I/O, memory, bus master, INTx disable are the guest's */
	put16(d->wmask + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
	      PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	d->wmask[PCI_INTERRUPT_LINE] = 0xff; /* scratch register for the OS */
	d->wmask[0x0c] = 0xff;               /* cache line size */
	d->cap_end = 0x40;
}

void pci_dev_set_bar(struct pci_dev *d, int i, uint64_t size, bool io, bool is64,
		     bus_handler_fn fn, void *opaque)
{
	struct pci_bar *b = &d->bar[i];

	b->size = size;
	b->io = io;
	b->is64 = is64 && !io;
	b->fn = fn;
	b->opaque = opaque;
	put32(d->cfg + PCI_BAR0 + 4 * i, io ? PCI_BAR_IO : (b->is64 ? PCI_BAR_MEM_64 : 0));
}

uint8_t pci_dev_add_cap(struct pci_dev *d, const void *cap, uint8_t len)
{
	uint8_t off = d->cap_end;

	if (len < 2 || (unsigned)off + len > 256)
		return 0;
	memcpy(d->cfg + off, cap, len);
	d->cfg[off + 1] = 0;
	if (d->last_cap)
		d->cfg[d->last_cap + 1] = off;
	else
		d->cfg[PCI_CAP_PTR] = off;
	d->last_cap = off;
	d->cap_end = (uint8_t)(((unsigned)off + len + 3) & ~3u);
	if (d->cap_end < off) /* wrapped at 256 */
		d->cap_end = 0xfc;
	put16(d->cfg + PCI_STATUS, pci_cfg_r16(d, PCI_STATUS) | PCI_STATUS_CAP_LIST);
	return off;
}

static uint64_t bar_addr(const struct pci_dev *d, int i)
{
	const struct pci_bar *b = &d->bar[i];
	uint64_t lo = pci_cfg_r32(d, PCI_BAR0 + 4 * i);

	if (b->io)
		return lo & ~3ULL;
	lo &= ~15ULL;
	if (b->is64)
		lo |= (uint64_t)pci_cfg_r32(d, PCI_BAR0 + 4 * (i + 1)) << 32;
	return lo;
}

/* Would the guest's BAR address decode somewhere harmless?  Sizing leaves
 * ~(size-1) in the register, i.e. just below 4 GiB: that range (and the
 * IOAPIC/LAPIC above PCI_MMIO_END) and RAM are refused. */
static bool bar_addr_ok(struct pci_host *h, const struct pci_bar *b, uint64_t a)
{
	uint64_t last;

	if (a == 0 || __builtin_add_overflow(a, b->size - 1, &last))
		return false;
	if (b->io)
		return a >= 0x1000 && last <= 0xffff;
	if (!b->is64 && last >= MEM_4G)
		return false;
	if (a < MEM_4G && last >= PCI_MMIO_END)
		return false;
	for (int i = 0; i < h->vm->mem.nr; i++) {
		const struct gm_region *r = &h->vm->mem.r[i];
		if (a <= r->gpa + (r->size - 1) && r->gpa <= last)
			return false;
	}
	return true;
}

static void bar_unmap(struct pci_host *h, struct pci_dev *d, int i)
{
	struct pci_bar *b = &d->bar[i];

	if (!b->mapped)
		return;
	if (d->bar_map)
		d->bar_map(d, i, b->mapped_at, false);
	bus_unregister(b->io ? &h->vm->pio : &h->vm->mmio, b->mapped_at, b->opaque);
	b->mapped = false;
}

/* Bring the bus in line with the command register and BAR values. */
static void update_mappings(struct pci_host *h, struct pci_dev *d)
{
	uint16_t cmd = pci_cfg_r16(d, PCI_COMMAND);

	for (int i = 0; i < 6; i++) {
		struct pci_bar *b = &d->bar[i];
		uint64_t a;
		bool want;
		int r;

		if (!b->size)
			continue;
		a = bar_addr(d, i);
		want = (cmd & (b->io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) &&
		       bar_addr_ok(h, b, a);
		if (b->mapped && (!want || b->mapped_at != a))
			bar_unmap(h, d, i);
		if (!want || b->mapped)
			continue;
		r = bus_register(b->io ? &h->vm->pio : &h->vm->mmio, a, b->size, b->fn,
				 b->opaque, d->name);
		if (r) {
			log_guest("pci %s: BAR%d at 0x%llx not mapped (%s)", d->name, i,
				  (unsigned long long)a, strerror(-r));
			continue;
		}
		b->mapped = true;
		b->mapped_at = a;
		if (d->bar_map)
			d->bar_map(d, i, a, true);
	}
}

/* A dword write to a BAR register: keep the type bits, clear the bits
 * below the size (so all-ones reads back the size mask, §6.2.5.1). */
static void bar_write(struct pci_dev *d, uint32_t off, uint32_t val)
{
	int i = (int)(off - PCI_BAR0) / 4;
	struct pci_bar *b = &d->bar[i];

	if (!b->size) {
		/* Upper half of a 64-bit BAR, or unused. */
		if (i > 0 && d->bar[i - 1].is64) {
			uint64_t mask = ~(d->bar[i - 1].size - 1);
			put32(d->cfg + off, val & (uint32_t)(mask >> 32));
		}
		return;
	}
	if (b->io)
		val = (val & (uint32_t)~(b->size - 1) & ~3u) | PCI_BAR_IO;
	else
		val = (val & (uint32_t)~(b->size - 1) & ~15u) | (b->is64 ? PCI_BAR_MEM_64 : 0);
	put32(d->cfg + off, val);
}

static void dev_cfg_write(struct pci_host *h, struct pci_dev *d, uint32_t off,
			  const uint8_t *data, uint32_t len)
{
	bool remap = false;

	if (off >= PCI_BAR0 && off < PCI_BAR0 + 24) {
		/* Partial BAR writes are merged into the dword first. */
		uint32_t base = off & ~3u;
		uint8_t v[4];

		memcpy(v, d->cfg + base, 4);
		memcpy(v + (off - base), data, len);
		bar_write(d, base, v[0] | v[1] << 8 | v[2] << 16 | (uint32_t)v[3] << 24);
		remap = true;
	} else {
		for (uint32_t k = 0; k < len; k++) {
			uint8_t m = d->wmask[off + k];
			d->cfg[off + k] = (uint8_t)((d->cfg[off + k] & ~m) | (data[k] & m));
		}
		if (off < PCI_COMMAND + 2 && off + len > PCI_COMMAND)
			remap = true;
	}
	if (remap)
		update_mappings(h, d);
	if (d->cfg_write)
		d->cfg_write(d, off, len);
}

void pci_cfg_access(struct pci_host *h, uint8_t slot, uint8_t fn, uint32_t off,
		    uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_dev *d = slot < PCI_MAX_SLOTS && fn == 0 ? h->dev[slot] : NULL;

	if (!d || off + len > 256 || (off & (len - 1))) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (is_write) {
		dev_cfg_write(h, d, off, data, len);
	} else {
		if (d->cfg_read)
			d->cfg_read(d, off, len);
		memcpy(data, d->cfg + off, len);
	}
}

static void cf8_handler(void *opaque, uint64_t addr, uint8_t *data, uint32_t len,
			bool is_write)
{
	struct pci_host *h = opaque;

	/* Only dword accesses hit the address latch; Linux's type-1 probe
	 * pokes a byte at 0xCFB first and expects it to be ignored. */
	if (addr != 0 || len != 4) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&h->lock);
	if (is_write)
		h->addr = (uint32_t)(data[0] | data[1] << 8 | data[2] << 16 |
				     (uint32_t)data[3] << 24) & 0x80fffffcu;
	else
		put32(data, h->addr);
	pthread_mutex_unlock(&h->lock);
}

static void cfc_handler(void *opaque, uint64_t addr, uint8_t *data, uint32_t len,
			bool is_write)
{
	struct pci_host *h = opaque;
	uint32_t a;

	pthread_mutex_lock(&h->lock);
	a = h->addr;
	if (!(a & CF8_ENABLE) || ((a >> 16) & 0xff) != 0 || addr + len > 4) {
		if (!is_write)
			memset(data, 0xff, len);
	} else {
		pci_cfg_access(h, (a >> 11) & 0x1f, (a >> 8) & 7, (a & 0xfc) + (uint32_t)addr,
			       data, len, is_write);
	}
	pthread_mutex_unlock(&h->lock);
}

int pci_add_device(struct pci_host *h, struct pci_dev *d)
{
	int slot;

	pthread_mutex_lock(&h->lock);
	for (slot = 0; slot < PCI_MAX_SLOTS && h->dev[slot]; slot++)
		;
	if (slot == PCI_MAX_SLOTS) {
		pthread_mutex_unlock(&h->lock);
		return -ENOSPC;
	}
	/* Firmware-like initial placement, naturally aligned, so Linux finds
	 * valid BARs inside the root bridge window and keeps them. */
	for (int i = 0; i < 6; i++) {
		struct pci_bar *b = &d->bar[i];
		uint64_t a;

		if (!b->size || b->io)
			continue;
		a = (h->mmio_next + b->size - 1) & ~(b->size - 1);
		if (a + b->size > h->mmio_end) {
			pthread_mutex_unlock(&h->lock);
			return -ENOSPC;
		}
		h->mmio_next = a + b->size;
		put32(d->cfg + PCI_BAR0 + 4 * i, (uint32_t)a | (b->is64 ? PCI_BAR_MEM_64 : 0));
		if (b->is64)
			put32(d->cfg + PCI_BAR0 + 4 * (i + 1), (uint32_t)(a >> 32));
	}
	d->host = h;
	d->slot = slot;
	h->dev[slot] = d;
	put16(d->cfg + PCI_COMMAND, pci_cfg_r16(d, PCI_COMMAND) | PCI_COMMAND_MEMORY);
	update_mappings(h, d);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

void pci_remove_device(struct pci_host *h, struct pci_dev *d)
{
	pthread_mutex_lock(&h->lock);
	for (int i = 0; i < 6; i++)
		bar_unmap(h, d, i);
	if (d->slot >= 0 && d->slot < PCI_MAX_SLOTS && h->dev[d->slot] == d)
		h->dev[d->slot] = NULL;
	pthread_mutex_unlock(&h->lock);
}

int pci_host_setup(struct pci_host *h, struct vm *vm)
{
	int r;

	memset(h, 0, sizeof(*h));
	h->vm = vm;
	pthread_mutex_init(&h->lock, NULL);
	h->mmio_next = PCI_MMIO_START;
	h->mmio_end = PCI_MMIO_END;
	/* 00.0: host bridge, class 06.00.00 (Linux's type-1 sanity check). */
	pci_dev_init(&h->bridge, "pci-host", 0x1b36, 0x0008, 0x060000, 0x1af4, 0x1100);
	h->bridge.slot = 0;
	h->bridge.host = h;
	h->dev[0] = &h->bridge;
	r = bus_register(&vm->pio, 0xcf8, 4, cf8_handler, h, "pci-cf8");
	if (r)
		return r;
	r = bus_register(&vm->pio, 0xcfc, 4, cfc_handler, h, "pci-cfc");
	if (r) {
		bus_unregister(&vm->pio, 0xcf8, h);
		return r;
	}
	return 0;
}

void pci_host_teardown(struct pci_host *h)
{
	bus_unregister(&h->vm->pio, 0xcfc, h);
	bus_unregister(&h->vm->pio, 0xcf8, h);
	pthread_mutex_destroy(&h->lock);
}

int pci_host_init(struct vm *vm)
{
	struct pci_host *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	r = pci_host_setup(h, vm);
	if (r) {
		log_err("pci: cannot claim ports 0xcf8-0xcff: %s", strerror(-r));
		free(h);
		return r;
	}
	vm->pci = h;
	return 0;
}

void pci_host_exit(struct vm *vm)
{
	if (!vm->pci)
		return;
	pci_host_teardown(vm->pci);
	free(vm->pci);
	vm->pci = NULL;
}
