/* A tiny AML (ACPI Machine Language) byte-code writer: just enough to emit
 * the DSDT minivmm needs (named objects, Scope, Device, Package, Buffer and
 * the resource descriptors of a _CRS).  Reference: ACPI 6.5 §20 (AML
 * grammar) and §6.4 (resource data types).
 *
 * AML is a prefix encoding.  Nesting constructs (Scope, Device, Package,
 * Buffer) start with an opcode and a PkgLength that counts every byte of the
 * construct after the opcode, including the PkgLength itself (§20.2.4).
 * Since the length is only known at the end, aml_*_begin() remembers where
 * the body starts and aml_end() inserts the encoded header in front of it.
 *
 * Errors are sticky: once the buffer is full (or nesting is wrong) every
 * later call does nothing and aml_finish() returns the error, so callers
 * need to check only once. */
#ifndef MINIVMM_AML_H
#define MINIVMM_AML_H

#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 8

struct aml {
	uint8_t *buf;
	size_t len, cap;
	int err;                       /* 0 or -errno, sticky */
	int depth;
	struct {
		size_t start;          /* offset of the body (after the opcode) */
		uint8_t kind;          /* AML_K_* in aml.c */
	} stack[AML_MAX_DEPTH];
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
/* Bytes written, or -errno (-ENOSPC: buffer too small, -EINVAL: misuse). */
long aml_finish(struct aml *a);

/* Raw bytes (used by the resource descriptors). */
void aml_bytes(struct aml *a, const void *p, size_t n);

/* Data objects (§20.2.3): the shortest of ZeroOp/OneOp/Byte/Word/DWord/
 * QWordConst, a String, and an EISA id as used by _HID/_CID (§6.1.5). */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
void aml_eisaid(struct aml *a, const char *id /* "PNP0A08" */);

/* A NameString (§20.2.2): optional leading '\' then 1-4 character segments
 * separated by '.', e.g. "\\_SB.PCI0".  Short segments are padded with '_'. */
void aml_name_string(struct aml *a, const char *path);

/* Name (path, <value>): emits NameOp and the name; the caller emits the
 * value next (aml_integer, aml_package_begin, ...). */
void aml_name(struct aml *a, const char *path);

/* Nesting constructs, each closed by aml_end(). */
void aml_scope_begin(struct aml *a, const char *path);
void aml_device_begin(struct aml *a, const char *path);
void aml_package_begin(struct aml *a, uint8_t nelem);
/* Buffer: its BufferSize is the number of bytes emitted before aml_end(). */
void aml_buffer_begin(struct aml *a);
void aml_end(struct aml *a);

/* Resource descriptors for a ResourceTemplate (§6.4), emitted inside
 * aml_buffer_begin()/aml_end().  The *_window ones are "ResourceProducer,
 * MinFixed, MaxFixed, PosDecode" address-space descriptors as used for a
 * PCI host bridge's windows. */
void aml_res_io(struct aml *a, uint16_t base, uint8_t align, uint8_t len);
void aml_res_irq(struct aml *a, uint8_t irq);
void aml_res_bus_window(struct aml *a, uint16_t min, uint16_t max);
void aml_res_io_window(struct aml *a, uint16_t min, uint16_t max);
void aml_res_mem32_window(struct aml *a, uint32_t min, uint32_t max);
void aml_res_end(struct aml *a);

#endif
