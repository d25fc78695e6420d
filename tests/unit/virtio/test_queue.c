/* Device-side split virtqueue (virtio/queue.c) against a driver-side
 * builder over fake guest memory: normal, indirect, event-idx, and every
 * malformed chain/ring the device must survive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vq_driver.h"

struct ctx {
	struct fake_vm vm;
	struct vq_driver d;
	struct virtq q;
	struct vq_chain c;
};

static int setup_size(void **state, uint16_t size)
{
	struct ctx *x = calloc(1, sizeof(*x));

	fake_vm_init(&x->vm);
	vqd_init(&x->d, &x->vm, size, &x->q);
	x->q.indirect = true;
	*state = x;
	return 0;
}

static int setup(void **state) { return setup_size(state, 16); }

static int teardown(void **state)
{
	struct ctx *x = *state;

	fake_vm_free(&x->vm);
	free(x);
	return 0;
}

static void test_normal_chain(void **state)
{
	struct ctx *x = *state;
	uint64_t hdr = vqd_alloc(&x->d, 16), data = vqd_alloc(&x->d, 4096),
		 st = vqd_alloc(&x->d, 1);
	struct vqd_buf b[] = { { hdr, 16, false }, { data, 4096, true }, { st, 1, true } };
	uint32_t id, len;

	assert_int_equal(vq_enable(&x->q), 0);
	assert_int_equal(vq_pop(&x->q, &x->c), 0); /* empty */
	uint16_t h = vqd_chain(&x->d, b, 3);
	vqd_publish(&x->d, h);
	assert_int_equal(vq_pop(&x->q, &x->c), 1);
	assert_int_equal(x->c.head, h);
	assert_int_equal(x->c.nr_out, 1);
	assert_int_equal(x->c.nr_in, 2);
	assert_int_equal(x->c.out_len, 16);
	assert_int_equal(x->c.in_len, 4097);
	assert_ptr_equal(x->c.iov[0].iov_base, fake_host(&x->vm, hdr));
	assert_ptr_equal(x->c.iov[1].iov_base, fake_host(&x->vm, data));
	assert_int_equal(x->c.iov[1].iov_len, 4096);
	assert_ptr_equal(x->c.iov[2].iov_base, fake_host(&x->vm, st));
	assert_int_equal(vq_inflight(&x->q), 1);
	assert_int_equal(vq_pop(&x->q, &x->c), 0);
	vq_push(&x->q, h, 4097);
	assert_int_equal(vq_inflight(&x->q), 0);
	assert_true(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(id, h);
	assert_int_equal(len, 4097);
	assert_false(vqd_get_used(&x->d, &id, &len));
}

static void test_many_wraparound(void **state)
{
	struct ctx *x = *state;
	uint64_t buf = vqd_alloc(&x->d, 64);
	struct vqd_buf b[] = { { buf, 64, false } };
	uint32_t id, len;

	assert_int_equal(vq_enable(&x->q), 0);
	/* 3 laps of the 16-entry ring, crossing the 16-bit index wrap too. */
	x->q.last_avail = x->q.used_idx = 65530;
	x->d.avail_idx = x->d.used_seen = 65530;
	for (int i = 0; i < 48; i++) {
		uint16_t h = vqd_chain(&x->d, b, 1);
		vqd_publish(&x->d, h);
		assert_int_equal(vq_pop(&x->q, &x->c), 1);
		assert_int_equal(x->c.head, h);
		vq_push(&x->q, h, 0);
		assert_true(vqd_get_used(&x->d, &id, &len));
		assert_int_equal(id, h);
	}
}

static void test_indirect(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[5];
	uint32_t id, len;

	for (int i = 0; i < 5; i++)
		b[i] = (struct vqd_buf){ vqd_alloc(&x->d, 512), 512, i >= 3 };
	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain_indirect(&x->d, b, 5);
	vqd_publish(&x->d, h);
	assert_int_equal(vq_pop(&x->q, &x->c), 1);
	assert_int_equal(x->c.nr_out, 3);
	assert_int_equal(x->c.nr_in, 2);
	assert_int_equal(x->c.out_len, 1536);
	assert_int_equal(x->c.in_len, 1024);
	for (int i = 0; i < 5; i++)
		assert_ptr_equal(x->c.iov[i].iov_base, fake_host(&x->vm, b[i].gpa));
	vq_push(&x->q, h, 1024);
	assert_true(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(len, 1024);
}

/* A chain of direct descriptors that ends in an indirect table. */
static void test_direct_then_indirect(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf hdr = { vqd_alloc(&x->d, 16), 16, false };
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, true } };

	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain(&x->d, &hdr, 1);
	uint16_t ind = vqd_chain_indirect(&x->d, b, 1);
	vqd_desc(&x->d, h)->flags |= VRING_DESC_F_NEXT;
	vqd_desc(&x->d, h)->next = ind;
	vqd_publish(&x->d, h);
	assert_int_equal(vq_pop(&x->q, &x->c), 1);
	assert_int_equal(x->c.nr_out, 1);
	assert_int_equal(x->c.nr_in, 1);
}

