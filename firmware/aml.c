/* Tiny AML writer; see aml.h.  Section numbers are ACPI 6.5. */
#include "firmware/aml.h"

#include <errno.h>
#include <string.h>

/* Opcodes (§20.2.5, §20.2.3) and name prefixes (§20.2.2). */
enum {
	AML_ZERO = 0x00, AML_ONE = 0x01, AML_ONES = 0xFF,
	AML_NAME = 0x08,
	AML_BYTE_PREFIX = 0x0A, AML_WORD_PREFIX = 0x0B, AML_DWORD_PREFIX = 0x0C,
	AML_STRING_PREFIX = 0x0D, AML_QWORD_PREFIX = 0x0E,
	AML_SCOPE = 0x10, AML_BUFFER = 0x11, AML_PACKAGE = 0x12,
	AML_DUAL_NAME = 0x2E, AML_MULTI_NAME = 0x2F,
	AML_EXT_PREFIX = 0x5B, AML_EXT_DEVICE = 0x82,
	AML_ROOT_CHAR = 0x5C,
};

enum { AML_K_PLAIN, AML_K_BUFFER };

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->buf = buf;
	a->cap = cap;
}

long aml_finish(struct aml *a)
{
	if (!a->err && a->depth != 0)
		a->err = -EINVAL; /* a begin without its end */
	return a->err ? a->err : (long)a->len;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->err)
		return;
	if (n > a->cap - a->len) {
		a->err = -ENOSPC;
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void put8(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

/* Little-endian helpers: AML and resource descriptors are little endian. */
static void put_le(struct aml *a, uint64_t v, int n)
{
	uint8_t b[8];
	for (int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, (size_t)n);
}

/* ComputationalData integer: ZeroOp, OneOp and OnesOp are one byte each;
 * otherwise the smallest prefix that holds the value (§20.2.3). */
static size_t enc_integer(uint64_t v, uint8_t out[9])
{
	int n;

	if (v == 0 || v == 1) {
		out[0] = v ? AML_ONE : AML_ZERO;
		return 1;
	}
	if (v <= 0xFF) {
		out[0] = AML_BYTE_PREFIX;
		n = 1;
	} else if (v <= 0xFFFF) {
		out[0] = AML_WORD_PREFIX;
		n = 2;
	} else if (v <= 0xFFFFFFFF) {
		out[0] = AML_DWORD_PREFIX;
		n = 4;
	} else {
		out[0] = AML_QWORD_PREFIX;
		n = 8;
	}
	for (int i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return (size_t)n + 1;
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t b[9];
	aml_bytes(a, b, enc_integer(v, b));
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p > 0x7F)
			a->err = a->err ? a->err : -EINVAL; /* AsciiChar is 0x01-0x7F */
	put8(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1); /* with the NullChar */
}

/* Compressed EISA id (§6.1.5): three letters of 5 bits each ('A' = 1), then
 * four hex digits, stored as a big-endian 32-bit value in a DWordConst. */
void aml_eisaid(struct aml *a, const char *id)
{
	uint8_t b[4];
	int i;

	if (strlen(id) != 7)
		goto bad;
	for (i = 0; i < 3; i++)
		if (id[i] < 'A' || id[i] > 'Z')
			goto bad;
	for (i = 3; i < 7; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
			goto bad;
	uint32_t c1 = id[0] - 0x40u, c2 = id[1] - 0x40u, c3 = id[2] - 0x40u;
	b[0] = (uint8_t)((c1 << 2) | (c2 >> 3));
	b[1] = (uint8_t)(((c2 & 7) << 5) | c3);
	for (i = 0; i < 2; i++) {
		uint8_t hi = (uint8_t)id[3 + 2 * i], lo = (uint8_t)id[4 + 2 * i];
		hi = hi <= '9' ? hi - '0' : hi - 'A' + 10;
		lo = lo <= '9' ? lo - '0' : lo - 'A' + 10;
		b[2 + i] = (uint8_t)(hi << 4 | lo);
	}
	put8(a, AML_DWORD_PREFIX);
	aml_bytes(a, b, 4);
	return;
bad:
	if (!a->err)
		a->err = -EINVAL;
}

/* NameSeg := LeadNameChar NameChar NameChar NameChar; LeadNameChar is
 * 'A'-'Z' or '_', NameChar adds '0'-'9' (§20.2.2).  Short segments are
 * padded with '_' as ASL compilers do. */
static int put_nameseg(struct aml *a, const char *s, size_t n)
{
	uint8_t seg[4] = { '_', '_', '_', '_' };

	if (n == 0 || n > 4)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int ok = (c >= 'A' && c <= 'Z') || c == '_' ||
			 (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return -EINVAL;
		seg[i] = (uint8_t)c;
	}
	aml_bytes(a, seg, 4);
	return 0;
}

void aml_name_string(struct aml *a, const char *path)
{
	const char *p = path;
	size_t nseg = 1;

	if (*p == '\\') {
		put8(a, AML_ROOT_CHAR);
		p++;
	}
	for (const char *q = p; *q; q++)
		nseg += *q == '.';
	if (nseg == 2) {
		put8(a, AML_DUAL_NAME);
	} else if (nseg > 2) {
		put8(a, AML_MULTI_NAME);
		put8(a, (uint8_t)nseg);
	}
	while (!a->err) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (put_nameseg(a, p, n) < 0 && !a->err)
			a->err = -EINVAL;
		if (!dot)
			break;
		p = dot + 1;
	}
}

void aml_name(struct aml *a, const char *path)
{
	put8(a, AML_NAME);
	aml_name_string(a, path);
}

static void begin(struct aml *a, const uint8_t *op, uint8_t oplen, uint8_t kind)
{
	if (a->err)
		return;
	if (a->depth >= AML_MAX_DEPTH) {
		a->err = -EINVAL;
		return;
	}
	aml_bytes(a, op, oplen);
	a->stack[a->depth].start = a->len;
	a->stack[a->depth].kind = kind;
	a->depth++;
}

void aml_scope_begin(struct aml *a, const char *path)
{
	static const uint8_t op[] = { AML_SCOPE };
	begin(a, op, sizeof(op), AML_K_PLAIN);
	aml_name_string(a, path);
}

void aml_device_begin(struct aml *a, const char *path)
{
	static const uint8_t op[] = { AML_EXT_PREFIX, AML_EXT_DEVICE };
	begin(a, op, sizeof(op), AML_K_PLAIN);
	aml_name_string(a, path);
}

void aml_package_begin(struct aml *a, uint8_t nelem)
{
	static const uint8_t op[] = { AML_PACKAGE };
	begin(a, op, sizeof(op), AML_K_PLAIN);
	put8(a, nelem); /* NumElements is part of the counted body */
}

void aml_buffer_begin(struct aml *a)
{
	static const uint8_t op[] = { AML_BUFFER };
	begin(a, op, sizeof(op), AML_K_BUFFER);
}

/* PkgLength (§20.2.4) for a construct whose other bytes number `rest`.
 * The encoded value includes the PkgLength bytes themselves.  One byte holds
 * up to 63 in bits 0-5; otherwise bits 6-7 of the lead byte give the number
 * of following bytes (1-3), its bits 0-3 hold the low nibble and each
 * following byte the next 8 bits (bits 4-5 must be zero). */
static int enc_pkglen(size_t rest, uint8_t out[4])
{
	if (rest + 1 <= 0x3F) {
		out[0] = (uint8_t)(rest + 1);
		return 1;
	}
	for (int n = 2; n <= 4; n++) {
		size_t total = rest + (size_t)n;
		if (total >= (size_t)1 << (4 + 8 * (n - 1)))
			continue;
		out[0] = (uint8_t)(((n - 1) << 6) | (total & 0xF));
		for (int i = 1; i < n; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		return n;
	}
	return -1; /* larger than 2^28 - 1: not encodable */
}

void aml_end(struct aml *a)
{
	uint8_t hdr[4 + 9];
	size_t hlen = 0;

	if (a->err)
		return;
	if (a->depth == 0) {
		a->err = -EINVAL;
		return;
	}
	a->depth--;
	size_t start = a->stack[a->depth].start;
	size_t body = a->len - start;

	uint8_t size[9];
	size_t slen = 0;
	if (a->stack[a->depth].kind == AML_K_BUFFER)
		slen = enc_integer(body, size); /* BufferSize TermArg */

	int n = enc_pkglen(slen + body, hdr);
	if (n < 0) {
		a->err = -E2BIG;
		return;
	}
	hlen = (size_t)n;
	memcpy(hdr + hlen, size, slen);
	hlen += slen;
	if (hlen > a->cap - a->len) {
		a->err = -ENOSPC;
		return;
	}
	memmove(a->buf + start + hlen, a->buf + start, body);
	memcpy(a->buf + start, hdr, hlen);
	a->len += hlen;
}

/* ---- Resource descriptors (§6.4) ---- */

/* I/O Port Descriptor, small item 0x08, 7 bytes (§6.4.2.5): decodes 16-bit
 * addresses, fixed base (min == max). */
void aml_res_io(struct aml *a, uint16_t base, uint8_t align, uint8_t len)
{
	put8(a, 0x47);        /* small item, type 0x08, length 7 */
	put8(a, 0x01);        /* Information: _DEC = 16-bit decode */
	put_le(a, base, 2);   /* _MIN */
	put_le(a, base, 2);   /* _MAX */
	put8(a, align);       /* _ALN */
	put8(a, len);         /* _LEN */
}

/* IRQ Descriptor without the optional flags byte (§6.4.2.1): means edge
 * triggered, active high, the ISA default. */
void aml_res_irq(struct aml *a, uint8_t irq)
{
	if (irq > 15) {
		if (!a->err)
			a->err = -EINVAL;
		return;
	}
	put8(a, 0x22);        /* small item, type 0x04, length 2 */
	put_le(a, 1u << irq, 2);
}

/* General flags of an address-space descriptor (§6.4.3.5, Table 6.44):
 * bit 3 _MAF (max fixed), bit 2 _MIF (min fixed), bit 1 _DEC (0: positive
 * decode), bit 0 (0: the device produces the range for its children). */
#define AML_ADDR_PRODUCER_FIXED 0x0C

/* Word Address Space Descriptor, large item 0x88 (§6.4.3.5.3). */
static void word_window(struct aml *a, uint8_t type, uint8_t tflags,
			uint16_t min, uint16_t max)
{
	if (min > max) {
		if (!a->err)
			a->err = -EINVAL;
		return;
	}
	put8(a, 0x88);
	put_le(a, 13, 2);     /* length of the rest */
	put8(a, type);        /* 1 = I/O range, 2 = bus number range */
	put8(a, AML_ADDR_PRODUCER_FIXED);
	put8(a, tflags);
	put_le(a, 0, 2);      /* _GRA: granularity */
	put_le(a, min, 2);    /* _MIN */
	put_le(a, max, 2);    /* _MAX */
	put_le(a, 0, 2);      /* _TRA: no translation */
	put_le(a, (uint32_t)max - min + 1, 2); /* _LEN */
}

void aml_res_bus_window(struct aml *a, uint16_t min, uint16_t max)
{
	word_window(a, 2, 0, min, max);
}

void aml_res_io_window(struct aml *a, uint16_t min, uint16_t max)
{
	/* Type-specific flags for I/O (Table 6.47): _RNG = 3, entire range. */
	word_window(a, 1, 0x03, min, max);
}

/* DWord Address Space Descriptor, large item 0x87 (§6.4.3.5.2), memory. */
void aml_res_mem32_window(struct aml *a, uint32_t min, uint32_t max)
{
	if (min > max || (min == 0 && max == 0xFFFFFFFF)) {
		if (!a->err)
			a->err = -EINVAL; /* _LEN would not fit 32 bits */
		return;
	}
	put8(a, 0x87);
	put_le(a, 23, 2);     /* length of the rest */
	put8(a, 0);           /* resource type 0: memory range */
	put8(a, AML_ADDR_PRODUCER_FIXED);
	put8(a, 0x01);        /* Table 6.46: _RW read-write, _MEM non-cacheable */
	put_le(a, 0, 4);      /* _GRA */
	put_le(a, min, 4);    /* _MIN */
	put_le(a, max, 4);    /* _MAX */
	put_le(a, 0, 4);      /* _TRA */
	put_le(a, (uint64_t)max - min + 1, 4); /* _LEN */
}

/* End Tag (§6.4.2.9): checksum byte 0 means "treat as correct". */
void aml_res_end(struct aml *a)
{
	static const uint8_t end[] = { 0x79, 0x00 };
	aml_bytes(a, end, sizeof(end));
}
