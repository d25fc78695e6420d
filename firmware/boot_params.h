/* What a bootloader does for Linux: load the kernel and initrd, write the
 * command line, the e820 memory map and the zero page (boot_params).
 * Documentation/arch/x86/boot.rst, "64-bit boot protocol". */
#ifndef MINIVMM_BOOT_PARAMS_H
#define MINIVMM_BOOT_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "firmware/bzimage.h"
#include "vmm/guest_mem.h"

struct boot_e820_entry;

struct boot_info {
	uint64_t entry;        /* 64-bit entry point (load address + 0x200) */
	uint64_t zero_page;    /* goes in RSI */
	uint64_t kernel_addr, initrd_addr, initrd_size;
};

/* Fill tab with the e820 map for ram_low bytes at 0 and ram_high bytes at
 * 4 GiB.  Returns the number of entries (<= max) or -ENOSPC. */
int e820_build(struct boot_e820_entry *tab, int max, uint64_t ram_low, uint64_t ram_high);

/* Load everything into guest memory.  kernel/initrd are whole file contents
 * (initrd may be NULL).  rsdp is the ACPI RSDP address (0 = none).
 * 0 or -errno with a message in err. */
int boot_load(const struct guest_mem *gm, uint64_t ram_low, uint64_t ram_high,
	      const uint8_t *kernel, size_t kernel_len,
	      const uint8_t *initrd, size_t initrd_len,
	      const char *cmdline, uint64_t rsdp, struct boot_info *bi,
	      char *err, size_t errlen);

#endif
