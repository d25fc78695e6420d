/* Per-vCPU CPUID: KVM's supported set, with topology and APIC IDs filled in
 * for this vCPU (the kernel counts CPUs from the MADT but derives
 * core/thread structure and APIC IDs from CPUID, so they must agree). */
#ifndef MINIVMM_CPUID_H
#define MINIVMM_CPUID_H

#include <linux/kvm.h>

void cpuid_patch(struct kvm_cpuid2 *c, unsigned apic_id, unsigned ncpus);

#endif
