/* The device table: initialised in this order, torn down in reverse. */
#include "vmm/devices.h"

#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/postcode.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "vmm/console.h"

const struct device_hooks device_table[] = {
	{ "serial", serial_init, serial_exit, NULL },
	{ "console", console_init, console_exit, NULL },
	{ "i8042", i8042_init, i8042_exit, NULL },
	{ "rtc", rtc_init, rtc_exit, NULL },
	{ "postcode", postcode_init, postcode_exit, NULL },
	{ "acpi_pm", acpi_pm_init, acpi_pm_exit, NULL },
	{ "pci", pci_host_init, pci_host_exit, NULL },
	{ "virtio-blk", virtio_blk_init, virtio_blk_exit, virtio_blk_stats },
	{ "virtio-net", virtio_net_init, virtio_net_exit, virtio_net_stats },
};

const int device_table_len = sizeof(device_table) / sizeof(device_table[0]);