static void expect_badmsg(struct ctx *x, uint16_t h)
{
	uint32_t id, len;

	vqd_publish(&x->d, h);
	assert_int_equal(vq_pop(&x->q, &x->c), -EBADMSG);
	assert_int_equal(x->c.head, h);
	/* The device returns the head with length 0; the queue still works. */
	vq_push(&x->q, x->c.head, 0);
	assert_true(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(id, h);
	assert_int_equal(len, 0);
	assert_false(x->q.broken);
	assert_int_equal(vq_inflight(&x->q), 0);
}

static void test_loop(void **state)
{
	struct ctx *x = *state;
	uint64_t a = vqd_alloc(&x->d, 8);
	struct vqd_buf b[] = { { a, 8, false }, { a, 8, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain(&x->d, b, 2);
	vqd_desc(&x->d, (uint16_t)(h + 1))->flags |= VRING_DESC_F_NEXT;
	vqd_desc(&x->d, (uint16_t)(h + 1))->next = h; /* 1 -> 0 -> 1 ... */
	expect_badmsg(x, h);
}

static void test_self_loop(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain(&x->d, b, 1);
	vqd_desc(&x->d, h)->flags |= VRING_DESC_F_NEXT;
	vqd_desc(&x->d, h)->next = h;
	expect_badmsg(x, h);
}

static void test_chain_longer_than_queue_indirect(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[17];

	/* queue size 16: a 17-entry indirect chain exceeds the hop budget */
	for (int i = 0; i < 17; i++)
		b[i] = (struct vqd_buf){ vqd_alloc(&x->d, 8), 8, false };
	assert_int_equal(vq_enable(&x->q), 0);
	expect_badmsg(x, vqd_chain_indirect(&x->d, b, 17));
	/* exactly 16 is fine */
	uint16_t h = vqd_chain_indirect(&x->d, b, 16);
	vqd_publish(&x->d, h);
	assert_int_equal(vq_pop(&x->q, &x->c), 1);
	assert_int_equal(x->c.nr_out, 16);
}

static void test_indirect_loop(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false }, { vqd_alloc(&x->d, 8), 8, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain_indirect(&x->d, b, 2);
	struct vring_desc *t = fake_host(&x->vm, vqd_desc(&x->d, h)->addr);
	t[1].flags |= VRING_DESC_F_NEXT;
	t[1].next = 0;
	expect_badmsg(x, h);
}

static void test_nested_indirect(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t inner = vqd_chain_indirect(&x->d, b, 1);
	struct vring_desc *id = vqd_desc(&x->d, inner);
	struct vqd_buf outer[] = { { id->addr, 16, false } };
	uint16_t h = vqd_chain_indirect(&x->d, outer, 1);
	struct vring_desc *t = fake_host(&x->vm, vqd_desc(&x->d, h)->addr);
	t[0].flags = VRING_DESC_F_INDIRECT;
	expect_badmsg(x, h);
}

static void test_indirect_bad_len(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false }, { vqd_alloc(&x->d, 8), 8, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain_indirect(&x->d, b, 2);
	vqd_desc(&x->d, h)->len = 24;
	expect_badmsg(x, h);
	h = vqd_chain_indirect(&x->d, b, 2);
	vqd_desc(&x->d, h)->len = 0;
	expect_badmsg(x, h);
}

static void test_indirect_next_out_of_table(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false }, { vqd_alloc(&x->d, 8), 8, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain_indirect(&x->d, b, 2);
	struct vring_desc *t = fake_host(&x->vm, vqd_desc(&x->d, h)->addr);
	t[0].next = 2; /* table has 2 entries */
	expect_badmsg(x, h);
}

static void test_indirect_with_next(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain_indirect(&x->d, b, 1);
	vqd_desc(&x->d, h)->flags |= VRING_DESC_F_NEXT;
	vqd_desc(&x->d, h)->next = h;
	expect_badmsg(x, h);
}

static void test_indirect_not_negotiated(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false } };

	x->q.indirect = false;
	assert_int_equal(vq_enable(&x->q), 0);
	expect_badmsg(x, vqd_chain_indirect(&x->d, b, 1));
}

static void test_indirect_table_outside_ram(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain_indirect(&x->d, b, 1);
	vqd_desc(&x->d, h)->addr = FAKE_RAM_GPA + FAKE_RAM_SIZE - 16;
	vqd_desc(&x->d, h)->len = 32;
	expect_badmsg(x, h);
}

static void test_zero_len(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 16), 16, false }, { vqd_alloc(&x->d, 8), 0, true } };

	assert_int_equal(vq_enable(&x->q), 0);
	expect_badmsg(x, vqd_chain(&x->d, b, 2));
}

