/* The VM lifecycle, in order: open KVM, create the VM and its RAM, the
 * in-kernel interrupt controllers, devices, firmware tables, kernel, vCPUs;
 * run; tear down in reverse.  A reboot is a full teardown and a fresh VM. */
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "firmware/acpi.h"
#include "firmware/bios_stub.h"
#include "firmware/boot_params.h"
#include "firmware/longmode.h"
#include "vmm/devices.h"
#include "vmm/evloop.h"
#include "vmm/log.h"
#include "vmm/stats.h"
#include "vmm/vcpu.h"

/* Addresses KVM needs on Intel for its real-mode TSS and the EPT identity
 * map (3 pages + 1 page).  Just below the BIOS ROM area, inside the PCI
 * hole, so they never collide with RAM or BARs. */
#define KVM_TSS_ADDR      0xFFFBD000ULL
#define KVM_IDENTITY_ADDR 0xFFFBC000ULL

void vm_request_exit(struct vm *vm, enum vm_exit why)
{
	int none = VM_EXIT_NONE;

	atomic_compare_exchange_strong(&vm->exit_reason, &none, (int)why);
	if (vm->loop)
		evloop_wake(vm->loop);
}

static const struct { long cap; const char *name; } required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
	{ KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
};

/* Open /dev/kvm and check everything we rely on; -1 with a message. */
int kvm_open_checked(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int v;

	if (fd < 0) {
		if (errno == ENOENT)
			log_err("/dev/kvm does not exist: load kvm_intel or kvm_amd (modprobe kvm_amd), enable virtualization in the firmware, or run inside tests/nested/run");
		else if (errno == EACCES || errno == EPERM)
			log_err("/dev/kvm: permission denied: add yourself to the 'kvm' group or run as root");
		else
			log_err("/dev/kvm: %s", strerror(errno));
		return -1;
	}
	/* PVM (kvm_pvm) offers /dev/kvm without VMX/SVM; it runs only kernels
	 * built as PVM guests, and a stock kernel would spin forever. */
	if (access("/sys/module/kvm_pvm", F_OK) == 0) {
		log_err("/dev/kvm is PVM (module kvm_pvm), which cannot boot a stock kernel; run minivmm inside tests/nested/run instead");
		close(fd);
		return -1;
	}
	v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		log_err("/dev/kvm: API version %d, minivmm needs %d", v, KVM_API_VERSION);
		close(fd);
		return -1;
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++)
		if (ioctl(fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			log_err("/dev/kvm lacks %s, which minivmm needs; use a newer host kernel",
				required_caps[i].name);
			close(fd);
			return -1;
		}
	return fd;
}

static int set_slot(struct vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *host)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uintptr_t)host,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		log_err("KVM_SET_USER_MEMORY_REGION slot %u: %s", slot, strerror(errno));
		return -errno;
	}
	return gm_add_region(&vm->mem, gpa, size, host);
}

#define RAM_ALIGN (2ULL << 20)

static void *map_ram(uint64_t size)
{
	/* MAP_NORESERVE: a 4 GiB guest that touches 100 MiB costs 100 MiB.
	 * The mapping is 2 MiB aligned (over-allocate, trim both ends):
	 * KVM maps a guest huge page only where host and guest addresses
	 * are congruent mod 2 MiB, and kernels before 6.7 do not align
	 * large anonymous mappings by themselves.  With 4 KiB mappings
	 * every first touch of guest RAM is a separate nested page fault,
	 * which under nested virtualization is what the guest's early boot
	 * (the bzImage decompressor) spends most of its time on. */
	uint8_t *p = mmap(NULL, size + RAM_ALIGN, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint64_t head;

	if (p == MAP_FAILED)
		return NULL;
	head = (RAM_ALIGN - ((uintptr_t)p & (RAM_ALIGN - 1))) & (RAM_ALIGN - 1);
	if (head)
		munmap(p, head);
	munmap(p + head + size, RAM_ALIGN - head);
	p += head;
	madvise(p, size, MADV_HUGEPAGE); /* fewer nested page walks; best effort */
	return p;
}

static int setup_memory(struct vm *vm)
{
	uint64_t size = vm->cfg->mem_size;

	vm->ram_low_size = size < MEM_32BIT_GAP_START ? size : MEM_32BIT_GAP_START;
	vm->ram_high_size = size - vm->ram_low_size;
	vm->ram_low = map_ram(vm->ram_low_size);
	if (!vm->ram_low)
		goto nomem;
	if (set_slot(vm, 0, 0, vm->ram_low_size, vm->ram_low))
		return -1;
	if (vm->ram_high_size) {
		vm->ram_high = map_ram(vm->ram_high_size);
		if (!vm->ram_high)
			goto nomem;
		if (set_slot(vm, 1, MEM_4G, vm->ram_high_size, vm->ram_high))
			return -1;
	}
	return 0;
nomem:
	log_err("cannot map %llu MiB of guest memory: %s; use a smaller -m",
		(unsigned long long)(size >> 20), strerror(errno));
	return -1;
}

static int setup_irqchip(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){ KVM_IDENTITY_ADDR }) < 0) {
		log_err("KVM_SET_TSS_ADDR/IDENTITY_MAP_ADDR: %s", strerror(errno));
		return -1;
	}
	/* PIC + IOAPIC + per-vCPU LAPIC emulated in the kernel: interrupt
	 * delivery and EOIs never come to userspace. */
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_err("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_err("KVM_CREATE_PIT2: %s", strerror(errno));
		return -1;
	}
	return vm_irq_routing_init(vm);
}

