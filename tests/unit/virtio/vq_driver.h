/* Driver-side split virtqueue builder over fake guest memory, for unit
 * tests of the device side (virtio/queue.c) without KVM.  It plays the
 * guest driver: lays out the rings, writes descriptors, bumps avail.idx
 * and reads the used ring. */
#ifndef TEST_VQ_DRIVER_H
#define TEST_VQ_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/queue.h"
#include "vmm/guest_mem.h"

#define FAKE_RAM_GPA  0x100000ULL       /* guest RAM starts at 1 MiB */
#define FAKE_RAM_SIZE (4ULL << 20)

struct fake_vm {
	struct guest_mem gm;
	uint8_t *ram;
};

/* A buffer as the driver sees it: guest address, length, device-writable. */
struct vqd_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

struct vq_driver {
	struct fake_vm *vm;
	uint16_t size;
	uint64_t desc, avail, used;  /* ring GPAs */
	uint16_t next_free;          /* descriptor allocator (no reuse) */
	uint16_t avail_idx;
	uint16_t used_seen;
	uint64_t heap;               /* bump allocator for buffers/tables */
};

void fake_vm_init(struct fake_vm *vm);
void fake_vm_free(struct fake_vm *vm);
void *fake_host(struct fake_vm *vm, uint64_t gpa);

/* Lay out rings for `size` entries and configure q (not enabled). */
void vqd_init(struct vq_driver *d, struct fake_vm *vm, uint16_t size, struct virtq *q);
/* Allocate guest memory from the test heap (16-byte aligned). */
uint64_t vqd_alloc(struct vq_driver *d, uint32_t len);
/* Write a chain of direct descriptors; returns the head.  Does not publish. */
uint16_t vqd_chain(struct vq_driver *d, const struct vqd_buf *b, int n);
/* Write an indirect table for b[] and one descriptor pointing at it. */
uint16_t vqd_chain_indirect(struct vq_driver *d, const struct vqd_buf *b, int n);
/* Raw descriptor access for malformed cases. */
struct vring_desc *vqd_desc(struct vq_driver *d, uint16_t i);
/* Put head in the avail ring and publish avail.idx. */
void vqd_publish(struct vq_driver *d, uint16_t head);
void vqd_set_avail_idx(struct vq_driver *d, uint16_t idx);
void vqd_set_avail_flags(struct vq_driver *d, uint16_t flags);
void vqd_set_used_event(struct vq_driver *d, uint16_t v);
uint16_t vqd_avail_event(struct vq_driver *d);
uint16_t vqd_used_flags(struct vq_driver *d);
/* Next used element; false if none. */
bool vqd_get_used(struct vq_driver *d, uint32_t *id, uint32_t *len);

#endif