static void test_out_of_ram(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf cases[][1] = {
		{ { 0x1000, 16, false } },                                /* below RAM */
		{ { FAKE_RAM_GPA + FAKE_RAM_SIZE - 8, 16, true } },       /* straddles end */
		{ { FAKE_RAM_GPA + FAKE_RAM_SIZE, 1, true } },            /* just past */
		{ { 0xFFFFFFFFFFFFFFF0ULL, 0x20, false } },               /* wraps */
	};

	assert_int_equal(vq_enable(&x->q), 0);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_badmsg(x, vqd_chain(&x->d, cases[i], 1));
}

static void test_readable_after_writable(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 16), 16, false },
			       { vqd_alloc(&x->d, 8), 8, true },
			       { vqd_alloc(&x->d, 8), 8, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	expect_badmsg(x, vqd_chain(&x->d, b, 3));
	/* same inside an indirect table */
	expect_badmsg(x, vqd_chain_indirect(&x->d, b, 3));
}

static void test_next_out_of_range(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 16), 16, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain(&x->d, b, 1);
	vqd_desc(&x->d, h)->flags |= VRING_DESC_F_NEXT;
	vqd_desc(&x->d, h)->next = 16;
	expect_badmsg(x, h);
}

/* Lengths summing past 4 GiB: two 3 GiB descriptors over a reserved,
 * never-touched mapping (the walk only forms pointers). */
static void test_len_overflow(void **state)
{
	struct ctx *x = *state;
	size_t big = 3ULL << 30;
	void *res = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	assert_true(res != MAP_FAILED);
	assert_int_equal(gm_add_region(&x->vm.gm, 1ULL << 32, big, res), 0);
	struct vqd_buf b[] = { { 1ULL << 32, 0xC0000000u, false }, { 1ULL << 32, 0xC0000000u, true } };
	assert_int_equal(vq_enable(&x->q), 0);
	expect_badmsg(x, vqd_chain(&x->d, b, 2));
	munmap(res, big);
}

static void test_too_many_iovs(void **state)
{
	struct ctx *x = *state;
	static struct vqd_buf b[VQ_MAX_SIZE];
	uint64_t a = vqd_alloc(&x->d, 8);

	/* 256-entry queue: 255 direct + an indirect table of 2 = 257 iovecs */
	vqd_init(&x->d, &x->vm, VQ_MAX_SIZE, &x->q);
	x->q.indirect = true;
	for (int i = 0; i < VQ_MAX_SIZE; i++)
		b[i] = (struct vqd_buf){ a, 8, false };
	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain(&x->d, b, 255);
	uint16_t ind = vqd_chain_indirect(&x->d, b, 2);
	vqd_desc(&x->d, (uint16_t)(h + 254))->flags |= VRING_DESC_F_NEXT;
	vqd_desc(&x->d, (uint16_t)(h + 254))->next = ind;
	expect_badmsg(x, h);
}

static void test_avail_idx_too_far(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	vqd_chain(&x->d, b, 1);
	vqd_set_avail_idx(&x->d, 17); /* size 16 */
	assert_int_equal(vq_pop(&x->q, &x->c), -EIO);
	assert_true(x->q.broken);
	vqd_set_avail_idx(&x->d, 1);
	assert_int_equal(vq_pop(&x->q, &x->c), -EIO); /* sticky until reset */
	assert_false(vq_enable_notify(&x->q));
	/* reset + re-enable recovers */
	vqd_init(&x->d, &x->vm, 16, &x->q);
	assert_int_equal(vq_enable(&x->q), 0);
	assert_int_equal(vq_pop(&x->q, &x->c), 0);
}

