/* Modern virtio-pci transport (virtio 1.2 §4.1), shared by virtio devices.
 *
 * One 32-bit memory BAR (BAR0) holds, each in its own 4 KiB page: common
 * configuration, ISR status, device configuration, notification area
 * (one 4-byte slot per queue, notify_off_multiplier 4), MSI-X table and
 * PBA.  PCI ids: vendor 0x1af4, device 0x1040 + virtio device id.
 *
 * Fast paths, no vCPU exit to userspace:
 *   - kick: KVM_IOEVENTFD on each queue's notify address (16-bit write,
 *     datamatch = queue index) signals kick_fd[q], which the device's I/O
 *     thread polls;
 *   - interrupt: each MSI-X vector has an eventfd bound with KVM_IRQFD to
 *     an MSI route (vm_msi_route_*) carrying the guest's address/data;
 *     virtio_pci_signal_queue() writes it.  A masked vector only sets its
 *     PBA bit; unmasking delivers it.  Rewriting an entry re-routes.  While
 *     masked the eventfd is also detached from KVM, so a writer that
 *     bypasses us (vhost) is held back too: KVM delivers what accumulated
 *     when the unmask re-attaches it.
 *
 * Threads: vCPU threads run config/MMIO handlers (lock); the device's I/O
 * thread calls signal_queue / needs_reset (msix_lock only, never lock). */
#ifndef MINIVMM_VIRTIO_PCI_H
#define MINIVMM_VIRTIO_PCI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/pci.h"
#include "virtio/queue.h"

struct vm;

#define VIRTIO_PCI_MAX_QUEUES 32
#define VIRTIO_PCI_MAX_VECTORS (VIRTIO_PCI_MAX_QUEUES + 1)
#define VIRTIO_MSI_NO_VECTOR 0xffff

/* §2.1 device status */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

/* §6 reserved feature bits */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* BAR0 layout */
#define VPCI_COMMON_OFF 0x0000
#define VPCI_COMMON_LEN 0x40
#define VPCI_ISR_OFF    0x1000
#define VPCI_DEVCFG_OFF 0x2000
#define VPCI_DEVCFG_LEN 0x1000
#define VPCI_NOTIFY_OFF 0x3000
#define VPCI_NOTIFY_MUL 4
#define VPCI_MSIX_OFF   0x4000
#define VPCI_PBA_OFF    0x6000
#define VPCI_BAR_SIZE   0x8000

/* What a device plugs into the transport. */
struct virtio_dev_ops {
	/* Device-specific configuration (§4.1.4.6); off < VPCI_DEVCFG_LEN. */
	void (*cfg_read)(void *opaque, uint32_t off, uint8_t *data, uint32_t len);
	void (*cfg_write)(void *opaque, uint32_t off, const uint8_t *data, uint32_t len);
	/* DRIVER_OK: queues are set up; start processing.  0 or -errno
	 * (then the transport sets DEVICE_NEEDS_RESET). */
	int (*start)(void *opaque);
	/* Reset: on return the device no longer touches any queue and every
	 * in-flight request has completed or been abandoned. */
	void (*stop)(void *opaque);
};

struct vpci_msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
	int efd;              /* irqfd eventfd */
	uint32_t gsi;
	bool routed;          /* gsi allocated for this entry */
	bool attached;        /* efd bound to gsi with KVM_IRQFD (unmasked) */
	uint64_t r_addr;      /* what the route currently says */
	uint32_t r_data;
};

struct virtio_pci {
	struct pci_dev pdev;
	struct vm *vm;
	char name[32];
	const struct virtio_dev_ops *ops;
	void *opaque;

	pthread_mutex_t lock;          /* common config, status, start/stop */
	uint16_t nq, nvec;
	uint64_t dev_features, drv_features;
	uint32_t dfsel, gfsel;
	_Atomic uint8_t status;
	uint8_t config_gen;
	uint16_t qsel;
	bool started;
	struct virtq vq[VIRTIO_PCI_MAX_QUEUES];
	int kick_fd[VIRTIO_PCI_MAX_QUEUES];
	bool ioeventfd_ok[VIRTIO_PCI_MAX_QUEUES];
	_Atomic uint16_t q_vector[VIRTIO_PCI_MAX_QUEUES];
	_Atomic uint16_t cfg_vector;
	_Atomic uint8_t isr;

	pthread_mutex_t msix_lock;     /* table, PBA, routes, delivery */
	uint8_t msix_cap;              /* config-space offset of the capability */
	bool msix_enabled, msix_fmask;
	struct vpci_msix_entry msix[VIRTIO_PCI_MAX_VECTORS];
	uint64_t pba[(VIRTIO_PCI_MAX_VECTORS + 63) / 64];

	atomic_ulong stat_irqs;        /* interrupts delivered (or made pending) */
	atomic_ulong stat_notify_exits;/* kicks that reached userspace */
};

/* Set up and plug into vm->pci.  features: the device's, without the
 * transport bits (VERSION_1, INDIRECT_DESC, EVENT_IDX are added). */
int virtio_pci_init(struct virtio_pci *v, struct vm *vm, const char *name,
		    uint16_t device_id, uint16_t nq, uint64_t features,
		    const struct virtio_dev_ops *ops, void *opaque);
void virtio_pci_exit(struct virtio_pci *v);

/* Interrupt for queue q (I/O thread). */
void virtio_pci_signal_queue(struct virtio_pci *v, uint16_t q);
/* The driver misbehaved: set DEVICE_NEEDS_RESET and raise a configuration
 * interrupt (§2.1.2).  Callable from any thread. */
void virtio_pci_needs_reset(struct virtio_pci *v);

static inline bool virtio_pci_has(const struct virtio_pci *v, unsigned bit)
{
	return (v->drv_features >> bit) & 1;
}

#endif
