/* ACPI static tables: RSDP, XSDT, FADT, MADT (and the DSDT's header; its
 * AML comes from acpi_dsdt.c).  Section numbers are ACPI 6.5.
 *
 * Everything is built in a host buffer laid out exactly as it will sit in
 * the guest at ACPI_TABLES_GPA, then copied in with one gm_write().  The
 * structures below mirror the spec's tables; ACPI is little endian, like
 * the x86 host. */
#include "firmware/acpi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/guest_mem.h"
#include "vmm/vm.h"

#define PACKED __attribute__((packed))

/* Identity shown by Linux as "ACPI: FACP 0x... (v06 MNVMM  MINIVMM ...)". */
#define OEM_ID       "MNVMM "    /* 6 chars */
#define OEM_TABLE_ID "MINIVMM "  /* 8 chars */
#define CREATOR_ID   "MNVM"      /* 4 chars */

/* System Description Table Header, common to all tables but the RSDP
 * (§5.2.6).  checksum makes the byte sum of the whole table 0 mod 256. */
struct acpi_header {
	char sig[4];
	uint32_t length;          /* whole table, header included */
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} PACKED;
_Static_assert(sizeof(struct acpi_header) == 36, "SDT header");

/* Root System Description Pointer, revision 2 (§5.2.5.3).  `checksum`
 * covers the first 20 bytes (the ACPI 1.0 part), `ext_checksum` all 36. */
struct acpi_rsdp {
	char sig[8];              /* "RSD PTR " */
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;         /* 2: ACPI 2.0+ with XSDT */
	uint32_t rsdt_addr;       /* 0: no RSDT, OSes use the XSDT */
	uint32_t length;
	uint64_t xsdt_addr;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} PACKED;
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");

/* Generic Address Structure (§5.2.3.2). */
struct acpi_gas {
	uint8_t space_id;         /* 0 system memory, 1 system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;      /* 1 byte, 2 word, 3 dword, 4 qword */
	uint64_t address;
} PACKED;
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS");

/* Fixed ACPI Description Table, revision 6 (§5.2.9, Table 5.9).  In a
 * hardware-reduced platform everything from SMI_CMD to CENTURY and the
 * X_PM* / X_GPE* blocks are ignored and left 0 (§5.2.9: "HW_REDUCED_ACPI"). */
struct acpi_fadt {
	struct acpi_header h;     /* "FACP" */
	uint32_t firmware_ctrl;   /* FACS: none in hardware-reduced mode */
	uint32_t dsdt;            /* 0: X_DSDT is used */
	uint8_t reserved0;
	uint8_t pm_profile;       /* 0 unspecified */
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk;
	uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;  /* offset 109 */
	uint8_t reserved1;
	uint32_t flags;           /* offset 112 */
	struct acpi_gas reset_reg; /* offset 116 */
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;    /* offset 131 */
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;          /* offset 140 */
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk, x_pm2_cnt_blk, x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg; /* offset 244 */
	struct acpi_gas sleep_status_reg;  /* offset 256 */
	char hypervisor_id[8];    /* offset 268 */
} PACKED;
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT rev 6");

/* FADT Fixed Feature Flags (Table 5.10). */
#define FADT_PWR_BUTTON     (1u << 4)  /* no fixed-feature power button */
#define FADT_SLP_BUTTON     (1u << 5)  /* no fixed-feature sleep button */
#define FADT_RESET_REG_SUP  (1u << 10) /* RESET_REG/RESET_VALUE are valid */
#define FADT_HW_REDUCED     (1u << 20) /* no fixed hardware, no SCI (§4.1) */

/* IA-PC Boot Architecture Flags (§5.2.9.3, Table 5.11).
 * - bit 1 "8042 present" stays CLEAR: devices/i8042.c is only a reset line
 *   (command 0xFE), and without the flag Linux skips the PS/2 probe.
 * - bit 2 "VGA not present": set, the console is the serial port.
 * - bit 3 "MSI not supported" must stay clear: devices use MSI-X.
 * - bit 5 "CMOS RTC not present" stays clear: devices/rtc.c exists. */
#define BOOT_ARCH_NO_VGA    (1u << 2)

/* MADT (§5.2.12): header, local APIC address, flags, then entries. */
struct acpi_madt {
	struct acpi_header h;     /* "APIC" */
	uint32_t lapic_addr;
	uint32_t flags;           /* bit 0 PCAT_COMPAT: dual 8259s present */
} PACKED;

/* MADT entry types (Table 5.45) and their layouts. */
enum {
	MADT_LAPIC = 0, MADT_IOAPIC = 1, MADT_LAPIC_NMI = 4,
	MADT_X2APIC = 9, MADT_X2APIC_NMI = 10,
};
#define MADT_ENABLED 1u            /* Local (x2)APIC flags bit 0 */

struct madt_lapic {               /* §5.2.12.2 */
	uint8_t type, length;     /* 0, 8 */
	uint8_t uid;              /* ACPI processor UID */
	uint8_t apic_id;
	uint32_t flags;
} PACKED;