static void test_head_out_of_range(void **state)
{
	struct ctx *x = *state;

	assert_int_equal(vq_enable(&x->q), 0);
	vqd_publish(&x->d, 16);
	assert_int_equal(vq_pop(&x->q, &x->c), -EIO);
	assert_true(x->q.broken);
}

static void test_head_twice_in_flight(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain(&x->d, b, 1);
	vqd_publish(&x->d, h);
	vqd_publish(&x->d, h);
	assert_int_equal(vq_pop(&x->q, &x->c), 1);
	assert_int_equal(vq_pop(&x->q, &x->c), -EIO);
}

static void test_enable_validation(void **state)
{
	struct ctx *x = *state;
	static const uint16_t bad_sizes[] = { 0, 3, 12, 255, 512, 1024 };

	for (unsigned i = 0; i < sizeof(bad_sizes) / 2; i++) {
		x->q.size = bad_sizes[i];
		assert_int_equal(vq_enable(&x->q), -EINVAL);
		assert_false(x->q.ready);
	}
	x->q.size = 16;
	assert_int_equal(vq_enable(&x->q), 0);

	/* rings outside RAM */
	x->q.desc_gpa = 0;
	assert_int_equal(vq_enable(&x->q), -EINVAL);
	x->q.desc_gpa = FAKE_RAM_GPA + FAKE_RAM_SIZE - 128; /* 256 bytes needed */
	assert_int_equal(vq_enable(&x->q), -EINVAL);
	x->q.desc_gpa = x->d.desc;
	x->q.used_gpa = FAKE_RAM_GPA + FAKE_RAM_SIZE - 128; /* 134 needed */
	assert_int_equal(vq_enable(&x->q), -EINVAL);
	x->q.used_gpa = x->d.used;
	x->q.avail_gpa = FAKE_RAM_GPA + FAKE_RAM_SIZE - 36;   /* 38 needed */
	assert_int_equal(vq_enable(&x->q), -EINVAL);
	x->q.avail_gpa = 0xFFFFFFFFFFFFFFF0ULL;
	assert_int_equal(vq_enable(&x->q), -EINVAL);
	x->q.avail_gpa = x->d.avail;
	/* misalignment */
	x->q.desc_gpa = x->d.desc + 8;
	assert_int_equal(vq_enable(&x->q), -EINVAL);
	x->q.desc_gpa = x->d.desc;
	x->q.avail_gpa = x->d.avail + 1;
	assert_int_equal(vq_enable(&x->q), -EINVAL);
	x->q.avail_gpa = x->d.avail;
	x->q.used_gpa = x->d.used + 2;
	assert_int_equal(vq_enable(&x->q), -EINVAL);
	x->q.used_gpa = x->d.used;
	assert_int_equal(vq_enable(&x->q), 0);
}

static void test_no_interrupt_flag(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false } };

	assert_int_equal(vq_enable(&x->q), 0);
	uint16_t h = vqd_chain(&x->d, b, 1);
	vqd_publish(&x->d, h);
	assert_int_equal(vq_pop(&x->q, &x->c), 1);
	vq_push(&x->q, h, 0);
	assert_true(vq_should_notify(&x->q));
	vqd_set_avail_flags(&x->d, VRING_AVAIL_F_NO_INTERRUPT);
	assert_false(vq_should_notify(&x->q));
}

static void test_event_idx_interrupts(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false } };
	uint16_t h[8];

	x->q.event_idx = true;
	assert_int_equal(vq_enable(&x->q), 0);
	vqd_set_avail_flags(&x->d, VRING_AVAIL_F_NO_INTERRUPT); /* ignored with EVENT_IDX */
	for (int i = 0; i < 8; i++) {
		h[i] = vqd_chain(&x->d, b, 1);
		vqd_publish(&x->d, h[i]);
		assert_int_equal(vq_pop(&x->q, &x->c), 1);
	}
	/* Driver wants an interrupt once used.idx passes 3 (i.e. reaches 4). */
	vqd_set_used_event(&x->d, 3);
	vq_push(&x->q, h[0], 0);
	assert_true(vq_should_notify(&x->q)); /* first one always signals */
	vq_push(&x->q, h[1], 0);
	assert_false(vq_should_notify(&x->q)); /* used.idx 2 */
	vq_push(&x->q, h[2], 0);
	assert_false(vq_should_notify(&x->q)); /* 3 */
	vq_push(&x->q, h[3], 0);
	assert_true(vq_should_notify(&x->q));  /* 4: crossed used_event */
	vq_push(&x->q, h[4], 0);
	assert_false(vq_should_notify(&x->q)); /* event 3 is behind */
	/* A batch that jumps over used_event signals once. */
	vqd_set_used_event(&x->d, 6);
	vq_push(&x->q, h[5], 0);
	vq_push(&x->q, h[6], 0);
	vq_push(&x->q, h[7], 0);
	assert_true(vq_should_notify(&x->q));
	assert_false(vq_should_notify(&x->q));
}

