/* ACPI tables for the guest (ACPI 6.5; section numbers refer to it).
 *
 * minivmm describes a "hardware-reduced" ACPI platform (§4.1): no PM1
 * event/control blocks, no SCI, no FACS.  Power-off and reset go through
 * the FADT's SLEEP_CONTROL_REG and RESET_REG, which point at the small I/O
 * device in devices/acpi_pm.c.
 *
 * Layout in guest memory, inside the e820-reserved BIOS area:
 *   ACPI_TABLES_GPA  RSDP (16-byte aligned so the legacy scan of
 *                    0xE0000-0xFFFFF also finds it, §5.2.5.1)
 *   then             XSDT, FADT ("FACP"), MADT ("APIC"), DSDT
 * The loader also stores the RSDP address in boot_params.acpi_rsdp_addr. */
#ifndef MINIVMM_ACPI_H
#define MINIVMM_ACPI_H

#include <stddef.h>
#include <stdint.h>

struct guest_mem;

#define ACPI_TABLES_GPA 0xE0000ULL
#define ACPI_TABLES_END 0x100000ULL  /* exclusive */

/* I/O ports of the power-management device (devices/acpi_pm.c). */
#define ACPI_PM_PORT_BASE      0x600
#define ACPI_SLEEP_CTL_PORT    0x600 /* FADT SLEEP_CONTROL_REG, 8 bit */
#define ACPI_SLEEP_STS_PORT    0x601 /* FADT SLEEP_STATUS_REG, 8 bit */
#define ACPI_RESET_PORT        0x602 /* FADT RESET_REG, 8 bit */
#define ACPI_PM_PORT_LEN       3

/* Sleep Control Register (§4.8.3.7): SLP_TYP in bits 2-4, SLP_EN bit 5.
 * Sleep Status Register (§4.8.3.8): WAK_STS bit 7 (write 1 to clear). */
#define ACPI_SLP_TYP_SHIFT 2
#define ACPI_SLP_TYP_MASK  0x1C
#define ACPI_SLP_EN        0x20
#define ACPI_WAK_STS       0x80
/* The SLP_TYP value the DSDT's \_S5 package announces for soft-off. */
#define ACPI_S5_SLP_TYP    5

/* Written to RESET_REG to reset the machine (FADT RESET_VALUE). */
#define ACPI_RESET_VALUE   0x0F

/* IOAPIC as created by KVM_CREATE_IRQCHIP: id 0 (KVM's reset value),
 * 24 pins, GSI base 0.  LAPIC ids are 0..ncpus-1. */
#define ACPI_IOAPIC_ID     0
#define ACPI_IOAPIC_PINS   24

/* Build RSDP, XSDT, FADT, MADT and DSDT for `ncpus` vCPUs and copy them to
 * ACPI_TABLES_GPA.  On success stores the RSDP address in *rsdp_gpa and
 * returns 0; -EINVAL for ncpus == 0, -ENOSPC if the tables do not fit
 * below ACPI_TABLES_END, -EFAULT if guest memory does not cover the area,
 * -ENOMEM. */
int acpi_build(const struct guest_mem *gm, unsigned ncpus, uint64_t *rsdp_gpa);

/* Internal to firmware/ (acpi_dsdt.c): write the DSDT's AML body (what
 * follows its 36-byte header) into buf.  Returns its length or -errno. */
long acpi_dsdt_body(uint8_t *buf, size_t cap);

#endif
