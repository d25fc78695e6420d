/* Port 0x80, the POST-code port.  Linux writes it as an I/O delay
 * (io_delay=0x80, the default): claim it so it is not counted as an
 * unknown access.  Our default cmdline says io_delay=none, which avoids
 * these exits altogether. */
#include "devices/postcode.h"

#include "vmm/vm.h"

static void postcode_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	(void)opaque; (void)off;
	if (!is_write)
		for (uint32_t i = 0; i < len; i++)
			data[i] = 0xff;
}

int postcode_init(struct vm *vm)
{
	return bus_register(&vm->pio, 0x80, 1, postcode_io, vm, "postcode");
}

void postcode_exit(struct vm *vm)
{
	bus_unregister(&vm->pio, 0x80, vm);
}
