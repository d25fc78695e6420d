#include "vmm/cpuid.h"

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;

	while ((1u << b) < n)
		b++;
	return b;
}

void cpuid_patch(struct kvm_cpuid2 *c, unsigned apic_id, unsigned ncpus)
{
	unsigned shift = bits_for(ncpus);

	/* Topology presented: one socket, ncpus cores, one thread each. */
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			/* EBX[31:24] initial APIC ID, [23:16] logical processors
			 * per package; ECX[31] "running under a hypervisor";
			 * EDX[28] HTT: the [23:16] field is valid. */
			e->ebx = (e->ebx & 0xffff) | (apic_id << 24) | ((ncpus & 0xff) << 16);
			e->ecx |= 1u << 31;
			if (ncpus > 1)
				e->edx |= 1u << 28;
			else
				e->edx &= ~(1u << 28);
			break;
		case 4:
			/* Intel deterministic cache params: EAX[31:26] = cores - 1,
			 * EAX[25:14] = threads sharing the cache - 1 (1 per core). */
			e->eax &= 0x3fff;
			e->eax |= ((ncpus - 1) & 0x3f) << 26;
			break;
		case 0xb:
		case 0x1f:
			/* Extended topology (SDM Vol 2A, CPUID leaf 0BH). */
			e->edx = apic_id;
			if (e->index == 0) {
				e->eax = 0;                 /* SMT: no bits */
				e->ebx = 1;
				e->ecx = (1u << 8) | 0;     /* type SMT */
			} else if (e->index == 1) {
				e->eax = shift;
				e->ebx = ncpus;
				e->ecx = (2u << 8) | 1;     /* type core */
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;          /* type invalid */
			}
			break;
		case 0x80000008:
			/* AMD: ECX[7:0] = cores - 1, [15:12] APIC ID core bits. */
			e->ecx = (e->ecx & ~0xf0ffu) | ((ncpus - 1) & 0xff) | (shift << 12);
			break;
		case 0x8000001e:
			/* AMD extended APIC ID, one thread per core, node 0. */
			e->eax = apic_id;
			e->ebx = apic_id & 0xff;
			e->ecx = 0;
			break;
		}
	}
}
