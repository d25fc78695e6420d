/* One virtual machine: the KVM VM fd, guest RAM, the two buses, interrupt
 * routing and the vCPUs.  vm.c owns the lifecycle; devices get a struct vm *
 * and use only the functions below. */
#ifndef MINIVMM_VM_H
#define MINIVMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/config.h"
#include "vmm/guest_mem.h"

/* Guest-physical memory map (x86).  RAM above LOW_RAM_END is moved above
 * 4 GiB so the 32-bit PCI hole, IOAPIC and LAPIC stay free. */
#define MEM_32BIT_GAP_START 0xC0000000ULL /* 3 GiB: start of the PCI hole */
#define MEM_4G              0x100000000ULL
#define PCI_MMIO_START      0xC0000000ULL /* BARs are placed from here */
#define PCI_MMIO_END        0xFEC00000ULL /* up to the IOAPIC */
#define IOAPIC_ADDR         0xFEC00000ULL
#define LAPIC_ADDR          0xFEE00000ULL

/* Why the run loop ended. */
enum vm_exit {
	VM_EXIT_NONE = 0,
	VM_EXIT_POWEROFF,  /* guest powered off (ACPI S5) -> status 0 */
	VM_EXIT_REBOOT,    /* guest asked for a reset */
	VM_EXIT_QUIT,      /* user: Ctrl-A x, SIGINT/SIGTERM -> status 0 */
	VM_EXIT_ERROR,     /* guest or VMM failure -> status 2 */
	VM_EXIT_SETUP,     /* a device could not be set up (a tap, a disk) -> 1 */
};

struct vcpu;
struct evloop;
struct serial;
struct console;
struct i8042;
struct rtc;
struct acpi_pm;
struct pci_host;
struct virtio_blk;
struct virtio_net;

struct vm_stats {
	atomic_ulong exits_io, exits_mmio, exits_hlt, exits_other, exits_intr;
	atomic_ulong irqs_injected;
	/* --stats only (else NULL): exits per I/O port, 65536 counters.
	 * Shows which device a boot spends its exits on. */
	atomic_uint *pio_port_exits;
	/* --stats: CLOCK_MONOTONIC ns at stats_init (just before the vCPUs
	 * start) and at the first PIO exit.  The gap is the guest's time in
	 * the bzImage decompressor and early boot, which make no exits. */
	uint64_t start_ns;
	double start_after_exec;   /* seconds from exec to stats_init */
	_Atomic uint64_t first_pio_ns;
	_Atomic uint32_t first_pio_port;
};

struct vm {
	const struct vm_config *cfg;
	int kvm_fd, vm_fd;
	int vcpu_mmap_size;

	struct guest_mem mem;
	void *ram_low;   /* host mapping for [0, low size) */
	void *ram_high;  /* host mapping above 4 GiB, or NULL */
	uint64_t ram_low_size, ram_high_size;

	struct bus pio, mmio;
	struct evloop *loop;

	int nr_vcpus;
	struct vcpu **vcpus;

	/* KVM_SET_GSI_ROUTING replaces the whole table, so the VM keeps the
	 * whole table here and every change re-sends it. */
	pthread_mutex_t irq_lock;
	struct kvm_irq_routing *routes;
	uint32_t next_gsi;

	/* Device state, each owned by its init/exit hooks (vmm/devices.h). */
	struct serial *serial;
	struct console *console;
	struct i8042 *i8042;
	struct rtc *rtc;
	struct acpi_pm *acpi_pm;
	struct pci_host *pci;
	struct virtio_blk *blk[MAX_DISKS];
	struct virtio_net *net[MAX_NETS];

	_Atomic int exit_reason;   /* enum vm_exit, first writer wins */
	struct vm_stats stats;
};

/* Request the VM to stop (from any thread); the first reason sticks. */
void vm_request_exit(struct vm *vm, enum vm_exit why);

/* Legacy interrupt line (IOAPIC/PIC GSI 0-23), level 1 or 0. */
int vm_irq_line(struct vm *vm, uint32_t gsi, int level);

/* MSI routing for irqfd: allocate a GSI routed to (addr, data), update it,
 * or release it.  All re-send the whole table. */
int vm_msi_route_add(struct vm *vm, uint64_t addr, uint32_t data, uint32_t *gsi);
int vm_msi_route_update(struct vm *vm, uint32_t gsi, uint64_t addr, uint32_t data);
int vm_msi_route_del(struct vm *vm, uint32_t gsi);
/* Attach/detach an eventfd so that writing it injects gsi in the kernel. */
int vm_irqfd(struct vm *vm, int efd, uint32_t gsi, bool assign);
/* Inject one MSI directly (slow path, from userspace). */
int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data);

/* Ask KVM to signal efd, instead of exiting to us, when the guest writes
 * `datamatch` (if match) to addr.  pio: port space, else MMIO. */
int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, bool pio,
		 bool match, uint64_t datamatch, int efd, bool assign);

/* Internal to vmm/: the default legacy GSI routes (vm_irq.c), and
 * /dev/kvm opened with every capability we need checked (-1 + message). */
int vm_irq_routing_init(struct vm *vm);
int kvm_open_checked(void);

/* Whole lifecycle: create, load, run until exit, destroy. */
enum vm_exit vm_run_once(const struct vm_config *cfg);

#endif