static void test_event_idx_kicks(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false } };

	x->q.event_idx = true;
	assert_int_equal(vq_enable(&x->q), 0);
	vq_disable_notify(&x->q);
	assert_int_equal(vqd_used_flags(&x->d), 0); /* flags unused with EVENT_IDX */
	uint16_t h = vqd_chain(&x->d, b, 1);
	vqd_publish(&x->d, h);
	assert_int_equal(vq_pop(&x->q, &x->c), 1);
	assert_false(vq_enable_notify(&x->q));
	assert_int_equal(vqd_avail_event(&x->d), 1); /* kick me when idx passes 1 */
	vqd_publish(&x->d, vqd_chain(&x->d, b, 1));
	x->q.last_avail = 1;
	assert_true(vq_enable_notify(&x->q)); /* raced with a new buffer */
}

static void test_flag_kicks(void **state)
{
	struct ctx *x = *state;

	assert_int_equal(vq_enable(&x->q), 0);
	vq_disable_notify(&x->q);
	assert_int_equal(vqd_used_flags(&x->d), VRING_USED_F_NO_NOTIFY);
	assert_false(vq_enable_notify(&x->q));
	assert_int_equal(vqd_used_flags(&x->d), 0);
}

static void test_iov_helpers(void **state)
{
	char a[4] = "abcd", b2[3] = "efg", out[8] = { 0 };
	struct iovec v[2] = { { a, 4 }, { b2, 3 } }, s[2];

	(void)state;
	assert_int_equal(iov_to_buf(v, 2, 2, out, 8), 5);
	assert_memory_equal(out, "cdefg", 5);
	assert_int_equal(iov_from_buf(v, 2, 3, "XY", 2), 2);
	assert_memory_equal(a, "abcX", 4);
	assert_memory_equal(b2, "Yfg", 3);
	assert_int_equal(iov_slice(v, 2, 1, 5, s, 2), 2);
	assert_ptr_equal(s[0].iov_base, a + 1);
	assert_int_equal(s[0].iov_len, 3);
	assert_int_equal(s[1].iov_len, 2);
	assert_int_equal(iov_slice(v, 2, 1, 7, s, 2), -1); /* past the end */
	assert_int_equal(iov_slice(v, 2, 1, 5, s, 1), -1); /* dst too small */
	assert_int_equal(iov_slice(v, 2, 7, 0, s, 2), 0);
}

/* Property test: random descriptor tables and avail rings (mostly
 * plausible, often broken).  Whatever the guest wrote, every iovec handed
 * out lies inside guest RAM and inside the bounds, lengths add up, and
 * every popped head can be returned. */
static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

static uint64_t rnd_addr(struct ctx *x, uint32_t len)
{
	switch (rnd() % 8) {
	case 0: return rnd();                                       /* anywhere */
	case 1: return FAKE_RAM_GPA + FAKE_RAM_SIZE - (rnd() % 64); /* at the end */
	case 2: return 0xFFFFFFFFFFFFFFFFULL - (rnd() % 4096);       /* wraps */
	default: return FAKE_RAM_GPA + 0x10000 + rnd() % (FAKE_RAM_SIZE - 0x20000 - len);
	}
}

static void random_desc(struct ctx *x, struct vring_desc *d, uint16_t n)
{
	d->len = rnd() % 4 == 0 ? rnd() : rnd() % 4096;
	d->addr = rnd_addr(x, d->len % 0x8000);
	d->flags = (uint16_t)(rnd() % 8);
	d->next = rnd() % 4 == 0 ? (uint16_t)rnd() : (uint16_t)(rnd() % n);
	if (d->flags & VRING_DESC_F_INDIRECT) {
		/* point at a random table, sometimes a plausible one */
		uint16_t entries = (uint16_t)(1 + rnd() % 20);
		uint64_t t = FAKE_RAM_GPA + 0x200000 + (rnd() % 64) * 0x400;
		struct vring_desc *tbl = fake_host(&x->vm, t);
		for (uint16_t i = 0; i < entries; i++) {
			tbl[i].len = rnd() % 2048;
			tbl[i].addr = rnd_addr(x, tbl[i].len);
			tbl[i].flags = (uint16_t)(rnd() % 8 == 0 ? rnd() % 8 : rnd() % 4);
			tbl[i].next = (uint16_t)(rnd() % (entries + 1));
		}
		d->addr = rnd() % 8 ? t : rnd_addr(x, 0);
		d->len = rnd() % 8 ? 16u * entries : (uint32_t)rnd() % 512;
	}
}