struct madt_ioapic {              /* §5.2.12.3 */
	uint8_t type, length;     /* 1, 12 */
	uint8_t id, reserved;
	uint32_t addr;
	uint32_t gsi_base;
} PACKED;

struct madt_lapic_nmi {           /* §5.2.12.7 */
	uint8_t type, length;     /* 4, 6 */
	uint8_t uid;              /* 0xFF: all processors */
	uint16_t flags;           /* MPS INTI flags; 0 = conforms to the bus */
	uint8_t lint;             /* LINTn input: NMI is wired to LINT1 */
} PACKED;

struct madt_x2apic {              /* §5.2.12.12 */
	uint8_t type, length;     /* 9, 16 */
	uint16_t reserved;
	uint32_t x2apic_id;
	uint32_t flags;
	uint32_t uid;
} PACKED;

struct madt_x2apic_nmi {          /* §5.2.12.13 */
	uint8_t type, length;     /* 10, 12 */
	uint16_t flags;
	uint32_t uid;             /* 0xFFFFFFFF: all processors */
	uint8_t lint;
	uint8_t reserved[3];
} PACKED;

/* APIC ids below 255 must be described by Local APIC entries, 255 and
 * above (0xFF is the xAPIC broadcast id) by x2APIC entries (§5.2.12.12). */
#define XAPIC_MAX_ID 254

/* Host-side image of [ACPI_TABLES_GPA, ACPI_TABLES_END). */
struct tbuf {
	uint8_t *buf;
	size_t len, cap;
};

/* Reserve `size` bytes at a 16-byte aligned offset; NULL if full. */
static void *tb_alloc(struct tbuf *t, size_t size, uint64_t *gpa)
{
	size_t off = (t->len + 15) & ~(size_t)15;
	if (off > t->cap || size > t->cap - off)
		return NULL;
	t->len = off + size;
	*gpa = ACPI_TABLES_GPA + off;
	return t->buf + off;
}

static uint8_t sum8(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;
	while (n--)
		s += *b++;
	return s;
}

static void header_init(struct acpi_header *h, const char *sig, uint32_t len,
			uint8_t rev)
{
	memcpy(h->sig, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, OEM_ID, 6);
	memcpy(h->oem_table_id, OEM_TABLE_ID, 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, CREATOR_ID, 4);
	h->creator_revision = 1;
}

/* Call last, once the table is complete. */
static void header_checksum(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = (uint8_t)-sum8(h, h->length);
}

static struct acpi_gas gas_io8(uint16_t port)
{
	return (struct acpi_gas){ .space_id = 1, .bit_width = 8,
				  .bit_offset = 0, .access_size = 1,
				  .address = port };
}

static int build_dsdt(struct tbuf *t, uint64_t *gpa)
{
	size_t off = (t->len + 15) & ~(size_t)15;
	if (off + sizeof(struct acpi_header) > t->cap)
		return -ENOSPC;
	uint8_t *p = t->buf + off;
	long body = acpi_dsdt_body(p + sizeof(struct acpi_header),
				   t->cap - off - sizeof(struct acpi_header));
	if (body < 0)
		return (int)body;
	uint32_t len = (uint32_t)(sizeof(struct acpi_header) + (size_t)body);
	struct acpi_header *h = tb_alloc(t, len, gpa);
	/* Revision 2: integers in the AML are 64 bits wide (§5.2.11.1). */
	header_init(h, "DSDT", len, 2);
	header_checksum(h);
	return 0;
}

static int build_fadt(struct tbuf *t, uint64_t dsdt, uint64_t *gpa)
{
	struct acpi_fadt *f = tb_alloc(t, sizeof(*f), gpa);
	if (!f)
		return -ENOSPC;
	header_init(&f->h, "FACP", sizeof(*f), 6);
	f->minor_version = 5;     /* ACPI 6.5 */
	f->iapc_boot_arch = BOOT_ARCH_NO_VGA;
	f->flags = FADT_HW_REDUCED | FADT_RESET_REG_SUP | FADT_PWR_BUTTON |
		   FADT_SLP_BUTTON;
	f->reset_reg = gas_io8(ACPI_RESET_PORT);
	f->reset_value = ACPI_RESET_VALUE;
	f->x_dsdt = dsdt;
	/* Hardware-reduced sleep/poweroff interface (§4.8.3.7-8). */
	f->sleep_control_reg = gas_io8(ACPI_SLEEP_CTL_PORT);
	f->sleep_status_reg = gas_io8(ACPI_SLEEP_STS_PORT);
	memcpy(f->hypervisor_id, "MINIVMM ", 8);
	header_checksum(&f->h);
	return 0;
}

