/* Hardware-reduced ACPI power-management registers (ACPI 6.5 §4.8.3.7-8,
 * §4.8.3.6), at the I/O ports the FADT names (firmware/acpi.h):
 *
 *   ACPI_SLEEP_CTL_PORT  Sleep Control: SLP_EN|SLP_TYP=5 -> power off
 *   ACPI_SLEEP_STS_PORT  Sleep Status: reads 0 (WAK_STS never set: the
 *                        guest never wakes up from S5 here)
 *   ACPI_RESET_PORT      Reset Register: ACPI_RESET_VALUE -> reboot
 *
 * Device hooks as in vmm/devices.h; state lives in vm->acpi_pm. */
#ifndef MINIVMM_ACPI_PM_H
#define MINIVMM_ACPI_PM_H

#include <stdatomic.h>

struct vm;

struct acpi_pm {
	struct vm *vm;
	atomic_ulong ignored;  /* writes that asked for something unsupported */
};

int acpi_pm_init(struct vm *vm);
void acpi_pm_exit(struct vm *vm);

#endif
