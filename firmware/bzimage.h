/* Linux x86 bzImage header (Documentation/arch/x86/boot.rst, "The real-mode
 * kernel header").  We only use the 64-bit entry point, so we need protocol
 * 2.12+ with XLF_KERNEL_64. */
#ifndef MINIVMM_BZIMAGE_H
#define MINIVMM_BZIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BZ_MIN_PROTOCOL 0x020c   /* 2.12: xloadflags exists */

struct bzimage {
	uint16_t version;          /* boot protocol, e.g. 0x020f */
	uint32_t setup_size;       /* bytes of real-mode part incl. boot sector */
	size_t hdr_end;            /* file offset just past the setup header */
	const uint8_t *kernel;     /* protected-mode part (points into the file) */
	size_t kernel_size;
	bool relocatable;
	uint32_t kernel_alignment;
	uint64_t pref_address;
	uint32_t init_size;        /* memory the kernel needs from its load address */
	uint32_t initrd_addr_max;  /* highest address the initrd may END at */
	uint32_t cmdline_size;     /* max cmdline length, without the NUL */
	uint16_t xloadflags;
};

/* Validate the header of the file in buf[0..len).  0 or -EINVAL/-ENOEXEC,
 * with a message for a person in err. */
int bzimage_parse(const uint8_t *buf, size_t len, struct bzimage *bz,
		  char *err, size_t errlen);

#endif
