/* Guest physical memory: the ONE place that turns a guest-physical address
 * (GPA) into a host pointer.
 *
 * The guest is untrusted.  Every address or length that came from the guest
 * (a descriptor, a ring address, a DMA buffer) must go through gm_ptr() or
 * gm_read()/gm_write().  No other file may do arithmetic on guest RAM.
 *
 * Rules (as in crosvm's is_valid_range): a zero length is invalid, gpa + len
 * must not wrap, and the whole range must lie inside one RAM region.  Ranges
 * that straddle two regions (e.g. across the PCI hole) are refused; guest
 * drivers never build such buffers because the hole is not RAM. */
#ifndef MINIVMM_GUEST_MEM_H
#define MINIVMM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GM_MAX_REGIONS 4

struct gm_region {
	uint64_t gpa;   /* first guest-physical address */
	uint64_t size;  /* bytes */
	uint8_t *host;  /* host mapping of gpa */
};

struct guest_mem {
	struct gm_region r[GM_MAX_REGIONS];
	int nr;
	uint64_t ram_size; /* sum of region sizes */
};

/* Add a region; regions must not overlap.  Returns 0 or -EINVAL. */
int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host);

/* Host pointer for [gpa, gpa+len) or NULL when the range is not entirely
 * inside one region (or len == 0, or it wraps).  The pointer aliases memory
 * the guest can change at any time: copy what you validate. */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy to/from guest memory; 0 on success, -EFAULT on a bad range. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len);
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len);

/* True when [gpa, gpa+len) is valid guest RAM (same rules as gm_ptr). */
static inline bool gm_valid(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	return gm_ptr(gm, gpa, len) != NULL;
}

#endif
