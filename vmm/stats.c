#include "vmm/stats.h"

#include <stdio.h>

#include "vmm/devices.h"
#include "vmm/vm.h"

void stats_print(struct vm *vm, int ndevices)
{
	struct vm_stats *s = &vm->stats;
	unsigned long io = atomic_load(&s->exits_io), mmio = atomic_load(&s->exits_mmio);
	unsigned long hlt = atomic_load(&s->exits_hlt), other = atomic_load(&s->exits_other);
	unsigned long intr = atomic_load(&s->exits_intr);

	fprintf(stderr, "minivmm: stats: exits total %lu: io %lu mmio %lu hlt %lu intr %lu other %lu\r\n",
		io + mmio + hlt + other + intr, io, mmio, hlt, intr, other);
	fprintf(stderr, "minivmm: stats: irqs injected from userspace %lu, unhandled pio %lu mmio %lu\r\n",
		atomic_load(&s->irqs_injected), vm->pio.unhandled, vm->mmio.unhandled);
	for (int i = 0; i < ndevices; i++)
		if (device_table[i].stats)
			device_table[i].stats(vm);
}
