/* Where the "firmware" puts things in low guest memory.  Everything below
 * 0x9FC00 is usable RAM for Linux once it runs; these pages are only needed
 * until the kernel has copied boot_params and built its own page tables. */
#ifndef MINIVMM_LAYOUT_H
#define MINIVMM_LAYOUT_H

#define BOOT_GDT_ADDR      0x0500ULL
#define BOOT_PARAMS_ADDR   0x7000ULL   /* the "zero page" */
#define BOOT_PML4_ADDR     0x9000ULL
#define BOOT_PDPT_ADDR     0xA000ULL
#define BOOT_PD_ADDR       0xB000ULL   /* 4 pages: 4 GiB of 2 MiB mappings */
#define BOOT_CMDLINE_ADDR  0x20000ULL
#define BOOT_CMDLINE_MAX   0x10000ULL
#define EBDA_START         0x9FC00ULL  /* top of conventional memory */
#define BIOS_AREA_START    0xE0000ULL  /* ACPI tables live here (reserved) */
#define HIGH_MEM_START     0x100000ULL /* 1 MiB */
#define KERNEL_LOAD_ADDR   0x1000000ULL /* 16 MiB: Linux's default LOAD_PHYSICAL_ADDR */

/* Segment selectors the 64-bit boot protocol expects (__BOOT_CS/__BOOT_DS). */
#define BOOT_CS 0x10
#define BOOT_DS 0x18

#endif
