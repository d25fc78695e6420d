/* One vCPU: a KVM vCPU fd, its shared kvm_run page and a thread that loops
 * on KVM_RUN and dispatches exits to the buses. */
#ifndef MINIVMM_VCPU_H
#define MINIVMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

struct vcpu {
	struct vm *vm;
	int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

/* Create vCPU `id`, set CPUID (topology, APIC ID), MSRs and LAPIC LINTs. */
int vcpu_create(struct vm *vm, int id, const struct kvm_cpuid2 *supported, struct vcpu **out);
/* Put the boot CPU in 64-bit mode at entry with RSI = zero_page. */
int vcpu_boot_regs(struct vcpu *v, uint64_t entry, uint64_t zero_page);
int vcpu_start(struct vcpu *v);
/* Make KVM_RUN return as soon as possible (immediate_exit + signal). */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);
/* Print registers and the last exit to stderr (for failures). */
void vcpu_dump(struct vcpu *v);

/* Installs the no-op signal handler used by vcpu_kick (once per process). */
void vcpu_signal_setup(void);

#endif
