/* Just enough of the PS/2 controller (i8042) for a VM: the reset line.
 * The FADT does not claim an 8042 (IAPC_BOOT_ARCH bit 1 clear), so Linux
 * does not probe for a keyboard at all, which saves dozens of exits; but
 * "reboot=k" and some boot loaders still pulse the CPU reset through
 * command 0xFE, and that must restart the VM. */
#include "devices/i8042.h"

#include <stdlib.h>
#include <string.h>

#include "vmm/vm.h"

#define I8042_DATA    0x60
#define I8042_CMD     0x64
#define CMD_PULSE_RESET 0xfe

static void i8042_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct vm *vm = opaque;

	if (!is_write) {
		/* All-ones: a controller whose output buffer never drains.  When
		 * Linux probes ports directly, i8042_flush() gives up after 16
		 * reads and reports "No controller found" at once, where status
		 * 0 makes it wait for a command reply that never comes (~1.7 s
		 * of timeouts nested). */
		memset(data, 0xff, len);
		return;
	}
	if (off == I8042_CMD - I8042_DATA && data[0] == CMD_PULSE_RESET)
		vm_request_exit(vm, VM_EXIT_REBOOT);
}

int i8042_init(struct vm *vm)
{
	/* 0x60..0x64 as one range; 0x61 (speaker/PIT gate) is taken by KVM's
	 * in-kernel PIT before it reaches us. */
	return bus_register(&vm->pio, I8042_DATA, 5, i8042_io, vm, "i8042");
}

void i8042_exit(struct vm *vm)
{
	bus_unregister(&vm->pio, I8042_DATA, vm);
}
