/* virtio-net packet paths (virtio/net_io.c) on hand-built rings over fake
 * guest memory (tests/unit/virtio/vq_driver.c plays the guest driver).
 * Expected bytes are built here independently; the "tap" is one end of a
 * SOCK_SEQPACKET socketpair, which keeps packet boundaries like a tap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "virtio/net.h"
#include "vq_driver.h"

struct ctx {
	struct fake_vm vm;
	struct vq_driver d;
	struct virtq q;
	struct vq_chain c;
	int sp[2];
};

static int setup_size(void **state, uint16_t size)
{
	struct ctx *x = calloc(1, sizeof(*x));

	fake_vm_init(&x->vm);
	vqd_init(&x->d, &x->vm, size, &x->q);
	x->q.indirect = true;
	assert_int_equal(vq_enable(&x->q), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, x->sp), 0);
	*state = x;
	return 0;
}

static int setup(void **state) { return setup_size(state, 64); }
static int setup4(void **state) { return setup_size(state, 4); }

static int teardown(void **state)
{
	struct ctx *x = *state;

	close(x->sp[0]);
	close(x->sp[1]);
	fake_vm_free(&x->vm);
	free(x);
	return 0;
}

/* A packet as the tap delivers it: header (num_buffers garbage, the tap
 * does not write it) + frame with a recognisable pattern. */
static uint8_t *make_pkt(size_t len)
{
	uint8_t *p = malloc(len);
	struct virtio_net_hdr h = { .flags = 1, .gso_type = 0, .hdr_len = 54, .gso_size = 0,
				    .csum_start = 34, .csum_offset = 16, .num_buffers = 0xdead };

	memcpy(p, &h, sizeof(h));
	for (size_t i = VNET_HDR_LEN; i < len; i++)
		p[i] = (uint8_t)(i * 31 + 7);
	return p;
}

static uint16_t post_rx(struct ctx *x, uint32_t len, uint64_t *gpa)
{
	struct vqd_buf b = { vqd_alloc(&x->d, len), len, true };
	uint16_t h = vqd_chain(&x->d, &b, 1);

	*gpa = b.gpa;
	vqd_publish(&x->d, h);
	return h;
}

static uint16_t num_buffers(struct ctx *x, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, (uint8_t *)fake_host(&x->vm, gpa) + 10, 2);
	return v;
}

