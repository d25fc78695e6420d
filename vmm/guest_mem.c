#include "vmm/guest_mem.h"

#include <errno.h>
#include <string.h>

int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host)
{
	uint64_t end;

	if (gm->nr >= GM_MAX_REGIONS || size == 0 || !host ||
	    __builtin_add_overflow(gpa, size - 1, &end))
		return -EINVAL;
	for (int i = 0; i < gm->nr; i++) {
		const struct gm_region *o = &gm->r[i];
		if (gpa <= o->gpa + (o->size - 1) && o->gpa <= end)
			return -EINVAL;
	}
	gm->r[gm->nr++] = (struct gm_region){ .gpa = gpa, .size = size, .host = host };
	gm->ram_size += size;
	return 0;
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint64_t last;

	if (len == 0 || __builtin_add_overflow(gpa, len - 1, &last))
		return NULL;
	for (int i = 0; i < gm->nr; i++) {
		const struct gm_region *r = &gm->r[i];
		/* offset < size and the last byte also inside: both checked
		 * without forming gpa + len, which could wrap. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size &&
		    last - r->gpa < r->size)
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len)
{
	void *p = gm_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len)
{
	void *p = gm_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}
