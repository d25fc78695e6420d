#include "firmware/boot_params.h"

#include <asm/bootparam.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "firmware/layout.h"
#include "vmm/vm.h"

#define E820_RAM      1
#define E820_RESERVED 2

int e820_build(struct boot_e820_entry *tab, int max, uint64_t ram_low, uint64_t ram_high)
{
	const struct boot_e820_entry want[] = {
		/* Conventional memory up to the EBDA, then the legacy BIOS area
		 * where our ACPI tables live (reserved so Linux keeps them). */
		{ 0, EBDA_START, E820_RAM },
		{ EBDA_START, HIGH_MEM_START - EBDA_START, E820_RESERVED },
		{ HIGH_MEM_START, ram_low - HIGH_MEM_START, E820_RAM },
		{ MEM_4G, ram_high, E820_RAM },
	};
	int n = 0;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (want[i].size == 0)
			continue;
		if (n == max)
			return -ENOSPC;
		tab[n++] = want[i];
	}
	return n;
}

int boot_load(const struct guest_mem *gm, uint64_t ram_low, uint64_t ram_high,
	      const uint8_t *kernel, size_t kernel_len,
	      const uint8_t *initrd, size_t initrd_len,
	      const char *cmdline, uint64_t rsdp, struct boot_info *bi,
	      char *err, size_t errlen)
{
	struct boot_params bp;
	struct bzimage bz;
	size_t cmdlen = strlen(cmdline);
	uint64_t load, kernel_end;
	int n, ret;

	ret = bzimage_parse(kernel, kernel_len, &bz, err, errlen);
	if (ret)
		return ret;

	/* Load at the kernel's preferred address (16 MiB for distro kernels):
	 * the decompressor then runs in place instead of moving itself. */
	load = bz.relocatable ? KERNEL_LOAD_ADDR : bz.pref_address;
	if (bz.pref_address && !bz.relocatable && bz.pref_address < HIGH_MEM_START)
		load = HIGH_MEM_START;
	kernel_end = load + bz.init_size;
	if (kernel_end > ram_low) {
		snprintf(err, errlen, "the kernel needs %llu MiB of low memory to decompress; give the VM more with -m",
			 (unsigned long long)((kernel_end + (1 << 20) - 1) >> 20) + 16);
		return -ENOMEM;
	}
	if (gm_write(gm, load, bz.kernel, bz.kernel_size)) {
		snprintf(err, errlen, "kernel does not fit in guest memory");
		return -ENOMEM;
	}

	if (cmdlen > bz.cmdline_size || cmdlen >= BOOT_CMDLINE_MAX) {
		snprintf(err, errlen, "kernel command line is %zu bytes; this kernel accepts at most %u",
			 cmdlen, bz.cmdline_size);
		return -E2BIG;
	}
	if (gm_write(gm, BOOT_CMDLINE_ADDR, cmdline, cmdlen + 1))
		return -EFAULT;

	/* The zero page starts as a copy of the file's setup header
	 * (boot.rst: "read the header ... then fill in"). */
	memset(&bp, 0, sizeof(bp));
	memcpy((uint8_t *)&bp + 0x1f1, kernel + 0x1f1, bz.hdr_end - 0x1f1);
	bp.hdr.type_of_loader = 0xff;          /* "undefined" loader */
	bp.hdr.loadflags |= LOADED_HIGH;
	bp.hdr.code32_start = (uint32_t)load;
	bp.hdr.cmd_line_ptr = (uint32_t)BOOT_CMDLINE_ADDR;
	bp.hdr.cmdline_size = (uint32_t)cmdlen;
	bp.acpi_rsdp_addr = rsdp;              /* protocol 2.14+; older kernels scan */

	bi->initrd_addr = bi->initrd_size = 0;
	if (initrd && initrd_len) {
		/* As high as allowed, page aligned, above the kernel. */
		uint64_t top = ram_low;
		uint64_t addr;

		if (bz.initrd_addr_max && (uint64_t)bz.initrd_addr_max + 1 < top)
			top = (uint64_t)bz.initrd_addr_max + 1;
		if (initrd_len > top || ((top - initrd_len) & ~0xfffULL) < kernel_end) {
			snprintf(err, errlen, "initrd (%zu MiB) does not fit in guest memory below %llu MiB next to the kernel; give the VM more with -m",
				 initrd_len >> 20, (unsigned long long)(top >> 20));
			return -ENOMEM;
		}
		addr = (top - initrd_len) & ~0xfffULL;
		if (gm_write(gm, addr, initrd, initrd_len))
			return -EFAULT;
		bp.hdr.ramdisk_image = (uint32_t)addr;
		bp.hdr.ramdisk_size = (uint32_t)initrd_len;
		bi->initrd_addr = addr;
		bi->initrd_size = initrd_len;
	}

	n = e820_build(bp.e820_table, E820_MAX_ENTRIES_ZEROPAGE, ram_low, ram_high);
	if (n < 0)
		return n;
	bp.e820_entries = (uint8_t)n;

	if (gm_write(gm, BOOT_PARAMS_ADDR, &bp, sizeof(bp)))
		return -EFAULT;
	bi->kernel_addr = load;
	bi->entry = load + 0x200;  /* startup_64 */
	bi->zero_page = BOOT_PARAMS_ADDR;
	return 0;
}
