/* The DSDT's AML (§5.2.11.1, ACPI 6.5).  In ASL it reads:
 *
 *   Name (\_S5, Package (4) { 5, 0, 0, 0 })
 *   Scope (\_SB) {
 *     Device (PCI0) {
 *       Name (_HID, EisaId ("PNP0A08"))     // PCI Express root bridge
 *       Name (_CID, EisaId ("PNP0A03"))     // compatible: PCI root bridge
 *       Name (_UID, 0)
 *       Name (_SEG, 0)                      // PCI segment group 0
 *       Name (_BBN, 0)                      // base bus number 0
 *       Name (_CRS, ResourceTemplate () {
 *         WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
 *                        0, 0, 0, 0, 1)                     // bus 0 only
 *         IO (Decode16, 0xCF8, 0xCF8, 1, 8)  // config mechanism #1 ports
 *         WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode,
 *                 EntireRange, 0, 0xD00, 0xFFFF, 0, 0xF300)
 *         DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
 *                      NonCacheable, ReadWrite, 0, PCI_MMIO_START,
 *                      PCI_MMIO_END - 1, 0, PCI_MMIO_END - PCI_MMIO_START)
 *       })
 *     }
 *     Device (COM1) {
 *       Name (_HID, EisaId ("PNP0501"))     // 16550A UART
 *       Name (_UID, 1)
 *       Name (_CRS, ResourceTemplate () {
 *         IO (Decode16, 0x3F8, 0x3F8, 1, 8)
 *         IRQNoFlags () {4}                  // edge, active high
 *       })
 *     }
 *     Device (RTC) {
 *       Name (_HID, EisaId ("PNP0B00"))     // CMOS clock, no alarm IRQ
 *       Name (_CRS, ResourceTemplate () { IO (Decode16, 0x70, 0x70, 1, 2) })
 *     }
 *   }
 *
 * Why each piece:
 * - \_S5 (§7.4.2.5): the SLP_TYP value for soft-off.  Linux's poweroff
 *   writes (SLP_TYP << 2) | SLP_EN to FADT.SLEEP_CONTROL_REG (§4.8.3.7).
 * - PCI0: with ACPI, Linux scans only the root bridges the namespace
 *   describes (PNP0A03/PNP0A08) and assigns BARs only inside the _CRS
 *   windows (§6.2.2, PCI Firmware Spec §4.1).  No _PRT: devices use MSI-X,
 *   so they need no INTx routing (give them Interrupt Pin 0).
 * - No MCFG: config space is reached through ports 0xCF8-0xCFF only, so
 *   Linux reports that extended config space is not available.
 *
 * - COM1 (PNP0501) and RTC (PNP0B00) must be described: on a
 *   hardware-reduced platform Linux installs the null legacy PIC, so ISA
 *   IRQs 0-15 get no IOAPIC mapping by default.  Without this _CRS the
 *   8250 driver finds the UART by legacy probing but its IRQ 4 is never
 *   routed, and interrupt-driven output (everything userspace writes)
 *   stalls.  The RTC gets I/O only (no alarm IRQ), which rtc_cmos accepts. */
#include <errno.h>

#include "firmware/acpi.h"
#include "firmware/aml.h"
#include "vmm/vm.h"

long acpi_dsdt_body(uint8_t *buf, size_t cap)
{
	struct aml a;

	aml_init(&a, buf, cap);

	aml_name(&a, "\\_S5");
	aml_package_begin(&a, 4);
	aml_integer(&a, ACPI_S5_SLP_TYP); /* SLP_TYPa */
	aml_integer(&a, 0);               /* SLP_TYPb (no PM1b block) */
	aml_integer(&a, 0);               /* reserved */
	aml_integer(&a, 0);               /* reserved */
	aml_end(&a);

	aml_scope_begin(&a, "\\_SB");

	aml_device_begin(&a, "PCI0");
	aml_name(&a, "_HID");
	aml_eisaid(&a, "PNP0A08");
	aml_name(&a, "_CID");
	aml_eisaid(&a, "PNP0A03");
	aml_name(&a, "_UID");
	aml_integer(&a, 0);
	aml_name(&a, "_SEG");
	aml_integer(&a, 0);
	aml_name(&a, "_BBN");
	aml_integer(&a, 0);
	aml_name(&a, "_CRS");
	aml_buffer_begin(&a);
	aml_res_bus_window(&a, 0, 0);
	aml_res_io(&a, 0xCF8, 1, 8);
	aml_res_io_window(&a, 0x0D00, 0xFFFF);
	aml_res_mem32_window(&a, (uint32_t)PCI_MMIO_START,
			     (uint32_t)(PCI_MMIO_END - 1));
	aml_res_end(&a);
	aml_end(&a); /* _CRS buffer */
	aml_end(&a); /* PCI0 */

	aml_device_begin(&a, "COM1");
	aml_name(&a, "_HID");
	aml_eisaid(&a, "PNP0501"); /* 16550A-compatible UART */
	aml_name(&a, "_UID");
	aml_integer(&a, 1);
	aml_name(&a, "_CRS");
	aml_buffer_begin(&a);
	aml_res_io(&a, 0x3F8, 1, 8);
	aml_res_irq(&a, 4);
	aml_res_end(&a);
	aml_end(&a);
	aml_end(&a);

	aml_device_begin(&a, "RTC");
	aml_name(&a, "_HID");
	aml_eisaid(&a, "PNP0B00"); /* AT real-time clock */
	aml_name(&a, "_CRS");
	aml_buffer_begin(&a);
	aml_res_io(&a, 0x70, 1, 2);
	aml_res_end(&a);
	aml_end(&a);
	aml_end(&a);

	aml_end(&a); /* \_SB */
	return aml_finish(&a);
}
