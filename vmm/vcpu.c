#include "vmm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "firmware/longmode.h"
#include "vmm/cpuid.h"
#include "vmm/log.h"
#include "vmm/stats.h"
#include "vmm/vm.h"

#define VCPU_KICK_SIGNAL SIGUSR1

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MISC_ENABLE_FAST_STRING 1

/* LAPIC register offsets (SDM Vol 3A, 11.5.1) and delivery modes. */
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI    (4u << 8)
#define APIC_MODE_EXTINT (7u << 8)

static void kick_handler(int sig) { (void)sig; }

void vcpu_signal_setup(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	/* No SA_RESTART: the point is to make KVM_RUN return -EINTR. */
	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

static int set_lints(struct vcpu *v)
{
	struct kvm_lapic_state l;
	uint32_t *lvt0 = (uint32_t *)&l.regs[APIC_LVT0];
	uint32_t *lvt1 = (uint32_t *)&l.regs[APIC_LVT1];

	if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	/* As a PC BIOS leaves it: LINT0 takes the 8259 PIC's ExtINT, LINT1
	 * is the NMI pin.  Linux relies on this for the "through 8259A"
	 * timer check and NMI watchdog. */
	*lvt0 = (*lvt0 & ~0x700u & ~(1u << 16)) | APIC_MODE_EXTINT;
	*lvt1 = (*lvt1 & ~0x700u & ~(1u << 16)) | APIC_MODE_NMI;
	if (ioctl(v->fd, KVM_SET_LAPIC, &l) < 0)
		return -errno;
	return 0;
}

static int set_msrs(struct vcpu *v)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} m = { .hdr.nmsrs = 1, .e = { { .index = MSR_IA32_MISC_ENABLE,
					  .data = MISC_ENABLE_FAST_STRING } } };

	return ioctl(v->fd, KVM_SET_MSRS, &m) == 1 ? 0 : -EINVAL;
}

int vcpu_create(struct vm *vm, int id, const struct kvm_cpuid2 *supported, struct vcpu **out)
{
	struct vcpu *v = calloc(1, sizeof(*v));
	size_t csz = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *c = NULL;
	int ret;

	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id);
	if (v->fd < 0) {
		ret = -errno;
		log_err("KVM_CREATE_VCPU %d: %s", id, strerror(errno));
		goto fail;
	}
	v->run = mmap(NULL, vm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		ret = -errno;
		v->run = NULL;
		log_err("mmap of vCPU %d's kvm_run: %s", id, strerror(errno));
		goto fail;
	}
	c = malloc(csz);
	if (!c) {
		ret = -ENOMEM;
		goto fail;
	}
	memcpy(c, supported, csz);
	cpuid_patch(c, (unsigned)id, (unsigned)vm->nr_vcpus);
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
		ret = -errno;
		log_err("KVM_SET_CPUID2 on vCPU %d: %s", id, strerror(errno));
		goto fail;
	}
	free(c);
	c = NULL;
	if ((ret = set_msrs(v)) < 0) {
		log_err("KVM_SET_MSRS on vCPU %d failed", id);
		goto fail;
	}
	if ((ret = set_lints(v)) < 0) {
		log_err("KVM_GET/SET_LAPIC on vCPU %d: %s", id, strerror(-ret));
		goto fail;
	}
	*out = v;
	return 0;
fail:
	free(c);
	vcpu_destroy(v);
	return ret;
}

int vcpu_boot_regs(struct vcpu *v, uint64_t entry, uint64_t zero_page)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 }; /* reset values */

	if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	longmode_regs(&s, &r, entry, zero_page);
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0 || ioctl(v->fd, KVM_SET_REGS, &r) < 0 ||
	    ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}

static const char *exit_name(uint32_t r)
{
	switch (r) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN (triple fault)";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	case KVM_EXIT_SYSTEM_EVENT: return "SYSTEM_EVENT";
	case KVM_EXIT_INTR: return "INTR";
	default: return "unknown";
	}
}

void vcpu_dump(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	fprintf(stderr, "minivmm: vCPU %d: exit reason %u (%s)\r\n", v->id,
		v->run->exit_reason, exit_name(v->run->exit_reason));
	if (v->run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		fprintf(stderr, "minivmm:   internal error suberror %u\r\n", v->run->internal.suberror);
	if (v->run->exit_reason == KVM_EXIT_FAIL_ENTRY)
		fprintf(stderr, "minivmm:   hardware entry failure reason %#llx\r\n",
			(unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return;
	fprintf(stderr,
		"minivmm:   rip %016llx rsp %016llx rflags %016llx\r\n"
		"minivmm:   rax %016llx rbx %016llx rcx %016llx rdx %016llx\r\n"
		"minivmm:   rsi %016llx rdi %016llx rbp %016llx\r\n"
		"minivmm:   cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %llx\r\n"
		"minivmm:   cs %04x base %llx  ss %04x\r\n",
		r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp,
		s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.base, s.ss.selector);
}

/* One PIO exit may carry `count` repetitions (REP INS/OUTS). */
static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool wr = run->io.direction == KVM_EXIT_IO_OUT;

	stats_pio_exit(v->vm, run->io.port);

	for (uint32_t i = 0; i < run->io.count; i++) {
		bus_dispatch(&v->vm->pio, run->io.port, data, run->io.size, wr);
		data += run->io.size;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	struct kvm_run *run = v->run;
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%d", v->id);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (atomic_load(&vm->exit_reason) == VM_EXIT_NONE) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				run->immediate_exit = 0;
				atomic_fetch_add(&vm->stats.exits_intr, 1);
				continue;
			}
			log_err("KVM_RUN on vCPU %d: %s", v->id, strerror(errno));
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			atomic_fetch_add(&vm->stats.exits_io, 1);
			handle_io(v);
			break;
		case KVM_EXIT_MMIO:
			atomic_fetch_add(&vm->stats.exits_mmio, 1);
			bus_dispatch(&vm->mmio, run->mmio.phys_addr, run->mmio.data,
				     run->mmio.len, run->mmio.is_write);
			break;
		case KVM_EXIT_HLT:
			/* With the in-kernel LAPIC, HLT is handled in KVM; we only
			 * see it if the guest halted with nothing to wake it. */
			atomic_fetch_add(&vm->stats.exits_hlt, 1);
			log_err("vCPU %d halted with interrupts disabled", v->id);
			vcpu_dump(v);
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			atomic_fetch_add(&vm->stats.exits_other, 1);
			vm_request_exit(vm, run->system_event.type == KVM_SYSTEM_EVENT_RESET ?
					VM_EXIT_REBOOT : VM_EXIT_POWEROFF);
			break;
		default:
			/* SHUTDOWN is a triple fault: the guest is dead. */
			atomic_fetch_add(&vm->stats.exits_other, 1);
			log_err("guest failure on vCPU %d", v->id);
			vcpu_dump(v);
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		}
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	int ret = pthread_create(&v->thread, NULL, vcpu_thread, v);

	if (ret)
		return -ret;
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->started)
		return;
	/* immediate_exit covers the window where the signal arrives just
	 * before the thread enters KVM_RUN. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	if (v->started)
		pthread_join(v->thread, NULL);
	v->started = false;
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	if (v->run)
		munmap(v->run, v->vm->vcpu_mmap_size);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
}
