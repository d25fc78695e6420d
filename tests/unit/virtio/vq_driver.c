#include "vq_driver.h"

#include <stdlib.h>
#include <string.h>

void fake_vm_init(struct fake_vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->ram = aligned_alloc(4096, FAKE_RAM_SIZE);
	memset(vm->ram, 0, FAKE_RAM_SIZE);
	gm_add_region(&vm->gm, FAKE_RAM_GPA, FAKE_RAM_SIZE, vm->ram);
}

void fake_vm_free(struct fake_vm *vm)
{
	free(vm->ram);
}

void *fake_host(struct fake_vm *vm, uint64_t gpa)
{
	return vm->ram + (gpa - FAKE_RAM_GPA);
}

uint64_t vqd_alloc(struct vq_driver *d, uint32_t len)
{
	uint64_t g = d->heap;

	d->heap = (d->heap + len + 15) & ~15ULL;
	return g;
}

void vqd_init(struct vq_driver *d, struct fake_vm *vm, uint16_t size, struct virtq *q)
{
	memset(d, 0, sizeof(*d));
	d->vm = vm;
	d->size = size;
	d->heap = FAKE_RAM_GPA;
	d->desc = vqd_alloc(d, 16 * size);
	d->avail = vqd_alloc(d, 6 + 2 * size);
	d->used = vqd_alloc(d, 6 + 8 * size);
	d->heap = (d->heap + 4095) & ~4095ULL;
	memset(fake_host(vm, d->desc), 0, d->heap - d->desc); /* a fresh driver zeroes its rings */
	q->gm = &vm->gm;
	vq_reset(q);
	q->size = size;
	q->desc_gpa = d->desc;
	q->avail_gpa = d->avail;
	q->used_gpa = d->used;
}

struct vring_desc *vqd_desc(struct vq_driver *d, uint16_t i)
{
	return (struct vring_desc *)fake_host(d->vm, d->desc) + i;
}

uint16_t vqd_chain(struct vq_driver *d, const struct vqd_buf *b, int n)
{
	uint16_t head = d->next_free;

	for (int i = 0; i < n; i++) {
		struct vring_desc *ds = vqd_desc(d, (uint16_t)(d->next_free % d->size));

		ds->addr = b[i].gpa;
		ds->len = b[i].len;
		ds->flags = (b[i].write ? VRING_DESC_F_WRITE : 0) |
			    (i + 1 < n ? VRING_DESC_F_NEXT : 0);
		ds->next = (uint16_t)((d->next_free + 1) % d->size);
		d->next_free++;
	}
	return head % d->size;
}

uint16_t vqd_chain_indirect(struct vq_driver *d, const struct vqd_buf *b, int n)
{
	uint64_t tbl = vqd_alloc(d, 16 * n);
	struct vring_desc *t = fake_host(d->vm, tbl);
	uint16_t head = (uint16_t)(d->next_free++ % d->size);
	struct vring_desc *ds = vqd_desc(d, head);

	for (int i = 0; i < n; i++) {
		t[i].addr = b[i].gpa;
		t[i].len = b[i].len;
		t[i].flags = (b[i].write ? VRING_DESC_F_WRITE : 0) |
			     (i + 1 < n ? VRING_DESC_F_NEXT : 0);
		t[i].next = (uint16_t)(i + 1);
	}
	ds->addr = tbl;
	ds->len = 16 * n;
	ds->flags = VRING_DESC_F_INDIRECT;
	ds->next = 0;
	return head;
}

static uint16_t *avail(struct vq_driver *d)
{
	return fake_host(d->vm, d->avail);
}

static uint16_t *used16(struct vq_driver *d)
{
	return fake_host(d->vm, d->used);
}

void vqd_publish(struct vq_driver *d, uint16_t head)
{
	avail(d)[2 + d->avail_idx % d->size] = head;
	d->avail_idx++;
	__atomic_store_n(&avail(d)[1], d->avail_idx, __ATOMIC_RELEASE);
}

void vqd_set_avail_idx(struct vq_driver *d, uint16_t idx)
{
	d->avail_idx = idx;
	avail(d)[1] = idx;
}

void vqd_set_avail_flags(struct vq_driver *d, uint16_t flags)
{
	avail(d)[0] = flags;
}

void vqd_set_used_event(struct vq_driver *d, uint16_t v)
{
	avail(d)[2 + d->size] = v;
}

uint16_t vqd_avail_event(struct vq_driver *d)
{
	return used16(d)[2 + 4 * d->size];
}

uint16_t vqd_used_flags(struct vq_driver *d)
{
	return used16(d)[0];
}

bool vqd_get_used(struct vq_driver *d, uint32_t *id, uint32_t *len)
{
	uint32_t *ring = (uint32_t *)(used16(d) + 2);

	if (used16(d)[1] == d->used_seen)
		return false;
	*id = ring[2 * (d->used_seen % d->size)];
	*len = ring[2 * (d->used_seen % d->size) + 1];
	d->used_seen++;
	return true;
}