static void check_chain(struct ctx *x, const struct vq_chain *c)
{
	uint64_t out = 0, in = 0;
	const uint8_t *lo = x->vm.ram, *hi = x->vm.ram + FAKE_RAM_SIZE;

	assert_true(c->head < x->q.size);
	assert_true((unsigned)c->nr_out + c->nr_in <= VQ_MAX_IOV);
	for (unsigned i = 0; i < (unsigned)c->nr_out + c->nr_in; i++) {
		const uint8_t *b = c->iov[i].iov_base;
		assert_true(c->iov[i].iov_len > 0);
		assert_true(b >= lo && b < hi && c->iov[i].iov_len <= (size_t)(hi - b));
		if (i < c->nr_out)
			out += c->iov[i].iov_len;
		else
			in += c->iov[i].iov_len;
	}
	assert_int_equal(out, c->out_len);
	assert_int_equal(in, c->in_len);
}

static void test_random_rings(void **state)
{
	struct ctx *x = *state;
	static const uint16_t sizes[] = { 1, 2, 8, 16, 64, 256 };
	unsigned ok = 0, bad = 0, broken = 0;

	for (int round = 0; round < 3000; round++) {
		uint16_t n = sizes[rnd() % 6];
		uint32_t id, len;

		vqd_init(&x->d, &x->vm, n, &x->q);
		x->q.indirect = rnd() % 4 != 0;
		x->q.event_idx = rnd() % 2;
		assert_int_equal(vq_enable(&x->q), 0);
		for (uint16_t i = 0; i < n; i++)
			random_desc(x, vqd_desc(&x->d, i), n);
		int heads = (int)(rnd() % (n + 2u));
		for (int i = 0; i < heads; i++)
			vqd_publish(&x->d, rnd() % 16 == 0 ? (uint16_t)rnd() : (uint16_t)(rnd() % n));
		if (rnd() % 16 == 0)
			vqd_set_avail_idx(&x->d, (uint16_t)rnd());
		for (int k = 0; k < n + 4; k++) {
			int r = vq_pop(&x->q, &x->c);
			if (r == 0)
				break;
			if (r == -EIO) {
				broken++;
				break;
			}
			if (r == 1) {
				check_chain(x, &x->c);
				ok++;
			} else {
				assert_int_equal(r, -EBADMSG);
				assert_true(x->c.head < n);
				bad++;
			}
			vq_push(&x->q, x->c.head, r == 1 ? x->c.in_len : 0);
			assert_true(vqd_get_used(&x->d, &id, &len));
			assert_int_equal(id, x->c.head);
			(void)vq_should_notify(&x->q);
		}
		(void)vq_enable_notify(&x->q);
	}
	/* the generator must exercise all three outcomes */
	assert_true(ok > 100 && bad > 100 && broken > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_normal_chain),
		T(test_many_wraparound),
		T(test_indirect),
		T(test_direct_then_indirect),
		T(test_loop),
		T(test_self_loop),
		T(test_chain_longer_than_queue_indirect),
		T(test_indirect_loop),
		T(test_nested_indirect),
		T(test_indirect_bad_len),
		T(test_indirect_next_out_of_table),
		T(test_indirect_with_next),
		T(test_indirect_not_negotiated),
		T(test_indirect_table_outside_ram),
		T(test_zero_len),
		T(test_out_of_ram),
		T(test_readable_after_writable),
		T(test_next_out_of_range),
		T(test_len_overflow),
		T(test_too_many_iovs),
		T(test_avail_idx_too_far),
		T(test_head_out_of_range),
		T(test_head_twice_in_flight),
		T(test_enable_validation),
		T(test_no_interrupt_flag),
		T(test_event_idx_interrupts),
		T(test_event_idx_kicks),
		T(test_flag_kicks),
		T(test_iov_helpers),
		T(test_random_rings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
