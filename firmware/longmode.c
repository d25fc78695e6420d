#include "firmware/longmode.h"

#include <string.h>

#include "firmware/layout.h"

#define PTE_P   (1ULL << 0)
#define PTE_RW  (1ULL << 1)
#define PTE_PS  (1ULL << 7)   /* 2 MiB page in a PD entry */

#define CR0_PE  (1ULL << 0)
#define CR0_ET  (1ULL << 4)
#define CR0_NE  (1ULL << 5)
#define CR0_PG  (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

/* GDT descriptor: base 0, limit 4 GiB, with the given access and flags. */
static uint64_t gdt_entry(uint8_t access, uint8_t flags)
{
	return 0xFFFFULL | (0xFULL << 48) | ((uint64_t)access << 40) | ((uint64_t)flags << 52);
}

int longmode_tables(const struct guest_mem *gm)
{
	/* Index 2 = 0x10 code (L=1), index 3 = 0x18 data.  Flags: G=8, L=2,
	 * D/B=4.  Access: P|S|type (code exec/read 0x9B, data rw 0x93). */
	uint64_t gdt[4] = { 0, 0, gdt_entry(0x9B, 0xA), gdt_entry(0x93, 0xC) };
	uint64_t pml4[512] = { 0 }, pdpt[512] = { 0 }, pd[512];

	if (gm_write(gm, BOOT_GDT_ADDR, gdt, sizeof(gdt)))
		return -1;
	/* Identity-map 4 GiB with 2 MiB pages: 1 PML4 entry -> 1 PDPT with
	 * 4 entries -> 4 page directories. */
	pml4[0] = BOOT_PDPT_ADDR | PTE_P | PTE_RW;
	for (int i = 0; i < 4; i++) {
		pdpt[i] = (BOOT_PD_ADDR + i * 0x1000ULL) | PTE_P | PTE_RW;
		for (int j = 0; j < 512; j++)
			pd[j] = (((uint64_t)i << 30) + ((uint64_t)j << 21)) | PTE_P | PTE_RW | PTE_PS;
		if (gm_write(gm, BOOT_PD_ADDR + i * 0x1000ULL, pd, sizeof(pd)))
			return -1;
	}
	if (gm_write(gm, BOOT_PML4_ADDR, pml4, sizeof(pml4)) ||
	    gm_write(gm, BOOT_PDPT_ADDR, pdpt, sizeof(pdpt)))
		return -1;
	return 0;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int l, int db)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xFFFFFFFF;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->l = l;
	s->db = db;
	s->g = 1;
}

void longmode_regs(struct kvm_sregs *s, struct kvm_regs *r, uint64_t entry, uint64_t zero_page)
{
	seg(&s->cs, BOOT_CS, 0xB, 1, 0);
	seg(&s->ds, BOOT_DS, 0x3, 0, 1);
	s->es = s->fs = s->gs = s->ss = s->ds;
	s->gdt.base = BOOT_GDT_ADDR;
	s->gdt.limit = 4 * 8 - 1;
	s->idt.base = 0;
	s->idt.limit = 0;
	s->cr3 = BOOT_PML4_ADDR;
	s->cr4 = CR4_PAE;
	s->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	s->efer = EFER_LME | EFER_LMA;

	memset(r, 0, sizeof(*r));
	r->rflags = 2;      /* bit 1 is reserved-as-one; interrupts off */
	r->rip = entry;
	r->rsi = zero_page; /* boot.rst: %rsi holds the zero page address */
}