static int build_madt(struct tbuf *t, unsigned ncpus, uint64_t *gpa)
{
	unsigned nx = ncpus > XAPIC_MAX_ID + 1 ? ncpus - (XAPIC_MAX_ID + 1) : 0;
	unsigned nl = ncpus - nx;
	size_t len = sizeof(struct acpi_madt) + nl * sizeof(struct madt_lapic) +
		     nx * sizeof(struct madt_x2apic) + sizeof(struct madt_ioapic) +
		     sizeof(struct madt_lapic_nmi) +
		     (nx ? sizeof(struct madt_x2apic_nmi) : 0);
	if (len > UINT32_MAX)
		return -ENOSPC;
	uint8_t *p = tb_alloc(t, len, gpa);
	if (!p)
		return -ENOSPC;

	struct acpi_madt *m = (struct acpi_madt *)p;
	/* Revision 5 (ACPI 6.3+): flag bit 1 of Local APIC entries means
	 * "online capable"; we only use bit 0, Enabled. */
	header_init(&m->h, "APIC", (uint32_t)len, 5);
	m->lapic_addr = (uint32_t)LAPIC_ADDR;
	/* KVM_CREATE_IRQCHIP also emulates the two 8259 PICs. */
	m->flags = 1;
	size_t off = sizeof(*m);

	for (unsigned i = 0; i < ncpus; i++) {
		if (i <= XAPIC_MAX_ID) {
			struct madt_lapic e = { MADT_LAPIC, sizeof(e), (uint8_t)i,
						(uint8_t)i, MADT_ENABLED };
			memcpy(p + off, &e, sizeof(e));
			off += sizeof(e);
		} else {
			struct madt_x2apic e = { MADT_X2APIC, sizeof(e), 0, i,
						 MADT_ENABLED, i };
			memcpy(p + off, &e, sizeof(e));
			off += sizeof(e);
		}
	}
	struct madt_ioapic io = { MADT_IOAPIC, sizeof(io), ACPI_IOAPIC_ID, 0,
				  (uint32_t)IOAPIC_ADDR, 0 };
	memcpy(p + off, &io, sizeof(io));
	off += sizeof(io);
	/* No Interrupt Source Overrides: KVM routes GSI n to IOAPIC pin n and
	 * ISA IRQs 0-15 keep their defaults (edge, active high). */
	struct madt_lapic_nmi nmi = { MADT_LAPIC_NMI, sizeof(nmi), 0xFF, 0, 1 };
	memcpy(p + off, &nmi, sizeof(nmi));
	off += sizeof(nmi);
	if (nx) {
		struct madt_x2apic_nmi xn = { MADT_X2APIC_NMI, sizeof(xn), 0,
					      0xFFFFFFFF, 1, { 0 } };
		memcpy(p + off, &xn, sizeof(xn));
		off += sizeof(xn);
	}
	header_checksum(&m->h);
	return 0;
}

static int build_xsdt(struct tbuf *t, const uint64_t *tables, unsigned n,
		      uint64_t *gpa)
{
	size_t len = sizeof(struct acpi_header) + n * sizeof(uint64_t);
	uint8_t *p = tb_alloc(t, len, gpa);
	if (!p)
		return -ENOSPC;
	struct acpi_header *h = (struct acpi_header *)p;
	header_init(h, "XSDT", (uint32_t)len, 1);
	/* Entries are 64-bit addresses, only 4-byte aligned (§5.2.8). */
	memcpy(p + sizeof(*h), tables, n * sizeof(uint64_t));
	header_checksum(h);
	return 0;
}

int acpi_build(const struct guest_mem *gm, unsigned ncpus, uint64_t *rsdp_gpa)
{
	struct tbuf t = { .cap = ACPI_TABLES_END - ACPI_TABLES_GPA };
	uint64_t rsdp_at, xsdt, tables[2], dsdt;
	int ret;

	if (ncpus == 0)
		return -EINVAL;
	t.buf = calloc(1, t.cap);
	if (!t.buf)
		return -ENOMEM;

	/* The RSDP goes first, at ACPI_TABLES_GPA (16-byte aligned, inside
	 * the 0xE0000-0xFFFFF range that OSes scan, §5.2.5.1). */
	struct acpi_rsdp *r = tb_alloc(&t, sizeof(*r), &rsdp_at);
	if ((ret = build_dsdt(&t, &dsdt)) < 0 ||
	    (ret = build_fadt(&t, dsdt, &tables[0])) < 0 ||
	    (ret = build_madt(&t, ncpus, &tables[1])) < 0 ||
	    (ret = build_xsdt(&t, tables, 2, &xsdt)) < 0)
		goto out;

	memcpy(r->sig, "RSD PTR ", 8);
	memcpy(r->oem_id, OEM_ID, 6);
	r->revision = 2;
	r->length = sizeof(*r);
	r->xsdt_addr = xsdt;
	r->checksum = (uint8_t)-sum8(r, 20);
	r->ext_checksum = (uint8_t)-sum8(r, sizeof(*r));

	ret = gm_write(gm, ACPI_TABLES_GPA, t.buf, t.len);
	if (ret == 0)
		*rsdp_gpa = rsdp_at;
out:
	free(t.buf);
	return ret;
}