static void test_rx_single_buffer(void **state)
{
	struct ctx *x = *state;
	uint8_t *pkt = make_pkt(1000);
	uint64_t g;
	uint16_t h = post_rx(x, 2000, &g);
	uint32_t id, len;

	assert_int_equal(net_rx_deliver(&x->q, &x->c, pkt, 1000, false), 1);
	assert_true(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(id, h);
	assert_int_equal(len, 1000);
	/* header fields passed through, num_buffers = 1 (§5.1.6.4) */
	assert_memory_equal(fake_host(&x->vm, g), pkt, 10);
	assert_int_equal(num_buffers(x, g), 1);
	assert_memory_equal((uint8_t *)fake_host(&x->vm, g) + 12, pkt + 12, 988);
	assert_false(vqd_get_used(&x->d, &id, &len));
	free(pkt);
}

static void test_rx_merge(void **state)
{
	struct ctx *x = *state;
	size_t plen = 5000;
	uint8_t *pkt = make_pkt(plen), got[5000];
	uint64_t g[4];
	uint16_t h[4];
	uint32_t id, len, want[4] = { 1536, 1536, 1536, 392 };
	size_t off = 0;

	for (int i = 0; i < 4; i++)
		h[i] = post_rx(x, 1536, &g[i]);
	assert_int_equal(net_rx_deliver(&x->q, &x->c, pkt, plen, true), 1);
	for (int i = 0; i < 4; i++) {
		assert_true(vqd_get_used(&x->d, &id, &len));
		assert_int_equal(id, h[i]);
		assert_int_equal(len, want[i]);
		memcpy(got + off, fake_host(&x->vm, g[i]), len);
		off += len;
	}
	assert_int_equal(off, plen);
	assert_int_equal(num_buffers(x, g[0]), 4);
	assert_memory_equal(got, pkt, 10);
	assert_memory_equal(got + 12, pkt + 12, plen - 12);
	free(pkt);
}

/* The first buffer's header is split over two descriptors: num_buffers
 * must land in the second one. */
static void test_rx_merge_split_header(void **state)
{
	struct ctx *x = *state;
	uint8_t *pkt = make_pkt(3000);
	struct vqd_buf b[2] = { { vqd_alloc(&x->d, 6), 6, true }, { vqd_alloc(&x->d, 2000), 2000, true } };
	uint64_t g2;
	uint16_t nb;
	uint32_t id, len;

	vqd_publish(&x->d, vqd_chain(&x->d, b, 2));
	post_rx(x, 2000, &g2);
	assert_int_equal(net_rx_deliver(&x->q, &x->c, pkt, 3000, true), 1);
	memcpy(&nb, (uint8_t *)fake_host(&x->vm, b[1].gpa) + 4, 2);
	assert_int_equal(nb, 2);
	assert_memory_equal(fake_host(&x->vm, b[0].gpa), pkt, 6);
	assert_memory_equal((uint8_t *)fake_host(&x->vm, b[1].gpa) + 6, pkt + 12, 1994);
	assert_memory_equal(fake_host(&x->vm, g2), pkt + 2006, 994);
	assert_true(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(len, 2006);
	assert_true(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(len, 994);
	free(pkt);
}

/* Not enough buffers: nothing is consumed; once the driver adds more, the
 * same packet goes into the original buffers first. */
static void test_rx_wait_for_buffers(void **state)
{
	struct ctx *x = *state;
	uint8_t *pkt = make_pkt(5000);
	uint64_t g[4];
	uint16_t h[4];
	uint32_t id, len;

	h[0] = post_rx(x, 1536, &g[0]);
	h[1] = post_rx(x, 1536, &g[1]);
	assert_int_equal(net_rx_deliver(&x->q, &x->c, pkt, 5000, true), 0);
	assert_false(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(vq_inflight(&x->q), 0);
	h[2] = post_rx(x, 1536, &g[2]);
	h[3] = post_rx(x, 1536, &g[3]);
	assert_int_equal(net_rx_deliver(&x->q, &x->c, pkt, 5000, true), 1);
	for (int i = 0; i < 4; i++) {
		assert_true(vqd_get_used(&x->d, &id, &len));
		assert_int_equal(id, h[i]);
	}
	assert_int_equal(num_buffers(x, g[0]), 4);
	assert_int_equal(vq_inflight(&x->q), 0);
	free(pkt);
}

/* Without MRG_RXBUF a packet larger than the buffer is dropped, and the
 * buffer stays available for the next packet. */
static void test_rx_too_big_no_merge(void **state)
{
	struct ctx *x = *state;
	uint8_t *big = make_pkt(1500), *small = make_pkt(500);
	uint64_t g;
	uint16_t h = post_rx(x, 1000, &g);
	uint32_t id, len;

	assert_int_equal(net_rx_deliver(&x->q, &x->c, big, 1500, false), -EMSGSIZE);
	assert_false(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(net_rx_deliver(&x->q, &x->c, small, 500, false), 1);
	assert_true(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(id, h);
	assert_int_equal(len, 500);
	free(big);
	free(small);
}

/* A ring whose every buffer together is too small: drop, do not wait
 * forever. */
static void test_rx_larger_than_ring(void **state)
{
	struct ctx *x = *state;
	uint8_t *pkt = make_pkt(1000);
	uint64_t g;
	uint32_t id, len;

	for (int i = 0; i < 4; i++)
		post_rx(x, 100, &g);
	assert_int_equal(net_rx_deliver(&x->q, &x->c, pkt, 1000, true), -EMSGSIZE);
	assert_false(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(vq_inflight(&x->q), 0);
	free(pkt);
}

static void test_rx_malformed(void **state)
{
	struct ctx *x = *state;
	uint8_t *pkt = make_pkt(100);
	struct vqd_buf rd = { vqd_alloc(&x->d, 200), 200, false };
	struct vqd_buf tiny = { vqd_alloc(&x->d, 8), 8, true };
	uint16_t h;
	uint32_t id, len;

	/* device-readable receive buffer */
	h = vqd_chain(&x->d, &rd, 1);
	vqd_publish(&x->d, h);
	assert_int_equal(net_rx_deliver(&x->q, &x->c, pkt, 100, true), -EBADMSG);
	assert_true(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(id, h);
	assert_int_equal(len, 0);
	/* first buffer smaller than the header */
	h = vqd_chain(&x->d, &tiny, 1);
	vqd_publish(&x->d, h);
	assert_int_equal(net_rx_deliver(&x->q, &x->c, pkt, 100, true), -EBADMSG);
	assert_true(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(id, h);
	assert_int_equal(len, 0);
	/* a buffer outside guest RAM */
	tiny.gpa = FAKE_RAM_GPA + FAKE_RAM_SIZE - 4;
	tiny.len = 4096;
	h = vqd_chain(&x->d, &tiny, 1);
	vqd_publish(&x->d, h);
	assert_int_equal(net_rx_deliver(&x->q, &x->c, pkt, 100, true), -EBADMSG);
	assert_true(vqd_get_used(&x->d, &id, &len));
	assert_int_equal(len, 0);
	free(pkt);
}

static void test_rx_broken_ring(void **state)
{
	struct ctx *x = *state;
	uint8_t *pkt = make_pkt(100);

	vqd_set_avail_idx(&x->d, 1000); /* more than size ahead */
	assert_int_equal(net_rx_deliver(&x->q, &x->c, pkt, 100, true), -EIO);
	free(pkt);
}

/* TX: header and frame spread over three descriptors, written as one
 * packet; the header goes to the tap unchanged. */
static void test_tx_send(void **state)
{
	struct ctx *x = *state;
	uint8_t *pkt = make_pkt(1400), got[2000];
	struct vqd_buf b[3] = { { vqd_alloc(&x->d, 12), 12, false },
				{ vqd_alloc(&x->d, 100), 100, false },
				{ vqd_alloc(&x->d, 1288), 1288, false } };
	ssize_t r;

	memcpy(fake_host(&x->vm, b[0].gpa), pkt, 12);
	memcpy(fake_host(&x->vm, b[1].gpa), pkt + 12, 100);
	memcpy(fake_host(&x->vm, b[2].gpa), pkt + 112, 1288);
	vqd_publish(&x->d, vqd_chain(&x->d, b, 3));
	assert_int_equal(vq_pop(&x->q, &x->c), 1);
	assert_int_equal(net_tx_send(x->sp[0], &x->c), 1388);
	r = read(x->sp[1], got, sizeof(got));
	assert_int_equal(r, 1400);
	assert_memory_equal(got, pkt, 1400);
	free(pkt);
}

static void test_tx_malformed(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf shorthdr = { vqd_alloc(&x->d, 8), 8, false };
	struct vqd_buf wr[2] = { { vqd_alloc(&x->d, 64), 64, false },
				 { vqd_alloc(&x->d, 64), 64, true } };
	struct vqd_buf huge = { vqd_alloc(&x->d, NET_MAX_PKT + 1), NET_MAX_PKT + 1, false };
	uint8_t got[64];

	vqd_publish(&x->d, vqd_chain(&x->d, &shorthdr, 1));
	assert_int_equal(vq_pop(&x->q, &x->c), 1);
	assert_int_equal(net_tx_send(x->sp[0], &x->c), -EBADMSG);
	vqd_publish(&x->d, vqd_chain(&x->d, wr, 2));
	assert_int_equal(vq_pop(&x->q, &x->c), 1);
	assert_int_equal(net_tx_send(x->sp[0], &x->c), -EBADMSG);
	vqd_publish(&x->d, vqd_chain(&x->d, &huge, 1));
	assert_int_equal(vq_pop(&x->q, &x->c), 1);
	assert_int_equal(net_tx_send(x->sp[0], &x->c), -EBADMSG);
	/* nothing reached the "tap" */
	assert_int_equal(recv(x->sp[1], got, sizeof(got), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

/* A write error (the tap refused the frame) is reported, not fatal. */
static void test_tx_write_error(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b = { vqd_alloc(&x->d, 100), 100, false };

	vqd_publish(&x->d, vqd_chain(&x->d, &b, 1));
	assert_int_equal(vq_pop(&x->q, &x->c), 1);
	close(x->sp[1]);
	x->sp[1] = dup(x->sp[0]); /* keep teardown happy */
	shutdown(x->sp[0], SHUT_WR);
	assert_true(net_tx_send(x->sp[0], &x->c) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rx_single_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_merge_split_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_wait_for_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_too_big_no_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_larger_than_ring, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_rx_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_broken_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_send, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_write_error, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
