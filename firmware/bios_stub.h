#ifndef MINIVMM_BIOS_STUB_H
#define MINIVMM_BIOS_STUB_H
#include "vmm/guest_mem.h"
/* Write the reset-vector stub at 0xFFFF0.  0 or -EFAULT. */
int bios_stub_install(const struct guest_mem *gm);
#endif
