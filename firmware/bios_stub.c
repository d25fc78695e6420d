/* The only "BIOS code" minivmm has: 9 bytes at the real-mode reset vector
 * F000:FFF0 (GPA 0xFFFF0) that ask for a reset through the ACPI reset
 * register.
 *
 * Why: on a hardware-reduced ACPI machine without DMI, Linux's
 * reboot_init() picks BOOT_EFI (efi_reboot_required() is true whenever
 * acpi_gbl_reduced_hardware is set), efi_reboot() does nothing without EFI,
 * and the next method is BOOT_BIOS: machine_real_restart() drops to real
 * mode and jumps to F000:FFF0.  With nothing there the vCPU would execute
 * zeros forever and the VM would hang instead of rebooting.  "reboot=acpi"
 * or "reboot=k" on the command line avoid the detour, but a user's own -p
 * may not say it. */
#include "firmware/bios_stub.h"

#include <errno.h>

#include "firmware/acpi.h"

#define RESET_VECTOR 0xFFFF0ULL

int bios_stub_install(const struct guest_mem *gm)
{
	const uint8_t code[] = {
		0xB0, ACPI_RESET_VALUE,                    /* mov al, RESET_VALUE */
		0xBA, ACPI_RESET_PORT & 0xff, ACPI_RESET_PORT >> 8, /* mov dx, port */
		0xEE,                                      /* out dx, al */
		0xF4,                                      /* hlt */
		0xEB, 0xFD,                                /* jmp back to hlt */
	};

	return gm_write(gm, RESET_VECTOR, code, sizeof(code)) ? -EFAULT : 0;
}
