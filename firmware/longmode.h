/* CPU state for the 64-bit boot protocol: paging on, identity-mapped page
 * tables covering the kernel, zero page and cmdline, a flat GDT. */
#ifndef MINIVMM_LONGMODE_H
#define MINIVMM_LONGMODE_H

#include <linux/kvm.h>
#include "vmm/guest_mem.h"

/* Write the GDT and page tables into guest memory. 0 or -EFAULT. */
int longmode_tables(const struct guest_mem *gm);
/* Set up sregs for long mode and regs for entry with RSI = zero_page. */
void longmode_regs(struct kvm_sregs *s, struct kvm_regs *r, uint64_t entry, uint64_t zero_page);

#endif
