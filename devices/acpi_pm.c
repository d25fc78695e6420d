/* ACPI power-management I/O device; see acpi_pm.h. */
#include "devices/acpi_pm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "firmware/acpi.h"
#include "vmm/bus.h"
#include "vmm/log.h"
#include "vmm/vm.h"

/* One register byte.  `reg` is the offset from ACPI_PM_PORT_BASE. */
static void pm_write(struct acpi_pm *pm, unsigned reg, uint8_t v)
{
	switch (reg + ACPI_PM_PORT_BASE) {
	case ACPI_SLEEP_CTL_PORT:
		/* Sleep Control Register (§4.8.3.7): the sleep happens when
		 * SLP_EN is written as 1; SLP_TYP says which state, using the
		 * values of the DSDT's \_Sx packages.  We offer only \_S5. */
		if (!(v & ACPI_SLP_EN))
			return;
		if (((v & ACPI_SLP_TYP_MASK) >> ACPI_SLP_TYP_SHIFT) == ACPI_S5_SLP_TYP) {
			vm_request_exit(pm->vm, VM_EXIT_POWEROFF);
			return;
		}
		atomic_fetch_add(&pm->ignored, 1);
		log_guest("acpi: unsupported sleep type %u ignored",
			  (v & ACPI_SLP_TYP_MASK) >> ACPI_SLP_TYP_SHIFT);
		return;
	case ACPI_SLEEP_STS_PORT:
		/* WAK_STS is write-1-to-clear and never set: nothing to do. */
		return;
	case ACPI_RESET_PORT:
		/* Reset Register (§4.8.3.6): only RESET_VALUE resets. */
		if (v == ACPI_RESET_VALUE) {
			vm_request_exit(pm->vm, VM_EXIT_REBOOT);
			return;
		}
		atomic_fetch_add(&pm->ignored, 1);
		log_guest("acpi: reset register write 0x%02x ignored", v);
		return;
	}
}

static void pm_io(void *opaque, uint64_t addr, uint8_t *data, uint32_t len,
		  bool is_write)
{
	struct acpi_pm *pm = opaque;

	/* The registers are 8 bits wide; a wider access touches each byte
	 * (the bus only dispatches accesses entirely inside our range).  All
	 * of them read as 0: SLP_EN is write-only, WAK_STS is never set. */
	for (uint32_t i = 0; i < len; i++) {
		if (is_write)
			pm_write(pm, (unsigned)addr + i, data[i]);
		else
			data[i] = 0;
	}
}

int acpi_pm_init(struct vm *vm)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	int ret;

	if (!pm)
		return -ENOMEM;
	pm->vm = vm;
	ret = bus_register(&vm->pio, ACPI_PM_PORT_BASE, ACPI_PM_PORT_LEN, pm_io,
			   pm, "acpi_pm");
	if (ret < 0) {
		log_err("acpi_pm: cannot register ports 0x%x-0x%x: %s",
			ACPI_PM_PORT_BASE, ACPI_PM_PORT_BASE + ACPI_PM_PORT_LEN - 1,
			strerror(-ret));
		free(pm);
		return ret;
	}
	vm->acpi_pm = pm;
	return 0;
}

void acpi_pm_exit(struct vm *vm)
{
	struct acpi_pm *pm = vm->acpi_pm;

	if (!pm)
		return;
	bus_unregister(&vm->pio, ACPI_PM_PORT_BASE, pm);
	free(pm);
	vm->acpi_pm = NULL;
}