static void devices_exit(struct vm *vm, int upto)
{
	for (int i = upto - 1; i >= 0; i--)
		if (device_table[i].exit)
			device_table[i].exit(vm);
}

static int devices_init(struct vm *vm, int *done)
{
	for (*done = 0; *done < device_table_len; (*done)++) {
		int ret = device_table[*done].init(vm);
		if (ret < 0) {
			log_debug("device %s failed: %s", device_table[*done].name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int load_guest(struct vm *vm, struct boot_info *bi)
{
	const struct vm_config *cfg = vm->cfg;
	uint64_t rsdp = 0;
	char err[256];
	int ret;

	ret = acpi_build(&vm->mem, (unsigned)vm->nr_vcpus, &rsdp);
	if (ret < 0) {
		log_err("building ACPI tables: %s", strerror(-ret));
		return ret;
	}
	if (bios_stub_install(&vm->mem) || longmode_tables(&vm->mem)) {
		log_err("cannot write boot page tables");
		return -EFAULT;
	}
	ret = boot_load(&vm->mem, vm->ram_low_size, vm->ram_high_size,
			cfg->kernel_data, cfg->kernel_len, cfg->initrd_data, cfg->initrd_len,
			cfg->cmdline, rsdp, bi, err, sizeof(err));
	if (ret < 0) {
		log_err("%s: %s", cfg->kernel, err);
		return ret;
	}
	if (cfg->images_reclaimable) {
		madvise((void *)cfg->kernel_data, cfg->kernel_len, MADV_DONTNEED);
		if (cfg->initrd_data)
			madvise((void *)cfg->initrd_data, cfg->initrd_len, MADV_DONTNEED);
	}
	return ret;
}

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			break;
	}
	log_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	return NULL;
}

enum vm_exit vm_run_once(const struct vm_config *cfg)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct kvm_cpuid2 *cpuid = NULL;
	struct evloop loop;
	struct boot_info bi;
	/* Failures up to the first guest instruction are setup errors
	 * (exit status 1), each already explained in one line. */
	enum vm_exit result = VM_EXIT_SETUP;
	int ndev = 0, nvcpu = 0;
	bool loop_ok = false;

	if (!vm)
		return VM_EXIT_ERROR;
	vm->cfg = cfg;
	vm->vm_fd = -1;
	vm->nr_vcpus = (int)cfg->ncpus;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	pthread_mutex_init(&vm->irq_lock, NULL);

	vm->kvm_fd = kvm_open_checked();
	if (vm->kvm_fd < 0)
		goto out;
	vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0 || vm->vcpu_mmap_size <= 0) {
		log_err("KVM_CREATE_VM: %s", strerror(errno));
		goto out;
	}
	if (evloop_init(&loop) < 0)
		goto out;
	loop_ok = true;
	vm->loop = &loop;
	if (setup_memory(vm) || setup_irqchip(vm))
		goto out;
	if (devices_init(vm, &ndev) < 0)
		goto out; /* the device printed why */
	if (load_guest(vm, &bi) < 0)
		goto out;
	result = VM_EXIT_ERROR;
	if (cfg->stats)
		stats_init(vm);

	cpuid = supported_cpuid(vm->kvm_fd);
	vm->vcpus = calloc((size_t)vm->nr_vcpus, sizeof(*vm->vcpus));
	if (!cpuid || !vm->vcpus)
		goto out;
	for (nvcpu = 0; nvcpu < vm->nr_vcpus; nvcpu++)
		if (vcpu_create(vm, nvcpu, cpuid, &vm->vcpus[nvcpu]) < 0)
			goto out;
	/* Only the BSP starts running; with the in-kernel LAPIC the APs wait
	 * for INIT/SIPI from Linux's SMP bring-up. */
	if (vcpu_boot_regs(vm->vcpus[0], bi.entry, bi.zero_page) < 0) {
		log_err("setting boot registers: %s", strerror(errno));
		goto out;
	}
	for (int i = 0; i < vm->nr_vcpus; i++)
		if (vcpu_start(vm->vcpus[i]) < 0) {
			log_err("cannot start vCPU thread %d", i);
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		}

	while (atomic_load(&vm->exit_reason) == VM_EXIT_NONE)
		if (evloop_run_until_woken(&loop) < 0)
			vm_request_exit(vm, VM_EXIT_ERROR);
	result = (enum vm_exit)atomic_load(&vm->exit_reason);

out:
	if (vm->vcpus) {
		for (int i = 0; i < nvcpu; i++)
			vcpu_kick(vm->vcpus[i]);
		for (int i = 0; i < nvcpu; i++)
			vcpu_join(vm->vcpus[i]);
	}
	if (log_level >= LOG_DEBUG && vm->vcpus)
		for (int i = 0; i < nvcpu; i++)
			vcpu_dump(vm->vcpus[i]);
	if (cfg->stats && result != VM_EXIT_NONE && result != VM_EXIT_SETUP)
		stats_print(vm, ndev);
	stats_free(vm);
	devices_exit(vm, ndev);
	if (vm->vcpus) {
		for (int i = 0; i < nvcpu; i++)
			vcpu_destroy(vm->vcpus[i]);
		free(vm->vcpus);
	}
	free(cpuid);
	free(vm->routes);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->ram_low)
		munmap(vm->ram_low, vm->ram_low_size);
	if (vm->ram_high)
		munmap(vm->ram_high, vm->ram_high_size);
	if (loop_ok)
		evloop_destroy(&loop);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	pthread_mutex_destroy(&vm->irq_lock);
	free(vm);
	return result;
}
