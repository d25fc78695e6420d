/* Interrupts and doorbells: the KVM objects that let devices talk to the
 * guest without the vCPU thread leaving the kernel.
 *
 * - KVM_IRQ_LINE raises a legacy GSI (IOAPIC pin / PIC line), used by the
 *   serial port.
 * - MSI routes + KVM_IRQFD: a device thread writes an eventfd and KVM
 *   injects the MSI directly (virtio completions).
 * - KVM_IOEVENTFD: a guest write to a doorbell address signals an eventfd
 *   inside KVM instead of exiting to us (virtio queue kicks). */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/log.h"
#include "vmm/vm.h"

#define MAX_ROUTES 1024
#define FIRST_MSI_GSI 24   /* 0-23 are the IOAPIC pins */

static int commit_routes(struct vm *vm)
{
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, vm->routes) < 0) {
		log_err("KVM_SET_GSI_ROUTING (%u entries): %s", vm->routes->nr, strerror(errno));
		return -errno;
	}
	return 0;
}

static void add_irqchip_route(struct kvm_irq_routing *r, uint32_t gsi, uint32_t chip, uint32_t pin)
{
	struct kvm_irq_routing_entry *e = &r->entries[r->nr++];

	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

int vm_irq_routing_init(struct vm *vm)
{
	/* Rebuild KVM's default table (arch/x86/kvm/irq_comm.c): GSI n goes
	 * to IOAPIC pin n, and GSIs 0-15 also to the two 8259s (except 2, the
	 * cascade).  Every KVM_SET_GSI_ROUTING must contain these, or the
	 * serial port and the PIT would lose their interrupts. */
	vm->routes = calloc(1, sizeof(*vm->routes) + MAX_ROUTES * sizeof(vm->routes->entries[0]));
	if (!vm->routes)
		return -ENOMEM;
	for (uint32_t i = 0; i < 24; i++) {
		add_irqchip_route(vm->routes, i, KVM_IRQCHIP_IOAPIC, i);
		if (i < 16 && i != 2)
			add_irqchip_route(vm->routes, i, i < 8 ? KVM_IRQCHIP_PIC_MASTER :
					  KVM_IRQCHIP_PIC_SLAVE, i % 8);
	}
	vm->next_gsi = FIRST_MSI_GSI;
	return commit_routes(vm);
}

int vm_irq_line(struct vm *vm, uint32_t gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)level };

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
		return -errno;
	if (level)
		atomic_fetch_add(&vm->stats.irqs_injected, 1);
	return 0;
}

static struct kvm_irq_routing_entry *find_msi(struct vm *vm, uint32_t gsi)
{
	for (uint32_t i = 0; i < vm->routes->nr; i++)
		if (vm->routes->entries[i].gsi == gsi &&
		    vm->routes->entries[i].type == KVM_IRQ_ROUTING_MSI)
			return &vm->routes->entries[i];
	return NULL;
}

static void set_msi(struct kvm_irq_routing_entry *e, uint64_t addr, uint32_t data)
{
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = (uint32_t)(addr >> 32);
	e->u.msi.data = data;
}

int vm_msi_route_add(struct vm *vm, uint64_t addr, uint32_t data, uint32_t *gsi)
{
	struct kvm_irq_routing_entry *e;
	int ret;

	pthread_mutex_lock(&vm->irq_lock);
	if (vm->routes->nr >= MAX_ROUTES) {
		pthread_mutex_unlock(&vm->irq_lock);
		return -ENOSPC;
	}
	/* Reuse a freed GSI number when one exists below next_gsi. */
	*gsi = vm->next_gsi;
	for (uint32_t g = FIRST_MSI_GSI; g < vm->next_gsi; g++) {
		bool used = false;
		for (uint32_t i = 0; i < vm->routes->nr && !used; i++)
			used = vm->routes->entries[i].gsi == g;
		if (!used) {
			*gsi = g;
			break;
		}
	}
	if (*gsi == vm->next_gsi)
		vm->next_gsi++;
	e = &vm->routes->entries[vm->routes->nr++];
	memset(e, 0, sizeof(*e));
	e->gsi = *gsi;
	e->type = KVM_IRQ_ROUTING_MSI;
	set_msi(e, addr, data);
	ret = commit_routes(vm);
	if (ret)
		vm->routes->nr--;
	pthread_mutex_unlock(&vm->irq_lock);
	return ret;
}

int vm_msi_route_update(struct vm *vm, uint32_t gsi, uint64_t addr, uint32_t data)
{
	struct kvm_irq_routing_entry *e;
	int ret = -ENOENT;

	pthread_mutex_lock(&vm->irq_lock);
	e = find_msi(vm, gsi);
	if (e) {
		if (e->u.msi.address_lo == (uint32_t)addr &&
		    e->u.msi.address_hi == (uint32_t)(addr >> 32) && e->u.msi.data == data)
			ret = 0; /* unchanged: skip the ioctl */
		else {
			set_msi(e, addr, data);
			ret = commit_routes(vm);
		}
	}
	pthread_mutex_unlock(&vm->irq_lock);
	return ret;
}

int vm_msi_route_del(struct vm *vm, uint32_t gsi)
{
	struct kvm_irq_routing_entry *e;
	int ret = -ENOENT;

	pthread_mutex_lock(&vm->irq_lock);
	e = find_msi(vm, gsi);
	if (e) {
		*e = vm->routes->entries[--vm->routes->nr];
		ret = commit_routes(vm);
	}
	pthread_mutex_unlock(&vm->irq_lock);
	return ret;
}

int vm_irqfd(struct vm *vm, int efd, uint32_t gsi, bool assign)
{
	struct kvm_irqfd f = { .fd = (uint32_t)efd, .gsi = gsi,
			       .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };

	if (ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0)
		return -errno;
	return 0;
}

int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_msi m = { .address_lo = (uint32_t)addr,
			     .address_hi = (uint32_t)(addr >> 32), .data = data };

	if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &m) < 0)
		return -errno;
	atomic_fetch_add(&vm->stats.irqs_injected, 1);
	return 0;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, bool pio,
		 bool match, uint64_t datamatch, int efd, bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = datamatch, .addr = addr, .len = len, .fd = efd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0)
		return -errno;
	return 0;
}
