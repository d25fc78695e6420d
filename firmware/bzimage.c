#include "firmware/bzimage.h"

#include <asm/bootparam.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Offsets in the file, from boot.rst. */
#define OFF_SETUP_SECTS 0x1f1
#define OFF_BOOT_FLAG   0x1fe
#define OFF_JUMP        0x200  /* 2-byte jump; byte 0x201 gives the header length */
#define OFF_HDRS        0x202

int bzimage_parse(const uint8_t *buf, size_t len, struct bzimage *bz,
		  char *err, size_t errlen)
{
	struct setup_header h;
	size_t hdr_end, setup_size;

	memset(bz, 0, sizeof(*bz));
	if (len < OFF_SETUP_SECTS + sizeof(h)) {
		snprintf(err, errlen, "too small to be a Linux bzImage (%zu bytes)", len);
		return -ENOEXEC;
	}
	memcpy(&h, buf + OFF_SETUP_SECTS, sizeof(h));
	if (h.boot_flag != 0xAA55 || memcmp(&h.header, "HdrS", 4) != 0) {
		snprintf(err, errlen, "not a Linux bzImage (no 'HdrS' boot header); pass the kernel's bzImage/vmlinuz, not vmlinux or an initrd");
		return -ENOEXEC;
	}
	if (h.version < BZ_MIN_PROTOCOL) {
		snprintf(err, errlen, "boot protocol %u.%02u is too old; minivmm needs 2.12+ (Linux 3.8 or newer)",
			 h.version >> 8, h.version & 0xff);
		return -ENOEXEC;
	}
	if (!(h.xloadflags & XLF_KERNEL_64)) {
		snprintf(err, errlen, "kernel has no 64-bit entry point (xloadflags %#x); build it for x86_64",
			 h.xloadflags);
		return -ENOEXEC;
	}
	/* setup_sects == 0 means 4 for ancient compatibility (boot.rst). */
	setup_size = ((size_t)(h.setup_sects ? h.setup_sects : 4) + 1) * 512;
	/* The header ends at 0x202 + the jump's displacement byte. */
	hdr_end = OFF_HDRS + buf[OFF_JUMP + 1];
	if (setup_size >= len || hdr_end > setup_size) {
		snprintf(err, errlen, "bzImage is truncated (setup %zu bytes, file %zu bytes)", setup_size, len);
		return -ENOEXEC;
	}
	if (h.relocatable_kernel &&
	    (h.kernel_alignment == 0 || (h.kernel_alignment & (h.kernel_alignment - 1)))) {
		snprintf(err, errlen, "bzImage has an invalid kernel_alignment %#x", h.kernel_alignment);
		return -ENOEXEC;
	}
	if (h.init_size == 0 || h.init_size < len - setup_size) {
		snprintf(err, errlen, "bzImage has an invalid init_size %#x", h.init_size);
		return -ENOEXEC;
	}
	bz->version = h.version;
	bz->setup_size = (uint32_t)setup_size;
	bz->hdr_end = hdr_end;
	bz->kernel = buf + setup_size;
	bz->kernel_size = len - setup_size;
	bz->relocatable = h.relocatable_kernel;
	bz->kernel_alignment = h.kernel_alignment;
	bz->pref_address = h.pref_address;
	bz->init_size = h.init_size;
	bz->initrd_addr_max = h.initrd_addr_max;
	bz->cmdline_size = h.cmdline_size;
	bz->xloadflags = h.xloadflags;
	return 0;
}
