/* PCI host bridge: bus 0 only, configuration mechanism #1 (PCI Local Bus
 * 3.0 §3.2.2.3.2): a 32-bit address register at 0xCF8 (enable bit 31,
 * bus 23:16, device 15:11, function 10:8, register 7:2) and a data window
 * at 0xCFC-0xCFF.  Function 0 of each slot only; 00.0 is the host bridge
 * (class 0x0600), which Linux's pci_sanity_check looks for.
 *
 * Devices own a 256-byte configuration space with a write mask; BAR
 * registers are handled here: sizing (all-ones write reads back the size
 * mask), relocation, and mapping on the MMIO/PIO bus only while the
 * command register enables decoding and the address is sane.  Devices hear
 * about (un)mapping through bar_map (to move their ioeventfds). */
#ifndef MINIVMM_DEVICES_PCI_H
#define MINIVMM_DEVICES_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"

struct vm;

#define PCI_MAX_SLOTS 32

/* Config space offsets (PCI 3.0 §6.1) */
#define PCI_VENDOR_ID      0x00
#define PCI_DEVICE_ID      0x02
#define PCI_COMMAND        0x04
#define PCI_STATUS         0x06
#define PCI_REVISION_ID    0x08
#define PCI_CLASS_PROG     0x09
#define PCI_CLASS_DEVICE   0x0a
#define PCI_HEADER_TYPE    0x0e
#define PCI_BAR0           0x10
#define PCI_SUBSYS_VENDOR  0x2c
#define PCI_SUBSYS_ID      0x2e
#define PCI_CAP_PTR        0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN  0x3d

#define PCI_COMMAND_IO     0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10

#define PCI_BAR_MEM_64     0x4
#define PCI_BAR_IO         0x1

struct pci_dev;

struct pci_bar {
	uint64_t size;     /* power of two, 0 = unused */
	bool io;           /* port I/O BAR */
	bool is64;         /* 64-bit memory BAR (uses the next BAR slot too) */
	bus_handler_fn fn; /* access handler, offset relative to the BAR */
	void *opaque;
	uint64_t mapped_at;
	bool mapped;
};

struct pci_dev {
	const char *name;
	uint8_t cfg[256];
	uint8_t wmask[256];     /* bits the guest may change (generic bytes) */
	struct pci_bar bar[6];
	uint8_t cap_end;        /* next free offset for capabilities */
	uint8_t last_cap;       /* offset of the last capability, 0 if none */
	/* Optional: after the guest wrote [off, off+len) of config space (the
	 * write mask already applied), or before a read of it. */
	void (*cfg_write)(struct pci_dev *d, uint32_t off, uint32_t len);
	void (*cfg_read)(struct pci_dev *d, uint32_t off, uint32_t len);
	/* Optional: BAR i now decodes at addr (map) or stopped (unmap). */
	void (*bar_map)(struct pci_dev *d, int i, uint64_t addr, bool map);
	void *opaque;
	struct pci_host *host;
	int slot;
};

struct pci_host {
	struct vm *vm;
	pthread_mutex_t lock;   /* 0xCF8 latch and every config space */
	uint32_t addr;          /* last value written to 0xCF8 */
	struct pci_dev *dev[PCI_MAX_SLOTS];
	struct pci_dev bridge;
	uint64_t mmio_next;     /* initial BAR allocator inside the PCI hole */
	uint64_t mmio_end;
};

/* Device-table hooks: create vm->pci (registers 0xCF8 and 0xCFC). */
int pci_host_init(struct vm *vm);
void pci_host_exit(struct vm *vm);

/* Same without the vm->pci slot (unit tests build a struct vm by hand). */
int pci_host_setup(struct pci_host *h, struct vm *vm);
void pci_host_teardown(struct pci_host *h);

/* Fill the standard header (type 0, status cap list, write masks). */
void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id);
/* Declare BAR i (memory, 32- or 64-bit, or I/O).  Before pci_add_device. */
void pci_dev_set_bar(struct pci_dev *d, int i, uint64_t size, bool io, bool is64,
		     bus_handler_fn fn, void *opaque);
/* Append a capability (cap[0] = id; next pointer filled in here).
 * Returns its config-space offset, or 0 when config space is full. */
uint8_t pci_dev_add_cap(struct pci_dev *d, const void *cap, uint8_t len);

/* Put d in the first free slot, give its BARs initial addresses inside
 * [PCI_MMIO_START, PCI_MMIO_END) and enable decoding, as firmware would.
 * 0, -ENOSPC. */
int pci_add_device(struct pci_host *h, struct pci_dev *d);
/* Unmap the BARs and free the slot. */
void pci_remove_device(struct pci_host *h, struct pci_dev *d);

/* Config access as seen through 0xCFC (exposed for tests). */
void pci_cfg_access(struct pci_host *h, uint8_t slot, uint8_t fn, uint32_t off,
		    uint8_t *data, uint32_t len, bool is_write);

static inline uint16_t pci_cfg_r16(const struct pci_dev *d, uint32_t off)
{
	return (uint16_t)(d->cfg[off] | d->cfg[off + 1] << 8);
}

static inline uint32_t pci_cfg_r32(const struct pci_dev *d, uint32_t off)
{
	return d->cfg[off] | d->cfg[off + 1] << 8 | d->cfg[off + 2] << 16 |
	       (uint32_t)d->cfg[off + 3] << 24;
}

#endif
